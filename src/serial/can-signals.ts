/**
 * CAN signal decoding from a small DBC-like message map, no I/O.
 *
 * Bit numbering is DBC's: bit b of the payload is bit (b % 8) of byte
 * floor(b / 8), bit 0 being the least significant bit of a byte.
 * - little_endian (Intel, `@1`): start_bit is the signal's LSB; the signal
 *   takes bits start_bit, start_bit+1, ... in increasing order.
 * - big_endian (Motorola, `@0`): start_bit is the signal's MSB; following
 *   bits go down within a byte and continue at bit 7 of the next byte
 *   (the "sawtooth": after bit 8k comes bit 8(k+1)+7).
 * Each signal's bit positions are computed once at compile time, so decode
 * and encode are plain loops over a small array.
 *
 * Values are JS numbers: raw values up to 53 bits are exact; a longer signal
 * (up to 64 bits) decodes to the nearest double.
 */
import type { CompiledDbc } from './dbc/codec.js';
import type { CanFrame } from './slcan-codec.js';

export type ByteOrder = 'little_endian' | 'big_endian';

export interface SignalSpec {
  name: string;
  start_bit: number;
  length: number;
  byte_order: ByteOrder;
  signed?: boolean;
  scale?: number;
  offset?: number;
  unit?: string;
  /** Physical range, checked by encode (decode reports what the ECU sent). */
  min?: number;
  max?: number;
}

export interface MessageSpec {
  id: number;
  extended?: boolean;
  name: string;
  /** Payload length for encode; default: the fewest bytes holding every signal. */
  dlc?: number;
  signals: SignalSpec[];
}

export interface SignalMap {
  messages: MessageSpec[];
}

export interface DecodedMessage<V = number | string> {
  name: string;
  /** Physical values; from a DBC, the VAL_ label of the raw value where it has one. */
  values: Record<string, V>;
  units: Record<string, string>;
  /** DBC messages only: raw values (decimal strings for integers beyond 2^53 − 1). */
  raw?: Record<string, number | string>;
}

export interface CompiledSignalMap {
  /** Named values of a known message, undefined for an unknown id or an RTR frame. Signals past the frame's data are left out. */
  decode(frame: CanFrame): DecodedMessage<number> | undefined;
  /** A data frame carrying the given physical values; omitted signals are sent as raw 0. Throws on unknown names or out-of-range values. */
  encode(messageName: string, values: Record<string, number>): CanFrame;
}

interface CompiledSignal {
  spec: SignalSpec;
  /** Payload bit positions, most significant bit of the raw value first. */
  bits: number[];
  /** Bytes the frame needs to carry this signal. */
  needBytes: number;
  signed: boolean;
  scale: number;
  offset: number;
  /** 10^decimals of scale and offset: raw × 0.01 gives 74.82, not 74.82000000000001. */
  rounding: number;
}

interface CompiledMessage {
  spec: MessageSpec;
  signals: CompiledSignal[];
  dlc: number;
}

/** Bit positions of a signal, MSB first; throws naming the signal if any falls outside 64 bits. */
export function signalBitPositions(sig: Pick<SignalSpec, 'start_bit' | 'length' | 'byte_order'>): number[] {
  const bits: number[] = [];
  if (sig.byte_order === 'little_endian') {
    for (let k = sig.length - 1; k >= 0; k--) bits.push(sig.start_bit + k);
  } else {
    let b = sig.start_bit;
    for (let k = 0; k < sig.length; k++) {
      bits.push(b);
      b = b % 8 === 0 ? b + 15 : b - 1;
    }
  }
  return bits;
}

const keyOf = (id: number, extended: boolean): number => (extended ? id + 0x20000000 : id);

