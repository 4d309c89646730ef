/**
 * Route filters with an injected clock: token bucket, change-only, deadband,
 * sampler, their order, "a dropped event updates no published state", and
 * the bounded per-topic state.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { RouteFilters } from '../../src/config/types.js';
import type { AgentMetrics } from '../../src/health/metrics.js';
import { FilterChain, type FilterChainLimits } from '../../src/router/filter-chain.js';
import { jsonEqual } from '../../src/router/json-equal.js';
import { testMetrics, valueOf } from './metric-values.js';

let now = 0;
let metrics: AgentMetrics;
const clock = (): number => now;

beforeEach(() => {
  now = 1_000_000;
  metrics = testMetrics();
});

/** Feeds `values` (data) to one topic and returns which passed; passing ones are committed, as the router does. */
function chain(filters: RouteFilters, limits?: FilterChainLimits): (data: unknown, topic?: string) => boolean {
  const c = new FilterChain('r', filters, metrics, clock, limits);
  return (data, topic = 't') => {
    const s = c.admit(topic, data);
    if (s) c.commit(s, data, JSON.stringify(data) ?? 'null');
    return s !== undefined;
  };
}

const filtered = (filter: string): Promise<number> => valueOf(metrics.eventsFiltered, { route: 'r', filter });

describe('rate_limit (token bucket)', () => {
  it('lets a burst through, then refills by elapsed time up to the burst', async () => {
    const pass = chain({ rate_limit: { per_second: 2, burst: 3 } });
    expect([pass(1), pass(2), pass(3), pass(4)]).toEqual([true, true, true, false]);
    now += 499;
    expect(pass(5)).toBe(false); // 0.998 token
    now += 1;
    expect([pass(6), pass(7)]).toEqual([true, false]);
    now += 60_000; // a long pause refills to the burst, no more
    expect([pass(8), pass(9), pass(10), pass(11)]).toEqual([true, true, true, false]);
    expect(await filtered('rate_limit')).toBe(4);
  });

  it('keeps one bucket per topic', () => {
    const pass = chain({ rate_limit: { per_second: 1, burst: 1 } });
    expect([pass(1, 'a'), pass(1, 'a'), pass(1, 'b'), pass(1, 'b')]).toEqual([true, false, true, false]);
  });

  it('neither refills nor stalls when the clock goes back', () => {
    const pass = chain({ rate_limit: { per_second: 1, burst: 1 } });
    expect(pass(1)).toBe(true);
    now -= 3_600_000; // a wall clock set back an hour
    expect(pass(2)).toBe(false);
    now += 1000;
    expect(pass(3)).toBe(true);
  });
});

describe('change_only', () => {
  it('drops data deep-equal to the last published data of the topic, whatever the key order', async () => {
    const pass = chain({ change_only: true });
    expect(pass({ a: 1, b: [1, { c: 2 }] })).toBe(true);
    expect(pass({ b: [1, { c: 2 }], a: 1 })).toBe(false);
    expect(pass({ a: 1, b: [1, { c: 3 }] })).toBe(true);
    expect(pass({ a: 1, b: [1, { c: 2 }] })).toBe(true);
    expect(pass(null)).toBe(true);
    expect(pass(null)).toBe(false);
    expect(pass([1, 2])).toBe(true);
    expect(pass({ 0: 1, 1: 2 })).toBe(true); // an object is not an array
    expect(pass('1')).toBe(true);
    expect(pass(1)).toBe(true);
    expect(pass({ a: 1 }, 'other')).toBe(true); // per topic
    expect(await filtered('change_only')).toBe(2);
  });
});

describe('jsonEqual', () => {
  it('compares own keys, not just values: undefined (a non-JSON source) is not a missing key', () => {
    expect(jsonEqual({ x: undefined, y: 1 }, { y: 1, z: 2 })).toBe(false);
    expect(jsonEqual({ y: 1, x: [1] }, { x: [1], y: 1 })).toBe(true);
    expect(jsonEqual(NaN, NaN)).toBe(true);
  });
});

