/**
 * `afb-edge monitor` and `afb-edge check-config` as processes, against a
 * real broker.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { startBroker } from '../helpers/broker.js';
import { cliMain, ensureBuilt, projectRoot } from '../helpers/cli.js';

const root = projectRoot;
const main = cliMain;

beforeAll(ensureBuilt);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('afb-edge monitor', () => {
  it('prints the agents\' messages as JSON lines when piped, retained status included', async () => {
    const b = await startBroker();
    cleanups.push(() => b.close());
    const pub = await mqtt.connectAsync(b.url);
    cleanups.push(() => pub.endAsync());
    await pub.publishAsync('afb-edge/car-1/status', JSON.stringify({ state: 'online', reason: 'started' }), { qos: 1, retain: true });
    const child = spawn(process.execPath, [main, 'monitor', '--broker', b.url, '--device', 'car-1', '--count', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    cleanups.push(() => child.kill('SIGKILL'));
    // Publish until the monitor has subscribed and seen them.
    const timer = setInterval(() => {
      void pub.publishAsync('afb-edge/car-1/events/vehicle/speed', '{"value":1}', { qos: 1 });
      void pub.publishAsync('afb-edge/car-2/events/vehicle/speed', '{"value":2}', { qos: 1 }); // another device: not shown
    }, 50);
    const code = await exited;
    clearInterval(timer);
    expect(code).toBe(0);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ topic: 'afb-edge/car-1/status', retained: true, payload: { state: 'online' } });
    expect(lines.slice(1).every((l) => l.topic === 'afb-edge/car-1/events/vehicle/speed' && l.payload.value === 1)).toBe(true);
  });

  it('refuses a missing or bad broker URL and a wildcard device with exit 2', async () => {
    for (const args of [['monitor'], ['monitor', '--broker', 'localhost:1883'], ['monitor', '--broker', 'mqtt://h:1', '--device', 'a/#']]) {
      const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('afb-edge check-config', () => {
  it('exits 0 on the shipped example and 1 with located errors on a broken file', () => {
    const ok = spawnSync(process.execPath, [main, 'check-config', join(root, 'config/afb-edge.example.yaml')], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/: ok \(/);
    const dir = mkdtempSync(join(tmpdir(), 'afb-edge-cc-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'device: { id: x }\nmqtt: { url: "mqtt://h:1", password: hunter2-xyz }\nbinders: []\nroutes: [ { name: r, match: ["a/*"], qos: 3 } ]\n');
    const r = spawnSync(process.execPath, [main, 'check-config', bad], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:2:\d+: mqtt.*password/);
    expect(r.stderr).toMatch(/bad\.yaml:4:\d+: routes\[0\]\.qos/);
    expect(r.stderr).not.toContain("hunter2-xyz");
  });
});
