/**
 * COBS + CRC framing (src/serial/cobs-codec.ts): published COBS vectors,
 * frame layout, round trips under any chunking, every rejection reason,
 * resynchronisation after garbage, and bounded memory.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { feedAll, splitAt } from '../helpers/chunks.js';
import { crc16ccitt, crc32 } from '../../src/serial/crc.js';
import {
  CobsDecoder, cobsDecode, cobsEncode, cobsMaxEncodedLength, decodePayload, encodeFrame, type CrcKind,
} from '../../src/serial/cobs-codec.js';

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Wikipedia "Consistent Overhead Byte Stuffing", encoding examples (delimiter included). */
const VECTORS: Array<[string, number[], number[]]> = [
  ['empty', [], [0x01, 0x00]],
  ['one zero', [0x00], [0x01, 0x01, 0x00]],
  ['two zeros', [0x00, 0x00], [0x01, 0x01, 0x01, 0x00]],
  ['00 11 00', [0x00, 0x11, 0x00], [0x01, 0x02, 0x11, 0x01, 0x00]],
  ['11 22 00 33', [0x11, 0x22, 0x00, 0x33], [0x03, 0x11, 0x22, 0x02, 0x33, 0x00]],
  ['11 22 33 44', [0x11, 0x22, 0x33, 0x44], [0x05, 0x11, 0x22, 0x33, 0x44, 0x00]],
  ['11 00 00 00', [0x11, 0x00, 0x00, 0x00], [0x02, 0x11, 0x01, 0x01, 0x01, 0x00]],
  ['254 non-zero bytes 01..FE', range(0x01, 0xfe), [0xff, ...range(0x01, 0xfe), 0x00]],
  ['255 bytes 00..FE', range(0x00, 0xfe), [0x01, 0xff, ...range(0x01, 0xfe), 0x00]],
  ['255 non-zero bytes 01..FF', range(0x01, 0xff), [0xff, ...range(0x01, 0xfe), 0x02, 0xff, 0x00]],
  ['255 bytes 02..FF 00', [...range(0x02, 0xff), 0x00], [0xff, ...range(0x02, 0xff), 0x01, 0x01, 0x00]],
  ['255 bytes 03..FF 00 01', [...range(0x03, 0xff), 0x00, 0x01], [0xfe, ...range(0x03, 0xff), 0x02, 0x01, 0x00]],
];


function bytewise(data: Buffer): Buffer[] {
  return Array.from(data, (b) => Buffer.from([b]));
}

describe('cobsEncode / cobsDecode', () => {
  for (const [name, input, expected] of VECTORS) {
    it(`encodes and decodes the published vector: ${name}`, () => {
      const block = cobsEncode(Buffer.from(input));
      expect([...block, 0x00]).toEqual(expected);
      expect(cobsDecode(Buffer.from(expected.slice(0, -1)))).toEqual(Buffer.from(input));
    });
  }

  it('rejects blocks that are not valid COBS', () => {
    expect(cobsDecode(Buffer.alloc(0))).toBeNull(); // a valid block has at least its code byte
    expect(cobsDecode(Buffer.from([0x05, 0x11, 0x22]))).toBeNull(); // code points past the end
    expect(cobsDecode(Buffer.from([0x03, 0x11, 0x00]))).toBeNull(); // 0x00 inside a block
    expect(cobsDecode(Buffer.from([0x00]))).toBeNull(); // 0x00 as a code
  });

  it('round-trips any payload, never emits 0x00, and stays within the worst-case size', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (payload) => {
        const block = cobsEncode(payload);
        expect(block.includes(0)).toBe(false);
        expect(block.length).toBeLessThanOrEqual(cobsMaxEncodedLength(payload.length));
        expect(cobsDecode(block)).toEqual(Buffer.from(payload));
      }),
    );
  });
});

