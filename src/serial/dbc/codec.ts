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
import { compileMessage, type CompiledMessage } from './compiled.js';
import { decodeMessage, type DbcDecoded } from './decode.js';
import { DbcEncodeError, encodeMessage, type DbcEncoded } from './encode.js';
import type { DbcDatabase } from './model.js';

export { DbcEncodeError, type DbcDecoded, type DbcEncoded };
export type { SignalValue } from './decode.js';
export type { CompiledMessage } from './compiled.js';

export interface DbcFrame {
  id: number;
  extended: boolean;
  data: Uint8Array;
  rtr?: boolean;
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

