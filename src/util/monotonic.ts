/**
 * Milliseconds on a monotonic clock (process.hrtime), for timing on the
 * agent's data path: a wall clock set at boot (NTP, an RTC-less board)
 * cannot move it.
 *
 * Not performance.now(): the first read of the `performance` global makes
 * Node.js load perf_hooks' internals, ~0.4 MB of RSS in a process that
 * otherwise has no use for them (src/health/event-loop-delay.ts).
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
