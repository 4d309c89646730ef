/**
 * BinderSource against a simulated binder on a real unix socket.
 */
import { waitFor } from '../helpers/net-helpers.js';
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BinderConfig } from '../../src/config/types.js';
import type { AgentEvent } from '../../src/core/event.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { SimulatedBinder } from '../../src/sim/simulated-binder.js';
import { BinderSource, MAX_ON_DEMAND_SUBSCRIPTIONS } from '../../src/sources/binder/binder-source.js';
import { createLogger } from '../../src/util/log.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function setup(subscribe: BinderConfig['subscribe'] = [{ verb: 'subscribe', args: { event: 'speed' } }]) {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-src-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const spec = `unix:${join(dir, 'vehicle')}`;
  const config: BinderConfig = { name: 'car', spec, subscribe, reconnect: { initial_delay_ms: 20, max_delay_ms: 100 }, call_timeout_ms: 2000 };
  const events: AgentEvent[] = [];
  const logs: string[] = [];
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const source = new BinderSource(config, { metrics, logger: createLogger('debug', (l) => logs.push(l)), onEvent: (e) => events.push(e) });
  cleanups.push(() => source.stop());
  return { spec, source, events, logs, metrics };
}

// Each file keeps its own default timeout and polling pace (some conditions do I/O).
const until = (cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> => waitFor(cond, ms, what, 10);

async function startBinder(spec: string, periodMs = 20): Promise<SimulatedBinder> {
  const b = new SimulatedBinder({ api: 'vehicle', periodMs });
  await b.listen(spec);
  cleanups.push(() => b.close());
  return b;
}

describe('BinderSource', () => {
  it('makes the configured subscribing calls and hands events to the router with their source', async () => {
    const { spec, source, events, metrics } = setup();
    await startBinder(spec);
    source.start();
    await until(() => events.length >= 3, 5000, 'speed events');
    expect(events[0]).toMatchObject({ source: 'car', api: 'vehicle', event: 'speed', name: 'vehicle/speed' });
    expect(typeof (events[0]!.data as { value: number }).value).toBe('number');
    expect(events.every((e) => e.name === 'vehicle/speed')).toBe(true);
    const counted = (await metrics.eventsIn.get()).values.find((v) => v.labels.source === 'car')!.value;
    expect(counted).toBeGreaterThanOrEqual(3);
    expect((await metrics.binderConnected.get()).values[0]!.value).toBe(1);
  });

  it('keeps retrying a binder that is not there yet, logging the failure once', async () => {
    const { spec, source, events, logs } = setup();
    source.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(source.connected).toBe(false);
    const failures = logs.filter((l) => l.includes('retrying with backoff'));
    expect(failures).toHaveLength(1);
    await startBinder(spec);
    await until(() => events.length > 0, 5000, 'events after the binder appeared');
    expect(source.connected).toBe(true);
  });

  it('after the binder restarts, reconnects and subscribes again, on-demand subscriptions included', async () => {
    const { spec, source, events } = setup();
    let binder = await startBinder(spec);
    source.start();
    await until(() => source.connected, 5000, 'connected');
    const r = await source.subscribeOnDemand('subscribe', { event: 'engine_rpm' });
    expect(r.error).toBe(null);
    await until(() => events.some((e) => e.event === 'engine_rpm'), 5000, 'rpm events');
    await binder.close();
    await until(() => !source.connected, 5000, 'disconnected');
    events.length = 0;
    binder = await startBinder(spec);
    await until(() => events.some((e) => e.event === 'speed') && events.some((e) => e.event === 'engine_rpm'), 5000, 'both events again');
  });

  it('bounds on-demand subscriptions', async () => {
    const { spec, source } = setup([]);
    await startBinder(spec, 0);
    source.start();
    await until(() => source.connected, 5000, 'connected');
    for (let i = 0; i < MAX_ON_DEMAND_SUBSCRIPTIONS; i++) {
      // distinct args make distinct subscriptions; the simulator creates events on push, so subscribe to known ones
      expect((await source.subscribeOnDemand('ping', { n: i })).error).toBe(null);
    }
    const again = await source.subscribeOnDemand('ping', { n: 0 });
    expect(again.error).toBe(null); // the same one again is not a new one
    const over = await source.subscribeOnDemand('ping', { n: 'one too many' });
    expect(over.error).toBe('busy');
  });

  it('passes remote calls through with their timeout', async () => {
    const { spec, source } = setup([]);
    await startBinder(spec, 0);
    source.start();
    await until(() => source.connected, 5000, 'connected');
    const r = await source.call('ping', '{"x":1}');
    expect(r.error).toBe(null);
    expect((r.data as { pong: unknown }).pong).toEqual({ x: 1 });
  });
});
