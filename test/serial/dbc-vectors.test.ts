/**
 * The DBC decoder and encoder against cantools: every line of every file in
 * ../shared/can-vectors (relative to the project root; read-only, never
 * copied into the project) — full frames, truncated frames, encode cases.
 * A missing folder fails the suite (it is part of the project's checkout
 * layout), it is never skipped.
 *
 * Comparison: raw values and labels exactly (a raw beyond 2^53 is the exact
 * decimal string on both sides; −0.0 keeps its sign); physical numbers to 12
 * significant digits as the issue asks (the exact-equality count is printed
 * too); encoded payloads byte for byte.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CompiledDbc } from '../../src/serial/dbc/codec.js';
import { loadDbcFile } from '../../src/serial/dbc/load.js';
import { PROJECT_ROOT } from '../helpers/vectors.js';

const DIR = path.resolve(PROJECT_ROOT, '..', 'shared', 'can-vectors');
const EXPECTED = { frames: 68_336, truncated: 7_000, encode: 3_600 };

interface FrameCase {
  id: number;
  extended: boolean;
  data: string;
  message: string;
  values: Record<string, number | string>;
  raw: Record<string, number | string>;
}

interface EncodeCase {
  id: number;
  extended: boolean;
  message: string;
  values: Record<string, number | string>;
  data: string;
}

const readLines = <T>(file: string): T[] =>
  readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as T);

function sameNumber(a: number, b: number): boolean {
  if (Object.is(a, b)) return true;
  if (a === 0 || b === 0) return a === b;
  return Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
}

interface Tally {
  lines: number;
  mismatches: string[];
  inexact: number;
}

function checkFrame(dbc: CompiledDbc, c: FrameCase, where: string, t: Tally): void {
  t.lines++;
  const got = dbc.decode({ id: c.id, extended: c.extended, data: Buffer.from(c.data, 'hex') });
  const fail = (why: string): void => {
    if (t.mismatches.length < 20) t.mismatches.push(`${where}: ${why}`);
    else t.mismatches.push('');
  };
  if (got === undefined) return fail(`id ${c.id} not found`);
  if (got.message !== c.message) return fail(`message ${got.message}, expected ${c.message}`);
  const keys = (o: object): string => Object.keys(o).sort().join(',');
  if (keys(got.raw) !== keys(c.raw)) return fail(`signals ${keys(got.raw)}, expected ${keys(c.raw)}`);
  if (keys(got.values) !== keys(c.values)) return fail(`values ${keys(got.values)}, expected ${keys(c.values)}`);
  for (const [k, want] of Object.entries(c.raw)) {
    const have = got.raw[k];
    if (!Object.is(have, want)) return fail(`raw ${k} = ${String(have)}, expected ${String(want)}`);
  }
  for (const [k, want] of Object.entries(c.values)) {
    const have = got.values[k];
    if (typeof want === 'string' || typeof have === 'string') {
      if (have !== want) return fail(`value ${k} = ${JSON.stringify(have)}, expected ${JSON.stringify(want)}`);
    } else if (!sameNumber(have!, want)) {
      return fail(`value ${k} = ${String(have)}, expected ${String(want)}`);
    } else if (!Object.is(have, want)) t.inexact++;
  }
}

function checkEncode(dbc: CompiledDbc, c: EncodeCase, where: string, t: Tally): void {
  t.lines++;
  let hex: string;
  try {
    hex = dbc.encode(c.message, c.values).data.toString('hex');
  } catch (err) {
    t.mismatches.push(`${where}: ${(err as Error).message}`);
    return;
  }
  if (hex !== c.data) t.mismatches.push(`${where}: ${hex}, expected ${c.data}`);
}

describe('can vectors folder', () => {
  it('is present at ../shared/can-vectors (relative to the project root)', () => {
    expect(existsSync(path.join(DIR, 'README.md')), `missing ${DIR}`).toBe(true);
  });
});

const files = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith('.dbc')).sort() : [];
const totals = { frames: 0, truncated: 0, encode: 0, mismatches: 0, inexact: 0 };

describe.each(files)('%s against cantools', (file) => {
  const base = file.replace(/\.dbc$/, '');
  const dbc = loadDbcFile(path.join(DIR, file));

  it.each(['frames', 'truncated'] as const)('decodes every %s line as cantools does', (kind) => {
    const t: Tally = { lines: 0, mismatches: [], inexact: 0 };
    readLines<FrameCase>(path.join(DIR, `${base}.${kind}.jsonl`)).forEach((c, i) => checkFrame(dbc, c, `${base}.${kind}.jsonl:${i + 1}`, t));
    totals[kind] += t.lines;
    totals.mismatches += t.mismatches.length;
    totals.inexact += t.inexact;
    expect(t.mismatches.filter((m) => m !== '').slice(0, 20), `${t.mismatches.length} of ${t.lines} lines differ`).toEqual([]);
  });

  it('encodes every encode line to cantools\' payload', () => {
    const t: Tally = { lines: 0, mismatches: [], inexact: 0 };
    readLines<EncodeCase>(path.join(DIR, `${base}.encode.jsonl`)).forEach((c, i) => checkEncode(dbc, c, `${base}.encode.jsonl:${i + 1}`, t));
    totals.encode += t.lines;
    totals.mismatches += t.mismatches.length;
    expect(t.mismatches.slice(0, 20), `${t.mismatches.length} of ${t.lines} lines differ`).toEqual([]);
  });
});

describe('can vectors totals', () => {
  it('went through every line of every file with 0 mismatches', () => {
    // eslint-disable-next-line no-console
    console.log(`can vectors: ${totals.frames} frames, ${totals.truncated} truncated, ${totals.encode} encode cases, ${totals.mismatches} mismatches; ${totals.inexact} physical values within 12 digits but not bit-identical`);
    expect(files.length).toBe(14);
    expect({ frames: totals.frames, truncated: totals.truncated, encode: totals.encode }).toEqual(EXPECTED);
    expect(totals.mismatches).toBe(0);
  });
});
