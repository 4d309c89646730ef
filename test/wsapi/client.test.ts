/**
 * WsapiClient against a scripted fake server (a raw unix socket) for the
 * exact wire, and against a real WsapiServer for reconnection and
 * credentials: V first, ids, S/T once per connection, describe layouts,
 * events, broadcasts, exhaustion, timeouts, hang-up, reconnect
 * (wsapi-v1.md "Behaviour", wsapi-vectors/16-native-client-vs-fake-server.txt).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConnectError, MAX_PENDING, decodeMessage, writeDescription, writeEventBroadcast, writeEventCreate, writeEventPush,
  writeEventRemove, writeEventSubscribe, writeEventUnsubscribe, writeReply, writeVersionSet, WsapiClient, WsapiServer,
  type ClientOptions, type DecodeResult, type EventMeta, type Request, type ServerConnection,
} from '../../src/wsapi/index.js';
import { CallTable } from '../../src/wsapi/ids.js';
import { Cleanup, FakeServer, OP, RawPeer, closePayload, hex, nextEvent, tempDir, waitFor, wsFrame } from '../helpers/net-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const V_HEX = '82075609144c170101';

async function fakeServer(): Promise<{ fake: FakeServer; path: string }> {
  const path = join(tempDir(cleanup, 'cli'), 'fake');
  const fake = await FakeServer.listen({ path });
  cleanup.add(() => fake.close());
  return { fake, path };
}

async function connectedClient(path: string, options: ClientOptions = {}): Promise<WsapiClient> {
  const c = new WsapiClient(`unix:${path}`, options);
  cleanup.add(() => c.close());
  await c.connect();
  return c;
}

/** A client connected to a fake server, with the fake's end of the connection. */
async function pair(options: ClientOptions = {}): Promise<{ client: WsapiClient; peer: RawPeer; fake: FakeServer; path: string }> {
  const { fake, path } = await fakeServer();
  const client = await connectedClient(path, options);
  const peer = await fake.peer(1);
  await peer.waitFrames(1); // V
  return { client, peer, fake, path };
}

function decoded(p: RawPeer): DecodeResult[] {
  return p.messages.map((m) => decodeMessage(m));
}

