/**
 * Messages larger than the peer accepts (issue 11, item 3, and its siblings).
 *
 * A native binder refuses any frame whose payload exceeds 1,048,500 bytes
 * with close 1009 and hangs up (../shared/wsapi-vectors/15-too-large.txt,
 * 16 f-too-large): every call and subscription of that connection is lost.
 * The limit is not negotiated, so our client and server refuse locally what
 * the peer would refuse, and keep the connection: a call gets the error
 * `too-large`, a reply too large for the peer is replaced by a `too-large`
 * error reply, an event or broadcast too large is not sent (counted), a
 * description too large is answered `null`. Checked over real unix sockets
 * against our server (which enforces the native receive limit) and against a
 * raw recording peer.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_FRAME_PAYLOAD, decodeMessage, writeDescribe, writeCall, writeVersionOffer, WsapiClient, WsapiServer,
  type ServerOptions, type ClientOptions,
} from '../../src/wsapi/index.js';
import { BinderSource } from '../../src/sources/binder/binder-source.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { silentLogger } from '../../src/util/log.js';
import { Cleanup, RawPeer, tempDir, waitFor } from '../helpers/net-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Payload of `K id "ping" 0 0 args null`: 1 + 2 + (4+5) + 2 + 2 + (4+len+1) + 4 = 25 + len. */
const PING_CALL_OVERHEAD = 25;
const LARGEST_PING_ARGS = DEFAULT_MAX_FRAME_PAYLOAD - PING_CALL_OVERHEAD;

async function startServer(opts: Partial<ServerOptions> = {}, setup?: (s: WsapiServer) => void): Promise<{ server: WsapiServer; spec: string }> {
  const dir = tempDir(cleanup, 'big');
  const path = join(dir, 'hello');
  const server = new WsapiServer({ api: 'hello', ...opts });
  server.verb('ping', (req) => ({ len: req.argsText.length }));
  setup?.(server);
  await server.listen(`unix:${path}`);
  cleanup.add(() => server.close());
  return { server, spec: `unix:${path}` };
}

async function connectClient(spec: string, opts: ClientOptions = {}): Promise<{ client: WsapiClient; disconnects: string[]; limits: string[] }> {
  const client = new WsapiClient(spec, opts);
  const disconnects: string[] = [];
  const limits: string[] = [];
  client.on('disconnect', (r: string) => disconnects.push(r));
  client.on('limit', (kind: string) => limits.push(kind));
  await client.connect();
  cleanup.add(() => client.close());
  return { client, disconnects, limits };
}

/** A JSON string value whose text is exactly `len` bytes long. */
const jsonOfLength = (len: number): string => `"${'a'.repeat(len - 2)}"`;

