/**
 * Client replay: for every capture where a native CLIENT talks (afb-client-demo
 * through a relay, afb-daemon --ws-client, the redpesk binder as client, and
 * afb-client-demo against a scripted fake server), a fake server on a temp
 * unix socket plays the captured server frames while our WsapiClient makes
 * the same calls. Checked:
 *  (a) the frames our client sends are the captured client frames: byte for
 *      byte, except session/token ids a native daemon numbers its own way
 *      (mapped consistently, and the frame must then re-encode identically);
 *  (b) the replies and events our client reports are what the native client
 *      printed (the stdout kept in the capture), or, when the capture has no
 *      stdout, what the captured server frames say.
 * Replies and events are compared as two sequences: our client hands replies
 * out through promises (a microtask after the frame is read), so a reply and
 * an event read in the same chunk are not reported in wire order, where the
 * native client prints them as they come. ON-EVENT-CREATE has no counterpart
 * in our API: it is checked through knownEvents() at the first subscription.
 */
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, parseJsonText, type Message } from '../../src/wsapi/codec.js';
import { WsapiClient, type CallOptions, type EventMeta, type Reply } from '../../src/wsapi/client.js';
import {
  Bijection, Op, WireReader, connScript, framesOf, loadCaptureFile, makeTempDir, parseWsFrame, removeDir,
  withTimeout, writeQuiet, type Capture, type FrameLine, type WsFrame,
} from '../helpers/vectors.js';

/* ======================================================== fake server */

type FStep =
  | { kind: 'expect'; frame: FrameLine }
  | { kind: 'send'; bytes: Buffer }
  | { kind: 'clientEof' }
  | { kind: 'serverEnd' };

/** Consecutive sends are written at once, as a server that has them ready does (and a client reads them in one chunk). */
function coalesce(steps: FStep[]): FStep[] {
  const out: FStep[] = [];
  for (const s of steps) {
    const last = out.at(-1);
    if (s.kind === 'send' && last?.kind === 'send') last.bytes = Buffer.concat([last.bytes, s.bytes]);
    else out.push(s.kind === 'send' ? { kind: 'send', bytes: Buffer.from(s.bytes) } : s);
  }
  return out;
}

/** The fake server's steps: the captured server chunks are written, our client's frames expected one by one. */
function fakeStepsOf(cap: Capture, conn: number): FStep[] {
  return coalesce(connScript(cap, conn, 'C').map((it): FStep => {
    if (it.type === 'frame') return { kind: 'expect', frame: it.frame };
    if (it.type === 'chunk') return { kind: 'send', bytes: it.bytes };
    return { kind: it.side === 'client' ? 'clientEof' : 'serverEnd' };
  }));
}

interface IdMaps {
  /** Only daemons acting as clients (10, redpesk c10) number sessions/tokens their own way; afb-client-demo counts from 1 as ours. */
  allowed: boolean;
  sessions: Bijection<number>;
  tokens: Bijection<number>;
}

/**
 * Our client's frame vs the captured one: identical bytes, or the same message
 * with session/token ids mapped (a native daemon uses its own internal ids),
 * re-encoding to exactly our bytes.
 */
