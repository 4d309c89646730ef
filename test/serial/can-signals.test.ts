/**
 * CAN signals: Intel and Motorola bit layouts against vectors worked out by
 * hand from the DBC definition, sign, scale/offset, map validation naming the
 * message and signal, and fast-check round trips (values → frame → values,
 * frame → values → frame).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileSignalMap, signalBitPositions, type SignalMap, type SignalSpec } from '../../src/serial/can-signals.js';
import type { CanFrame } from '../../src/serial/slcan-codec.js';

const frame = (id: number, bytes: number[], extended = false): CanFrame => ({ id, extended, rtr: false, dlc: bytes.length, data: Buffer.from(bytes) });
const one = (sig: Omit<SignalSpec, 'name'>, id = 0x100): ReturnType<typeof compileSignalMap> =>
  compileSignalMap({ messages: [{ id, name: 'M', signals: [{ name: 's', ...sig }] }] });
const valueOf = (sig: Omit<SignalSpec, 'name'>, bytes: number[]): number | undefined => one(sig).decode(frame(0x100, bytes))?.values.s;

describe('bit layouts (hand-computed vectors)', () => {
  it('Motorola 16 bits, start bit 7: byte 0 is the high byte', () => {
    expect(signalBitPositions({ start_bit: 7, length: 16, byte_order: 'big_endian' })).toEqual([7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8]);
    expect(valueOf({ start_bit: 7, length: 16, byte_order: 'big_endian' }, [0x12, 0x34])).toBe(0x1234);
  });

  it('Intel 12 bits from bit 4: high nibble of byte 0 is the low nibble of the value', () => {
    // 0xAB, 0xCD -> bits 4..15 of 0xCDAB = 0xCDA
    expect(valueOf({ start_bit: 4, length: 12, byte_order: 'little_endian' }, [0xab, 0xcd])).toBe(0xcda);
  });

  it('Motorola 12 bits from bit 3: low nibble of byte 0 then byte 1', () => {
    expect(valueOf({ start_bit: 3, length: 12, byte_order: 'big_endian' }, [0xab, 0xcd])).toBe(0xbcd);
  });

  it('Motorola 16 bits from bit 5 spans three bytes', () => {
    // byte0 bits 5..0 = 101010, byte1 = 0xCD, byte2 bits 7..6 = 10 -> 1010_1011_0011_0110
    expect(signalBitPositions({ start_bit: 5, length: 16, byte_order: 'big_endian' })).toEqual([5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8, 23, 22]);
    expect(valueOf({ start_bit: 5, length: 16, byte_order: 'big_endian' }, [0xea, 0xcd, 0x80])).toBe(0xab36);
  });

  it('Intel 16 bits from bit 24 with scale (J1939 engine speed, 0.125 rpm/bit)', () => {
    expect(valueOf({ start_bit: 24, length: 16, byte_order: 'little_endian', scale: 0.125 }, [0, 0, 0, 0x20, 0x1c, 0, 0, 0])).toBe(900);
  });

  it('single bits', () => {
    expect(valueOf({ start_bit: 9, length: 1, byte_order: 'little_endian' }, [0, 0x02])).toBe(1);
    expect(valueOf({ start_bit: 9, length: 1, byte_order: 'big_endian' }, [0, 0xfd])).toBe(0);
  });

  it('signed values, scale and offset', () => {
    expect(valueOf({ start_bit: 8, length: 8, byte_order: 'little_endian', signed: true }, [0, 0xfe])).toBe(-2);
    expect(valueOf({ start_bit: 8, length: 8, byte_order: 'little_endian', signed: true, scale: 0.5, offset: 10 }, [0, 0xfe])).toBe(9);
    expect(valueOf({ start_bit: 8, length: 8, byte_order: 'little_endian', signed: false, scale: 0.5, offset: 10 }, [0, 0xfe])).toBe(137);
    expect(valueOf({ start_bit: 7, length: 12, byte_order: 'big_endian', signed: true }, [0x80, 0x0f])).toBe(-2048);
    expect(valueOf({ start_bit: 7, length: 12, byte_order: 'big_endian', signed: true }, [0x7f, 0xf0])).toBe(2047);
    // temperature, 1 °C/bit offset -40
    expect(valueOf({ start_bit: 0, length: 8, byte_order: 'little_endian', offset: -40 }, [0x5a])).toBe(50);
  });

  it('64-bit signals keep their sign and are exact where a double can be', () => {
    const all = Array(8).fill(0xff) as number[];
    expect(valueOf({ start_bit: 0, length: 64, byte_order: 'little_endian', signed: true }, all)).toBe(-1);
    expect(valueOf({ start_bit: 7, length: 64, byte_order: 'big_endian', signed: true }, all)).toBe(-1);
    expect(valueOf({ start_bit: 0, length: 64, byte_order: 'little_endian' }, all)).toBe(2 ** 64);
    expect(valueOf({ start_bit: 7, length: 64, byte_order: 'big_endian', signed: true }, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x85])).toBe(-123);
    const m = one({ start_bit: 7, length: 64, byte_order: 'big_endian', signed: true });
    expect([...m.encode('M', { s: -123 }).data]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x85]);
    expect(() => m.encode('M', { s: 2 ** 63 })).toThrow(/does not fit 64 signed bits/);
  });
});

describe('decode', () => {
  const map: SignalMap = {
    messages: [
      { id: 0x100, name: 'Engine', signals: [
        { name: 'rpm', start_bit: 0, length: 16, byte_order: 'little_endian', scale: 0.25, unit: 'rpm' },
        { name: 'temp', start_bit: 16, length: 8, byte_order: 'little_endian', offset: -40, unit: '°C' },
        { name: 'late', start_bit: 56, length: 8, byte_order: 'little_endian' },
      ] },
      { id: 0x100, extended: true, name: 'Ext', signals: [{ name: 'x', start_bit: 0, length: 8, byte_order: 'little_endian' }] },
    ],
  };
  const m = compileSignalMap(map);

  it('names values and units; signals past a short frame are left out', () => {
    expect(m.decode(frame(0x100, [0x40, 0x1f, 0x5a]))).toEqual({ name: 'Engine', values: { rpm: 2000, temp: 50 }, units: { rpm: 'rpm', temp: '°C' } });
    expect(m.decode(frame(0x100, [0, 0, 0, 0, 0, 0, 0, 7]))?.values.late).toBe(7);
  });

  it('tells standard and extended ids apart, ignores unknown ids and RTR frames', () => {
    expect(m.decode(frame(0x100, [9], true))).toEqual({ name: 'Ext', values: { x: 9 }, units: {} });
    expect(m.decode(frame(0x101, [1, 2, 3]))).toBeUndefined();
    expect(m.decode({ id: 0x100, extended: false, rtr: true, dlc: 8, data: Buffer.alloc(0) })).toBeUndefined();
  });
});

describe('decode rounding', () => {
  it('gives the physical value to the decimals of scale and offset, not binary float noise', () => {
    const m = compileSignalMap({ messages: [{ id: 1, name: 'A', signals: [
      { name: 's', start_bit: 0, length: 16, byte_order: 'little_endian', scale: 0.01 },
      { name: 't', start_bit: 16, length: 16, byte_order: 'little_endian', scale: 0.1, offset: -40.5 },
    ] }] });
    // raw 7482 × 0.01 is 74.82000000000001 in doubles; raw 3 × 0.1 - 40.5 is -40.2 (not -40.199999999999996)
    expect(m.decode({ id: 1, extended: false, rtr: false, dlc: 4, data: Buffer.from([0x3a, 0x1d, 0x03, 0x00]) })!.values).toEqual({ s: 74.82, t: -40.2 });
  });
});

describe('encode', () => {
  const m = compileSignalMap({ messages: [{ id: 0x18fef100, extended: true, name: 'CCVS', signals: [
    { name: 'speed', start_bit: 8, length: 16, byte_order: 'little_endian', scale: 1 / 256, min: 0, max: 250.996, unit: 'km/h' },
    { name: 'brake', start_bit: 4, length: 2, byte_order: 'little_endian' },
    { name: 'torque', start_bit: 39, length: 12, byte_order: 'big_endian', signed: true, scale: 0.5 },
  ] }] });

  it('builds a frame from values; omitted signals are raw 0', () => {
    const f = m.encode('CCVS', { speed: 100.5, torque: -10 });
    // speed raw 25728 = 0x6480 LE in bytes 1-2; torque raw -20 = 0xFEC, Motorola from bit 39: byte4 = 0xFE, byte5 high nibble = 0xC
    expect(f).toEqual({ id: 0x18fef100, extended: true, rtr: false, dlc: 6, data: Buffer.from([0x00, 0x80, 0x64, 0, 0xfe, 0xc0]) });
    expect(m.decode(f)?.values).toEqual({ speed: 100.5, brake: 0, torque: -10 });
  });

  it('rejects unknown names and out-of-range values with context', () => {
    expect(() => m.encode('Nope', {})).toThrow(/unknown message "Nope"/);
    expect(() => m.encode('CCVS', { sped: 1 })).toThrow(/message "CCVS" has no signal "sped"/);
    expect(() => m.encode('CCVS', { speed: 251 })).toThrow(/CCVS\.speed = 251: above max 250\.996/);
    expect(() => m.encode('CCVS', { speed: -1 })).toThrow(/CCVS\.speed = -1: below min 0/);
    expect(() => m.encode('CCVS', { brake: 4 })).toThrow(/CCVS\.brake = 4: raw 4 does not fit 2 unsigned bits/);
    expect(() => m.encode('CCVS', { torque: -1024.5 })).toThrow(/raw -2049 does not fit 12 signed bits/);
    expect(() => m.encode('CCVS', { brake: Number.NaN })).toThrow(/not a finite number/);
  });

  it('uses the declared dlc', () => {
    const d = compileSignalMap({ messages: [{ id: 1, name: 'D', dlc: 8, signals: [{ name: 'a', start_bit: 0, length: 4, byte_order: 'little_endian' }] }] });
    expect(d.encode('D', { a: 15 }).data).toEqual(Buffer.from([0x0f, 0, 0, 0, 0, 0, 0, 0]));
  });
});

describe('map validation', () => {
  const sig = (over: Partial<SignalSpec>): SignalSpec => ({ name: 'sig', start_bit: 0, length: 8, byte_order: 'little_endian', ...over });
  const compile = (signals: SignalSpec[], over: object = {}) => () => compileSignalMap({ messages: [{ id: 0x10, name: 'Msg', signals, ...over }] });

  it('rejects signals beyond 64 bits, naming message and signal', () => {
    expect(compile([sig({ start_bit: 60, length: 8 })])).toThrow(/message 0 "Msg" signal "sig": little_endian start_bit 60 length 8 reaches bit 67/);
    expect(compile([sig({ start_bit: 63, length: 9, byte_order: 'big_endian' })])).toThrow(/"Msg" signal "sig": big_endian start_bit 63 length 9 reaches bit 71/);
    expect(compile([sig({ length: 65 })])).toThrow(/signal "sig": length 65 out of range 1\.\.64/);
    expect(compile([sig({ length: 0 })])).toThrow(/length 0 out of range/);
    expect(compile([sig({ start_bit: 64 })])).toThrow(/start_bit 64 out of range/);
  });

  it('allows overlapping signals', () => {
    const m = compile([sig({ name: 'a', length: 16 }), sig({ name: 'b', start_bit: 4, length: 8 })])();
    expect(m.decode(frame(0x10, [0x34, 0x12]))?.values).toEqual({ a: 0x1234, b: 0x23 });
  });

  it('rejects other mistakes with context', () => {
    expect(compile([sig({ byte_order: 'middle' as never })])).toThrow(/"Msg" signal "sig": byte_order must be little_endian or big_endian/);
    expect(compile([sig({ scale: 0 })])).toThrow(/signal "sig": scale must be a finite non-zero number/);
    expect(compile([sig({}), sig({})])).toThrow(/signal "sig": duplicate signal name/);
    expect(compile([sig({ start_bit: 8 })], { dlc: 1 })).toThrow(/"Msg": dlc 1 must be 2\.\.8/);
    expect(compile([], { id: 0x800 })).toThrow(/"Msg": id 2048 out of range for a standard frame/);
    expect(() => compileSignalMap({ messages: [{ id: 1, name: 'A', signals: [] }, { id: 1, name: 'B', signals: [] }] })).toThrow(/message 1 "B": duplicate id 0x1 \(also "A"\)/);
    expect(() => compileSignalMap({ messages: [{ id: 1, name: 'A', signals: [] }, { id: 2, name: 'A', signals: [] }] })).toThrow(/"A": duplicate message name/);
  });
});

describe('properties', () => {
  const arbLayout = fc.record({
    start_bit: fc.integer({ min: 0, max: 63 }),
    length: fc.integer({ min: 1, max: 64 }),
    byte_order: fc.constantFrom('little_endian' as const, 'big_endian' as const),
    signed: fc.boolean(),
    scale: fc.constantFrom(1, 0.5, 0.125, 0.1, 2, 1 / 256),
    offset: fc.constantFrom(0, -40, 1000, 0.5),
  }).filter((l) => signalBitPositions(l).every((b) => b >= 0 && b <= 63));

  it('encode then decode gives back any in-range value (random layouts)', () => {
    fc.assert(fc.property(arbLayout, fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (layout, u) => {
      // Raw values where a double is exact (the decoder is exact to 53 bits).
      const bits = Math.min(layout.length, 40);
      const lo = layout.signed ? -(2 ** (bits - 1)) : 0;
      const raw = lo + Math.floor(u * 2 ** bits);
      const value = raw * layout.scale + layout.offset;
      const m = one(layout);
      const f = m.encode('M', { s: value });
      // Decoding rounds to the decimals of scale/offset (no 0.30000000000000004): only float noise differs,
      // and the decoded value encodes to the same frame.
      const got = m.decode(f)!.values.s!;
      expect(Math.abs(got - value)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(value)));
      expect(m.encode('M', { s: got })).toEqual(f);
    }), { numRuns: 1000 });
  });

  // Every payload bit belongs to exactly one signal, so decode then encode must give the same bytes.
  const tiling = compileSignalMap({ messages: [{ id: 0x321, name: 'T', signals: [
    { name: 'a', start_bit: 0, length: 13, byte_order: 'little_endian' },
    { name: 'b', start_bit: 13, length: 3, byte_order: 'little_endian', signed: true },
    { name: 'c', start_bit: 23, length: 11, byte_order: 'big_endian', signed: true, scale: 0.5, offset: 3 },
    { name: 'd', start_bit: 24, length: 5, byte_order: 'little_endian' },
    { name: 'e', start_bit: 39, length: 24, byte_order: 'big_endian', scale: 0.125 },
    { name: 'f', start_bit: 56, length: 8, byte_order: 'little_endian', signed: true },
  ] }] });

  it('decode then encode gives back the frame (Intel and Motorola tiling all 64 bits)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), (bytes) => {
      const f = frame(0x321, [...bytes]);
      const d = tiling.decode(f);
      expect(d).toBeDefined();
      expect(tiling.encode('T', d!.values)).toEqual(f);
    }), { numRuns: 1000 });
  });
});
