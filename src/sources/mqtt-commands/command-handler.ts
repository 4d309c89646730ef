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
import { parseCommandRequest, replyPayload, type ReplyAddress, type RequestProperties } from './command-request.js';
import { replyTopicCheck, type ReplyTopicCheck } from './reply-topics.js';

/** What the handler needs from the MQTT side (MqttSink provides it). */
export interface CommandTransport {
  subscribe(filter: string, qos: 0 | 1 | 2, handler: (topic: string, payload: Buffer, packet: CommandPacket) => void): void;
  publishNow(topic: string, payload: Buffer, options: { qos: 0 | 1 | 2; retain: boolean; properties?: Record<string, unknown> }): void;
}

export interface CommandPacket {
  properties?: RequestProperties;
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
  argsText: string;
  subscribe: boolean;
  reply: (r: Reply) => void;
}

export class CommandHandler {
  private allowed: Array<{ binder: string; verb: (v: string) => boolean }> = [];
  private readonly queue: Job[] = [];
  private running = 0;
  private readonly refusals: RateLimitedLog;

  private replyTopicProblem!: ReplyTopicCheck;

  constructor(
    private config: CommandsConfig,
    /**
     * Request topic base and default reply topic base, templates already
     * resolved; `own`: the topics (and prefixes) the agent publishes
     * under, which no reply may name (./reply-topics.ts).
     */
    private readonly topics: { request: string; reply: string; own?: readonly string[] },
    private readonly targets: (binder: string) => CommandTarget | undefined,
    private readonly deps: { metrics: AgentMetrics; logger: Logger },
  ) {
    this.reconfigure(config, topics.own);
    this.refusals = new RateLimitedLog((m) => deps.logger.warn(m));
  }

  /** New allow-list, limits and own topics (config reload); the request and reply bases are the transport's business. */
  reconfigure(config: CommandsConfig, own: readonly string[] = []): void {
    this.config = config;
    this.replyTopicProblem = replyTopicCheck([this.topics.request, ...own], this.topics.reply);
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
    const req = parseCommandRequest(payload, packet.properties, `${this.topics.reply}/${binder}/${verb}`, this.replyTopicProblem);
    const send = (r: Reply): void => this.sendReply(transport, topic, req.reply, r);
    if (req.invalid !== null) {
      this.deps.metrics.commands.inc({ outcome: 'invalid' });
      this.refusals.log(`commands: invalid request on ${topic}: ${req.invalid}`);
      send({ data: null, error: 'invalid-request', info: req.invalid });
      return;
    }
    if (!this.isAllowed(binder, verb)) {
      this.deps.metrics.commands.inc({ outcome: 'forbidden' });
      this.refusals.log(`commands: forbidden: ${binder}/${verb} is not in commands.allow (request on ${topic})`);
      send({ data: null, error: 'forbidden', info: `${binder}/${verb} is not allowed` });
      return;
    }
    const job: Job = { binder, verb, target: this.targets(binder), args: req.args, argsText: req.argsText, subscribe: req.subscribe, reply: send };
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

  /** Publishes a reply; never throws (a failure is counted and logged, rate-limited). */
  private sendReply(transport: CommandTransport, requestTopic: string, address: ReplyAddress, r: Reply): void {
    try {
      const properties = address.v5 && address.correlationData !== undefined ? { correlationData: address.correlationData } : undefined;
      transport.publishNow(address.topic, replyPayload(address, r), { qos: 1, retain: false, properties });
    } catch (err) {
      this.deps.metrics.errors.inc({ component: 'commands' });
      this.refusals.log(`commands: the reply to the request on ${requestTopic} could not be sent to ${address.topic}: ${(err as Error).message}`);
    }
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
        reply = await job.target.call(job.verb, job.argsText, this.config.timeout_ms);
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
