/**
 * Serial links through the whole agent, in process: ECUs on real ptys
 * (socat; the test speaks slcan / NDJSON / COBS on the ECU end with the
 * codecs), a real mosquitto, the simulated binder, and a wsapi client of the
 * exported ecu API on a real unix socket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { SerialPortStream } from '@serialport/stream';
import mqtt from 'mqtt';
import { Agent } from '../../src/agent/agent.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { encodeFrame as cobsFrame } from '../../src/serial/cobs-codec.js';
import { encodeLine, NdjsonDecoder } from '../../src/serial/ndjson-codec.js';
import { encodeFrame as canFrame, SlcanDecoder, type CanFrame } from '../../src/serial/slcan-codec.js';
import { SimulatedBinder } from '../../src/sim/simulated-binder.js';
import { WsapiClient } from '../../src/wsapi/index.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Collector, captureLogger, counter } from '../helpers/mqtt-helpers.js';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';
import { openPeer, ptyPair, recorder } from '../helpers/pty.js';
import { agentConfig } from '../helpers/serial-config.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const until = (cond: () => boolean | Promise<boolean>, ms = 8000, what = 'condition'): Promise<void> => waitFor(cond, ms, what, 20);

async function broker(): Promise<Broker> {
  const b = await startBroker();
  cleanup.add(() => b.close());
  return b;
}

async function collector(b: Broker, filters = ['fleet/#']): Promise<Collector> {
  const c = await Collector.connect(b, filters, 1);
  cleanup.add(() => c.close());
  return c;
}

async function startAgent(b: Broker, dir: string, partial: Record<string, unknown>) {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const cfg = agentConfig({
    mqtt: { url: b.url, protocol_version: b.supportsV5 ? 5 : 4, topic_prefix: 'fleet', status_interval_s: 0, reconnect: { initial_delay_ms: 50, max_delay_ms: 300 } },
    outbox: { path: join(dir, 'outbox.db'), synchronous: 'normal' },
    ...partial,
  });
  const logger = captureLogger();
  const agent = new Agent(cfg, { logger, version: 'test', metrics });
  await agent.start();
  cleanup.add(() => agent.stop('test over'));
  return { agent, metrics, logger };
}

/** The ECU end of an slcan adapter: answers setup commands with CR, records the frames the agent sends. */
function slcanEcu(port: SerialPortStream): { sent: CanFrame[] } {
  const sent: CanFrame[] = [];
  let line = '';
  port.on('data', (d: Buffer) => {
    for (const ch of d.toString('latin1')) {
      if (ch !== '\r') { line += ch; continue; }
      if (/^[CSZOL]/.test(line)) port.write('\r');
      else if (line.startsWith('t') || line.startsWith('T')) {
        const [item] = new SlcanDecoder().push(Buffer.from(line + '\r', 'latin1'));
        if (item?.kind === 'frame') sent.push(item.frame);
      }
      line = '';
    }
  });
  return { sent };
}

const slcanLink = (device: string, extra: Record<string, unknown> = {}) => ({
  name: 'can0', device, protocol: 'slcan', slcan: { bitrate: 500000, timestamps: false },
  reopen: { initial_delay_ms: 50, max_delay_ms: 200 },
  messages: [
    { id: 0x0cf00400, extended: true, name: 'EEC1', signals: [{ name: 'engine_speed', start_bit: 24, length: 16, scale: 0.125, unit: 'rpm' }] },
    { id: 0x200, name: 'Counter', signals: [{ name: 'n', start_bit: 0, length: 32 }] },
    { id: 0x310, name: 'DashSpeed', signals: [{ name: 'kmh', start_bit: 0, length: 16, scale: 0.1 }] },
  ],
  ...extra,
});

