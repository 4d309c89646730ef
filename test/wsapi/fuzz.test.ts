/**
 * Random input over real sockets, to our server and to our client (through a
 * fake server): no crash, no uncaught exception, no hang (a fresh connection
 * is still served afterwards), and the behaviour wsapi-v1.md specifies:
 * garbage inside valid binary frames is ignored and the connection stays up;
 * broken framing gets its close code, then a hang-up.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeMessage, encodeMessage, writeCall, writeReply, WsapiClient, WsapiServer, type Message,
} from '../../src/wsapi/index.js';
import { Cleanup, FakeServer, OP, RawPeer, hex, splitFrames, tempDir, wsFrame, type WireFrame, fcSeed } from '../helpers/net-helpers.js';
import { splitAt } from '../helpers/chunks.js';

fc.configureGlobal({ seed: fcSeed() });

const suite = new Cleanup();
const cleanup = new Cleanup();
afterEach(() => cleanup.run());
afterAll(() => suite.run());

/* ------------------------------------------------------------ generators */

/** Bytes that, as a message payload, must be ignored or answered but never end the connection. */
function harmlessPayload(forbidden: Set<number>): fc.Arbitrary<Buffer> {
  const sample: Message[] = [
    { kind: 'K', callId: 7, verb: 'ping', sessionId: 0, tokenId: 0, args: '[1]', creds: null },
    { kind: 'K', callId: 8, verb: 'ping', sessionId: 3, tokenId: 2, args: 'x', creds: '1:2:3-l' },
    { kind: 'D', descId: 9 },
    { kind: 'S', sessionId: 1, uuid: 'u' },
    { kind: 'T', tokenId: 1, token: 't' },
    { kind: 'U', eventId: 1 },
    { kind: 'k', callId: 99, error: null, info: null, data: '1' },
    { kind: 'E', eventId: 4, name: 'a/b' },
    { kind: 'P', eventId: 4, data: 'null' },
    { kind: 'B', name: 'a/b', data: '{}', uuid: Buffer.alloc(16, 1), hop: 2 },
    { kind: 'X', callId: 1, eventId: 4 },
    { kind: 'e', eventId: 4 },
  ];
  const mutated = fc.tuple(fc.constantFrom(...sample), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat())
    .map(([m, flips, cut]) => {
      const p = Buffer.from(encodeMessage(m).subarray(2));
      for (const [at, v] of flips) if (at % p.length !== 0) p[at % p.length] = v; // keep the letter
      return cut % 3 === 0 ? p.subarray(0, 1 + (cut % p.length)) : p;
    });
  return fc.oneof(fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)), mutated)
    .filter((p) => p.length === 0 || !forbidden.has(p[0]!));
}

/** Complete messages as frames: masked or not, sometimes fragmented, sometimes with a ping inside. */
function framesOf(payload: fc.Arbitrary<Buffer>): fc.Arbitrary<{ bytes: Buffer; pings: number }> {
  return fc.tuple(payload, fc.boolean(), fc.nat({ max: 3 }), fc.boolean())
    .map(([p, mask, pieces, ping]) => {
      if (pieces <= 1 || p.length < 2) return { bytes: wsFrame(p, { mask }), pings: 0 };
      const a = Math.max(1, Math.floor(p.length / 2));
      const parts = [
        wsFrame(p.subarray(0, a), { fin: false, mask }),
        ...(ping ? [wsFrame('7a', { opcode: OP.PING, mask: !mask })] : []),
        wsFrame(p.subarray(a), { opcode: OP.CONT, mask }),
      ];
      return { bytes: Buffer.concat(parts), pings: ping ? 1 : 0 };
    });
}

