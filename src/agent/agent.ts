/**
 * The agent: sources (binders, serial links, MQTT commands) → router →
 * sinks (MQTT, serial links, the exported ecu wsapi API), plus health. It owns their lifecycle and applies configuration reloads
 * without losing buffered messages (the outbox is on disk and outlives the
 * sink that drains it).
 */
import type { BindingInterface } from '@serialport/bindings-cpp';
import type { AgentConfig, SerialLinkConfig } from '../config/types.js';
import type { AgentEvent, LinkDelivery } from '../core/event.js';
import { AgentMetrics } from '../health/metrics.js';
import { startHealthHttp, type HealthHttp } from '../health/http-server.js';
import { EventRouter } from '../router/event-router.js';
import { MqttSink } from '../sinks/mqtt/mqtt-sink.js';
import type { OutboxRecovery } from '../sinks/mqtt/outbox.js';
import { fillTemplate } from '../sinks/mqtt/status.js';
import { deferredSystemBinding } from '../serial/link/binding.js';
import { LinkError } from '../serial/link/link-protocol.js';
import type { LinkState } from '../serial/link/serial-link.js';
import { EcuApi } from '../sinks/ecu-api/ecu-api.js';
import { BinderSource } from '../sources/binder/binder-source.js';
import { CommandHandler } from '../sources/mqtt-commands/command-handler.js';
import { literalTopicPrefix } from '../sources/mqtt-commands/reply-topics.js';
import { SerialSource } from '../sources/serial/serial-source.js';
import { isoTime } from '../util/iso-time.js';
import { RateLimitedLog, type Logger } from '../util/log.js';

