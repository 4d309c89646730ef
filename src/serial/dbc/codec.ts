/**
 * A DBC compiled into a decoder and an encoder. Bit positions, conversions
 * and the multiplexing tree are worked out once here; decoding a frame is a
 * map lookup and a few chunk reads per signal.
 *
 * Values are computed exactly as cantools does (the reference of the
 * vectors in ../shared/can-vectors):
 * - scale 1 and offset 0: the raw value itself;
 * - integer scale and offset, integer signal: exact integer arithmetic
 *   (BigInt when the result may pass 2^53), then the nearest double;
 * - otherwise `raw × scale + offset` in doubles (an integer scale written as
 *   an integer multiplies an integer raw exactly first, as Python does).
 * A raw value with a VAL_ description decodes to its label in `values`;
 * `raw` always has the number, as a decimal string when it is an integer
 * beyond 2^53 − 1 (JSON numbers cannot carry it exactly).
 *
 * Encoding takes physical values or labels, checks `[min|max]` as cantools
 * does (with its 1e-6 × |scale| tolerance; a value with a VAL_ entry is not
 * range-checked), rounds half to even, refuses raw values that do not fit
 * the bits, sets multiplexers (given, or inferred from the branch of the
 * signals given), and sends a left-out signal as its GenSigStartValue (or 0).
 */
import { bitLayout, float32Bits, float32FromBits, float64Bits, float64FromBits, readUnsigned, readUnsignedBig, writeUnsigned, writeUnsignedBig, type BitLayout } from './bits.js';
import { DbcSyntaxError } from './errors.js';
import type { Choices, DbcDatabase, DbcMessage, DbcSignal, MuxRange } from './model.js';
import { branchOf, buildMuxTree, MuxTooComplexError, type MuxNode } from './mux.js';

export type SignalValue = number | string;

export interface DbcFrame {
  id: number;
  extended: boolean;
  data: Uint8Array;
  rtr?: boolean;
}

export interface DbcDecoded {
  message: string;
  /** Physical values, or the VAL_ label of the raw value. */
  values: Record<string, SignalValue>;
  /** Raw values: numbers, or decimal strings for integers beyond 2^53 − 1. */
  raw: Record<string, SignalValue>;
  /** Units of the decoded signals that have one. */
  units: Record<string, string>;
}

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

const enum Kind {
  Int,
  BigInt,
  Float32,
  Float64,
}

const enum Conv {
  Identity,
  /** Integer scale/offset, results within 2^53: doubles are exact. */
  IntExact,
  IntBig,
  Linear,
  /** Integer-literal scale on an integer raw whose product may pass 2^53 (Python multiplies exactly first). */
  LinearBigProduct,
}

interface CompiledSignal {
  name: string;
  unit: string;
  layout: BitLayout;
  needBytes: number;
  kind: Kind;
  signed: boolean;
  length: number;
  conv: Conv;
  scale: number;
  offset: number;
  scaleBig: bigint;
  offsetBig: bigint;
  choices: Choices | undefined;
  /** label → raw, for encode; a label given to several raw values maps to undefined (ambiguous). */
  labels: Map<string, number | string | undefined> | undefined;
  min: number | undefined;
  max: number | undefined;
  isMultiplexer: boolean;
  multiplexer: number;
  muxRanges: readonly MuxRange[] | undefined;
  initialRaw: number;
}

export interface CompiledMessage {
  readonly spec: DbcMessage;
  readonly signals: readonly CompiledSignal[];
  readonly root: MuxNode;
  readonly byName: ReadonlyMap<string, number>;
  /** Units of every signal, shared by decodes that produced them all. */
  readonly allUnits: Readonly<Record<string, string>>;
  readonly simple: boolean;
}

export interface CompiledDbc {
  readonly file: string;
  readonly messages: readonly CompiledMessage[];
  message(name: string): CompiledMessage | undefined;
  messageById(id: number, extended: boolean): CompiledMessage | undefined;
  /** undefined for an id the DBC does not describe, or an RTR frame. */
  decode(frame: DbcFrame): DbcDecoded | undefined;
  /** Throws DbcEncodeError naming the message and signal. */
  encode(message: string, values: Record<string, unknown>): DbcEncoded;
}

const TWO_53 = 2 ** 53;
const INT_TEXT = /^[-+]?\d+$/;

export const frameKey = (id: number, extended: boolean): number => id * 2 + (extended ? 1 : 0);

