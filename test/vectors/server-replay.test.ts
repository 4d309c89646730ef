/**
 * Server replay: every capture of a native SERVER is replayed against our
 * WsapiServer running the hello3 emulation (test/helpers/hello3.ts) on a real
 * unix socket. A raw net.Socket sends the captured client bytes of each
 * connection in order (with the raw/*.jsonl chunking when it exists), waits
 * for the server frames the capture shows between them, and compares what our
 * server sends with them.
 *
 * Freedom the protocol leaves (accepted, and only these): event ids (mapped
 * captured ↔ ours, consistently), the count=N of hello3's info strings, the
 * pid / uid / anonymous-session uuid inside info data (ours are this test
 * process's and our random uuids), broadcast uuids, and the formatting of JSON
 * fields (compared parsed: json-c writes '\/' and keeps its own spacing). When
 * a frame needed none of these, its bytes must be identical to the capture's.
 * Likewise a U sent by the captured client names the event by the native
 * server's id: we send the id our server gave that event.
 *
 * Our server behaves like the 2021 AGL binder. For seed-2020 and redpesk
 * captures, the table below says per capture what is compared differently and
 * why (what wsapi-v1.md says a peer must tolerate), and rewrites the few
 * redpesk-specific frames into the 2021 behaviour, each with its reason.
 */
import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, type Call, type DecodeResult, type Message } from '../../src/wsapi/codec.js';
import { DEFAULT_MAX_FRAME_PAYLOAD } from '../../src/wsapi/constants.js';
import { parseCreds } from '../../src/wsapi/request.js';
import { WsapiServer } from '../../src/wsapi/server.js';
import { Hello3, jsoncSpaced } from '../helpers/hello3.js';
import {
  Bijection, Op, Reassembler, WireReader, connScript, connectUnix, listCaptureFiles, loadCaptureFile, makeTempDir,
  parseWsFrame, parseWsHeader, removeDir, splitFrames, waitFor, writeQuiet, type Capture, type FrameLine, type WsFrame,
} from '../helpers/vectors.js';

/* ================================================================= steps */

interface ReplayCtx {
  cfg: Config;
  events: Bijection<number>;
  uuids: Bijection<string>;
  /** Calls sent on the current connection, by call id. */
  calls: Map<number, Call>;
  /** Session uuids declared with S on any connection of the capture. */
  declared: Set<string>;
}

/** A custom check of one frame of ours; returns the differences. */
type Matcher = (m: DecodeResult, raw: WsFrame, ctx: ReplayCtx) => string[];

type Step =
  | { kind: 'send'; bytes: Buffer; label: string }
  | { kind: 'expect'; label: string; frame?: FrameLine; bytes?: Buffer; letter?: string; match?: Matcher }
  | { kind: 'clientEof'; label: string }
  | { kind: 'serverEof'; label: string };
type ExpectStep = Extract<Step, { kind: 'expect' }>;

function label(f: FrameLine): string {
  return `${f.file}:${f.line} ${f.comment.replace(/^# \[conn \d+\] ws /, '').slice(0, 120)}`;
}

/**
 * The steps of one connection: the client's chunks are sent, the server's
 * frames expected. A client frame whose header announces more than the server
 * accepts is sent as its header only: the server must refuse it (close 1009)
 * before any payload byte (the capture's client then failed with EPIPE
 * sending the rest).
 */
function stepsOf(cap: Capture, conn: number): Step[] {
  return connScript(cap, conn, 'S').map((it): Step => {
    if (it.type === 'frame') return { kind: 'expect', frame: it.frame, label: label(it.frame) };
    if (it.type === 'eof') return { kind: it.side === 'client' ? 'clientEof' : 'serverEof', label: it.label };
    const h = it.frame ? parseWsHeader(it.bytes) : null;
    if (h !== null && h.length > DEFAULT_MAX_FRAME_PAYLOAD) {
      return { kind: 'send', bytes: it.bytes.subarray(0, h.headerLength), label: `${label(it.frame!)} (header only)` };
    }
    return { kind: 'send', bytes: it.bytes, label: it.frame ? label(it.frame) : it.label };
  });
}