/** Framing errors and the close code the reference answers them with. */
const violation: fc.Arbitrary<{ bytes: Buffer; code: number; what: string }> = fc.oneof(
  fc.uint8Array({ maxLength: 20 }).map((p) => ({ bytes: wsFrame(p, { opcode: OP.TEXT }), code: 1003, what: 'text' })),
  fc.tuple(fc.constantFrom(3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf), fc.uint8Array({ maxLength: 10 }))
    .map(([op, p]) => ({ bytes: wsFrame(p, { opcode: op }), code: 1002, what: `opcode ${op}` })),
  fc.tuple(fc.integer({ min: 1, max: 7 }), fc.uint8Array({ maxLength: 10 }))
    .map(([rsv, p]) => ({ bytes: wsFrame(p, { rsv }), code: 1002, what: `rsv ${rsv}` })),
  fc.uint8Array({ maxLength: 10 }).map((p) => ({ bytes: wsFrame(p, { opcode: OP.CONT }), code: 1002, what: 'continuation without start' })),
  fc.uint8Array({ minLength: 1, maxLength: 10 }).map((p) => ({
    bytes: Buffer.concat([wsFrame(p, { fin: false }), wsFrame(p)]), code: 1002, what: 'binary while fragmented',
  })),
  fc.tuple(fc.constantFrom(OP.PING, OP.PONG, OP.CLOSE), fc.integer({ min: 126, max: 300 }))
    .map(([op, n]) => ({ bytes: wsFrame(Buffer.alloc(n), { opcode: op }), code: 1002, what: 'control > 125' })),
  fc.constantFrom(OP.PING, OP.PONG, OP.CLOSE).map((op) => ({ bytes: wsFrame('', { opcode: op, fin: false }), code: 1002, what: 'fragmented control' })),
  fc.tuple(fc.integer({ min: 1_048_501, max: 2 ** 40 }), fc.boolean())
    .map(([n, mask]) => ({ bytes: wsFrame(Buffer.alloc(0), { announce: n, mask }).subarray(0, 10), code: 1009, what: `announces ${n}` })),
);

/** Cuts `bytes` at random places into non-empty writes (an empty stream is one empty write). */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const parts = splitAt(bytes, cuts).filter((p) => p.length > 0);
  return parts.length > 0 ? parts : [bytes];
}

/**
 * Writes the chunks one by one, letting each arrive (and be answered) before
 * the next. Stops once the other side sent a close frame or hung up: writing
 * on would get EPIPE, and Node then destroys our socket before we read what
 * the other side sent last (the close frame these tests look for).
 */
async function writeChunks(p: RawPeer, chunks: Buffer[]): Promise<void> {
  const start = p.data.length;
  const over = (): boolean => p.ended || p.closed || p.error !== undefined
    || splitFrames(p.data.subarray(start)).frames.some((f) => f.opcode === OP.CLOSE);
  for (const c of chunks) {
    if (over()) return;
    p.write(c);
    // A few turns of the event loop (both ends live in this process, a unix socket delivers at
    // once): the other end reads in the next poll phase, we read its answer in the one after.
    for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
  }
}

/* --------------------------------------------------------- output checks */

/** What our endpoint wrote must always be whole, unmasked, valid frames; a close frame comes last. */
function checkOutput(data: Buffer, sentBy: 'server' | 'client'): WireFrame[] {
  const { frames, rest } = splitFrames(data);
  expect(rest.length, `trailing partial frame ${hex(rest)}`).toBe(0);
  frames.forEach((f, i) => {
    expect(f.masked).toBe(false);
    expect(f.fin).toBe(true);
    expect(f.rsv).toBe(0);
    expect([OP.BINARY, OP.CLOSE, OP.PONG]).toContain(f.opcode);
    if (f.opcode === OP.CLOSE) {
      expect(i, 'close frame is the last one').toBe(frames.length - 1);
      expect(f.payload.length).toBe(2);
      expect([1002, 1003, 1009]).toContain(f.payload.readUInt16BE(0));
    }
    if (f.opcode === OP.PONG) expect(f.payload.length).toBe(0);
    if (f.opcode === OP.BINARY) {
      const m = decodeMessage(f.payload);
      expect(m.kind).not.toBe('malformed');
      const clientLetters = 'VKDUSsTt';
      expect(clientLetters.includes(m.kind), `${sentBy} sent '${m.kind}'`).toBe(sentBy === 'client');
    }
  });
  return frames;
}

/* ---------------------------------------------------------- our server */

