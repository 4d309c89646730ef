/**
 * EventRouter: glob semantics, sources, several routes per event, the
 * counters of every outcome, errors naming the route, sequence numbers and
 * carrying state over a reload.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { RouteConfig } from '../../src/config/types.js';
import { makeEvent, type AgentEvent } from '../../src/core/event.js';
import type { AgentMetrics } from '../../src/health/metrics.js';
import { EventRouter } from '../../src/router/event-router.js';
import { testMetrics, valueOf } from './metric-values.js';

let metrics: AgentMetrics;
beforeEach(() => {
  metrics = testMetrics();
});

const ctx = { device: { id: 'car-1', labels: {} }, prefix: 'fleet' };
const route = (over: Partial<RouteConfig> = {}): RouteConfig => ({
  name: 'r', match: ['**'], topic: '{prefix}/{device}/{api}/{event}', qos: 0, retain: false, payload: 'raw', filters: {}, ...over,
});
const make = (routes: RouteConfig[], clock?: () => number): EventRouter => new EventRouter(routes, ctx, metrics, clock);
const ev = (name: string, data: unknown = null, source = 'vehicle'): AgentEvent => makeEvent(source, name, data, 0);

describe('globs', () => {
  /** Which of `names` the glob list selects. */
  const selected = (match: string[], names: string[]): string[] => {
    const r = make([route({ match })]);
    return names.filter((n) => r.route(ev(n)).length === 1);
  };

  it("'hello/*' takes one level below hello, nothing deeper, no trailing slash", () => {
    expect(selected(['hello/*'], ['hello/a', 'hello/a/b', 'hello/', 'hello/a/', 'hello', 'other/a', 'xhello/a'])).toEqual(['hello/a']);
  });

  it("'*/speed' takes speed of any single api (an empty one too)", () => {
    expect(selected(['*/speed'], ['a/speed', 'vehicle/speed', 'a/b/speed', 'a/speed2', 'speed', '/speed'])).toEqual(['a/speed', 'vehicle/speed', '/speed']);
  });

  it("'**' takes everything non-empty; 'hello/**' everything below hello", () => {
    expect(selected(['**'], ['a', 'a/b/c', '/x', 'a//b', '.a/.b'])).toEqual(['a', 'a/b/c', '/x', 'a//b', '.a/.b']);
    expect(selected(['hello/**'], ['hello', 'hello/a', 'hello/a/b', 'hellox/a'])).toEqual(['hello/a', 'hello/a/b']);
    expect(selected(['**/speed'], ['speed', 'a/speed', 'a/b/speed', 'a/speedy'])).toEqual(['speed', 'a/speed', 'a/b/speed']);
  });

  it("names starting with '.' are ordinary names; '.' and '..' levels are never wildcard matches", () => {
    expect(selected(['hello/*'], ['hello/.hidden', 'hello/.', 'hello/..'])).toEqual(['hello/.hidden']);
    expect(selected(['*/x'], ['.api/x'])).toEqual(['.api/x']);
    expect(selected(['hello/..'], ['hello/..'])).toEqual(['hello/..']);
  });

  it('wildcards match control characters too (untrusted names must not hide)', () => {
    expect(selected(['hello/*'], ['hello/\n', 'hello/a\nb', 'hello/\u0000'])).toEqual(['hello/\n', 'hello/a\nb', 'hello/\u0000']);
  });

  it('supports ?, classes, braces, escapes and literal names', () => {
    expect(selected(['a/?'], ['a/b', 'a/bc', 'a//'])).toEqual(['a/b']);
    expect(selected(['a/[bc]x'], ['a/bx', 'a/cx', 'a/dx'])).toEqual(['a/bx', 'a/cx']);
    expect(selected(['v/{speed,rpm}'], ['v/speed', 'v/rpm', 'v/fuel'])).toEqual(['v/speed', 'v/rpm']);
    expect(selected(['a/\\*'], ['a/*', 'a/b'])).toEqual(['a/*']);
    expect(selected(['a/b+c', 'x.y/z'], ['a/b+c', 'a/bbc', 'x.y/z', 'xzy/z'])).toEqual(['a/b+c', 'x.y/z']);
  });

  it("a leading '!' excludes; with exclusions only, everything else is taken", () => {
    expect(selected(['v/*', '!v/debug*'], ['v/speed', 'v/debug', 'v/debug2', 'w/speed'])).toEqual(['v/speed']);
    expect(selected(['!*/debug'], ['v/speed', 'v/debug', 'x'])).toEqual(['v/speed', 'x']);
    expect(selected(['\\!v/a'], ['!v/a', 'v/a'])).toEqual(['!v/a']);
  });

  it('remembers at most 4096 names, none longer than 256 characters (names are untrusted)', () => {
    const r = make([route({ match: ['v/*'] })]);
    const memo = (r as unknown as { memo: Map<string, unknown> }).memo;
    for (let i = 0; i < 100; i++) r.route(ev(`v/${'x'.repeat(300)}${i}`));
    expect(memo.size).toBe(0);
    for (let i = 0; i < 5000; i++) r.route(ev(`v/${i}`));
    expect(memo.size).toBeGreaterThan(0);
    expect(memo.size).toBeLessThanOrEqual(4096);
  });

  it('gives the same answer once the name memo has been cleared', () => {
    const r = make([route({ match: ['v/*'] })]);
    for (let i = 0; i < 10_000; i++) expect(r.route(ev(i % 2 ? `v/${i}` : `w/${i}`)).length).toBe(i % 2);
    expect(r.route(ev('v/1')).length).toBe(1);
  });
});

