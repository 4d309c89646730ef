/**
 * slcan codec: every message kind, every rejection reason, chunk boundaries
 * anywhere, resynchronisation after garbage, encoders and their validation,
 * and fast-check properties (no throw, resync, encode/decode round trip).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeFrame, SLCAN_MAX_LINE, slcanCommands, SlcanDecoder, type CanFrame, type SlcanItem, type SlcanRejectReason,
} from '../../src/serial/slcan-codec.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const decodeAll = (input: string | Buffer): { items: SlcanItem[]; dec: SlcanDecoder } => {
  const dec = new SlcanDecoder();
  return { items: dec.push(typeof input === 'string' ? b(input) : input), dec };
};
const frameOf = (item: SlcanItem | undefined): CanFrame => {
  if (item?.kind !== 'frame') throw new Error(`expected a frame, got ${JSON.stringify(item)}`);
  return item.frame;
};
const totalRejected = (dec: SlcanDecoder): number => Object.values(dec.stats.rejected).reduce((a, n) => a + n, 0);

describe('SlcanDecoder: message kinds', () => {
  it('decodes a standard data frame', () => {
    const { items, dec } = decodeAll('t123411223344\r');
    expect(items).toHaveLength(1);
    const f = frameOf(items[0]);
    expect(f).toEqual({ id: 0x123, extended: false, rtr: false, dlc: 4, data: b('\x11\x22\x33\x44') });
    expect(f.timestamp).toBeUndefined();
    expect(dec.stats.frames).toBe(1);
  });

  it('decodes an extended frame with 8 bytes and a timestamp', () => {
    const f = frameOf(decodeAll('T1ABCDEF08DEADBEEF01020304EA5F\r').items[0]);
    expect(f).toEqual({ id: 0x1abcdef0, extended: true, rtr: false, dlc: 8, data: Buffer.from('deadbeef01020304', 'hex'), timestamp: 0xea5f });
  });

  it('decodes a timestamp on a standard frame, and lowercase hex', () => {
    const f = frameOf(decodeAll('t7ff2abcd0010\r').items[0]);
    expect(f).toEqual({ id: 0x7ff, extended: false, rtr: false, dlc: 2, data: Buffer.from('abcd', 'hex'), timestamp: 16 });
  });

  it('decodes a zero-length frame', () => {
    const f = frameOf(decodeAll('t0000\r').items[0]);
    expect(f).toEqual({ id: 0, extended: false, rtr: false, dlc: 0, data: Buffer.alloc(0) });
  });

  it('decodes RTR frames (dlc kept, no data), standard and extended, with timestamp', () => {
    const { items } = decodeAll('r1238\rR000001004\rr12381234\r');
    expect(items.map(frameOf)).toEqual([
      { id: 0x123, extended: false, rtr: true, dlc: 8, data: Buffer.alloc(0) },
      { id: 0x100, extended: true, rtr: true, dlc: 4, data: Buffer.alloc(0) },
      { id: 0x123, extended: false, rtr: true, dlc: 8, data: Buffer.alloc(0), timestamp: 0x1234 },
    ]);
  });

  it('CANable RTR lines carry DLC data bytes (rtrCarriesData): checked, then dropped; without it they are a length mismatch', () => {
    const dec = new SlcanDecoder();
    dec.rtrCarriesData = true;
    const items = dec.push(Buffer.from('r1232AABB\rR000001001FF\rr1232AAXB\rr1232\r'));
    expect(items.map(frameOf)).toEqual([
      { id: 0x123, extended: false, rtr: true, dlc: 2, data: Buffer.alloc(0) },
      { id: 0x100, extended: true, rtr: true, dlc: 1, data: Buffer.alloc(0) },
    ]);
    expect(dec.stats.rejected).toMatchObject({ 'bad-hex': 1, 'length-mismatch': 1 });
    // Read as LAWICEL, a 2-byte RTR's data looks like a timestamp: why the dialect must say which it is.
    const lawicel = new SlcanDecoder();
    expect(frameOf(lawicel.push(Buffer.from('r1232AABB\r'))[0]).timestamp).toBe(0xaabb);
  });

  it('accepts timestamp 60000 (USBtin clock.c resets its ms counter only above 60000)', () => {
    const { items } = decodeAll('t1231AAEA60\r');
    expect(frameOf(items[0]).timestamp).toBe(60_000);
  });

  it('decodes command replies: CR, BEL, z, Z, F, V, v, N', () => {
    const { items, dec } = decodeAll('\r\x07z\rZ\rF8A\rV1013\rv0107\rNA1b2\r');
    expect(items).toEqual([
      { kind: 'ok' },
      { kind: 'error' },
      { kind: 'tx-ack', extended: false },
      { kind: 'tx-ack', extended: true },
      { kind: 'status', flags: 0x8a },
      { kind: 'version', which: 'V', value: '1013' },
      { kind: 'version', which: 'v', value: '0107' },
      { kind: 'serial', value: 'A1b2' },
    ]);
    expect(dec.stats).toMatchObject({ frames: 0, acks: 7, errors: 1 });
    expect(totalRejected(dec)).toBe(0);
  });

  it('delivers to onItem instead of the returned array', () => {
    const got: SlcanItem[] = [];
    const dec = new SlcanDecoder({ onItem: (i) => got.push(i) });
    expect(dec.push(b('t1001AA\r\r'))).toEqual([]);
    expect(got).toEqual([{ kind: 'frame', frame: { id: 0x100, extended: false, rtr: false, dlc: 1, data: b('\xaa') } }, { kind: 'ok' }]);
  });
});

describe('SlcanDecoder: rejections', () => {
  const cases: [string, SlcanRejectReason][] = [
    ['t12G0', 'bad-id'],
    ['t8000', 'bad-id'], // > 0x7FF
    ['T200000000', 'bad-id'], // > 0x1FFFFFFF
    ['T1234567X0', 'bad-id'],
    ['t1239', 'bad-dlc'],
    ['t123G', 'bad-dlc'],
    ['t1232AAXB', 'bad-hex'],
    ['t1231AA12G4', 'bad-hex'], // timestamp
    ['F1X', 'bad-hex'],
    ['V10G3', 'bad-hex'],
    ['N12-4', 'bad-hex'],
    ['t1231AAEA61', 'bad-timestamp'], // 60001 ms (60000 is USBtin's last ms of the minute)
    ['t12', 'length-mismatch'],
    ['t1232AA', 'length-mismatch'],
    ['t1231AA1', 'length-mismatch'],
    ['t1231AA12345', 'length-mismatch'],
    ['r1238AA', 'length-mismatch'],
    ['zz', 'length-mismatch'],
    ['F1', 'length-mismatch'],
    ['V123', 'length-mismatch'],
    ['N12345', 'length-mismatch'],
    ['x', 'unknown'],
    ['hello', 'unknown'],
    ['O'.repeat(SLCAN_MAX_LINE + 1), 'too-long'],
  ];
  it.each(cases)('%j is rejected as %s and the next line still decodes', (line, reason) => {
    const { items, dec } = decodeAll(`${line}\rt1001AA\r`);
    expect(dec.stats.rejected[reason]).toBe(1);
    expect(totalRejected(dec)).toBe(1);
    expect(items).toEqual([{ kind: 'frame', frame: { id: 0x100, extended: false, rtr: false, dlc: 1, data: b('\xaa') } }]);
  });

  it('a line of exactly SLCAN_MAX_LINE bytes is a valid frame, one more is too long', () => {
    const longest = 'T1FFFFFFF8' + '00'.repeat(8) + 'EA5F';
    expect(longest).toHaveLength(SLCAN_MAX_LINE);
    expect(decodeAll(longest + '\r').dec.stats.frames).toBe(1);
    expect(decodeAll(longest + '0\r').dec.stats.rejected['too-long']).toBe(1);
  });

  it('a line cut by a BEL is rejected as cut and the BEL still counts as an error reply', () => {
    const { items, dec } = decodeAll('t1234AABB\x07t1000\r');
    expect(dec.stats.rejected.cut).toBe(1);
    expect(dec.stats.errors).toBe(1);
    expect(items.map((i) => i.kind)).toEqual(['error', 'frame']);
  });

  it('a line cut by a BEL across chunks is rejected as cut', () => {
    const dec = new SlcanDecoder();
    dec.push(b('t1234AA'));
    expect(dec.push(b('BB\x07'))).toEqual([{ kind: 'error' }]);
    expect(dec.stats.rejected.cut).toBe(1);
  });

  it('bounds the buffer of a never-ending line and counts it once at its CR', () => {
    const dec = new SlcanDecoder();
    for (let i = 0; i < 1000; i++) {
      dec.push(b('A'.repeat(1000)));
      expect(dec.buffered).toBeLessThanOrEqual(SLCAN_MAX_LINE);
    }
    expect(dec.push(b('t1000\r')).map((i) => i.kind)).toEqual([]);
    expect(dec.stats.rejected['too-long']).toBe(1);
    expect(dec.push(b('t1000\r')).map((i) => i.kind)).toEqual(['frame']);
  });

  it('a long line split across chunks is too long even if each part is short', () => {
    const dec = new SlcanDecoder();
    dec.push(b('t'.repeat(20)));
    dec.push(b('t'.repeat(20)));
    dec.push(b('\r'));
    expect(dec.stats.rejected).toMatchObject({ 'too-long': 1, unknown: 0 });
  });
});

const mixed = 't123411223344\rT1ABCDEF08DEADBEEF01020304EA5F\r\x07garbage\rr1238\rF00\rt7ff2abcd0010\rz\r' + 'Q'.repeat(50) + '\rt0000\r';

describe('SlcanDecoder: chunk boundaries', () => {
  const whole = decodeAll(mixed);

  it('byte by byte gives the same items and stats as one chunk', () => {
    const dec = new SlcanDecoder();
    const items: SlcanItem[] = [];
    for (const byte of b(mixed)) items.push(...dec.push(Buffer.from([byte])));
    expect(items).toEqual(whole.items);
    expect(dec.stats).toEqual(whole.dec.stats);
    expect(whole.items).toHaveLength(8);
  });

  it('random splits give the same items and stats (fast-check)', () => {
    const input = b(mixed);
    fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 40 }), (cuts) => {
      const points = [0, ...cuts.sort((x, y) => x - y), input.length];
      const dec = new SlcanDecoder();
      const items: SlcanItem[] = [];
      for (let i = 0; i + 1 < points.length; i++) items.push(...dec.push(input.subarray(points[i], points[i + 1])));
      expect(items).toEqual(whole.items);
      expect(dec.stats).toEqual(whole.dec.stats);
    }));
  });

  it('does not keep references to the caller chunk (frames survive the chunk being overwritten)', () => {
    const chunk = b('t1001AA\r');
    const f = frameOf(new SlcanDecoder().push(chunk)[0]);
    chunk.fill(0);
    expect(f.data).toEqual(b('\xaa'));
  });
});

const arbFrame: fc.Arbitrary<CanFrame> = fc.boolean().chain((extended) => fc.record({
  id: fc.integer({ min: 0, max: extended ? 0x1fffffff : 0x7ff }),
  extended: fc.constant(extended),
  rtr: fc.boolean(),
  data: fc.uint8Array({ maxLength: 8 }),
}).chain((r) => fc.integer({ min: 0, max: 8 }).map((rtrDlc): CanFrame => ({
  id: r.id, extended, rtr: r.rtr, dlc: r.rtr ? rtrDlc : r.data.length, data: r.rtr ? Buffer.alloc(0) : Buffer.from(r.data),
}))));

describe('SlcanDecoder: properties', () => {
  it('random bytes never throw and the buffer stays bounded', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), (chunks) => {
      const dec = new SlcanDecoder();
      for (const c of chunks) {
        dec.push(c);
        expect(dec.buffered).toBeLessThanOrEqual(SLCAN_MAX_LINE);
      }
    }), { numRuns: 500 });
  });

  it('resynchronises: garbage, CR, then a valid frame decodes to that frame', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), arbFrame, fc.integer({ min: 1, max: 16 }), (garbage, frame, chunkSize) => {
      const input = Buffer.concat([garbage, b('\r'), encodeFrame(frame)]);
      const dec = new SlcanDecoder();
      const items: SlcanItem[] = [];
      for (let i = 0; i < input.length; i += chunkSize) items.push(...dec.push(input.subarray(i, i + chunkSize)));
      expect(items.at(-1)).toEqual({ kind: 'frame', frame });
    }), { numRuns: 500 });
  });

  it('random frames round-trip through encodeFrame and the decoder', () => {
    fc.assert(fc.property(fc.array(arbFrame, { maxLength: 20 }), (frames) => {
      const { items, dec } = decodeAll(Buffer.concat(frames.map(encodeFrame)));
      expect(items).toEqual(frames.map((frame) => ({ kind: 'frame', frame })));
      expect(dec.stats.frames).toBe(frames.length);
    }));
  });
});

describe('encoders', () => {
  it('encodes frames in uppercase hex', () => {
    expect(encodeFrame({ id: 0x123, data: b('\x11\x22\x33\x44') }).toString()).toBe('t123411223344\r');
    expect(encodeFrame({ id: 0xabc & 0x7ff, data: b('\xab') }).toString()).toBe('t2BC1AB\r');
    expect(encodeFrame({ id: 0x1abcdef0, extended: true, data: Buffer.alloc(0) }).toString()).toBe('T1ABCDEF00\r');
    expect(encodeFrame({ id: 0x7ff, rtr: true, dlc: 8 }).toString()).toBe('r7FF8\r');
    expect(encodeFrame({ id: 5, extended: true, rtr: true, data: b('\0\0') }).toString()).toBe('R000000052\r');
  });

  it('rejects invalid frames with the reason', () => {
    expect(() => encodeFrame({ id: 0x800 })).toThrow(/standard id 2048 out of range 0\.\.0x7FF/);
    expect(() => encodeFrame({ id: 0x20000000, extended: true })).toThrow(/extended id 536870912 out of range 0\.\.0x1FFFFFFF/);
    expect(() => encodeFrame({ id: -1 })).toThrow(/out of range/);
    expect(() => encodeFrame({ id: 1.5 })).toThrow(/out of range/);
    expect(() => encodeFrame({ id: 1, data: Buffer.alloc(9) })).toThrow(/9 data bytes, at most 8/);
    expect(() => encodeFrame({ id: 1, rtr: true, dlc: 9 })).toThrow(/dlc 9 out of range/);
    expect(() => encodeFrame({ id: 1, dlc: 2, data: Buffer.alloc(1) })).toThrow(/dlc 2 but 1 data bytes/);
  });

  it('encodes commands', () => {
    const s = (x: Buffer): string => x.toString('latin1');
    expect(s(slcanCommands.open())).toBe('O\r');
    expect(s(slcanCommands.close())).toBe('C\r');
    expect(s(slcanCommands.listenOnly())).toBe('L\r');
    expect(s(slcanCommands.timestamps(true))).toBe('Z1\r');
    expect(s(slcanCommands.timestamps(false))).toBe('Z0\r');
    expect(s(slcanCommands.readStatus())).toBe('F\r');
    expect(s(slcanCommands.version())).toBe('V\r');
    const rates = [10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 800_000, 1_000_000];
    expect(rates.map((r) => s(slcanCommands.bitrate(r)))).toEqual(rates.map((_, i) => `S${i}\r`));
    expect(() => slcanCommands.bitrate(83_333)).toThrow(/83333 bit\/s not supported/);
  });
});