/* ======================================================= frame comparison */

const countFree = (s: string): string => s.replace(/count=\d+/g, 'count=#');

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function jsonEqual(a: string, b: string): boolean {
  try {
    return isDeepStrictEqual(JSON.parse(a), JSON.parse(b));
  } catch {
    return false;
  }
}

/** The data of hello3's info verb: credentials, session uuid, LOA. */
function compareInfoData(expText: string, actText: string, call: Call | undefined, ctx: ReplayCtx, free: string[]): string[] {
  const exp = JSON.parse(expText) as Record<string, unknown>;
  const act = JSON.parse(actText) as Record<string, unknown>;
  const want = { ...exp };
  const forwarded = call?.creds != null ? parseCreds(call.creds) : null;
  if (forwarded === null) {
    // No valid on-behalf credentials: the server reports its socket peer, this test process.
    const uid = process.getuid!();
    Object.assign(want, { uid, gid: process.getgid!(), pid: process.pid, user: String(uid) });
    free.push('peer credentials');
  }
  const eu = exp.uuid as string;
  const au = act.uuid as string;
  if (!ctx.declared.has(eu)) {
    const d = ctx.uuids.check(eu, au);
    if (d !== null) return [d];
    want.uuid = au;
    if (eu !== au) free.push('anonymous session uuid');
  }
  return isDeepStrictEqual(want, act) ? [] : [`info data: expected ${JSON.stringify(want)}, got ${actText}`];
}

function compareMessages(em: Message, am: Message, ctx: ReplayCtx, free: string[]): string[] {
  const diffs: string[] = [];
  const ev = (e: number, a: number): void => {
    const d = ctx.events.check(e, a);
    if (d !== null) diffs.push(d);
    else if (e !== a) free.push('event id');
  };
  const json = (what: string, e: string, a: string): void => {
    if (e === a) return;
    if (jsonEqual(e, a)) free.push(`${what} JSON formatting`);
    else diffs.push(`${what}: expected ${e.slice(0, 200)}, got ${a.slice(0, 200)}`);
  };
  if (em.kind !== am.kind) return [`expected ${em.kind}, got ${am.kind}`];
  switch (em.kind) {
    case 'k': {
      const a = am as typeof em;
      if (a.callId !== em.callId) diffs.push(`callid: expected ${em.callId}, got ${a.callId}`);
      if (ctx.cfg.relaxReplies) {
        // hello4 is another binding (its replies are JSON arrays): only the call id and success/failure are compared.
        if ((a.error === null) !== (em.error === null)) diffs.push(`error: expected ${em.error}, got ${a.error}`);
        free.push('hello4 reply');
        break;
      }
      if (em.error !== a.error) {
        if (ctx.cfg.errorsByPresence && em.error !== null && a.error !== null) free.push(`error text ${em.error} → ${a.error}`);
        else diffs.push(`error: expected ${em.error}, got ${a.error}`);
      }
      if (em.info !== a.info) {
        if (ctx.cfg.errorsByPresence && em.error !== null && a.error !== null) free.push('error info');
        else if (em.info !== null && a.info !== null && countFree(em.info) === countFree(a.info)) free.push('count=N');
        else diffs.push(`info: expected ${em.info?.slice(0, 200)}, got ${a.info?.slice(0, 200)}`);
      }
      const call = ctx.calls.get(em.callId);
      if (call?.verb === 'info' && em.error === null && a.error === null) diffs.push(...compareInfoData(em.data, a.data, call, ctx, free));
      else json('data', em.data, a.data);
      break;
    }
    case 'd': {
      const a = am as typeof em;
      if (a.descId !== em.descId) diffs.push(`descid: expected ${em.descId}, got ${a.descId}`);
      // A server writes the u16 form (wsapi-v1.md Quirks); the seed's u32 descid is a bug of early 2020 binders.
      if (a.layout !== 16) diffs.push(`our d must use the u16 layout, got ${a.layout}`);
      if (em.layout !== 16) free.push('d layout u32 → u16');
      if (ctx.cfg.describeAnyJson) {
        // redpesk binders always describe `null`; a client must accept any JSON description.
        if (!isJson(a.description)) diffs.push('description is not JSON');
        if (a.description !== em.description) free.push('description');
      } else {
        json('description', em.description, a.description);
      }
      break;
    }
    case 'E': {
      const a = am as typeof em;
      ev(em.eventId, a.eventId);
      if (a.name !== em.name) diffs.push(`event name: expected ${em.name}, got ${a.name}`);
      break;
    }
    case 'e':
      ev(em.eventId, (am as typeof em).eventId);
      break;
    case 'X':
    case 'x': {
      const a = am as typeof em;
      if (a.callId !== em.callId) diffs.push(`callid: expected ${em.callId}, got ${a.callId}`);
      ev(em.eventId, a.eventId);
      break;
    }
    case 'P': {
      const a = am as typeof em;
      ev(em.eventId, a.eventId);
      json('push data', em.data, a.data);
      break;
    }
    case 'B': {
      const a = am as typeof em;
      if (a.name !== em.name) diffs.push(`broadcast name: expected ${em.name}, got ${a.name}`);
      json('broadcast data', em.data, a.data);
      if (a.hop !== em.hop) diffs.push(`hop: expected ${em.hop}, got ${a.hop}`);
      if (a.uuid.length !== 16) diffs.push('broadcast uuid is not 16 bytes');
      free.push('broadcast uuid');
      break;
    }
    default:
      if (!isDeepStrictEqual(em, am)) diffs.push(`expected ${JSON.stringify(em)}, got ${JSON.stringify(am)}`);
  }
  return diffs;
}

