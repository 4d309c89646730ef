/**
 * `afb-edge run` as a process, as systemd runs it: refuses an invalid
 * config, reloads on SIGHUP (keeping the old config when the new one is
 * invalid), and loses nothing it accepted when killed with SIGKILL.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WsapiServer } from '../../src/wsapi/index.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Collector } from '../helpers/mqtt-helpers.js';
import { cliMain, ensureBuilt } from '../helpers/cli.js';
import { freePort, waitFor } from '../helpers/net-helpers.js';

const main = cliMain;

beforeAll(ensureBuilt);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface AgentProcess { child: ChildProcess; stderr: () => string; exited: Promise<number | null> }

function runAgent(configPath: string): AgentProcess {
  const child = spawn(process.execPath, [main, 'run', '--config', configPath, '--log-level', 'debug'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; } });
  return { child, stderr: () => err, exited };
}

// Each file keeps its own default timeout and polling pace (some conditions do I/O).
const until = (cond: () => boolean | Promise<boolean>, ms = 8000, what = 'condition'): Promise<void> => waitFor(cond, ms, what, 25);

async function metric(port: number, name: string): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-run-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const b: Broker = await startBroker();
  cleanups.push(() => b.close());
  const server = new WsapiServer({ api: 'seq' });
  const tick = server.event('tick');
  const tock = server.event('tock');
  server.verb('sub', (req) => { req.subscribe(tick); req.subscribe(tock); req.reply(null); });
  await server.listen(`unix:${join(dir, 'seq')}`);
  cleanups.push(() => server.close());
  const httpPort = await freePort();
  const yaml = (routes: string) => `
device: { id: car-7 }
mqtt: { url: "${b.url}", protocol_version: 4, topic_prefix: fleet, status_interval_s: 0, reconnect: { initial_delay_ms: 50, max_delay_ms: 300 } }
outbox: { path: ${join(dir, 'outbox.db')} }
health: { http_listen: "127.0.0.1:${httpPort}" }
binders: [ { name: seq, spec: "unix:${join(dir, 'seq')}", subscribe: [ { verb: sub } ], reconnect: { initial_delay_ms: 50, max_delay_ms: 300 } } ]
routes:
${routes}
`;
  const file = join(dir, 'agent.yaml');
  return { dir, b, server, tick, tock, httpPort, yaml, file };
}

describe('afb-edge run', () => {
  it('refuses to start on an invalid config, printing each error with its path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'afb-edge-run-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'device: { id: "a/b" }\nmqtt: { url: "mqtt://h:1", protcol_version: 5 }\nbinders: []\nroutes: []\n');
    const a = runAgent(file);
    expect(await a.exited).toBe(1);
    expect(a.stderr()).toMatch(/bad\.yaml:1:\d+: device\.id/);
    expect(a.stderr()).toMatch(/bad\.yaml:2:\d+: mqtt.*protcol_version.*hint: .*protocol_version/);
    expect(a.stderr()).toContain('not starting');
  });

  it('refuses an unknown --log-level as a usage error (exit 2)', async () => {
    const a = spawn(process.execPath, [main, 'run', '--config', 'any.yaml', '--log-level', 'loud'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    a.stderr!.on('data', (d) => { err += d; });
    const code = await new Promise<number | null>((r) => a.on('exit', r));
    expect(code).toBe(2);
    expect(err).toContain("--log-level must be");
  });

  it('SIGHUP applies a valid new config and rejects an invalid one, keeping the running one', async () => {
    const s = await setup();
    writeFileSync(s.file, s.yaml('  - { name: ticks, match: ["seq/tick"], qos: 1, payload: raw }'));
    const c = await Collector.connect(s.b, ['fleet/#'], 1);
    cleanups.push(() => c.close());
    const a = runAgent(s.file);
    let n = 0;
    await until(() => { s.tick.push({ n: ++n }); s.tock.push({ n }); return c.on('fleet/car-7/events/seq/tick').length > 0; }, 8000, 'first tick');
    expect(c.on('fleet/car-7/events/seq/tock')).toHaveLength(0);

    writeFileSync(s.file, s.yaml('  - { name: ticks, match: ["seq/tick"], qos: 1, payload: raw }\n  - { name: tocks, match: ["seq/tock"], qos: 1, payload: raw }'));
    a.child.kill('SIGHUP');
    await until(() => { s.tick.push({ n: ++n }); s.tock.push({ n }); return c.on('fleet/car-7/events/seq/tock').length > 0; }, 8000, 'tock after reload');
    await until(async () => (await metric(s.httpPort, 'afb_edge_config_reloads_total{outcome="applied"}')) === 1, 3000, 'reload counted');

    writeFileSync(s.file, 'routes: [ { name: broken, qos: 7 } ]\n');
    a.child.kill('SIGHUP');
    await until(() => a.stderr().includes('config reload rejected'), 5000, 'rejection logged');
    expect(a.stderr()).toMatch(/routes\[0\]\.qos/);
    const before = c.on('fleet/car-7/events/seq/tock').length;
    await until(() => { s.tock.push({ n: ++n }); return c.on('fleet/car-7/events/seq/tock').length > before; }, 5000, 'old config still running');
    expect(await metric(s.httpPort, 'afb_edge_config_reloads_total{outcome="rejected"}')).toBe(1);

    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    const status = await Collector.connect(s.b, ['fleet/car-7/status'], 1);
    cleanups.push(() => status.close());
    await status.waitFor((m) => m.length > 0, 3000, 'status');
    expect(JSON.parse(status.messages[0]!.text)).toMatchObject({ state: 'offline', reason: expect.stringContaining('SIGTERM') });
  });

  it('kill -9 with a full outbox: the restarted agent delivers every accepted message', async () => {
    const s = await setup();
    writeFileSync(s.file, s.yaml('  - { name: ticks, match: ["seq/tick"], qos: 1, payload: raw }'));
    await s.b.stop();
    const a = runAgent(s.file);
    await until(async () => (await metric(s.httpPort, 'afb_edge_binder_connected{binder="seq"}')) === 1, 8000, 'agent connected to the binder');
    for (let n = 1; n <= 300; n++) s.tick.push({ n });
    await until(async () => (await metric(s.httpPort, 'afb_edge_outbox_messages')) === 300, 8000, '300 messages in the outbox');
    a.child.kill('SIGKILL');
    await a.exited;

    await s.b.start();
    const c = await Collector.connect(s.b, ['fleet/#'], 1);
    cleanups.push(() => c.close());
    runAgent(s.file);
    await c.waitCount('fleet/car-7/events/seq/tick', 300, 15000);
    const got = c.on('fleet/car-7/events/seq/tick').map((m) => (JSON.parse(m.text) as { n: number }).n);
    expect([...new Set(got)].sort((x, y) => x - y)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(got.filter((v, i) => i === 0 || v > got[i - 1]!)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    await until(async () => (await metric(s.httpPort, 'afb_edge_outbox_messages')) === 0, 5000, 'outbox drained');
  });
});
