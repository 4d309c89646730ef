/**
 * The agent as a systemd service (Type=notify): what `afb-edge run` tells
 * the service manager and when.
 *
 *  - READY=1 once agent.start() resolved: the config is valid, the outbox is
 *    open, and every connection is up or being retried with backoff (a
 *    broker or binder that is down at boot is not a failed start: the agent
 *    is doing its job, buffering on disk). "ready in N ms" (time since the
 *    process started) is logged at that moment.
 *  - STATUS= whenever the one-line summary changes ("mqtt connected, 2/2
 *    binders, outbox 0"), checked every 2 s: `systemctl status` shows it.
 *  - WATCHDOG=1 at half of WATCHDOG_USEC while healthy (watchdog.ts).
 *  - RELOADING=1 with MONOTONIC_USEC on SIGHUP, READY=1 when the reload is
 *    done (applied or rejected: either way the agent runs a valid config).
 *    That is the protocol of Type=notify-reload (systemd >= 253) and also
 *    what a Type=notify service with ExecReload=kill -HUP reports.
 *  - STOPPING=1 before draining; the drain has a deadline below
 *    TimeoutStopSec so that the agent exits by itself rather than being
 *    SIGKILLed.
 *
 * Without NOTIFY_SOCKET (run by hand, tests) all of it is a no-op except
 * the "ready in" log line and the stop deadline.
 */
import type { AgentMetrics } from '../health/metrics.js';
import type { Logger } from '../util/log.js';
import { SystemdNotifier } from './notify.js';
import { Watchdog, watchdogUsecFromEnv, type HealthCheck } from './watchdog.js';

/** What the service needs from the agent: read-only. */
export interface ServiceAgent {
  health(): Record<string, unknown>;
  readonly metrics: AgentMetrics;
}

export interface ServiceOptions {
  logger: Logger;
  /** Default process.env; NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are removed from it. */
  env?: NodeJS.ProcessEnv;
  /** How often STATUS= is recomputed (sent only when it changed; default 2000 ms). */
  statusIntervalMs?: number;
  /** Drain deadline (default AFB_EDGE_STOP_TIMEOUT_S from env, else 10 s). */
  stopTimeoutMs?: number;
  /** Watchdog: connected, outbox not empty, nothing acknowledged for this long = stuck (default 120 s). */
  stuckAfterMs?: number;
  /** Watchdog event-loop bound (default: see watchdog.ts). */
  lagBoundMs?: number;
}

export const DEFAULT_STOP_TIMEOUT_S = 10;

/** States in health() that count as up: binders say connected, serial links open. */
const UP_STATES = new Set(['connected', 'open']);

export class SystemdService {
  readonly notifier: SystemdNotifier;
  readonly stopTimeoutMs: number;
  private readonly log: Logger;
  private readonly statusIntervalMs: number;
  private readonly stuckAfterMs: number;
  private readonly watchdogUsec: number | undefined;
  private readonly lagBoundMs: number | undefined;
  private agent: ServiceAgent | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private lastStatus = '';
  private phase: 'starting' | 'running' | 'reloading' | 'stopping' = 'starting';
  private watchdogInstance: Watchdog | undefined;

  constructor(options: ServiceOptions) {
    const env = options.env ?? process.env;
    this.log = options.logger;
    this.notifier = new SystemdNotifier({ env, logger: options.logger });
    this.watchdogUsec = watchdogUsecFromEnv(env);
    this.statusIntervalMs = options.statusIntervalMs ?? 2000;
    this.stuckAfterMs = options.stuckAfterMs ?? 120_000;
    this.lagBoundMs = options.lagBoundMs;
    this.stopTimeoutMs = options.stopTimeoutMs ?? stopTimeoutFromEnv(env, this.log);
  }

  /** The running watchdog, once ready() started it (undefined without WATCHDOG_USEC). */
  get watchdog(): Watchdog | undefined {
    return this.watchdogInstance;
  }

