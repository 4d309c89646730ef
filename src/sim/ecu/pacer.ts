/**
 * Hands out periodic "slots" at a fixed average rate from timer ticks.
 *
 * Why ticks and not one timer per frame: at thousands of frames per second a
 * timer (and a port write) per frame costs more than the frames themselves,
 * and Node timers fire late by a millisecond or more anyway. Each tick
 * instead computes how many slots are due since the start and hands them all
 * out at once (the caller writes them as one batch), so a late tick is
 * caught up by the next one and the average rate stays right.
 */
export interface PacerOptions {
  /** Shortest interval between ticks, ms: the batching granularity at high rates (default 10). */
  minTickMs?: number;
  /**
   * Largest backlog caught up after a stall (a suspended process, a blocked
   * event loop), in ms of output (default 1000): beyond it the schedule
   * moves forward instead of flooding the port with a burst.
   */
  maxLagMs?: number;
  /** Monotonic clock in ms (tests may pass their own). */
  now?: () => number;
}

export class Pacer {
  private readonly minTickMs: number;
  private readonly maxLagMs: number;
  private readonly now: () => number;
  private readonly periodMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Start of the current run, and slots handed out since then. */
  private t0 = 0;
  private sinceStart = 0;

  /**
   * @param rate slots per second (> 0, fractions allowed)
   * @param onDue receives the number of slots due now (≥ 1); it may call stop()
   */
  constructor(readonly rate: number, private readonly onDue: (n: number) => void, options: PacerOptions = {}) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`Pacer: rate must be a positive number, got ${rate}`);
    this.periodMs = 1000 / rate;
    this.minTickMs = options.minTickMs ?? 10;
    this.maxLagMs = options.maxLagMs ?? 1000;
    this.now = options.now ?? (() => performance.now());
  }

  get active(): boolean {
    return this.running;
  }

  /**
   * Starts (or restarts) from now. The time spent stopped is not caught up:
   * after a pause (closed CAN channel, port not draining) output resumes at
   * the normal rate, without a burst.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.t0 = this.now();
    this.sinceStart = 0;
    // The first slot is due at once: a consumer sees data as soon as output starts.
    this.tick();
  }

  /**
   * Continues the schedule of the last start(): slots that fell due while
   * stopped are caught up (at most maxLagMs of them), so a short stall of
   * the consumer (a port that briefly did not drain) does not lower the
   * average rate. Starts afresh when never started.
   */
  resume(): void {
    if (this.running) return;
    if (this.t0 === 0 && this.sinceStart === 0) return this.start();
    this.running = true;
    this.tick();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    this.timer = undefined;
    const elapsed = this.now() - this.t0;
    let due = Math.floor(elapsed / this.periodMs) + 1 - this.sinceStart;
    const maxDue = Math.max(1, Math.ceil(this.maxLagMs / this.periodMs));
    if (due > maxDue) {
      // Drop the part of the backlog older than maxLagMs by moving the schedule forward.
      this.sinceStart += due - maxDue;
      due = maxDue;
    }
    if (due > 0) {
      this.sinceStart += due;
      this.onDue(due);
    }
    if (!this.running) return;
    const nextDueAt = this.sinceStart * this.periodMs; // slot k (0-based) is due at k × period
    const delay = Math.max(this.minTickMs, nextDueAt - (this.now() - this.t0));
    this.timer = setTimeout(() => this.tick(), delay);
  }
}