describe('fuzz: our server', () => {
  let server: WsapiServer;
  let path: string;
  let handled = 0;

  beforeAll(async () => {
    path = join(tempDir(suite, 'fuzz'), 'hello');
    server = new WsapiServer({ api: 'hello' });
    server.verb('ping', (req) => { handled++; return { pong: req.args }; });
    await server.listen(`unix:${path}`);
    suite.add(() => server.close());
  });

  async function connect(): Promise<RawPeer> {
    const p = await RawPeer.connect({ path });
    cleanup.add(() => p.destroy());
    return p;
  }

  /** A fresh connection is served: the server is not stuck. */
  async function responsive(marker: string): Promise<void> {
    const p = await connect();
    p.write(writeCall(1, 'ping', 0, 0, JSON.stringify(marker), null));
    await p.until(() => p.messages.some((m) => m.includes(Buffer.from(marker))), 3000, 'a reply on a fresh connection');
    p.destroy();
  }

  it('random byte streams (raw bytes and valid frames mixed, cut anywhere): no crash, well-formed output, then still serving', async () => {
    const piece = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      framesOf(harmlessPayload(new Set())).map((f) => f.bytes),
      violation.map((v) => v.bytes),
    );
    let run = 0;
    await fc.assert(fc.asyncProperty(fc.array(piece, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), async (pieces, cuts) => {
      const p = await connect();
      await writeChunks(p, chunked(Buffer.concat(pieces), cuts));
      p.socket.end();
      await p.waitClosed(3000);
      checkOutput(p.data, 'server');
      p.destroy();
      if (++run % 10 === 0) await responsive(`alive-${run}`);
    }), { numRuns: 60 });
    await responsive('alive-end');
    await expect.poll(() => server.stats.connections, { timeout: 3000 }).toBe(0);
  });

  it('garbage inside valid binary frames is ignored: the connection stays up and keeps answering', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(framesOf(harmlessPayload(new Set([0x56]))), { maxLength: 12 }), // no 'V': a bad offer is a hang-up
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.integer({ min: 1, max: 0xffff }),
      async (frames, cuts, callId) => {
        const p = await connect();
        const pings = frames.reduce((n, f) => n + f.pings, 0);
        await writeChunks(p, chunked(Buffer.concat(frames.map((f) => f.bytes)), cuts));
        const marker = `marker-${callId}-${Math.random()}`;
        p.write(writeCall(callId, 'ping', 0, 0, JSON.stringify(marker), null));
        await p.until(() => p.messages.some((m) => m.includes(Buffer.from(marker))), 3000, 'the reply after the garbage');
        expect(p.closed).toBe(false);
        const out = checkOutput(p.data, 'server');
        expect(out.filter((f) => f.opcode === OP.CLOSE)).toEqual([]);
        expect(out.filter((f) => f.opcode === OP.PONG)).toHaveLength(pings);
        p.destroy();
      },
    ), { numRuns: 80 });
  });

  it('broken framing after valid traffic: exactly its close code, then a hang-up', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(framesOf(harmlessPayload(new Set([0x56]))), { maxLength: 5 }),
      violation,
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.uint8Array({ maxLength: 30 }),
      async (before, bad, cuts, after) => {
        const p = await connect();
        const bytes = Buffer.concat([...before.map((f) => f.bytes), bad.bytes, after]);
        await writeChunks(p, chunked(bytes, cuts));
        await p.waitClosed(3000);
        const out = checkOutput(p.data, 'server');
        const last = out.at(-1);
        expect(last?.opcode, bad.what).toBe(OP.CLOSE);
        expect(hex(last!.raw), bad.what).toBe('8802' + bad.code.toString(16).padStart(4, '0'));
      },
    ), { numRuns: 80 });
    await responsive('after-violations');
  });

  it('truncated frames then EOF: the connection is closed and forgotten, nothing hangs', async () => {
    await expect.poll(() => server.stats.connections, { timeout: 3000 }).toBe(0); // earlier tests' connections are gone
    await fc.assert(fc.asyncProperty(
      fc.array(framesOf(harmlessPayload(new Set([0x56]))), { maxLength: 4 }),
      framesOf(harmlessPayload(new Set([0x56]))),
      fc.nat(),
      async (before, last, cut) => {
        const p = await connect();
        const tail = last.bytes.subarray(0, cut % last.bytes.length);
        p.write(Buffer.concat([...before.map((f) => f.bytes), tail]));
        p.socket.end();
        await p.waitClosed(3000);
        const out = checkOutput(p.data, 'server');
        expect(out.filter((f) => f.opcode === OP.CLOSE)).toEqual([]);
      },
    ), { numRuns: 50 });
    await expect.poll(() => server.stats.connections, { timeout: 3000 }).toBe(0);
    await responsive('after-truncation');
    expect(handled).toBeGreaterThan(0);
  });
});

