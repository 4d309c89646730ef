/**
 * A counter of the per-event path: inc() adds to a plain number, which is
 * added to its prom-client counter whenever that counter is read (its
 * collect: /metrics, the status summary, tests). prom-client's own label
 * child hashes the label set into a new string and validates it at every
 * inc(); with three counters per event that was ~5 % of the agent's CPU in
 * a QoS 0 burst (bench/bridge.ts profile).
 */
import type Counter from 'prom-client/lib/counter.js';

export class HotCounter {
  private pending = 0;

  constructor(private readonly counter: Counter<string>, private readonly labels: Record<string, string>) {}

  inc(n = 1): void {
    this.pending += n;
  }

  /** Adds what was counted since the last flush to the prom-client counter. */
  flush(): void {
    if (this.pending === 0) return;
    const n = this.pending;
    this.pending = 0;
    this.counter.inc(this.labels, n);
  }
}