export function compileDbc(db: DbcDatabase): CompiledDbc {
  const byKey = new Map<number, CompiledMessage>();
  const byName = new Map<string, CompiledMessage>();
  const messages: CompiledMessage[] = [];
  for (const m of db.messages) {
    const c = compileMessage(db.file, m);
    const key = frameKey(m.id, m.extended);
    const prev = byKey.get(key);
    if (prev !== undefined) {
      db.warnings.push(`${db.file}:${m.line}: message ${m.name} has the id of ${prev.spec.name} (line ${prev.spec.line}): it replaces it`);
      messages.splice(messages.indexOf(prev), 1);
      if (byName.get(prev.spec.name) === prev) byName.delete(prev.spec.name);
    }
    const sameName = byName.get(m.name);
    if (sameName !== undefined) {
      db.warnings.push(`${db.file}:${m.line}: a second message named ${m.name} (line ${sameName.spec.line}): it replaces it`);
      messages.splice(messages.indexOf(sameName), 1);
      byKey.delete(frameKey(sameName.spec.id, sameName.spec.extended));
    }
    byKey.set(key, c);
    byName.set(m.name, c);
    messages.push(c);
  }
  return {
    file: db.file,
    messages,
    message: (name) => byName.get(name),
    messageById: (id, extended) => byKey.get(frameKey(id, extended)),
    decode(frame) {
      if (frame.rtr === true) return undefined;
      const m = byKey.get(frameKey(frame.id, frame.extended));
      return m === undefined ? undefined : decodeMessage(m, frame.data);
    },
    encode(name, values) {
      const m = byName.get(name);
      if (m === undefined) throw new DbcEncodeError(`${db.file}: no message named ${name}`);
      return encodeMessage(m, values);
    },
  };
}

function compileMessage(file: string, m: DbcMessage): CompiledMessage {
  const index = new Map(m.signals.map((s, i) => [s.name, i]));
  const signals = m.signals.map((s) => compileSignal(s, index));
  let root: MuxNode;
  try {
    root = buildMuxTree(m.signals);
  } catch (err) {
    if (err instanceof MuxTooComplexError) throw new DbcSyntaxError(file, m.line, 1, `message ${m.name}: ${err.message}`);
    throw err;
  }
  const allUnits: Record<string, string> = {};
  for (const s of signals) if (s.unit !== '') allUnits[s.name] = s.unit;
  Object.freeze(allUnits);
  const simple = root.muxes.length === 0;
  return { spec: m, signals, root, byName: index, allUnits, simple };
}

function compileSignal(s: DbcSignal, index: Map<string, number>): CompiledSignal {
  const layout = bitLayout(s.startBit, s.length, s.byteOrder === 'big_endian');
  const kind = s.valueType === 'float32' ? Kind.Float32 : s.valueType === 'float64' ? Kind.Float64 : s.length > 53 ? Kind.BigInt : Kind.Int;
  const isFloat = kind === Kind.Float32 || kind === Kind.Float64;
  const bigOf = (x: number, text: string): bigint => (INT_TEXT.test(text) ? BigInt(text) : Number.isInteger(x) ? BigInt(x) : 0n);
  const scaleBig = bigOf(s.scale, s.scaleText);
  const offsetBig = bigOf(s.offset, s.offsetText);
  // Largest |raw × scale + offset| an integer signal can reach.
  const reach = 2 ** s.length * Math.abs(s.scale) + Math.abs(s.offset);
  let conv: Conv;
  if (s.scale === 1 && s.offset === 0) conv = Conv.Identity;
  else if (!isFloat && Number.isInteger(s.scale) && Number.isInteger(s.offset)) conv = reach <= TWO_53 ? Conv.IntExact : Conv.IntBig;
  else if (!isFloat && INT_TEXT.test(s.scaleText) && 2 ** s.length * Math.abs(s.scale) > TWO_53) conv = Conv.LinearBigProduct;
  else conv = Conv.Linear;
  let labels: Map<string, number | string | undefined> | undefined;
  if (s.choices !== undefined) {
    labels = new Map();
    for (const [raw, label] of s.choices) labels.set(label, labels.has(label) ? undefined : raw);
  }
  return {
    name: s.name,
    unit: s.unit,
    layout,
    needBytes: layout.needBytes,
    kind,
    signed: s.signed,
    length: s.length,
    conv,
    scale: s.scale,
    offset: s.offset,
    scaleBig,
    offsetBig,
    choices: s.choices,
    labels,
    min: s.min,
    max: s.max,
    isMultiplexer: s.isMultiplexer,
    multiplexer: s.multiplexer === undefined ? -1 : (index.get(s.multiplexer) ?? -1),
    muxRanges: s.muxRanges,
    initialRaw: s.initialRaw ?? 0,
  };
}

// ---------------------------------------------------------------- decode

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
function rawKey(raw: number | bigint): number | string {
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
  for (let changed = true; changed; ) {
    changed = false;
    m.signals.forEach((mux, mi) => {
      if (!mux.isMultiplexer || chosen.has(mi)) return;
      let lo = -Infinity;
      let hi = Infinity;
      let kids = 0;
      m.signals.forEach((s, si) => {
        if (s.multiplexer !== mi || s.muxRanges === undefined || !(given.has(si) || chosen.has(si))) return;
        kids++;
        // Only a single range per child narrows to one value; several ranges leave the choice to the caller.
        if (s.muxRanges.length !== 1) return;
        lo = Math.max(lo, s.muxRanges[0]![0]);
        hi = Math.min(hi, s.muxRanges[0]![1]);
      });
      if (kids > 0 && lo === hi) {
        chosen.set(mi, lo);
        changed = true;
      }
    });
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