describe('routes', () => {
  it('makes the message of a route: topic, payload, qos, retain, route name', () => {
    const [m, ...rest] = make([route({ name: 'speed', match: ['vehicle/speed'], qos: 1, retain: true })]).route(ev('vehicle/speed', { v: 3 }));
    expect(rest).toEqual([]);
    expect(m).toEqual({ topic: 'fleet/car-1/vehicle/speed', payload: Buffer.from('{"v":3}'), qos: 1, retain: true, route: 'speed' });
  });

  it('selects by source when the route names sources', async () => {
    const r = make([route({ sources: ['b1', 'b2'] })]);
    expect(r.route(ev('a/e', null, 'b1')).length).toBe(1);
    expect(r.route(ev('a/e', null, 'b2')).length).toBe(1);
    expect(r.route(ev('a/e', null, 'b3')).length).toBe(0);
    expect(await valueOf(metrics.eventsUnrouted)).toBe(1);
  });

  it('sends an event to every route that selects it, in config order', async () => {
    const r = make([
      route({ name: 'all', topic: 'all/{event}' }),
      route({ name: 'speed', match: ['*/speed'], topic: 'speed/{api}', payload: 'envelope' }),
      route({ name: 'other', match: ['x/*'] }),
    ]);
    const out = r.route(ev('car/speed', 5));
    expect(out.map((m) => [m.route, m.topic])).toEqual([['all', 'all/speed'], ['speed', 'speed/car']]);
    expect(out[0]!.payload.toString()).toBe('5');
    expect(JSON.parse(out[1]!.payload.toString()).data).toBe(5);
    expect(await valueOf(metrics.eventsRouted, { route: 'all' })).toBe(1);
    expect(await valueOf(metrics.eventsRouted, { route: 'speed' })).toBe(1);
    expect(await valueOf(metrics.eventsRouted, { route: 'other' })).toBe(0);
  });

  it('counts an event no route selects as unrouted, and a selected then dropped one under its reason', async () => {
    const r = make([
      route({ name: 'f', match: ['a/*'], topic: 't/{data.k}' }),
      route({ name: 'c', match: ['a/*'], topic: 'c', filters: { change_only: true } }),
    ]);
    expect(r.route(ev('b/x')).length).toBe(0);
    expect(r.route(ev('a/x', { z: 1 })).map((m) => m.route)).toEqual(['c']); // f: field missing, c still publishes
    expect(r.route(ev('a/x', { z: 1 })).length).toBe(0);
    expect(await valueOf(metrics.eventsUnrouted)).toBe(1);
    expect(await valueOf(metrics.dropped, { reason: 'topic_field_missing' })).toBe(2);
    expect(await valueOf(metrics.eventsFiltered, { route: 'c', filter: 'change_only' })).toBe(1);
  });

  it('drops a topic over 65535 bytes and data that cannot be JSON, counting them', async () => {
    const r = make([route()]);
    expect(r.route(ev('a/' + 'x'.repeat(70_000))).length).toBe(0);
    expect(r.route(ev('a/b', { n: 1n })).length).toBe(0);
    expect(await valueOf(metrics.dropped, { reason: 'topic_too_long' })).toBe(1);
    expect(await valueOf(metrics.dropped, { reason: 'payload_unserializable' })).toBe(1);
  });

  it('logs those drops through the context\'s log, rate-limited (10 per 10 s), the event name cut short', async () => {
    const lines: string[] = [];
    const r = new EventRouter([route()], { ...ctx, log: (m) => lines.push(m) }, metrics);
    for (let i = 0; i < 50; i++) r.route(ev('a/' + 'x'.repeat(70_000)));
    r.route(ev('a/b', { n: 1n }));
    expect(await valueOf(metrics.dropped, { reason: 'topic_too_long' })).toBe(50);
    expect(await valueOf(metrics.dropped, { reason: 'payload_unserializable' })).toBe(1);
    expect(lines).toHaveLength(10);
    expect(lines[0]).toMatch(/^route r: event "a\/x{118}…" from vehicle dropped \(topic_too_long\): its topic would be longer than 65535 bytes$/);
  });

  it('keeps filter state per topic: one route, many topics', () => {
    const r = make([route({ filters: { change_only: true } })]);
    expect(r.route(ev('a/x', 1)).length).toBe(1);
    expect(r.route(ev('a/y', 1)).length).toBe(1);
    expect(r.route(ev('a/x', 1)).length).toBe(0);
  });

  it('times the filters with the injected clock', () => {
    let now = 0;
    const r = make([route({ filters: { sample: { interval_ms: 100 } } })], () => now);
    expect(r.route(ev('a/x')).length).toBe(1);
    now = 99;
    expect(r.route(ev('a/x')).length).toBe(0);
    now = 100;
    expect(r.route(ev('a/x')).length).toBe(1);
  });
});

