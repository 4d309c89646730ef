/**
 * The agent end to end, in process: binders on real unix sockets (the
 * simulated binder and the hello3 emulation of a native binder), a real
 * mosquitto (aedes when mosquitto is missing, said on the console), plain
 * mqtt.js clients as the remote side.
 */
import { waitFor } from '../helpers/net-helpers.js';
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { Agent } from '../../src/agent/agent.js';
import { parseConfigText } from '../../src/config/load.js';
import type { AgentConfig } from '../../src/config/types.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { SimulatedBinder } from '../../src/sim/simulated-binder.js';
import { WsapiClient, WsapiServer } from '../../src/wsapi/index.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Hello3 } from '../helpers/hello3.js';
import { Collector, captureLogger } from '../helpers/mqtt-helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-agent-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function broker(): Promise<Broker> {
  const b = await startBroker();
  cleanups.push(() => b.close());
  return b;
}

function config(yaml: string): AgentConfig {
  const r = parseConfigText(yaml, 'test.yaml');
  if (r.config === undefined) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

async function startAgent(cfg: AgentConfig): Promise<{ agent: Agent; logs: string[] }> {
  const logger = captureLogger();
  const agent = new Agent(cfg, { logger, version: 'test', metrics: new AgentMetrics({ defaultMetrics: false }) });
  await agent.start();
  cleanups.push(() => agent.stop('test over'));
  return { agent, logs: logger.lines };
}

// Each file keeps its own default timeout and polling pace (some conditions do I/O).
const until = (cond: () => boolean | Promise<boolean>, ms = 8000, what = 'condition'): Promise<void> => waitFor(cond, ms, what, 20);

async function collector(b: Broker, filters = ['fleet/#']): Promise<Collector> {
  const c = await Collector.connect(b, filters, 2);
  cleanups.push(() => c.close());
  return c;
}

const base = (b: Broker, dir: string, v: 4 | 5 = 4) => `
device: { id: car-042 }
mqtt: { url: "${b.url}", protocol_version: ${b.supportsV5 ? v : 4}, topic_prefix: fleet, status_interval_s: 0, reconnect: { initial_delay_ms: 50, max_delay_ms: 300 } }
outbox: { path: ${join(dir, 'outbox.db')} }
`;

describe('agent → MQTT', () => {
  it('events of a simulated binder reach MQTT with the route topics, QoS and retain flag', async () => {
    const b = await broker();
    const dir = tempDir();
    const sim = new SimulatedBinder({ api: 'vehicle', periodMs: 30 });
    await sim.listen(`unix:${join(dir, 'vehicle')}`);
    cleanups.push(() => sim.close());
    const c = await collector(b);
    await startAgent(config(base(b, dir) + `
binders:
  - name: car
    spec: unix:${join(dir, 'vehicle')}
    subscribe: [ { verb: subscribe, args: { event: speed } }, { verb: subscribe, args: { event: engine_rpm } } ]
routes:
  - { name: speed, match: ["vehicle/speed"], qos: 1, retain: true }
  - { name: rpm, match: ["*/engine_rpm"], qos: 0, payload: raw, topic: "{prefix}/{device}/rpm/{source}" }
`));
    await c.waitFor((m) => m.filter((x) => x.topic === 'fleet/car-042/events/vehicle/speed').length >= 3 && m.some((x) => x.topic === 'fleet/car-042/rpm/car'), 8000, 'speed and rpm');
    const speed = c.on('fleet/car-042/events/vehicle/speed');
    expect(speed.every((m) => m.qos === 1)).toBe(true);
    const env = JSON.parse(speed[0]!.text);
    expect(env).toMatchObject({ event: 'vehicle/speed', source: 'car', seq: 1, data: { unit: 'km/h' } });
    expect(Date.parse(env.ts)).toBeGreaterThan(Date.now() - 60_000);
    expect(speed.map((m) => JSON.parse(m.text).seq)).toEqual(speed.map((_, i) => i + 1));
    const rpm = c.on('fleet/car-042/rpm/car');
    expect(rpm.every((m) => m.qos === 0)).toBe(true);
    expect(JSON.parse(rpm[0]!.text)).toMatchObject({ unit: 'rpm' }); // raw: the data itself
    // retain: a newcomer gets the last speed at once, flagged retained
    const late = await collector(b, ['fleet/car-042/events/vehicle/speed']);
    await late.waitFor((m) => m.length > 0, 3000, 'retained speed');
    expect(late.messages[0]!.retain).toBe(true);
    // status: online, retained
    const status = await collector(b, ['fleet/car-042/status']);
    await status.waitFor((m) => m.length > 0, 3000, 'status');
    expect(JSON.parse(status.messages[0]!.text)).toMatchObject({ state: 'online', device: 'car-042' });
  });

  it("a binder's JSON text is published as it came (64-bit integers exact); text that is not JSON as a JSON string", async () => {
    const b = await broker();
    const dir = tempDir();
    const server = new WsapiServer({ api: 'big' });
    const ev = server.event('n');
    server.verb('sub', (req) => { req.subscribe(ev); req.reply(null); });
    await server.listen(`unix:${join(dir, 'big')}`);
    cleanups.push(() => server.close());
    const c = await collector(b);
    await startAgent(config(base(b, dir) + `
binders: [ { name: big, spec: "unix:${join(dir, 'big')}", subscribe: [ { verb: sub } ] } ]
routes:
  - { name: raw, match: ["big/n"], qos: 1, payload: raw }
  - { name: env, match: ["big/n"], qos: 1, topic: "{prefix}/{device}/env" }
`));
    await until(() => server.stats.calls > 0, 5000, 'subscribed');
    ev.pushText('{"n": 12345678901234567890, "s": "\u00e9"}'); // json-c writes int64 beyond 2^53 exactly
    ev.pushText('not json at all');
    await c.waitFor((m) => m.filter((x) => x.topic === 'fleet/car-042/events/big/n').length >= 2 && m.filter((x) => x.topic === 'fleet/car-042/env').length >= 2, 5000, 'both events on both routes');
    expect(c.on('fleet/car-042/events/big/n').map((m) => m.text)).toEqual(['{"n": 12345678901234567890, "s": "\u00e9"}', '"not json at all"']);
    const env = c.on('fleet/car-042/env').map((m) => m.text);
    expect(env[0]!.endsWith('"data":{"n": 12345678901234567890, "s": "\u00e9"}}'), env[0]).toBe(true);
    expect(JSON.parse(env[1]!).data).toBe('not json at all');
  });

  it('events of a native-like binder (hello3 emulation) reach MQTT, broadcasts included', async () => {
    const b = await broker();
    const dir = tempDir();
    const hello = new Hello3();
    await hello.server.listen(`unix:${join(dir, 'hello')}`);
    cleanups.push(() => hello.server.close());
    const c = await collector(b);
    const { agent } = await startAgent(config(base(b, dir) + `
binders:
  - name: hello
    spec: unix:${join(dir, 'hello')}
    subscribe: [ { verb: eventadd, args: { tag: t1, name: ev1 } }, { verb: eventsub, args: { tag: t1 } } ]
routes:
  - { name: all, match: ["hello/**"], qos: 1 }
`));
    await until(() => (agent.health().binders as Record<string, string>).hello === 'connected', 5000, 'binder connected');
    const driver = new WsapiClient(`unix:${join(dir, 'hello')}`);
    await driver.connect();
    cleanups.push(() => driver.close());
    await until(async () => (await driver.call('eventpush', { tag: 't1', data: { n: 1 } })).error === null && c.on('fleet/car-042/events/hello/ev1').length > 0, 5000, 'pushed event');
    expect(JSON.parse(c.on('fleet/car-042/events/hello/ev1')[0]!.text).data).toEqual({ n: 1 });
    await driver.call('broadcast', { name: 'bc', data: [1, 2] });
    await c.waitFor((m) => m.some((x) => x.topic === 'fleet/car-042/events/hello/bc'), 3000, 'broadcast');
    expect(JSON.parse(c.on('fleet/car-042/events/hello/bc')[0]!.text).data).toEqual([1, 2]);
  });

  it('untrusted event names cannot change the topic structure', async () => {
    const b = await broker();
    const dir = tempDir();
    const evil = new WsapiServer({ api: 'evil' });
    const names = ['a+b', '#', '$SYS', 'x/+/y', 'nul\u0000byte'];
    const events = names.map((n) => evil.event(n));
    evil.verb('sub', (req) => { for (const e of events) req.subscribe(e); req.reply(null); });
    evil.verb('fire', () => { events.forEach((e, i) => e.push({ i })); return null; });
    await evil.listen(`unix:${join(dir, 'evil')}`);
    cleanups.push(() => evil.close());
    const c = await collector(b, ['#']);
    await startAgent(config(base(b, dir) + `
binders: [ { name: evil, spec: "unix:${join(dir, 'evil')}", subscribe: [ { verb: sub } ] } ]
routes: [ { name: all, match: ["**"], qos: 1, payload: raw } ]
`));
    const driver = new WsapiClient(`unix:${join(dir, 'evil')}`);
    await driver.connect();
    cleanups.push(() => driver.close());
    await until(async () => { await driver.call('fire'); return c.messages.filter((m) => m.topic.includes('/events/')).length >= names.length; }, 5000, 'all events');
    const topics = [...new Set(c.messages.filter((m) => m.topic.includes('/events/')).map((m) => m.topic))].sort();
    expect(topics).toEqual([
      'fleet/car-042/events/evil/%23',
      'fleet/car-042/events/evil/%24SYS',
      'fleet/car-042/events/evil/a%2Bb',
      'fleet/car-042/events/evil/nul%00byte',
      'fleet/car-042/events/evil/x/%2B/y',
    ]);
    expect(c.messages.some((m) => m.topic.startsWith('$'))).toBe(false);
  });

  it('QoS 1 events published while the broker is down all arrive after it comes back, in order', async () => {
    const b = await broker();
    const dir = tempDir();
    const server = new WsapiServer({ api: 'seq' });
    const tick = server.event('tick');
    server.verb('sub', (req) => { req.subscribe(tick); req.reply(null); });
    await server.listen(`unix:${join(dir, 'seq')}`);
    cleanups.push(() => server.close());
    // A persistent session (clean: false): the broker keeps what arrives while this subscriber is
    // reconnecting after the outage, so the agent may deliver before it is back.
    const c = await Collector.connect(b, ['fleet/+/events/#'], 1, { clean: false, clientId: `persistent-${process.pid}` });
    cleanups.push(() => c.close());
    const { agent } = await startAgent(config(base(b, dir) + `
binders: [ { name: seq, spec: "unix:${join(dir, 'seq')}", subscribe: [ { verb: sub } ] } ]
routes: [ { name: ticks, match: ["seq/tick"], qos: 1, payload: raw } ]
`));
    await until(() => (agent.health().binders as Record<string, string>).seq === 'connected' && agent.health().mqtt === 'connected', 5000, 'agent up');
    let n = 0;
    const push = (count: number) => { for (let i = 0; i < count; i++) tick.push({ n: ++n }); };
    push(20);
    await c.waitCount('fleet/car-042/events/seq/tick', 20, 5000);
    await b.stop();
    await until(() => agent.health().mqtt === 'disconnected', 5000, 'agent sees the outage');
    push(200); // accepted into the outbox while the broker is down
    await until(async () => (await agent.metrics.outboxDepth.get()).values[0]!.value >= 200, 5000, 'outbox filled');
    await b.start();
    await c.waitFor((m) => new Set(m.map((x) => x.text)).size >= 220, 15000, 'the 200 events of the outage');
    const got = c.on('fleet/car-042/events/seq/tick').map((m) => (JSON.parse(m.text) as { n: number }).n).filter((n) => n > 20);
    // at least once, in order: deduplicated it is exactly 21..220
    const unique = got.filter((v, i) => i === 0 || v > got[i - 1]!);
    expect(unique).toEqual(Array.from({ length: 200 }, (_, i) => 21 + i));
    await until(async () => (await agent.metrics.outboxDepth.get()).values[0]!.value === 0, 5000, 'outbox drained');
  });
});

describe('agent: remote commands over MQTT', () => {
  async function setup(v: 4 | 5) {
    const b = await broker();
    const dir = tempDir();
    const sim = new SimulatedBinder({ api: 'vehicle', periodMs: 0 });
    await sim.listen(`unix:${join(dir, 'vehicle')}`);
    cleanups.push(() => sim.close());
    const { agent, logs } = await startAgent(config(base(b, dir, v) + `
binders: [ { name: vehicle, spec: "unix:${join(dir, 'vehicle')}" } ]
routes: []
commands: { enabled: true, allow: [ { binder: vehicle, verbs: [ping, info] } ] }
`));
    await until(() => agent.health().mqtt === 'connected' && (agent.health().binders as Record<string, string>).vehicle === 'connected', 5000, 'agent up');
    const remote = await mqtt.connectAsync(b.url, { protocolVersion: b.supportsV5 ? v : 4, clientId: `remote-${v}-${process.pid}` });
    cleanups.push(() => remote.endAsync(true));
    const replies: Array<{ topic: string; body: Record<string, unknown>; correlation?: string }> = [];
    remote.on('message', (topic, payload, packet) => {
      replies.push({ topic, body: JSON.parse(payload.toString()), correlation: packet.properties?.correlationData?.toString() });
    });
    await remote.subscribeAsync('ops/#', { qos: 1 });
    await remote.subscribeAsync('fleet/car-042/reply/#', { qos: 1 });
    // The agent subscribes asynchronously after connecting: wait until a request is answered.
    return { b, remote, replies, logs };
  }

  it('MQTT 3.1.1: reply on reply_to with the id; forbidden verbs refused and logged', async () => {
    const { remote, replies, logs } = await setup(4);
    await until(async () => {
      await remote.publishAsync('fleet/car-042/call/vehicle/ping', JSON.stringify({ id: 'r1', reply_to: 'ops/r1', args: { a: 1 } }), { qos: 1 });
      await new Promise((r) => setTimeout(r, 100));
      return replies.some((r) => r.topic === 'ops/r1');
    }, 5000, 'a reply');
    expect(replies.find((r) => r.topic === 'ops/r1')!.body).toMatchObject({ id: 'r1', error: null, data: { pong: { a: 1 } } });
    await remote.publishAsync('fleet/car-042/call/vehicle/push', JSON.stringify({ id: 'r2', args: { event: 'alert' } }), { qos: 1 });
    await until(() => replies.some((r) => r.body.id === 'r2'), 3000, 'forbidden reply');
    expect(replies.find((r) => r.body.id === 'r2')).toMatchObject({ topic: 'fleet/car-042/reply/vehicle/push', body: { error: 'forbidden' } });
    expect(logs.some((l) => l.includes('forbidden: vehicle/push'))).toBe(true);
  });

  it('MQTT 5: the reply goes to the response topic with the correlation data', async (ctx) => {
    const { b, remote, replies } = await setup(5);
    if (!b.supportsV5) ctx.skip(); // only on the aedes fallback, which speaks 3.1.1 only (CI runs mosquitto)
    await until(async () => {
      await remote.publishAsync('fleet/car-042/call/vehicle/ping', JSON.stringify({ v: 5 }), { qos: 1, properties: { responseTopic: 'ops/v5', correlationData: Buffer.from('c-42') } });
      await new Promise((r) => setTimeout(r, 100));
      return replies.some((r) => r.topic === 'ops/v5');
    }, 5000, 'a v5 reply');
    const r = replies.find((x) => x.topic === 'ops/v5')!;
    expect(r.correlation).toBe('c-42');
    expect(r.body).toMatchObject({ error: null, data: { pong: { v: 5 } } });
    expect(r.body.id).toBeUndefined();
  });
});
