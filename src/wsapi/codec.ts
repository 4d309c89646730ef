/**
 * wsapi v1 message codec: one reader and one writer per message kind.
 *
 * Payload encoding (all integers little-endian):
 *   str     = u32 (length + 1) | bytes | NUL   (length 0 refused)
 *   nullstr = str, or u32 0 for "no string"
 *   json    = str holding JSON text (kept as text here: parsing is the
 *             caller's business, so replies can be relayed untouched)
 *
 * Writers produce a complete unmasked FIN+BINARY frame (header included) in a
 * single allocation, since every message goes out as exactly one frame.
 * Readers take a reassembled message payload and return a typed message, or
 * a MalformedMessage saying why, never throwing: a peer's bad bytes must not
 * reach the connection's control flow.
 */
import { Buffer } from 'node:buffer';
import { BROADCAST_UUID_LENGTH, Letter, WSAPI_IDENTIFIER } from './constants.js';

export interface VersionOffer { kind: 'V'; identifier: number; versions: number[] }
export interface VersionSet { kind: 'v'; version: number }
export interface Call {
  kind: 'K'; callId: number; verb: string; sessionId: number; tokenId: number;
  args: string; creds: string | null;
}
export interface Reply { kind: 'k'; callId: number; error: string | null; info: string | null; data: string }
export interface Describe { kind: 'D'; descId: number }
/** `layout` tells which descid width was read: 16 (2021+) or 32 (early 2020). */
export interface Description { kind: 'd'; descId: number; description: string; layout: 16 | 32 }
export interface EventCreate { kind: 'E'; eventId: number; name: string }
export interface EventRemove { kind: 'e'; eventId: number }
export interface EventSubscribe { kind: 'X'; callId: number; eventId: number }
export interface EventUnsubscribe { kind: 'x'; callId: number; eventId: number }
export interface EventPush { kind: 'P'; eventId: number; data: string }
export interface EventBroadcast { kind: 'B'; name: string; data: string; uuid: Buffer; hop: number }
export interface EventUnexpected { kind: 'U'; eventId: number }
export interface SessionCreate { kind: 'S'; sessionId: number; uuid: string }
export interface SessionRemove { kind: 's'; sessionId: number }
export interface TokenCreate { kind: 'T'; tokenId: number; token: string }
export interface TokenRemove { kind: 't'; tokenId: number }

export type ClientMessage =
  | VersionOffer | Call | Describe | EventUnexpected
  | SessionCreate | SessionRemove | TokenCreate | TokenRemove;
export type ServerMessage =
  | VersionSet | Reply | Description | EventCreate | EventRemove
  | EventSubscribe | EventUnsubscribe | EventPush | EventBroadcast;
export type Message = ClientMessage | ServerMessage;

export interface MalformedMessage { kind: 'malformed'; letter: number; reason: string }
export type DecodeResult = Message | MalformedMessage;

/* ------------------------------------------------------------------ reader */

class Truncated extends Error {}
const TRUNCATED = new Truncated('truncated');

/*
 * Why the readers and writers below index bytes instead of calling Buffer's
 * readUInt16LE, writeUInt32LE...: V8 (11.3, Node.js 20) compiles a load of a
 * method of Buffer.prototype, in code optimized on its background thread, as
 * a generic property lookup on every call (plain Uint8Array methods are not
 * affected; with --no-concurrent-recompilation neither are these). Those
 * lookups were ~1,200 of the 22,900 instructions of a sequential call
 * against the native binder (valgrind's cachegrind); with them and the short
 * strings below gone, 20,900.
 */

/** Cursor over one message payload; throws TRUNCATED internally only. */
class PayloadReader {
  pos = 1; // after the letter
  constructor(readonly buf: Buffer) {}

  u8(): number {
    if (this.pos + 1 > this.buf.length) throw TRUNCATED;
    return this.buf[this.pos++]!;
  }
  u16(): number {
    const b = this.buf;
    const p = this.pos;
    if (p + 2 > b.length) throw TRUNCATED;
    this.pos = p + 2;
    return b[p]! | (b[p + 1]! << 8);
  }
  u32(): number {
    const b = this.buf;
    const p = this.pos;
    if (p + 4 > b.length) throw TRUNCATED;
    this.pos = p + 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x100_0000;
  }
  /** A string; null only when `nullable` and the length is 0. */
  str(nullable: false): string;
  str(nullable: true): string | null;
  str(nullable: boolean): string | null {
    const len = this.u32();
    if (len === 0) {
      if (nullable) return null;
      throw new Truncated('empty string where one is required');
    }
    const end = this.pos + len;
    if (end > this.buf.length) throw TRUNCATED;
    if (this.buf[end - 1] !== 0) throw new Truncated('string not NUL terminated');
    const s = this.buf.toString('utf8', this.pos, end - 1);
    this.pos = end;
    return s;
  }
  bytes(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw TRUNCATED;
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return b;
  }
}

