/**
 * `afb-edge can decode|encode` as a process (bin/afb-edge, the bundle):
 * candump log lines (classic, CAN FD `##`, RTR, error frames, dotted data,
 * DROPCOUNT), bare frames and JSON lines in, one JSON line per frame out;
 * garbage reported on stderr with its line number and counted, never fatal;
 * a bad DBC exits 1 naming file:line:column; CAN FD frames of a real DBC
 * decode as cantools decoded them (../shared/can-vectors).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, projectRoot } from '../helpers/cli.js';
import { GEARBOX_DBC } from '../helpers/dbc-fixtures.js';

const BIN = join(projectRoot, 'bin', 'afb-edge');
const VECTORS = resolve(projectRoot, '..', 'shared', 'can-vectors');
let dir: string;
let dbc: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'afb-edge-can-'));
  dbc = join(dir, 'gearbox.dbc');
  writeFileSync(dbc, GEARBOX_DBC);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

const jsonLines = (s: string): unknown[] => s.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown);

describe('afb-edge can decode', () => {
  it('decodes candump log lines, CAN FD, RTR, error frames and JSON lines; reports garbage with line numbers and goes on', async () => {
    const input = [
      '(1700000000.000000) can0 18FEF1FE#0F5A000000000000',
      '(1700000000.000100) can0 700#01.00.00.0B.B8.00.00.00',
      '(1700000000.000200) can0 700#R',
      '(1700000000.000300) can1 701##1000000000000000000000077',
      '(1700000000.000400) can0 20000004#0004000000000000',
      'hello world',
      '(1700000000.000500) can0 123#XYZ',
      'DROPCOUNT: dropped 3 CAN frames on \'can0\' socket (total drops 3)',
      '{"id":256,"extended":false,"data":"1027"}',
      '{"id":4096,"data":""}',
      '12345#00',
      '7FF#1122',
    ].join('\n');
    const r = await run(['can', 'decode', '--dbc', dbc], input);
    expect(r.code).toBe(0);
    expect(jsonLines(r.stdout)).toEqual([
      { id: 0x18fef1fe, extended: true, timestamp: 1700000000, interface: 'can0', message: 'TC1', values: { Gear: 'Invalid', OilTemp: 50 }, raw: { Gear: 15, OilTemp: 90 } },
      { id: 0x700, extended: false, timestamp: 1700000000.0001, interface: 'can0', message: 'Diag', values: { Page: 1, Odometer: 300 }, raw: { Page: 1, Odometer: 3000 } },
      { id: 0x700, extended: false, rtr: true, timestamp: 1700000000.0002, interface: 'can0', message: 'Diag', values: {}, raw: {} },
      { id: 0x701, extended: false, fd: true, timestamp: 1700000000.0003, interface: 'can1', message: 'Wide', values: { Tail: 0x77 }, raw: { Tail: 0x77 } },
      { id: 4, extended: false, error: true, data: '0004000000000000', timestamp: 1700000000.0004, interface: 'can0', message: null, values: {}, raw: {} },
      { id: 256, extended: false, message: null, values: {}, raw: {} },
      { id: 0x7ff, extended: false, message: null, values: {}, raw: {} },
    ]);
    expect(r.stderr).toContain(`afb-edge: ${dbc}: 3 messages; skipped: CM_ 1\n`);
    expect(r.stderr).toContain('stdin:6: not a candump log line');
    expect(r.stderr).toContain("stdin:7: the data must be pairs of hex digits: '123#XYZ'");
    expect(r.stderr).toContain('stdin:10: "id" must be an integer 0..0x7FF for a standard frame');
    expect(r.stderr).toContain("stdin:11: CAN XL frames are not decoded: '12345#00'");
    expect(r.stderr).toContain('afb-edge: 6 frames: 3 decoded, 2 with an id the DBC does not describe; 1 error frames; 4 lines not understood');
  });

  it('decodes real CAN FD frames (32-byte Hyundai messages) as cantools did', async () => {
    const lines = readFileSync(join(VECTORS, '_hyundai_canfd_common.frames.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
    const cases = lines.filter((_, i) => i % 97 === 0).map((l) => JSON.parse(l) as { id: number; extended: boolean; data: string; message: string; values: object; raw: object });
    const input = cases.map((c, i) => `(${1700000000 + i}.000000) can0 ${c.id.toString(16).toUpperCase().padStart(c.extended ? 8 : 3, '0')}##0${c.data}`).join('\n') + '\n';
    const r = await run(['can', 'decode', '--dbc', join(VECTORS, '_hyundai_canfd_common.dbc')], input);
    expect(r.code).toBe(0);
    const out = jsonLines(r.stdout) as Array<{ message: string; values: object; raw: object }>;
    expect(out).toHaveLength(cases.length);
    expect(cases.length).toBeGreaterThan(100);
    out.forEach((o, i) => expect({ message: o.message, values: o.values, raw: o.raw }).toEqual({ message: cases[i]!.message, values: cases[i]!.values, raw: cases[i]!.raw }));
  });

  it('exits 1 with the file, line and column of a bad DBC; 2 on usage errors', async () => {
    const bad = join(dir, 'bad.dbc');
    writeFileSync(bad, 'BO_ 1 M: 8 E\n SG_ S : 0|8@1+ (1,0) [0|0 "" E\n');
    const r = await run(['can', 'decode', '--dbc', bad], '');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`afb-edge: ${bad}:2:28: signal S: expected ']' after [min|max], found the string ""\n`);
    expect((await run(['can', 'decode', '--dbc', join(dir, 'nope.dbc')], '')).stderr).toBe(`afb-edge: ${join(dir, 'nope.dbc')}: cannot read: no such file\n`);
    expect((await run(['can', 'decode'], '')).code).toBe(2);
    expect((await run(['can', 'frobnicate'], '')).code).toBe(2);
  });
});

describe('afb-edge can encode', () => {
  it('prints the payload of a message from physical values and labels, with the multiplexer set', async () => {
    expect(await run(['can', 'encode', '--dbc', dbc, 'TC1', '{"Gear":"Neutral","OilTemp":20}'])).toEqual({ code: 0, stdout: '003c000000000000\n', stderr: '' });
    expect((await run(['can', 'encode', '--dbc', dbc, 'Diag', '{"Odometer":300}'])).stdout).toBe('0100000bb8000000\n');
    const r = await run(['can', 'encode', '--dbc', dbc, 'TC1', '{"OilTemp":151}']);
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'afb-edge: TC1.OilTemp = 151: above the maximum 150 of the DBC\n' });
    expect((await run(['can', 'encode', '--dbc', dbc, 'TC1', '{oops'])).code).toBe(2);
  });
});