/** Resolves true if `p` is already settled (after the pending microtasks), false otherwise. */
async function settledNow(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => { done = true; });
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('client: version and calls', () => {
  it('sends V first and its K right after, without waiting for v; accepts a reply without v', async () => {
    const { fake, path } = await fakeServer();
    const client = await connectedClient(path);
    const reply = client.call('ping', { a: 1 });
    const peer = await fake.peer(1);
    await peer.waitFrames(2);
    expect(hex(peer.frames[0]!.raw)).toBe(V_HEX);
    expect(decoded(peer)[1]).toEqual({ kind: 'K', callId: 1, verb: 'ping', sessionId: 0, tokenId: 0, args: '{"a":1}', creds: null });
    expect(hex(peer.frames[1]!.raw)).toBe('82204b01000500000070696e670000000000080000007b2261223a317d0000000000');
    expect(client.version).toBe(null);
    peer.write(writeReply(1, null, 'info text', '"no v sent"'));
    expect(await reply).toEqual({ data: 'no v sent', error: null, info: 'info text' });
    peer.write(writeVersionSet(1));
    await waitFor(() => client.version === 1);
  });

  it('close() right after connect() still delivers what was written in that tick (the V offer)', async () => {
    const { fake, path } = await fakeServer();
    const client = await connectedClient(path);
    client.close();
    const peer = await fake.peer(1);
    await peer.waitFrames(1);
    expect(hex(peer.frames[0]!.raw)).toBe(V_HEX);
  });

  it('replies: error and info are passed as received; non-JSON data arrives as a string', async () => {
    const { client, peer } = await pair();
    const a = client.call('x');
    const b = client.call('y');
    await peer.waitMessages(3);
    peer.write(writeReply(2, 'failed', 'it failed', 'null'));
    peer.write(writeReply(1, null, null, 'not json{'));
    expect(await b).toEqual({ data: null, error: 'failed', info: 'it failed' });
    expect(await a).toEqual({ data: 'not json{', error: null, info: null });
    expect(client.stats.replies).toBe(2);
  });

  it('calls and describes share one id counter that starts at 1', async () => {
    const { client, peer } = await pair();
    void client.call('a');
    void client.describe();
    void client.callText('b', '[1]', { creds: '3e8:3e8:4d2-mylabel' });
    await peer.waitMessages(4);
    expect(decoded(peer).slice(1)).toEqual([
      { kind: 'K', callId: 1, verb: 'a', sessionId: 0, tokenId: 0, args: 'null', creds: null },
      { kind: 'D', descId: 2 },
      { kind: 'K', callId: 3, verb: 'b', sessionId: 0, tokenId: 0, args: '[1]', creds: '3e8:3e8:4d2-mylabel' },
    ]);
    expect(client.pendingCount).toBe(3);
  });

  it('a k for an unknown call id and unknown letters are ignored (capture 16)', async () => {
    const { client, peer } = await pair();
    const r = client.call('ping');
    await peer.waitMessages(2);
    peer.write('82035a7a7a'); // Z
    peer.write('82176be7030000000000000000080000002273747261792200'); // k 999
    peer.write(wsFrame(writeReply(1, null, 'masked reply', '"m"').subarray(2), { mask: Buffer.from('aabbccdd', 'hex') }));
    expect(await r).toEqual({ data: 'm', error: null, info: 'masked reply' });
    expect(client.stats.strayReplies).toBe(1);
    expect(client.connectionStats.malformed).toBe(2);
    expect(client.connected).toBe(true);
  });

  it('v with a version it does not speak → hangs up; the pending call completes disconnected (capture 16)', async () => {
    const { client, peer } = await pair();
    const r = client.call('ping', true);
    await peer.waitMessages(2);
    peer.write(Buffer.concat([writeVersionSet(2), writeReply(1, null, null, '"ok"')]));
    expect(await r).toEqual({ data: null, error: 'disconnected', info: 'server hung up' });
    await peer.waitClosed();
    expect(client.connected).toBe(false);
  });

  it('calling before connect, or to nowhere', async () => {
    const path = join(tempDir(cleanup, 'cli'), 'nobody');
    const c = new WsapiClient(`unix:${path}`);
    expect(await c.call('x')).toEqual({ data: null, error: 'disconnected', info: 'not connected' });
    expect(await c.describe()).toBe(null);
    const err = await c.connect().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe('ENOENT');
    expect((err as Error).message).toBe(`cannot connect to unix:${path}: ENOENT`);
  });
});

