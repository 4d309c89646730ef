/**
 * The dashboard server without a browser: a real mosquitto, the server in
 * this process, WebSocket clients from the `ws` package. What a flood on
 * the bus costs a browser (coalescing, bounds and their counters), the
 * access checks (Host, Origin, token), the usage errors of the CLI, and the
 * page's headers.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type Dashboard, type DashboardOptions } from '../../src/remote/dashboard/server.js';
import type { ServerMessage } from '../../src/remote/dashboard/protocol.js';
import { silentLogger } from '../../src/util/log.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { cliMain, ensureBuilt } from '../helpers/cli.js';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
beforeAll(() => ensureBuilt());

async function setup(over: Partial<DashboardOptions> = {}): Promise<{ broker: Broker; dash: Dashboard; pub: mqtt.MqttClient; host: string }> {
  const broker = await startBroker();
  cleanup.add(() => broker.close());
  const dash = await startDashboard({
    listen: { host: '127.0.0.1', port: 0 }, broker: broker.url, mqtt: { clientId: `dash-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 200 },
    prefix: 'afb-edge', devices: [], allowCommands: false, version: 'test', logger: silentLogger, ...over,
  });
  cleanup.add(() => dash.close());
  const pub = await mqtt.connectAsync(broker.url, { clientId: `pub-${Math.random().toString(16).slice(2)}` });
  cleanup.add(() => pub.endAsync());
  return { broker, dash, pub, host: `127.0.0.1:${dash.port}` };
}

interface Client { ws: WebSocket; messages: Array<ServerMessage & { at: number }>; send(o: unknown): void }

async function client(host: string, headers: Record<string, string> = {}): Promise<Client> {
  const ws = new WebSocket(`ws://${host}/ws`, { headers: { Origin: `http://${host}`, ...headers } });
  const messages: Client['messages'] = [];
  ws.on('message', (d) => messages.push({ ...(JSON.parse(d.toString()) as ServerMessage), at: Date.now() }));
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  cleanup.add(() => ws.terminate());
  return { ws, messages, send: (o) => ws.send(typeof o === 'string' ? o : JSON.stringify(o)) };
}

async function metric(host: string, name: string, label: string): Promise<number> {
  const text = await (await fetch(`http://${host}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${label}}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

const envelope = (name: string, seq: number, data: unknown) => JSON.stringify({ event: name, source: 'vehicle', ts: new Date().toISOString(), seq, data });

describe('dashboard server', () => {
  it('a flood on the bus reaches a device view as at most --ui-rate messages a second, bounded, the excess counted', async () => {
    const { pub, host } = await setup({ uiRate: 10 });
    await pub.publishAsync('afb-edge/flood-1/status', JSON.stringify({ state: 'online', reason: 'started', ts: Date.now() }), { retain: true, qos: 1 });
    const device = await client(host);
    device.send({ t: 'view', view: 'device', device: 'flood-1' });
    const fleet = await client(host);
    fleet.send({ t: 'view', view: 'fleet' });
    await waitFor(() => fleet.messages.some((m) => m.t === 'fleet' && m.rows.some((r) => r.device === 'flood-1')), 5000, 'the fleet row');
    // 20,000 events as fast as mqtt.js sends them (QoS 0).
    const start = Date.now();
    for (let i = 0; i < 20_000; i++) pub.publish('afb-edge/flood-1/events/vehicle/speed', envelope('vehicle/speed', i, { value: i }), { qos: 0 });
    await new Promise<void>((r) => pub.publish('afb-edge/flood-1/events/vehicle/speed', envelope('vehicle/speed', 20_000, { value: -1 }), { qos: 1 }, () => r()));
    await waitFor(async () => (await metric(host, 'afb_edge_monitor_messages_total', 'kind="event"')) >= 20_001, 20_000, 'the monitor receiving the flood', 50);
    await new Promise((r) => setTimeout(r, 500));
    const seconds = (Date.now() - start) / 1000;
    const batches = device.messages.filter((m) => m.t === 'events' && !m.history);
    const shown = batches.reduce((n, m) => n + (m.t === 'events' ? m.events.length : 0), 0);
    const dropped = batches.reduce((n, m) => n + (m.t === 'events' ? m.dropped : 0), 0);
    // ≤ 10 flushes a second (+1 for the partial second), each ≤ 200 events.
    expect(batches.length).toBeLessThanOrEqual(Math.ceil(seconds * 10) + 1);
    expect(batches.every((m) => m.t === 'events' && m.events.length <= 200)).toBe(true);
    expect(shown + dropped).toBeGreaterThan(0);
    expect(shown).toBeLessThan(20_001);
    expect(dropped).toBeGreaterThan(0);
    expect(await metric(host, 'afb_edge_monitor_dropped_total', 'reason="browser-queue"')).toBe(dropped);
    // The fleet view: row changes and activity, each at its own bounded rate, never per message.
    const fleetMsgs = fleet.messages.filter((m) => m.at >= start && (m.t === 'fleet' || m.t === 'activity'));
    expect(fleetMsgs.length).toBeLessThanOrEqual(Math.ceil(seconds * (10 + 2)) + 2);
    const last = [...fleet.messages].reverse().find((m) => m.t === 'activity');
    expect(last?.t === 'activity' && last.rows[0]![2]).toBe(20_001);
  }, 40_000);

  it('history: a device view opened late starts with the last --history messages; a cleared retained status removes the device', async () => {
    const { pub, host } = await setup({ history: 5 });
    await pub.publishAsync('afb-edge/car-9/status', JSON.stringify({ state: 'online', ts: Date.now() }), { retain: true, qos: 1 });
    for (let i = 0; i < 12; i++) await pub.publishAsync('afb-edge/car-9/events/vehicle/speed', envelope('vehicle/speed', i, { value: i }), { qos: 1 });
    await waitFor(async () => (await metric(host, 'afb_edge_monitor_messages_total', 'kind="event"')) >= 12, 5000, 'events received', 20);
    const c = await client(host);
    c.send({ t: 'view', view: 'device', device: 'car-9' });
    await waitFor(() => c.messages.some((m) => m.t === 'events' && m.history), 3000, 'history');
    const h = c.messages.find((m) => m.t === 'events' && m.history)!;
    expect(h.t === 'events' && h.events.map((e) => e.seq)).toEqual([7, 8, 9, 10, 11]);
    const f = await client(host);
    f.send({ t: 'view', view: 'fleet' });
    await waitFor(() => f.messages.some((m) => m.t === 'fleet' && m.rows.some((r) => r.device === 'car-9')), 3000, 'car-9 in the fleet');
    await pub.publishAsync('afb-edge/car-9/status', '', { retain: true, qos: 1 });
    await waitFor(() => f.messages.some((m) => m.t === 'fleet' && (m.removed ?? []).includes('car-9')), 3000, 'car-9 removed');
  });

  it('bad payloads are shown as text and counted; devices beyond --max-devices are refused and counted', async () => {
    const { pub, host } = await setup({ maxDevices: 2 });
    const f = await client(host);
    f.send({ t: 'view', view: 'fleet' });
    await pub.publishAsync('afb-edge/a/status', 'not json', { qos: 1 });
    await pub.publishAsync('afb-edge/a/health', '[1,2]', { qos: 1 });
    await pub.publishAsync('afb-edge/b/events/x/y', '{"v":1}', { qos: 1 });
    await pub.publishAsync('afb-edge/c/events/x/y', '{"v":1}', { qos: 1 });
    await pub.publishAsync('afb-edge/d/status', '{"state":"online"}', { qos: 1 });
    await waitFor(async () => (await metric(host, 'afb_edge_monitor_dropped_total', 'reason="max-devices"')) === 2, 5000, 'two devices refused', 20);
    expect(await metric(host, 'afb_edge_monitor_malformed_total', 'kind="status"')).toBe(1);
    expect(await metric(host, 'afb_edge_monitor_malformed_total', 'kind="health"')).toBe(1);
    await waitFor(() => f.messages.some((m) => m.t === 'fleet' && m.rows.some((r) => r.device === 'b')), 3000, 'b shown');
    const devices = new Set(f.messages.flatMap((m) => (m.t === 'fleet' ? m.rows.map((r) => r.device) : [])));
    expect([...devices].sort()).toEqual(['a', 'b']);
  });

  it('refuses: a Host that is not loopback (DNS rebinding), a foreign or missing Origin, a bad request, commands when not allowed', async () => {
    const { host } = await setup({ maxClients: 2 });
    const page = await fetch(`http://${host}/`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    const html = await page.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=|<style/);
    expect((await fetch(`http://${host}/app.js`)).headers.get('content-type')).toMatch(/javascript/);
    // DNS rebinding: the request comes to 127.0.0.1 but names another host.
    const rebinding = await new Promise<number>((resolve) => {
      void import('node:http').then((http) => http.get({ host: '127.0.0.1', port: Number(host.split(':')[1]), path: '/', headers: { Host: `evil.example:${host.split(':')[1]}` } }, (res) => { res.resume(); resolve(res.statusCode!); }));
    });
    expect(rebinding).toBe(403);
    const refused = (headers: Record<string, string>) => new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://${host}/ws`, { headers });
      ws.on('error', () => undefined); // after the refusal, ws reports the closed request too
      ws.once('unexpected-response', (req, res) => { resolve(res.statusCode!); res.resume(); req.destroy(); });
      ws.once('open', () => { ws.close(); resolve(101); });
    });
    expect(await refused({ Origin: 'http://evil.example' })).toBe(403);
    expect(await refused({})).toBe(403);
    expect(await refused({ Origin: `http://${host}`, Host: 'evil.example' })).toBe(403);
    const a = await client(host);
    await client(host);
    expect(await refused({ Origin: `http://${host}` })).toBe(503);
    expect(await metric(host, 'afb_edge_monitor_refused_total', 'reason="origin"')).toBe(2);
    expect(await metric(host, 'afb_edge_monitor_refused_total', 'reason="max-clients"')).toBe(1);
    a.send('{"t":"view","view":"nonsense"}');
    a.send({ t: 'call', id: 'c1', device: 'car-1', binder: 'vehicle', verb: 'ping', args: '{}' });
    await waitFor(() => a.messages.some((m) => m.t === 'reply'), 3000, 'the refusal');
    expect(a.messages.find((m) => m.t === 'notice')).toMatchObject({ level: 'warn', text: expect.stringMatching(/refused/) });
    expect(a.messages.find((m) => m.t === 'reply')).toMatchObject({ id: 'c1', error: 'refused', info: expect.stringMatching(/--allow-commands/) });
  });

  it('the console refuses names that are not one topic level and args that are not JSON, before anything is published', async () => {
    const { host, pub } = await setup({ allowCommands: true });
    const seen: string[] = [];
    await pub.subscribeAsync('afb-edge/+/call/#');
    pub.on('message', (t) => seen.push(t));
    const c = await client(host);
    c.send({ t: 'call', id: 'a', device: 'car-1', binder: 'vehicle/x', verb: 'ping', args: '{}' });
    c.send({ t: 'call', id: 'b', device: 'car-+', binder: 'vehicle', verb: 'ping', args: '{}' });
    c.send({ t: 'call', id: 'c', device: 'car-1', binder: 'vehicle', verb: 'ping', args: '{oops' });
    c.send({ t: 'call', id: 'd', device: 'car-1', binder: 'vehicle', verb: 'ping', args: '{"a":1}' });
    await waitFor(() => c.messages.filter((m) => m.t === 'reply').length === 3 && seen.length === 1, 3000, 'three refusals and one call');
    expect(c.messages.filter((m) => m.t === 'reply').map((m) => m.t === 'reply' && m.error)).toEqual(['refused', 'refused', 'refused']);
    expect(seen).toEqual(['afb-edge/car-1/call/vehicle/ping']);
  });
});

describe('afb-edge monitor --web usage', () => {
  it('refuses with exit 2 and one line: a non-loopback address without a token, a bad address, a short token, web options without --web', () => {
    const dir = tempDir(cleanup, 'dash-usage');
    const short = join(dir, 'short');
    writeFileSync(short, 'abc\n');
    for (const [args, msg] of [
      [['--web', '0.0.0.0:0'], /needs --token-file/],
      [['--web', '[::]:0'], /needs --token-file/],
      [['--web', 'nope'], /--web must be \[HOST:\]PORT/],
      [['--web', '127.0.0.1:0', '--token-file', short], /at least 16 characters/],
      [['--web', '127.0.0.1:0', '--token-file', join(dir, 'missing')], /ENOENT/],
      [['--allow-commands'], /need --web/],
      [['--web', '0', '--json'], /--web shows the dashboard/],
    ] as Array<[string[], RegExp]>) {
      const r = spawnSync(process.execPath, [cliMain, 'monitor', '--broker', 'mqtt://127.0.0.1:9', ...args], { encoding: 'utf8', timeout: 10_000 });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(msg);
    }
  });
});