describe('encodeFrame', () => {
  const digits = [...Buffer.from('123456789')];
  it('lays out COBS(payload ‖ CRC-16 big-endian) 0x00', () => {
    expect([...encodeFrame(Buffer.from(digits), { crc: 'crc16' })]).toEqual([0x0c, ...digits, 0x29, 0xb1, 0x00]);
    expect([...encodeFrame(Buffer.from(digits))]).toEqual([0x0c, ...digits, 0x29, 0xb1, 0x00]); // crc16 is the default
  });
  it('lays out COBS(payload ‖ CRC-32 big-endian) 0x00', () => {
    expect([...encodeFrame(Buffer.from(digits), { crc: 'crc32' })]).toEqual([0x0e, ...digits, 0xcb, 0xf4, 0x39, 0x26, 0x00]);
  });
  it('contains exactly one 0x00, at the end', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.constantFrom<CrcKind>('crc16', 'crc32'), (payload, crc) => {
        const frame = encodeFrame(payload, { crc });
        expect(frame.indexOf(0)).toBe(frame.length - 1);
      }),
    );
  });
});

describe('CobsDecoder round trips', () => {
  for (const crc of ['crc16', 'crc32'] as const) {
    it(`${crc}: any payloads up to maxFrame, in any chunking, decode to the same frames`, () => {
      const maxFrame = 600; // covers several 254-byte COBS groups
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({ maxLength: maxFrame }), { maxLength: 8 }),
          fc.array(fc.nat(), { maxLength: 20 }),
          (payloads, cuts) => {
            const wire = Buffer.concat(payloads.map((p) => encodeFrame(p, { crc })));
            const expected = payloads.map((p) => Buffer.from(p));
            const whole = new CobsDecoder({ crc, maxFrame });
            expect(whole.push(wire)).toEqual(expected);
            const random = new CobsDecoder({ crc, maxFrame });
            expect(feedAll(random, splitAt(wire, cuts))).toEqual(expected);
            const bytes = new CobsDecoder({ crc, maxFrame });
            expect(feedAll(bytes, bytewise(wire))).toEqual(expected);
            for (const d of [whole, random, bytes]) {
              expect(d.stats.frames).toBe(payloads.length);
              expect(Object.values(d.stats.rejected).every((n) => n === 0)).toBe(true);
              expect(d.bufferedLength).toBe(0);
            }
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  it('accepts a payload of exactly the default maxFrame (1024) with either CRC, including all-zero and all-non-zero bytes', () => {
    for (const crc of ['crc16', 'crc32'] as const) {
      for (const payload of [Buffer.alloc(1024, 0), Buffer.alloc(1024, 0x5a), Buffer.from(range(0, 1023).map((i) => i & 0xff))]) {
        const dec = new CobsDecoder({ crc });
        expect(dec.push(encodeFrame(payload, { crc }))).toEqual([payload]);
      }
    }
  });

  it('ignores empty blocks (repeated 0x00) without counting them', () => {
    const dec = new CobsDecoder();
    const frame = encodeFrame(Buffer.from('hi'));
    expect(dec.push(Buffer.concat([Buffer.from([0, 0, 0]), frame, Buffer.from([0]), frame]))).toEqual([Buffer.from('hi'), Buffer.from('hi')]);
    expect(dec.stats.rejected).toEqual({ 'cobs-invalid': 0, 'crc-mismatch': 0, 'too-short': 0, 'too-long': 0 });
  });

  it('reset() drops a partial frame', () => {
    const dec = new CobsDecoder();
    const frame = encodeFrame(Buffer.from('abc'));
    dec.push(frame.subarray(0, 3));
    expect(dec.bufferedLength).toBe(3);
    dec.reset();
    expect(dec.bufferedLength).toBe(0);
    expect(dec.push(frame)).toEqual([Buffer.from('abc')]);
  });
});

describe('CobsDecoder rejections', () => {
  const good = Buffer.from('{"v":1}');

  it("counts 'cobs-invalid' (a code pointing past the delimiter) and recovers", () => {
    const dec = new CobsDecoder();
    expect(dec.push(Buffer.concat([Buffer.from([0x05, 0x11, 0x00]), encodeFrame(good)]))).toEqual([good]);
    expect(dec.stats.rejected['cobs-invalid']).toBe(1);
    expect(dec.stats.frames).toBe(1);
  });

  it("counts 'crc-mismatch' (a corrupted data byte) and recovers", () => {
    for (const crc of ['crc16', 'crc32'] as const) {
      const dec = new CobsDecoder({ crc });
      const bad = encodeFrame(Buffer.from('hello'), { crc });
      bad[1] ^= 0x01; // 'h' -> 'i': still valid COBS, wrong CRC
      expect(dec.push(Buffer.concat([bad, encodeFrame(good, { crc })]))).toEqual([good]);
      expect(dec.stats.rejected['crc-mismatch']).toBe(1);
    }
  });

  it("counts 'too-short' (fewer bytes than the CRC) and recovers", () => {
    const d16 = new CobsDecoder({ crc: 'crc16' });
    expect(d16.push(Buffer.concat([Buffer.from([0x02, 0x41, 0x00]), encodeFrame(good)]))).toEqual([good]);
    expect(d16.stats.rejected['too-short']).toBe(1);
    const d32 = new CobsDecoder({ crc: 'crc32' });
    expect(d32.push(Buffer.concat([Buffer.from([0x04, 0x41, 0x42, 0x43, 0x00]), encodeFrame(good, { crc: 'crc32' })]))).toEqual([good]);
    expect(d32.stats.rejected['too-short']).toBe(1);
  });

  it("counts 'too-long' for a valid frame whose payload exceeds maxFrame", () => {
    const dec = new CobsDecoder({ maxFrame: 1024 });
    const big = encodeFrame(Buffer.alloc(1025, 0)); // fits the encoded bound, payload one byte too long
    expect(big.length - 1).toBeLessThanOrEqual(dec.bufferLimit);
    expect(dec.push(Buffer.concat([big, encodeFrame(good)]))).toEqual([good]);
    expect(dec.stats.rejected['too-long']).toBe(1);
  });

  it("counts an over-long run without 0x00 once as 'too-long', however it is chunked, and recovers", () => {
    const dec = new CobsDecoder({ maxFrame: 64 });
    const run = Buffer.alloc(5000, 0x41);
    for (let i = 0; i < run.length; i += 7) {
      dec.push(run.subarray(i, i + 7));
      expect(dec.bufferedLength).toBeLessThanOrEqual(dec.bufferLimit);
    }
    expect(dec.push(Buffer.concat([Buffer.from([0]), encodeFrame(good)]))).toEqual([good]);
    expect(dec.stats.rejected).toEqual({ 'cobs-invalid': 0, 'crc-mismatch': 0, 'too-short': 0, 'too-long': 1 });
  });

  it('reports each rejection to onReject with its reason', () => {
    const seen: string[] = [];
    const dec = new CobsDecoder({ maxFrame: 8, onReject: (reason) => seen.push(reason) });
    const bad = encodeFrame(Buffer.from('hello'));
    bad[1] ^= 0x01;
    dec.push(Buffer.concat([Buffer.from([0x05, 0x11, 0x00, 0x02, 0x41, 0x00]), bad, Buffer.alloc(100, 0x41), Buffer.from([0])]));
    expect(seen).toEqual(['cobs-invalid', 'too-short', 'crc-mismatch', 'too-long']);
  });

  it('refuses bad options with a clear error', () => {
    expect(() => new CobsDecoder({ crc: 'md5' as CrcKind })).toThrow(/crc must be/);
    expect(() => new CobsDecoder({ maxFrame: -1 })).toThrow(/maxFrame/);
    expect(() => new CobsDecoder({ maxFrame: 1.5 })).toThrow(/maxFrame/);
  });
});

describe('CobsDecoder fuzz', () => {
  it('never throws on random bytes, in random chunks, and keeps its buffer bounded', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.constantFrom<CrcKind>('crc16', 'crc32'),
        (chunks, crc) => {
          const dec = new CobsDecoder({ crc, maxFrame: 100 });
          for (const c of chunks) {
            for (const p of dec.push(c)) expect(p.length).toBeLessThanOrEqual(100);
            expect(dec.bufferedLength).toBeLessThanOrEqual(dec.bufferLimit);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('after arbitrary garbage then 0x00, the next valid frame always decodes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.constantFrom<CrcKind>('crc16', 'crc32'),
        (garbage, payload, crc) => {
          const dec = new CobsDecoder({ crc, maxFrame: 100 });
          dec.push(garbage);
          dec.push(Buffer.from([0]));
          expect(dec.bufferedLength).toBe(0);
          expect(dec.push(encodeFrame(payload, { crc }))).toEqual([Buffer.from(payload)]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps the buffer within its bound over 10 MB without a delimiter, counting one too-long', () => {
    const dec = new CobsDecoder();
    const chunk = Buffer.alloc(64 * 1024);
    let seed = 12345;
    let total = 0;
    // A partial frame is buffered first: the flood must not grow it past the bound.
    dec.push(Buffer.alloc(1000, 0x41));
    let maxSeen = dec.bufferedLength;
    expect(maxSeen).toBe(1000);
    while (total < 10 * 1024 * 1024) {
      for (let i = 0; i < chunk.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        chunk[i] = 1 + ((seed >>> 16) % 255); // never 0x00
      }
      const n = 1 + (seed % chunk.length); // varied chunk sizes
      dec.push(chunk.subarray(0, n));
      total += n;
      maxSeen = Math.max(maxSeen, dec.bufferedLength);
    }
    expect(maxSeen).toBeLessThanOrEqual(dec.bufferLimit);
    expect(dec.bufferLimit).toBe(cobsMaxEncodedLength(1024 + 2));
    expect(dec.stats.rejected['too-long']).toBe(1);
    expect(dec.push(Buffer.concat([Buffer.from([0]), encodeFrame(Buffer.from('ok'))]))).toEqual([Buffer.from('ok')]);
  });
});

describe('decodePayload', () => {
  it("returns the bytes for 'raw'", () => {
    const b = Buffer.from([0, 1, 2, 0xff]);
    expect(decodePayload(b, 'raw')).toEqual({ ok: true, value: b });
  });
  it("parses UTF-8 JSON for 'json'", () => {
    expect(decodePayload(Buffer.from('{"speed":42.5,"unit":"km/h","é":[1]}'), 'json')).toEqual({
      ok: true,
      value: { speed: 42.5, unit: 'km/h', é: [1] },
    });
  });
  it("reports invalid JSON or invalid UTF-8 as 'bad-json' with context, without throwing", () => {
    const bad = decodePayload(Buffer.from('{"speed":'), 'json');
    expect(bad).toMatchObject({ ok: false, reason: 'bad-json' });
    expect(bad.ok ? '' : bad.message).toMatch(/9 bytes is not JSON/);
    const utf = decodePayload(Buffer.from([0x22, 0xc3, 0x22]), 'json');
    expect(utf).toMatchObject({ ok: false, reason: 'bad-json' });
    expect(utf.ok ? '' : utf.message).toMatch(/UTF-8/);
  });
  it('CRC helpers agree with the bytes encodeFrame appends', () => {
    const p = Buffer.from('payload');
    const d16 = cobsDecode(encodeFrame(p, { crc: 'crc16' }).subarray(0, -1))!;
    expect(d16.readUInt16BE(p.length)).toBe(crc16ccitt(p));
    const d32 = cobsDecode(encodeFrame(p, { crc: 'crc32' }).subarray(0, -1))!;
    expect(d32.readUInt32BE(p.length)).toBe(crc32(p));
  });
});
