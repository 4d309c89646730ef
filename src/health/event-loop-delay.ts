/**
 * Event-loop delay: a timer due every `resolution` ms records how long each
 * of its turns really took. Several readers (the systemd watchdog, the
 * process metrics) each see the delays through a window of their own, which
 * they reset at their own pace; one timer feeds them all.
 *
 * What perf_hooks.monitorEventLoopDelay() measures (the same interval, so
 * the same values: a turn of a 20 ms timer on an idle loop records ~20 ms),
 * without loading perf_hooks: with it (prom-client's eventLoopLag collector
 * and the watchdog each held one) the agent's RSS at 1,000 events/s stayed
 * ~0.8 MB higher (node:perf_hooks pulls ten internal modules and a native
 * histogram into every process that asks for it; bench/bridge.ts and
 * boards/README.md have the figures). The cost here: one JavaScript timer
 * callback per turn, 50 a second.
 */

/** Samples a window keeps for its percentiles: 82 s of turns at 20 ms. */
export const DEFAULT_WINDOW_SAMPLES = 4096;

export interface DelayWindowOptions {
  /**
   * Samples kept for percentile(), the latest ones (a ring): 0 for a reader
   * that only needs count, min, max, mean and stddev, which cover every
   * sample since the last reset.
   */
  samples?: number;
}

/** The delays recorded since this window's last reset, in nanoseconds. */
export class DelayWindow {
  count = 0;
  min = 0;
  max = 0;
  private meanNs = 0;
  /** Sum of squared differences from the mean (Welford). */
  private m2 = 0;
  private readonly ring: Float64Array;
  private next = 0;

  constructor(options: DelayWindowOptions, private readonly onClose: (w: DelayWindow) => void) {
    this.ring = new Float64Array(options.samples ?? DEFAULT_WINDOW_SAMPLES);
  }

  get mean(): number {
    return this.meanNs;
  }

  /** Population standard deviation, as perf_hooks' histogram reports it. */
  get stddev(): number {
    return this.count > 0 ? Math.sqrt(this.m2 / this.count) : 0;
  }

  record(ns: number): void {
    if (this.count === 0 || ns < this.min) this.min = ns;
    if (ns > this.max) this.max = ns;
    this.count++;
    const d = ns - this.meanNs;
    this.meanNs += d / this.count;
    this.m2 += d * (ns - this.meanNs);
    if (this.ring.length > 0) {
      this.ring[this.next] = ns;
      this.next = (this.next + 1) % this.ring.length;
    }
  }

  /**
   * The smallest recorded delay that `p` percent of the kept samples do not
   * exceed (0 when there are none). Over the latest `samples` samples only.
   */
  percentile(p: number): number {
    return this.percentiles([p])[0]!;
  }

  /** percentile() of each of `ps`, from one sorted copy of the kept samples. */
  percentiles(ps: readonly number[]): number[] {
    const n = Math.min(this.count, this.ring.length);
    if (n === 0) return ps.map(() => 0);
    const sorted = this.ring.slice(0, n).sort();
    return ps.map((p) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!);
  }

  reset(): void {
    this.count = 0;
    this.min = 0;
    this.max = 0;
    this.meanNs = 0;
    this.m2 = 0;
    this.next = 0;
  }

  /** Stops feeding this window; the monitor's timer stops with the last one. */
  close(): void {
    this.onClose(this);
  }
}

export class EventLoopDelayMonitor {
  private readonly windows = new Set<DelayWindow>();
  private timer: NodeJS.Timeout | undefined;
  private last = 0n;

  constructor(readonly resolutionMs = 20) {
    if (!Number.isInteger(resolutionMs) || resolutionMs < 1) throw new RangeError(`event-loop delay resolution must be a whole number of ms >= 1, got ${resolutionMs}`);
  }

  /** A new window, fed from now on (the timer starts with the first one). */
  openWindow(options: DelayWindowOptions = {}): DelayWindow {
    const w = new DelayWindow(options, (closed) => this.closeWindow(closed));
    this.windows.add(w);
    if (this.timer === undefined) {
      this.last = process.hrtime.bigint();
      // Unref'd: measuring the loop must not keep a finished process alive.
      this.timer = setInterval(this.turn, this.resolutionMs).unref();
    }
    return w;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  private closeWindow(w: DelayWindow): void {
    this.windows.delete(w);
    if (this.windows.size > 0 || this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private readonly turn = (): void => {
    const now = process.hrtime.bigint();
    const ns = Number(now - this.last);
    this.last = now;
    for (const w of this.windows) w.record(ns);
  };
}

let shared: EventLoopDelayMonitor | undefined;

/** The process's monitor, at 20 ms: the watchdog and the metrics read the same timer. */
export function sharedEventLoopDelay(): EventLoopDelayMonitor {
  return (shared ??= new EventLoopDelayMonitor(20));
}
