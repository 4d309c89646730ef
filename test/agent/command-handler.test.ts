/**
 * CommandHandler: request parsing, allow-list, limits and replies. The MQTT
 * side is an in-memory transport here (the real broker path is covered by
 * the agent tests); the binder behind it is a real simulated binder.
 */
import { waitFor } from '../helpers/net-helpers.js';
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandsConfig } from '../../src/config/types.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { SimulatedBinder } from '../../src/sim/simulated-binder.js';
import { BinderSource } from '../../src/sources/binder/binder-source.js';
import { CommandHandler, type CommandPacket, type CommandTransport } from '../../src/sources/mqtt-commands/command-handler.js';
import { createLogger } from '../../src/util/log.js';
import { WsapiServer } from '../../src/wsapi/index.js';

class MemoryTransport implements CommandTransport {
  handler: ((topic: string, payload: Buffer, packet: CommandPacket) => void) | undefined;
  filter = '';
  sent: Array<{ topic: string; body: Record<string, unknown>; properties?: Record<string, unknown> }> = [];
  subscribe(filter: string, _qos: 0 | 1 | 2, handler: (topic: string, payload: Buffer, packet: CommandPacket) => void): void {
    this.filter = filter;
    this.handler = handler;
  }
  publishNow(topic: string, payload: Buffer, options: { properties?: Record<string, unknown> }): void {
    this.sent.push({ topic, body: JSON.parse(payload.toString()), properties: options.properties });
  }
  request(topic: string, payload: unknown, packet: CommandPacket = {}): void {
    this.handler!(topic, Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), packet);
  }
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// Each file keeps its own default timeout and polling pace (some conditions do I/O).
const until = (cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> => waitFor(cond, ms, what, 5);

async function setup(overrides: Partial<CommandsConfig> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-cmd-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const binder = new SimulatedBinder({ api: 'vehicle', periodMs: 0 });
  await binder.listen(`unix:${join(dir, 'vehicle')}`);
  cleanups.push(() => binder.close());
  // A second API whose verb never answers, for timeouts and concurrency.
  const slow = new WsapiServer({ api: 'slow' });
  const held: Array<() => void> = [];
  slow.verb('hang', (req) => { held.push(() => req.reply('late')); });
  await slow.listen(`unix:${join(dir, 'slow')}`);
  cleanups.push(() => slow.close());
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const logs: string[] = [];
  const logger = createLogger('debug', (l) => logs.push(l));
  const sources = new Map<string, BinderSource>();
  for (const name of ['vehicle', 'slow']) {
    const s = new BinderSource({ name, spec: `unix:${join(dir, name)}`, subscribe: [], reconnect: { initial_delay_ms: 20, max_delay_ms: 100 }, call_timeout_ms: 2000 }, { metrics, logger, onEvent: () => {} });
    s.start();
    cleanups.push(() => s.stop());
    sources.set(name, s);
  }
  await until(() => [...sources.values()].every((s) => s.connected));
  const config: CommandsConfig = {
    enabled: true, topic: 'p/dev/call', reply_topic: 'p/dev/reply', timeout_ms: 300, max_concurrent: 2, max_queue: 1,
    allow: [{ binder: 'vehicle', verbs: ['ping', 'info', 'sub*'] }, { binder: 'slow', verbs: ['hang'] }],
    ...overrides,
  };
  const handler = new CommandHandler(config, { request: 'p/dev/call', reply: 'p/dev/reply' }, (n) => sources.get(n), { metrics, logger });
  const t = new MemoryTransport();
  handler.start(t);
  return { t, metrics, logs, held, handler };
}

describe('CommandHandler', () => {
  it('subscribes to {topic}/+/+ and answers an allowed 3.1.1 request on the default reply topic with its id', async () => {
    const { t } = await setup();
    expect(t.filter).toBe('p/dev/call/+/+');
    t.request('p/dev/call/vehicle/ping', { id: 'r1', args: { a: 1 } });
    await until(() => t.sent.length === 1);
    expect(t.sent[0]!.topic).toBe('p/dev/reply/vehicle/ping');
    expect(t.sent[0]!.body).toMatchObject({ id: 'r1', error: null, data: { pong: { a: 1 } } });
  });

  it('uses reply_to when given, and refuses wildcard or $ reply topics', async () => {
    const { t } = await setup();
    t.request('p/dev/call/vehicle/ping', { id: 2, reply_to: 'ops/replies/42', args: null });
    await until(() => t.sent.length === 1);
    expect(t.sent[0]!.topic).toBe('ops/replies/42');
    t.request('p/dev/call/vehicle/ping', { id: 3, reply_to: 'ops/#' });
    t.request('p/dev/call/vehicle/ping', { id: 4, reply_to: '$SYS/x' });
    await until(() => t.sent.length === 3);
    expect(t.sent.slice(1).map((s) => [s.topic, s.body.error])).toEqual([
      ['p/dev/reply/vehicle/ping', 'invalid-request'],
      ['p/dev/reply/vehicle/ping', 'invalid-request'],
    ]);
  });

  it('MQTT 5: args are the payload, the reply goes to the response topic with the correlation data', async () => {
    const { t } = await setup();
    const correlationData = Buffer.from('corr-7');
    t.request('p/dev/call/vehicle/ping', { b: 2 }, { properties: { responseTopic: 'ops/r/7', correlationData } });
    await until(() => t.sent.length === 1);
    expect(t.sent[0]!.topic).toBe('ops/r/7');
    expect(t.sent[0]!.body).toEqual({ error: null, info: 'ping count=1', data: { pong: { b: 2 }, count: 1 } });
    expect(t.sent[0]!.properties).toEqual({ correlationData });
  });

  it('refuses what the allow-list does not name with "forbidden", logs and counts it', async () => {
    const { t, metrics, logs } = await setup();
    t.request('p/dev/call/vehicle/push', { id: 'x', args: { event: 'alert' } });
    t.request('p/dev/call/other/ping', { id: 'y' });
    await until(() => t.sent.length === 2);
    expect(t.sent.map((s) => s.body.error)).toEqual(['forbidden', 'forbidden']);
    expect(logs.filter((l) => l.includes('forbidden'))).toHaveLength(2);
    expect((await metrics.commands.get()).values.find((v) => v.labels.outcome === 'forbidden')!.value).toBe(2);
  });

  it('answers invalid JSON with invalid-request', async () => {
    const { t } = await setup();
    t.request('p/dev/call/vehicle/ping', '{not json');
    t.request('p/dev/call/vehicle/ping', '[1,2]');
    await until(() => t.sent.length === 2);
    expect(t.sent.map((s) => s.body.error)).toEqual(['invalid-request', 'invalid-request']);
  });

  it('gives "timeout" when the binder does not answer in time', async () => {
    const { t } = await setup();
    t.request('p/dev/call/slow/hang', { id: 't' });
    await until(() => t.sent.length === 1, 3000);
    expect(t.sent[0]!.body).toMatchObject({ id: 't', error: 'timeout' });
  });

  it('runs max_concurrent at once, queues max_queue, answers "busy" beyond', async () => {
    const { t, held } = await setup({ timeout_ms: 5000 });
    for (let i = 0; i < 4; i++) t.request('p/dev/call/slow/hang', { id: i });
    await until(() => t.sent.length === 1 && held.length === 2);
    expect(t.sent[0]!.body).toMatchObject({ id: 3, error: 'busy' });
    held.splice(0).forEach((f) => f());
    await until(() => t.sent.length === 3 && held.length === 1);
    held.splice(0).forEach((f) => f());
    await until(() => t.sent.length === 4);
    expect(t.sent.slice(1).map((s) => s.body.id).sort()).toEqual([0, 1, 2]);
  });

  it('on-demand subscriptions: a request with subscribe:true goes through subscribeOnDemand', async () => {
    const { t } = await setup();
    t.request('p/dev/call/vehicle/subscribe', { id: 's', args: { event: 'speed' }, subscribe: true });
    await until(() => t.sent.length === 1);
    expect(t.sent[0]!.body).toMatchObject({ id: 's', error: null, data: { events: ['vehicle/speed'] } });
  });

  it('reconfigure() replaces the allow-list', async () => {
    const { t, handler } = await setup();
    expect(handler.isAllowed('vehicle', 'ping')).toBe(true);
    handler.reconfigure({ enabled: true, topic: 'p/dev/call', reply_topic: 'p/dev/reply', timeout_ms: 300, max_concurrent: 2, max_queue: 1, allow: [] });
    t.request('p/dev/call/vehicle/ping', { id: 'z' });
    await until(() => t.sent.length === 1);
    expect(t.sent[0]!.body.error).toBe('forbidden');
  });
});
