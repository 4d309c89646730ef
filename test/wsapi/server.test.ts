/**
 * WsapiServer against raw clients over real unix sockets, checked byte for
 * byte against wsapi-v1.md ("Behaviour", "Observed on a real binder") and
 * the captures in ../shared/wsapi-vectors: version negotiation, calls,
 * describe, sessions, tokens, events, broadcasts, the websocket level,
 * credentials, a peer that never reads, and closing.
 */
import net from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  decodeMessage, writeCall, writeDescribe, writeEventUnexpected, writeSessionCreate, writeSessionRemove,
  writeTokenCreate, writeTokenRemove, writeVersionOffer, WsapiClient, WsapiServer, listenSpec,
  type DecodeResult, type Request, type ServerOptions,
} from '../../src/wsapi/index.js';
import type { ServerConnection } from '../../src/wsapi/index.js';
import { createLogger } from '../../src/util/log.js';
import { Cleanup, OP, RawPeer, closePayload, hex, nextEvent, tempDir, waitFor, withTimeout, wsFrame } from '../helpers/net-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const V1 = writeVersionOffer([1]);
const V_HEX = '82075609144c170101';
const v_HEX = '82027601';

interface CallOpts { session?: number; token?: number; creds?: string | null }
function K(id: number, verb: string, args = 'null', o: CallOpts = {}): Buffer {
  return writeCall(id, verb, o.session ?? 0, o.token ?? 0, args, o.creds ?? null);
}

async function startServer(opts: Partial<ServerOptions> = {}, setup?: (s: WsapiServer) => void): Promise<{ server: WsapiServer; path: string }> {
  const dir = tempDir(cleanup, 'srv');
  const path = join(dir, 'apis', 'ws', 'hello');
  const server = new WsapiServer({ api: 'hello', ...opts });
  server.verb('ping', (req) => ({ pong: req.args }));
  setup?.(server);
  await server.listen(`unix:${path}`);
  cleanup.add(() => server.close());
  return { server, path };
}

async function rawClient(path: string): Promise<RawPeer> {
  const p = await RawPeer.connect({ path });
  cleanup.add(() => p.destroy());
  return p;
}

function decoded(p: RawPeer): DecodeResult[] {
  return p.messages.map((m) => decodeMessage(m));
}

/** Waits for the k of `callId` and returns it. */
async function replyOf(p: RawPeer, callId: number, ms = 3000): Promise<Extract<DecodeResult, { kind: 'k' }>> {
  const find = () => decoded(p).find((m) => m.kind === 'k' && m.callId === callId) as Extract<DecodeResult, { kind: 'k' }> | undefined;
  await p.until(() => find() !== undefined, ms, `reply to call ${callId}`);
  return find()!;
}

/** Proves the connection is still served: a ping call gets its reply. */
async function stillServed(p: RawPeer, callId: number): Promise<void> {
  p.write(K(callId, 'ping', `"alive${callId}"`));
  const r = await replyOf(p, callId);
  expect(r.error).toBe(null);
  expect(JSON.parse(r.data)).toEqual({ pong: `alive${callId}` });
  expect(p.closed).toBe(false);
}

describe('server: version negotiation', () => {
  it('answers V [1] with exactly 82 02 76 01', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    p.write(V_HEX);
    await p.until(() => p.data.length >= 4);
    expect(hex(p.data)).toBe(v_HEX);
  });

  it('picks the highest known version, ignoring the 0 padding of newer binders', async () => {
    const { path } = await startServer();
    for (const versions of [[0, 0, 1, 0], [1, 2, 3], [7, 1], [0, 1]]) {
      const p = await rawClient(path);
      p.write(writeVersionOffer(versions));
      await p.until(() => p.data.length >= 4);
      expect(hex(p.data), `offer [${versions}]`).toBe(v_HEX);
    }
  });

  const bad: Array<[string, string]> = [
    ['wrong identifier', '820756785634120101'],
    ['only version 2', '82075609144c170102'],
    ['an empty list', '82065609144c1700'],
    ['only zeros', '82085609144c17020000'],
    ['a truncated V (count 2, one byte)', '82075609144c170201'],
    ['a V without identifier', '820156'],
  ];
  for (const [what, bytes] of bad) {
    it(`hangs up, without a close frame, on a V with ${what}`, async () => {
      const { path, server } = await startServer();
      const p = await rawClient(path);
      p.write(bytes);
      await p.waitClosed();
      expect(p.data.length).toBe(0);
      await waitFor(() => server.stats.connections === 0, 3000, 'server forgets the connection');
    });
  }

  it('after hanging up on a bad V, the calls that came in the same chunk are not run', async () => {
    let runs = 0;
    const { path } = await startServer({}, (s) => s.verb('effect', () => ++runs));
    const p = await rawClient(path);
    p.write(Buffer.concat([Buffer.from('82075609144c170102', 'hex'), K(1, 'effect'), K(2, 'effect')]));
    await p.waitClosed();
    expect(p.data.length).toBe(0);
    expect(runs).toBe(0);
  });

  it('serves a K without V (capture 11) and a V after K', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    p.write(K(1, 'ping', '1'));
    expect((await replyOf(p, 1)).data).toBe('{"pong":1}');
    p.write(V1);
    await p.until(() => p.frames.length >= 2);
    expect(hex(p.frames[1]!.raw)).toBe(v_HEX);
  });

  it('answers V, S, T, K sent back to back without waiting for v (native client)', async () => {
    const { path } = await startServer({}, (s) => s.verb('who', (req) => ({ s: req.session.uuid, t: req.token })));
    const p = await rawClient(path);
    p.write(Buffer.concat([V1, writeSessionCreate(3, 'sess-x'), writeTokenCreate(1, 'tok-y'), K(1, 'who', 'null', { session: 3, token: 1 })]));
    await p.waitMessages(2);
    expect(hex(p.frames[0]!.raw)).toBe(v_HEX);
    expect(JSON.parse((await replyOf(p, 1)).data)).toEqual({ s: 'sess-x', t: 'tok-y' });
  });
});