  /** READY=1 with the first STATUS=, logs "ready in N ms", starts STATUS= updates and the watchdog. */
  async ready(agent: ServiceAgent): Promise<void> {
    this.agent = agent;
    this.notifier.onFailure = () => agent.metrics.errors.inc({ component: 'systemd' });
    const status = await this.safeStatus();
    if (this.phase !== 'starting') return; // a signal came first: stopping says it all
    this.phase = 'running';
    // Read when READY=1 goes out, not after: on a loaded host the manager may act on it first.
    const ms = Math.round(process.uptime() * 1000);
    // CPU time too: on a busy board (or CI) wall time mostly measures the neighbours.
    const cpu = process.cpuUsage();
    const ok = this.notifier.send({ READY: 1, STATUS: status });
    this.lastStatus = status;
    const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
    const how = !this.notifier.enabled ? 'no NOTIFY_SOCKET' : ok ? `READY=1 sent to ${this.notifier.address}` : `READY=1 not delivered to ${this.notifier.address}`;
    this.log.info(`systemd: ready in ${ms} ms, cpu ${cpuMs} ms (${how})`);
    if (this.notifier.enabled) {
      this.statusTimer = setInterval(() => void this.updateStatus(), this.statusIntervalMs);
      this.statusTimer.unref();
    }
    if (this.watchdogUsec !== undefined && this.notifier.enabled) {
      this.watchdogInstance = new Watchdog({
        notifier: this.notifier,
        intervalUs: this.watchdogUsec,
        check: pipelineCheck(agent.metrics, this.stuckAfterMs),
        lagBoundMs: this.lagBoundMs,
        logger: this.log,
      });
      this.watchdogInstance.start();
      this.log.info(`systemd: watchdog every ${this.watchdogInstance.periodMs} ms (WATCHDOG_USEC=${this.watchdogUsec}), event-loop bound ${Math.round(this.watchdogInstance.lagBoundMs)} ms`);
    }
  }

  /** SIGHUP received: RELOADING=1 with the CLOCK_MONOTONIC time systemd checks it against. */
  reloading(): void {
    if (this.phase !== 'running') return; // before READY=1 there is nothing to reload from, after STOPPING=1 nothing to come back to
    this.phase = 'reloading';
    // process.hrtime is libuv's uv_hrtime: CLOCK_MONOTONIC on Linux, the clock MONOTONIC_USEC means.
    this.notifier.send({ RELOADING: 1, MONOTONIC_USEC: process.hrtime.bigint() / 1000n, STATUS: 'reloading the configuration' });
  }

  /** Reload done (applied or rejected): READY=1 again, with a fresh STATUS=. */
  async reloaded(note?: string): Promise<void> {
    if (this.phase !== 'reloading') return;
    this.phase = 'running';
    let status = await this.safeStatus();
    if (note !== undefined) status += ` (${note})`;
    this.notifier.send({ READY: 1, STATUS: status });
    this.lastStatus = status;
  }

  /** SIGTERM/SIGINT: STOPPING=1 first, so systemd shows "deactivating" while the outbox drains. */
  stopping(signal: string): void {
    this.phase = 'stopping';
    clearInterval(this.statusTimer);
    this.watchdogInstance?.stop();
    this.notifier.send({ STOPPING: 1, STATUS: `stopping (${signal}): draining to the broker, closing the outbox` });
  }