describe('deadband', () => {
  it('publishes the first value, then changes >= absolute from the last published one', async () => {
    const pass = chain({ deadband: { field: 'v', absolute: 1 } });
    const seq = [10, 10.5, 10.9, 11, 11.9, 12, 11.5, 11, 11];
    expect(seq.map((v) => pass({ v }))).toEqual([true, false, false, true, false, true, false, true, false]);
    expect(await filtered('deadband')).toBe(5);
  });

  it('does not let float rounding hide a change of exactly the threshold', () => {
    const pass = chain({ deadband: { absolute: 0.2 } });
    expect([pass(0.1), pass(0.3)]).toEqual([true, true]); // 0.3 - 0.1 = 0.19999999999999998
  });

  it('publishes changes >= percent of |last|; from 0 any change; either threshold suffices', () => {
    const pct = chain({ deadband: { percent: 10 } });
    // 110 makes the band 11: 99.1 is inside, 98.9 out; from -5 the band is 0.5.
    expect([100, 109, 110, 99.1, 98.9, -5, -5.4, -5.5].map((v) => pct(v))).toEqual([true, false, true, false, true, true, false, true]);
    const zero = chain({ deadband: { percent: 10 } });
    expect([0, 0, 0.001].map((v) => zero(v))).toEqual([true, false, true]);
    const both = chain({ deadband: { absolute: 5, percent: 50 } });
    expect([2, 3, 4, 9, 14].map((v) => both(v))).toEqual([true, true, false, true, true]);
  });

  it('never publishes an unchanged value, even with a zero threshold; no threshold = any change', () => {
    const z = chain({ deadband: { absolute: 0 } });
    expect([1, 1, 2].map((v) => z(v))).toEqual([true, false, true]);
    const none = chain({ deadband: {} });
    expect([1, 1, 1.0001].map((v) => none(v))).toEqual([true, false, true]);
  });

  it('lets a non-numeric value through, counts it, and keeps the last number', async () => {
    const pass = chain({ deadband: { field: 'a.b', absolute: 1 } });
    expect(pass({ a: { b: 5 } })).toBe(true);
    expect(pass({ a: { b: 'x' } })).toBe(true);
    expect(pass({ a: {} })).toBe(true);
    expect(pass(null)).toBe(true);
    expect(pass({ a: { b: 5.5 } })).toBe(false); // still compared with 5
    expect(await valueOf(metrics.errors, { component: 'router_deadband' })).toBe(3);
    expect(await filtered('deadband')).toBe(1);
  });
});

describe('sample', () => {
  it('keeps one of every N: the first, then every N-th', async () => {
    const pass = chain({ sample: { every: 3 } });
    expect([1, 2, 3, 4, 5, 6, 7].map((v) => pass(v))).toEqual([true, false, false, true, false, false, true]);
    expect(await filtered('sample')).toBe(4);
  });

  it('keeps at most one per interval', () => {
    const pass = chain({ sample: { interval_ms: 1000 } });
    const at = (t: number): boolean => {
      now = 1_000_000 + t;
      return pass(t);
    };
    expect([0, 500, 999, 1000, 1999, 2000, 5000].map(at)).toEqual([true, false, false, true, false, true, true]);
  });

  it('with both, an event must be the N-th and out of the interval', () => {
    const pass = chain({ sample: { every: 2, interval_ms: 100 } });
    const at = (t: number): boolean => {
      now = 1_000_000 + t;
      return pass(t);
    };
    // 0 passes; 10 is the 1st since; 20 the 2nd but too early; 150 passes; 160 the 1st since;
    // 170 the 2nd but too early; 260 both.
    expect([0, 10, 20, 150, 160, 170, 260].map(at)).toEqual([true, false, false, true, false, false, true]);
  });
});