describe('server: calls', () => {
  it('replies k with the exact bytes of the reference layout', async () => {
    const { path } = await startServer({}, (s) => s.verb('hi', () => 'ok'));
    const p = await rawClient(path);
    p.write(Buffer.concat([V1, K(0x0102, 'hi')]));
    await p.waitFrames(2);
    // 6b | callid 0201 | error null | info null | json "\"ok\"" (len 5)
    expect(hex(p.frames[1]!.raw)).toBe('8214' + '6b' + '0201' + '00000000' + '00000000' + '05000000' + hex(Buffer.from('"ok"\0')));
  });

  it('unknown verb → error unknown-verb', async () => {
    const { path, server } = await startServer();
    const p = await rawClient(path);
    p.write(K(1, 'nosuchverb', 'true'));
    const r = await replyOf(p, 1);
    expect(r.error).toBe('unknown-verb');
    expect(r.info).toContain('nosuchverb');
    expect(r.data).toBe('null');
    expect(server.stats.unknownVerbs).toBe(1);
  });

  it('handlers: return, throw, async, later reply, explicit fail', async () => {
    const { path, server } = await startServer({}, (s) => {
      s.verb('ret', () => [1, 2]);
      s.verb('throw', () => { throw new Error('boom'); });
      s.verb('async', async (req) => ({ got: req.args }));
      s.verb('reject', async () => { throw new Error('async boom'); });
      s.verb('later', (req) => { setTimeout(() => req.reply({ late: true }, 'some info'), 20); });
      s.verb('fail', (req) => req.fail('failed', 'it failed', { why: 1 }));
      s.verb('twice', (req) => { req.reply(1); req.reply(2); req.fail('x'); return 3; });
    });
    const p = await rawClient(path);
    p.write(Buffer.concat([K(1, 'ret'), K(2, 'throw'), K(3, 'async', '{"a":1}'), K(4, 'reject'), K(5, 'later'), K(6, 'fail'), K(7, 'twice')]));
    expect(await replyOf(p, 1)).toMatchObject({ error: null, info: null, data: '[1,2]' });
    expect(await replyOf(p, 2)).toMatchObject({ error: 'internal-error', info: 'boom', data: 'null' });
    expect(await replyOf(p, 3)).toMatchObject({ error: null, data: '{"got":{"a":1}}' });
    expect(await replyOf(p, 4)).toMatchObject({ error: 'internal-error', info: 'async boom' });
    expect(await replyOf(p, 5)).toMatchObject({ error: null, info: 'some info', data: '{"late":true}' });
    expect(await replyOf(p, 6)).toMatchObject({ error: 'failed', info: 'it failed', data: '{"why":1}' });
    expect(await replyOf(p, 7)).toMatchObject({ error: null, data: '1' });
    await stillServed(p, 8);
    // exactly one reply per call
    const ks = decoded(p).filter((m) => m.kind === 'k');
    expect(ks.map((m) => (m as { callId: number }).callId).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(server.stats.handlerErrors).toBe(2);
  });

  it('args: JSON is parsed; text that is not JSON arrives as a string (capture 13)', async () => {
    const seen: Array<[unknown, string]> = [];
    const { path } = await startServer({}, (s) => s.verb('args', (req) => { seen.push([req.args, req.argsText]); return null; }));
    const p = await rawClient(path);
    p.write(Buffer.concat([K(1, 'args', '{"a":[1,"x"]}'), K(2, 'args', 'not json{'), K(3, 'args', 'null'), K(4, 'args', '')]));
    await replyOf(p, 4);
    expect(seen).toEqual([[{ a: [1, 'x'] }, '{"a":[1,"x"]}'], ['not json{', 'not json{'], [null, 'null'], ['', '']]);
  });

  it('a malformed K gets no reply and the connection stays up', async () => {
    let calls = 0;
    const { path, server } = await startServer({}, (s) => s.verb('count', () => ++calls));
    const p = await rawClient(path);
    p.write(V1);
    p.write('82034b0100'); // truncated K (callid only)
    p.write('821c4b02000400000070696e6700000000050000006e756c6c0000000000'); // verb without NUL
    p.write(wsFrame(Buffer.from(K(9, 'count')).subarray(2, 12))); // cut inside the verb
    await stillServed(p, 3);
    // nothing but v and the reply of call 3
    expect(decoded(p).map((m) => m.kind)).toEqual(['v', 'k']);
    expect(calls).toBe(0);
    expect(server.connectionStats.malformed).toBe(3);
  });

  it('ignores unknown letters, empty messages, server letters and truncated D/S/T (capture 13)', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    p.write(V1);
    for (const h of ['82055a6a756e6b', '8200', '82146b01000000000000000000050000006e756c6c00', '820144', '82025301', '820454010000', '82027601', '820145']) p.write(h);
    await stillServed(p, 6);
    expect(decoded(p).map((m) => m.kind)).toEqual(['v', 'k']);
  });

  it('serves a K with trailing garbage (capture 13)', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    p.write('82214b04000500000070696e6700000000000200000031000000000047415242414745');
    expect(await replyOf(p, 4)).toMatchObject({ error: null, data: '{"pong":1}' });
  });

  it('several K in one write, split headers and masked frames: every reply, in order', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    const frames = [K(3, 'ping', '3'), K(4, 'ping', '4'), wsFrame(K(5, 'ping', '5').subarray(2), { mask: true })];
    const all = Buffer.concat(frames);
    p.write(all.subarray(0, frames[0]!.length + 1)); // second header split
    await new Promise((r) => setImmediate(r));
    p.write(all.subarray(frames[0]!.length + 1));
    await p.waitMessages(3);
    expect(decoded(p).map((m) => (m as { callId: number }).callId)).toEqual([3, 4, 5]);
    // the reference never masks its own frames
    expect(p.frames.every((f) => !f.masked && f.fin && f.opcode === OP.BINARY)).toBe(true);
  });

  it('a K reusing the id of a pending call is ignored', async () => {
    const held: Request[] = [];
    const { path } = await startServer({}, (s) => s.verb('hold', (req) => { held.push(req); }));
    const p = await rawClient(path);
    p.write(K(1, 'hold', '"first"'));
    await waitFor(() => held.length === 1);
    p.write(K(1, 'hold', '"second"'));
    await stillServed(p, 2);
    expect(held.length).toBe(1);
    held[0]!.reply('done');
    expect((await replyOf(p, 1)).data).toBe('"done"');
    // once replied, the id is free again
    p.write(K(1, 'hold', '"third"'));
    await waitFor(() => held.length === 2);
    expect(held[1]!.args).toBe('third');
  });
});