describe('client: sessions and tokens', () => {
  it('S and T go once per connection, just before their first use; s and t on release', async () => {
    const { client, peer } = await pair();
    const n = () => decoded(peer).length;
    void client.call('a', null, { session: 'uuid-A' });
    await peer.waitMessages(3);
    expect(decoded(peer).slice(1)).toEqual([
      { kind: 'S', sessionId: 1, uuid: 'uuid-A' },
      { kind: 'K', callId: 1, verb: 'a', sessionId: 1, tokenId: 0, args: 'null', creds: null },
    ]);
    void client.call('b', null, { session: 'uuid-A' });
    void client.call('c', null, { session: 'uuid-B', token: 'tok-1' });
    void client.call('d', null, { token: 'tok-1' });
    await peer.waitMessages(8);
    expect(decoded(peer).slice(3)).toEqual([
      { kind: 'K', callId: 2, verb: 'b', sessionId: 1, tokenId: 0, args: 'null', creds: null },
      { kind: 'S', sessionId: 2, uuid: 'uuid-B' },
      { kind: 'T', tokenId: 1, token: 'tok-1' },
      { kind: 'K', callId: 3, verb: 'c', sessionId: 2, tokenId: 1, args: 'null', creds: null },
      { kind: 'K', callId: 4, verb: 'd', sessionId: 0, tokenId: 1, args: 'null', creds: null },
    ]);
    client.releaseSession('uuid-A');
    client.releaseToken('tok-1');
    client.releaseSession('never-declared');
    client.releaseToken('never-declared');
    await peer.waitMessages(10);
    expect(decoded(peer).slice(8)).toEqual([{ kind: 's', sessionId: 1 }, { kind: 't', tokenId: 1 }]);
    // a released session is declared again on its next use (the smallest free id)
    const before = n();
    void client.call('e', null, { session: 'uuid-C' });
    await peer.waitMessages(before + 2);
    expect(decoded(peer).slice(before)).toEqual([
      { kind: 'S', sessionId: 1, uuid: 'uuid-C' },
      { kind: 'K', callId: 5, verb: 'e', sessionId: 1, tokenId: 0, args: 'null', creds: null },
    ]);
  });

  it('after a reconnection, S and T are sent again before use', async () => {
    const { fake, path } = await fakeServer();
    const client = await connectedClient(path, { reconnect: { initialDelayMs: 10, jitter: 0 } });
    void client.call('a', null, { session: 'uuid-A', token: 'tok' });
    const first = await fake.peer(1);
    await first.waitMessages(4);
    first.destroy();
    await nextEvent(client, 'connect');
    const call = client.call('b', null, { session: 'uuid-A', token: 'tok' });
    const second = await fake.peer(2);
    await second.waitMessages(4);
    expect(decoded(second)).toEqual([
      { kind: 'V', identifier: 0x174c1409, versions: [1] },
      { kind: 'S', sessionId: 1, uuid: 'uuid-A' },
      { kind: 'T', tokenId: 1, token: 'tok' },
      { kind: 'K', callId: expect.any(Number), verb: 'b', sessionId: 1, tokenId: 1, args: 'null', creds: null },
    ]);
    second.write(writeReply((decoded(second)[3] as { callId: number }).callId, null, null, '1'));
    expect((await call).data).toBe(1);
  });
});

describe('client: describe', () => {
  it('accepts the u16 and the early-2020 u32 layouts, and null', async () => {
    const { client, peer } = await pair();
    const d1 = client.describe();
    const d2 = client.describe();
    const d3 = client.describe();
    await peer.waitMessages(4);
    expect(decoded(peer).slice(1)).toEqual([{ kind: 'D', descId: 1 }, { kind: 'D', descId: 2 }, { kind: 'D', descId: 3 }]);
    peer.write(writeDescription(2, '{"openapi":"3.0.0"}', 32));
    peer.write(writeDescription(1, '{"info":{"title":"hello"}}'));
    peer.write(writeDescription(3, 'null'));
    expect(await d1).toEqual({ info: { title: 'hello' } });
    expect(await d2).toEqual({ openapi: '3.0.0' });
    expect(await d3).toBe(null);
    expect(client.pendingCount).toBe(0);
  });
});