function readVersionOffer(r: PayloadReader): VersionOffer {
  const identifier = r.u32();
  const count = r.u8();
  const versions: number[] = [];
  for (let i = 0; i < count; i++) versions.push(r.u8());
  return { kind: 'V', identifier, versions };
}
function readVersionSet(r: PayloadReader): VersionSet {
  return { kind: 'v', version: r.u8() };
}
function readCall(r: PayloadReader): Call {
  const callId = r.u16();
  const verb = r.str(false);
  const sessionId = r.u16();
  const tokenId = r.u16();
  const args = r.str(false);
  const creds = r.str(true);
  return { kind: 'K', callId, verb, sessionId, tokenId, args, creds };
}
function readReply(r: PayloadReader): Reply {
  const callId = r.u16();
  const error = r.str(true);
  const info = r.str(true);
  const data = r.str(false);
  return { kind: 'k', callId, error, info, data };
}
function readDescribe(r: PayloadReader): Describe {
  return { kind: 'D', descId: r.u16() };
}
/**
 * `d` had a u32 descid in binders built from the January 2020 seed, a u16
 * afterwards. The layout whose string length lands exactly on the end of the
 * payload with a NUL wins; trailing bytes are tolerated only as a fallback.
 */
function readDescription(r: PayloadReader): Description {
  const buf = r.buf;
  const fits = (idWidth: 2 | 4, exact: boolean): boolean => {
    const lenAt = 1 + idWidth;
    if (lenAt + 4 > buf.length) return false;
    const len = buf.readUInt32LE(lenAt);
    const end = lenAt + 4 + len;
    if (len === 0 || end > buf.length || buf[end - 1] !== 0) return false;
    return exact ? end === buf.length : true;
  };
  const layout: 16 | 32 = fits(2, true) ? 16 : fits(4, true) ? 32 : fits(2, false) ? 16 : fits(4, false) ? 32 : 16;
  const descId = layout === 16 ? r.u16() : r.u32();
  return { kind: 'd', descId, description: r.str(false), layout };
}
function readEventCreate(r: PayloadReader): EventCreate {
  const eventId = r.u16();
  return { kind: 'E', eventId, name: r.str(false) };
}
function readEventRemove(r: PayloadReader): EventRemove {
  return { kind: 'e', eventId: r.u16() };
}
function readEventSubscribe(r: PayloadReader): EventSubscribe {
  const callId = r.u16();
  return { kind: 'X', callId, eventId: r.u16() };
}
function readEventUnsubscribe(r: PayloadReader): EventUnsubscribe {
  const callId = r.u16();
  return { kind: 'x', callId, eventId: r.u16() };
}
function readEventPush(r: PayloadReader): EventPush {
  const eventId = r.u16();
  return { kind: 'P', eventId, data: r.str(false) };
}
function readEventBroadcast(r: PayloadReader): EventBroadcast {
  const name = r.str(false);
  const data = r.str(false);
  const uuid = r.bytes(BROADCAST_UUID_LENGTH);
  return { kind: 'B', name, data, uuid, hop: r.u8() };
}
function readEventUnexpected(r: PayloadReader): EventUnexpected {
  return { kind: 'U', eventId: r.u16() };
}
function readSessionCreate(r: PayloadReader): SessionCreate {
  const sessionId = r.u16();
  return { kind: 'S', sessionId, uuid: r.str(false) };
}
function readSessionRemove(r: PayloadReader): SessionRemove {
  return { kind: 's', sessionId: r.u16() };
}
function readTokenCreate(r: PayloadReader): TokenCreate {
  const tokenId = r.u16();
  return { kind: 'T', tokenId, token: r.str(false) };
}
function readTokenRemove(r: PayloadReader): TokenRemove {
  return { kind: 't', tokenId: r.u16() };
}

const readers: Record<number, (r: PayloadReader) => Message> = {
  [Letter.VERSION_OFFER]: readVersionOffer,
  [Letter.VERSION_SET]: readVersionSet,
  [Letter.CALL]: readCall,
  [Letter.REPLY]: readReply,
  [Letter.DESCRIBE]: readDescribe,
  [Letter.DESCRIPTION]: readDescription,
  [Letter.EVENT_CREATE]: readEventCreate,
  [Letter.EVENT_REMOVE]: readEventRemove,
  [Letter.EVENT_SUBSCRIBE]: readEventSubscribe,
  [Letter.EVENT_UNSUBSCRIBE]: readEventUnsubscribe,
  [Letter.EVENT_PUSH]: readEventPush,
  [Letter.EVENT_BROADCAST]: readEventBroadcast,
  [Letter.EVENT_UNEXPECTED]: readEventUnexpected,
  [Letter.SESSION_CREATE]: readSessionCreate,
  [Letter.SESSION_REMOVE]: readSessionRemove,
  [Letter.TOKEN_CREATE]: readTokenCreate,
  [Letter.TOKEN_REMOVE]: readTokenRemove,
};