describe('server: describe', () => {
  it('answers D with d in the u16 layout; null by default', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    p.write(writeDescribe(0x0203));
    await p.waitFrames(1);
    expect(hex(p.frames[0]!.raw)).toBe('820c' + '64' + '0302' + '05000000' + hex(Buffer.from('null\0')));
  });

  it('answers with the description given, or computed by a function', async () => {
    let n = 0;
    const desc = { openapi: '3.0.0', info: { title: 'hello', 'x-binding-c-generator': { api: 'hello' } } };
    const a = await startServer({ description: desc });
    const b = await startServer({ description: () => ({ n: ++n }) });
    const pa = await rawClient(a.path);
    const pb = await rawClient(b.path);
    pa.write(writeDescribe(1));
    pb.write(Buffer.concat([writeDescribe(1), writeDescribe(2)]));
    await pa.waitMessages(1);
    await pb.waitMessages(2);
    expect(decoded(pa)[0]).toEqual({ kind: 'd', descId: 1, description: JSON.stringify(desc), layout: 16 });
    expect(decoded(pb)).toEqual([
      { kind: 'd', descId: 1, description: '{"n":1}', layout: 16 },
      { kind: 'd', descId: 2, description: '{"n":2}', layout: 16 },
    ]);
  });
});

describe('server: sessions and tokens', () => {
  it('S declares a session shared by every connection naming its uuid', async () => {
    const seen: Array<{ uuid: string; n: number }> = [];
    const { path, server } = await startServer({}, (s) => s.verb('count', (req) => {
      const n = ((req.session.context.get('n') as number | undefined) ?? 0) + 1;
      req.session.context.set('n', n);
      seen.push({ uuid: req.session.uuid, n });
      return n;
    }));
    const a = await rawClient(path);
    const b = await rawClient(path);
    a.write(Buffer.concat([writeSessionCreate(1, 'shared-uuid'), K(1, 'count', 'null', { session: 1 })]));
    await replyOf(a, 1);
    b.write(Buffer.concat([writeSessionCreate(7, 'shared-uuid'), K(1, 'count', 'null', { session: 7 })]));
    expect((await replyOf(b, 1)).data).toBe('2');
    expect(seen).toEqual([{ uuid: 'shared-uuid', n: 1 }, { uuid: 'shared-uuid', n: 2 }]);
    expect(server.sessions.size).toBe(1); // only the declared one: no anonymous session was needed
  });

  it('an undeclared session id gets error unknown-session', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    p.write(K(1, 'ping', 'null', { session: 5 }));
    expect(await replyOf(p, 1)).toMatchObject({ error: 'unknown-session', data: 'null' });
    await stillServed(p, 2);
  });

  it('session id 0: one fresh session per connection, kept across its calls', async () => {
    const { path } = await startServer({}, (s) => s.verb('uuid', (req) => req.session.uuid));
    const a = await rawClient(path);
    const b = await rawClient(path);
    a.write(Buffer.concat([K(1, 'uuid'), K(2, 'uuid')]));
    b.write(K(1, 'uuid'));
    const a1 = (await replyOf(a, 1)).data;
    const a2 = (await replyOf(a, 2)).data;
    const b1 = (await replyOf(b, 1)).data;
    expect(a1).toBe(a2);
    expect(a1).not.toBe(b1);
  });

  it('s drops the session id; sessions close when their last connection goes', async () => {
    let sess: Request['session'] | undefined;
    const { path, server } = await startServer({}, (s) => s.verb('keep', (req) => { sess = req.session; return null; }));
    const p = await rawClient(path);
    p.write(Buffer.concat([writeSessionCreate(1, 'u-1'), K(1, 'keep', 'null', { session: 1 })]));
    await replyOf(p, 1);
    expect(sess!.uuid).toBe('u-1');
    p.write(Buffer.concat([writeSessionRemove(1), K(2, 'keep', 'null', { session: 1 })]));
    expect(await replyOf(p, 2)).toMatchObject({ error: 'unknown-session' });
    expect(sess!.closed).toBe(true);

    const q = await rawClient(path);
    q.write(Buffer.concat([writeSessionCreate(1, 'u-2'), K(1, 'keep', 'null', { session: 1 }), K(2, 'keep')]));
    await replyOf(q, 2);
    expect(server.sessions.size).toBe(2); // u-2 and q's anonymous session
    q.destroy();
    await waitFor(() => server.sessions.size === 0, 3000, 'sessions released with the connection');
    expect(sess!.closed).toBe(true);
  });

  it('T declares a token; an undeclared token id is no token; t drops it', async () => {
    const { path } = await startServer({}, (s) => s.verb('tok', (req) => req.token));
    const p = await rawClient(path);
    p.write(Buffer.concat([writeTokenCreate(1, 'secret'), K(1, 'tok', 'null', { token: 1 }), K(2, 'tok', 'null', { token: 9 })]));
    expect((await replyOf(p, 1)).data).toBe('"secret"');
    expect(await replyOf(p, 2)).toMatchObject({ error: null, data: 'null' });
    p.write(Buffer.concat([writeTokenRemove(1), K(3, 'tok', 'null', { token: 1 })]));
    expect(await replyOf(p, 3)).toMatchObject({ error: null, data: 'null' });
  });
});