describe('agent: serial ECU → MQTT', () => {
  it('CAN frames become routed MQTT messages with decoded signals; the link state is published retained', async () => {
    const b = await broker();
    const dir = tempDir(cleanup, 'agent-serial');
    const pty = await ptyPair(cleanup, dir, 'can');
    const peer = await openPeer(cleanup, pty.peer);
    slcanEcu(peer);
    const c = await collector(b);
    const { agent, metrics } = await startAgent(b, dir, {
      serial: { links: [slcanLink(pty.device)] },
      routes: [{ name: 'can', match: ['can0/*'], sources: ['can0'], payload: 'raw', topic: '{prefix}/{device}/ecu/{source}/{event}' }],
    });
    await until(() => agent.health().links !== undefined && (agent.health().links as Record<string, string>).can0 === 'open', 8000, 'link open');
    peer.write('T0CF004008FFFFFF201CFFFFFF\r');
    peer.write('t1232BEEF\r');
    peer.write('Q-garbage\r');
    await c.waitFor((m) => m.some((x) => x.topic === 'fleet/car-042/ecu/can0/123'), 5000, 'unmapped id');
    const eec1 = c.on('fleet/car-042/ecu/can0/EEC1');
    expect(JSON.parse(eec1[0]!.text)).toMatchObject({ id: 0x0cf00400, extended: true, dlc: 8, data: 'ffffff201cffffff', values: { engine_speed: 900 }, units: { engine_speed: 'rpm' } });
    expect(JSON.parse(c.on('fleet/car-042/ecu/can0/123')[0]!.text)).toMatchObject({ id: 0x123, data: 'beef' });
    const state = c.on('fleet/car-042/status/links/can0');
    expect(JSON.parse(state.at(-1)!.text)).toMatchObject({ link: 'can0', state: 'open', protocol: 'slcan' });
    expect(await counter(metrics.serialRejected, { link: 'can0', reason: 'unknown' })).toBe(1);
    expect(await counter(metrics.eventsIn, { source: 'can0' })).toBe(2);
  });

  it('reports an unplugged adapter on the status topic and resumes after the replug', async () => {
    const b = await broker();
    const dir = tempDir(cleanup, 'agent-serial');
    let pty = await ptyPair(cleanup, dir, 'can');
    let peer = await openPeer(cleanup, pty.peer);
    slcanEcu(peer);
    const c = await collector(b);
    await startAgent(b, dir, {
      serial: { links: [slcanLink(pty.device)] },
      routes: [{ name: 'can', match: ['can0/*'], payload: 'raw' }],
    });
    const states = () => c.on('fleet/car-042/status/links/can0').map((m) => JSON.parse(m.text) as { state: string; reason: string });
    await c.waitFor(() => states().some((s) => s.state === 'open'), 8000, 'open state');
    await pty.unplug();
    await c.waitFor(() => states().at(-1)?.state === 'waiting', 5000, 'waiting state');
    expect(states().at(-1)!.reason).toMatch(/can-dev/);
    pty = await ptyPair(cleanup, dir, 'can');
    peer = await openPeer(cleanup, pty.peer);
    slcanEcu(peer);
    await c.waitFor(() => states().at(-1)?.state === 'open', 8000, 'open again');
    peer.write('t200401000000\r');
    await c.waitFor((m) => m.some((x) => x.topic === 'fleet/car-042/events/can0/Counter'), 5000, 'frame after replug');
  });

  it('carries 2,000 CAN frames/s for 3 s to MQTT (QoS 1, durable outbox) with none lost and in order', async () => {
    const b = await broker();
    const dir = tempDir(cleanup, 'agent-serial');
    const pty = await ptyPair(cleanup, dir, 'can');
    const peer = await openPeer(cleanup, pty.peer);
    slcanEcu(peer);
    const c = await collector(b, ['fleet/car-042/events/can0/#']);
    const { agent, metrics } = await startAgent(b, dir, {
      serial: { links: [slcanLink(pty.device)] },
      routes: [{ name: 'can', match: ['can0/Counter'], payload: 'raw', qos: 1 }],
    });
    await until(() => (agent.health().links as Record<string, string>).can0 === 'open', 8000, 'link open');
    const total = 6000;
    let sent = 0;
    const started = Date.now();
    // 20 frames every 10 ms = 2,000 frames/s, written as the adapter would (a few frames per USB packet)
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * 2000) + 20);
        const lines: Buffer[] = [];
        for (; sent < due; sent++) lines.push(canFrame({ id: 0x200, data: Buffer.from([sent & 0xff, (sent >> 8) & 0xff, (sent >> 16) & 0xff, 0]) }));
        if (lines.length > 0) peer.write(Buffer.concat(lines));
        if (sent >= total) { clearInterval(timer); resolve(); }
      }, 10);
    });
    await c.waitCount('fleet/car-042/events/can0/Counter', total, 20_000);
    const ns = c.on('fleet/car-042/events/can0/Counter').map((m) => (JSON.parse(m.text) as { values: { n: number } }).values.n);
    expect(ns.length).toBe(total);
    expect(ns.every((n, i) => n === i)).toBe(true);
    expect(await counter(metrics.serialFrames, { link: 'can0' })).toBe(total);
    expect(await counter(metrics.dropped, { reason: 'outbox_full' })).toBe(0);
  }, 40_000);
});

