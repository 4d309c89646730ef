/**
 * What a wsapi server holds for its peers is bounded (issue 11, item 14):
 * the number of connections, the bytes of a message being received (per
 * connection and in total), how long a half frame or half message may be
 * held, and the session / token tables a peer fills with S and T. Each
 * limit refuses with a clear reason, is counted, and leaves the other
 * connections served. Real unix sockets, raw peers.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_FRAME_PAYLOAD, decodeMessage, writeCall, writeSessionCreate, writeTokenCreate, writeVersionOffer,
  WsapiServer, type DecodeResult, type ServerOptions,
} from '../../src/wsapi/index.js';
import { Cleanup, OP, RawPeer, closePayload, hex, tempDir, waitFor, wsFrame } from '../helpers/net-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function startServer(opts: Partial<ServerOptions> = {}): Promise<{ server: WsapiServer; path: string; limits: string[] }> {
  const dir = tempDir(cleanup, 'lim');
  const path = join(dir, 'hello');
  const server = new WsapiServer({ api: 'hello', ...opts });
  server.verb('ping', (req) => ({ pong: req.args, token: req.token, session: req.session.uuid.length }));
  const limits: string[] = [];
  server.on('limit', (kind: string) => limits.push(kind));
  await server.listen(`unix:${path}`);
  cleanup.add(() => server.close());
  return { server, path, limits };
}

async function raw(path: string): Promise<RawPeer> {
  const p = await RawPeer.connect({ path });
  cleanup.add(() => p.destroy());
  return p;
}

async function replyOf(p: RawPeer, callId: number): Promise<Extract<DecodeResult, { kind: 'k' }>> {
  const find = () => p.messages.map((m) => decodeMessage(m)).find((m) => m.kind === 'k' && m.callId === callId);
  await p.until(() => find() !== undefined, 3000, `reply to ${callId}`);
  return find() as Extract<DecodeResult, { kind: 'k' }>;
}

async function stillServed(p: RawPeer, callId: number): Promise<void> {
  p.write(writeCall(callId, 'ping', 0, 0, `${callId}`, null));
  const r = await replyOf(p, callId);
  expect(r.error).toBe(null);
  expect(p.closed).toBe(false);
}

const closeFrameHex = (code: number) => hex(wsFrame(closePayload(code), { opcode: OP.CLOSE }));

describe('server: connection limit', () => {
  it('refuses (hangs up) and counts the connection beyond maxConnections; the others keep working', async () => {
    const { server, path, limits } = await startServer({ maxConnections: 2 });
    const a = await raw(path);
    const b = await raw(path);
    await waitFor(() => server.stats.connections === 2, 2000, 'two connections');
    const c = await raw(path);
    await c.waitClosed(2000);
    expect(c.data.length).toBe(0); // a plain hang-up, as a native binder's: no frame before the peer spoke
    expect(server.stats.connectionsRefused).toBe(1);
    expect(limits).toEqual(['connections']);
    await stillServed(a, 1);
    await stillServed(b, 2);
    a.destroy();
    await waitFor(() => server.stats.connections === 1, 2000, 'a gone');
    const d = await raw(path);
    await stillServed(d, 3);
  });
});

describe('server: a half frame or half message held too long', () => {
  it('closes a connection holding a half frame past partialMessageTimeoutMs (close 1008), counted', async () => {
    const { server, path, limits } = await startServer({ partialMessageTimeoutMs: 200 });
    const half = await raw(path);
    const busy = await raw(path);
    half.write(writeVersionOffer([1]));
    // A header announcing 100 bytes, and 10 of them.
    half.write(wsFrame(Buffer.alloc(100)).subarray(0, 12));
    // Meanwhile another peer keeps sending complete calls, each chunk ending mid-frame: it must not be closed.
    const t0 = Date.now();
    let id = 10;
    let tail: Buffer = Buffer.alloc(0);
    while (Date.now() - t0 < 600) {
      const k = writeCall(id++, 'ping', 0, 0, '1', null);
      busy.write(Buffer.concat([tail, k.subarray(0, 10)]));
      tail = k.subarray(10);
      await new Promise((r) => setTimeout(r, 50));
    }
    busy.write(tail);
    await half.waitClosed(2000);
    expect(hex(half.data)).toBe('82027601' + closeFrameHex(1008));
    expect(server.connectionStats.partialTimeouts).toBe(1);
    expect(limits).toContain('partial_timeout');
    await stillServed(busy, 1);
  });

  it('closes a connection holding a never-finished fragmented message, even while it sends pings', async () => {
    const { server, path } = await startServer({ partialMessageTimeoutMs: 200 });
    const p = await raw(path);
    p.write(wsFrame(Buffer.from('4b01', 'hex'), { fin: false }));
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 60));
      if (!p.closed) p.write(wsFrame(Buffer.from('hi'), { opcode: OP.PING }));
    }
    await p.waitClosed(2000);
    expect(hex(p.data).endsWith(closeFrameHex(1008))).toBe(true);
    expect(server.connectionStats.partialTimeouts).toBe(1);
  });
});

describe('server: bytes held while receiving', () => {
  it('a fragmented message is bounded by the native frame limit by default (close 1009 past 1,048,500 bytes)', async () => {
    const { server, path } = await startServer();
    const p = await raw(path);
    p.write(wsFrame(Buffer.alloc(700_000, 0x61), { fin: false }));
    p.write(wsFrame(Buffer.alloc(700_000, 0x61), { opcode: OP.CONT, fin: false }).subarray(0, 10));
    await p.waitClosed(3000);
    expect(hex(p.data)).toBe(closeFrameHex(1009));
    expect(server.connectionStats.protocolErrors).toBe(1);
  });

  it('bytes held by all connections together are bounded: the connection crossing maxBufferedBytes is closed (1009), counted', async () => {
    const { server, path, limits } = await startServer({ maxBufferedBytes: 300_000 });
    const a = await raw(path);
    const b = await raw(path);
    const c = await raw(path);
    // a and b each hold 200 kB of an unfinished 250 kB frame: b crosses the total.
    a.write(wsFrame(Buffer.alloc(250_000)).subarray(0, 200_000));
    await waitFor(() => server.connectionStats.bytesIn >= 200_000, 2000, 'a\'s bytes');
    b.write(wsFrame(Buffer.alloc(250_000)).subarray(0, 200_000));
    await b.waitClosed(3000);
    expect(hex(b.data)).toBe(closeFrameHex(1009));
    expect(server.connectionStats.bufferDisconnects).toBe(1);
    expect(limits).toContain('buffered_bytes');
    expect(a.closed).toBe(false);
    await stillServed(c, 5);
    // a finishes its frame (a K of 250 kB): it is served, and the budget is free again.
    a.destroy();
    await waitFor(() => server.bufferedBytes === 0, 2000, 'budget released');
  });

  it('a completed message releases what it held: many large calls in sequence go through', async () => {
    const { server, path } = await startServer({ maxBufferedBytes: DEFAULT_MAX_FRAME_PAYLOAD + 100_000 });
    const p = await raw(path);
    for (let i = 1; i <= 3; i++) {
      p.write(writeCall(i, 'ping', 0, 0, `"${'x'.repeat(1_000_000)}"`, null));
      expect((await replyOf(p, i)).error).toBe(null);
    }
    expect(server.bufferedBytes).toBe(0);
  });
});

describe('server: session and token tables a peer fills', () => {
  it('S and T beyond the per-connection bounds are refused (ignored, counted); calls naming them get unknown-session / no token', async () => {
    const { server, path, limits } = await startServer({ maxSessionsPerConnection: 2, maxTokensPerConnection: 2 });
    const p = await raw(path);
    for (let id = 1; id <= 3; id++) p.write(writeSessionCreate(id, `s-${id}`));
    for (let id = 1; id <= 3; id++) p.write(writeTokenCreate(id, `t-${id}`));
    p.write(writeCall(1, 'ping', 2, 2, '1', null));
    p.write(writeCall(2, 'ping', 3, 0, '1', null));
    p.write(writeCall(3, 'ping', 0, 3, '1', null));
    expect(JSON.parse((await replyOf(p, 1)).data)).toMatchObject({ token: 't-2' });
    expect((await replyOf(p, 2)).error).toBe('unknown-session');
    expect(JSON.parse((await replyOf(p, 3)).data)).toMatchObject({ token: null });
    expect(limits.filter((l) => l === 'sessions')).toHaveLength(1);
    expect(limits.filter((l) => l === 'tokens')).toHaveLength(1);
    expect(server.connectionStats.tableRefusals).toBe(2);
  });

  it('a session uuid or token longer than maxDeclaredString is refused', async () => {
    const { path, limits } = await startServer({ maxDeclaredString: 64 });
    const p = await raw(path);
    p.write(writeTokenCreate(1, 'x'.repeat(65)));
    p.write(writeSessionCreate(1, 'y'.repeat(65)));
    p.write(writeCall(1, 'ping', 0, 1, '1', null));
    p.write(writeCall(2, 'ping', 1, 0, '1', null));
    expect(JSON.parse((await replyOf(p, 1)).data)).toMatchObject({ token: null });
    expect((await replyOf(p, 2)).error).toBe('unknown-session');
    expect(limits).toEqual(['tokens', 'sessions']);
  });
});

describe('server: calls in progress a peer piles up', () => {
  it('beyond maxPendingCallsPerConnection a call gets busy at once; replied calls free their place', async () => {
    const held: Array<() => void> = [];
    const { server, path, limits } = await startServer({ maxPendingCallsPerConnection: 2 });
    server.verb('later', (req) => { held.push(() => req.reply('done')); });
    const p = await raw(path);
    for (let id = 1; id <= 3; id++) p.write(writeCall(id, 'later', 0, 0, 'null', null));
    const third = await replyOf(p, 3);
    expect(third.error).toBe('busy');
    expect(third.info).toMatch(/2 calls in progress/);
    expect(server.connectionStats.busyRefusals).toBe(1);
    expect(limits).toEqual(['pending_calls']);
    held.splice(0).forEach((f) => f());
    expect((await replyOf(p, 1)).error).toBe(null);
    await stillServed(p, 4);
  });

  it('the args kept by calls in progress are bounded for the whole server (maxPendingCallBytes)', async () => {
    const held: Array<() => void> = [];
    const { server, path } = await startServer({ maxPendingCallBytes: 250_000 });
    server.verb('later', (req) => { held.push(() => req.reply(null)); });
    const a = await raw(path);
    const b = await raw(path);
    a.write(writeCall(1, 'later', 0, 0, `"${'x'.repeat(200_000)}"`, null));
    await waitFor(() => held.length === 1, 2000, 'a\'s call in progress');
    b.write(writeCall(1, 'later', 0, 0, `"${'y'.repeat(100_000)}"`, null));
    expect((await replyOf(b, 1)).error).toBe('busy');
    await stillServed(b, 2); // small calls that answer at once still pass
    held.splice(0).forEach((f) => f());
    await replyOf(a, 1);
    expect(server.pendingCallBytes.used).toBe(0);
    b.write(writeCall(3, 'later', 0, 0, `"${'y'.repeat(100_000)}"`, null));
    await waitFor(() => held.length === 1, 2000, 'b\'s call accepted now');
    held.splice(0).forEach((f) => f());
    expect((await replyOf(b, 3)).error).toBe(null);
    b.destroy();
    a.destroy();
  });
});