describe('server: events', () => {
  function eventServer(): Promise<{ server: WsapiServer; path: string }> {
    return startServer({}, (s) => {
      const ev = s.event('tick');
      s.verb('sub', (req) => { req.subscribe(ev); return 'subscribed'; });
      s.verb('unsub', (req) => { req.unsubscribe(ev); return 'unsubscribed'; });
      s.verb('push', (req) => { ev.push(req.args); return 'pushed'; });
      s.verb('remove', () => { ev.remove(); return 'removed'; });
    });
  }

  it('E before the first X, lazily and once per connection; P after the k of the pushing call', async () => {
    const { path, server } = await eventServer();
    const id = server.event('tick').id;
    const p = await rawClient(path);
    p.write(Buffer.concat([V1, K(1, 'sub')]));
    await replyOf(p, 1);
    expect(decoded(p)).toEqual([
      { kind: 'v', version: 1 },
      { kind: 'E', eventId: id, name: 'hello/tick' },
      { kind: 'X', callId: 1, eventId: id },
      { kind: 'k', callId: 1, error: null, info: null, data: '"subscribed"' },
    ]);
    p.write(Buffer.concat([K(2, 'sub'), K(3, 'push', '{"n":1}')]));
    await p.until(() => decoded(p).some((m) => m.kind === 'P'));
    expect(decoded(p).slice(4)).toEqual([
      { kind: 'X', callId: 2, eventId: id }, // no second E
      { kind: 'k', callId: 2, error: null, info: null, data: '"subscribed"' },
      { kind: 'k', callId: 3, error: null, info: null, data: '"pushed"' },
      { kind: 'P', eventId: id, data: '{"n":1}' },
    ]);
    expect(server.stats.eventsPushed).toBe(1);
  });

  it('event ids come from one server-wide counter', async () => {
    const { path, server } = await eventServer();
    const other = server.event('other');
    const tick = server.event('tick');
    expect(other.id).not.toBe(tick.id);
    expect(server.event('tick')).toBe(tick);
    const a = await rawClient(path);
    const b = await rawClient(path);
    a.write(K(1, 'sub'));
    b.write(K(1, 'sub'));
    await replyOf(a, 1);
    await replyOf(b, 1);
    const ea = decoded(a).find((m) => m.kind === 'E');
    const eb = decoded(b).find((m) => m.kind === 'E');
    expect(ea).toEqual(eb);
    expect(ea).toEqual({ kind: 'E', eventId: tick.id, name: 'hello/tick' });
  });

  it('U gets an immediate e and stops the pushes to that connection only', async () => {
    const { path, server } = await eventServer();
    const id = server.event('tick').id;
    const a = await rawClient(path);
    const b = await rawClient(path);
    a.write(K(1, 'sub'));
    b.write(K(1, 'sub'));
    await replyOf(a, 1);
    await replyOf(b, 1);
    a.write(writeEventUnexpected(id));
    await a.until(() => decoded(a).some((m) => m.kind === 'e'));
    expect(decoded(a).at(-1)).toEqual({ kind: 'e', eventId: id });
    b.write(K(2, 'push', '2'));
    await b.until(() => decoded(b).some((m) => m.kind === 'P'));
    await stillServed(a, 3);
    expect(decoded(a).filter((m) => m.kind === 'P')).toEqual([]);
    // a U for an event this connection does not know is ignored
    a.write(writeEventUnexpected(999));
    await stillServed(a, 4);
    expect(decoded(a).filter((m) => m.kind === 'e')).toHaveLength(1);
  });

  it('x does not stop P (2021 binder); remove() sends e to the connections that know the event', async () => {
    const { path, server } = await eventServer();
    const id = server.event('tick').id;
    const a = await rawClient(path);
    const other = await rawClient(path); // never subscribed
    a.write(K(1, 'sub'));
    await replyOf(a, 1);
    a.write(K(2, 'unsub'));
    await replyOf(a, 2);
    expect(decoded(a).find((m) => m.kind === 'x')).toEqual({ kind: 'x', callId: 2, eventId: id });
    a.write(K(3, 'push', '"after-x"'));
    await a.until(() => decoded(a).some((m) => m.kind === 'P'));
    other.write(K(1, 'remove'));
    await replyOf(other, 1);
    await a.until(() => decoded(a).some((m) => m.kind === 'e'));
    expect(decoded(a).at(-1)).toEqual({ kind: 'e', eventId: id });
    expect(decoded(other).map((m) => m.kind)).toEqual(['k']);
    // a new event of that name gets a new id
    expect(server.event('tick').id).not.toBe(id);
  });
});

