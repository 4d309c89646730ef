/**
 * Values → frame, on a compiled message, as cantools' encode_message with
 * strict checks: labels or physical numbers, [min|max] with cantools'
 * tolerance, round half to even, raw values that must fit their bits;
 * multiplexers given or inferred from the signals given; left-out signals
 * sent as their GenSigStartValue (or 0).
 */
import { float32Bits, float64Bits, writeUnsigned, writeUnsignedBig } from './bits.js';
import { Conv, Kind, type CompiledMessage, type CompiledSignal } from './compiled.js';
import { rawKey } from './decode.js';
import { branchOf, type MuxNode } from './mux.js';

export interface DbcEncoded {
  id: number;
  extended: boolean;
  /** The DBC says CAN FD (VFrameFormat), or the payload is longer than 8 bytes. */
  fd: boolean;
  data: Buffer;
}

export class DbcEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DbcEncodeError';
  }
}

/** Python's round(): to the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

const toInt = (x: number): number | bigint => (Number.isSafeInteger(x) ? x : BigInt(x));

/** Physical number → raw, as cantools' conversions do it. */
function numberToRaw(s: CompiledSignal, value: number): number | bigint {
  const isFloat = s.kind === Kind.Float32 || s.kind === Kind.Float64;
  switch (s.conv) {
    case Conv.Identity:
      return isFloat ? value : toInt(roundHalfEven(value));
    case Conv.IntExact:
    case Conv.IntBig: {
      if (Number.isInteger(value)) {
        const d = BigInt(value) - s.offsetBig;
        if (s.scaleBig !== 0n && d % s.scaleBig === 0n) {
          const q = d / s.scaleBig;
          return q >= -9007199254740991n && q <= 9007199254740991n ? Number(q) : q;
        }
        return toInt(roundHalfEven(Number(d) / s.scale));
      }
      return toInt(roundHalfEven((value - s.offset) / s.scale));
    }
    case Conv.Linear:
    case Conv.LinearBigProduct: {
      const r = (value - s.offset) / s.scale;
      return isFloat ? r : toInt(roundHalfEven(r));
    }
  }
}

function labelToRaw(s: CompiledSignal, label: string, where: string): number | bigint {
  if (s.labels === undefined) throw new DbcEncodeError(`${where}: "${label}" is not a number and the signal has no value descriptions (VAL_)`);
  if (!s.labels.has(label)) throw new DbcEncodeError(`${where}: "${label}" is not one of its labels (${[...s.labels.keys()].slice(0, 10).map((l) => JSON.stringify(l)).join(', ')}${s.labels.size > 10 ? ', …' : ''})`);
  const raw = s.labels.get(label);
  if (raw === undefined) throw new DbcEncodeError(`${where}: the label "${label}" stands for several raw values: give the number`);
  return typeof raw === 'number' ? raw : BigInt(raw);
}

/** A given value → the raw value to send, after the range and fit checks. */
function rawOf(m: CompiledMessage, s: CompiledSignal, value: unknown): number | bigint {
  const where = `${m.spec.name}.${s.name}`;
  let raw: number | bigint;
  if (typeof value === 'string') raw = labelToRaw(s, value, where);
  else if (typeof value === 'number' && Number.isFinite(value)) {
    if (s.conv !== Conv.Identity && s.scale === 0) throw new DbcEncodeError(`${where}: the factor is 0, no value can be encoded`);
    raw = numberToRaw(s, value);
    if (!(s.choices !== undefined && s.choices.has(rawKey(raw)))) {
      const tol = Math.abs(s.scale) * 1e-6;
      if (s.min !== undefined && value < s.min - tol) throw new DbcEncodeError(`${where} = ${value}: below the minimum ${s.min} of the DBC`);
      if (s.max !== undefined && value > s.max + tol) throw new DbcEncodeError(`${where} = ${value}: above the maximum ${s.max} of the DBC`);
    }
  } else {
    throw new DbcEncodeError(`${where}: ${JSON.stringify(value) ?? String(value)} is neither a finite number nor a label`);
  }
  checkFits(s, raw, where);
  return raw;
}

function checkFits(s: CompiledSignal, raw: number | bigint, where: string): void {
  if (s.kind === Kind.Float32) {
    if (!Number.isFinite(Math.fround(raw as number))) throw new DbcEncodeError(`${where}: ${String(raw)} is beyond the range of a 32-bit float`);
    return;
  }
  if (s.kind === Kind.Float64) return;
  const r = BigInt(raw);
  const lo = s.signed ? -(1n << BigInt(s.length - 1)) : 0n;
  const end = s.signed ? 1n << BigInt(s.length - 1) : 1n << BigInt(s.length);
  if (r < lo || r >= end) throw new DbcEncodeError(`${where}: raw value ${r} does not fit ${s.length} ${s.signed ? 'signed' : 'unsigned'} bits (${lo}..${end - 1n})`);
}