function compareClientFrame(exp: FrameLine, act: WsFrame, maps: IdMaps): string[] {
  const where = `${exp.file}:${exp.line}`;
  if (act.raw.equals(exp.bytes!)) {
    // Still record the ids, so that a later mismatch in numbering is caught.
    const m = act.opcode === Op.BINARY ? decodeMessage(act.payload) : null;
    const ids: Array<string | null> = [];
    if (m?.kind === 'S') ids.push(maps.sessions.check(m.sessionId, m.sessionId));
    if (m?.kind === 'T') ids.push(maps.tokens.check(m.tokenId, m.tokenId));
    if (m?.kind === 'K') {
      if (m.sessionId !== 0) ids.push(maps.sessions.check(m.sessionId, m.sessionId));
      if (m.tokenId !== 0) ids.push(maps.tokens.check(m.tokenId, m.tokenId));
    }
    return ids.filter((d): d is string => d !== null).map((d) => `${where}: ${d}`);
  }
  const ew = parseWsFrame(exp.bytes!)!;
  const bad = [`${where}: expected ${exp.bytes!.toString('hex').slice(0, 160)}, our client sent ${act.raw.toString('hex').slice(0, 160)}`];
  if (!maps.allowed || ew.opcode !== Op.BINARY || act.opcode !== Op.BINARY) return bad;
  const em = decodeMessage(ew.payload);
  const am = decodeMessage(act.payload);
  const diffs: string[] = [];
  const map = (b: Bijection<number>, e: number, a: number): number => {
    if (e === 0 || a === 0) {
      if (e !== a) diffs.push(`${where}: id ${e} vs ${a}`);
      return e;
    }
    const d = b.check(e, a);
    if (d !== null) diffs.push(`${where}: ${d}`);
    return a;
  };
  let mapped: Message;
  if (em.kind === 'S' && am.kind === 'S') mapped = { ...em, sessionId: map(maps.sessions, em.sessionId, am.sessionId) };
  else if (em.kind === 'T' && am.kind === 'T') mapped = { ...em, tokenId: map(maps.tokens, em.tokenId, am.tokenId) };
  else if (em.kind === 'K' && am.kind === 'K') {
    mapped = { ...em, sessionId: map(maps.sessions, em.sessionId, am.sessionId), tokenId: map(maps.tokens, em.tokenId, am.tokenId) };
  } else return bad;
  if (diffs.length > 0) return diffs;
  return encodeMessage(mapped).equals(act.raw) ? [] : bad;
}

/**
 * Plays the script on the first connection. `atClientEof` resolves when the
 * script has sent everything before the client's hang-up: the native client
 * exits only after that (it has read its replies), so ours closes then too.
 */
async function runFakeServer(server: net.Server, steps: FStep[], maps: IdMaps, atClientEof: () => void): Promise<string[]> {
  const sock = await new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const reader = new WireReader(sock);
  const diffs: string[] = [];
  try {
    for (const st of steps) {
      if (st.kind === 'expect') {
        const f = await reader.nextFrame(3000, `our client's frame for ${st.frame.file}:${st.frame.line}`);
        diffs.push(...compareClientFrame(st.frame, f, maps));
      } else if (st.kind === 'send') {
        writeQuiet(sock, st.bytes);
      } else if (st.kind === 'clientEof') {
        atClientEof();
        await reader.expectEnd(3000).catch((err: Error) => diffs.push(`client hang-up: ${err.message}`));
      } else {
        sock.end();
      }
    }
  } finally {
    sock.destroy();
  }
  return diffs;
}

/* ===================================================== what is expected */

type Action = { kind: 'call'; verb: string; args: string; options: CallOptions } | { kind: 'describe' };

/** The calls and describes of the captured client, with the session/token/creds each K carries. */
function actionsOf(cap: Capture, conn: number): Action[] {
  const sessions = new Map<number, string>();
  const tokens = new Map<number, string>();
  const out: Action[] = [];
  for (const f of framesOf(cap, conn, 'C')) {
    const w = parseWsFrame(f.bytes!)!;
    if (w.opcode !== Op.BINARY) continue;
    const m = decodeMessage(w.payload);
    if (m.kind === 'S') sessions.set(m.sessionId, m.uuid);
    else if (m.kind === 'T') tokens.set(m.tokenId, m.token);
    else if (m.kind === 'D') out.push({ kind: 'describe' });
    else if (m.kind === 'K') {
      const options: CallOptions = {};
      if (m.sessionId !== 0) options.session = sessions.get(m.sessionId)!;
      if (m.tokenId !== 0) options.token = tokens.get(m.tokenId)!;
      if (m.creds !== null) options.creds = m.creds;
      out.push({ kind: 'call', verb: m.verb, args: m.args, options });
    }
  }
  return out;
}

const canon = (jsonText: string): string => JSON.stringify(JSON.parse(jsonText));

/** A reply as afb-client-demo prints it. */
function printedReply(r: Reply): Record<string, unknown> {
  const request: Record<string, unknown> = { status: r.error ?? 'success' };
  if (r.info !== null) request.info = r.info;
  const out: Record<string, unknown> = { jtype: 'afb-reply', request };
  if (r.data !== null) out.response = r.data;
  return out;
}

