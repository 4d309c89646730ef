/**
 * Where a signal's bits lie, computed once: a list of byte chunks, most
 * significant first, so that reading is `raw = raw·2^w + (byte >> shift & mask)`
 * per chunk (one to nine chunks) instead of a loop over single bits.
 *
 * DBC bit numbering: bit b is bit (b % 8) of byte b / 8, bit 0 the LSB.
 * Little endian (`@1`): start is the LSB, the signal goes up. Big endian
 * (`@0`): start is the MSB; in network order (byte 0 bit 7 first) the
 * signal is contiguous from 8·(start/8) + 7 − start%8.
 *
 * Up to 53 bits the raw value is an exact double; longer ones (to 64) go
 * through BigInt. IEEE float32/float64 signals reinterpret the bits.
 */

export interface BitLayout {
  /** Per chunk, most significant first: byte index, right shift in the byte, mask, width (4 ints). */
  chunks: Int32Array;
  length: number;
  /** Payload bytes needed for every bit of the signal (truncated frames: cantools' rule). */
  needBytes: number;
}

export function bitLayout(startBit: number, length: number, bigEndian: boolean): BitLayout {
  const parts: number[] = [];
  const push = (byte: number, low: number, high: number): void => {
    const width = high - low + 1;
    parts.push(byte, low, (1 << width) - 1, width);
  };
  let lastByte: number;
  if (bigEndian) {
    const n0 = 8 * (startBit >> 3) + 7 - (startBit & 7);
    const n1 = n0 + length - 1;
    for (let b = n0 >> 3; b <= n1 >> 3; b++) {
      const first = Math.max(n0, 8 * b);
      const last = Math.min(n1, 8 * b + 7);
      push(b, 7 - (last & 7), 7 - (first & 7));
    }
    lastByte = n1 >> 3;
  } else {
    const end = startBit + length - 1;
    for (let b = end >> 3; b >= startBit >> 3; b--) {
      push(b, b === startBit >> 3 ? startBit & 7 : 0, b === end >> 3 ? end & 7 : 7);
    }
    lastByte = end >> 3;
  }
  return { chunks: Int32Array.from(parts), length, needBytes: lastByte + 1 };
}

/** Unsigned raw value, up to 53 bits. */
export function readUnsigned(l: BitLayout, data: Uint8Array): number {
  const c = l.chunks;
  let raw = 0;
  for (let i = 0; i < c.length; i += 4) raw = raw * (1 << c[i + 3]!) + ((data[c[i]!]! >>> c[i + 1]!) & c[i + 2]!);
  return raw;
}

/** Unsigned raw value of any length (to 64 bits). */
export function readUnsignedBig(l: BitLayout, data: Uint8Array): bigint {
  const c = l.chunks;
  let raw = 0n;
  for (let i = 0; i < c.length; i += 4) raw = (raw << BigInt(c[i + 3]!)) | BigInt((data[c[i]!]! >>> c[i + 1]!) & c[i + 2]!);
  return raw;
}

/** ORs an unsigned value (already reduced to the signal's bits) into the payload. */
export function writeUnsigned(l: BitLayout, data: Uint8Array, value: number): void {
  const c = l.chunks;
  let v = value;
  for (let i = c.length - 4; i >= 0; i -= 4) {
    const size = 2 ** c[i + 3]!;
    const part = v % size;
    v = (v - part) / size;
    data[c[i]!]! |= part << c[i + 1]!;
  }
}

export function writeUnsignedBig(l: BitLayout, data: Uint8Array, value: bigint): void {
  const c = l.chunks;
  let v = value;
  for (let i = c.length - 4; i >= 0; i -= 4) {
    data[c[i]!]! |= Number(v & BigInt(c[i + 2]!)) << c[i + 1]!;
    v >>= BigInt(c[i + 3]!);
  }
}

// One scratch buffer reinterprets IEEE bits (single-threaded: no sharing issue).
const scratch = new ArrayBuffer(8);
const u32 = new Uint32Array(scratch, 0, 1);
const f32 = new Float32Array(scratch, 0, 1);
const u64 = new BigUint64Array(scratch, 0, 1);
const f64 = new Float64Array(scratch, 0, 1);

export function float32FromBits(bits: number): number {
  u32[0] = bits;
  return f32[0]!;
}

export function float64FromBits(bits: bigint): number {
  u64[0] = bits;
  return f64[0]!;
}

export function float32Bits(value: number): number {
  f32[0] = value;
  return u32[0]!;
}

export function float64Bits(value: number): bigint {
  f64[0] = value;
  return u64[0]!;
}