function compareFrame(step: ExpectStep, act: WsFrame, ctx: ReplayCtx): string[] {
  const am = decodeMessage(act.payload);
  if (step.match !== undefined) return step.match(am, act, ctx);
  const expBytes = step.bytes ?? step.frame!.bytes!;
  const ew = parseWsFrame(expBytes)!;
  if (ew.opcode !== Op.BINARY) {
    // Control frames (pong, close) must be byte-identical.
    return act.raw.equals(expBytes) ? [] : [`expected ${expBytes.toString('hex')}, got ${act.raw.toString('hex').slice(0, 64)}`];
  }
  if (!act.fin || act.opcode !== Op.BINARY || act.masked || act.rsv !== 0) return [`not an unmasked FIN BINARY frame: ${act.raw.subarray(0, 2).toString('hex')}`];
  const em = decodeMessage(ew.payload);
  if (em.kind === 'malformed' || am.kind === 'malformed') return [`malformed frame: expected ${em.kind}, got ${am.kind}`];
  const free: string[] = [];
  const diffs = compareMessages(em, am, ctx, free);
  if (diffs.length === 0 && free.length === 0 && !act.raw.equals(expBytes)) {
    diffs.push(`decoded alike but bytes differ:\n  captured ${expBytes.toString('hex').slice(0, 200)}\n  ours     ${act.raw.toString('hex').slice(0, 200)}`);
  }
  return diffs;
}

const RANK: Record<string, number> = { E: 0, X: 1, x: 2, e: 3, P: 4, B: 5, k: 6 };

function expectedLetter(s: ExpectStep): string {
  if (s.letter !== undefined) return s.letter;
  const b = s.bytes ?? s.frame!.bytes!;
  const w = parseWsFrame(b)!;
  return w.opcode === Op.BINARY ? String.fromCharCode(w.payload[0] ?? 0) : `op${w.opcode}`;
}

/* ========================================================== the replay */

/** Follows what the test sends: the calls (by id) and the declared session uuids. */
class SentTracker {
  private buf = Buffer.alloc(0);
  private readonly messages = new Reassembler();
  constructor(private readonly ctx: ReplayCtx) {}