describe('client: events', () => {
  it('E, X, P, x, e through a pending call; P for an unknown id is answered with U', async () => {
    const { client, peer } = await pair();
    const events: Array<[string, unknown, EventMeta]> = [];
    const subs: unknown[][] = [];
    client.on('event', (name: string, data: unknown, meta: EventMeta) => events.push([name, data, meta]));
    client.on('subscribe', (...a: unknown[]) => subs.push(['X', ...a]));
    client.on('unsubscribe', (...a: unknown[]) => subs.push(['x', ...a]));
    const r = client.call('sub', true);
    await peer.waitMessages(2);
    peer.write(Buffer.concat([
      writeEventCreate(77, 'fake/ev'),
      writeEventSubscribe(1, 77),
      writeEventPush(77, '{"pushed":true}'),
      writeEventUnsubscribe(1, 77),
      writeReply(1, null, null, '"ok"'),
    ]));
    expect((await r).data).toBe('ok');
    expect(subs).toEqual([['X', 'fake/ev', 1, 'sub'], ['x', 'fake/ev', 1, 'sub']]);
    expect(events).toEqual([['fake/ev', { pushed: true }, { eventId: 77, json: '{"pushed":true}' }]]);
    // the received text rides along (meta.json) only when it is JSON: relays pass it on as it came
    expect(client.knownEvents()).toEqual(['fake/ev']);
    // x does not forget the event: pushes still arrive
    peer.write(writeEventPush(77, '2'));
    await waitFor(() => events.length === 2);
    // e retires the id: a later P for it is unexpected
    peer.write(writeEventRemove(77));
    peer.write(writeEventPush(77, '3'));
    await peer.until(() => decoded(peer).some((m) => m.kind === 'U'));
    expect(client.knownEvents()).toEqual([]);
    expect(hex(peer.frames.at(-1)!.raw)).toBe('8203554d00');
    // never seen at all
    peer.write(writeEventPush(5, 'null'));
    await peer.until(() => decoded(peer).filter((m) => m.kind === 'U').length === 2);
    expect(decoded(peer).at(-1)).toEqual({ kind: 'U', eventId: 5 });
    expect(client.stats.unexpectedEvents).toBe(2);
    expect(events).toHaveLength(2);
  });

  it('P before the k of the call that caused it (redpesk) is delivered too', async () => {
    const { client, peer } = await pair();
    const events: unknown[] = [];
    client.on('event', (_n: string, d: unknown) => events.push(d));
    const r = client.call('sub');
    await peer.waitMessages(2);
    peer.write(Buffer.concat([writeEventCreate(3, 'hello/ev'), writeEventSubscribe(1, 3), writeEventPush(3, '"first"'), writeReply(1, null, null, 'null'), writeEventRemove(3)]));
    await r;
    expect(events).toEqual(['first']);
  });

  it('X naming a call that is not pending, or an event never created, is ignored', async () => {
    const { client, peer } = await pair();
    const subs: unknown[] = [];
    client.on('subscribe', (...a: unknown[]) => subs.push(a));
    const r = client.call('sub');
    await peer.waitMessages(2);
    peer.write(Buffer.concat([writeEventCreate(4, 'a/b'), writeEventSubscribe(9, 4), writeEventSubscribe(1, 5), writeReply(1, null, null, 'null')]));
    await r;
    expect(subs).toEqual([]);
    expect(client.connected).toBe(true);
  });

  it('broadcasts: deduplicated by uuid, hop passed on', async () => {
    const { client, peer } = await pair();
    const events: Array<[string, unknown, EventMeta]> = [];
    client.on('event', (name: string, data: unknown, meta: EventMeta) => events.push([name, data, meta]));
    const u1 = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    const u2 = Buffer.alloc(16, 0xab);
    // capture 16, then the same uuid again, then another one with hop 0
    peer.write('8228420800000066616b652f626300060000005b312c325d00000102030405060708090a0b0c0d0e0f05');
    peer.write(writeEventBroadcast('fake/bc', '"again"', u1, 4));
    peer.write(writeEventBroadcast('fake/other', '{}', u2, 0));
    await waitFor(() => client.stats.broadcasts + client.stats.duplicateBroadcasts === 3);
    expect(events).toEqual([
      ['fake/bc', [1, 2], { json: '[1,2]', broadcast: { uuid: hex(u1), hop: 5 } }],
      ['fake/other', {}, { json: '{}', broadcast: { uuid: hex(u2), hop: 0 } }],
    ]);
    expect(client.stats.duplicateBroadcasts).toBe(1);
  });
});