/** Replies (parsed JSON, or the text of a line the capture cut) and events, from the native client's stdout. */
function fromStdout(lines: string[]): { replies: Array<Record<string, unknown> | string>; events: string[] } {
  const replies: Array<Record<string, unknown> | string> = [];
  const events: string[] = [];
  const names = new Map<string, string>();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    let m: RegExpExecArray | null;
    if (l.startsWith('{"jtype":"afb-reply"')) {
      try {
        replies.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        replies.push(l); // cut by the capture tool
      }
    } else if ((m = /^ON-EVENT-CREATE: \[(\d+):(.*)\]$/.exec(l))) {
      names.set(m[1]!, m[2]!);
      events.push(`CREATE ${m[2]}`);
    } else if ((m = /^ON-EVENT-(SUBSCRIBE|UNSUBSCRIBE) (\d+:[^:]+): \[(\d+)\]$/.exec(l))) {
      events.push(`${m[1]} ${m[2]} ${names.get(m[3]!)}`);
    } else if ((m = /^ON-EVENT-PUSH: \[(\d+)\]$/.exec(l))) {
      events.push(`PUSH ${names.get(m[1]!)} ${canon(lines[++i]!)}`);
    } else if ((m = /^ON-EVENT-BROADCAST: \[(.*)\]$/.exec(l))) {
      events.push(`BROADCAST ${m[1]} ${canon(lines[++i]!)}`);
    } else if ((m = /^ON-EVENT-REMOVE: \[(\d+)\]$/.exec(l))) {
      events.push(`REMOVE ${names.get(m[1]!)}`);
    } else {
      throw new Error(`unrecognised stdout line: ${l}`);
    }
  }
  return { replies, events };
}

/** The same, worked out from the server frames, for captures without the client's stdout. */
function fromFrames(cap: Capture, conn: number): { replies: Array<Record<string, unknown>>; events: string[] } {
  const verbs = new Map<number, string>();
  for (const f of framesOf(cap, conn, 'C')) {
    const m = decodeMessage(parseWsFrame(f.bytes!)!.payload);
    if (m.kind === 'K') verbs.set(m.callId, m.verb);
  }
  const replies: Array<Record<string, unknown>> = [];
  const events: string[] = [];
  const names = new Map<number, string>();
  const announced = new Set<string>();
  for (const f of framesOf(cap, conn, 'S')) {
    const m = decodeMessage(parseWsFrame(f.bytes!)!.payload);
    switch (m.kind) {
      case 'k':
        replies.push(printedReply({ error: m.error, info: m.info, data: parseJsonText(m.data) }));
        break;
      case 'E':
        names.set(m.eventId, m.name);
        break;
      case 'X':
      case 'x': {
        const name = names.get(m.eventId)!;
        if (m.kind === 'X' && !announced.has(name)) {
          announced.add(name);
          events.push(`CREATE ${name}`);
        }
        events.push(`${m.kind === 'X' ? 'SUBSCRIBE' : 'UNSUBSCRIBE'} ${m.callId}:${verbs.get(m.callId)} ${name}`);
        break;
      }
      case 'P':
        events.push(`PUSH ${names.get(m.eventId)} ${canon(m.data)}`);
        break;
      case 'B':
        events.push(`BROADCAST ${m.name} ${canon(m.data)}`);
        break;
      case 'e':
        announced.delete(names.get(m.eventId)!);
        events.push(`REMOVE ${names.get(m.eventId)}`);
        break;
      default:
        break;
    }
  }
  return { replies, events };
}

/* ============================================================== the run */

interface ClientRun {
  diffs: string[];
  replies: Array<Record<string, unknown> | string>;
  events: string[];
  client: WsapiClient;
  broadcastMeta: EventMeta[];
}

