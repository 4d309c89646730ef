/**
 * `afb-edge run` as systemd runs it (through the bin/afb-edge launcher, with
 * NOTIFY_SOCKET and WATCHDOG_USEC in its environment), against a real
 * notify receiver, a real mosquitto and a real wsapi binder: READY=1 from
 * the main pid with a STATUS=, watchdog pings, RELOADING=1 + MONOTONIC_USEC
 * then READY=1 on SIGHUP, STOPPING=1 on SIGTERM, the stop deadline, and an
 * unreachable notify socket that is counted and logged but harmless.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { WsapiServer } from '../../src/wsapi/index.js';
import { startBroker } from '../helpers/broker.js';
import { ensureBuilt, projectRoot } from '../helpers/cli.js';
import { Cleanup, freePort, tempDir, uniqueName, waitFor } from '../helpers/net-helpers.js';
import { NotifyListener, monotonicNs } from './notify-listener.js';

const launcher = path.join(projectRoot, 'bin', 'afb-edge');
const cleanup = new Cleanup();
beforeAll(ensureBuilt);
afterEach(() => cleanup.run());

interface Agent { child: ChildProcess; stderr: () => string; exited: Promise<number | null> }

function runAgent(config: string, env: Record<string, string>): Agent {
  const base = { ...process.env };
  delete base.NOTIFY_SOCKET;
  delete base.WATCHDOG_USEC;
  delete base.WATCHDOG_PID;
  const child = spawn(launcher, ['run', '--config', config, '--log-level', 'debug'], { env: { ...base, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  // 'close', not 'exit': stderr is read to its end by then
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, stderr: () => err, exited };
}

async function listener(address: string): Promise<NotifyListener> {
  const l = await NotifyListener.start(address);
  cleanup.add(() => l.close());
  return l;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} ([\\d.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** A broker and a binder exporting `veh` (socket mode 0666, as AGL's API sockets). */
async function world(dir: string) {
  const broker = await startBroker();
  cleanup.add(() => broker.close());
  const server = new WsapiServer({ api: 'veh' });
  server.verb('sub', (req) => req.reply(null));
  const sock = path.join(dir, 'veh');
  await server.listen(`unix:${sock}`);
  cleanup.add(() => server.close());
  return { broker, sock };
}

function writeConfig(dir: string, body: string): string {
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, body);
  return file;
}

/** The smallest config: no binder, no route, a broker nobody listens on (the agent retries). */
function minimalConfig(dir: string): string {
  return writeConfig(dir, `
device: { id: car-sd }
mqtt: { url: "mqtt://127.0.0.1:1" }
outbox: { path: ${path.join(dir, 'outbox.db')} }
binders: []
routes: []
`);
}

