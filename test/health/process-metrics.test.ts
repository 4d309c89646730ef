/**
 * The process metrics: prom-client's own collectors, all those
 * collectDefaultMetrics registers but its GC histogram, and its event-loop
 * lag gauges fed without perf_hooks (why: src/health/process-metrics.ts).
 */
import collectDefaultMetrics from 'prom-client/lib/defaultMetrics.js';
import Registry from 'prom-client/lib/registry.js';
import { expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { registerProcessMetrics } from '../../src/health/process-metrics.js';

const names = async (registry: Registry) => (await registry.getMetricsAsJSON()).map((m) => m.name).sort();

it("registers every one of prom-client's default process metrics but nodejs_gc_duration_seconds", async () => {
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults, prefix: 'x_' });
  const ours = new Registry();
  registerProcessMetrics(ours, 'x_');
  const all = await names(defaults);
  expect(all).toContain('x_nodejs_gc_duration_seconds');
  // A collector prom-client adds in a later version fails this until chosen here.
  expect(await names(ours)).toEqual(all.filter((n) => n !== 'x_nodejs_gc_duration_seconds'));
  const text = await ours.metrics();
  expect(text).toMatch(/^x_process_resident_memory_bytes \d+$/m);
  expect(text).toMatch(/^x_nodejs_eventloop_lag_p99_seconds [\d.e-]+$/m);
  expect(text).toMatch(/^x_nodejs_heap_space_size_used_bytes\{space="old"\} \d+$/m);
});

it("the agent's registry has them under afb_edge_, without the GC histogram", async () => {
  const metrics = new AgentMetrics();
  await metrics.collectProcessMetrics();
  const text = await metrics.text();
  expect(text).toMatch(/^afb_edge_process_cpu_seconds_total [\d.e-]+$/m);
  expect(text).toMatch(/^afb_edge_nodejs_eventloop_lag_seconds [\d.e-]+$/m);
  expect(text).not.toContain('gc_duration');
});

it('the event-loop lag gauges report the turns of the 20 ms timer, and start again after each collection', async () => {
  const registry = new Registry();
  registerProcessMetrics(registry, 'y_');
  await new Promise((r) => setTimeout(r, 200));
  const value = (text: string, name: string) => Number(new RegExp(`^y_nodejs_eventloop_lag_${name} (\\S+)$`, 'm').exec(text)![1]);
  const text = await registry.metrics();
  for (const name of ['min_seconds', 'p50_seconds', 'p90_seconds', 'p99_seconds', 'max_seconds', 'mean_seconds']) {
    expect(value(text, name), name).toBeGreaterThanOrEqual(0.015); // a turn of a 20 ms timer (less only by how stale the loop time it was set from was)
    expect(value(text, name), name).toBeLessThan(5);
  }
  expect(value(text, 'min_seconds')).toBeLessThanOrEqual(value(text, 'p50_seconds'));
  expect(value(text, 'p99_seconds')).toBeLessThanOrEqual(value(text, 'max_seconds'));
  // the delays were reset by that collection: a blocked loop now is the maximum of the next one
  // hrtime: Date.now()'s whole milliseconds could make the block up to 1 ms shorter than 300
  const end = process.hrtime.bigint() + 300_000_000n;
  while (process.hrtime.bigint() < end) { /* blocked */ }
  await new Promise((r) => setTimeout(r, 50));
  expect(value(await registry.metrics(), 'max_seconds')).toBeGreaterThanOrEqual(0.3);
});