describe('client: a call too large for the peer is refused locally', () => {
  it('a 1 MB args call gets too-large, the connection and the event flow stay up (old: close 1009, every call lost)', async () => {
    const { server, spec } = await startServer({}, (s) => {
      const tick = s.event('tick');
      s.verb('sub', (req) => { req.subscribe(tick); req.reply(null); });
      const timer = setInterval(() => tick.push({ t: Date.now() }), 10);
      cleanup.add(() => clearInterval(timer));
    });
    const { client, disconnects, limits } = await connectClient(spec);
    const events: number[] = [];
    client.on('event', () => events.push(Date.now()));
    expect((await client.call('sub')).error).toBe(null);
    await waitFor(() => events.length >= 3, 2000, 'events before the big call');

    const big = jsonOfLength(LARGEST_PING_ARGS + 1);
    const reply = await client.callText('ping', big, { timeout: 5000 });
    expect(reply.error).toBe('too-large');
    expect(reply.info).toMatch(/1048501 bytes.*1048500/);
    expect(client.connected).toBe(true);
    expect(client.stats.tooLarge).toBe(1);
    expect(limits).toEqual(['peer_frame']);

    const before = events.length;
    await waitFor(() => events.length >= before + 5, 2000, 'events after the big call');
    expect(disconnects).toEqual([]);
    expect(server.connectionStats.protocolErrors).toBe(0);
    expect(server.stats.connectionsTotal).toBe(1);
    expect((await client.call('ping', 1)).error).toBe(null);
  });

  it('exactly at the limit the call goes through (the native binder accepts 1,048,500: 15-too-large conn 1)', async () => {
    const { server, spec } = await startServer();
    const { client, disconnects } = await connectClient(spec);
    const reply = await client.callText('ping', jsonOfLength(LARGEST_PING_ARGS), { timeout: 5000 });
    expect(reply.error).toBe(null);
    expect(reply.data).toEqual({ len: LARGEST_PING_ARGS });
    expect(disconnects).toEqual([]);
    expect(server.connectionStats.protocolErrors).toBe(0);
  });

  it('the peer limit is an option of the client', async () => {
    const { spec } = await startServer();
    const { client } = await connectClient(spec, { peerMaxFramePayload: 1000 });
    expect((await client.callText('ping', jsonOfLength(1000 - PING_CALL_OVERHEAD))).error).toBe(null);
    const r = await client.callText('ping', jsonOfLength(1001 - PING_CALL_OVERHEAD));
    expect(r.error).toBe('too-large');
    expect(client.connected).toBe(true);
  });

  it('a session uuid or token too large is refused before its S/T is sent; the connection stays', async () => {
    const { server, spec } = await startServer();
    const { client, disconnects } = await connectClient(spec);
    const huge = 'x'.repeat(DEFAULT_MAX_FRAME_PAYLOAD);
    expect((await client.call('ping', 1, { token: huge })).error).toBe('too-large');
    expect((await client.call('ping', 1, { session: huge })).error).toBe('too-large');
    expect((await client.call('ping', 1, { token: 'small' })).error).toBe(null);
    expect(disconnects).toEqual([]);
    expect(server.connectionStats.protocolErrors).toBe(0);
    expect(client.stats.tooLarge).toBe(2);
  });
});

describe('server: what is too large for the peer is not sent', () => {
  it('a reply too large for the peer becomes a too-large error reply, counted; the connection stays', async () => {
    const { server, spec } = await startServer({}, (s) => s.verb('big', () => 'b'.repeat(1_200_000)));
    const limits: string[] = [];
    server.on('limit', (kind: string) => limits.push(kind));
    const { client, disconnects } = await connectClient(spec);
    const r = await client.call('big', null, { timeout: 5000 });
    expect(r.error).toBe('too-large');
    expect(r.info).toMatch(/reply of \d+ bytes.*1048500/);
    expect(client.connected).toBe(true);
    expect(client.connectionStats.protocolErrors).toBe(0);
    expect(server.connectionStats.tooLargeRefused).toBe(1);
    expect(limits).toEqual(['peer_frame']);
    expect((await client.call('ping', 2)).error).toBe(null);
    expect(disconnects).toEqual([]);
  });

  it('the error reply is a well-formed k for the same call id (raw peer)', async () => {
    const { spec } = await startServer({}, (s) => s.verb('big', () => 'b'.repeat(1_200_000)));
    const p = await RawPeer.connect({ path: spec.slice('unix:'.length) });
    cleanup.add(() => p.destroy());
    p.write(writeVersionOffer([1]));
    p.write(writeCall(7, 'big', 0, 0, 'null', null));
    await p.waitMessages(2);
    const k = decodeMessage(p.messages[1]!);
    expect(k).toMatchObject({ kind: 'k', callId: 7, error: 'too-large', data: 'null' });
    for (const f of p.frames) expect(f.payload.length).toBeLessThanOrEqual(DEFAULT_MAX_FRAME_PAYLOAD);
  });

  it('a push or broadcast too large is not sent and counted; smaller ones go on', async () => {
    let ev!: ReturnType<WsapiServer['event']>;
    const { server, spec } = await startServer({}, (s) => {
      ev = s.event('ev');
      s.verb('sub', (req) => { req.subscribe(ev); req.reply(null); });
    });
    const { client, disconnects } = await connectClient(spec);
    const got: unknown[] = [];
    client.on('event', (_n: string, d: unknown) => got.push(typeof d === 'string' ? `len ${d.length}` : d));
    await client.call('sub');
    expect(ev.push('p'.repeat(1_100_000))).toBe(0);
    expect(server.broadcast('bc', 'q'.repeat(1_100_000))).toBe(false);
    expect(ev.push({ small: 1 })).toBe(1);
    await waitFor(() => got.length >= 1, 2000, 'the small push');
    expect(got).toEqual([{ small: 1 }]);
    expect(server.connectionStats.tooLargeRefused).toBe(2);
    expect(disconnects).toEqual([]);
  });

  it('a description too large is answered null (the reference\'s "no description"), counted', async () => {
    const { server, spec } = await startServer({ description: { blob: 'd'.repeat(1_100_000) } });
    const p = await RawPeer.connect({ path: spec.slice('unix:'.length) });
    cleanup.add(() => p.destroy());
    p.write(writeDescribe(3));
    await p.waitMessages(1);
    expect(decodeMessage(p.messages[0]!)).toEqual({ kind: 'd', descId: 3, description: 'null', layout: 16 });
    expect(server.connectionStats.tooLargeRefused).toBe(1);
    expect(p.closed).toBe(false);
  });

  it('the peer limit is an option of the server', async () => {
    const { spec } = await startServer({ peerMaxFramePayload: 500 }, (s) => s.verb('big', () => 'b'.repeat(600)));
    const { client } = await connectClient(spec);
    expect((await client.call('big')).error).toBe('too-large');
    expect((await client.call('ping')).error).toBe(null);
  });
});