describe('afb-edge run under a service manager (Type=notify)', () => {
  for (const form of ['abstract', 'path'] as const) {
    it(`READY=1, STATUS=, WATCHDOG=1, RELOADING=1/READY=1 and STOPPING=1 over a ${form} NOTIFY_SOCKET`, async () => {
      const dir = tempDir(cleanup, 'sd');
      const { broker, sock } = await world(dir);
      const l = await listener(form === 'abstract' ? '@' + uniqueName('notify') : path.join(dir, 'notify'));
      const yaml = (extra = '') => `
device: { id: car-sd }
mqtt: { url: "${broker.url}", protocol_version: 4, status_interval_s: 0, reconnect: { initial_delay_ms: 50, max_delay_ms: 200 } }
outbox: { path: ${path.join(dir, 'outbox.db')} }
binders: [ { name: veh, spec: "unix:${sock}", subscribe: [ { verb: sub } ], reconnect: { initial_delay_ms: 50, max_delay_ms: 200 } } ]
routes: [ { name: all, match: ["veh/*"], qos: 1 }${extra} ]
`;
      const config = writeConfig(dir, yaml());
      const spawnedAt = monotonicNs();
      const a = runAgent(config, { NOTIFY_SOCKET: l.address, WATCHDOG_USEC: '600000' });

      const ready = await l.next((m) => m.fields.READY === '1', 20_000).catch((e: Error) => { throw new Error(`${e.message}\nagent stderr:\n${a.stderr()}`); });
      // the launcher execs node: the datagrams come from the pid systemd knows as the main pid
      expect(ready.pid).toBe(a.child.pid);
      expect(ready.fields.STATUS).toMatch(/^mqtt (connected|disconnected), [01]\/1 binders, outbox \d+$/);
      await waitFor(() => /systemd: ready in \d+ ms, cpu \d+ ms \(READY=1 sent to /.test(a.stderr()), 2000, 'ready log line');
      const ms = Number(/ready in (\d+) ms/.exec(a.stderr())![1]);
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThanOrEqual(Number((ready.t - spawnedAt) / 1_000_000n)); // measured from inside, so no later than we saw it
      await waitFor(() => a.stderr().includes('systemd: watchdog every 300 ms (WATCHDOG_USEC=600000)'), 2000, 'watchdog log line');

      // the STATUS= settles on the connected state (recomputed every 2 s, sent on change)
      await l.next((m) => m.fields.STATUS === 'mqtt connected, 1/1 binders, outbox 0', 8000);
      // pings at half the interval
      const firstPing = await l.next((m) => m.fields.WATCHDOG === '1');
      await new Promise((r) => setTimeout(r, 1000));
      const pings = l.with('WATCHDOG', '1').filter((m) => m.t >= firstPing.t);
      expect(pings.length).toBeGreaterThanOrEqual(3);
      expect(pings.every((m) => m.pid === a.child.pid)).toBe(true);

      // reload: RELOADING=1 stamped with CLOCK_MONOTONIC, then READY=1 once applied
      fs.writeFileSync(config, yaml(', { name: more, match: ["veh/x"], qos: 0 }'));
      let from = l.messages.length;
      const hupAt = monotonicNs();
      a.child.kill('SIGHUP');
      const reloading = await l.next((m) => m.fields.RELOADING === '1', 5000, from);
      const stamp = BigInt(reloading.fields.MONOTONIC_USEC!) * 1000n;
      expect(stamp).toBeGreaterThanOrEqual(hupAt);
      expect(stamp).toBeLessThanOrEqual(reloading.t);
      const readyAgain = await l.next((m) => m.fields.READY === '1', 5000, l.messages.indexOf(reloading) + 1);
      expect(readyAgain.fields.STATUS).toMatch(/^mqtt connected, 1\/1 binders, outbox \d+$/);
      // (stderr and the datagram reach us through two different pipes: wait, do not race)
      await waitFor(() => a.stderr().includes('agent: configuration reloaded'), 2000, 'reload log line');

      // an invalid file is rejected, and the agent is READY again with the old one
      fs.writeFileSync(config, 'device: { id: "bad/id" }\n');
      from = l.messages.length;
      a.child.kill('SIGHUP');
      const r2 = await l.next((m) => m.fields.RELOADING === '1', 5000, from);
      await l.next((m) => m.fields.READY === '1', 5000, l.messages.indexOf(r2) + 1);
      await waitFor(() => a.stderr().includes('config reload rejected'), 2000, 'rejection log line');

      // stop: STOPPING=1 first, then a clean exit, and no ping after it
      from = l.messages.length;
      a.child.kill('SIGTERM');
      const stopping = await l.next((m) => m.fields.STOPPING === '1', 5000, from);
      expect(stopping.fields.STATUS).toMatch(/^stopping \(SIGTERM\)/);
      expect(await a.exited).toBe(0);
      await new Promise((r) => setTimeout(r, 100));
      expect(l.messages.slice(l.messages.indexOf(stopping) + 1).filter((m) => m.fields.WATCHDOG)).toEqual([]);
      expect(a.stderr()).toMatch(/systemd: stopped in \d+ ms/);
      expect(a.stderr()).toContain('agent: stopped (shutdown (SIGTERM))');
    });
  }

  it('an unreachable NOTIFY_SOCKET is logged once and counted, and the agent runs and stops normally', async () => {
    const dir = tempDir(cleanup, 'sd');
    const broker = await startBroker();
    cleanup.add(() => broker.close());
    const port = await freePort();
    const address = '@' + uniqueName('nobody-listens');
    const config = writeConfig(dir, `
device: { id: car-sd }
mqtt: { url: "${broker.url}", status_interval_s: 0 }
outbox: { path: ${path.join(dir, 'outbox.db')} }
health: { http_listen: "127.0.0.1:${port}" }
binders: []
routes: []
`);
    const a = runAgent(config, { NOTIFY_SOCKET: address, WATCHDOG_USEC: '200000' });
    await waitFor(() => a.stderr().includes('systemd: ready in'), 10_000, 'ready line');
    expect(a.stderr()).toContain(`READY=1 not delivered to ${address}`);
    // every failed ping counts, only the first is logged
    await waitFor(async () => (await metric(port, 'afb_edge_errors_total{component="systemd"}')) >= 4, 5000, 'systemd errors counted');
    expect(a.stderr().match(/systemd: cannot notify/g)).toHaveLength(1);
    expect(a.stderr()).toContain('ECONNREFUSED');
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
  });

  it('without NOTIFY_SOCKET: no notification, the ready line still says how long the start took', async () => {
    const dir = tempDir(cleanup, 'sd');
    const config = minimalConfig(dir);
    const a = runAgent(config, { WATCHDOG_USEC: '200000' });
    await waitFor(() => /systemd: ready in \d+ ms, cpu \d+ ms \(no NOTIFY_SOCKET\)/.test(a.stderr()), 10_000, 'ready line');
    expect(a.stderr()).not.toContain('watchdog every');
    a.child.kill('SIGINT');
    expect(await a.exited).toBe(0);
  });

  it('a watchdog meant for another pid (WATCHDOG_PID) is not ours: READY=1 but no pings', async () => {
    const dir = tempDir(cleanup, 'sd');
    const l = await listener('@' + uniqueName('notify'));
    const config = minimalConfig(dir);
    const a = runAgent(config, { NOTIFY_SOCKET: l.address, WATCHDOG_USEC: '100000', WATCHDOG_PID: '1' });
    await l.next((m) => m.fields.READY === '1', 10_000);
    await new Promise((r) => setTimeout(r, 400));
    expect(l.with('WATCHDOG')).toEqual([]);
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
  });

  it('a drain that outlives AFB_EDGE_STOP_TIMEOUT_S is cut short: logged, exit status 1, before systemd would SIGKILL', async () => {
    const dir = tempDir(cleanup, 'sd');
    // A broker that accepts the connection and then acknowledges nothing: the offline status
    // published at stop waits for a PUBACK that never comes (the sink alone would wait 3 s).
    const mute = net.createServer((s) => {
      s.once('data', () => s.write(Buffer.from([0x20, 0x02, 0x00, 0x00]))); // CONNACK, MQTT 3.1.1, accepted
      s.on('error', () => undefined);
    });
    const sockets = new Set<net.Socket>();
    mute.on('connection', (s) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    cleanup.add(() => new Promise<void>((r) => { for (const s of sockets) s.destroy(); mute.close(() => r()); }));
    const l = await listener('@' + uniqueName('notify'));
    const config = writeConfig(dir, `
device: { id: car-sd }
mqtt: { url: "mqtt://127.0.0.1:${(mute.address() as net.AddressInfo).port}", protocol_version: 4, status_interval_s: 0 }
outbox: { path: ${path.join(dir, 'outbox.db')} }
binders: []
routes: []
`);
    const a = runAgent(config, { NOTIFY_SOCKET: l.address, AFB_EDGE_STOP_TIMEOUT_S: '0.5' });
    await l.next((m) => m.fields.READY === '1', 10_000);
    await waitFor(() => a.stderr().includes('mqtt: connected'), 5000, 'connected to the mute broker');
    const t0 = Date.now();
    a.child.kill('SIGTERM');
    await l.next((m) => m.fields.STOPPING === '1');
    expect(await a.exited).toBe(1);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(4000); // loose: a loaded machine is slow to reap; exit status 1 and the log line are the proof
    expect(a.stderr()).toContain('systemd: stop did not finish within 500 ms');
  });
});