async function replayClientConn(cap: Capture, conn: number): Promise<ClientRun> {
  const dir = makeTempDir();
  const sockPath = path.join(dir, 'hello');
  const server = net.createServer();
  const client = new WsapiClient(`unix:${sockPath}`);
  const steps = fakeStepsOf(cap, conn);
  const maps: IdMaps = {
    allowed: DAEMON_CLIENTS.includes(cap.name),
    sessions: new Bijection('session id'),
    tokens: new Bijection('token id'),
  };
  const run: ClientRun = { diffs: [], replies: [], events: [], client, broadcastMeta: [] };
  const announced = new Set<string>();
  client.on('subscribe', (name: string, callId: number, verb: string) => {
    if (!client.knownEvents().includes(name)) run.diffs.push(`subscribed to ${name} before it was created`);
    if (!announced.has(name)) {
      announced.add(name);
      run.events.push(`CREATE ${name}`);
    }
    run.events.push(`SUBSCRIBE ${callId}:${verb} ${name}`);
  });
  client.on('unsubscribe', (name: string, callId: number, verb: string) => run.events.push(`UNSUBSCRIBE ${callId}:${verb} ${name}`));
  client.on('event', (name: string, data: unknown, meta: EventMeta) => {
    if (meta.broadcast) run.broadcastMeta.push(meta);
    run.events.push(`${meta.broadcast ? 'BROADCAST' : 'PUSH'} ${name} ${JSON.stringify(data)}`);
  });
  /** The native client prints ON-EVENT-REMOVE when e arrives; ours forgets the name: seen at the next reply. */
  const noteRemovals = (): void => {
    for (const n of [...announced]) {
      if (!client.knownEvents().includes(n)) {
        announced.delete(n);
        run.events.push(`REMOVE ${n}`);
      }
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sockPath, () => resolve());
    });
    let scriptAtEof!: () => void;
    const reachedEof = new Promise<void>((r) => { scriptAtEof = r; });
    const fake = runFakeServer(server, steps, maps, scriptAtEof);
    await client.connect();
    for (const a of actionsOf(cap, conn)) {
      if (a.kind === 'call') {
        const r = await withTimeout(client.callText(a.verb, a.args, a.options), 3000, `reply to ${a.verb}`);
        noteRemovals();
        run.replies.push(printedReply(r));
      } else {
        const d = await withTimeout(client.describe(), 3000, 'description');
        noteRemovals();
        run.replies.push({ description: d as Record<string, unknown> });
      }
    }
    if (steps.some((st) => st.kind === 'clientEof')) {
      await withTimeout(Promise.race([reachedEof, fake]), 3000, 'the fake server to send its last frames');
    }
    client.close();
    run.diffs.push(...(await withTimeout(fake, 5000, 'the fake server script')));
  } finally {
    client.close();
    await new Promise<void>((r) => server.close(() => r()));
    removeDir(dir);
  }
  return run;
}

/** Compares our replies with the expected ones; a describe is compared with the monitor/get reply that caused it (10). */
function compareReplies(ours: Array<Record<string, unknown> | string>, want: Array<Record<string, unknown> | string>): string[] {
  const diffs: string[] = [];
  if (ours.length !== want.length) diffs.push(`${ours.length} replies, expected ${want.length}`);
  ours.forEach((o, i) => {
    const w = want[i];
    let mine = o as Record<string, unknown>;
    if ('description' in mine) {
      // 10: the native client asked daemon #2's monitor/get, which made daemon #2 send D: its reply holds the description.
      mine = { jtype: 'afb-reply', request: { status: 'success' }, response: { apis: { hello: mine.description } } };
    }
    if (typeof w === 'string') {
      if (!JSON.stringify(mine).startsWith(w)) diffs.push(`reply ${i + 1}: ${JSON.stringify(mine).slice(0, 200)} does not start with the printed ${w.slice(0, 200)}`);
    } else if (JSON.stringify(mine) !== JSON.stringify(w)) {
      diffs.push(`reply ${i + 1}: ${JSON.stringify(mine)} vs printed ${JSON.stringify(w)}`);
    }
  });
  return diffs;
}

/* =============================================================== tests */

/** Captures whose client is a daemon using its internal session/token ids (3 and 4 where ours are 1 and 2). */
const DAEMON_CLIENTS = ['n10-daemon-as-client', 'c10-redpesk-binder-as-client (hello3)'];

const CLIENT_CAPTURES: Array<[file: string, capture: string]> = [
  ['01-version-offer.txt', 'n01-version'],
  ['02-call-success.txt', 'n02-call-success'],
  ['03-call-error.txt', 'n03-call-error'],
  ['05-events-subscribe-push.txt', 'n05-events'],
  ['07-broadcast.txt', 'n06-broadcast'],
  ['08-session-token.txt', 'n07-session-token'],
  ['08-session-token.txt', 'n07b-session-rejoin'],
  ['08-session-token.txt', 'n07c-anon-session'],
  ['10-daemon-as-client.txt', 'n10-daemon-as-client'],
  ['16-native-client-vs-fake-server.txt', 'f-no-version'],
  ['16-native-client-vs-fake-server.txt', 'f-bad-version'],
  ['16-native-client-vs-fake-server.txt', 'f-unknown-and-masked'],
  ['16-native-client-vs-fake-server.txt', 'f-ping'],
  ['16-native-client-vs-fake-server.txt', 'f-too-large'],
  ['16-native-client-vs-fake-server.txt', 'f-close'],
  ['redpesk/hello3-c10-redpesk-binder-as-client.txt', 'c10-redpesk-binder-as-client (hello3)'],
];