describe('agent: commands and routes → serial ECU', () => {
  it('a binder event routed to an slcan link becomes a CAN frame encoded through the message map', async () => {
    const b = await broker();
    const dir = tempDir(cleanup, 'agent-serial');
    const sim = new SimulatedBinder({ api: 'vehicle', periodMs: 20 });
    await sim.listen(`unix:${join(dir, 'vehicle')}`);
    cleanup.add(() => sim.close());
    const pty = await ptyPair(cleanup, dir, 'can');
    const peer = await openPeer(cleanup, pty.peer);
    const ecu = slcanEcu(peer);
    await startAgent(b, dir, {
      binders: [{ name: 'car', spec: `unix:${join(dir, 'vehicle')}`, subscribe: [{ verb: 'subscribe', args: { event: 'speed' } }] }],
      serial: { links: [slcanLink(pty.device)] },
      routes: [{ name: 'dash', match: ['vehicle/speed'], sources: ['car'], link: { name: 'can0', message: 'DashSpeed', values: { kmh: 'value' } } }],
    });
    await until(() => ecu.sent.length >= 3, 8000, 'frames on the bus');
    for (const f of ecu.sent) {
      expect(f).toMatchObject({ id: 0x310, extended: false, dlc: 2 });
      const kmh = f.data.readUInt16LE(0) * 0.1;
      expect(kmh).toBeGreaterThanOrEqual(19.9);
      expect(kmh).toBeLessThanOrEqual(100.1);
    }
  });

  it('MQTT commands reach an NDJSON ECU as requests and one-way sends, under the allow-list', async () => {
    const b = await broker();
    const dir = tempDir(cleanup, 'agent-serial');
    const pty = await ptyPair(cleanup, dir, 'mcu');
    const peer = await openPeer(cleanup, pty.peer);
    const received: Array<Record<string, unknown>> = [];
    const dec = new NdjsonDecoder();
    peer.on('data', (d: Buffer) => {
      for (const m of dec.push(d) as Array<Record<string, unknown>>) {
        received.push(m);
        if (typeof m.id === 'number') peer.write(encodeLine(m.verb === 'get' ? { id: m.id, result: { fan: 3 } } : { id: m.id, error: `unknown verb '${String(m.verb)}'` }));
      }
    });
    const c = await collector(b, ['fleet/car-042/reply/#']);
    await startAgent(b, dir, {
      serial: { links: [{ name: 'mcu0', device: pty.device, protocol: 'ndjson', reopen: { initial_delay_ms: 50, max_delay_ms: 200 } }] },
      commands: { enabled: true, allow: [{ binder: 'mcu0', verbs: ['get', 'send', 'info'] }] },
      routes: [],
    });
    const client = await mqtt.connectAsync(b.url, { protocolVersion: 4 });
    cleanup.add(() => client.endAsync(true));
    await until(() => true);
    await waitFor(async () => {
      await client.publishAsync('fleet/car-042/call/mcu0/info', '{"id":"i"}', { qos: 1 });
      return c.messages.some((m) => m.topic === 'fleet/car-042/reply/mcu0/info' && (JSON.parse(m.text) as { data?: { state?: string } }).data?.state === 'open');
    }, 8000, 'link open per info', 200);
    await client.publishAsync('fleet/car-042/call/mcu0/get', JSON.stringify({ id: 'q1', args: { key: 'fan' } }), { qos: 1 });
    await client.publishAsync('fleet/car-042/call/mcu0/send', JSON.stringify({ id: 'q2', args: { verb: 'beep', args: { ms: 100 } } }), { qos: 1 });
    await client.publishAsync('fleet/car-042/call/mcu0/reboot', JSON.stringify({ id: 'q3', args: {} }), { qos: 1 });
    await c.waitFor((m) => m.filter((x) => !x.topic.endsWith('/info')).length >= 3, 5000, 'three replies');
    const reply = (t: string) => JSON.parse(c.on(`fleet/car-042/reply/mcu0/${t}`)[0]!.text) as Record<string, unknown>;
    expect(reply('get')).toMatchObject({ id: 'q1', data: { fan: 3 }, error: null });
    expect(reply('send')).toMatchObject({ id: 'q2', error: null });
    expect(reply('reboot')).toMatchObject({ id: 'q3', error: 'forbidden' });
    await until(() => received.some((m) => m.verb === 'beep'), 3000, 'one-way send on the wire');
    expect(received.filter((m) => m.verb !== undefined).map((m) => m.verb)).toEqual(['get', 'beep']);
    expect(received.find((m) => m.verb === 'beep')).toEqual({ verb: 'beep', args: { ms: 100 } });
  });
});