describe('server: broadcast', () => {
  it('B goes to every connection, with hop - 1 and a 16-byte uuid', async () => {
    const { path, server } = await startServer();
    const a = await rawClient(path);
    const b = await rawClient(path);
    await stillServed(a, 1);
    await stillServed(b, 1);
    const uuid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    expect(server.broadcast('news', { x: 1 }, { uuid })).toBe(true);
    for (const p of [a, b]) {
      await p.until(() => decoded(p).some((m) => m.kind === 'B'));
      expect(decoded(p).find((m) => m.kind === 'B')).toEqual({ kind: 'B', name: 'hello/news', data: '{"x":1}', uuid, hop: 9 });
    }
    // a broadcast seen once is not sent again (loop protection)
    expect(server.broadcast('news', { x: 2 }, { uuid })).toBe(false);
    // hop 0: nothing to send; hop 1: sent with hop 0
    expect(server.broadcast('zero', null, { hop: 0 })).toBe(false);
    expect(server.broadcast('one', null, { hop: 1 })).toBe(true);
    for (const p of [a, b]) {
      await p.until(() => decoded(p).filter((m) => m.kind === 'B').length === 2);
      await stillServed(p, 2);
      const bs = decoded(p).filter((m) => m.kind === 'B') as Array<{ name: string; hop: number; uuid: Buffer }>;
      expect(bs.map((m) => [m.name, m.hop])).toEqual([['hello/news', 9], ['hello/one', 0]]);
      expect(bs[1]!.uuid.length).toBe(16);
      expect(bs[1]!.uuid.equals(uuid)).toBe(false);
    }
    expect(server.stats.broadcasts).toBe(2);
  });
});

