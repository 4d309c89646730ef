/**
 * Reading the captured wsapi vectors (../shared/wsapi-vectors, read-only,
 * resolved from this file's location, never from an absolute path) and small
 * tools the vector tests share: a websocket frame parser written
 * independently of src/wsapi, a parser for the capture text format, loaders
 * for raw/*.jsonl, a checker of decoded messages against the capture's own
 * decoding comments, and socket helpers that wait for bytes with a timeout.
 *
 * Capture text format (see wsapi-vectors/README.txt):
 *   ######## capture NAME ########     starts a capture (several per file)
 *   # [conn N] ws FIN BINARY len=7 unmasked | V version-offer ...
 *   C> hex / S> hex                    one complete frame, the comment above decodes it
 *   #C> prefix...suffix / #S> ...      frame > 8 KiB, elided; full bytes in raw/NAME.jsonl
 *   # [conn N] connection opened | client closed its write side (EOF) | server closed its write side (EOF)
 *   # [conn N] C> 10 trailing bytes not forming a frame: HEX
 *   # native client stdout/stderr:     followed by '#   ' lines (what the native client printed)
 *   # anything else                    a note
 */
import { existsSync, readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeMessage, encodeMessage } from '../../src/wsapi/codec.js';
import { jsoncSpaced } from './hello3.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The project root (this file is test/helpers/vectors.ts). */
export const PROJECT_ROOT = path.resolve(HERE, '..', '..');
/** `../shared/wsapi-vectors` relative to the project root. */
export const VECTORS_DIR = path.resolve(PROJECT_ROOT, '..', 'shared', 'wsapi-vectors');

export function vectorsPresent(): boolean {
  return existsSync(VECTORS_DIR) && existsSync(path.join(VECTORS_DIR, 'README.txt'));
}

/** Every capture file, relative to VECTORS_DIR: the 2021 ones at the top, then seed-2020/, then redpesk/. */
export function listCaptureFiles(): string[] {
  if (!vectorsPresent()) return [];
  const top = readdirSync(VECTORS_DIR).filter((f) => /^\d\d-.*\.txt$/.test(f)).sort();
  const sub = (d: string): string[] => {
    const dir = path.join(VECTORS_DIR, d);
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.txt')).sort().map((f) => `${d}/${f}`) : [];
  };
  return [...top, ...sub('seed-2020'), ...sub('redpesk')];
}

export type Generation = '2021' | 'seed-2020' | 'redpesk';
export function generationOf(file: string): Generation {
  return file.startsWith('seed-2020/') ? 'seed-2020' : file.startsWith('redpesk/') ? 'redpesk' : '2021';
}

/* ================================================================ ws frames */

export const Op = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;
const OPCODE_BY_NAME: Record<string, number> = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };

export interface WsHeader {
  fin: boolean;
  /** The three RSV bits as a number (RSV1 = 4). */
  rsv: number;
  opcode: number;
  masked: boolean;
  maskKey: Buffer | null;
  /** Payload length announced by the header (may exceed what is buffered). */
  length: number;
  headerLength: number;
}
export interface WsFrame extends WsHeader {
  /** The frame exactly as on the wire. */
  raw: Buffer;
  /** The payload, unmasked. */
  payload: Buffer;
}

/** Parses a frame header at `offset`; null when not all header bytes are there. */
export function parseWsHeader(buf: Buffer, offset = 0): WsHeader | null {
  if (buf.length - offset < 2) return null;
  const b0 = buf[offset]!;
  const b1 = buf[offset + 1]!;
  const masked = (b1 & 0x80) !== 0;
  const len7 = b1 & 0x7f;
  const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  const headerLength = 2 + extra + (masked ? 4 : 0);
  if (buf.length - offset < headerLength) return null;
  let length = len7;
  if (extra === 2) length = buf.readUInt16BE(offset + 2);
  if (extra === 8) length = Number(buf.readBigUInt64BE(offset + 2));
  return {
    fin: (b0 & 0x80) !== 0,
    rsv: (b0 >> 4) & 7,
    opcode: b0 & 0x0f,
    masked,
    maskKey: masked ? Buffer.from(buf.subarray(offset + headerLength - 4, offset + headerLength)) : null,
    length,
    headerLength,
  };
}

/** Parses one complete frame at `offset`; null when incomplete. */
export function parseWsFrame(buf: Buffer, offset = 0): WsFrame | null {
  const h = parseWsHeader(buf, offset);
  if (h === null || buf.length - offset < h.headerLength + h.length) return null;
  const raw = buf.subarray(offset, offset + h.headerLength + h.length);
  const payload = Buffer.from(raw.subarray(h.headerLength));
  if (h.maskKey !== null) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ h.maskKey[i & 3]!;
  return { ...h, raw: Buffer.from(raw), payload };
}