function writeRaw(s: CompiledSignal, data: Uint8Array, raw: number | bigint): void {
  switch (s.kind) {
    case Kind.Int: {
      const r = Number(raw);
      writeUnsigned(s.layout, data, r < 0 ? r + 2 ** s.length : r);
      return;
    }
    case Kind.BigInt:
      writeUnsignedBig(s.layout, data, BigInt.asUintN(s.length, BigInt(raw)));
      return;
    case Kind.Float32:
      writeUnsigned(s.layout, data, float32Bits(raw as number));
      return;
    case Kind.Float64:
      writeUnsignedBig(s.layout, data, float64Bits(raw as number));
  }
}

/** The multiplexer values the given signals imply (a multiplexer not given takes the one value its given children share). */
function inferMuxes(m: CompiledMessage, given: Map<number, number | bigint>): Map<number, number> {
  const chosen = new Map<number, number>();
  for (const [i, raw] of given) if (m.signals[i]!.isMultiplexer) chosen.set(i, Number(raw));
  // A worklist from the signals given up to their multiplexers (a cascade is settled level by level, each level once per child).
  const todo: number[] = [];
  for (const i of given.keys()) if (m.signals[i]!.multiplexer >= 0) todo.push(m.signals[i]!.multiplexer);
  for (let mi = todo.pop(); mi !== undefined; mi = todo.pop()) {
    if (chosen.has(mi) || !m.signals[mi]!.isMultiplexer) continue;
    let lo = -Infinity;
    let hi = Infinity;
    let kids = 0;
    for (const si of m.children[mi]!) {
      if (!(given.has(si) || chosen.has(si))) continue;
      kids++;
      // Only a single range per child narrows to one value; several ranges leave the choice to the caller.
      const ranges = m.signals[si]!.muxRanges!;
      if (ranges.length !== 1) continue;
      lo = Math.max(lo, ranges[0]![0]);
      hi = Math.min(hi, ranges[0]![1]);
    }
    if (kids > 0 && lo === hi) {
      chosen.set(mi, lo);
      const parent = m.signals[mi]!.multiplexer;
      if (parent >= 0) todo.push(parent);
    }
  }
  return chosen;
}

export function encodeMessage(m: CompiledMessage, values: Record<string, unknown>): DbcEncoded {
  const given = new Map<number, number | bigint>();
  for (const [name, v] of Object.entries(values)) {
    const i = m.byName.get(name);
    if (i === undefined) throw new DbcEncodeError(`${m.spec.name} has no signal ${name}`);
    given.set(i, rawOf(m, m.signals[i]!, v));
  }
  const chosen = inferMuxes(m, given);
  const data = Buffer.alloc(m.spec.length);
  const used = new Set<number>();
  const stack: MuxNode[] = [m.root];
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    for (const i of node.signals) {
      const s = m.signals[i]!;
      used.add(i);
      const raw = given.get(i) ?? chosen.get(i) ?? s.initialRaw;
      if (!given.has(i)) checkFits(s, raw, `${m.spec.name}.${s.name} (${chosen.has(i) ? 'multiplexer value from its signals' : 'start value'})`);
      if (s.needBytes > data.length) throw new DbcEncodeError(`${m.spec.name}.${s.name} lies past the message's ${data.length} bytes`);
      writeRaw(s, data, raw);
    }
    for (const t of node.muxes) {
      const s = m.signals[t.signal]!;
      const v = Number(given.get(t.signal) ?? chosen.get(t.signal) ?? s.initialRaw);
      const branch = branchOf(t, v);
      if (branch !== undefined) stack.push(branch);
      else if (!(s.choices?.has(v) ?? false)) {
        const ranges = t.lo.map((lo, k) => (lo === t.hi[k] ? `${lo}` : `${lo}-${t.hi[k]}`)).join(', ');
        throw new DbcEncodeError(`${m.spec.name}.${s.name} = ${v}: no branch of the multiplexer has this value (${ranges === '' ? 'none is defined' : `expected ${ranges}`})`);
      }
    }
  }
  for (const i of given.keys()) {
    if (used.has(i)) continue;
    const s = m.signals[i]!;
    const mux = m.signals[s.multiplexer];
    throw new DbcEncodeError(`${m.spec.name}.${s.name} is not sent with ${mux === undefined ? 'these multiplexer values' : `${mux.name} = ${String(given.get(s.multiplexer) ?? chosen.get(s.multiplexer) ?? mux.initialRaw)}`} (give ${mux?.name ?? 'the multiplexer'} the value of its branch)`);
  }
  return { id: m.spec.id, extended: m.spec.extended, fd: m.spec.fd || data.length > 8, data };
}