  /**
   * Runs the drain with the deadline. Past the deadline it logs and exits
   * the process (status 1) instead of resolving: what
   * the outbox accepted is already committed to disk (see outbox.ts: it
   * survives even kill -9), and exiting by ourselves beats the SIGKILL that
   * TimeoutStopSec would send a moment later.
   */
  async drain(stop: () => Promise<void>): Promise<void> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.stopTimeoutMs);
    });
    try {
      const outcome = await Promise.race([stop().then(() => 'done' as const), deadline]);
      if (outcome === 'late') {
        this.log.error(`systemd: stop did not finish within ${this.stopTimeoutMs} ms (AFB_EDGE_STOP_TIMEOUT_S): exiting now; undelivered messages stay in the outbox`);
        this.notifier.close();
        process.exit(1);
      }
      this.log.info(`systemd: stopped in ${Date.now() - started} ms`);
    } finally {
      clearTimeout(timer);
      this.notifier.close();
    }
  }

  /**
   * statusLine() that cannot reject: it runs inside the reload chain and
   * timers, where a rejection would stall later reloads.
   */
  private async safeStatus(): Promise<string> {
    try {
      return await this.statusLine();
    } catch (err) {
      return `running (status unavailable: ${(err as Error).message})`;
    }
  }

  /** The one-line state for STATUS=. */
  async statusLine(): Promise<string> {
    const agent = this.agent;
    if (agent === undefined) return 'starting';
    const h = agent.health();
    const parts = [`mqtt ${String(h.mqtt ?? 'unknown')}`];
    // Every map of name -> state in health() (binders, serial links...) as "up/total name",
    // so a part added to health() shows here without touching this file.
    for (const [key, value] of Object.entries(h)) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) continue;
      const states = Object.values(value as Record<string, unknown>);
      if (states.length === 0 || !states.every((s) => typeof s === 'string')) continue;
      parts.push(`${states.filter((s) => UP_STATES.has(s as string)).length}/${states.length} ${key}`);
    }
    parts.push(`outbox ${await gaugeValue(agent.metrics.outboxDepth)}`);
    return parts.join(', ');
  }

  private async updateStatus(): Promise<void> {
    if (this.phase !== 'running') return;
    const status = await this.safeStatus();
    if (status === this.lastStatus || this.phase !== 'running') return;
    this.lastStatus = status;
    this.notifier.send({ STATUS: status });
  }
}

/**
 * The pipelines' health for the watchdog: the MQTT side is stuck when it is
 * connected, has messages waiting in the outbox, and none left the outbox
 * for `stuckAfterMs` (acknowledged, or refused by an MQTT 5 broker, which
 * also takes it out of the queue). Disconnected is not stuck: the sink is
 * retrying with backoff and restarting the agent would not bring a broker
 * back (it would only lose the QoS 0 queue). A connection that stopped
 * answering is dropped by MQTT keepalive well within the bound, so what
 * remains is a wedged publisher, which a restart does cure.
 */
export function pipelineCheck(metrics: AgentMetrics, stuckAfterMs: number, now: () => number = Date.now): HealthCheck {
  let lastAcked = -1;
  let lastProgress = now();
  return async () => {
    const connected = (await gaugeValue(metrics.mqttConnected)) === 1;
    const depth = await gaugeValue(metrics.outboxDepth);
    const acked = await counterSum(metrics.published, (labels) => labels.qos !== '0')
      + await counterSum(metrics.dropped, (labels) => labels.reason === 'broker_rejected');
    if (acked !== lastAcked || !connected || depth === 0) {
      lastAcked = acked;
      lastProgress = now();
      return undefined;
    }
    const idle = now() - lastProgress;
    if (idle >= stuckAfterMs) return `MQTT publishing stuck: connected, ${depth} message(s) in the outbox, none delivered for ${Math.round(idle / 1000)} s`;
    return undefined;
  };
}

type MetricGetter = { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string | number | undefined> }> }> };

async function gaugeValue(metric: MetricGetter): Promise<number> {
  const { values } = await metric.get();
  return values[0]?.value ?? 0;
}

async function counterSum(metric: MetricGetter, keep: (labels: Record<string, string | number | undefined>) => boolean): Promise<number> {
  const { values } = await metric.get();
  return values.filter((v) => keep(v.labels)).reduce((sum, v) => sum + v.value, 0);
}

function stopTimeoutFromEnv(env: NodeJS.ProcessEnv, log: Logger): number {
  const text = env.AFB_EDGE_STOP_TIMEOUT_S;
  if (text === undefined || text === '') return DEFAULT_STOP_TIMEOUT_S * 1000;
  const s = Number(text);
  if (!Number.isFinite(s) || s <= 0) {
    log.warn(`systemd: AFB_EDGE_STOP_TIMEOUT_S=${text} is not a positive number of seconds: using ${DEFAULT_STOP_TIMEOUT_S}`);
    return DEFAULT_STOP_TIMEOUT_S * 1000;
  }
  return Math.round(s * 1000);
}