/** Splits a byte stream into complete frames, returning what is left over. */
export function splitFrames(buf: Buffer): { frames: WsFrame[]; rest: Buffer } {
  const frames: WsFrame[] = [];
  let off = 0;
  for (;;) {
    const f = parseWsFrame(buf, off);
    if (f === null) break;
    frames.push(f);
    off += f.raw.length;
  }
  return { frames, rest: buf.subarray(off) };
}

/** Builds a frame (tests only): FIN/opcode/RSV as given, optional mask. */
export function buildFrame(opcode: number, payload: Buffer, opts: { fin?: boolean; rsv?: number; mask?: Buffer } = {}): Buffer {
  const fin = opts.fin ?? true;
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (opts.mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  head[1] = (opts.mask ? 0x80 : 0) | (ext === 0 ? n : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(n, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(n), 2);
  let body = payload;
  if (opts.mask) {
    opts.mask.copy(head, 2 + ext);
    body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++) body[i] = body[i]! ^ opts.mask[i & 3]!;
  }
  return Buffer.concat([head, body]);
}

/* ======================================================= decoding comments */

/** A string as the capture comments show it (JSON-quoted, possibly truncated, or NULL). */
export type StrValue =
  | { type: 'null' }
  | { type: 'str'; value: string }
  /** `"abc...(N chars)`: the first characters of the JSON-quoted form, and the quoted form's full length. */
  | { type: 'truncated'; reprPrefix: string; reprLength: number };
export type FieldValue = StrValue | { type: 'raw'; text: string };

export type Decoded =
  | { what: 'message'; letter: string; name: string; fields: Map<string, FieldValue>; layout?: 16 | 32 }
  | { what: 'malformed'; letter: string; reason: string }
  | { what: 'unknown'; letter: number; rest: string }
  | { what: 'empty' }
  | { what: 'continuation'; hex: string }
  | { what: 'payload'; hex: string }
  | { what: 'close'; code: number | null; reason: string }
  | { what: 'text'; text: string };

export interface HeaderComment {
  fin: boolean;
  opcode: number;
  rsv: number;
  length: number;
  maskKey: string | null;
}

/**
 * The JSON-quoted form the capture tool (Python json.dumps) gives a string:
 * like JSON.stringify, but non-ASCII characters as \uXXXX escapes.
 */
export function pyRepr(s: string): string {
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The text a truncated quoted form starts with (a cut escape sequence at its end is dropped). */
export function decodeReprPrefix(reprPrefix: string): string {
  for (let cut = 0; cut < 6 && cut < reprPrefix.length; cut++) {
    try {
      return JSON.parse(reprPrefix.slice(0, reprPrefix.length - cut) + '"') as string;
    } catch {
      /* try a shorter prefix */
    }
  }
  throw new Error(`cannot decode quoted prefix ${reprPrefix.slice(0, 60)}`);
}

const TRUNC_MARK = /^\.\.\.\((\d+) chars\)/;

/** Reads a JSON-quoted string starting at s[i] === '"'; returns the value and the index after it. */
function readQuoted(s: string, i: number): { value: StrValue; end: number } {
  let j = i + 1;
  while (j < s.length) {
    const c = s[j]!;
    if (c === '\\') {
      j += 2;
      continue;
    }
    const m = c === '.' ? TRUNC_MARK.exec(s.slice(j, j + 40)) : null;
    if (m !== null) {
      return { value: { type: 'truncated', reprPrefix: s.slice(i, j), reprLength: Number(m[1]) }, end: j + m[0].length };
    }
    if (c === '"') return { value: { type: 'str', value: JSON.parse(s.slice(i, j + 1)) as string }, end: j + 1 };
    j++;
  }
  throw new Error(`unterminated string in comment: ${s.slice(i, i + 80)}`);
}

/** Parses `key=value key2="..." ...` as the capture comments write them. */
export function parseFields(s: string): Map<string, FieldValue> {
  const fields = new Map<string, FieldValue>();
  let i = 0;
  while (i < s.length) {
    while (s[i] === ' ') i++;
    if (i >= s.length) break;
    const km = /^([A-Za-z_]+(?:\([^)]*\))?)=/.exec(s.slice(i));
    if (km === null) throw new Error(`cannot parse fields at: ${s.slice(i, i + 60)}`);
    const key = km[1]!;
    i += km[0].length;
    if (s[i] === '"') {
      const { value, end } = readQuoted(s, i);
      fields.set(key, value);
      i = end;
    } else if (s[i] === '[') {
      const end = s.indexOf(']', i);
      fields.set(key, { type: 'raw', text: s.slice(i, end + 1) });
      i = end + 1;
    } else {
      const vm = /^[^\s(]+(?:\([^)]*\))?/.exec(s.slice(i))!;
      fields.set(key, vm[0] === 'NULL' ? { type: 'null' } : { type: 'raw', text: vm[0] });
      i += vm[0].length;
    }
  }
  return fields;
}

/** Parses the part of a `# [conn N] ws ... | <decoded>` comment after the bar. */
export function parseDecoded(text: string): Decoded {
  let m: RegExpExecArray | null;
  if ((m = /^letter '(.)' MALFORMED \((.*)\)$/.exec(text))) return { what: 'malformed', letter: m[1]!, reason: m[2]! };
  if ((m = /^unknown letter '.' \(0x([0-9a-f]{2})\) rest=([0-9a-f]*)$/.exec(text))) {
    return { what: 'unknown', letter: parseInt(m[1]!, 16), rest: m[2]! };
  }
  if (text.startsWith('empty binary message')) return { what: 'empty' };
  if ((m = /^continuation data ([0-9a-f]*)$/.exec(text))) return { what: 'continuation', hex: m[1]! };
  if ((m = /^payload=([0-9a-f]*)$/.exec(text))) return { what: 'payload', hex: m[1]! };
  if ((m = /^close code=(\d+) reason='(.*)'$/.exec(text))) return { what: 'close', code: Number(m[1]), reason: m[2]! };
  if (text === 'close (no code)') return { what: 'close', code: null, reason: '' };
  if ((m = /^text b'(.*)'$/.exec(text))) return { what: 'text', text: m[1]! };
  if ((m = /^(.) ([a-z-]+) (.*)$/.exec(text))) {
    const fields = parseFields(m[3]!);
    let layout: 16 | 32 | undefined;
    if (m[1] === 'd') layout = [...fields.keys()].some((k) => k.includes('u32')) ? 32 : 16;
    return { what: 'message', letter: m[1]!, name: m[2]!, fields, layout };
  }
  throw new Error(`unrecognised decoded comment: ${text}`);
}

export function parseHeaderComment(text: string): HeaderComment {
  const m = /^(FIN|noFIN) (\w+)(?: RSV=(\d+))? len=(\d+) (unmasked|MASKED key=([0-9a-f]{8}))$/.exec(text);
  if (m === null) throw new Error(`unrecognised ws header comment: ${text}`);
  const op = m[2]!;
  const opcode = op.startsWith('op') ? Number(op.slice(2)) : OPCODE_BY_NAME[op];
  if (opcode === undefined) throw new Error(`unknown opcode name ${op}`);
  return { fin: m[1] === 'FIN', opcode, rsv: m[3] ? Number(m[3]) : 0, length: Number(m[4]), maskKey: m[6] ?? null };
}

/* ========================================================= capture files */

export interface FrameLine {
  dir: 'C' | 'S';
  conn: number;
  file: string;
  capture: string;
  /** 1-based line number of the C>/S>/#C>/#S> line. */
  line: number;
  /** The whole frame; for elided frames, rebuilt when the middle is one repeated filler byte, else null. */
  bytes: Buffer | null;
  elided: { prefix: Buffer; suffix: Buffer; totalLength: number; rebuilt: boolean } | null;
  header: HeaderComment;
  decoded: Decoded;
  comment: string;
}

export type CaptureEvent =
  | { type: 'open'; conn: number; line: number }
  | { type: 'frame'; frame: FrameLine }
  | { type: 'eof'; conn: number; side: 'client' | 'server'; line: number; fromNote?: string }
  | { type: 'trailing'; conn: number; dir: 'C' | 'S'; bytes: Buffer; line: number }
  | { type: 'note'; conn: number | null; text: string; line: number };

export interface Capture {
  file: string;
  generation: Generation;
  name: string;
  /** The name of the matching raw/*.jsonl (the capture name without a ' (hello3)' suffix). */
  rawName: string;
  events: CaptureEvent[];
  /** Lines the native client printed (commands and exit codes left out). */
  stdout: string[];
  /** Connections in order of first appearance. */
  conns: number[];
}

export interface CaptureFile {
  file: string;
  header: string[];
  captures: Capture[];
}

/** Notes that say the raw client shut its side without a capture line for it. */
export function noteImpliesClientEof(text: string): boolean {
  return /client just closes its socket|client half-closes/.test(text);
}

const cache = new Map<string, CaptureFile>();

export function loadCaptureFile(file: string): CaptureFile {
  const hit = cache.get(file);
  if (hit) return hit;
  const text = readFileSync(path.join(VECTORS_DIR, file), 'utf8');
  const lines = text.split('\n');
  const out: CaptureFile = { file, header: [], captures: [] };
  let cap: Capture | null = null;
  let pendingComment: { conn: number; header: HeaderComment; decoded: Decoded; text: string } | null = null;
  let inStdout = false;
  let currentConn: number | null = null;

  lines.forEach((rawLine, idx) => {
    const line = rawLine.replace(/\r$/, '');
    const lineNo = idx + 1;
    if (line === '') return;
    const capm = /^######## capture (.+?) ########$/.exec(line);
    if (capm) {
      const name = capm[1]!;
      cap = { file, generation: generationOf(file), name, rawName: name.replace(/ \(.*\)$/, ''), events: [], stdout: [], conns: [] };
      out.captures.push(cap);
      inStdout = false;
      currentConn = null;
      return;
    }
    if (cap === null) {
      out.header.push(line);
      return;
    }
    const c: Capture = cap;
    const useConn = (n: number): void => {
      currentConn = n;
      if (!c.conns.includes(n)) c.conns.push(n);
    };
    if (inStdout) {
      if (line.startsWith('#   ')) {
        const s = line.slice(4);
        if (!s.startsWith('$ ') && !/^(client )?exit=\d+$/.test(s)) c.stdout.push(s);
        return;
      }
      inStdout = false;
    }
    if (line === '# native client stdout/stderr:') {
      inStdout = true;
      return;
    }
    let m: RegExpExecArray | null;
    if ((m = /^([CS])> ([0-9a-f]+)$/.exec(line))) {
      if (pendingComment === null) throw new Error(`${file}:${lineNo}: frame without a decoding comment`);
      const bytes = Buffer.from(m[2]!, 'hex');
      c.events.push({
        type: 'frame',
        frame: {
          dir: m[1] as 'C' | 'S', conn: pendingComment.conn, file, capture: c.name, line: lineNo, bytes, elided: null,
          header: pendingComment.header, decoded: pendingComment.decoded, comment: pendingComment.text,
        },
      });
      pendingComment = null;
      return;
    }
    if ((m = /^#([CS])> ([0-9a-f]+)\.\.\.([0-9a-f]+)$/.exec(line))) {
      if (pendingComment === null) throw new Error(`${file}:${lineNo}: elided frame without a decoding comment`);
      const prefix = Buffer.from(m[2]!, 'hex');
      const suffix = Buffer.from(m[3]!, 'hex');
      const h = parseWsHeader(prefix);
      if (h === null) throw new Error(`${file}:${lineNo}: elided frame prefix too short`);
      const totalLength = h.headerLength + h.length;
      const frame: FrameLine = {
        dir: m[1] as 'C' | 'S', conn: pendingComment.conn, file, capture: c.name, line: lineNo, bytes: null,
        elided: { prefix, suffix, totalLength, rebuilt: false },
        header: pendingComment.header, decoded: pendingComment.decoded, comment: pendingComment.text,
      };
      // The big client frames of the captures are filler payloads ("aaa...", "///...", "zzz..."):
      // when the byte ending the prefix also starts the suffix, the middle is that byte repeated.
      // Whether this guess is right is checked by decoding the result against the comment.
      const fill = prefix[prefix.length - 1]!;
      if (suffix[0] === fill && totalLength >= prefix.length + suffix.length && !h.masked) {
        frame.bytes = Buffer.concat([prefix, Buffer.alloc(totalLength - prefix.length - suffix.length, fill), suffix]);
        frame.elided!.rebuilt = true;
      }
      c.events.push({ type: 'frame', frame });
      pendingComment = null;
      return;
    }
    if ((m = /^# \[conn (\d+)\] (.*)$/.exec(line))) {
      const conn = Number(m[1]);
      const rest = m[2]!;
      let mm: RegExpExecArray | null;
      if ((mm = /^ws (.*?) \| (.*)$/.exec(rest))) {
        useConn(conn);
        pendingComment = { conn, header: parseHeaderComment(mm[1]!), decoded: parseDecoded(mm[2]!), text: line };
      } else if (rest === 'connection opened') {
        useConn(conn);
        c.events.push({ type: 'open', conn, line: lineNo });
      } else if (rest === 'client closed its write side (EOF)') {
        c.events.push({ type: 'eof', conn, side: 'client', line: lineNo });
      } else if (rest === 'server closed its write side (EOF)') {
        c.events.push({ type: 'eof', conn, side: 'server', line: lineNo });
      } else if ((mm = /^([CS])> (\d+) trailing bytes not forming a frame: ([0-9a-f]+)$/.exec(rest))) {
        const bytes = Buffer.from(mm[3]!, 'hex');
        if (bytes.length !== Number(mm[2])) throw new Error(`${file}:${lineNo}: trailing byte count mismatch`);
        c.events.push({ type: 'trailing', conn, dir: mm[1] as 'C' | 'S', bytes, line: lineNo });
      } else {
        throw new Error(`${file}:${lineNo}: unrecognised conn line: ${line}`);
      }
      return;
    }
    if (line.startsWith('#')) {
      const textNote = line.replace(/^#\s?/, '');
      c.events.push({ type: 'note', conn: currentConn, text: textNote, line: lineNo });
      if (currentConn !== null && noteImpliesClientEof(textNote)) {
        c.events.push({ type: 'eof', conn: currentConn, side: 'client', line: lineNo, fromNote: textNote });
      }
      return;
    }
    throw new Error(`${file}:${lineNo}: unrecognised line: ${line.slice(0, 80)}`);
  });

  // The capture tool writes the bytes a client left unframed at the very end of the file;
  // they were sent after that connection's last complete frame: put them there.
  for (const c of out.captures) {
    for (const t of c.events.filter((e): e is Extract<CaptureEvent, { type: 'trailing' }> => e.type === 'trailing')) {
      c.events.splice(c.events.indexOf(t), 1);
      let at = -1;
      c.events.forEach((e, i) => {
        if (e.type === 'frame' && e.frame.conn === t.conn && e.frame.dir === t.dir) at = i;
      });
      c.events.splice(at + 1, 0, t);
    }
  }
  for (const c of out.captures) rebuildElidedPingReplies(c);
  cache.set(file, out);
  return out;
}

/**
 * Reassembles binary messages from frames (BINARY noFIN, CONT..., CONT FIN);
 * control frames and continuations without a start give nothing.
 */
export class Reassembler {
  private parts: Buffer[] | null = null;

  /** The complete message this frame ends, or null. */
  push(f: WsFrame): Buffer | null {
    if (f.opcode === Op.BINARY) {
      if (f.fin) {
        this.parts = null;
        return f.payload;
      }
      this.parts = [f.payload];
    } else if (f.opcode === Op.CONT && this.parts !== null) {
      this.parts.push(f.payload);
      if (f.fin) {
        const whole = Buffer.concat(this.parts);
        this.parts = null;
        return whole;
      }
    }
    return null;
  }
}

/** The complete wsapi messages a direction of a connection carries, fragments reassembled. */
export function messagesOf(c: Capture, conn: number, dir: 'C' | 'S'): Buffer[] {
  const r = new Reassembler();
  const out: Buffer[] = [];
  for (const f of framesOf(c, conn, dir)) {
    const w = f.bytes === null ? null : parseWsFrame(f.bytes);
    const m = w === null ? null : r.push(w);
    if (m !== null) out.push(m);
  }
  return out;
}

/**
 * The big replies of 15-too-large are elided and their raw file is not
 * shipped. They are hello3 ping replies, so they can be rebuilt from the call
 * they answer: info = "Ping Binder Daemon tag=pingSample count=N query=" +
 * the args as json-c prints them. The codec test checks each rebuilt frame
 * against the prefix, suffix and length the capture keeps, which also checks
 * the json-c emulation (600000 '/' become '\/').
 */
function rebuildElidedPingReplies(c: Capture): void {
  for (const e of c.events) {
    if (e.type !== 'frame' || e.frame.bytes !== null || e.frame.dir !== 'S') continue;
    const f = e.frame;
    const d = f.decoded;
    if (d.what !== 'message' || d.letter !== 'k') continue;
    const info = d.fields.get('info');
    const prefix = info?.type === 'truncated' ? decodeReprPrefix(info.reprPrefix) : null;
    const m = prefix === null ? null : /^Ping Binder Daemon tag=pingSample count=(\d+) query=/.exec(prefix);
    if (m === null) continue;
    const callId = Number((d.fields.get('callid') as { text: string }).text);
    for (const payload of messagesOf(c, f.conn, 'C')) {
      const k = decodeMessage(payload);
      if (k.kind !== 'K' || k.callId !== callId) continue;
      const dataField = d.fields.get('data');
      const data = dataField?.type === 'str' ? dataField.value : 'null';
      f.bytes = encodeMessage({
        kind: 'k', callId, error: null, data,
        info: `Ping Binder Daemon tag=pingSample count=${m[1]} query=${jsoncSpaced(k.args)}`,
      });
      f.elided!.rebuilt = true;
      break;
    }
  }
}

export function framesOf(c: Capture, conn?: number, dir?: 'C' | 'S'): FrameLine[] {
  const out: FrameLine[] = [];
  for (const e of c.events) {
    if (e.type !== 'frame') continue;
    if (conn !== undefined && e.frame.conn !== conn) continue;
    if (dir !== undefined && e.frame.dir !== dir) continue;
    out.push(e.frame);
  }
  return out;
}

/** Events of one connection, in capture order. */
export function eventsOf(c: Capture, conn: number): CaptureEvent[] {
  return c.events.filter((e) => (e.type === 'frame' ? e.frame.conn === conn : e.type === 'note' ? e.conn === conn : e.conn === conn));
}

/* ================================================================ raw/*.jsonl */

export interface RawRecord {
  seq: number;
  t: number;
  conn: number;
  dir: 'C>' | 'S>' | 'C-EOF' | 'S-EOF' | 'OPEN' | 'NOTE';
  hex: string;
}

export function rawPath(name: string): string {
  return path.join(VECTORS_DIR, 'raw', `${name}.jsonl`);
}

export function listRawFiles(): string[] {
  const dir = path.join(VECTORS_DIR, 'raw');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jsonl')).map((f) => f.slice(0, -6)).sort() : [];
}

/** The chunks of raw/NAME.jsonl, or null when that capture has no raw file. */
export function loadRaw(name: string): RawRecord[] | null {
  const p = rawPath(name);
  if (!existsSync(p)) return null;
  return readFileSync(p, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as RawRecord);
}

/**
 * One connection of a capture as a script. Frames of the `framed` direction
 * (the one a test receives and checks) come one by one with their capture
 * line; the other direction comes as the chunks its writer wrote: raw/*.jsonl
 * chunks where the capture has a raw file (2021), else one chunk per frame.
 */
export type ScriptItem =
  | { type: 'frame'; frame: FrameLine }
  | { type: 'chunk'; bytes: Buffer; label: string; frame?: FrameLine }
  | { type: 'eof'; side: 'client' | 'server'; label: string };

export function connScript(c: Capture, conn: number, framed: 'C' | 'S'): ScriptItem[] {
  const raw = c.generation === '2021' ? loadRaw(c.rawName) : null;
  const items: ScriptItem[] = [];
  if (raw === null) {
    for (const e of eventsOf(c, conn)) {
      if (e.type === 'frame') {
        items.push(e.frame.dir === framed ? { type: 'frame', frame: e.frame } : { type: 'chunk', bytes: e.frame.bytes!, label: `${c.file}:${e.frame.line}`, frame: e.frame });
      } else if (e.type === 'trailing' && e.dir !== framed) {
        items.push({ type: 'chunk', bytes: e.bytes, label: `${c.file}:${e.line} trailing bytes` });
      } else if (e.type === 'eof') {
        items.push({ type: 'eof', side: e.side, label: `${c.file}:${e.line} ${e.side} EOF` });
      }
    }
    return items;
  }
  const lines = framesOf(c, conn, framed);
  let li = 0;
  let pending = Buffer.alloc(0);
  for (const r of raw.filter((x) => x.conn === conn)) {
    const bytes = Buffer.from(r.hex, 'hex');
    const label = `raw/${c.rawName}.jsonl conn ${conn} ${r.dir}`;
    if (r.dir === `${framed}>`) {
      const { frames, rest } = splitFrames(Buffer.concat([pending, bytes]));
      pending = Buffer.from(rest);
      for (const f of frames) {
        const line = lines[li++];
        if (line === undefined || !line.bytes!.equals(f.raw)) throw new Error(`${label}: frames differ from the text capture`);
        items.push({ type: 'frame', frame: line });
      }
    } else if (r.dir === 'C>' || r.dir === 'S>') {
      items.push({ type: 'chunk', bytes, label: `${label} chunk of ${bytes.length} bytes` });
    } else if (r.dir === 'C-EOF' || r.dir === 'S-EOF') {
      items.push({ type: 'eof', side: r.dir === 'C-EOF' ? 'client' : 'server', label });
    } else if (r.dir === 'NOTE' && noteImpliesClientEof(bytes.toString('utf8'))) {
      items.push({ type: 'eof', side: 'client', label: `${label}: ${bytes.toString('utf8')}` });
    }
  }
  if (li !== lines.length) throw new Error(`raw/${c.rawName}.jsonl conn ${conn}: ${lines.length - li} ${framed}> frames missing`);
  return items;
}

/* ======================================= checking a message against a comment */

/** Structural view of a decoded message (mirrors src/wsapi/codec.ts types; kept loose on purpose). */
export type AnyMessage = { kind: string } & Record<string, unknown>;

function strMatches(actual: string | null, expected: FieldValue): string | null {
  if (expected.type === 'null') return actual === null ? null : `expected NULL, got ${pyRepr(String(actual))}`;
  if (actual === null) return 'expected a string, got NULL';
  if (expected.type === 'str') return actual === expected.value ? null : `expected ${pyRepr(expected.value)}, got ${pyRepr(actual)}`;
  if (expected.type === 'truncated') {
    const r = pyRepr(actual);
    if (!r.startsWith(expected.reprPrefix)) return `expected to start with ${expected.reprPrefix.slice(0, 80)}, got ${r.slice(0, 80)}`;
    if (r.length !== expected.reprLength) return `expected a quoted length of ${expected.reprLength}, got ${r.length}`;
    return null;
  }
  return `expected a quoted string, the comment has ${expected.text}`;
}

function numField(fields: Map<string, FieldValue>, key: string): number {
  const v = fields.get(key);
  if (v === undefined || v.type !== 'raw') throw new Error(`comment has no numeric field ${key}`);
  return Number(v.text);
}

/**
 * Compares a decoded message with the capture comment's decoding. Returns the
 * differences (empty when they agree).
 */
export function checkAgainstComment(m: AnyMessage, d: Decoded, payload: Buffer): string[] {
  const diffs: string[] = [];
  const eq = (what: string, a: unknown, b: unknown): void => {
    if (a !== b) diffs.push(`${what}: comment says ${String(b)}, decoded ${String(a)}`);
  };
  const str = (what: string, a: unknown, f: FieldValue | undefined): void => {
    if (f === undefined) {
      diffs.push(`comment lacks ${what}`);
      return;
    }
    const r = strMatches(a as string | null, f);
    if (r !== null) diffs.push(`${what}: ${r}`);
  };
  switch (d.what) {
    case 'malformed':
      eq('kind', m.kind, 'malformed');
      eq('letter', m.letter, d.letter.charCodeAt(0));
      return diffs;
    case 'unknown':
      eq('kind', m.kind, 'malformed');
      eq('letter', m.letter, d.letter);
      eq('rest', payload.subarray(1).toString('hex'), d.rest);
      return diffs;
    case 'empty':
      eq('kind', m.kind, 'malformed');
      eq('payload length', payload.length, 0);
      return diffs;
    case 'message':
      break;
    default:
      diffs.push(`comment decodes a ${d.what} frame, not a message`);
      return diffs;
  }
  eq('kind', m.kind, d.letter);
  if (m.kind !== d.letter) return diffs;
  const f = d.fields;
  switch (d.letter) {
    case 'V': {
      const id = f.get('id');
      eq('identifier', m.identifier, parseInt(id?.type === 'raw' ? id.text.slice(2, 10) : 'x', 16));
      eq('count', (m.versions as number[]).length, numField(f, 'count'));
      const vs = f.get('versions');
      eq('versions', JSON.stringify(m.versions), vs?.type === 'raw' ? JSON.stringify(JSON.parse(vs.text)) : '?');
      break;
    }
    case 'v':
      eq('version', m.version, numField(f, 'version'));
      break;
    case 'K': {
      eq('callid', m.callId, numField(f, 'callid'));
      str('verb', m.verb, f.get('verb'));
      eq('sessionid', m.sessionId, numField(f, 'sessionid'));
      eq('tokenid', m.tokenId, numField(f, 'tokenid'));
      str('args', m.args, f.get('args'));
      str('creds', m.creds, f.get('creds'));
      const tr = f.get('TRAILING');
      if (tr !== undefined) {
        const hex = tr.type === 'raw' ? tr.text : '';
        eq('trailing bytes', payload.subarray(payload.length - hex.length / 2).toString('hex'), hex);
      }
      break;
    }
    case 'k':
      eq('callid', m.callId, numField(f, 'callid'));
      str('error', m.error, f.get('error'));
      str('info', m.info, f.get('info'));
      str('data', m.data, f.get('data'));
      break;
    case 'D':
      eq('descid', m.descId, numField(f, 'descid'));
      break;
    case 'd': {
      const key = [...f.keys()].find((k) => k.startsWith('descid'))!;
      eq('descid', m.descId, numField(f, key));
      eq('layout', m.layout, d.layout);
      str('json', m.description, f.get('json'));
      break;
    }
    case 'E':
      eq('eventid', m.eventId, numField(f, 'eventid'));
      str('name', m.name, f.get('name'));
      break;
    case 'e':
    case 'U':
      eq('eventid', m.eventId, numField(f, 'eventid'));
      break;
    case 'X':
    case 'x':
      eq('callid', m.callId, numField(f, 'callid'));
      eq('eventid', m.eventId, numField(f, 'eventid'));
      break;
    case 'P':
      eq('eventid', m.eventId, numField(f, 'eventid'));
      str('data', m.data, f.get('data'));
      break;
    case 'B': {
      str('name', m.name, f.get('name'));
      str('data', m.data, f.get('data'));
      const u = f.get('uuid');
      eq('uuid', (m.uuid as Buffer).toString('hex'), u?.type === 'raw' ? u.text : '?');
      eq('hop', m.hop, numField(f, 'hop'));
      break;
    }
    case 'S':
      eq('id', m.sessionId, numField(f, 'id'));
      str('string', m.uuid, f.get('string'));
      break;
    case 'T':
      eq('id', m.tokenId, numField(f, 'id'));
      str('string', m.token, f.get('string'));
      break;
    case 's':
      eq('id', m.sessionId, numField(f, 'id'));
      break;
    case 't':
      eq('id', m.tokenId, numField(f, 'id'));
      break;
    default:
      diffs.push(`no checker for letter ${d.letter}`);
  }
  return diffs;
}

/** Checks a frame's header against its comment. */
export function checkHeaderAgainstComment(h: WsHeader, c: HeaderComment): string[] {
  const diffs: string[] = [];
  if (h.fin !== c.fin) diffs.push(`FIN: comment ${c.fin}, bytes ${h.fin}`);
  if (h.opcode !== c.opcode) diffs.push(`opcode: comment ${c.opcode}, bytes ${h.opcode}`);
  if (h.rsv !== c.rsv) diffs.push(`RSV: comment ${c.rsv}, bytes ${h.rsv}`);
  if (h.length !== c.length) diffs.push(`length: comment ${c.length}, bytes ${h.length}`);
  const key = h.maskKey?.toString('hex') ?? null;
  if (key !== c.maskKey) diffs.push(`mask: comment ${c.maskKey}, bytes ${key}`);
  return diffs;
}

/* ================================================================ id mapping */

/** A consistent one-to-one mapping between captured values and ours. */
export class Bijection<T> {
  private readonly fwd = new Map<T, T>();
  private readonly back = new Map<T, T>();
  constructor(readonly what: string) {}

  /** Records or checks captured ↔ ours; returns a difference, or null. */
  check(captured: T, ours: T): string | null {
    const f = this.fwd.get(captured);
    const b = this.back.get(ours);
    if (f === undefined && b === undefined) {
      this.fwd.set(captured, ours);
      this.back.set(ours, captured);
      return null;
    }
    if (f === ours && b === captured) return null;
    return `${this.what}: captured ${String(captured)} was mapped to ${String(f)}, ours ${String(ours)} to ${String(b)}`;
  }

  get(captured: T): T | undefined {
    return this.fwd.get(captured);
  }
}

/* ============================================================ socket helpers */

export function makeTempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'afb-vectors-'));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function connectUnix(p: string, timeoutMs = 3000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: p });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect ${p}: timeout`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}

/** Polls `pred` until true, or throws after `timeoutMs`. */
export async function waitFor(pred: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!pred()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timeout waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout (${ms} ms) waiting for ${what}`)), ms);
    }),
  ]);
}