describe('BinderSource: a remote command with a 1 MB args (issue 11 item 3)', () => {
  it('gets too-large, counted in afb_edge_wsapi_limited_total; the binder connection stays', async () => {
    const { server, spec } = await startServer();
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const src = new BinderSource({
      name: 'vehicle', spec, subscribe: [], reconnect: { initial_delay_ms: 50, max_delay_ms: 200 }, call_timeout_ms: 5000,
    }, { metrics, logger: silentLogger, onEvent: () => {} });
    const downs: string[] = [];
    src.on('down', (r: string) => downs.push(r));
    src.start();
    cleanup.add(() => src.stop());
    await waitFor(() => src.connected, 3000, 'binder connected');
    const reply = await src.call('ping', JSON.stringify({ blob: 'z'.repeat(1_048_576) }));
    expect(reply.error).toBe('too-large');
    expect(src.connected).toBe(true);
    expect(downs).toEqual([]);
    expect(server.connectionStats.protocolErrors).toBe(0);
    expect((await src.call('ping', '1')).error).toBe(null);
    const text = await metrics.text();
    expect(text).toMatch(/afb_edge_wsapi_limited_total\{endpoint="binder vehicle",limit="peer_frame"\} 1/);
  });
});

describe('client: the event table a server fills with E', () => {
  it('an E beyond maxEventTableBytes is ignored and counted; a P for it is answered U; the others still arrive', async () => {
    const { FakeServer } = await import('../helpers/net-helpers.js');
    const { writeEventCreate, writeEventPush, writeReply } = await import('../../src/wsapi/index.js');
    const dir = tempDir(cleanup, 'evt');
    const fake = await FakeServer.listen({ path: join(dir, 'f') });
    cleanup.add(() => fake.close());
    const { client, disconnects, limits } = await connectClient(`unix:${join(dir, 'f')}`, { maxEventTableBytes: 100 });
    const got: string[] = [];
    client.on('event', (name: string) => got.push(name));
    const peer = await fake.peer(1);
    peer.write(writeEventCreate(1, 'f/' + 'a'.repeat(60)));
    peer.write(writeEventCreate(2, 'f/' + 'b'.repeat(60)));
    peer.write(writeEventPush(1, '1'));
    peer.write(writeEventPush(2, '2'));
    peer.write(writeReply(99, null, null, 'null')); // a marker: all before it was handled
    await waitFor(() => client.stats.strayReplies === 1, 2000, 'the marker');
    expect(got).toEqual(['f/' + 'a'.repeat(60)]);
    expect(client.connectionStats.eventTableRefusals).toBe(1);
    expect(limits).toEqual(['events']);
    await peer.until(() => peer.messages.some((m) => m[0] === 0x55 && m.readUInt16LE(1) === 2), 2000, 'U 2');
    expect(disconnects).toEqual([]);
  });
});