export interface AgentOptions {
  logger: Logger;
  version: string;
  /** Tests pass their own registry-free metrics; default registers process metrics. */
  metrics?: AgentMetrics;
  /** serialport binding for the links; default: the system's (loaded only when links are configured). */
  serialBinding?: BindingInterface;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The topics the agent publishes under (status and its links, health, each route's literal levels): no command reply may name them. */
function ownTopics(config: AgentConfig): string[] {
  const fill = (t: string) => fillTemplate(t, config.mqtt, config.device);
  return [fill(config.mqtt.status_topic), fill(config.health.topic), ...config.routes.filter((r) => r.link === undefined).map((r) => literalTopicPrefix(fill(r.topic)))];
}

/** A reload that failed while being applied; `restored`: the previous configuration runs again. */
export class ReloadError extends Error {
  constructor(readonly reason: string, readonly restored: boolean, readonly restoreFailure?: string) {
    super(restored ? reason : `${reason}; restoring the previous configuration failed too: ${restoreFailure}`);
    this.name = 'ReloadError';
  }
}

export class Agent {
  readonly metrics: AgentMetrics;
  private config: AgentConfig;
  private router: EventRouter;
  private sink: MqttSink | undefined;
  private commands: CommandHandler | undefined;
  private readonly binders = new Map<string, BinderSource>();
  private readonly links = new Map<string, SerialSource>();
  private ecuApi: EcuApi | undefined;
  private readonly toLinks: LinkDelivery[] = [];
  private readonly linkDropLog: RateLimitedLog;
  /** The last state published per link ("state\0reason"): a device missing for hours is one message, not one per reopen attempt. */
  private readonly linkPublished = new Map<string, string>();
  private http: HealthHttp | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  /** What the outbox recovered or lost at this start: kept across reloads that restart the sink, reported until the process ends. */
  private outboxRecovery: OutboxRecovery | undefined;
  private readonly log: Logger;
  private readonly started = Date.now();

  constructor(config: AgentConfig, private readonly options: AgentOptions) {
    this.config = config;
    this.log = options.logger;
    this.metrics = options.metrics ?? new AgentMetrics();
    this.router = this.makeRouter(config);
    this.linkDropLog = new RateLimitedLog((m) => this.log.warn(m));
  }

  get currentConfig(): AgentConfig {
    return this.config;
  }

  /** The Prometheus endpoint's address, when enabled. */
  get healthAddress(): { host: string; port: number } | undefined {
    return this.http?.address;
  }

  async start(): Promise<void> {
    await this.startSink(this.config);
    for (const b of this.config.binders) this.startBinder(b);
    for (const l of this.config.serial.links) this.startLink(l);
    await this.startEcuApi(this.config);
    await this.startHttp(this.config);
    this.startStatusTimer(this.config);
    const c = this.config;
    this.log.info(`agent: device ${c.device.id} started: ${c.binders.length} binders, ${c.serial.links.length} serial links, ${c.routes.length} routes, commands ${c.commands.enabled ? 'on' : 'off'}${this.ecuApi ? `, api ${this.ecuApi.api} exported` : ''}`);
  }

  async stop(reason = 'shutdown'): Promise<void> {
    clearInterval(this.statusTimer);
    for (const b of this.binders.values()) b.stop();
    this.binders.clear();
    await this.ecuApi?.close();
    this.ecuApi = undefined;
    await Promise.all([...this.links.values()].map((l) => l.stop()));
    this.links.clear();
    await this.http?.close();
    this.http = undefined;
    await this.sink?.stop(reason);
    this.sink = undefined;
    this.log.info(`agent: stopped (${reason})`);
  }

  /**
   * Applies a new, already validated configuration: only what changed is
   * restarted. A new MQTT sink reopens the same outbox, so nothing accepted
   * is lost; route filter state starts afresh.
   *
   * What validation cannot know can still fail here (an address another
   * process holds, an outbox file that cannot be opened): then the previous
   * configuration is applied again, as far as it can be, and a ReloadError
   * says what failed and whether the previous configuration is back.
   */
  async reload(next: AgentConfig): Promise<void> {
    const prev = this.config;
    try {
      await this.apply(prev, next, 'reloaded');
    } catch (err) {
      const why = (err as Error).message;
      this.log.warn(`agent: configuration reload failed (${why}): restoring the previous configuration`);
      try {
        await this.apply(next, prev, 'restored');
      } catch (again) {
        throw new ReloadError(why, false, (again as Error).message);
      }
      throw new ReloadError(why, true);
    }
  }

  /** From `prev` (what runs, perhaps in part) to `next`: what differs is restarted. */
  private async apply(prev: AgentConfig, next: AgentConfig, done: 'reloaded' | 'restored'): Promise<void> {
    this.config = next;
    const router = this.makeRouter(next);
    router.carryOver(this.router);
    this.router = router;

    const sinkChanged = !same(prev.mqtt, next.mqtt) || !same(prev.outbox, next.outbox) || !same(prev.device, next.device)
      || prev.commands.enabled !== next.commands.enabled || prev.commands.topic !== next.commands.topic || prev.commands.reply_topic !== next.commands.reply_topic;
    if (sinkChanged) {
      await this.sink?.stop('reconfiguring');
      this.sink = undefined;
      this.commands = undefined;
      await this.startSink(next);
    } else {
      this.commands?.reconfigure(next.commands, ownTopics(next));
    }

    for (const [name, source] of this.binders) {
      const cfg = next.binders.find((b) => b.name === name);
      if (cfg === undefined || !same(cfg, source.config)) {
        source.stop();
        this.binders.delete(name);
      }
    }
    for (const b of next.binders) if (!this.binders.has(b.name)) this.startBinder(b);

    for (const [name, source] of this.links) {
      const cfg = next.serial.links.find((l) => l.name === name);
      if (cfg === undefined || !same(cfg, source.config)) {
        await source.stop();
        this.links.delete(name);
      }
    }
    for (const l of next.serial.links) if (!this.links.has(l.name)) this.startLink(l);
    if (!same(prev.ecu_api, next.ecu_api)) {
      await this.ecuApi?.close();
      this.ecuApi = undefined;
      await this.startEcuApi(next);
    }

    if (!same(prev.health, next.health)) {
      await this.http?.close();
      this.http = undefined;
      await this.startHttp(next);
    }
    clearInterval(this.statusTimer);
    this.startStatusTimer(next);
    this.log.info(`agent: configuration ${done} (${sinkChanged ? 'MQTT restarted' : 'MQTT kept'})`);
  }

  /** Status of the parts, for /healthz and the health topic. */
  health(): Record<string, unknown> {
    const outbox = this.sink?.outboxRecovery;
    return {
      device: this.config.device.id,
      uptime_s: Math.round((Date.now() - this.started) / 1000),
      mqtt: this.sink?.connected ? 'connected' : 'disconnected',
      binders: Object.fromEntries([...this.binders].map(([n, b]) => [n, b.connected ? 'connected' : 'disconnected'])),
      links: Object.fromEntries([...this.links].map(([n, l]) => [n, l.link.state])),
      // what the outbox recovered or lost at this start, as in the status message
      ...(outbox ? { outbox } : {}),
    };
  }

  /** A running serial link, by name. */
  serialLink(name: string): SerialSource['link'] | undefined {
    return this.links.get(name)?.link;
  }

  private makeRouter(config: AgentConfig): EventRouter {
    return new EventRouter(config.routes, { device: config.device, prefix: config.mqtt.topic_prefix, log: (m) => this.log.warn(`router: ${m}`) }, this.metrics);
  }

  private onEvent(ev: AgentEvent): void {
    const sink = this.sink;
    // One array for every event (the hot path): delivering to a link never routes an event back synchronously.
    const toLinks = this.toLinks;
    toLinks.length = 0;
    const messages = this.router.route(ev, toLinks);
    for (let i = 0; i < toLinks.length; i++) this.deliverToLink(toLinks[i]!);
    toLinks.length = 0;
    for (const msg of messages) {
      if (sink === undefined) {
        this.metrics.dropped.inc({ reason: 'no_sink' });
        continue;
      }
      try {
        sink.submit(msg); // refusals are counted and logged by the sink; nothing here waits for them
      } catch (err) {
        this.metrics.errors.inc({ component: 'mqtt' });
        this.log.error(`agent: publishing to ${msg.topic} failed: ${(err as Error).message}`);
      }
    }
  }

  /** A route's delivery to a serial link: refused sends are counted and logged (rate-limited), never thrown. */
  private deliverToLink(d: LinkDelivery): void {
    const source = this.links.get(d.link);
    try {
      if (source === undefined) throw new LinkError('disconnected', `link ${d.link} is not running`);
      source.link.sendRouted(d);
    } catch (err) {
      const code = err instanceof LinkError ? err.code : 'error';
      this.metrics.dropped.inc({ reason: `link_${code.replaceAll('-', '_')}` });
      this.linkDropLog.log(`agent: route ${d.route}: ${d.event} not sent to link ${d.link}: ${(err as Error).message}`);
    }
  }

  private startLink(config: SerialLinkConfig): void {
    const binding = this.options.serialBinding ?? deferredSystemBinding;
    const source = new SerialSource(config, {
      metrics: this.metrics,
      logger: this.log,
      binding,
      onEvent: (ev) => {
        this.ecuApi?.publish(ev.api, ev.event, ev.data);
        this.onEvent(ev);
      },
    });
    this.linkPublished.delete(config.name);
    source.link.on('state', (state: LinkState, reason: string) => this.publishLinkState(config, state, reason));
    this.links.set(config.name, source);
    source.start();
  }

  /**
   * A link's state as a retained message under the status topic
   * ({status_topic}/links/{link}), through the outbox: a device unplugged
   * while the broker is away is still reported, in order, when it is back.
   * Transitions through opening/initializing are not published, nor the
   * same state with the same reason again (a missing device would publish
   * every backoff step: a retained message, and a flash write, each time).
   */
  private publishLinkState(config: SerialLinkConfig, state: LinkState, reason: string): void {
    if (state === 'opening' || state === 'initializing' || this.sink === undefined) return;
    const key = `${state}\u0000${reason}`;
    if (this.linkPublished.get(config.name) === key) return;
    this.linkPublished.set(config.name, key);
    const topic = `${fillTemplate(this.config.mqtt.status_topic, this.config.mqtt, this.config.device)}/links/${config.name}`;
    const body = { link: config.name, state, reason, device: config.device, protocol: config.protocol, ts: isoTime(Date.now()) };
    this.sink.publish({ topic, payload: Buffer.from(JSON.stringify(body)), qos: 1, retain: true, route: 'link-status' }).catch((err: Error) => {
      this.log.warn(`agent: link ${config.name} state not published: ${err.message}`);
    });
  }

  private async startEcuApi(config: AgentConfig): Promise<void> {
    if (config.ecu_api.listen.length === 0) return;
    const api = new EcuApi(config.ecu_api, { logger: this.log, links: this.links, metrics: this.metrics });
    await api.listen();
    this.ecuApi = api;
  }

  private async startSink(config: AgentConfig): Promise<void> {
    const sink = new MqttSink(config.mqtt, config.outbox, {
      device: config.device,
      metrics: this.metrics,
      logger: this.log,
      version: this.options.version,
      options: { synchronous: config.outbox.synchronous },
      outboxRecovery: this.outboxRecovery,
    });
    await sink.start();
    this.sink = sink;
    this.outboxRecovery = sink.outboxRecovery;
    if (config.commands.enabled) {
      const handler = new CommandHandler(config.commands, {
        request: fillTemplate(config.commands.topic, config.mqtt, config.device),
        reply: fillTemplate(config.commands.reply_topic, config.mqtt, config.device),
        own: ownTopics(config),
      }, (name) => this.binders.get(name) ?? this.links.get(name), { metrics: this.metrics, logger: this.log });
      handler.start({
        subscribe: (filter, qos, fn) => void sink.subscribe(filter, qos, fn),
        publishNow: (topic, payload, opts) => void sink.publishNow(topic, payload, opts),
      });
      this.commands = handler;
    }
  }

  private startBinder(config: AgentConfig['binders'][number]): void {
    const source = new BinderSource(config, { metrics: this.metrics, logger: this.log, onEvent: (ev) => this.onEvent(ev) });
    this.binders.set(config.name, source);
    source.start();
  }

  private async startHttp(config: AgentConfig): Promise<void> {
    if (config.health.http_listen === undefined) return;
    this.http = await startHealthHttp(config.health.http_listen, this.metrics, () => this.health());
    this.log.info(`agent: metrics on http://${config.health.http_listen}/metrics`);
  }

  private startStatusTimer(config: AgentConfig): void {
    const every = config.mqtt.status_interval_s;
    if (every <= 0) return;
    const topic = fillTemplate(config.health.topic, config.mqtt, config.device);
    this.statusTimer = setInterval(() => void this.publishHealth(topic), every * 1000);
    this.statusTimer.unref();
  }

  private async publishHealth(topic: string): Promise<void> {
    if (this.sink === undefined || !this.sink.connected) return;
    const body = { ...this.health(), ts: isoTime(Date.now()), metrics: await this.metrics.summary() };
    this.sink.publishNow(topic, Buffer.from(JSON.stringify(body)), { qos: 0, retain: true });
  }
}