describe('envelope sequence numbers', () => {
  const seqs = (out: { payload: Buffer }[]): number[] => out.map((m) => (JSON.parse(m.payload.toString()) as { seq: number }).seq);

  it('count from 1 per route, over all its topics, skipping nothing for filtered events', () => {
    const r = make([
      route({ name: 'a', payload: 'envelope', filters: { change_only: true } }),
      route({ name: 'b', payload: 'envelope', match: ['x/*'] }),
    ]);
    expect(seqs(r.route(ev('x/1', 1)))).toEqual([1, 1]);
    expect(seqs(r.route(ev('x/1', 1)))).toEqual([2]); // a filtered it: a's next is still 2
    expect(seqs(r.route(ev('y/2', 1)))).toEqual([2]);
    expect(seqs(r.route(ev('x/1', 2)))).toEqual([3, 3]);
  });

  it('carry over a reload, with the filter state of unchanged routes', () => {
    const routes = [
      route({ name: 'same', payload: 'envelope', filters: { change_only: true } }),
      route({ name: 'changed', payload: 'envelope', topic: 'c/{event}', filters: { change_only: true } }),
    ];
    const old = make(routes);
    old.route(ev('a/x', 1));
    old.route(ev('a/x', 2));
    const next = make([routes[0]!, { ...routes[1]!, topic: 'c2/{event}' }, route({ name: 'new', payload: 'envelope' })]);
    next.carryOver(old);
    const out = next.route(ev('a/x', 2));
    expect(out.map((m) => m.route)).toEqual(['changed', 'new']); // 'same' remembers 2
    expect(seqs(out)).toEqual([3, 1]);
  });
});

describe('compilation errors name the route', () => {
  it.each([
    [{ match: ['a/[b'] }, /route "bad": match: bad glob "a\/\[b"/],
    [{ match: [''] }, /route "bad": match: bad glob ""/],
    [{ match: [] }, /route "bad": match: no glob/],
    [{ topic: 'a/{what}' }, /route "bad": .*unknown placeholder \{what\}/],
    [{ topic: 'a/+' }, /route "bad": .*wildcard/],
    [{ qos: 3 as 0 }, /route "bad": qos/],
    [{ payload: 'xml' as 'raw' }, /route "bad": payload/],
    [{ filters: { rate_limit: { per_second: 0, burst: 1 } } }, /route "bad": filters.rate_limit.per_second/],
    [{ filters: { sample: {} } }, /route "bad": filters.sample needs/],
    [{ filters: { sample: { every: 1.5 } } }, /route "bad": filters.sample.every/],
    [{ filters: { deadband: { absolute: -1 } } }, /route "bad": filters.deadband.absolute/],
    [{ filters: { deadband: { field: 'a..b' } } }, /route "bad": .*empty name/],
  ] as Array<[Partial<RouteConfig>, RegExp]>)('%j', (over, msg) => {
    expect(() => make([route(), route({ name: 'bad', ...over })])).toThrow(msg);
  });

  it('refuses two routes with one name', () => {
    expect(() => make([route(), route()])).toThrow(/route "r": two routes have this name/);
  });
});
