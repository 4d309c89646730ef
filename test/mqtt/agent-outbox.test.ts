/**
 * `afb-edge run` as a process (as systemd runs it) meeting a broken outbox
 * and stopping cleanly (issue 11 items 7, 15, 16):
 * - a truncated or overwritten outbox.db is moved aside, a fresh outbox is
 *   started, and the log, the retained status and a counter say so; a file
 *   locked by another agent is still refused (exit 3: a valid config that cannot start);
 * - SIGTERM while a serial link is `waiting`: the link's final `stopped`
 *   state reaches the broker before the clean disconnect; a link waiting
 *   for its device publishes that once, not at every reopen attempt;
 * - one time format (ISO 8601) in status, link state, health and envelopes;
 *   the last will carries no time that could lie.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type Broker } from '../helpers/broker.js';
import { cliMain, ensureBuilt } from '../helpers/cli.js';
import { Collector, lastJson, TcpProxy } from '../helpers/mqtt-helpers.js';
import { Cleanup, freePort, tempDir, waitFor } from '../helpers/net-helpers.js';

let broker: Broker;
beforeAll(async () => {
  ensureBuilt();
  broker = await startBroker({ persistence: false });
}, 120_000);
afterAll(() => broker?.close());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

interface AgentProcess { child: ChildProcess; stderr: () => string; exited: Promise<number | null> }

function runAgent(configPath: string): AgentProcess {
  const child = spawn(process.execPath, [cliMain, 'run', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  cleanup.add(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; } });
  return { child, stderr: () => err, exited };
}

async function metricsText(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return '';
  }
}

/** A config file in a fresh directory; `device` is unique per test so retained topics do not mix. */
async function setup(device: string, extra = '', url = broker.url): Promise<{ dir: string; file: string; httpPort: number; outbox: string }> {
  const dir = tempDir(cleanup, 'agent-outbox');
  const httpPort = await freePort();
  const outbox = path.join(dir, 'state', 'outbox.db');
  const file = path.join(dir, 'agent.yaml');
  fs.writeFileSync(file, `
device: { id: ${device} }
mqtt: { url: "${url}", protocol_version: 4, topic_prefix: fleet, status_interval_s: 0, reconnect: { initial_delay_ms: 50, max_delay_ms: 300 } }
outbox: { path: ${outbox} }
health: { http_listen: "127.0.0.1:${httpPort}" }
logging: { level: info }
binders: []
routes: []
${extra}
`);
  return { dir, file, httpPort, outbox };
}

