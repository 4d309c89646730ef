/**
 * A DBC message compiled once: each signal's bit layout (bits.ts), the
 * conversion cantools would apply (see codec.ts), its value table both
 * ways, and the multiplexing tree (mux.ts). decode.ts and encode.ts work on this.
 */
import { bitLayout, type BitLayout } from './bits.js';
import { DbcSyntaxError } from './errors.js';
import type { Choices, DbcMessage, DbcSignal, MuxRange } from './model.js';
import { buildMuxTree, MuxTooComplexError, type MuxNode } from './mux.js';

export const enum Kind {
  Int,
  BigInt,
  Float32,
  Float64,
}

export const enum Conv {
  Identity,
  /** Integer scale/offset, results within 2^53: doubles are exact. */
  IntExact,
  IntBig,
  Linear,
  /** Integer-literal scale on an integer raw whose product may pass 2^53 (Python multiplies exactly first). */
  LinearBigProduct,
}

export interface CompiledSignal {
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
  /** Per signal index: the signals that depend on it (a multiplexer's children), for encode's inference. */
  readonly children: readonly (readonly number[])[];
}

const TWO_53 = 2 ** 53;
const INT_TEXT = /^[-+]?\d+$/;

export function compileMessage(file: string, m: DbcMessage): CompiledMessage {
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
  const children: number[][] = signals.map(() => []);
  signals.forEach((s, i) => {
    if (s.multiplexer >= 0 && s.muxRanges !== undefined) children[s.multiplexer]!.push(i);
  });
  return { spec: m, signals, root, byName: index, allUnits, simple, children };
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
