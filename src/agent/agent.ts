/**
 * The agent: sources (binders, MQTT commands) → router → sinks (MQTT),
 * plus health. It owns their lifecycle and applies configuration reloads
 * without losing buffered messages (the outbox is on disk and outlives the
 * sink that drains it).
 */
import type { AgentConfig } from '../config/types.js';
import type { AgentEvent } from '../core/event.js';
import { AgentMetrics } from '../health/metrics.js';
import { startHealthHttp, type HealthHttp } from '../health/http-server.js';
import { EventRouter } from '../router/event-router.js';
import { MqttSink } from '../sinks/mqtt/mqtt-sink.js';
import { fillTemplate } from '../sinks/mqtt/status.js';
import { BinderSource } from '../sources/binder/binder-source.js';
import { CommandHandler } from '../sources/mqtt-commands/command-handler.js';
import type { Logger } from '../util/log.js';

export interface AgentOptions {
  logger: Logger;
  version: string;
  /** Tests pass their own registry-free metrics; default registers process metrics. */
  metrics?: AgentMetrics;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class Agent {
  readonly metrics: AgentMetrics;
  private config: AgentConfig;
  private router: EventRouter;
  private sink: MqttSink | undefined;
  private commands: CommandHandler | undefined;
  private readonly binders = new Map<string, BinderSource>();
  private http: HealthHttp | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly started = Date.now();

  constructor(config: AgentConfig, private readonly options: AgentOptions) {
    this.config = config;
    this.log = options.logger;
    this.metrics = options.metrics ?? new AgentMetrics();
    this.router = this.makeRouter(config);
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
    await this.startHttp(this.config);
    this.startStatusTimer(this.config);
    this.log.info(`agent: device ${this.config.device.id} started: ${this.config.binders.length} binders, ${this.config.routes.length} routes, commands ${this.config.commands.enabled ? 'on' : 'off'}`);
  }

  async stop(reason = 'shutdown'): Promise<void> {
    clearInterval(this.statusTimer);
    for (const b of this.binders.values()) b.stop();
    this.binders.clear();
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
   */
  async reload(next: AgentConfig): Promise<void> {
    const prev = this.config;
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
      this.commands?.reconfigure(next.commands);
    }

    for (const [name, source] of this.binders) {
      const cfg = next.binders.find((b) => b.name === name);
      if (cfg === undefined || !same(cfg, source.config)) {
        source.stop();
        this.binders.delete(name);
      }
    }
    for (const b of next.binders) if (!this.binders.has(b.name)) this.startBinder(b);

    if (!same(prev.health, next.health)) {
      await this.http?.close();
      this.http = undefined;
      await this.startHttp(next);
    }
    clearInterval(this.statusTimer);
    this.startStatusTimer(next);
    this.log.info(`agent: configuration reloaded (${sinkChanged ? 'MQTT restarted' : 'MQTT kept'})`);
  }

  /** Status of the parts, for /healthz and the health topic. */
  health(): Record<string, unknown> {
    return {
      device: this.config.device.id,
      uptime_s: Math.round((Date.now() - this.started) / 1000),
      mqtt: this.sink?.connected ? 'connected' : 'disconnected',
      binders: Object.fromEntries([...this.binders].map(([n, b]) => [n, b.connected ? 'connected' : 'disconnected'])),
    };
  }

  private makeRouter(config: AgentConfig): EventRouter {
    return new EventRouter(config.routes, { device: config.device, prefix: config.mqtt.topic_prefix }, this.metrics);
  }

  private onEvent(ev: AgentEvent): void {
    const sink = this.sink;
    for (const msg of this.router.route(ev)) {
      if (sink === undefined) {
        this.metrics.dropped.inc({ reason: 'no_sink' });
        continue;
      }
      sink.publish(msg).catch((err: Error) => {
        this.metrics.errors.inc({ component: 'mqtt' });
        this.log.error(`agent: publishing to ${msg.topic} failed: ${err.message}`);
      });
    }
  }

  private async startSink(config: AgentConfig): Promise<void> {
    const sink = new MqttSink(config.mqtt, config.outbox, {
      device: config.device,
      metrics: this.metrics,
      logger: this.log,
      version: this.options.version,
      options: { synchronous: config.outbox.synchronous },
    });
    await sink.start();
    this.sink = sink;
    if (config.commands.enabled) {
      const handler = new CommandHandler(config.commands, {
        request: fillTemplate(config.commands.topic, config.mqtt, config.device),
        reply: fillTemplate(config.commands.reply_topic, config.mqtt, config.device),
      }, (name) => this.binders.get(name), { metrics: this.metrics, logger: this.log });
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
    const body = { ...this.health(), ts: new Date().toISOString(), metrics: await this.metrics.summary() };
    this.sink.publishNow(topic, Buffer.from(JSON.stringify(body)), { qos: 0, retain: true });
  }
}