async function retainedStatus(topic: string, pred: (s: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
  const c = await Collector.connect(broker, [topic], 1);
  cleanup.add(() => c.close());
  await c.waitFor(() => { const s = lastJson(c, topic); return s !== undefined && pred(s); }, 8000, what);
  return lastJson(c, topic)!;
}

describe('afb-edge run with a broken outbox file', () => {
  const corruptions: Array<{ name: string; make: (file: string) => void }> = [
    {
      name: 'truncated to half its size',
      make: (file) => {
        const db = new Database(file);
        db.exec('CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, route TEXT NOT NULL, created_ms INTEGER NOT NULL, bytes INTEGER NOT NULL)');
        const ins = db.prepare("INSERT INTO outbox (topic, payload, qos, retain, route, created_ms, bytes) VALUES ('t/x', ?, 1, 0, 'r', 0, 103)");
        db.transaction(() => { for (let i = 0; i < 2000; i++) ins.run(Buffer.alloc(100, 0x41)); })();
        db.pragma('user_version = 1');
        db.close();
        fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
      },
    },
    { name: 'overwritten with other data', make: (file) => fs.writeFileSync(file, Buffer.from('not a database at all, but maybe someone wants it back\n'.repeat(200))) },
  ];

  for (const k of corruptions) {
    it(`${k.name}: moved aside (timestamped name, same directory), a fresh outbox, the agent stays up and says so in the log, the status and a counter`, async () => {
      const s = await setup(`corrupt-${corruptions.indexOf(k)}`);
      fs.mkdirSync(path.dirname(s.outbox), { recursive: true });
      k.make(s.outbox);
      const original = fs.readFileSync(s.outbox);
      const a = runAgent(s.file);
      const early = await Promise.race([a.exited, new Promise((r) => setTimeout(r, 1500, 'running'))]);
      expect(early, `the agent exited: ${a.stderr()}`).toBe('running');
      const status = await retainedStatus(`fleet/corrupt-${corruptions.indexOf(k)}/status`, (x) => x.state === 'online', 'online status');
      // the file as found, under a timestamped name beside it
      const aside = fs.readdirSync(path.dirname(s.outbox)).filter((f) => /^outbox\.db\.corrupt-\d{8}T\d{6}Z$/.test(f));
      expect(aside, fs.readdirSync(path.dirname(s.outbox)).join(' ')).toHaveLength(1);
      expect(fs.readFileSync(path.join(path.dirname(s.outbox), aside[0]!)).equals(original)).toBe(true);
      expect(a.stderr()).toMatch(new RegExp(`<error> outbox ${s.outbox.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*moved aside to ${aside[0]!.replace(/\./g, '\\.')}`));
      expect(status.outbox).toMatchObject({ recovered: 'corrupt', moved_to: aside[0], at: expect.stringMatching(ISO) });
      await waitFor(async () => /afb_edge_outbox_recovered_total\{reason="corrupt"\} 1/.test(await metricsText(s.httpPort)), 5000, 'recovered counter');
      const healthz = await (await fetch(`http://127.0.0.1:${s.httpPort}/healthz`)).json() as Record<string, unknown>;
      expect(healthz.outbox).toEqual(status.outbox); // the health message carries the same
      // the fresh outbox works: the agent stops cleanly
      a.child.kill('SIGTERM');
      expect(await a.exited).toBe(0);
    });
  }

  it('the recovery stays in the status and health messages after a reload that restarts the MQTT side', async () => {
    const s = await setup('corrupt-reload');
    fs.mkdirSync(path.dirname(s.outbox), { recursive: true });
    fs.writeFileSync(s.outbox, Buffer.alloc(8192, 0x5a));
    const a = runAgent(s.file);
    const first = await retainedStatus('fleet/corrupt-reload/status', (x) => x.state === 'online', 'online status');
    expect(first.outbox).toMatchObject({ recovered: 'corrupt' });
    fs.writeFileSync(s.file, fs.readFileSync(s.file, 'utf8').replace('protocol_version: 4,', 'protocol_version: 4, keepalive_s: 17,'));
    const c = await Collector.connect(broker, ['fleet/corrupt-reload/status'], 1);
    cleanup.add(() => c.close());
    await c.waitFor((m) => m.length > 0, 3000, 'retained status');
    const before = c.messages.length;
    a.child.kill('SIGHUP');
    await c.waitFor((m) => m.slice(before).some((x) => (JSON.parse(x.text) as { state: string }).state === 'online'), 8000, 'online after the reload');
    await waitFor(() => a.stderr().includes('configuration reloaded (MQTT restarted)'), 3000, 'the reload');
    const after = c.messages.slice(before).map((x) => JSON.parse(x.text) as Record<string, unknown>).filter((x) => x.state === 'online').at(-1)!;
    expect(after.outbox).toEqual(first.outbox);
    const healthz = await (await fetch(`http://127.0.0.1:${s.httpPort}/healthz`)).json() as Record<string, unknown>;
    expect(healthz.outbox).toEqual(first.outbox);
  });

  it('a file locked by another agent is not moved: the agent refuses to start (exit 3), as before (it was 2 with a stack trace)', async () => {
    const s = await setup('locked');
    const first = runAgent(s.file);
    await retainedStatus('fleet/locked/status', (x) => x.state === 'online', 'first agent online');
    const second = runAgent(s.file);
    expect(await second.exited).toBe(3); // a valid config that cannot start (README: exit statuses)
    expect(second.stderr()).toMatch(/locked by another process/);
    expect(fs.readdirSync(path.dirname(s.outbox)).filter((f) => f.includes('corrupt'))).toEqual([]);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
  });
});

describe('afb-edge run: clean stop with a serial link waiting for its device', () => {
  it('SIGTERM: the retained link state is "stopped" beside status "offline" (4 stops in a row)', async () => {
    const finals: string[] = [];
    for (let round = 0; round < 4; round++) {
      const device = `links-${round}`;
      const s = await setup(device, `serial: { links: [ { name: mcu0, device: /nonexistent/tty-afb-edge-test, protocol: ndjson, reopen: { initial_delay_ms: 50, max_delay_ms: 200 } } ] }`);
      const a = runAgent(s.file);
      await retainedStatus(`fleet/${device}/status/links/mcu0`, (x) => x.state === 'waiting', 'link waiting');
      a.child.kill('SIGTERM');
      expect(await a.exited).toBe(0);
      const c = await Collector.connect(broker, [`fleet/${device}/status`, `fleet/${device}/status/links/mcu0`], 1);
      await c.waitFor((m) => m.length >= 2, 3000, 'both retained messages');
      await c.close();
      finals.push(`${lastJson(c, `fleet/${device}/status`)!.state}/${lastJson(c, `fleet/${device}/status/links/mcu0`)!.state}`);
    }
    expect(finals).toEqual(Array(4).fill('offline/stopped'));
  });
});

describe('afb-edge run: link state messages', () => {
  it('a link waiting for a missing device publishes "waiting" once, not at every reopen attempt (every 50-200 ms here)', async () => {
    const s = await setup('links-once', `serial: { links: [ { name: mcu0, device: /nonexistent/tty-afb-edge-test, protocol: ndjson, reopen: { initial_delay_ms: 50, max_delay_ms: 200 } } ] }`);
    const c = await Collector.connect(broker, ['fleet/links-once/status/links/mcu0'], 1);
    cleanup.add(() => c.close());
    const a = runAgent(s.file);
    await c.waitFor((m) => m.length > 0, 8000, 'the link state');
    await new Promise((r) => setTimeout(r, 2000));
    expect(c.messages.map((m) => (JSON.parse(m.text) as { state: string }).state)).toEqual(['waiting']);
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    await c.waitFor((m) => m.length > 1, 3000, 'the final state');
    expect(c.messages.map((m) => (JSON.parse(m.text) as { state: string }).state)).toEqual(['waiting', 'stopped']);
  });
});

describe('time stamps', () => {
  it('status, link state and health carry ts as ISO 8601 (UTC, ms); the last will carries no ts', async () => {
    const proxy = await TcpProxy.start(broker.port);
    cleanup.add(() => proxy.block());
    const s = await setup('times', `serial: { links: [ { name: mcu0, device: /nonexistent/tty-afb-edge-test, protocol: ndjson, reopen: { initial_delay_ms: 50, max_delay_ms: 200 } } ] }`, proxy.url);
    // a health message every second
    fs.writeFileSync(s.file, fs.readFileSync(s.file, 'utf8').replace('status_interval_s: 0', 'status_interval_s: 1'));
    const c = await Collector.connect(broker, ['fleet/times/#'], 1);
    cleanup.add(() => c.close());
    runAgent(s.file);
    await c.waitFor(() => lastJson(c, 'fleet/times/status')?.state === 'online' && lastJson(c, 'fleet/times/health') !== undefined
      && lastJson(c, 'fleet/times/status/links/mcu0') !== undefined, 8000, 'status, health and link state');
    expect(lastJson(c, 'fleet/times/status')!.ts).toMatch(ISO);
    expect(lastJson(c, 'fleet/times/health')!.ts).toMatch(ISO);
    expect(lastJson(c, 'fleet/times/status/links/mcu0')!.ts).toMatch(ISO);
    const before = c.on('fleet/times/status').length;
    proxy.cut(); // no DISCONNECT: the broker publishes the will (and the agent reconnects at once)
    const offline = (): Record<string, unknown> | undefined => c.on('fleet/times/status').slice(before).map((m) => JSON.parse(m.text) as Record<string, unknown>).find((x) => x.state === 'offline');
    await c.waitFor(() => offline() !== undefined, 5000, 'the will');
    const will = offline()!;
    expect(will).toMatchObject({ state: 'offline', reason: 'connection lost', device: 'times' });
    expect(will).not.toHaveProperty('ts');
  });
});
