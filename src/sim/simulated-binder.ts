/**
 * A simulated binder: exports an API with the verbs a test or a demo needs
 * (ping, fail, subscribe/unsubscribe, push, broadcast, info) and a periodic
 * vehicle signal, so afb-edge can be tried and tested without a board.
 */
import { WsapiServer, type Request, type ServerEvent } from '../wsapi/index.js';
import type { Logger } from '../util/log.js';

export interface SimulatedBinderOptions {
  api?: string;
  /** Period of the signal events in ms (0 disables them). */
  periodMs?: number;
  logger?: Logger;
}

/** Signals published periodically, with a plausible shape. */
const SIGNALS = ['speed', 'engine_rpm', 'fuel_level'] as const;
/** Events that only move when a verb pushes them. */
const ON_DEMAND = ['alert'] as const;

function signalValue(name: (typeof SIGNALS)[number], t: number): number {
  switch (name) {
    case 'speed': return Math.round((60 + 40 * Math.sin(t / 20)) * 10) / 10; // km/h
    case 'engine_rpm': return Math.round(1500 + 1200 * Math.abs(Math.sin(t / 13)));
    case 'fuel_level': return Math.max(0, Math.round((80 - t / 600) * 10) / 10); // percent
  }
}

function eventNameArg(req: Request): string[] | string {
  const a = req.args as { event?: unknown } | null;
  if (a === null || a === undefined || typeof a !== 'object' || a.event === undefined) return [...SIGNALS, ...ON_DEMAND];
  if (typeof a.event !== 'string') return 'args.event must be a string';
  return [a.event];
}

export class SimulatedBinder {
  readonly server: WsapiServer;
  private readonly events = new Map<string, ServerEvent>();
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  private pings = 0;
  private readonly started = Date.now();

  constructor(options: SimulatedBinderOptions = {}) {
    const api = options.api ?? 'vehicle';
    this.server = new WsapiServer({ api, logger: options.logger, description: () => this.description() });
    for (const name of [...SIGNALS, ...ON_DEMAND]) this.events.set(name, this.server.event(name));
    this.declareVerbs();
    const period = options.periodMs ?? 1000;
    if (period > 0) {
      this.timer = setInterval(() => this.publishSignals(), period);
    }
  }

  get api(): string {
    return this.server.api;
  }

  async listen(spec: string): Promise<void> {
    await this.server.listen(spec);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.server.close();
  }

  private publishSignals(): void {
    this.tick++;
    for (const name of SIGNALS) {
      this.events.get(name)!.push({ value: signalValue(name, this.tick), unit: name === 'speed' ? 'km/h' : name === 'engine_rpm' ? 'rpm' : '%', seq: this.tick });
    }
  }

  private declareVerbs(): void {
    const s = this.server;
    s.verb('ping', (req) => {
      this.pings++;
      req.reply({ pong: req.args, count: this.pings }, `ping count=${this.pings}`);
    }, { description: 'Echoes its args' });
    s.verb('fail', (req) => {
      const a = req.args as { error?: unknown; info?: unknown } | null;
      const error = typeof a?.error === 'string' ? a.error : 'failed';
      req.fail(error, typeof a?.info === 'string' ? a.info : 'simulated failure');
    }, { description: 'Always fails (args.error, args.info)' });
    s.verb('subscribe', (req) => this.subscription(req, true), { description: 'Subscribes to args.event (all events without args)' });
    s.verb('unsubscribe', (req) => this.subscription(req, false), { description: 'Unsubscribes from args.event' });
    s.verb('push', (req) => {
      const a = req.args as { event?: unknown; data?: unknown } | null;
      const name = typeof a?.event === 'string' ? a.event : 'alert';
      const ev = this.events.get(name) ?? this.addEvent(name);
      req.reply({ receivers: ev.push(a?.data ?? null) });
    }, { description: 'Pushes args.data on args.event (created if needed)' });
    s.verb('broadcast', (req) => {
      const a = req.args as { event?: unknown; data?: unknown } | null;
      const name = typeof a?.event === 'string' ? a.event : 'broadcast';
      s.broadcast(name, a?.data ?? null);
      req.reply(null);
    }, { description: 'Broadcasts args.data as api/args.event to every client' });
    s.verb('info', (req) => {
      req.reply({
        api: s.api,
        verbs: s.verbNames(),
        events: [...this.events.keys()],
        uptime_ms: Date.now() - this.started,
        session: req.session.uuid,
        token: req.token,
        creds: req.creds ?? null,
      });
    }, { description: 'Describes the simulator and how it sees the caller' });
  }

  private addEvent(name: string): ServerEvent {
    const ev = this.server.event(name);
    this.events.set(name, ev);
    return ev;
  }

  private subscription(req: Request, on: boolean): void {
    const names = eventNameArg(req);
    if (typeof names === 'string') {
      req.fail('invalid-args', names);
      return;
    }
    for (const name of names) {
      const ev = this.events.get(name);
      if (ev === undefined) {
        req.fail('invalid-args', `unknown event '${name}' (known: ${[...this.events.keys()].join(', ')})`);
        return;
      }
      if (on) req.subscribe(ev);
      else req.unsubscribe(ev);
    }
    req.reply({ events: names.map((n) => `${this.api}/${n}`) });
  }

  private description(): unknown {
    const paths: Record<string, unknown> = {};
    for (const v of this.server.verbNames()) paths[`/${v}`] = { get: { responses: { 200: { description: v } } } };
    return {
      openapi: '3.0.0',
      info: { title: this.api, version: '1.0.0', description: 'afb-edge simulated binder' },
      paths,
    };
  }
}
