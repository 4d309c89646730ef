/**
 * The process metrics (CPU, RSS, file descriptors, handles, heap, event-loop
 * lag, Node version), registered from prom-client's own collectors, one by
 * one: all of `collectDefaultMetrics` but its GC histogram,
 * nodejs_gc_duration_seconds.
 *
 * Why not that one: it observes every garbage collection through a
 * PerformanceObserver, and Node 20 builds each GC entry with a Map and four
 * deprecate()d accessors (DEP0152), which live long enough to be promoted.
 * At 1,000 events/s that was most of what reached the old generation
 * (V8's sampling heap profiler, objects kept past minor collections: 1.3 of
 * 1.9 MB sampled in 40 s), and the agent's RSS climbed from 59.4 to 66.6 MB
 * over two and a half minutes instead of staying at 60-61 MB (the agent fed
 * 1,000 events/s for 150 s, RSS read every 5 s, with and without this
 * metric; `bench:bridge -- --rate-seconds 150` shows the plateau). GC pauses
 * still show as event-loop lag.
 */
import eventLoopLag from 'prom-client/lib/metrics/eventLoopLag.js';
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
import type Registry from 'prom-client/lib/registry.js';

const COLLECTORS = [
  processCpuTotal, processStartTime, osMemoryHeap, processOpenFileDescriptors, processMaxFileDescriptors, eventLoopLag,
  processResources, processHandles, processRequests, heapSizeAndUsed, heapSpacesSizeAndUsed, version,
];

/** Registers the process metrics in `registry`, their names prefixed with `prefix`. */
export function registerProcessMetrics(registry: Registry, prefix: string): void {
  // 20 ms: the event-loop lag histogram's sampling timer, as the systemd watchdog's (src/systemd/watchdog.ts).
  for (const register of COLLECTORS) register(registry, { prefix, eventLoopMonitoringPrecision: 20 });
}