describe('order and published state', () => {
  it('applies value filters before sample and rate_limit, which see only what is left', async () => {
    const pass = chain({ change_only: true, sample: { every: 2 }, rate_limit: { per_second: 1, burst: 100 } });
    // 1 passes; repeated 1s never reach the sampler; 2 is the 1st since; 3 the 2nd: passes.
    expect([1, 1, 1, 2, 3].map((v) => pass(v))).toEqual([true, false, false, false, true]);
    expect(await filtered('change_only')).toBe(2);
    expect(await filtered('sample')).toBe(1);
    expect(await filtered('rate_limit')).toBe(0);
  });

  it('an event dropped by the rate limit leaves change_only and deadband as they were', () => {
    const pass = chain({ change_only: true, deadband: { absolute: 1 }, rate_limit: { per_second: 1, burst: 1 } });
    expect(pass(1)).toBe(true);
    expect(pass(5)).toBe(false); // no token: 5 is not "last published"
    now += 1000;
    expect(pass(1.5)).toBe(false); // deadband still compares with 1
    expect(pass(5)).toBe(true);
  });

  it('a sampled event dropped by the rate limit passes the choice to the next one', () => {
    const pass = chain({ sample: { every: 3 }, rate_limit: { per_second: 1, burst: 1 } });
    expect([1, 2, 3, 4, 5].map((v) => pass(v))).toEqual([true, false, false, false, false]);
    now += 1000;
    expect([6, 7].map((v) => pass(v))).toEqual([true, false]);
  });
});

describe('per-topic state bound', () => {
  it('evicts the least recently used topic and counts it', async () => {
    const c = new FilterChain('r', { change_only: true }, metrics, clock, { maxTopics: 3 });
    const pass = (topic: string): boolean => {
      const s = c.admit(topic, 'same');
      if (s) c.commit(s, 'same', '"same"');
      return s !== undefined;
    };
    expect(['a', 'b', 'c'].map(pass)).toEqual([true, true, true]);
    expect(pass('a')).toBe(false); // a is now the most recent
    expect(pass('d')).toBe(true); // evicts b
    expect(c.size).toBe(3);
    expect(await valueOf(metrics.dropped, { reason: 'filter_state_evicted' })).toBe(1);
    expect(pass('a')).toBe(false); // a kept its state
    expect(pass('b')).toBe(true); // b starts afresh (evicts c)
    expect(pass('c')).toBe(true);
    expect(await valueOf(metrics.dropped, { reason: 'filter_state_evicted' })).toBe(3);
  });

  it('bounds the characters of topics and kept data, keeping at least the newest topic', async () => {
    const c = new FilterChain('r', { change_only: true }, metrics, clock, { maxChars: 100 });
    const publish = (topic: string, data: string): boolean => {
      const s = c.admit(topic, data);
      if (s) c.commit(s, data, JSON.stringify(data));
      return s !== undefined;
    };
    expect(publish('a', 'x'.repeat(60))).toBe(true); // 1 + 62
    expect(c.accounted).toBe(63);
    expect(publish('b', 'y'.repeat(30))).toBe(true); // 1 + 32: 95 in all
    expect(c.size).toBe(2);
    expect(publish('b', 'z'.repeat(40))).toBe(true); // b grows to 43: 106, a goes
    expect(c.size).toBe(1);
    expect(c.accounted).toBe(43);
    expect(publish('a', 'x'.repeat(60))).toBe(true); // a forgot its data
    expect(publish('c', 'w'.repeat(500))).toBe(true); // alone over the bound: kept, all others go
    expect(c.size).toBe(1);
    expect(publish('c', 'w'.repeat(500))).toBe(false);
    expect(await valueOf(metrics.dropped, { reason: 'filter_state_evicted' })).toBe(3);
    // Topic length alone counts too, with or without kept data.
    const t = new FilterChain('t', { sample: { every: 2 } }, metrics, clock, { maxChars: 10 });
    t.admit('x'.repeat(6), 1);
    t.admit('y'.repeat(6), 1);
    expect(t.size).toBe(1);
  });

  it('keeps no state at all for a route without filters', () => {
    expect(new FilterChain('r', {}, metrics, clock).empty).toBe(true);
  });
});
