/**
 * A native binder as an event source: one wsapi client connection, the
 * configured subscribing calls made after every (re)connection, and every
 * event (pushes and broadcasts) handed to the router.
 */
import { EventEmitter } from 'node:events';
import type { BinderConfig } from '../../config/types.js';
import { makeEvent, type AgentEvent } from '../../core/event.js';
import type { AgentMetrics } from '../../health/metrics.js';
import type { Logger } from '../../util/log.js';
import { WsapiClient, type EventMeta, type Reply } from '../../wsapi/index.js';

export interface BinderSourceDeps {
  metrics: AgentMetrics;
  logger: Logger;
  onEvent: (ev: AgentEvent) => void;
}

interface SubscribeCall { verb: string; args: unknown }

/** On-demand subscriptions (from remote commands) kept per binder, at most. */
export const MAX_ON_DEMAND_SUBSCRIPTIONS = 64;

/**
 * Events: 'up', 'down' (reason) — for the status topic.
 */
export class BinderSource extends EventEmitter {
  readonly name: string;
  private readonly client: WsapiClient;
  private readonly onDemand: SubscribeCall[] = [];
  private lastError = '';
  private stopped = false;

  constructor(readonly config: BinderConfig, private readonly deps: BinderSourceDeps) {
    super();
    this.name = config.name;
    const log = deps.logger;
    this.client = new WsapiClient(config.spec, {
      logger: log,
      label: `binder ${config.name}`,
      reconnect: { initialDelayMs: config.reconnect.initial_delay_ms, maxDelayMs: config.reconnect.max_delay_ms },
    });
    deps.metrics.binderConnected.set({ binder: this.name }, 0);
    // Resolved once, and a plain number per event (hot-counter.ts): a labels lookup per event shows in profiles.
    const eventsIn = deps.metrics.hot(deps.metrics.eventsIn, { source: this.name });
    this.client.on('event', (name: string, data: unknown, meta: EventMeta) => {
      eventsIn.inc();
      deps.onEvent(makeEvent(this.name, name, data, Date.now(), meta.json));
    });
    this.client.on('connect', () => {
      this.lastError = '';
      deps.metrics.binderConnected.set({ binder: this.name }, 1);
      log.info(`binder ${this.name}: connected to ${config.spec}`);
      this.emit('up');
      void this.subscribeAll();
    });
    this.client.on('disconnect', (reason: string) => {
      deps.metrics.binderConnected.set({ binder: this.name }, 0);
      if (!this.stopped) log.warn(`binder ${this.name}: disconnected (${reason}); reconnecting`);
      this.emit('down', reason);
    });
    this.client.on('reconnecting', () => deps.metrics.reconnects.inc({ kind: 'binder', name: this.name }));
    // A call too large for the binder (a remote command's args) is refused with `too-large` before it is
    // sent: the binder would close the connection (1009) and every subscriber would lose events.
    this.client.on('limit', (limit: string) => deps.metrics.wsapiLimited.inc({ endpoint: `binder ${this.name}`, limit }));
    this.client.on('connect_error', (err: Error) => {
      // Logged once per distinct failure, not once per retry.
      if (err.message !== this.lastError) {
        this.lastError = err.message;
        log.warn(`binder ${this.name}: ${err.message}; retrying with backoff`);
        deps.metrics.errors.inc({ component: `binder:${this.name}` });
      }
    });
  }

  get connected(): boolean {
    return this.client.connected;
  }

  start(): void {
    this.stopped = false;
    this.client.start();
  }

  stop(): void {
    this.stopped = true;
    this.client.close();
    this.deps.metrics.binderConnected.set({ binder: this.name }, 0);
  }

  /**
   * A call for a remote command. Args whose call frame would exceed the
   * binder's frame limit (1,048,500 bytes) get error `too-large` at once.
   */
  call(verb: string, argsJson: string, timeoutMs = this.config.call_timeout_ms): Promise<Reply> {
    return this.client.callText(verb, argsJson, { timeout: timeoutMs });
  }

  /**
   * A subscribing call asked for remotely: made now and again after every
   * reconnection, like the configured ones. Bounded in number.
   */
  async subscribeOnDemand(verb: string, args: unknown): Promise<Reply> {
    const known = this.onDemand.some((s) => s.verb === verb && JSON.stringify(s.args) === JSON.stringify(args));
    if (!known && this.onDemand.length >= MAX_ON_DEMAND_SUBSCRIPTIONS) {
      return { data: null, error: 'busy', info: `at most ${MAX_ON_DEMAND_SUBSCRIPTIONS} on-demand subscriptions per binder` };
    }
    const reply = await this.client.call(verb, args, { timeout: this.config.call_timeout_ms });
    if (reply.error === null && !known) this.onDemand.push({ verb, args });
    return reply;
  }

  private async subscribeAll(): Promise<void> {
    for (const s of [...this.config.subscribe, ...this.onDemand]) {
      const reply = await this.client.call(s.verb, s.args, { timeout: this.config.call_timeout_ms });
      if (reply.error !== null) {
        this.deps.metrics.errors.inc({ component: `binder:${this.name}` });
        this.deps.logger.warn(`binder ${this.name}: subscription ${s.verb} ${JSON.stringify(s.args)} failed: ${reply.error}${reply.info ? ` (${reply.info})` : ''}`);
      }
    }
  }
}
