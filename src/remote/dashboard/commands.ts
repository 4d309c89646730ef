/**
 * The command console's calls: a browser's request becomes a remote command
 * on the agent's call topic (MQTT 3.1.1 form, which agents answer on either
 * protocol version), and the reply, matched by an id the monitor makes, goes
 * back to that browser with its latency. The agent's allow-list still
 * decides: a verb it does not allow is answered `forbidden` by the agent.
 *
 * Refused here (an error reply, counted as outcome "refused"): commands not
 * enabled (--allow-commands), a binder or verb that is not one topic level,
 * args that are not JSON or larger than MAX_ARGS_BYTES, more than
 * MAX_PENDING_PER_BROWSER calls waiting for one browser (MAX_PENDING in all).
 * No reply within the timeout: error `timeout` (outcome "timeout").
 */
import { randomBytes } from 'node:crypto';
import { commandRequest, type CommandReply } from '../topics.js';
import type { DashboardMetrics } from './metrics.js';
import type { BrowserSession } from './session.js';

export const MAX_ARGS_BYTES = 256 * 1024;
export const MAX_PENDING_PER_BROWSER = 16;
export const MAX_PENDING = 256;
/** A topic level the agent takes as a binder or verb name: no separator, wildcard or control character. */
const NAME = /^[^/+#\u0000-\u001f\u007f-\u009f]{1,128}$/u;

interface Pending {
  session: BrowserSession;
  browserId: string;
  started: number;
  timer: NodeJS.Timeout;
}

export interface CallRequest {
  id: string;
  device: string;
  binder: string;
  verb: string;
  args: string;
}

export class CommandConsole {
  private readonly pending = new Map<string, Pending>();
  private readonly runId = randomBytes(4).toString('hex');
  private seq = 0;

  constructor(
    private readonly options: {
      enabled: boolean;
      prefix: string;
      timeoutMs: number;
      publish(topic: string, payload: string): Promise<void>;
      metrics: DashboardMetrics;
    },
  ) {}

  get waiting(): number {
    return this.pending.size;
  }

  call(session: BrowserSession, req: CallRequest): void {
    const refuse = (info: string) => {
      this.options.metrics.commands.inc({ outcome: 'refused' });
      session.send({ t: 'reply', id: req.id, error: 'refused', info, latencyMs: 0 });
    };
    if (!this.options.enabled) return refuse('commands are disabled: start the monitor with --allow-commands');
    for (const [what, v] of [['device', req.device], ['binder', req.binder], ['verb', req.verb]] as const) {
      if (!NAME.test(v)) return refuse(`${what} must be one topic level (no '/', '+', '#' or control characters, 1 to 128 characters)`);
    }
    const argsText = req.args.trim() === '' ? 'null' : req.args;
    if (Buffer.byteLength(argsText) > MAX_ARGS_BYTES) return refuse(`args larger than ${MAX_ARGS_BYTES} bytes`);
    try {
      JSON.parse(argsText);
    } catch (err) {
      return refuse(`args are not valid JSON: ${(err as Error).message}`);
    }
    if (session.pendingCalls >= MAX_PENDING_PER_BROWSER || this.pending.size >= MAX_PENDING) return refuse('too many calls waiting for their reply');
    const id = `monitor-${this.runId}-${++this.seq}`;
    const { topic, payload } = commandRequest(this.options.prefix, req.device, req.binder, req.verb, id, argsText);
    const timer = setTimeout(() => this.settle(id, { error: 'timeout', info: `no reply within ${this.options.timeoutMs} ms (monitor)` }, 'timeout'), this.options.timeoutMs);
    this.pending.set(id, { session, browserId: req.id, started: performance.now(), timer });
    session.pendingCalls++;
    this.options.publish(topic, payload).catch((err: Error) => this.settle(id, { error: 'not-sent', info: `publish to ${topic} failed: ${err.message}` }, 'error'));
  }

  /** A reply seen on the bus: true when it answered one of our calls. */
  reply(reply: CommandReply): boolean {
    if (typeof reply.id !== 'string' || !this.pending.has(reply.id)) return false;
    this.settle(reply.id, reply, reply.error === null ? 'ok' : 'error');
    return true;
  }

  /** A browser went away: its calls are forgotten (their replies then match nothing). */
  forget(session: BrowserSession): void {
    for (const [id, p] of this.pending) {
      if (p.session !== session) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
    }
  }

  close(): void {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }

  private settle(id: string, reply: Omit<CommandReply, 'id'>, outcome: string): void {
    const p = this.pending.get(id);
    if (p === undefined) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
    p.session.pendingCalls--;
    this.options.metrics.commands.inc({ outcome });
    p.session.send({ t: 'reply', id: p.browserId, error: reply.error, info: reply.info, data: reply.data, latencyMs: Math.round((performance.now() - p.started) * 10) / 10 });
  }
}