describe('server: websocket level (capture 14)', () => {
  it('ping → empty pong, and the connection stays up', async () => {
    const { path, server } = await startServer();
    const p = await rawClient(path);
    p.write('89026869');
    await p.waitFrames(1);
    expect(hex(p.frames[0]!.raw)).toBe('8a00');
    await stillServed(p, 1);
    expect(server.connectionStats.pingsIn).toBe(1);
  });

  it('an unsolicited pong is ignored', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    p.write('8a00');
    await stillServed(p, 1);
    expect(p.frames).toHaveLength(1);
  });

  it('close → hang-up without echoing a close frame', async () => {
    const { path, server } = await startServer();
    const p = await rawClient(path);
    const gone = nextEvent<[ServerConnection, string]>(server, 'disconnect');
    p.write(wsFrame(closePayload(1000, 'bye'), { opcode: OP.CLOSE }));
    await p.waitClosed();
    expect(p.data.length).toBe(0);
    expect((await gone)[1]).toBe('peer sent close 1000 (bye)');
  });

  const broken: Array<[string, Buffer, string]> = [
    ['text frame → close 1003', Buffer.from('810568656c6c6f', 'hex'), '880203eb'],
    ['reserved opcode 3 → close 1002', Buffer.from('83027878', 'hex'), '880203ea'],
    ['RSV1 → close 1002', wsFrame(K(1, 'ping').subarray(2), { rsv: 4 }), '880203ea'],
    ['continuation without start → close 1002', Buffer.from('8003616263', 'hex'), '880203ea'],
    ['BINARY while fragmented pending → close 1002', Buffer.from('02024b0182024b02', 'hex'), '880203ea'],
    ['ping of 126 bytes → close 1002', wsFrame(Buffer.alloc(126, 0x78), { opcode: OP.PING }), '880203ea'],
    ['fragmented ping → close 1002', wsFrame('', { opcode: OP.PING, fin: false }), '880203ea'],
  ];
  for (const [what, bytes, closeHex] of broken) {
    it(`${what}, then hang-up`, async () => {
      const { path, server } = await startServer();
      const p = await rawClient(path);
      await stillServed(p, 1);
      const before = p.data.length;
      p.write(bytes);
      await p.waitClosed();
      expect(hex(p.data.subarray(before))).toBe(closeHex);
      expect(server.connectionStats.protocolErrors).toBe(1);
    });
  }

  it('a header announcing more than 1,048,500 bytes → close 1009 before any payload is sent', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    p.write('827f00000000000fffb5'); // 1,048,501: header only, the payload never comes
    await p.waitClosed();
    expect(hex(p.data)).toBe('880203f1');
  });

  it('exactly 1,048,500 bytes is accepted; the limit is configurable', async () => {
    const sizes: number[] = [];
    const { path } = await startServer({}, (s) => s.verb('size', (req) => { sizes.push(req.argsText.length); return sizes.length; }));
    const p = await rawClient(path);
    // K overhead: 1 + 2 + (4 + 5) + 2 + 2 + 4 + 1 + 4 = 25 bytes around the args text
    const args = '"' + 'a'.repeat(1_048_500 - 25 - 2) + '"';
    const frame = K(1, 'size', args);
    expect(frame.length - 10).toBe(1_048_500);
    p.write(frame);
    await replyOf(p, 1, 5000);
    expect(sizes).toEqual([args.length]);

    const small = await startServer({ maxFramePayload: 100 });
    const q = await rawClient(small.path);
    q.write(K(1, 'ping', '"' + 'b'.repeat(100) + '"'));
    await q.waitClosed();
    expect(hex(q.data)).toBe('880203f1');
  });

  it('a fragmented K (with a ping in between) is reassembled and served', async () => {
    const { path } = await startServer();
    const p = await rawClient(path);
    const payload = K(9, 'ping', '"frag"').subarray(2);
    p.write(Buffer.concat([
      wsFrame(payload.subarray(0, 5), { fin: false }),
      wsFrame('6869', { opcode: OP.PING }),
      wsFrame(payload.subarray(5, 12), { opcode: OP.CONT, fin: false, mask: true }),
      wsFrame(payload.subarray(12), { opcode: OP.CONT }),
    ]));
    const r = await replyOf(p, 9);
    expect(r.data).toBe('{"pong":"frag"}');
    expect(hex(p.frames[0]!.raw)).toBe('8a00');
  });

  it('a peer that closes its socket is forgotten', async () => {
    const { path, server } = await startServer();
    const p = await rawClient(path);
    await stillServed(p, 1);
    expect(server.stats.connections).toBe(1);
    const gone = nextEvent<[ServerConnection, string]>(server, 'disconnect');
    p.socket.end();
    expect((await gone)[1]).toBe('peer hung up');
    expect(server.stats.connections).toBe(0);
    expect(server.stats.connectionsTotal).toBe(1);
  });
});