export function compileSignalMap(map: SignalMap): CompiledSignalMap {
  if (!map || !Array.isArray(map.messages)) throw new TypeError('signal map: "messages" must be an array');
  const byKey = new Map<number, CompiledMessage>();
  const byName = new Map<string, CompiledMessage>();
  for (const [mi, msg] of map.messages.entries()) {
    const where = `signal map: message ${mi} "${String(msg?.name)}"`;
    if (typeof msg?.name !== 'string' || msg.name === '') throw new TypeError(`signal map: message ${mi}: name must be a non-empty string`);
    const extended = msg.extended ?? false;
    const maxId = extended ? 0x1fffffff : 0x7ff;
    if (!Number.isInteger(msg.id) || msg.id < 0 || msg.id > maxId) {
      throw new RangeError(`${where}: id ${String(msg.id)} out of range for a ${extended ? 'extended' : 'standard'} frame (0..0x${maxId.toString(16)})`);
    }
    if (byName.has(msg.name)) throw new Error(`${where}: duplicate message name`);
    if (byKey.has(keyOf(msg.id, extended))) throw new Error(`${where}: duplicate id 0x${msg.id.toString(16)} (also "${byKey.get(keyOf(msg.id, extended))!.spec.name}")`);
    if (!Array.isArray(msg.signals)) throw new TypeError(`${where}: signals must be an array`);
    const names = new Set<string>();
    const signals: CompiledSignal[] = [];
    let needBytes = 0;
    for (const sig of msg.signals) {
      const sw = `${where} signal "${String(sig?.name)}"`;
      if (typeof sig?.name !== 'string' || sig.name === '') throw new TypeError(`${where}: a signal has no name`);
      if (names.has(sig.name)) throw new Error(`${sw}: duplicate signal name`);
      names.add(sig.name);
      if (sig.byte_order !== 'little_endian' && sig.byte_order !== 'big_endian') {
        throw new TypeError(`${sw}: byte_order must be little_endian or big_endian, got ${JSON.stringify(sig.byte_order)}`);
      }
      if (!Number.isInteger(sig.start_bit) || sig.start_bit < 0 || sig.start_bit > 63) throw new RangeError(`${sw}: start_bit ${String(sig.start_bit)} out of range 0..63`);
      if (!Number.isInteger(sig.length) || sig.length < 1 || sig.length > 64) throw new RangeError(`${sw}: length ${String(sig.length)} out of range 1..64`);
      const scale = sig.scale ?? 1;
      const offset = sig.offset ?? 0;
      if (!Number.isFinite(scale) || scale === 0) throw new RangeError(`${sw}: scale must be a finite non-zero number`);
      if (!Number.isFinite(offset)) throw new RangeError(`${sw}: offset must be finite`);
      const bits = signalBitPositions(sig);
      // Overlapping signals are legal (multiplexing, aliases); leaving the 64-bit payload is not.
      const outside = bits.find((b) => b < 0 || b > 63);
      if (outside !== undefined) {
        throw new RangeError(`${sw}: ${sig.byte_order} start_bit ${sig.start_bit} length ${sig.length} reaches bit ${outside}, beyond the 64-bit payload`);
      }
      const need = Math.floor(Math.max(...bits) / 8) + 1;
      needBytes = Math.max(needBytes, need);
      signals.push({ spec: sig, bits, needBytes: need, signed: sig.signed ?? false, scale, offset, rounding: 10 ** Math.max(decimals(scale), decimals(offset)) });
    }
    const dlc = msg.dlc ?? needBytes;
    if (!Number.isInteger(dlc) || dlc < needBytes || dlc > 8) throw new RangeError(`${where}: dlc ${String(msg.dlc)} must be ${needBytes}..8 to hold its signals`);
    const compiled: CompiledMessage = { spec: msg, signals, dlc };
    byKey.set(keyOf(msg.id, extended), compiled);
    byName.set(msg.name, compiled);
  }

  return {
    decode(frame) {
      if (frame.rtr) return undefined;
      const msg = byKey.get(keyOf(frame.id, frame.extended));
      if (!msg) return undefined;
      const values: Record<string, number> = {};
      const units: Record<string, string> = {};
      const data = frame.data;
      for (const s of msg.signals) {
        if (s.needBytes > data.length) continue;
        const v = readRaw(s, data) * s.scale + s.offset;
        // Rounded to the decimals the map states; exact integers (and long raw values) pass unchanged.
        values[s.spec.name] = s.rounding === 1 || !Number.isSafeInteger(Math.round(v * s.rounding)) ? v : Math.round(v * s.rounding) / s.rounding;
        if (s.spec.unit !== undefined) units[s.spec.name] = s.spec.unit;
      }
      return { name: msg.spec.name, values, units };
    },

    encode(messageName, values) {
      const msg = byName.get(messageName);
      if (!msg) throw new Error(`signal encode: unknown message "${messageName}"`);
      for (const k of Object.keys(values)) {
        if (!msg.signals.some((s) => s.spec.name === k)) throw new Error(`signal encode: message "${messageName}" has no signal "${k}"`);
      }
      const data = Buffer.alloc(msg.dlc);
      for (const s of msg.signals) {
        const v = values[s.spec.name];
        if (v === undefined) continue;
        const where = `signal encode: ${messageName}.${s.spec.name} = ${String(v)}`;
        if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${where}: not a finite number`);
        if (s.spec.min !== undefined && v < s.spec.min) throw new RangeError(`${where}: below min ${s.spec.min}`);
        if (s.spec.max !== undefined && v > s.spec.max) throw new RangeError(`${where}: above max ${s.spec.max}`);
        const raw = Math.round((v - s.offset) / s.scale);
        const len = s.bits.length;
        // Bounds as exact powers of two (the upper one exclusive) so 64-bit signals are checked correctly too.
        const lo = s.signed ? -(2 ** (len - 1)) : 0;
        const end = s.signed ? 2 ** (len - 1) : 2 ** len;
        if (raw < lo || raw >= end) throw new RangeError(`${where}: raw ${raw} does not fit ${len} ${s.signed ? 'signed' : 'unsigned'} bits`);
        writeRaw(s, data, raw);
      }
      return { id: msg.spec.id, extended: msg.spec.extended ?? false, rtr: false, dlc: msg.dlc, data };
    },
  };
}

/** Past 53 bits a double cannot hold every integer: such signals go through BigInt so the sign and low bits stay exact. */
const EXACT_BITS = 53;

function readRaw(s: CompiledSignal, data: Uint8Array): number {
  const len = s.bits.length;
  if (len > EXACT_BITS) {
    let raw = 0n;
    for (const b of s.bits) raw = (raw << 1n) | BigInt((data[b >> 3]! >> (b & 7)) & 1);
    return Number(s.signed ? BigInt.asIntN(len, raw) : raw);
  }
  let raw = 0;
  for (const b of s.bits) raw = raw * 2 + ((data[b >> 3]! >> (b & 7)) & 1);
  if (s.signed && raw >= 2 ** (len - 1)) raw -= 2 ** len;
  return raw;
}

/** Writes an in-range raw value (negative = two's complement) at the signal's bits, LSB at the last position. */
function writeRaw(s: CompiledSignal, data: Uint8Array, raw: number): void {
  const len = s.bits.length;
  let bitAt: (k: number) => number;
  if (len > EXACT_BITS) {
    const r = BigInt.asUintN(len, BigInt(raw));
    bitAt = (k) => Number((r >> BigInt(len - 1 - k)) & 1n);
  } else {
    let r = raw < 0 ? raw + 2 ** len : raw;
    const bits = new Array<number>(len);
    for (let k = len - 1; k >= 0; k--) {
      bits[k] = r % 2;
      r = (r - bits[k]!) / 2;
    }
    bitAt = (k) => bits[k]!;
  }
  for (let k = 0; k < len; k++) {
    const b = s.bits[k]!;
    if (bitAt(k)) data[b >> 3]! |= 1 << (b & 7);
    else data[b >> 3]! &= ~(1 << (b & 7));
  }
}

/** Decimal places of a number as written (0.125 → 3, 1e-7 → 7), at most 15. */
function decimals(x: number): number {
  if (Number.isInteger(x)) return 0;
  const [mant, exp] = x.toExponential().split('e') as [string, string];
  const frac = mant.split('.')[1]?.length ?? 0;
  return Math.min(15, Math.max(0, frac - Number(exp)));
}

// ---------------------------------------------------------------- a link's map: YAML messages and DBC files together

/** What a link decodes and encodes with: its YAML `messages` and its `dbc` files, merged. */
export interface LinkSignalMap {
  /** undefined for an id no source describes, or an RTR frame. */
  decode(frame: CanFrame): DecodedMessage | undefined;
  /** The message name of an id (event names), if any source describes it. */
  nameOf(id: number, extended: boolean): string | undefined;
  /** A frame from physical values (DBC messages also take VAL_ labels). Throws an Error naming message and signal. */
  encode(message: string, values: Record<string, unknown>): CanFrame;
  /** Signal names of a message, undefined for an unknown message (config checks). */
  signalsOf(message: string): string[] | undefined;
  readonly messageNames: string[];
}

export interface DbcSource {
  /** As the config names it (error messages). */
  file: string;
  dbc: CompiledDbc;
}

const idText = (id: number, extended: boolean): string => `0x${id.toString(16).toUpperCase()} (${extended ? 'extended' : 'standard'})`;

/**
 * Merges the YAML map and the DBC files of a link. The same CAN id, or the
 * same message name, in two places is an error naming both: which one
 * should decode the frame is not for the agent to guess.
 */
export function linkSignalMap(messages: MessageSpec[], dbcs: DbcSource[]): LinkSignalMap {
  const yaml = messages.length > 0 ? compileSignalMap({ messages }) : undefined;
  const where = new Map<number, string>();
  const nameByKey = new Map<number, string>();
  const names = new Map<string, { where: string; dbc?: CompiledDbc; yaml?: MessageSpec }>();
  const dbcByKey = new Map<number, CompiledDbc>();
  const claim = (id: number, extended: boolean, name: string, at: string): void => {
    const key = keyOf(id, extended);
    const prev = where.get(key);
    if (prev !== undefined) throw new Error(`CAN id ${idText(id, extended)} is defined twice: ${prev} and ${at}`);
    where.set(key, at);
    nameByKey.set(key, name);
    const prevName = names.get(name);
    if (prevName !== undefined) throw new Error(`message name ${name} is defined twice: ${prevName.where} and ${at}`);
  };
  messages.forEach((m, i) => {
    const at = `messages[${i}] ${m.name}`;
    claim(m.id, m.extended ?? false, m.name, at);
    names.set(m.name, { where: at, yaml: m });
  });
  for (const { file, dbc } of dbcs) {
    for (const m of dbc.messages) {
      const at = `${file}:${m.spec.line} ${m.spec.name}`;
      claim(m.spec.id, m.spec.extended, m.spec.name, at);
      names.set(m.spec.name, { where: at, dbc });
      dbcByKey.set(keyOf(m.spec.id, m.spec.extended), dbc);
    }
  }
  return {
    messageNames: [...names.keys()],
    decode(frame) {
      if (frame.rtr) return undefined;
      const dbc = dbcByKey.size > 0 ? dbcByKey.get(keyOf(frame.id, frame.extended)) : undefined;
      if (dbc === undefined) return yaml?.decode(frame);
      const d = dbc.decode(frame)!;
      return { name: d.message, values: d.values, units: d.units, raw: d.raw };
    },
    nameOf: (id, extended) => nameByKey.get(keyOf(id, extended)),
    encode(message, values) {
      const src = names.get(message);
      if (src === undefined) throw new Error(`signal encode: unknown message "${message}"`);
      if (src.dbc !== undefined) {
        const e = src.dbc.encode(message, values);
        return { id: e.id, extended: e.extended, rtr: false, dlc: e.data.length, data: e.data };
      }
      const numbers: Record<string, number> = {};
      for (const [k, v] of Object.entries(values)) {
        if (typeof v !== 'number') throw new Error(`${message}.${k}: ${JSON.stringify(v) ?? String(v)} is not a number`);
        numbers[k] = v;
      }
      return yaml!.encode(message, numbers);
    },
    signalsOf(message) {
      const src = names.get(message);
      if (src?.dbc !== undefined) return src.dbc.message(message)!.signals.map((s) => s.name);
      return src?.yaml?.signals.map((s) => s.name);
    },
  };
}