describe('client: id exhaustion', () => {
  it('4095 pending calls: the 4096th resolves at once with busy', async () => {
    const { client, peer } = await pair(); // the fake never replies
    expect(MAX_PENDING).toBe(4095);
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < 4095; i++) calls.push(client.call('hold', i));
    expect(client.pendingCount).toBe(4095);
    const busy = client.call('one-more');
    expect(await settledNow(busy)).toBe(true);
    expect(await busy).toEqual({ data: null, error: 'busy', info: 'too many pending calls (4095)' });
    await expect(client.describe()).rejects.toThrow(/busy/);
    expect(client.stats.busy).toBe(2);
    // 4095 distinct ids, never 0, all on the wire
    await peer.waitMessages(4096, 5000);
    const ids = decoded(peer).slice(1).map((m) => (m as { callId: number }).callId);
    expect(new Set(ids).size).toBe(4095);
    expect(ids.includes(0)).toBe(false);
    expect(ids.some((id) => id > 0xffff)).toBe(false);
    // one reply frees one id
    peer.write(writeReply(ids[10]!, null, null, '1'));
    await waitFor(() => client.pendingCount === 4094);
    const next = client.call('next');
    expect(await settledNow(next)).toBe(false);
    expect(client.pendingCount).toBe(4095);
    // hang-up: every pending call completes
    peer.destroy();
    const all = await Promise.all([...calls, next]);
    const outcomes = all.map((r) => JSON.stringify(r));
    expect(outcomes.filter((o) => o === '{"data":null,"error":"disconnected","info":"server hung up"}')).toHaveLength(4095);
    expect(outcomes.filter((o) => o === '{"data":1,"error":null,"info":null}')).toHaveLength(1);
    expect(client.pendingCount).toBe(0);
  });

  it('maxPending lowers the bound (never above 4095)', async () => {
    const { client } = await pair({ maxPending: 2 });
    void client.call('a');
    void client.call('b');
    expect((await client.call('c')).error).toBe('busy');
    const big = new WsapiClient('unix:/nonexistent/x', { maxPending: 100_000 });
    expect((big as unknown as { pending: CallTable<unknown> }).pending.limit).toBe(4095);
  });

  it('the id table: never 0, wraps at 0xffff, skips ids in use', () => {
    const ids = new CallTable<string>(4095);
    expect(ids.add('first')).toBe(1);
    const held = ids.add('held'); // 2, kept busy
    for (let i = 3; i <= 0xffff; i++) {
      const id = ids.add(`call ${i}`);
      expect(id).toBe(i);
      expect(ids.get(id)).toBe(`call ${i}`);
      ids.delete(id);
      expect(ids.get(id)).toBeUndefined();
    }
    expect(ids.add('wrapped')).toBe(3); // wrapped: 0 skipped, 1 still in use, 2 held
    expect(held).toBe(2);
    expect([ids.get(1), ids.get(2), ids.get(3)]).toEqual(['first', 'held', 'wrapped']);
    expect(ids.size).toBe(3);
    const small = new CallTable<number>(2);
    expect([small.add(1), small.add(2), small.add(3)]).toEqual([1, 2, 0]);
  });

  it('the id table drains oldest first, across the wrap of the ids', () => {
    const ids = new CallTable<number>(4095);
    for (let i = 1; i <= 0xfff0; i++) ids.delete(ids.add(i)); // the counter near its end
    const order: number[] = [];
    for (let k = 0; k < 40; k++) order.push(ids.add(k)); // ids 0xfff1..0xffff, then 1..
    expect(order.slice(14, 16)).toEqual([0xffff, 1]);
    ids.delete(order[5]!);
    expect(ids.drain()).toEqual([...Array(40).keys()].filter((k) => k !== 5));
    expect(ids.size).toBe(0);
    expect(ids.add(99)).toBe(order[39]! + 1);
  });
});

