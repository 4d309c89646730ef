/**
 * The systemd watchdog (WatchdogSec= in the unit): systemd restarts the
 * service when it gets no WATCHDOG=1 within WATCHDOG_USEC. The agent pings
 * at half that interval, and only while it is healthy:
 *
 *  1. the event loop is responsive: the worst event-loop delay seen since
 *     the previous ping (src/health/event-loop-delay.ts, the 20 ms timer
 *     the process metrics read too) is under `lagBoundMs` — by default a
 *     quarter of the interval, at most 5 s;
 *  2. the pipelines are not stuck: the `check` function (see pipelineCheck
 *     in service.ts) returns no reason.
 *
 * One unhealthy half-interval withholds one ping, which systemd tolerates
 * (the next one is still in time); only a condition lasting a whole
 * interval gets the agent restarted. A loop blocked outright sends nothing
 * at all, which is the case the watchdog exists for.
 */
import { sharedEventLoopDelay, type DelayWindow } from '../health/event-loop-delay.js';
import type { Logger } from '../util/log.js';
import type { SystemdNotifier } from './notify.js';

/** Returns why the agent is not healthy, or undefined when it is. */
export type HealthCheck = () => string | undefined | Promise<string | undefined>;

/**
 * WATCHDOG_USEC in microseconds when the watchdog applies to this process,
 * as sd_watchdog_enabled() decides: set, a positive integer, and
 * WATCHDOG_PID unset or equal to our pid (a variable inherited from a parent
 * service is not ours). Both variables are removed from `env` by default so
 * that children do not inherit them.
 */
export function watchdogUsecFromEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid, unsetEnvironment = true): number | undefined {
  const usecText = env.WATCHDOG_USEC;
  const pidText = env.WATCHDOG_PID;
  if (unsetEnvironment) {
    delete env.WATCHDOG_USEC;
    delete env.WATCHDOG_PID;
  }
  if (usecText === undefined || !/^[0-9]+$/.test(usecText)) return undefined;
  const usec = Number(usecText);
  if (!Number.isSafeInteger(usec) || usec <= 0) return undefined;
  if (pidText !== undefined && pidText !== '' && Number(pidText) !== pid) return undefined;
  return usec;
}

export interface WatchdogOptions {
  notifier: SystemdNotifier;
  /** WATCHDOG_USEC. */
  intervalUs: number;
  /** The pipelines' health (default: always healthy). */
  check?: HealthCheck;
  /** Largest tolerated event-loop delay between two pings (default min(5 s, interval / 4)). */
  lagBoundMs?: number;
  logger?: Logger;
}

export class Watchdog {
  /** WATCHDOG=1 sent. */
  pings = 0;
  /** Pings withheld because the agent was not healthy. */
  withheld = 0;
  /** Why the last ping was withheld; undefined once healthy again. */
  unhealthy: string | undefined;

  readonly periodMs: number;
  readonly lagBoundMs: number;
  /** Open while running: only the worst delay is wanted, no samples are kept. */
  private delays: DelayWindow | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly options: WatchdogOptions) {
    const intervalMs = options.intervalUs / 1000;
    this.periodMs = Math.max(1, Math.floor(intervalMs / 2));
    this.lagBoundMs = options.lagBoundMs ?? Math.min(5000, intervalMs / 4);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.delays = sharedEventLoopDelay().openWindow({ samples: 0 });
    // A first ping at once: systemd starts counting when READY=1 arrives.
    void this.tick();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.delays?.close();
    this.delays = undefined;
  }

  /** Sends WATCHDOG=1 if healthy, then schedules the next tick. */
  private async tick(): Promise<void> {
    const reason = this.lagReason() ?? (await this.pipelineReason());
    if (!this.running) return; // stopped while the check ran
    if (reason === undefined) {
      if (this.unhealthy !== undefined) this.options.logger?.info(`systemd: healthy again, watchdog pings resumed (was: ${this.unhealthy})`);
      this.unhealthy = undefined;
      if (this.options.notifier.send({ WATCHDOG: 1 })) this.pings++;
    } else {
      this.withheld++;
      if (this.unhealthy === undefined) this.options.logger?.warn(`systemd: watchdog ping withheld: ${reason}; systemd restarts the agent if this lasts ${this.periodMs * 2} ms`);
      this.unhealthy = reason;
    }
    // setTimeout, not setInterval: a slow check can never make ticks overlap. Unref'd: the
    // watchdog alone must not keep a finished process alive.
    this.timer = setTimeout(() => void this.tick(), this.periodMs);
    this.timer.unref();
  }

  private lagReason(): string | undefined {
    // Delays are recorded only while the loop turns, so a long block shows up as one huge sample
    // when it ends; max is in nanoseconds (0 when nothing was recorded yet).
    const worstMs = (this.delays?.max ?? 0) / 1e6;
    this.delays?.reset();
    if (worstMs > this.lagBoundMs) return `event loop blocked for ${Math.round(worstMs)} ms (bound ${Math.round(this.lagBoundMs)} ms)`;
    return undefined;
  }

  private async pipelineReason(): Promise<string | undefined> {
    if (this.options.check === undefined) return undefined;
    try {
      return await this.options.check();
    } catch (err) {
      return `health check failed: ${(err as Error).message}`;
    }
  }
}
