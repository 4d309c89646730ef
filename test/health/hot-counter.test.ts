/**
 * The per-event counters (hot-counter.ts): counted as plain numbers, and
 * exact wherever the registry is read (Prometheus text, the status
 * summary, get()).
 */
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';

describe('AgentMetrics.hot', () => {
  it('counts into the prom-client counter whenever it is read, and keeps counting after', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    const a = m.hot(m.eventsIn, { source: 'a' });
    const b = m.hot(m.eventsIn, { source: 'b' });
    for (let i = 0; i < 1000; i++) a.inc();
    b.inc(5);
    expect(await m.text()).toContain('afb_edge_events_in_total{source="a"} 1000');
    a.inc();
    expect((await m.eventsIn.get()).values.map((v) => [v.labels.source, v.value])).toEqual([['a', 1001], ['b', 5]]);
    m.hot(m.published, { qos: '1' }).inc(3);
    const summary = await m.summary();
    expect(summary.afb_edge_published_total).toEqual({ 1: 3 });
    expect(summary.afb_edge_events_in_total).toEqual({ a: 1001, b: 5 });
  });

  it('gives the same child for the same labels (routes rebuilt at a reload do not add children)', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    const first = m.hot(m.eventsRouted, { route: 'r' });
    const again = m.hot(m.eventsRouted, { route: 'r' });
    expect(again).toBe(first);
    first.inc();
    again.inc();
    expect((await m.eventsRouted.get()).values).toEqual([{ labels: { route: 'r' }, value: 2 }]);
  });
});
