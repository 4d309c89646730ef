/**
 * `afb-edge ecu-sim` argument handling: usage errors exit 2 with one line
 * saying what is wrong; a device that cannot be opened exits 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/cli.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { parseEcuSimArgs } from '../../src/cli/commands/ecu-sim.js';
import { UsageError } from '../../src/cli/usage.js';
import { runCli } from './ecu-sim-harness.js';

beforeAll(() => ensureBuilt());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const DEV = ['--device', '/dev/null-ecu-sim-test'];

const USAGE_ERRORS: Array<[string, string[], RegExp]> = [
  ['no --protocol', [...DEV], /needs --protocol slcan\|cobs\|ndjson/],
  ['an unknown protocol', ['--protocol', 'can', ...DEV], /--protocol must be slcan, cobs, ndjson, not 'can'/],
  ['no --device', ['--protocol', 'slcan'], /needs --device PATH/],
  ['--crc on ndjson', ['--protocol', 'ndjson', '--crc', 'crc16', ...DEV], /--crc applies to --protocol cobs only/],
  ['--payload raw on ndjson', ['--protocol', 'ndjson', '--payload', 'raw', ...DEV], /ndjson carries JSON only/],
  ['--payload on slcan', ['--protocol', 'slcan', '--payload', 'json', ...DEV], /--payload json does not apply to --protocol slcan/],
  ['an unknown CRC', ['--protocol', 'cobs', '--crc', 'crc8', ...DEV], /--crc must be crc16 or crc32, not 'crc8'/],
  ['an unknown payload', ['--protocol', 'cobs', '--payload', 'xml', ...DEV], /--payload must be json or raw, not 'xml'/],
  ['a negative rate', ['--protocol', 'slcan', '--rate=-1', ...DEV], /--rate must be a number/],
  ['a non-numeric rate', ['--protocol', 'slcan', '--rate', 'fast', ...DEV], /--rate must be a number/],
  ['a fractional count', ['--protocol', 'slcan', '--count', '1.5', ...DEV], /--count must be an integer ≥ 0, not '1.5'/],
  ['a zero baud rate', ['--protocol', 'slcan', '--baud', '0', ...DEV], /--baud must be an integer ≥ 1/],
  ['a negative noise', ['--protocol', 'slcan', '--noise=-3', ...DEV], /--noise must be an integer ≥ 0/],
  ['an unknown option', ['--protocol', 'slcan', '--parity', 'odd', ...DEV], /Unknown option '--parity'/],
  ['a stray argument', ['--protocol', 'slcan', ...DEV, 'extra'], /unexpected argument 'extra'/],
  ['a bad log level', ['--protocol', 'slcan', ...DEV, '--log-level', 'loud'], /--log-level must be/],
  ['an unknown adapter', ['--protocol', 'slcan', '--adapter', 'peak', ...DEV], /--adapter must be lawicel, canable, usbtin, not 'peak'/],
  ['--adapter on cobs', ['--protocol', 'cobs', '--adapter', 'canable', ...DEV], /--adapter applies to --protocol slcan only, not cobs/],
];

describe('afb-edge ecu-sim: arguments', () => {
  it.each(USAGE_ERRORS)('refuses %s with a usage error saying what is wrong', (_what, args, reason) => {
    expect(() => parseEcuSimArgs(args)).toThrow(UsageError);
    expect(() => parseEcuSimArgs(args)).toThrow(reason);
  });

  it('takes the documented defaults and options', () => {
    const d = parseEcuSimArgs(['--protocol', 'cobs', ...DEV]);
    expect([d.device, d.baudRate, d.sim]).toEqual([DEV[1], 115_200, { protocol: 'cobs', rate: 10, count: 0, crc: undefined, payload: undefined, noise: 0 }]);
    const o = parseEcuSimArgs(['--protocol', 'cobs', ...DEV, '--baud', '1000000', '--rate', '0.5', '--count', '7', '--crc', 'crc32', '--payload', 'raw', '--noise', '3']);
    expect([o.baudRate, o.sim]).toEqual([1_000_000, { protocol: 'cobs', rate: 0.5, count: 7, crc: 'crc32', payload: 'raw', noise: 3 }]);
    expect(parseEcuSimArgs(['--protocol', 'ndjson', '--payload', 'json', ...DEV]).sim.payload).toBe('json');
    expect(parseEcuSimArgs(['--protocol', 'slcan', '--adapter', 'canable', ...DEV]).sim.adapter).toBe('canable');
    expect(parseEcuSimArgs(['--protocol', 'slcan', ...DEV]).sim.adapter).toBeUndefined(); // lawicel, EcuSimulator's default
  });

  it('the command exits 2 with one line on stderr for a usage error', async () => {
    // A few cases end to end (the rest above, in-process): main's UsageError → exit 2 path.
    const cases = [USAGE_ERRORS[0]!, USAGE_ERRORS[3]!, USAGE_ERRORS[13]!];
    const runs = await Promise.all(cases.map(([, args]) => runCli(['ecu-sim', ...args], 20_000)));
    runs.forEach((r, i) => {
      const [what, , reason] = cases[i]!;
      expect(r.code, `${what}: ${r.stderr}`).toBe(2);
      expect(r.stderr, what).toMatch(new RegExp(`^afb-edge: .*${reason.source}`));
      expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
      expect(r.stdout, what).toBe('');
    });
  });

  it('exits 1 with the device and the reason when the device cannot be opened', async () => {
    const dir = tempDir(cleanup, 'ecu-sim-cli');
    const missing = path.join(dir, 'no-such-tty');
    const notTty = path.join(dir, 'plain-file');
    fs.writeFileSync(notTty, '');
    const [a, b] = await Promise.all([
      runCli(['ecu-sim', '--protocol', 'slcan', '--device', missing], 20_000),
      runCli(['ecu-sim', '--protocol', 'ndjson', '--device', notTty, '--baud', '9600'], 20_000),
    ]);
    expect(a.code, a.stderr).toBe(1);
    expect(a.stderr).toMatch(new RegExp(`^afb-edge: ecu-sim: cannot open ${missing} at 115200 baud: .*No such file`));
    expect(b.code, b.stderr).toBe(1);
    expect(b.stderr).toMatch(new RegExp(`^afb-edge: ecu-sim: cannot open ${notTty}: not a serial device`));
  });

  it('lists ecu-sim and its options in --help', async () => {
    const r = await runCli(['ecu-sim', '--help'], 20_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('afb-edge ecu-sim --protocol slcan|cobs|ndjson --device PATH');
    for (const opt of ['--baud', '--rate', '--count', '--crc', '--payload', '--noise']) expect(r.stdout).toContain(opt);
  });
});
