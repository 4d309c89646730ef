/**
 * Event router throughput, one core, no I/O.
 *
 *   node dist/bench/router.js [--events N] [--rounds R] [--only SETUP]
 *
 * Each setup routes the same pre-built events (vehicle-like: a handful of
 * names, numeric data) through an EventRouter built from a few routes. The
 * baseline is a bare JSON.stringify of each whole event in the same script:
 * the least any bridge does per event, so the ratio says what routing costs
 * on top. Best of R rounds of N events each. Ends with one summary line.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { RouteConfig } from '../src/config/types.js';
import { makeEvent, type AgentEvent } from '../src/core/event.js';
import { AgentMetrics } from '../src/health/metrics.js';
import { EventRouter } from '../src/router/index.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '5' }, only: { type: 'string' } } });
const N = Number(values.events);
const ROUNDS = Number(values.rounds);

const route = (over: Partial<RouteConfig>): RouteConfig => ({
  name: 'r', match: ['vehicle/*'], topic: '{prefix}/{device}/{api}/{event}', qos: 0, retain: false, payload: 'raw', filters: {}, ...over,
});

/** Events cycling through a few names, each with a slowly moving value, so filters see realistic data. */
function vehicleEvents(count: number): AgentEvent[] {
  const names = ['vehicle/speed', 'vehicle/engine_rpm', 'vehicle/fuel_level', 'vehicle/gear', 'vehicle/odometer'];
  const out: AgentEvent[] = [];
  for (let i = 0; i < count; i++) {
    const v = Math.round(50 + 30 * Math.sin(i / 50));
    out.push(makeEvent('vehicle', names[i % names.length]!, { value: v, unit: 'km/h' }, 1_700_000_000_000 + i));
  }
  return out;
}

/** Names that need escaping ('+', '#', '$', '%', '/', controls): the slow path of topic rendering. */
function hostileEvents(count: number): AgentEvent[] {
  const names = ['vehicle/a+b', 'vehicle/#', 'vehicle/$SYS/x', 'vehicle/100%', 'vehicle/tab\there', 'vehicle//x'];
  return Array.from({ length: count }, (_, i) => makeEvent('vehicle', names[i % names.length]!, { value: i }, 1_700_000_000_000 + i));
}

const EVENTS = vehicleEvents(4096);
const HOSTILE = hostileEvents(4096);

function measure(fn: (ev: AgentEvent) => unknown, events: AgentEvent[]): number {
  let best = 0;
  let sink = 0;
  for (let round = 0; round < ROUNDS + 1; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      const r = fn(events[i & 4095]!);
      if (r !== undefined) sink++;
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (round > 0) best = Math.max(best, N / s); // round 0 warms up the JIT
  }
  if (sink !== N * (ROUNDS + 1)) throw new Error('lost results');
  return best;
}

function router(routes: RouteConfig[]): (ev: AgentEvent) => unknown {
  const r = new EventRouter(routes, { device: { id: 'car-042', labels: {} }, prefix: 'fleet' }, new AgentMetrics({ defaultMetrics: false }));
  return (ev) => r.route(ev);
}

const manyRoutes: RouteConfig[] = [
  ...Array.from({ length: 19 }, (_, i) => route({ name: `other${i}`, match: [`api${i}/*`, `*/signal${i}`], topic: '{prefix}/{device}/x/{event}' })),
  route({ name: 'vehicle', match: ['vehicle/{speed,engine_rpm,fuel_level,gear,odometer}'] }),
];

const setups: Array<[string, (ev: AgentEvent) => unknown, AgentEvent[]]> = [
  ['baseline_json', (ev) => JSON.stringify(ev), EVENTS],
  ['simple', router([route({})]), EVENTS],
  ['envelope_datafield', router([route({ payload: 'envelope', topic: '{prefix}/{device}/{source}/{event}/{data.unit}' })]), EVENTS],
  ['routes20', router(manyRoutes), EVENTS],
  ['fanout3', router([route({ name: 'a' }), route({ name: 'b', match: ['**'], payload: 'envelope' }), route({ name: 'c', match: ['*/speed', 'vehicle/*'], qos: 1 })]), EVENTS],
  ['filters', router([route({ filters: { deadband: { field: 'value', absolute: 2 }, change_only: true, rate_limit: { per_second: 1e9, burst: 1e9 } } })]), EVENTS],
  ['hostile_names', router([route({})]), HOSTILE],
  ['unrouted', router([route({ match: ['other/*'] })]), EVENTS],
];

const cpu = cpus()[0]?.model ?? 'unknown cpu';
console.log(`router bench: node ${process.version}, ${cpus().length} cpus (${cpu}), ${N} events x best of ${ROUNDS}`);
const results = new Map<string, number>();
for (const [name, fn, events] of setups) {
  if (values.only !== undefined && name !== 'baseline_json' && name !== values.only) continue;
  const rate = measure(fn, events);
  results.set(name, rate);
  const base = results.get('baseline_json')!;
  console.log(`${name.padEnd(20)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} events/s  (${(rate / base).toFixed(2)} x baseline)`);
}
const k = (name: string): string => `${name}=${Math.round(results.get(name)! / 1000)}k`;
console.log(`events/s: ${[...results.keys()].map(k).join(' ')}`);