/**
 * Collects what a peer sends on a socket and hands it out frame by frame.
 * The peer hanging up (EOF, or ECONNRESET when it closed with unread data
 * queued, which AF_UNIX reports that way) is recorded as `ended`.
 */
export class WireReader {
  private buf = Buffer.alloc(0);
  ended = false;
  endedBy: string | null = null;
  private wake: (() => void) | null = null;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    socket.on('end', () => this.finish('EOF'));
    socket.on('error', (err: NodeJS.ErrnoException) => this.finish(`error ${err.code ?? err.message}`));
    socket.on('close', () => this.finish('close'));
  }

  private finish(how: string): void {
    if (!this.ended) {
      this.ended = true;
      this.endedBy = how;
    }
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async waitChange(deadline: number, what: string): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timeout waiting for ${what} (have ${this.buf.length} unparsed bytes: ${this.buf.subarray(0, 32).toString('hex')})`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Bytes received and not consumed yet. */
  get buffered(): Buffer {
    return this.buf;
  }

  /** The next complete frame; throws on hang-up or timeout. */
  async nextFrame(timeoutMs = 3000, what = 'a frame'): Promise<WsFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = parseWsFrame(this.buf);
      if (f !== null) {
        this.buf = this.buf.subarray(f.raw.length);
        return f;
      }
      if (this.ended) throw new Error(`peer hung up (${this.endedBy}) while waiting for ${what}; unparsed: ${this.buf.toString('hex').slice(0, 64)}`);
      await this.waitChange(deadline, what);
    }
  }

  /** Waits for the peer to hang up, failing if it sends anything more first. */
  async expectEnd(timeoutMs = 3000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length > 0) throw new Error(`expected a hang-up, got more bytes: ${this.buf.toString('hex').slice(0, 64)}`);
      if (this.ended) return this.endedBy!;
      await this.waitChange(deadline, 'the peer to hang up');
    }
  }
}

/** Writes, ignoring the errors of a peer that already hung up (EPIPE/ECONNRESET are expected in some scenarios). */
export function writeQuiet(socket: net.Socket, bytes: Buffer): void {
  if (socket.destroyed || !socket.writable) return;
  socket.write(bytes, () => { /* errors are reported on 'error', which WireReader records */ });
}