/** Decodes one message payload. Trailing bytes are ignored, as the reference does. */
export function decodeMessage(payload: Buffer): DecodeResult {
  if (payload.length === 0) return { kind: 'malformed', letter: -1, reason: 'empty message' };
  const letter = payload[0]!;
  const read = readers[letter];
  if (read === undefined) {
    return { kind: 'malformed', letter, reason: `unknown letter 0x${letter.toString(16).padStart(2, '0')}` };
  }
  try {
    return read(new PayloadReader(payload));
  } catch (err) {
    if (err instanceof Truncated) return { kind: 'malformed', letter, reason: err.message };
    throw err;
  }
}

/** True for letters a client sends (a server must not act on the others). */
export function isClientMessage(m: Message): m is ClientMessage {
  return 'VKDUSsTt'.includes(m.kind);
}

/* ------------------------------------------------------------------ writer */

/**
 * Strings up to this length are measured and copied here when they are
 * ASCII (verbs, error codes, small JSON values): cheaper than a call into
 * Buffer's native code for them (~20 against ~110 ns for `ping`).
 */
const SHORT_STRING = 64;

function isShortAscii(s: string): boolean {
  if (s.length > SHORT_STRING) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Byte length of a str/nullstr/json field holding `s` (null → 4). */
function strSize(s: string | null): number {
  if (s === null) return 4;
  return 5 + (isShortAscii(s) ? s.length : Buffer.byteLength(s, 'utf8'));
}

/**
 * Fills one frame: RFC 6455 header (FIN|BINARY, unmasked, big-endian length)
 * followed by the payload written through the small positional helpers.
 */
class FrameWriter {
  readonly buf: Buffer;
  pos: number;
  constructor(payloadLength: number) {
    const header = payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10;
    this.buf = Buffer.allocUnsafe(header + payloadLength);
    this.buf[0] = 0x82;
    if (header === 2) {
      this.buf[1] = payloadLength;
    } else if (header === 4) {
      this.buf[1] = 126;
      this.buf.writeUInt16BE(payloadLength, 2); // frames this large are rare: the method call is not felt
    } else {
      this.buf[1] = 127;
      this.buf.writeUInt32BE(Math.floor(payloadLength / 0x1_0000_0000), 2);
      this.buf.writeUInt32BE(payloadLength >>> 0, 6);
    }
    this.pos = header;
  }
  u8(v: number): this {
    this.buf[this.pos++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    const b = this.buf;
    const p = this.pos;
    b[p] = v & 0xff;
    b[p + 1] = (v >>> 8) & 0xff;
    this.pos = p + 2;
    return this;
  }
  u32(v: number): this {
    const b = this.buf;
    const p = this.pos;
    b[p] = v & 0xff;
    b[p + 1] = (v >>> 8) & 0xff;
    b[p + 2] = (v >>> 16) & 0xff;
    b[p + 3] = (v >>> 24) & 0xff;
    this.pos = p + 4;
    return this;
  }
  str(s: string | null): this {
    if (s === null) return this.u32(0);
    const b = this.buf;
    const at = this.pos + 4;
    let n: number;
    if (isShortAscii(s)) {
      n = s.length;
      for (let i = 0; i < n; i++) b[at + i] = s.charCodeAt(i);
    } else {
      n = b.write(s, at, 'utf8');
    }
    this.u32(n + 1);
    b[at + n] = 0;
    this.pos = at + n + 1;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  done(): Buffer {
    return this.buf;
  }
}

export function writeVersionOffer(versions: readonly number[], identifier = WSAPI_IDENTIFIER): Buffer {
  const w = new FrameWriter(6 + versions.length).u8(Letter.VERSION_OFFER).u32(identifier).u8(versions.length);
  for (const v of versions) w.u8(v);
  return w.done();
}
export function writeVersionSet(version: number): Buffer {
  return new FrameWriter(2).u8(Letter.VERSION_SET).u8(version).done();
}
export function writeCall(callId: number, verb: string, sessionId: number, tokenId: number,
  args: string, creds: string | null): Buffer {
  const size = 7 + strSize(verb) + strSize(args) + strSize(creds);
  return new FrameWriter(size).u8(Letter.CALL).u16(callId).str(verb).u16(sessionId).u16(tokenId)
    .str(args).str(creds).done();
}
export function writeReply(callId: number, error: string | null, info: string | null, data: string): Buffer {
  const size = 3 + strSize(error) + strSize(info) + strSize(data);
  return new FrameWriter(size).u8(Letter.REPLY).u16(callId).str(error).str(info).str(data).done();
}
export function writeDescribe(descId: number): Buffer {
  return new FrameWriter(3).u8(Letter.DESCRIBE).u16(descId).done();
}
/** Always the u16 layout; `layout: 32` exists to reproduce early-2020 binders in tests. */
export function writeDescription(descId: number, description: string, layout: 16 | 32 = 16): Buffer {
  const w = new FrameWriter(1 + layout / 8 + strSize(description)).u8(Letter.DESCRIPTION);
  (layout === 16 ? w.u16(descId) : w.u32(descId));
  return w.str(description).done();
}
export function writeEventCreate(eventId: number, name: string): Buffer {
  return new FrameWriter(3 + strSize(name)).u8(Letter.EVENT_CREATE).u16(eventId).str(name).done();
}
export function writeEventRemove(eventId: number): Buffer {
  return new FrameWriter(3).u8(Letter.EVENT_REMOVE).u16(eventId).done();
}
export function writeEventSubscribe(callId: number, eventId: number): Buffer {
  return new FrameWriter(5).u8(Letter.EVENT_SUBSCRIBE).u16(callId).u16(eventId).done();
}
export function writeEventUnsubscribe(callId: number, eventId: number): Buffer {
  return new FrameWriter(5).u8(Letter.EVENT_UNSUBSCRIBE).u16(callId).u16(eventId).done();
}
export function writeEventPush(eventId: number, data: string): Buffer {
  return new FrameWriter(3 + strSize(data)).u8(Letter.EVENT_PUSH).u16(eventId).str(data).done();
}
export function writeEventBroadcast(name: string, data: string, uuid: Uint8Array, hop: number): Buffer {
  if (uuid.length !== BROADCAST_UUID_LENGTH) throw new RangeError('broadcast uuid must be 16 bytes');
  const size = 1 + strSize(name) + strSize(data) + BROADCAST_UUID_LENGTH + 1;
  return new FrameWriter(size).u8(Letter.EVENT_BROADCAST).str(name).str(data).bytes(uuid).u8(hop).done();
}
export function writeEventUnexpected(eventId: number): Buffer {
  return new FrameWriter(3).u8(Letter.EVENT_UNEXPECTED).u16(eventId).done();
}
export function writeSessionCreate(sessionId: number, uuid: string): Buffer {
  return new FrameWriter(3 + strSize(uuid)).u8(Letter.SESSION_CREATE).u16(sessionId).str(uuid).done();
}
export function writeSessionRemove(sessionId: number): Buffer {
  return new FrameWriter(3).u8(Letter.SESSION_REMOVE).u16(sessionId).done();
}
export function writeTokenCreate(tokenId: number, token: string): Buffer {
  return new FrameWriter(3 + strSize(token)).u8(Letter.TOKEN_CREATE).u16(tokenId).str(token).done();
}
export function writeTokenRemove(tokenId: number): Buffer {
  return new FrameWriter(3).u8(Letter.TOKEN_REMOVE).u16(tokenId).done();
}

/** Encodes any message as one frame (used by tests, relays and tools). */
export function encodeMessage(m: Message): Buffer {
  switch (m.kind) {
    case 'V': return writeVersionOffer(m.versions, m.identifier);
    case 'v': return writeVersionSet(m.version);
    case 'K': return writeCall(m.callId, m.verb, m.sessionId, m.tokenId, m.args, m.creds);
    case 'k': return writeReply(m.callId, m.error, m.info, m.data);
    case 'D': return writeDescribe(m.descId);
    case 'd': return writeDescription(m.descId, m.description, m.layout);
    case 'E': return writeEventCreate(m.eventId, m.name);
    case 'e': return writeEventRemove(m.eventId);
    case 'X': return writeEventSubscribe(m.callId, m.eventId);
    case 'x': return writeEventUnsubscribe(m.callId, m.eventId);
    case 'P': return writeEventPush(m.eventId, m.data);
    case 'B': return writeEventBroadcast(m.name, m.data, m.uuid, m.hop);
    case 'U': return writeEventUnexpected(m.eventId);
    case 'S': return writeSessionCreate(m.sessionId, m.uuid);
    case 's': return writeSessionRemove(m.sessionId);
    case 'T': return writeTokenCreate(m.tokenId, m.token);
    case 't': return writeTokenRemove(m.tokenId);
  }
}

/* -------------------------------------------------------------- json text */

/**
 * Parses a json field as the reference does: text that is not valid JSON is
 * delivered as a JSON string holding that text.
 */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Serialises a value for a json field (`undefined` → `null`, as json-c writes NULL objects). */
export function toJsonText(value: unknown): string {
  if (value === undefined) return 'null';
  const s = JSON.stringify(value);
  return s === undefined ? 'null' : s;
}
