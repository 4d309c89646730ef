/**
 * The process metrics (CPU, RSS, file descriptors, handles, heap, event-loop
 * lag, Node version): prom-client's own collectors, registered one by one,
 * for all that `collectDefaultMetrics` measures but two.
 *
 * - Not its GC histogram, nodejs_gc_duration_seconds: it observes every
 *   garbage collection through a PerformanceObserver, and Node 20 builds
 *   each GC entry with a Map and four deprecate()d accessors (DEP0152),
 *   which live long enough to be promoted. At 1,000 events/s that was most
 *   of what reached the old generation (V8's sampling heap profiler,
 *   objects kept past minor collections: 1.3 of 1.9 MB sampled in 40 s),
 *   and the agent's RSS climbed from 59.4 to 66.6 MB over two and a half
 *   minutes instead of staying at 60-61 MB (the agent fed 1,000 events/s
 *   for 150 s, RSS read every 5 s, with and without this metric;
 *   `bench:bridge -- --rate-seconds 150` shows the plateau). GC pauses
 *   still show as event-loop lag.
 * - Its event-loop lag collector is replaced by the same eight gauges
 *   (registerEventLoopLag below), fed from event-loop-delay.ts instead of
 *   perf_hooks: that file says why.
 */
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap.js';
import processCpuTotal from 'prom-client/lib/metrics/processCpuTotal.js';
import processHandles from 'prom-client/lib/metrics/processHandles.js';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import processRequests from 'prom-client/lib/metrics/processRequests.js';
import processResources from 'prom-client/lib/metrics/processResources.js';
import processStartTime from 'prom-client/lib/metrics/processStartTime.js';
import version from 'prom-client/lib/metrics/version.js';
import Gauge from 'prom-client/lib/gauge.js';
import type Registry from 'prom-client/lib/registry.js';
import { sharedEventLoopDelay, type DelayWindow } from './event-loop-delay.js';

const COLLECTORS = [
  processCpuTotal, processStartTime, osMemoryHeap, processOpenFileDescriptors, processMaxFileDescriptors,
  processResources, processHandles, processRequests, heapSizeAndUsed, heapSpacesSizeAndUsed, version,
];

/** Registers the process metrics in `registry`, their names prefixed with `prefix`. */
export function registerProcessMetrics(registry: Registry, prefix: string): void {
  for (const register of COLLECTORS) register(registry, { prefix });
  registerEventLoopLag(registry, prefix, sharedEventLoopDelay().openWindow());
}

/**
 * prom-client's event-loop lag gauges, with its names, help texts and
 * values: nodejs_eventloop_lag_seconds, the time a setImmediate() waits at
 * collection, and min, max, mean, stddev, p50, p90 and p99 of the delays
 * recorded since the previous collection, which resets them. The
 * percentiles cover the latest 4,096 turns of the 20 ms timer (82 s).
 */
export function registerEventLoopLag(registry: Registry, prefix: string, delays: DelayWindow): void {
  const gauge = (name: string, help: string, aggregator: 'min' | 'max' | 'average', collect?: () => void): Gauge<string> =>
    new Gauge({ name: `${prefix}nodejs_eventloop_lag_${name}`, help, registers: [registry], aggregator, collect });
  const lag = gauge('seconds', 'Lag of event loop in seconds.', 'average', () => {
    const start = process.hrtime.bigint();
    setImmediate(() => lag.set(Number(process.hrtime.bigint() - start) / 1e9));
    if (delays.count > 0) {
      min.set(delays.min / 1e9);
      max.set(delays.max / 1e9);
      mean.set(delays.mean / 1e9);
      stddev.set(delays.stddev / 1e9);
      const [q50, q90, q99] = delays.percentiles([50, 90, 99]);
      p50.set(q50! / 1e9);
      p90.set(q90! / 1e9);
      p99.set(q99! / 1e9);
    }
    delays.reset();
  });
  const min = gauge('min_seconds', 'The minimum recorded event loop delay.', 'min');
  const max = gauge('max_seconds', 'The maximum recorded event loop delay.', 'max');
  const mean = gauge('mean_seconds', 'The mean of the recorded event loop delays.', 'average');
  const stddev = gauge('stddev_seconds', 'The standard deviation of the recorded event loop delays.', 'average');
  const p50 = gauge('p50_seconds', 'The 50th percentile of the recorded event loop delays.', 'average');
  const p90 = gauge('p90_seconds', 'The 90th percentile of the recorded event loop delays.', 'average');
  const p99 = gauge('p99_seconds', 'The 99th percentile of the recorded event loop delays.', 'average');
}
