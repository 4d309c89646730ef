/**
 * NDJSON (src/serial/ndjson-codec.ts): lines in any chunking, CRLF, empty
 * lines, UTF-8 split across chunks, every rejection reason, resync after
 * garbage, bounded memory, and what encodeLine refuses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { feedAll, splitAt } from '../helpers/chunks.js';
import { NdjsonDecoder, encodeLine } from '../../src/serial/ndjson-codec.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');


const NO_REJECTS = { 'bad-json': 0, 'too-long': 0 };

describe('NdjsonDecoder', () => {
  it('decodes one value per line; a partial line waits for its newline', () => {
    const dec = new NdjsonDecoder();
    expect(dec.push(b('{"a":1}\n[1,2]\n"s"\n42\nnull\n{"b":'))).toEqual([{ a: 1 }, [1, 2], 's', 42, null]);
    expect(dec.bufferedLength).toBe(5);
    expect(dec.push(b('true}\n'))).toEqual([{ b: true }]);
    expect(dec.stats).toEqual({ lines: 6, rejected: NO_REJECTS });
  });

  it('tolerates CRLF and ignores empty or blank lines without counting them', () => {
    const dec = new NdjsonDecoder();
    expect(dec.push(b('\n\r\n{"a":1}\r\n   \n\t\r\n{"b":2}\n'))).toEqual([{ a: 1 }, { b: 2 }]);
    expect(dec.stats).toEqual({ lines: 2, rejected: NO_REJECTS });
  });

  it('handles a UTF-8 character split across chunks (decoded per line, not per chunk)', () => {
    const line = b('{"name":"Bremse é € 😀"}\n');
    const dec = new NdjsonDecoder();
    expect(feedAll(dec, Array.from(line, (x) => Buffer.from([x])))).toEqual([{ name: 'Bremse é € 😀' }]);
    expect(dec.stats.rejected).toEqual(NO_REJECTS);
  });

  it("counts invalid JSON as 'bad-json', skips it and goes on", () => {
    const dec = new NdjsonDecoder();
    expect(dec.push(b('{"a":\nnot json\n{"ok":true}\n'))).toEqual([{ ok: true }]);
    expect(dec.stats).toEqual({ lines: 1, rejected: { 'bad-json': 2, 'too-long': 0 } });
  });

  it("counts invalid UTF-8 as 'bad-json'", () => {
    const dec = new NdjsonDecoder();
    expect(dec.push(Buffer.concat([b('"'), Buffer.from([0xc3]), b('"\n1\n')]))).toEqual([1]);
    expect(dec.stats.rejected['bad-json']).toBe(1);
  });

  it('accepts a line of exactly maxLine bytes, with LF or CRLF', () => {
    const dec = new NdjsonDecoder({ maxLine: 20 });
    const s = '"' + 'x'.repeat(18) + '"';
    expect(dec.push(b(`${s}\n${s}\r\n`))).toEqual(['x'.repeat(18), 'x'.repeat(18)]);
    expect(dec.stats.rejected).toEqual(NO_REJECTS);
  });

  it("discards a line longer than maxLine up to its newline, counted once as 'too-long', however chunked", () => {
    const dec = new NdjsonDecoder({ maxLine: 20 });
    const long = b('"' + 'x'.repeat(19) + '"\n{"next":1}\n'); // 21-byte line
    expect(feedAll(dec, Array.from(long, (x) => Buffer.from([x])))).toEqual([{ next: 1 }]);
    expect(dec.stats.rejected).toEqual({ 'bad-json': 0, 'too-long': 1 });
    const huge = new NdjsonDecoder({ maxLine: 20 });
    const run = b('[' + '1,'.repeat(5000) + '1]');
    for (let i = 0; i < run.length; i += 3) expect(huge.push(run.subarray(i, i + 3))).toEqual([]);
    expect(huge.push(b('\n7\n'))).toEqual([7]);
    expect(huge.stats.rejected).toEqual({ 'bad-json': 0, 'too-long': 1 });
  });

  it('reports each rejection to onReject', () => {
    const seen: string[] = [];
    const dec = new NdjsonDecoder({ maxLine: 8, onReject: (reason) => seen.push(reason) });
    dec.push(b('{\n"0123456789"\n1\n'));
    expect(seen).toEqual(['bad-json', 'too-long']);
  });

  it('reset() drops a partial line', () => {
    const dec = new NdjsonDecoder();
    dec.push(b('{"a":'));
    dec.reset();
    expect(dec.bufferedLength).toBe(0);
    expect(dec.push(b('2\n'))).toEqual([2]);
  });

  it('refuses bad options with a clear error', () => {
    expect(() => new NdjsonDecoder({ maxLine: 0 })).toThrow(/maxLine/);
    expect(() => new NdjsonDecoder({ maxLine: Number.NaN })).toThrow(/maxLine/);
  });

  it('round-trips any JSON values in any chunking (whole, random splits, byte by byte)', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 20 }), fc.boolean(), (values, cuts, crlf) => {
        const lines = values.map((v) => {
          const line = encodeLine(v);
          return crlf ? Buffer.concat([line.subarray(0, -1), b('\r\n')]) : line;
        });
        const wire = Buffer.concat(lines);
        const expected = values.map((v) => JSON.parse(JSON.stringify(v)) as unknown);
        const whole = new NdjsonDecoder();
        expect(whole.push(wire)).toEqual(expected);
        const random = new NdjsonDecoder();
        expect(feedAll(random, splitAt(wire, cuts))).toEqual(expected);
        const bytes = new NdjsonDecoder();
        expect(feedAll(bytes, Array.from(wire, (x) => Buffer.from([x])))).toEqual(expected);
        for (const d of [whole, random, bytes]) {
          expect(d.stats).toEqual({ lines: values.length, rejected: NO_REJECTS });
          expect(d.bufferedLength).toBe(0);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('NdjsonDecoder fuzz', () => {
  it('never throws on random bytes in random chunks, buffer bounded', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), (chunks) => {
        const dec = new NdjsonDecoder({ maxLine: 64 });
        for (const c of chunks) {
          dec.push(c);
          expect(dec.bufferedLength).toBeLessThanOrEqual(dec.bufferLimit);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('after arbitrary garbage then a newline, the next valid line always decodes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.jsonValue(), (garbage, value) => {
        const dec = new NdjsonDecoder({ maxLine: 1024 });
        dec.push(garbage);
        dec.push(b('\n'));
        expect(dec.bufferedLength).toBe(0);
        expect(dec.push(encodeLine(value))).toEqual([JSON.parse(JSON.stringify(value))]);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the buffer within its bound over 10 MB without a newline, counting one too-long', () => {
    const dec = new NdjsonDecoder();
    dec.push(b('{"partial":'));
    let maxSeen = dec.bufferedLength;
    expect(maxSeen).toBe(11);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let seed = 7;
    let total = 0;
    while (total < 10 * 1024 * 1024) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const n = 1 + (seed % chunk.length);
      dec.push(chunk.subarray(0, n));
      total += n;
      maxSeen = Math.max(maxSeen, dec.bufferedLength);
    }
    expect(maxSeen).toBeLessThanOrEqual(dec.bufferLimit);
    expect(dec.bufferLimit).toBe(64 * 1024 + 1);
    expect(dec.stats.rejected['too-long']).toBe(1);
    expect(dec.push(b('\n{"ok":1}\n'))).toEqual([{ ok: 1 }]);
  });
});

describe('encodeLine', () => {
  it('writes compact JSON and one trailing newline; newlines inside strings stay escaped', () => {
    expect(encodeLine({ a: 'x\ny', b: [1, null] }).toString()).toBe('{"a":"x\\ny","b":[1,null]}\n');
    expect(encodeLine('é').equals(Buffer.from('"é"\n', 'utf8'))).toBe(true);
  });

  it('omits an undefined object property (absent optional field)', () => {
    expect(encodeLine({ a: 1, b: undefined }).toString()).toBe('{"a":1}\n');
  });

  it('refuses what JSON cannot represent, saying what and where', () => {
    expect(() => encodeLine(undefined)).toThrow(/cannot be represented as JSON: undefined at top level/);
    expect(() => encodeLine(() => 1)).toThrow(/function at top level/);
    expect(() => encodeLine(Symbol('s'))).toThrow(/symbol at top level/);
    expect(() => encodeLine(Number.NaN)).toThrow(/non-finite number NaN at top level/);
    expect(() => encodeLine({ rpm: Infinity })).toThrow(/non-finite number Infinity at key "rpm"/);
    expect(() => encodeLine({ id: 10n })).toThrow(/BigInt 10n at key "id"/);
    expect(() => encodeLine([1, undefined])).toThrow(/undefined at key "1"/);
    expect(() => encodeLine({ f: () => 0 })).toThrow(/function at key "f"/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeLine(cyclic)).toThrow(/cannot be represented as JSON: .*circular/i);
  });
});
