/**
 * The browsers: accepts WebSocket connections (after the server's access
 * checks), reads what each asks for, hands it changes, and flushes all of
 * them on two timers (rows and events `uiRate` times a second, fleet
 * activity `activityRate` times). At most `maxClients` browsers; a message
 * from a browser is at most MAX_CLIENT_MESSAGE bytes (ws closes 1009 above)
 * and must be one of protocol.ts's ClientMessage, else it is refused with a
 * notice, counted and logged (rate-limited).
 */
import { WebSocketServer, type WebSocket } from 'ws';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { RateLimitedLog, type Logger } from '../../util/log.js';
import type { CommandConsole } from './commands.js';
import type { DashboardMetrics } from './metrics.js';
import type { ClientMessage, ServerMessage } from './protocol.js';
import { BrowserSession, type FleetSource, type SessionLimits } from './session.js';

export const MAX_CLIENT_MESSAGE = 512 * 1024;

export interface HubOptions {
  uiRate: number;
  activityRate: number;
  maxClients: number;
  limits: SessionLimits;
  fleet: FleetSource;
  commands: CommandConsole;
  metrics: DashboardMetrics;
  logger: Logger;
  hello(): Extract<ServerMessage, { t: 'hello' }>;
}

export class Hub {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_MESSAGE, perMessageDeflate: false });
  private readonly sessions = new Set<BrowserSession>();
  private readonly timers: NodeJS.Timeout[];
  private readonly badLog: RateLimitedLog;

  constructor(private readonly options: HubOptions) {
    this.badLog = new RateLimitedLog((m) => options.logger.warn(m));
    this.timers = [
      setInterval(() => this.each((s, now) => s.flush(now)), Math.round(1000 / options.uiRate)),
      setInterval(() => this.each((s, now) => s.flushActivity(now)), Math.round(1000 / options.activityRate)),
    ];
  }

  get clients(): number {
    return this.sessions.size;
  }

  /** Takes over an upgrade request the server has already checked. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (this.sessions.size >= this.options.maxClients) return false;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
    return true;
  }

  rowChanged(device: string): void {
    for (const s of this.sessions) s.rowChanged(device);
  }

  rowRemoved(device: string): void {
    for (const s of this.sessions) s.rowRemoved(device);
  }

  activityChanged(device: string): void {
    for (const s of this.sessions) s.activityChanged(device);
  }

  event(device: string, json: string): void {
    for (const s of this.sessions) s.event(device, json);
  }

  broadcast(msg: ServerMessage): void {
    for (const s of this.sessions) s.send(msg);
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private each(f: (s: BrowserSession, now: number) => void): void {
    const now = Date.now();
    for (const s of this.sessions) f(s, now);
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const session = new BrowserSession(ws, this.options.fleet, this.options.limits, this.options.metrics);
    const who = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    this.sessions.add(session);
    this.options.metrics.clients.set(this.sessions.size);
    session.send(this.options.hello());
    ws.on('message', (data, isBinary) => {
      const msg = isBinary ? undefined : parseClientMessage(data.toString());
      if (msg === undefined) {
        this.options.metrics.refused.inc({ reason: 'message' });
        this.badLog.log(`monitor: browser ${who}: message refused (not a dashboard request): ${data.toString().slice(0, 80)}`);
        session.send({ t: 'notice', level: 'warn', text: 'message refused: not a dashboard request' });
        return;
      }
      if (msg.t === 'view') session.show(msg.view === 'device' ? { kind: 'device', device: msg.device } : { kind: msg.view });
      else this.options.commands.call(session, msg);
    });
    ws.on('error', (err) => this.badLog.log(`monitor: browser ${who}: ${err.message}`));
    ws.on('close', () => {
      this.sessions.delete(session);
      this.options.commands.forget(session);
      this.options.metrics.clients.set(this.sessions.size);
    });
  }
}

const isStr = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

/** A browser's message, checked field by field; undefined when it is not one. */
export function parseClientMessage(text: string): ClientMessage | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof m !== 'object' || m === null) return undefined;
  const o = m as Record<string, unknown>;
  if (o.t === 'view') {
    if (o.view === 'fleet' || o.view === 'none') return { t: 'view', view: o.view };
    if (o.view === 'device' && isStr(o.device, 256) && o.device !== '') return { t: 'view', view: 'device', device: o.device };
    return undefined;
  }
  if (o.t === 'call' && isStr(o.id, 64) && isStr(o.device, 256) && isStr(o.binder, 256) && isStr(o.verb, 256) && isStr(o.args, MAX_CLIENT_MESSAGE)) {
    return { t: 'call', id: o.id, device: o.device, binder: o.binder, verb: o.verb, args: o.args };
  }
  return undefined;
}
