/**
 * `afb-edge ecu-sim --protocol slcan --adapter X` driven by a real slcan host
 * no one here wrote: python-can's `slcan` interface (Debian python3-can), run
 * as test/sim/python/slcan_host.py on the other end of a socat pty pair. Per
 * dialect: counters received without a gap, an OBD-II request (0x7DF 02 01
 * 0C) answered on 0x7E8. python-can writes C, S6, O and never waits for an
 * answer, so it copes with a CANable that sends none; the LAWICEL and USBtin
 * answers (CR, BEL, z) must not disturb it either.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SIM_ADAPTERS } from '../../src/sim/ecu-sim.js';
import { ensureBuilt, projectRoot } from '../helpers/cli.js';
import { Cleanup, withTimeout } from '../helpers/net-helpers.js';
import { ptyPair, startSim } from './ecu-sim-harness.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** The first python3 that has python-can: the system one on Debian (a pyenv shim first in PATH may not). */
function pythonWithCan(): string {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(candidate, ['-c', 'import can, serial'], { encoding: 'utf8' });
    if (r.status === 0) return candidate;
  }
  throw new Error('no python3 with python-can and pyserial: apt-get install python3-can (CI installs it in .ci/run)');
}

let python = '';
beforeAll(() => {
  ensureBuilt();
  python = pythonWithCan();
});

interface HostResult {
  counters: number[];
  corrupt: number;
  other_ids: Record<string, number>;
  obd: { id: number; dlc: number; data: string } | null;
  obd_sent: boolean;
}

function runHost(channel: string, count: number): Promise<{ code: number | null; result: HostResult | undefined; stderr: string }> {
  const child = spawn(python, [join(projectRoot, 'test/sim/python/slcan_host.py'), '--channel', channel, '--count', String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.add(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  return withTimeout(new Promise((resolve) => {
    child.on('exit', (code) => {
      let result: HostResult | undefined;
      try { result = JSON.parse(out) as HostResult; } catch { /* reported below */ }
      resolve({ code, result, stderr: err });
    });
  }), 40_000, 'python-can host to finish');
}

const COUNT = 300;

describe('python-can slcan host ↔ afb-edge ecu-sim, each adapter dialect', () => {
  for (const adapter of SIM_ADAPTERS) {
    it(`${adapter}: ${COUNT} counters without a gap, and an OBD-II engine-speed request answered on 0x7E8`, async () => {
      const pair = await ptyPair(cleanup);
      // The sim first: opening its end flushes the pty, so python-can's C/S6/O must come after.
      const sim = await startSim(cleanup, ['--protocol', 'slcan', '--adapter', adapter, '--device', pair.device, '--rate', '400', '--count', String(COUNT)]);
      const { code, result, stderr } = await runHost(pair.peer, COUNT);
      expect(code, stderr).toBe(0);
      expect(result, stderr).toBeDefined();
      const r = result!;
      expect(r.counters).toEqual(Array.from({ length: COUNT }, (_, i) => i));
      expect(r.corrupt).toBe(0);
      expect(Object.keys(r.other_ids).sort()).toEqual(['s100', 'x0CF00400']); // the signal frames between the counters
      expect(r.obd_sent).toBe(true);
      expect(r.obd, 'an answer on 0x7E8').not.toBeNull();
      expect(r.obd!.id).toBe(0x7e8);
      expect(r.obd!.data.slice(0, 6)).toBe('04410c');
      const rpm = Number.parseInt(r.obd!.data.slice(6, 10), 16) / 4;
      expect(rpm).toBeGreaterThan(800);
      expect(rpm).toBeLessThan(4000);
      // The request reached the simulated bus exactly once.
      expect(sim.stdout).toEqual([{ rx: { id: 0x7df, extended: false, rtr: false, dlc: 8, data: '02010c5555555555' } }]);
    }, 60_000);
  }
});