function captureNamed(file: string, name: string): Capture {
  const c = loadCaptureFile(file).captures.find((x) => x.name === name);
  if (c === undefined) throw new Error(`${file}: no capture ${name}`);
  return c;
}

describe.each(CLIENT_CAPTURES)('client replay of %s', (file, name) => {
  it(`${name}: our client sends the native client's frames and reports what it printed`, async () => {
    const cap = captureNamed(file, name);
    const replies: Array<Record<string, unknown> | string> = [];
    const events: string[] = [];
    const diffs: string[] = [];
    for (const conn of cap.conns) {
      const run = await replayClientConn(cap, conn);
      diffs.push(...run.diffs.map((d) => `conn ${conn}: ${d}`));
      replies.push(...run.replies);
      events.push(...run.events);
    }
    const want = cap.stdout.length > 0 ? fromStdout(cap.stdout) : (() => {
      const w = cap.conns.map((c) => fromFrames(cap, c));
      return { replies: w.flatMap((x) => x.replies), events: w.flatMap((x) => x.events) };
    })();
    diffs.push(...compareReplies(replies, want.replies));
    expect(diffs).toEqual([]);
    expect(events).toEqual(want.events);
  });
});

describe('client replay: 16, the native client against a scripted fake server', () => {
  const f16 = (name: string) => captureNamed('16-native-client-vs-fake-server.txt', name);

  it('no v from the server: the reply is still taken, and the client knows no version', async () => {
    const run = await replayClientConn(f16('f-no-version'), 1);
    expect(run.diffs).toEqual([]);
    expect(run.replies).toEqual([{ jtype: 'afb-reply', request: { status: 'success' }, response: 'no v sent' }]);
    expect(run.client.version).toBeNull();
  });

  it('bad v: the client hangs up and the pending call ends with disconnected / server hung up, even though k followed v', async () => {
    const run = await replayClientConn(f16('f-bad-version'), 1);
    expect(run.diffs).toEqual([]);
    expect(run.replies).toEqual([{ jtype: 'afb-reply', request: { status: 'disconnected', info: 'server hung up' } }]);
    expect(run.client.stats.replies).toBe(0);
  });

  it('unknown letters and a stray k are ignored, a masked reply is accepted, the broadcast keeps its uuid and hop', async () => {
    const run = await replayClientConn(f16('f-unknown-and-masked'), 1);
    expect(run.diffs).toEqual([]);
    expect(run.client.stats.strayReplies).toBe(1);
    expect(run.client.connectionStats.malformed).toBeGreaterThanOrEqual(2); // Z and the stray k
    expect(run.broadcastMeta).toMatchObject([{ broadcast: { uuid: '000102030405060708090a0b0c0d0e0f', hop: 5 } }]);
    expect(run.replies).toEqual([{ jtype: 'afb-reply', request: { status: 'success', info: 'masked reply' }, response: 'm' }]);
  });

  it('server PING: the client answers exactly 8a 00 (checked by the fake server) and the call completes', async () => {
    const run = await replayClientConn(f16('f-ping'), 1);
    expect(run.diffs).toEqual([]);
    expect(run.client.connectionStats.pingsIn).toBe(1);
    expect(run.replies).toEqual([{ jtype: 'afb-reply', request: { status: 'success' }, response: 'ok' }]);
  });

  it('server CLOSE: the client hangs up without echoing a close; the call ends disconnected', async () => {
    const run = await replayClientConn(f16('f-close'), 1);
    expect(run.diffs).toEqual([]);
    expect(run.replies).toEqual([{ jtype: 'afb-reply', request: { status: 'disconnected', info: 'server hung up' } }]);
  });

  it('server frame > 1048500: the client sends 88 02 03 f1 and hangs up; the call ends disconnected', async () => {
    const run = await replayClientConn(f16('f-too-large'), 1);
    expect(run.diffs).toEqual([]);
    expect(run.client.connectionStats.protocolErrors).toBe(1);
    expect(run.replies).toEqual([{ jtype: 'afb-reply', request: { status: 'disconnected', info: 'server hung up' } }]);
  });
});