  /** Returns true when the bytes sent so far end in the middle of a frame. */
  push(bytes: Buffer): boolean {
    const { frames, rest } = splitFrames(Buffer.concat([this.buf, bytes]));
    this.buf = Buffer.from(rest);
    for (const f of frames) {
      const payload = this.messages.push(f);
      if (payload === null) continue;
      const m = decodeMessage(payload);
      if (m.kind === 'K') this.ctx.calls.set(m.callId, m);
      if (m.kind === 'S') this.ctx.declared.add(m.uuid);
    }
    return this.buf.length > 0;
  }
}

/**
 * U names an event by the id the server gave it: the captured client used the
 * native server's id, we send the id our server gave the same event.
 */
function mapSentEventIds(bytes: Buffer, ctx: ReplayCtx): Buffer {
  const { frames, rest } = splitFrames(bytes);
  if (rest.length > 0 || frames.length === 0) return bytes;
  let changed = false;
  const out = frames.map((f) => {
    if (f.opcode !== Op.BINARY || !f.fin) return f.raw;
    const m = decodeMessage(f.payload);
    const ours = m.kind === 'U' ? ctx.events.get(m.eventId) : undefined;
    if (m.kind !== 'U' || ours === undefined || ours === m.eventId) return f.raw;
    changed = true;
    return encodeMessage({ ...m, eventId: ours });
  });
  return changed ? Buffer.concat(out) : bytes;
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function replayConn(sockPath: string, steps: Step[], ctx: ReplayCtx): Promise<string[]> {
  const diffs: string[] = [];
  const sock = await connectUnix(sockPath);
  const reader = new WireReader(sock);
  const tracker = new SentTracker(ctx);
  ctx.calls = new Map();
  let clientEnded = false;
  try {
    let i = 0;
    while (i < steps.length) {
      const st = steps[i]!;
      if (st.kind === 'send') {
        const bytes = mapSentEventIds(st.bytes, ctx);
        const midFrame = tracker.push(bytes);
        writeQuiet(sock, bytes);
        // Let the server read a partial frame on its own (split headers of 14), as the capture's client did.
        if (midFrame) await delay(5);
        i++;
      } else if (st.kind === 'clientEof') {
        sock.end();
        clientEnded = true;
        i++;
      } else if (st.kind === 'serverEof') {
        await reader.expectEnd(3000).catch((err: Error) => diffs.push(`${st.label}: ${err.message}`));
        i++;
      } else {
        let j = i;
        while (j < steps.length && steps[j]!.kind === 'expect') j++;
        const group = steps.slice(i, j) as ExpectStep[];
        const actual: WsFrame[] = [];
        for (const g of group) actual.push(await reader.nextFrame(3000, g.label));
        let exp = group;
        let act = actual;
        const letters = group.map(expectedLetter);
        if (ctx.cfg.unordered && letters.includes('k') && (letters.includes('P') || letters.includes('B'))) {
          // "never assume k comes before or after the events a call causes" (wsapi-v1.md): compare this group sorted.
          const rank = (l: string) => RANK[l] ?? 9;
          exp = [...group].sort((a, b) => rank(expectedLetter(a)) - rank(expectedLetter(b)));
          act = [...actual].sort((a, b) => rank(String.fromCharCode(a.payload[0] ?? 0)) - rank(String.fromCharCode(b.payload[0] ?? 0)));
        }
        exp.forEach((e, k) => {
          for (const d of compareFrame(e, act[k]!, ctx)) diffs.push(`${e.label}: ${d}`);
        });
        i = j;
      }
    }
    if (!reader.ended && !clientEnded) {
      // Nothing else must be on its way: a ping is answered after whatever the server still had to send.
      writeQuiet(sock, Buffer.from('8900', 'hex'));
      const f = await reader.nextFrame(3000, 'the pong of the final ping');
      if (f.raw.toString('hex') !== '8a00') diffs.push(`extra frame at the end of the connection: ${f.raw.toString('hex').slice(0, 120)}`);
    }
  } finally {
    sock.destroy();
  }
  return diffs;
}

/* ================================================================ config */

interface Config {
  /** Error texts differ between generations: compare errors by presence (and ignore their info). */
  errorsByPresence?: boolean;
  /** hello4 (redpesk binding v4) replies arrays: compare only call ids and success/failure. */
  relaxReplies?: boolean;
  /** Accept any JSON description (redpesk answers null). */
  describeAnyJson?: boolean;
  /** Compare the k of a call and the P/B it causes in any order. */
  unordered?: boolean;
  /** Connections served by another API than hello. */
  apiOfConn?: Record<number, 'mininull' | 'minispec'>;
  /** Rewrites of generation-specific frames into the AGL 2021 behaviour. */
  adjust?: (conn: number, steps: Step[]) => void;
}

/* helpers for the adjustments */
function expectedMessage(s: Step): DecodeResult | null {
  if (s.kind !== 'expect' || (s.bytes === undefined && s.frame === undefined)) return null;
  const w = parseWsFrame(s.bytes ?? s.frame!.bytes!)!;
  return w.opcode === Op.BINARY ? decodeMessage(w.payload) : null;
}
function indexOf(steps: Step[], pred: (s: Step, m: DecodeResult | null) => boolean, what: string): number {
  const i = steps.findIndex((s) => pred(s, expectedMessage(s)));
  if (i < 0) throw new Error(`adjustment: ${what} not found`);
  return i;
}
const isReply = (callId: number) => (_s: Step, m: DecodeResult | null) => m?.kind === 'k' && m.callId === callId;
const isSendOp = (opcode: number) => (s: Step) => s.kind === 'send' && (s.bytes[0]! & 0x0f) === opcode;
const isExpectBytes = (hex: string) => (s: Step) => s.kind === 'expect' && (s.bytes ?? s.frame?.bytes)?.toString('hex') === hex;
function synthetic(m: Message, why: string): ExpectStep {
  return { kind: 'expect', bytes: encodeMessage(m), label: `(AGL 2021 behaviour: ${why})` };
}
function control(hex: string, why: string): ExpectStep {
  return { kind: 'expect', bytes: Buffer.from(hex, 'hex'), label: `(AGL 2021 behaviour: ${why})` };
}
/** A successful hello3 ping reply to `callId` whose info shows `query`. */
function pingReply(callId: number, query: string, why: string): ExpectStep {
  return {
    kind: 'expect', letter: 'k', label: `(AGL 2021 behaviour: ${why})`,
    match: (m) => {
      if (m.kind !== 'k' || m.callId !== callId || m.error !== null) return [`expected a success reply to ${callId}, got ${JSON.stringify(m)}`];
      const re = new RegExp(`^Ping Binder Daemon tag=pingSample count=\\d+ query=${query.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
      return re.test(m.info ?? '') && m.data === '"Some String"' ? [] : [`unexpected ping reply ${m.info} ${m.data}`];
    },
  };
}
/** A hello3 info reply to `callId` showing the given credentials (or the socket peer's: this process). */
function infoReply(callId: number, creds: { uid: number; gid: number; pid: number; label: string } | 'socket', why: string): ExpectStep {
  return {
    kind: 'expect', letter: 'k', label: `(AGL 2021 behaviour: ${why})`,
    match: (m, _raw, ctx) => {
      if (m.kind !== 'k' || m.callId !== callId || m.error !== null) return [`expected a success reply to ${callId}, got ${JSON.stringify(m)}`];
      const c = creds === 'socket' ? { uid: process.getuid!(), gid: process.getgid!(), pid: process.pid, label: 'NoLabel' } : creds;
      const d = JSON.parse(m.data) as Record<string, unknown>;
      const want = { uid: c.uid, gid: c.gid, pid: c.pid, user: String(c.uid), label: c.label, id: c.label, uuid: d.uuid, LOA: 0 };
      const u = ctx.uuids.check('anonymous session of conn 1', String(d.uuid)); // both info calls share the anonymous session
      return [...(isDeepStrictEqual(d, want) ? [] : [`info data ${m.data}, expected ${JSON.stringify(want)}`]), ...(u ? [u] : [])];
    },
  };
}

const STRICT: Config = {};

/**
 * How each capture file is replayed. Entries with `notReplayed` say why a file
 * is not run against our server (it is still decoded by the codec and framing tests).
 */
const REPLAY: Record<string, Config | { notReplayed: string }> = {
  '01-version-offer.txt': STRICT,
  '02-call-success.txt': STRICT,
  '03-call-error.txt': STRICT,
  '04-describe.txt': STRICT,
  '05-events-subscribe-push.txt': STRICT,
  '06-event-unexpected.txt': STRICT,
  '07-broadcast.txt': STRICT,
  '08-session-token.txt': STRICT,
  '09-session-token-raw.txt': STRICT,
  '10-daemon-as-client.txt': STRICT,
  '11-call-without-version.txt': STRICT,
  '12-version-bad.txt': STRICT,
  '13-malformed-binary.txt': STRICT,
  '14-ws-level.txt': STRICT,
  '15-too-large.txt': STRICT,
  '16-native-client-vs-fake-server.txt': { notReplayed: 'the server there is a scripted fake; the native CLIENT is what 16 shows (client replay)' },

  'seed-2020/s01-version.txt': STRICT,
  'seed-2020/s02-ping.txt': STRICT,
  // conn 2 and 3 talk to two tiny APIs of the seed capture (description null / a short spec); conn 4 was TCP,
  // replayed here on the unix socket (the transport does not change the wsapi bytes). The seed writes the
  // descid of d as a u32; a server writes the u16 form (wsapi-v1.md Quirks): accepted in compareMessages.
  'seed-2020/s03-describe-u32.txt': { apiOfConn: { 2: 'mininull', 3: 'minispec' } },
  'seed-2020/s04-events.txt': STRICT,
  // 2020 answers an undeclared session id with "internal-error", 2021 with "unknown-session": errors by presence.
  'seed-2020/s05-unknown-session.txt': { errorsByPresence: true },
  // 2020's s drop hit a bug (it dropped from the wrong table), so the getctx after it failed with "internal-error";
  // in 2021 the session is really dropped and the call fails with "unknown-session": an error either way.
  'seed-2020/s06-session-drop.txt': { errorsByPresence: true },
  'seed-2020/s07-token-drop.txt': STRICT,

  // redpesk sends P and B before the k of the call that caused them: compared in any order.
  'redpesk/hello3-c10-redpesk-binder-as-client.txt': { unordered: true },
  // redpesk's unknown-verb carries no info (AGL: "verb nosuchverb unknown within api hello").
  'redpesk/hello3-s02-ping.txt': { errorsByPresence: true },
  // redpesk always describes null; conn 2 was an exact-length abstract socket, conn 3 TCP: all replayed on the unix socket.
  'redpesk/hello3-s03-describe.txt': { describeAnyJson: true },
  'redpesk/hello3-s04-events.txt': {
    unordered: true,
    adjust: (_conn, steps) => {
      // redpesk retires the event from the connection right after x (e follows at once) and the unsubscribing call
      // fails ("failed"/"unsubscription error"); AGL 2021 sends x, keeps the listener and replies success...
      const x = indexOf(steps, (_s, m) => m?.kind === 'x' && m.callId === 4, 'x of call 4');
      steps.splice(x + 1, 2, synthetic({ kind: 'k', callId: 4, error: null, info: null, data: 'null' }, 'x, no e, the unsubscribing call succeeds'));
      // ...so the next push still reaches this connection (x does not stop P, only U does)...
      const k5 = indexOf(steps, isReply(5), 'reply to call 5');
      steps.splice(k5 + 1, 0, synthetic({ kind: 'P', eventId: 2, data: '{"n":2}' }, 'P goes on after x'));
      // ...and the event is still known there: subscribing again sends X without a new E.
      const e = indexOf(steps, (_s, m) => m?.kind === 'E', 'E');
      const e2 = steps.findIndex((s, i) => i > e && expectedMessage(s)?.kind === 'E');
      steps.splice(e2, 1);
    },
  },
  // redpesk answers an undeclared session id with "invalid-request" (2021: "unknown-session").
  'redpesk/hello3-s05-unknown-session.txt': { errorsByPresence: true },
  'redpesk/hello3-s08-ws-level-nofrag.txt': {
    adjust: (conn, steps) => {
      // redpesk's pong echoes the ping payload; AGL 2021 and wsapi-v1.md: an empty pong.
      if (conn === 1) steps.splice(indexOf(steps, isExpectBytes('8a026869'), 'pong'), 1, control('8a00', 'empty pong'));
      // redpesk sends an empty close (88 00) before hanging up after a close, EOF or half-close; AGL hangs up silently.
      steps.splice(indexOf(steps, isExpectBytes('8800'), 'close 88 00'), 1);
    },
  },
  'redpesk/hello3-s09-fragmented.txt': {
    adjust: (_conn, steps) => {
      // redpesk never leaves its reading state after a non-final frame: the connection is dead. AGL 2021 (14)
      // reassembles the message and serves it, then serves the next call.
      const lastFrag = indexOf(steps, (s) => s.kind === 'send' && s.bytes[0] === 0x80, 'final fragment');
      steps.splice(lastFrag + 1, 0, pingReply(2, '"fragmented"', 'fragmented messages are reassembled'));
      steps.push(pingReply(3, '"after"', 'the connection goes on'));
    },
  },
  'redpesk/hello3-s11-creds.txt': {
    adjust: (_conn, steps) => {
      // Invalid creds text: redpesk fails the call ("internal-error"); AGL ignores the creds and serves it (13).
      steps.splice(indexOf(steps, isReply(1), 'reply 1'), 1, pingReply(1, '2', 'invalid creds are ignored'));
      // "info" is a framework verb on redpesk (API info); AGL's hello3 has its own info verb: the caller's
      // credentials (forwarded ones from a trusted peer), session and LOA, as 13 shows.
      steps.splice(indexOf(steps, isReply(3), 'reply 3'), 1, infoReply(3, 'socket', 'hello3 info verb'));
      steps.splice(indexOf(steps, isReply(4), 'reply 4'), 1, infoReply(4, { uid: 1000, gid: 1000, pid: 1234, label: 'mylabel' }, 'hello3 info verb, forwarded creds'));
    },
  },
  'redpesk/hello4-r05-session-token-raw.txt': { relaxReplies: true },
  'redpesk/hello4-r07-malformed-binary.txt': {
    relaxReplies: true,
    adjust: (_conn, steps) => {
      // As for hello3-s11: invalid creds are ignored by AGL, and its info verb is hello3's.
      steps.splice(indexOf(steps, isReply(5), 'reply 5'), 1, infoReply(5, 'socket', 'invalid creds are ignored'));
      steps.splice(indexOf(steps, isReply(15), 'reply 15'), 1, infoReply(15, { uid: 1000, gid: 1000, pid: 1234, label: 'mylabel' }, 'forwarded creds'));
    },
  },
  'redpesk/hello4-r08-ws-level.txt': {
    relaxReplies: true,
    adjust: (conn, steps) => {
      if (conn === 1) {
        // redpesk: after the fragmented message the connection is dead (no reply, no pong, no close).
        // AGL 2021 (14, same bytes): k 2, an empty pong, k 3..5, and a silent hang-up after the close.
        const ping = indexOf(steps, isSendOp(Op.PING), 'ping');
        steps.splice(ping, 0, pingReply(2, '"fragmented"', 'fragmented messages are reassembled'));
        steps.splice(ping + 2, 0, control('8a00', 'empty pong'));
        const close = indexOf(steps, isSendOp(Op.CLOSE), 'close');
        steps.splice(close, 0, pingReply(3, '3', 'coalesced calls'), pingReply(4, '4', 'coalesced calls'), pingReply(5, '5', 'split header'));
        steps.push({ kind: 'serverEof', label: '(AGL 2021 behaviour: hang-up after a close, no close echoed)' });
      }
      if (conn === 6) {
        // A new BINARY while a fragmented message is pending: redpesk was stalled by the fragment; AGL: close 1002.
        steps.push(control('880203ea', 'close 1002'), { kind: 'serverEof', label: '(AGL 2021 behaviour: hang-up)' });
      }
      if (conn === 8) steps.splice(indexOf(steps, isExpectBytes('8800'), 'close 88 00'), 1); // AGL: silent hang-up on EOF
    },
  },
  'redpesk/hello4-s01-version.txt': {
    // Bad V identifier: redpesk sends an empty close (88 00) before hanging up; AGL 2021 just hangs up (12).
    adjust: (conn, steps) => {
      if (conn === 2) steps.splice(indexOf(steps, isExpectBytes('8800'), 'close 88 00'), 1);
    },
  },
  'redpesk/hello4-s02-ping.txt': { notReplayed: 'hello4 has no pingfail/pingnull verbs: every difference is the binding, not the protocol (hello3-s02 is replayed)' },
  'redpesk/hello4-s03-describe.txt': { relaxReplies: true, describeAnyJson: true },
  'redpesk/hello4-s04-events.txt': { notReplayed: 'hello4 event verbs differ from hello3 (no pingevent, array replies); the protocol behaviour is that of hello3-s04, which is replayed' },
  'redpesk/hello4-s05-unknown-session.txt': { relaxReplies: true },
};

/* ================================================================= tests */

async function replayCapture(cap: Capture, cfg: Config): Promise<string[]> {
  const dir = makeTempDir();
  const hello = new Hello3();
  const servers: WsapiServer[] = [hello.server];
  const paths: Record<string, string> = { hello: path.join(dir, 'hello') };
  const diffs: string[] = [];
  try {
    await hello.server.listen(`unix:${paths.hello}`);
    for (const api of new Set(Object.values(cfg.apiOfConn ?? {}))) {
      const s = new WsapiServer({ api, description: api === 'minispec' ? { openapi: '3.0.0', info: { title: 'minispec' } } : null });
      servers.push(s);
      paths[api] = path.join(dir, api);
      await s.listen(`unix:${paths[api]}`);
    }
    const ctx: ReplayCtx = {
      cfg, events: new Bijection('event id'), uuids: new Bijection('session uuid'),
      calls: new Map(), declared: new Set(),
    };
    for (const conn of cap.conns) {
      const steps = stepsOf(cap, conn);
      cfg.adjust?.(conn, steps);
      const api = cfg.apiOfConn?.[conn] ?? 'hello';
      for (const d of await replayConn(paths[api]!, steps, ctx)) diffs.push(`conn ${conn}: ${d}`);
      // The next connection starts once the server has seen this one go (sessions autoclose then).
      await waitFor(() => servers.every((s) => s.stats.connections === 0), 3000, 'the server to see the connection close');
    }
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    removeDir(dir);
  }
  return diffs;
}

describe('server replay: configuration', () => {
  it('says for every capture file how it is replayed (or why not)', () => {
    expect(Object.keys(REPLAY).sort()).toEqual([...listCaptureFiles()].sort());
  });

  it('the hello3 emulation prints queries as json-c does', () => {
    expect(jsoncSpaced('{"a":[1,2]}')).toBe('{ "a": [ 1, 2 ] }');
    expect(jsoncSpaced('{}')).toBe('{ }');
    expect(jsoncSpaced('[]')).toBe('[ ]');
    expect(jsoncSpaced('"a/b"')).toBe('"a\\/b"');
    expect(jsoncSpaced('not json{')).toBe('"not json{"');
    expect(jsoncSpaced('1.50')).toBe('1.50');
    expect(jsoncSpaced('-0')).toBe('0');
  });
});

const replayed = listCaptureFiles().filter((f) => REPLAY[f] !== undefined && !('notReplayed' in REPLAY[f]!));

describe.each(replayed)('server replay of %s', (file) => {
  const cfg = REPLAY[file] as Config;
  const cf = loadCaptureFile(file);
  // replayCapture closes its servers, sockets and temp dir in `finally`, whatever happens.
  it.each(cf.captures.map((c) => [c.name, c] as const))('capture %s: our server sends what the native server sent', async (_n, cap) => {
    expect(await replayCapture(cap, cfg)).toEqual([]);
  });
});
