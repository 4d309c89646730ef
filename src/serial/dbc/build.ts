/**
 * Collected statements → DbcDatabase, with cantools' meaning: ids with
 * bit 31 are extended, VECTOR__INDEPENDENT_SIG_MSG is no message, long-name
 * attributes rename, VFrameFormat / GenMsgCycleTime / GenSigStartValue,
 * value tables and float types attached to their signals, multiplexing
 * resolved (resolveMux). Doubtful content becomes a warning; content no
 * decoder can use (a signal past 64 bytes, a float of the wrong length, two
 * signals of one name) a DbcSyntaxError at the signal's line.
 */
import type { AttrValue, Collected, RawMessage } from './collected.js';
import { DbcSyntaxError } from './errors.js';
import { Tok } from './lexer.js';
import type { DbcDatabase, DbcMessage, DbcSignal, MuxRange, ValueType } from './model.js';

/** Payload bytes of the longest CAN FD frame. */
export const MAX_MESSAGE_BYTES = 64;
const MAX_BITS = MAX_MESSAGE_BYTES * 8;
/** VFrameFormat as an INT attribute: these are the names of its values (cantools' table). */
const FRAME_FORMATS = ['StandardCAN', 'ExtendedCAN', 'reserved', 'J1939PG', ...new Array<string>(10).fill('reserved'), 'StandardCAN_FD', 'ExtendedCAN_FD'];
/** Warnings kept per file; the rest are counted. */
const MAX_WARNINGS = 100;

function warn(c: Collected, file: string, line: number, text: string): void {
  c.warningCount++;
  if (c.warnings.length < MAX_WARNINGS) c.warnings.push(`${file}:${line}: ${text}`);
}

export function build(c: Collected, file: string): DbcDatabase {
  const messages: DbcMessage[] = [];
  for (const raw of c.messages) {
    if (raw.name === 'VECTOR__INDEPENDENT_SIG_MSG') {
      c.skipped['BO_ VECTOR__INDEPENDENT_SIG_MSG'] = (c.skipped['BO_ VECTOR__INDEPENDENT_SIG_MSG'] ?? 0) + 1;
      continue;
    }
    const extended = raw.dbcId >= 0x80000000;
    const id = raw.dbcId & 0x7fffffff;
    if (extended && id > 0x1fffffff) {
      warn(c, file, raw.line, `message ${raw.name}: id ${raw.dbcId} is not a 29-bit CAN id (with bit 31 set): skipped`);
      continue;
    }
    if (!extended && id > 0x7ff) warn(c, file, raw.line, `message ${raw.name}: standard id 0x${id.toString(16)} is above 0x7FF (set bit 31 for an extended id): no frame can match it`);
    if (raw.length > MAX_MESSAGE_BYTES) {
      warn(c, file, raw.line, `message ${raw.name}: ${raw.length} bytes, longer than a CAN FD frame (${MAX_MESSAGE_BYTES}): skipped`);
      continue;
    }
    const mAttrs = c.msgAttrs.get(raw.dbcId);
    const signals = buildSignals(c, file, raw);
    messages.push({
      id,
      extended,
      name: attrString(mAttrs?.get('SystemMessageLongSymbol')) ?? raw.name,
      length: raw.length,
      fd: frameFormat(c, mAttrs)?.endsWith('CAN_FD') ?? false,
      cycleTimeMs: cycleTime(c, mAttrs),
      transmitter: raw.transmitter === 'Vector__XXX' ? '' : raw.transmitter,
      signals,
      line: raw.line,
    });
  }
  if (c.warningCount > c.warnings.length) c.warnings.push(`${file}: ${c.warningCount - c.warnings.length} more warnings`);
  return { file, version: c.version, nodes: c.nodes, messages, valueTables: c.valueTables, skipped: c.skipped, warnings: c.warnings };
}

const attrString = (v: AttrValue | undefined): string | undefined => (v?.kind === Tok.String && v.text !== '' ? v.text : undefined);

function attrNumber(v: AttrValue | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.text);
  return v.text !== '' && Number.isFinite(n) ? n : undefined;
}

/** VFrameFormat (ENUM in the file, or INT with the standard value names), as cantools reads it. */
function frameFormat(c: Collected, attrs: Map<string, AttrValue> | undefined): string | undefined {
  const def = c.attrDefs.get('VFrameFormat');
  if (def === undefined) return undefined;
  const names = def.type === 'ENUM' ? def.enumValues : FRAME_FORMATS;
  const v = attrs?.get('VFrameFormat') ?? c.attrDefaults.get('VFrameFormat');
  if (v === undefined) return undefined;
  return v.kind === Tok.String ? v.text : names[Number(v.text)];
}

function cycleTime(c: Collected, attrs: Map<string, AttrValue> | undefined): number | undefined {
  if (!c.attrDefs.has('GenMsgCycleTime')) return undefined;
  const v = attrNumber(attrs?.get('GenMsgCycleTime')) ?? attrNumber(c.attrDefaults.get('GenMsgCycleTime'));
  return v !== undefined && v > 0 ? v : undefined;
}

