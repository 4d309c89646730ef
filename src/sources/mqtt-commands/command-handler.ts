/**
 * Remote commands: MQTT requests turned into wsapi calls on a binder, under
 * an allow-list, with the reply published back.
 *
 * Request topic: {commands.topic}/{binder}/{verb}  (e.g. afb-edge/car-042/call/vehicle/ping)
 * MQTT 5:   payload = JSON args; the reply goes to the Response Topic with the
 *           request's Correlation Data; user property `subscribe: true` makes it
 *           an on-demand subscription (re-made after reconnects).
 * MQTT 3.1.1 (or no Response Topic): payload = {"id":…, "reply_to":…, "args":…, "subscribe":bool};
 *           the reply goes to reply_to, else to {commands.reply_topic}/{binder}/{verb}.
 * Reply payload: {"id":… (3.1.1 form), "error": null|code, "info":…, "data":…};
 * local error codes: forbidden, invalid-request, busy, timeout, disconnected.
 */
import picomatch from 'picomatch';
import type { CommandsConfig } from '../../config/types.js';
import type { AgentMetrics } from '../../health/metrics.js';
import { RateLimitedLog, type Logger } from '../../util/log.js';
import type { Reply } from '../../wsapi/index.js';

/** What the handler needs from the MQTT side (MqttSink provides it). */
export interface CommandTransport {
  subscribe(filter: string, qos: 0 | 1 | 2, handler: (topic: string, payload: Buffer, packet: CommandPacket) => void): void;
  publishNow(topic: string, payload: Buffer, options: { qos: 0 | 1 | 2; retain: boolean; properties?: Record<string, unknown> }): void;
}

export interface CommandPacket {
  properties?: { responseTopic?: string; correlationData?: Buffer; userProperties?: Record<string, string | string[]> };
}

/** What the handler needs from a binder (BinderSource provides it). */
export interface CommandTarget {
  call(verb: string, argsJson: string, timeoutMs?: number): Promise<Reply>;
  subscribeOnDemand(verb: string, args: unknown): Promise<Reply>;
}

interface Job {
  binder: string;
  verb: string;
  target: CommandTarget | undefined;
  args: unknown;
  subscribe: boolean;
  reply: (r: Reply) => void;
}