/* ---------------------------------------------------------- our client */

describe('fuzz: our client (through a fake server)', () => {
  let fake: FakeServer;
  let path: string;

  beforeAll(async () => {
    path = join(tempDir(suite, 'fuzz'), 'fake');
    fake = await FakeServer.listen({ path });
    suite.add(() => fake.close());
  });

  /** A connected client with one call pending, and the fake's end of its connection. */
  async function clientWithCall(): Promise<{ client: WsapiClient; peer: RawPeer; reply: Promise<unknown> }> {
    const n = fake.peers.length + 1;
    const client = new WsapiClient(`unix:${path}`);
    cleanup.add(() => client.close());
    await client.connect();
    const peer = await fake.peer(n);
    const reply = client.call('ping', 'q');
    await peer.waitMessages(2);
    return { client, peer, reply };
  }

  async function clientStillWorks(): Promise<void> {
    const { peer, reply } = await clientWithCall();
    peer.write(writeReply(1, null, null, '"fine"'));
    expect(await reply).toEqual({ data: 'fine', error: null, info: null });
    peer.destroy();
  }

  it('random byte streams from the server: no crash, the pending call completes, a new connection works', async () => {
    const piece = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      framesOf(harmlessPayload(new Set())).map((f) => f.bytes),
      violation.map((v) => v.bytes),
    );
    await fc.assert(fc.asyncProperty(fc.array(piece, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), async (pieces, cuts) => {
      const { client, peer, reply } = await clientWithCall();
      const before = peer.data.length;
      await writeChunks(peer, chunked(Buffer.concat(pieces), cuts));
      peer.socket.end();
      const r = (await reply) as { error: string | null };
      expect(typeof r === 'object' && r !== null && 'error' in r).toBe(true);
      await peer.waitClosed(3000);
      await expect.poll(() => client.connected, { timeout: 3000 }).toBe(false);
      checkOutput(peer.data.subarray(before), 'client');
      client.close();
    }), { numRuns: 50 });
    await clientStillWorks();
  });

  it('garbage inside valid binary frames is ignored: the client stays connected and the real reply resolves the call', async () => {
    await fc.assert(fc.asyncProperty(
      // no 'v' (a version we do not speak is a hang-up), no 'k' or 'd' (they could answer the pending call)
      fc.array(framesOf(harmlessPayload(new Set([0x76, 0x6b, 0x64]))), { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      async (frames, cuts) => {
        const { client, peer, reply } = await clientWithCall();
        const pings = frames.reduce((n, f) => n + f.pings, 0);
        const before = peer.data.length;
        await writeChunks(peer, chunked(Buffer.concat(frames.map((f) => f.bytes)), cuts));
        peer.write(writeReply(1, null, 'real', '"the reply"'));
        expect(await reply).toEqual({ data: 'the reply', error: null, info: 'real' });
        expect(client.connected).toBe(true);
        await peer.until(() => splitFrames(peer.data.subarray(before)).frames.filter((f) => f.opcode === OP.PONG).length >= pings);
        const out = checkOutput(peer.data.subarray(before), 'client');
        expect(out.filter((f) => f.opcode === OP.CLOSE)).toEqual([]);
        expect(out.filter((f) => f.opcode === OP.PONG)).toHaveLength(pings);
        client.close();
      },
    ), { numRuns: 60 });
  });

  it('broken framing from the server: the client sends its close code and hangs up; the call is disconnected', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(framesOf(harmlessPayload(new Set([0x76, 0x6b, 0x64]))), { maxLength: 5 }),
      violation,
      fc.array(fc.nat(), { maxLength: 8 }),
      async (before, bad, cuts) => {
        const { client, peer, reply } = await clientWithCall();
        const start = peer.data.length;
        await writeChunks(peer, chunked(Buffer.concat([...before.map((f) => f.bytes), bad.bytes]), cuts));
        expect(await reply).toEqual({ data: null, error: 'disconnected', info: 'server hung up' });
        await peer.waitClosed(3000);
        const out = checkOutput(peer.data.subarray(start), 'client');
        expect(hex(out.at(-1)!.raw), bad.what).toBe('8802' + bad.code.toString(16).padStart(4, '0'));
        expect(client.connected).toBe(false);
      },
    ), { numRuns: 60 });
    await clientStillWorks();
  });
});
