/**
 * isoTime (src/util/iso-time.ts): Date#toISOString's text, without calling
 * it in the agent (its first call loads ICU's time-zone data: ~0.8-1.1 MB of
 * RSS for a UTC string).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/util/iso-time.js';
import { projectRoot } from '../helpers/cli.js';
import { fcSeed } from '../helpers/net-helpers.js';

fc.configureGlobal({ seed: fcSeed() });

describe('isoTime', () => {
  it('writes the years outside 0-9999 as toISOString does (a sign and 6 digits)', () => {
    for (const t of [-8.64e15, -62198755200001, -62167219200000, -1, 0, 253402300799999, 253402300800000, 8.64e15]) expect(isoTime(t)).toBe(new Date(t).toISOString());
  });

  it('equals Date#toISOString for any valid time, in any order (its per-second cache)', () => {
    const ms = fc.oneof(fc.integer({ min: -8.64e15, max: 8.64e15 }), fc.integer({ min: 1.7e12, max: 1.7e12 + 5000 }));
    fc.assert(fc.property(fc.array(ms, { minLength: 1, maxLength: 20 }), (times) => {
      for (const t of times) expect(isoTime(t)).toBe(new Date(t).toISOString());
    }));
    expect(isoTime(1.7e12 + 0.9)).toBe(new Date(1.7e12 + 0.9).toISOString());
    expect(isoTime(-1.5)).toBe(new Date(-1.5).toISOString());
  });

  it('replaces a timestamp that is not a date by the current time', () => {
    for (const bad of [NaN, Infinity, 9e15]) {
      const before = Date.now();
      const t = Date.parse(isoTime(bad));
      expect(t).toBeGreaterThanOrEqual(before);
      expect(t).toBeLessThanOrEqual(Date.now());
    }
  });
});

describe('the agent calls no Date#toISOString', () => {
  it('nor toLocale*String, in the code the agent runs (the remote side, monitor and demo, may)', () => {
    const src = join(projectRoot, 'src');
    const remoteSide = /^(remote\/|cli\/commands\/(monitor|demo))/;
    const found: string[] = [];
    for (const rel of readdirSync(src, { recursive: true }) as string[]) {
      if (!rel.endsWith('.ts') || remoteSide.test(rel) || rel === 'util/iso-time.ts') continue;
      readFileSync(join(src, rel), 'utf8').split('\n').forEach((line, i) => {
        if (/\.toISOString\(|\.toLocale(Date|Time)?String\(/.test(line)) found.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(found).toEqual([]);
  });
});
