/**
 * Property: whatever the size of a call's args around the peer's frame limit
 * (1,048,500 bytes of payload), our client never puts a larger frame on the
 * wire, the connection stays up, and every call gets exactly one reply:
 * the server's when the call fits, `too-large` when it does not.
 *
 * The peer is a raw recording server (its own RFC 6455 splitter, not our
 * frame receiver) that answers every K with a small k, so the test does not
 * judge our code with itself.
 */
import net from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME_PAYLOAD, decodeMessage, writeReply, WsapiClient } from '../../src/wsapi/index.js';
import { Cleanup, fcSeed, splitFrames, tempDir } from '../helpers/net-helpers.js';

fc.configureGlobal({ seed: fcSeed() });

const suite = new Cleanup();
afterAll(() => suite.run());

/** Payload of `K id verb 0 0 args null` for a 1-byte verb: 1 + 2 + (4+2) + 2 + 2 + (4+len+1) + 4. */
const OVERHEAD = 22;

let path = '';
/** Payload sizes of the K frames received, and the largest frame of any kind. */
const frameSizes: number[] = [];
let largestFrame = 0;
let connections = 0;
let client!: WsapiClient;
const disconnects: string[] = [];

beforeAll(async () => {
  path = join(tempDir(suite, 'prop'), 'peer');
  const server = net.createServer((s) => {
    connections++;
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const { frames, rest } = splitFrames(buf);
      buf = Buffer.from(rest);
      for (const f of frames) {
        largestFrame = Math.max(largestFrame, f.payload.length);
        const m = decodeMessage(f.payload);
        if (m.kind === 'K') frameSizes.push(f.payload.length);
        if (m.kind === 'K') s.write(writeReply(m.callId, null, null, String(m.args.length)));
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  suite.add(() => new Promise<void>((r) => server.close(() => r())));
  client = new WsapiClient(`unix:${path}`);
  client.on('disconnect', (r: string) => disconnects.push(r));
  await client.connect();
  suite.add(() => client.close());
});

describe('client: the size refusal, as a property', () => {
  it('never a frame over the limit on the wire, the connection stays, each call exactly one reply', async () => {
    const around = fc.integer({ min: -64, max: 64 }).map((d) => DEFAULT_MAX_FRAME_PAYLOAD - OVERHEAD + d);
    const anySize = fc.oneof(around, fc.integer({ min: 2, max: DEFAULT_MAX_FRAME_PAYLOAD + 4096 }));
    await fc.assert(fc.asyncProperty(fc.array(anySize, { minLength: 1, maxLength: 4 }), async (sizes) => {
      const sentBefore = frameSizes.length;
      const replies = await Promise.all(sizes.map(async (len) => {
        let count = 0;
        const reply = await client.callText('p', `"${'a'.repeat(len - 2)}"`, { timeout: 10_000 }).then((r) => { count++; return r; });
        return { len, reply, count };
      }));
      for (const { len, reply, count } of replies) {
        expect(count).toBe(1);
        const fits = len + OVERHEAD <= DEFAULT_MAX_FRAME_PAYLOAD;
        if (fits) expect(reply).toEqual({ error: null, info: null, data: len });
        else expect(reply.error).toBe('too-large');
      }
      const sentNow = frameSizes.slice(sentBefore);
      expect(sentNow.length).toBe(sizes.filter((l) => l + OVERHEAD <= DEFAULT_MAX_FRAME_PAYLOAD).length);
      expect(largestFrame).toBeLessThanOrEqual(DEFAULT_MAX_FRAME_PAYLOAD);
      expect(client.connected).toBe(true);
      expect(client.pendingCount).toBe(0);
    }), { numRuns: 25 });
    expect(disconnects).toEqual([]);
    expect(connections).toBe(1);
  }, 120_000);
});