/** Signals of one message, with their multiplexing resolved as cantools does (see resolveMux). */
function buildSignals(c: Collected, file: string, raw: RawMessage): DbcSignal[] {
  const types = c.sigTypes.get(raw.dbcId);
  const choices = c.choices.get(raw.dbcId);
  const sAttrs = c.sigAttrs.get(raw.dbcId);
  const mux = resolveMux(raw, c.mulVals.get(raw.dbcId));
  const names = new Set<string>();
  const out: DbcSignal[] = [];
  for (const s of raw.signals) {
    const where = `signal ${s.name} of message ${raw.name}`;
    const err = (reason: string): DbcSyntaxError => new DbcSyntaxError(file, s.line, s.col, `${where}: ${reason}`);
    const attrs = sAttrs?.get(s.name);
    const name = attrString(attrs?.get('SystemSignalLongSymbol')) ?? s.name;
    if (names.has(name)) throw err('a second signal of this name in the message');
    names.add(name);
    const t = types?.get(s.name) ?? 0;
    const valueType: ValueType = t === 1 ? 'float32' : t === 2 ? 'float64' : 'integer';
    if (valueType === 'float32' && s.length !== 32) throw err(`SIG_VALTYPE_ 1 (IEEE float) needs 32 bits, the signal has ${s.length}`);
    if (valueType === 'float64' && s.length !== 64) throw err(`SIG_VALTYPE_ 2 (IEEE double) needs 64 bits, the signal has ${s.length}`);
    // The first bit in network order (byte 0 bit 7 = 0): big-endian signals start at their MSB.
    const first = s.bigEndian ? 8 * (s.start >> 3) + 7 - (s.start & 7) : s.start;
    if (first + s.length > MAX_BITS) throw err(`${s.bigEndian ? 'big' : 'little'}-endian start bit ${s.start} length ${s.length} reaches past ${MAX_MESSAGE_BYTES} bytes`);
    if (Math.ceil((first + s.length) / 8) > raw.length) warn(c, file, s.line, `${where} reaches past the message's ${raw.length} bytes: decoded only from longer frames`);
    const scale = Number(s.scaleText);
    const offset = Number(s.offsetText);
    if (!Number.isFinite(scale)) throw err(`factor ${s.scaleText} is not a finite number`);
    if (!Number.isFinite(offset)) throw err(`offset ${s.offsetText} is not a finite number`);
    const noRange = s.minText === '0' && s.maxText === '0';
    const m = mux.get(s.name)!;
    const initial = attrNumber(attrs?.get('GenSigStartValue'));
    out.push({
      name,
      line: s.line,
      col: s.col,
      startBit: s.start,
      length: s.length,
      byteOrder: s.bigEndian ? 'big_endian' : 'little_endian',
      signed: s.signed,
      valueType,
      scale,
      offset,
      scaleText: s.scaleText,
      offsetText: s.offsetText,
      min: noRange ? undefined : Number(s.minText),
      max: noRange ? undefined : Number(s.maxText),
      unit: s.unit,
      receivers: s.receivers.filter((r) => r !== 'Vector__XXX'),
      isMultiplexer: m.isMultiplexer,
      multiplexer: m.multiplexer,
      muxRanges: m.ranges,
      choices: choices?.get(s.name),
      initialRaw: initial,
    });
  }
  // Multiplexer names are short names in the file: follow a long-name rename.
  const renamed = new Map(raw.signals.map((s, i) => [s.name, out[i]!.name]));
  for (const s of out) if (s.multiplexer !== undefined) s.multiplexer = renamed.get(s.multiplexer) ?? s.multiplexer;
  return out;
}

interface MuxInfo {
  isMultiplexer: boolean;
  multiplexer: string | undefined;
  ranges: MuxRange[] | undefined;
}

/**
 * cantools' rules: with exactly one multiplexer (`M` or `mNM`) in the
 * message, every `mN` signal depends on it for value N (plus its
 * SG_MUL_VAL_ ranges). With several (extended multiplexing), a signal
 * depends on the multiplexer SG_MUL_VAL_ names for it, for the ranges given
 * there; an `mN` signal SG_MUL_VAL_ does not mention is always present.
 */
function resolveMux(raw: RawMessage, mulVals: Map<string, Map<string, MuxRange[]>> | undefined): Map<string, MuxInfo> {
  const muxes = raw.signals.filter((s) => s.mux?.endsWith('M'));
  const simple = muxes.length === 1 ? muxes[0]!.name : undefined;
  const signalToMux = new Map<string, string>();
  for (const [muxName, bySig] of mulVals ?? []) for (const sig of bySig.keys()) signalToMux.set(sig, muxName);
  const out = new Map<string, MuxInfo>();
  for (const s of raw.signals) {
    const isMultiplexer = s.mux?.endsWith('M') ?? false;
    let multiplexer: string | undefined;
    const ranges: MuxRange[] = [];
    if (s.mux !== undefined) {
      if (simple !== undefined) {
        if (s.name !== simple) multiplexer = simple;
        if (!isMultiplexer) {
          const n = Number(s.mux.slice(1));
          ranges.push([n, n]);
        }
      } else {
        multiplexer = signalToMux.get(s.name);
      }
    }
    const listed = mulVals?.get(simple ?? multiplexer ?? '')?.get(s.name);
    if (listed !== undefined) ranges.push(...listed);
    out.set(s.name, { isMultiplexer, multiplexer, ranges: ranges.length > 0 ? ranges : undefined });
  }
  return out;
}