describe('server: a peer that never reads', () => {
  it('is disconnected once maxBacklog is exceeded, logged and counted, while other clients are served', async () => {
    const lines: string[] = [];
    const logger = createLogger('debug', (l) => lines.push(l));
    const reply = 'x'.repeat(128 * 1024);
    const { path, server } = await startServer({ maxBacklog: 1024 * 1024, logger }, (s) => s.verb('big', () => reply));
    // the good client reads everything
    const good = new WsapiClient(`unix:${path}`);
    cleanup.add(() => good.close());
    await good.connect();
    // the bad one never reads: no 'data' listener, so Node stops reading once its small buffer is full
    const bad = net.connect({ path });
    bad.on('error', () => {});
    cleanup.add(() => bad.destroy());
    await new Promise((r) => bad.once('connect', r));
    const disconnected = nextEvent<[ServerConnection, string]>(server, 'disconnect', 10_000);
    let badGone = false;
    void disconnected.then(() => { badGone = true; });

    let sent = 0;
    for (let i = 1; i <= 200 && !badGone; i++) {
      bad.write(K(i, 'big'));
      sent++;
      await waitFor(() => badGone || server.stats.calls >= 2 * i - 1, 3000, `call ${i} of the non-reader handled`);
      // meanwhile the good client is served normally
      const r = await good.call('big');
      expect(r.error).toBe(null);
      expect((r.data as string).length).toBe(reply.length);
    }
    const [, reason] = await disconnected;
    expect(reason).toMatch(/^peer not reading: \d+ bytes still queued from earlier writes > limit 1048576$/);
    expect(server.connectionStats.backlogDisconnects).toBe(1);
    expect(lines.some((l) => l.startsWith('<warn>') && l.includes('peer not reading'))).toBe(true);
    // Not before 1 MiB was queued (plus what the kernel and the peer's buffer took), not much after.
    expect(sent * reply.length).toBeGreaterThan(1024 * 1024);
    expect(sent).toBeLessThan(100);
    // the good client was never disconnected and is still served
    expect(good.connected).toBe(true);
    expect((await good.call('ping', 'after')).data).toEqual({ pong: 'after' });
    expect(server.stats.connections).toBe(1);
  });
  it('a reading peer whose pipelined replies exceed maxBacklog within one tick is not disconnected', async () => {
    const reply = 'y'.repeat(64 * 1024);
    const { path, server } = await startServer({ maxBacklog: 256 * 1024 }, (s) => s.verb('big', () => reply));
    const client = new WsapiClient(`unix:${path}`);
    cleanup.add(() => client.close());
    await client.connect();
    // 40 calls in one write: their 2.5 MiB of replies are produced in one tick, ten times the limit.
    const replies = await Promise.all(Array.from({ length: 40 }, () => client.call('big')));
    for (const r of replies) expect((r.data as string).length).toBe(reply.length);
    expect(server.connectionStats.backlogDisconnects).toBe(0);
    expect(client.connected).toBe(true);
  });
});