function validReplyTopic(t: unknown): t is string {
  return typeof t === 'string' && t.length > 0 && !t.startsWith('$') && !/[+#\u0000]/.test(t) && Buffer.byteLength(t) <= 65535;
}

export class CommandHandler {
  private allowed: Array<{ binder: string; verb: (v: string) => boolean }> = [];
  private readonly queue: Job[] = [];
  private running = 0;
  private readonly refusals: RateLimitedLog;

  constructor(
    private config: CommandsConfig,
    /** Request topic base and default reply topic base, templates already resolved. */
    private readonly topics: { request: string; reply: string },
    private readonly targets: (binder: string) => CommandTarget | undefined,
    private readonly deps: { metrics: AgentMetrics; logger: Logger },
  ) {
    this.reconfigure(config);
    this.refusals = new RateLimitedLog((m) => deps.logger.warn(m));
  }

  /** New allow-list and limits (config reload); topics are the transport's business. */
  reconfigure(config: CommandsConfig): void {
    this.config = config;
    this.allowed = config.allow.map((a) => ({ binder: a.binder, verb: picomatch(a.verbs, { dot: true }) }));
  }

  start(transport: CommandTransport): void {
    transport.subscribe(`${this.topics.request}/+/+`, 1, (topic, payload, packet) => this.onRequest(transport, topic, payload, packet));
    this.deps.logger.info(`commands: listening on ${this.topics.request}/+/+ (${this.allowed.length} allow rules)`);
  }

  isAllowed(binder: string, verb: string): boolean {
    return this.allowed.some((a) => a.binder === binder && a.verb(verb));
  }

  private onRequest(transport: CommandTransport, topic: string, payload: Buffer, packet: CommandPacket): void {
    const rest = topic.startsWith(this.topics.request + '/') ? topic.slice(this.topics.request.length + 1).split('/') : [];
    const [binder, verb] = rest;
    if (rest.length !== 2 || !binder || !verb) return; // not ours: the filter makes this rare
    const props = packet.properties;
    const v5 = props?.responseTopic !== undefined;
    let id: unknown;
    let replyTo = `${this.topics.reply}/${binder}/${verb}`;
    let args: unknown = null;
    let subscribe = false;
    let invalid: string | null = null;
    try {
      const text = payload.toString('utf8');
      if (v5) {
        args = text.trim() === '' ? null : JSON.parse(text);
        const sub = props!.userProperties?.subscribe;
        subscribe = sub === 'true' || (Array.isArray(sub) && sub.includes('true'));
        if (!validReplyTopic(props!.responseTopic)) invalid = 'response topic is not a valid topic name';
        else replyTo = props!.responseTopic;
      } else {
        const req = text.trim() === '' ? {} : JSON.parse(text);
        if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new Error('the request must be a JSON object {"id", "reply_to", "args"}');
        id = (req as Record<string, unknown>).id;
        args = (req as Record<string, unknown>).args ?? null;
        subscribe = (req as Record<string, unknown>).subscribe === true;
        const r = (req as Record<string, unknown>).reply_to;
        if (r !== undefined) {
          if (!validReplyTopic(r)) invalid = 'reply_to is not a valid topic name';
          else replyTo = r;
        }
      }
    } catch (err) {
      invalid = `payload is not valid JSON: ${(err as Error).message}`;
    }
    const send = (r: Reply): void => {
      const body: Record<string, unknown> = v5 ? {} : { id: id ?? null };
      body.error = r.error;
      body.info = r.info;
      body.data = r.data;
      const properties = v5 && props?.correlationData !== undefined ? { correlationData: props.correlationData } : undefined;
      transport.publishNow(replyTo, Buffer.from(JSON.stringify(body)), { qos: 1, retain: false, properties });
    };
    if (invalid !== null) {
      this.deps.metrics.commands.inc({ outcome: 'invalid' });
      this.refusals.log(`commands: invalid request on ${topic}: ${invalid}`);
      send({ data: null, error: 'invalid-request', info: invalid });
      return;
    }
    if (!this.isAllowed(binder, verb)) {
      this.deps.metrics.commands.inc({ outcome: 'forbidden' });
      this.refusals.log(`commands: forbidden: ${binder}/${verb} is not in commands.allow (request on ${topic})`);
      send({ data: null, error: 'forbidden', info: `${binder}/${verb} is not allowed` });
      return;
    }
    const job: Job = { binder, verb, target: this.targets(binder), args, subscribe, reply: send };
    if (this.running >= this.config.max_concurrent) {
      if (this.queue.length >= this.config.max_queue) {
        this.deps.metrics.commands.inc({ outcome: 'busy' });
        send({ data: null, error: 'busy', info: `more than ${this.config.max_queue} commands waiting` });
        return;
      }
      this.queue.push(job);
      return;
    }
    void this.run(job);
  }

  private async run(job: Job): Promise<void> {
    this.running++;
    try {
      let reply: Reply;
      if (job.target === undefined) {
        reply = { data: null, error: 'disconnected', info: `binder ${job.binder} is not configured` };
      } else if (job.subscribe) {
        reply = await job.target.subscribeOnDemand(job.verb, job.args);
      } else {
        reply = await job.target.call(job.verb, JSON.stringify(job.args) ?? 'null', this.config.timeout_ms);
      }
      this.deps.metrics.commands.inc({ outcome: reply.error === null ? 'ok' : reply.error === 'timeout' ? 'timeout' : 'error' });
      job.reply(reply);
    } catch (err) {
      this.deps.metrics.commands.inc({ outcome: 'error' });
      job.reply({ data: null, error: 'internal-error', info: (err as Error).message });
    } finally {
      this.running--;
      const next = this.queue.shift();
      if (next !== undefined) void this.run(next);
    }
  }
}
