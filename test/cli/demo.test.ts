/**
 * `npm start` (afb-edge demo): the whole agent with a simulated binder, a
 * simulated CAN adapter and an embedded broker, as a user first sees it —
 * once on a socat pty, once without socat (binding-mock line).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliMain, ensureBuilt } from '../helpers/cli.js';

beforeAll(() => ensureBuilt());

interface Line { topic: string; payload: Record<string, unknown> }

interface DemoRun { code: number | null; lines: Line[]; stderr: string; page?: { status: number; csp: string | null; text: string } }

function demo(env: NodeJS.ProcessEnv): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliMain, 'demo', '--duration', '4', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let page: Promise<DemoRun['page']> | undefined;
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      // The dashboard it prints, fetched while the demo runs.
      const url = /dashboard on (http:\/\/\S+)/.exec(err)?.[1];
      if (url !== undefined && page === undefined) page = fetch(url).then(async (r) => ({ status: r.status, csp: r.headers.get('content-security-policy'), text: await r.text() }));
    });
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(t);
      void (page ?? Promise.resolve(undefined)).then((p) => resolve({ code, stderr: err, page: p, lines: out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line) }));
    });
  });
}

function expectFullDemo(r: DemoRun): void {
  expect(r.code, r.stderr).toBe(0);
  // npm start also serves the dashboard, on loopback, and says where.
  expect(r.stderr).toMatch(/demo: dashboard on http:\/\/127\.0\.0\.1:\d+\//);
  expect(r.page).toMatchObject({ status: 200, csp: expect.stringContaining("script-src 'self'"), text: expect.stringContaining('<script src="/app.js"') });
  const topics = r.lines.map((l) => l.topic);
  expect(topics).toContain('afb-edge/demo-car/status');
  expect(topics.some((t) => t.startsWith('afb-edge/demo-car/events/vehicle/'))).toBe(true);
  const speed = r.lines.find((l) => l.topic === 'afb-edge/demo-car/can/VehicleSpeed');
  expect(speed?.payload).toMatchObject({ id: 0x100, values: { speed: expect.any(Number) }, units: { speed: 'km/h' } });
  const obd = r.lines.find((l) => l.topic === 'afb-edge/demo-car/reply/can0/request');
  expect(obd?.payload).toMatchObject({ id: 'demo-3', error: null, data: { id: 0x7e8 } });
  expect(r.lines.find((l) => l.topic === 'afb-edge/demo-car/reply/vehicle/fail')?.payload).toMatchObject({ error: 'forbidden' });
}

describe('afb-edge demo (npm start)', () => {
  it('shows binder events, CAN signals from the simulated adapter on a pty, and remote command replies', async () => {
    const r = await demo(process.env);
    expect(r.stderr).toContain('simulated CAN adapter (slcan) on a pty pair from socat');
    expectFullDemo(r);
  }, 40_000);

  it('without socat, runs the adapter on a binding-mock line and says so', async () => {
    // PATH with node only: no socat (nor a shell) to be found
    const bin = mkdtempSync(join(tmpdir(), 'afb-edge-demo-path-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const r = await demo({ ...process.env, PATH: bin });
    rmSync(bin, { recursive: true, force: true });
    expect(r.stderr).toContain('binding-mock');
    expectFullDemo(r);
  }, 40_000);
});
