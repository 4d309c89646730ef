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

function demo(env: NodeJS.ProcessEnv): Promise<{ code: number | null; lines: Line[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliMain, 'demo', '--duration', '4', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(t);
      resolve({ code, stderr: err, lines: out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Line) });
    });
  });
}

function expectFullDemo(r: { code: number | null; lines: Line[]; stderr: string }): void {
  expect(r.code, r.stderr).toBe(0);
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