describe('server: credentials', () => {
  function credServer(trust?: ServerOptions['trustForwardedCreds']) {
    const seen: Request[] = [];
    return startServer(trust === undefined ? {} : { trustForwardedCreds: trust }, (s) => s.verb('who', (req) => { seen.push(req); return null; }))
      .then((r) => ({ ...r, seen }));
  }
  const own = () => ({ uid: process.getuid!(), gid: process.getgid!(), pid: process.pid, label: 'NoLabel' });

  it('peer credentials come from SO_PEERCRED: our own uid, gid and pid', async () => {
    const { path, seen } = await credServer();
    const p = await rawClient(path);
    p.write(K(1, 'who'));
    await replyOf(p, 1);
    expect(seen[0]!.peer).toEqual(own());
    expect(seen[0]!.creds).toEqual(own());
    expect(seen[0]!.forwardedCreds).toBe(null);
  });

  it("forwarded creds are honoured with trustForwardedCreds 'always'", async () => {
    const { path, seen } = await credServer('always');
    const p = await rawClient(path);
    p.write(K(1, 'who', 'null', { creds: '3e8:3e8:4d2-mylabel' }));
    await replyOf(p, 1);
    const fwd = { uid: 1000, gid: 1000, pid: 1234, label: 'mylabel' };
    expect(seen[0]!.forwardedCreds).toEqual(fwd);
    expect(seen[0]!.creds).toEqual(fwd);
    expect(seen[0]!.peer).toEqual(own());
  });

  it("forwarded creds are ignored with 'never'", async () => {
    const { path, seen } = await credServer('never');
    const p = await rawClient(path);
    p.write(K(1, 'who', 'null', { creds: '3e8:3e8:4d2-mylabel' }));
    await replyOf(p, 1);
    expect(seen[0]!.forwardedCreds).toEqual({ uid: 1000, gid: 1000, pid: 1234, label: 'mylabel' });
    expect(seen[0]!.creds).toEqual(own());
  });

  it("'same-uid' (the default) honours a peer of our own uid or root", async () => {
    const { path, seen } = await credServer();
    const p = await rawClient(path);
    p.write(K(1, 'who', 'null', { creds: '0:0:7e6a-NoLabel' })); // as the redpesk binder forwards them
    await replyOf(p, 1);
    expect(seen[0]!.creds).toEqual({ uid: 0, gid: 0, pid: 0x7e6a, label: 'NoLabel' });
  });

  it('invalid forwarded creds are ignored (logged): the call is served with the peer credentials', async () => {
    const { path, seen, server } = await credServer('always');
    const p = await rawClient(path);
    p.write(K(1, 'who', 'null', { creds: '1000:1000:somelabel:someid' }));
    await replyOf(p, 1);
    expect(seen[0]!.forwardedCreds).toBe(null);
    expect(seen[0]!.creds).toEqual(own());
    expect(server.connectionStats.malformed).toBe(1);
  });

  it('a TCP peer has no peer credentials, and forwarded ones are not trusted from it', async () => {
    const server = new WsapiServer({ api: 'hello' });
    const seen: Request[] = [];
    server.verb('who', (req) => { seen.push(req); return null; });
    const listeners = await listenSpec({ kind: 'tcp', host: '127.0.0.1', port: 0, api: 'hello', text: 'tcp:127.0.0.1:0/hello' }, (s) => server.accept(s));
    cleanup.add(async () => {
      await Promise.all(listeners.map((l) => new Promise((r) => l.close(r))));
      await server.close();
    });
    const port = (listeners[0]!.address() as net.AddressInfo).port;
    const p = await RawPeer.connect({ host: '127.0.0.1', port });
    cleanup.add(() => p.destroy());
    p.write(Buffer.concat([K(1, 'who'), K(2, 'who', 'null', { creds: '0:0:1-root' })]));
    await replyOf(p, 2);
    expect(seen[0]!.peer).toBeUndefined();
    expect(seen[0]!.creds).toBeUndefined();
    expect(seen[1]!.creds).toBeUndefined();
    expect(seen[1]!.forwardedCreds).toEqual({ uid: 0, gid: 0, pid: 1, label: 'root' });
  });
});

describe('server: close', () => {
  it('close() hangs up open connections, stops listening and removes the socket file', async () => {
    let held = 0;
    const { path, server } = await startServer({}, (s) => s.verb('hold', () => { held++; }));
    const p = await rawClient(path);
    await stillServed(p, 1);
    const client = new WsapiClient(`unix:${path}`);
    cleanup.add(() => client.close());
    await client.connect();
    const pending = client.call('hold');
    await waitFor(() => held === 1);
    await withTimeout(server.close(), 3000, 'server.close() with open connections');
    await p.waitClosed();
    await waitFor(() => !client.connected);
    expect(await pending).toEqual({ data: null, error: 'disconnected', info: 'server hung up' });
    await waitFor(() => server.stats.connections === 0, 3000, "the connections' disconnect");
    expect(existsSync(path)).toBe(false);
    await expect(new WsapiClient(`unix:${path}`).connect()).rejects.toThrow(/cannot connect/);
  });
});