describe('client: timeouts', () => {
  it("a call times out with error 'timeout'; its id stays reserved until the late reply", async () => {
    const { client, peer } = await pair();
    const t0 = Date.now();
    const r = await client.call('slow', null, { timeout: 40 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(35);
    expect(r).toEqual({ data: null, error: 'timeout', info: `no reply to ${client.api}/slow within 40 ms` });
    expect(client.stats.timeouts).toBe(1);
    expect(client.pendingCount).toBe(1);
    const other = client.call('fast');
    await peer.waitMessages(3);
    expect((decoded(peer)[2] as { callId: number }).callId).toBe(2); // id 1 is not reused
    peer.write(writeReply(1, null, null, '"late"')); // the late reply frees id 1, nobody hears it
    await waitFor(() => client.pendingCount === 1);
    expect(client.stats.strayReplies).toBe(0);
    peer.write(writeReply(2, null, null, '"fast"'));
    expect((await other).data).toBe('fast');
    expect(client.pendingCount).toBe(0);
  });

  it('a call answered in time is not timed out later', async () => {
    const { client, peer } = await pair();
    const r = client.call('x', null, { timeout: 30 });
    await peer.waitMessages(2);
    peer.write(writeReply(1, null, null, '1'));
    expect(await r).toEqual({ data: 1, error: null, info: null });
    await new Promise((res) => setTimeout(res, 50));
    expect(client.stats.timeouts).toBe(0);
  });
});

describe('client: hang-up', () => {
  it('pending calls complete with disconnected / server hung up, describes with null, ids and events are forgotten', async () => {
    const { client, peer } = await pair();
    const calls = [client.call('a'), client.call('b', null, { session: 's' }), client.call('c', null, { timeout: 10_000 })];
    const descs = [client.describe(), client.describe()];
    const timedOut = client.call('d', null, { timeout: 10 });
    await peer.waitMessages(8);
    peer.write(Buffer.concat([writeEventCreate(1, 'x/y'), writeEventSubscribe(1, 1)]));
    await waitFor(() => client.knownEvents().length === 1);
    expect((await timedOut).error).toBe('timeout');
    const disconnect = nextEvent<[string]>(client, 'disconnect');
    peer.destroy();
    expect(await Promise.all(calls)).toEqual(Array(3).fill({ data: null, error: 'disconnected', info: 'server hung up' }));
    expect(await Promise.all(descs)).toEqual([null, null]);
    expect((await disconnect)[0]).toBe('peer hung up');
    expect(client.connected).toBe(false);
    expect(client.pendingCount).toBe(0);
    expect(client.knownEvents()).toEqual([]);
    expect(client.stats.disconnectedCalls).toBe(3); // the timed-out call is not completed twice
    expect(await client.call('after')).toEqual({ data: null, error: 'disconnected', info: 'not connected' });
  });

  it('close() ends the connection; pending calls complete disconnected', async () => {
    const { client, peer } = await pair();
    const r = client.call('a');
    await peer.waitMessages(2);
    client.close();
    expect(await r).toMatchObject({ error: 'disconnected' });
    await peer.waitClosed();
    expect(peer.frames.filter((f) => f.opcode === OP.CLOSE)).toEqual([]);
  });
});

describe('client: websocket level (capture 16)', () => {
  it('ping from the server → empty pong', async () => {
    const { client, peer } = await pair();
    const r = client.call('ping');
    await peer.waitMessages(2);
    peer.write('8903616263');
    await peer.waitFrames(3);
    expect(hex(peer.frames[2]!.raw)).toBe('8a00');
    peer.write(writeReply(1, null, null, '"ok"'));
    expect((await r).data).toBe('ok');
  });

  it('close from the server → hang-up without echo; the pending call is disconnected', async () => {
    const { client, peer } = await pair();
    const r = client.call('ping');
    await peer.waitMessages(2);
    const before = peer.data.length;
    const disconnect = nextEvent<[string]>(client, 'disconnect');
    peer.write(wsFrame(closePayload(1000), { opcode: OP.CLOSE }));
    expect(await r).toEqual({ data: null, error: 'disconnected', info: 'server hung up' });
    await peer.waitClosed();
    expect(peer.data.length).toBe(before);
    expect((await disconnect)[0]).toBe('peer sent close 1000');
  });

  const broken: Array<[string, string, string]> = [
    ['a frame over 1,048,500 bytes (header only) → close 1009', '827f00000000000fffb5', '880203f1'],
    ['a text frame → close 1003', '810568656c6c6f', '880203eb'],
    ['a reserved opcode → close 1002', '83027878', '880203ea'],
    ['RSV bits → close 1002', 'c2024b01', '880203ea'],
  ];
  for (const [what, bytes, closeHex] of broken) {
    it(`${what}, then hang-up`, async () => {
      const { client, peer } = await pair();
      const r = client.call('ping');
      await peer.waitMessages(2);
      const before = peer.data.length;
      peer.write(bytes);
      expect(await r).toEqual({ data: null, error: 'disconnected', info: 'server hung up' });
      await peer.waitClosed();
      expect(hex(peer.data.subarray(before))).toBe(closeHex);
      expect(client.connectionStats.protocolErrors).toBe(1);
    });
  }
});

describe('client: automatic reconnect', () => {
  function makeServer(seen: Request[]): WsapiServer {
    const s = new WsapiServer({ api: 'hello' });
    const tick = s.event('tick');
    s.verb('sub', (req) => { seen.push(req); req.subscribe(tick); return 'ok'; });
    s.verb('push', (req) => { tick.push(req.args); return null; });
    return s;
  }

  it('reconnects with backoff after the server went away, re-runs the recorded subscriptions, events flow again', async () => {
    const path = join(tempDir(cleanup, 'reco'), 'hello');
    const seen1: Request[] = [];
    const s1 = makeServer(seen1);
    await s1.listen(`unix:${path}`);
    cleanup.add(() => s1.close());

    const client = await connectedClient(path, { reconnect: { initialDelayMs: 15, maxDelayMs: 60, jitter: 0 } });
    const events: unknown[] = [];
    client.on('event', (name: string, data: unknown) => events.push([name, data]));
    const delays: number[] = [];
    client.on('reconnecting', (d: number) => delays.push(d));

    expect((await client.subscribe('sub', { n: 1 }, { session: 'sess-1' })).error).toBe(null);
    expect(seen1[0]!.session.uuid).toBe('sess-1');
    expect((await client.call('push', 'one')).error).toBe(null);
    await waitFor(() => events.length === 1);
    expect(events[0]).toEqual(['hello/tick', 'one']);

    // the server goes away: the client backs off 15, 30, 60, 60...
    const disconnected = nextEvent(client, 'disconnect');
    await s1.close();
    await disconnected;
    expect(await client.call('push', 'lost')).toMatchObject({ error: 'disconnected' });
    await waitFor(() => delays.length >= 5, 3000, 'five reconnection attempts');
    expect(delays.slice(0, 5)).toEqual([15, 30, 60, 60, 60]);

    // a new server on the same path: the client comes back and subscribes again
    const seen2: Request[] = [];
    const s2 = makeServer(seen2);
    const resubscribed = nextEvent(client, 'resubscribed', 3000);
    await s2.listen(`unix:${path}`);
    cleanup.add(() => s2.close());
    await resubscribed;
    expect(client.connected).toBe(true);
    expect(client.stats.reconnects).toBe(1);
    expect(seen2).toHaveLength(1);
    expect(seen2[0]!.args).toEqual({ n: 1 });
    expect(seen2[0]!.session.uuid).toBe('sess-1'); // S sent again on the new connection
    expect((await client.call('push', 'two')).error).toBe(null);
    await waitFor(() => events.length === 2);
    expect(events[1]).toEqual(['hello/tick', 'two']);
    expect(client.connectionStats.protocolErrors).toBe(0);
  });

  it('forgetSubscription() stops re-running a subscription; failed subscribes are not recorded', async () => {
    const path = join(tempDir(cleanup, 'reco'), 'hello');
    const seen: Request[] = [];
    const s1 = makeServer(seen);
    const conns: ServerConnection[] = [];
    s1.on('connection', (c: ServerConnection) => conns.push(c));
    await s1.listen(`unix:${path}`);
    cleanup.add(() => s1.close());
    const client = await connectedClient(path, { reconnect: { initialDelayMs: 10, maxDelayMs: 20, jitter: 0 } });
    await client.subscribe('sub', 1);
    await client.subscribe('sub', 2);
    expect((await client.subscribe('nosuchverb')).error).toBe('unknown-verb');
    client.forgetSubscription('sub', 1);
    const reconnected = nextEvent(client, 'resubscribed', 3000);
    conns[0]!.conn.hangUp('test'); // the server drops the client; the server itself stays up
    await reconnected;
    expect(seen.map((r) => r.args)).toEqual([1, 2, 2]);
  });

  it('close() stops the reconnection attempts', async () => {
    const { fake, path } = await fakeServer();
    const client = await connectedClient(path, { reconnect: { initialDelayMs: 10, maxDelayMs: 10, jitter: 0 } });
    const attempts: number[] = [];
    client.on('reconnecting', (_d: number, n: number) => attempts.push(n));
    (await fake.peer(1)).destroy();
    await fake.peer(2); // it reconnected once
    expect(attempts).toEqual([1]);
    client.close();
    await (await fake.peer(2)).waitClosed();
    await new Promise((r) => setTimeout(r, 60)); // six reconnection delays: nothing happens
    expect(fake.peers).toHaveLength(2);
    expect(attempts).toEqual([1]);
    expect(client.connected).toBe(false);
  });

  it('close() during the backoff delay cancels the pending attempt', async () => {
    const { fake, path } = await fakeServer();
    const client = await connectedClient(path, { reconnect: { initialDelayMs: 30, jitter: 0 } });
    const reconnecting = nextEvent(client, 'reconnecting');
    (await fake.peer(1)).destroy();
    await reconnecting; // the timer is armed
    client.close();
    await new Promise((r) => setTimeout(r, 80));
    expect(fake.peers).toHaveLength(1);
    expect(client.connected).toBe(false);
  });
});

describe('client ↔ server: credentials', () => {
  it('creds given to call() are forwarded in K and honoured by a trusting server; else the peer creds', async () => {
    const path = join(tempDir(cleanup, 'cred'), 'hello');
    const seen: Request[] = [];
    const s = new WsapiServer({ api: 'hello', trustForwardedCreds: 'same-uid' });
    s.verb('who', (req) => { seen.push(req); return req.creds; });
    await s.listen(`unix:${path}`);
    cleanup.add(() => s.close());
    const client = await connectedClient(path);
    const own = { uid: process.getuid!(), gid: process.getgid!(), pid: process.pid, label: 'NoLabel' };
    expect((await client.call('who')).data).toEqual(own);
    expect((await client.call('who', null, { creds: '3e8:3e8:4d2-app' })).data).toEqual({ uid: 1000, gid: 1000, pid: 1234, label: 'app' });
    expect(seen[1]!.peer).toEqual(own);
  });
});

describe('client: connect', () => {
  it('connect() twice at once, or once connected, makes a single connection', async () => {
    const { fake, path } = await fakeServer();
    const c = new WsapiClient(`unix:${path}`, { connectTimeoutMs: 1000 });
    cleanup.add(() => c.close());
    const connects: unknown[] = [];
    c.on('connect', () => connects.push(1));
    await Promise.all([c.connect(), c.connect()]);
    await c.connect();
    const peer = await fake.peer(1);
    await peer.waitFrames(1);
    await new Promise((r) => setTimeout(r, 20)); // room for a second connection that must not come
    expect(fake.peers).toHaveLength(1);
    expect(connects).toHaveLength(1);
    expect(peer.frames).toHaveLength(1); // one V
  });

  it('close() while connecting: the connection is not kept and connect() says why', async () => {
    const { fake, path } = await fakeServer();
    const c = new WsapiClient(`unix:${path}`);
    const connecting = c.connect();
    c.close();
    const err = await connecting.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe('ECANCELED');
    expect(c.connected).toBe(false);
    const peer = await fake.peer(1); // the socket did connect, and was let go at once
    await peer.waitClosed();
    expect(peer.data.length).toBe(0);
  });
});
