/**
 * Capped exponential backoff with "equal jitter": the n-th delay is drawn in
 * [d/2, d] with d = min(max, initial * 2^n). The random half spreads a fleet
 * that lost the same broker at the same moment, so the broker is not hit by
 * every board in the same millisecond when it comes back; the fixed half
 * keeps a lower bound so a board never retries in a tight loop.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Delay before the next attempt; each call doubles the base up to the cap. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt);
    if (base < this.maxMs) this.attempt++;
    return Math.round(base / 2 + (this.random() * base) / 2);
  }

  /** Back to the initial delay (after a connection that held). */
  reset(): void {
    this.attempt = 0;
  }
}