describe('agent: exported ecu wsapi API', () => {
  it('lists links, pushes subscribed ECU events as ecu/{link}, sends and requests through a link', async () => {
    const b = await broker();
    const dir = tempDir(cleanup, 'agent-serial');
    const pty = await ptyPair(cleanup, dir, 'mcu');
    const peer = await openPeer(cleanup, pty.peer);
    const got = recorder(peer);
    const apiSock = join(dir, 'ecu');
    await startAgent(b, dir, {
      serial: { links: [{ name: 'mcu0', device: pty.device, protocol: 'cobs', reopen: { initial_delay_ms: 50, max_delay_ms: 200 } }] },
      ecu_api: { listen: [`unix:${apiSock}`] },
      routes: [],
    });
    const client = new WsapiClient(`unix:${apiSock}`, {});
    cleanup.add(() => client.close());
    await client.connect();
    await waitFor(async () => {
      const r = await client.call('links', null);
      return r.error === null && (r.data as Array<{ state: string }>)[0]?.state === 'open';
    }, 8000, 'link open per links', 100);
    const links = (await client.call('links', null)).data as Array<Record<string, unknown>>;
    expect(links).toEqual([expect.objectContaining({ name: 'mcu0', protocol: 'cobs', state: 'open', device: pty.device })]);

    const events: Array<[string, unknown]> = [];
    client.on('event', (name: string, data: unknown) => events.push([name, data]));
    expect((await client.call('subscribe', { link: 'mcu0' })).error).toBeNull();
    peer.write(cobsFrame(Buffer.from('{"event":"temperature","data":{"celsius":21.5}}')));
    await until(() => events.length === 1, 5000, 'pushed event');
    expect(events[0]).toEqual(['ecu/mcu0', { event: 'temperature', data: { celsius: 21.5 } }]);

    expect(await client.call('send', { link: 'mcu0', verb: 'led', args: { on: true } })).toMatchObject({ error: null, info: 'queued' });
    const pending = client.call('request', { link: 'mcu0', verb: 'get', args: { key: 'fan' } });
    await until(() => got.bytes().includes(Buffer.from('"verb":"get"')), 5000, 'request on the wire');
    const id = /"id":(\d+)/.exec(got.text())![1];
    peer.write(cobsFrame(Buffer.from(`{"id":${id},"result":{"fan":3}}`)));
    expect(await pending).toMatchObject({ error: null, data: { fan: 3 } });
    expect(await client.call('send', { link: 'nope' })).toMatchObject({ error: 'unknown-link' });
    expect(await client.call('send', { link: 'mcu0', verb: 42 })).toMatchObject({ error: 'invalid-request' });

    expect((await client.call('unsubscribe', { link: 'mcu0' })).error).toBeNull();
    peer.write(cobsFrame(Buffer.from('{"event":"temperature","data":{"celsius":22}}')));
    await new Promise((r) => setTimeout(r, 200));
    expect(events.length).toBe(1);
  });
});
