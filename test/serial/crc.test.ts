/**
 * CRC-16/CCITT-FALSE and CRC-32 (src/serial/crc.ts): catalogue check values,
 * and agreement with straightforward bit-by-bit definitions on random data
 * and ranges (the table-driven code must not drift from the definition).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CRC32_START, crc16ccitt, crc32, crc32Final, crc32Update, crc32UpdateText } from '../../src/serial/crc.js';

const CHECK = Buffer.from('123456789', 'ascii');

/** Bitwise reference: poly 0x1021, init 0xFFFF, MSB first, xorout 0. */
function refCrc16(data: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** Bitwise reference: reflected poly 0xEDB88320, init/xorout 0xFFFFFFFF. */
function refCrc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('crc16ccitt (CRC-16/CCITT-FALSE)', () => {
  it('has the catalogue check value 0x29B1 for "123456789"', () => {
    expect(crc16ccitt(CHECK)).toBe(0x29b1);
  });
  it('is the init value 0xFFFF on empty input', () => {
    expect(crc16ccitt(new Uint8Array(0))).toBe(0xffff);
  });
  it('computes over [start, end) only', () => {
    const framed = Buffer.concat([Buffer.from([0xaa, 0x55]), CHECK, Buffer.from([0x01])]);
    expect(crc16ccitt(framed, 2, 2 + CHECK.length)).toBe(0x29b1);
  });
  it('matches the bitwise definition on random data and ranges', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), fc.nat(), (data, a, b) => {
        const s = data.length === 0 ? 0 : a % (data.length + 1);
        const e = s + (data.length === 0 ? 0 : b % (data.length - s + 1));
        expect(crc16ccitt(data, s, e)).toBe(refCrc16(data.subarray(s, e)));
      }),
    );
  });
});

describe('crc32 (IEEE 802.3)', () => {
  it('has the catalogue check value 0xCBF43926 for "123456789"', () => {
    expect(crc32(CHECK)).toBe(0xcbf43926);
  });
  it('is 0 on empty input and always unsigned', () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toBe(0xffffffff);
  });
  it('computes over [start, end) only', () => {
    const framed = Buffer.concat([Buffer.from([0, 0, 0]), CHECK, Buffer.from([0xff])]);
    expect(crc32(framed, 3, 3 + CHECK.length)).toBe(0xcbf43926);
  });
  it('matches the bitwise definition on random data and ranges', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), fc.nat(), (data, a, b) => {
        const s = data.length === 0 ? 0 : a % (data.length + 1);
        const e = s + (data.length === 0 ? 0 : b % (data.length - s + 1));
        const got = crc32(data, s, e);
        expect(got).toBe(refCrc32(data.subarray(s, e)));
        expect(got).toBeGreaterThanOrEqual(0);
      }),
    );
  });
});

describe('crc32 in parts (crc32Update, crc32UpdateText, crc32Final)', () => {
  it('over parts is crc32 of their concatenation', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 5 }), (parts) => {
        const reg = parts.reduce((c, p) => crc32Update(c, p), CRC32_START);
        expect(crc32Final(reg)).toBe(refCrc32(Buffer.concat(parts)));
      }),
    );
  });
  it('over text is crc32 of its UTF-8 bytes, lone surrogates as U+FFFD (as Buffer.from encodes them)', () => {
    for (const text of ['', 'afb-edge/bench/events/q1', 'v\u00e9hicule/\u00e9tat', 'a/\u{1f697}/b', 'x\ud800y', '\udc00', 'ab\ud83d']) {
      expect(crc32Final(crc32UpdateText(CRC32_START, text)), JSON.stringify(text)).toBe(refCrc32(Buffer.from(text, 'utf8')));
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.uint8Array({ maxLength: 16 }), (text, tail) => {
        const reg = crc32Update(crc32UpdateText(CRC32_START, text), tail);
        expect(crc32Final(reg)).toBe(refCrc32(Buffer.concat([Buffer.from(text, 'utf8'), tail])));
      }),
    );
  });
});
