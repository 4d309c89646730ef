/**
 * Frame → values, on a compiled message: raw values read from byte chunks,
 * physical values as cantools computes them, VAL_ labels, the branches the
 * multiplexer values select (iteratively), the signals a short frame holds.
 */
import { float32FromBits, float64FromBits, readUnsigned, readUnsignedBig } from './bits.js';
import { Conv, Kind, type CompiledMessage, type CompiledSignal } from './compiled.js';
import { branchOf, type MuxNode } from './mux.js';

export type SignalValue = number | string;

export interface DbcDecoded {
  message: string;
  /** Physical values, or the VAL_ label of the raw value. */
  values: Record<string, SignalValue>;
  /** Raw values: numbers, or decimal strings for integers beyond 2^53 − 1. */
  raw: Record<string, SignalValue>;
  /** Units of the decoded signals that have one. */
  units: Record<string, string>;
}

/** Raw value of an integer signal as a number (exact) or a bigint (beyond 53 bits); a float signal's IEEE value. */
function readRaw(s: CompiledSignal, data: Uint8Array): number | bigint {
  switch (s.kind) {
    case Kind.Int: {
      const u = readUnsigned(s.layout, data);
      return s.signed && u >= 2 ** (s.length - 1) ? u - 2 ** s.length : u;
    }
    case Kind.BigInt: {
      const u = readUnsignedBig(s.layout, data);
      return s.signed ? BigInt.asIntN(s.length, u) : u;
    }
    case Kind.Float32:
      return float32FromBits(readUnsigned(s.layout, data));
    case Kind.Float64:
      return float64FromBits(readUnsignedBig(s.layout, data));
  }
}

function physical(s: CompiledSignal, raw: number | bigint): number {
  switch (s.conv) {
    case Conv.Identity:
      return Number(raw);
    case Conv.IntExact:
      return (raw as number) * s.scale + s.offset;
    case Conv.IntBig:
      return Number(BigInt(raw) * s.scaleBig + s.offsetBig);
    case Conv.Linear:
      return Number(raw) * s.scale + s.offset;
    case Conv.LinearBigProduct:
      return Number(BigInt(raw) * s.scaleBig) + s.offset;
  }
}

/** Map key of a raw value (choices), and its JSON form in `raw`. */
export function rawKey(raw: number | bigint): number | string {
  if (typeof raw === 'number') return raw;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : raw.toString();
}

export function decodeMessage(m: CompiledMessage, data: Uint8Array): DbcDecoded {
  const values: Record<string, SignalValue> = {};
  const raws: Record<string, SignalValue> = {};
  const len = data.length;
  let decoded = 0;
  let muxRaw: Map<number, number> | undefined;
  const stack: MuxNode[] = [m.root];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    for (const i of node.signals) {
      const s = m.signals[i]!;
      if (s.needBytes > len) continue;
      const raw = readRaw(s, data);
      const key = rawKey(raw);
      raws[s.name] = key;
      const label = s.choices === undefined ? undefined : s.choices.get(key);
      values[s.name] = label !== undefined ? label : physical(s, raw);
      decoded++;
      if (s.isMultiplexer) (muxRaw ??= new Map()).set(i, Math.trunc(Number(raw)));
    }
    for (const t of node.muxes) {
      const v = muxRaw?.get(t.signal);
      if (v === undefined) continue; // the multiplexer is past a truncated frame's data
      const branch = branchOf(t, v);
      if (branch !== undefined) stack.push(branch);
    }
  }
  let units: Record<string, string>;
  if (decoded === m.signals.length) units = m.allUnits;
  else {
    units = {};
    for (const name of Object.keys(raws)) {
      const u = m.signals[m.byName.get(name)!]!.unit;
      if (u !== '') units[name] = u;
    }
  }
  return { message: m.spec.name, values, raw: raws, units };
}

// ---------------------------------------------------------------- encode
