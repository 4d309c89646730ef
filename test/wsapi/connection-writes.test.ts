/**
 * How a WsapiConnection hands its frames to the socket: the frames queued in
 * one tick leave in one stream write (joined when small, corked when the
 * batch is over 64 KiB), in order, and what the peer reads is exactly the
 * frames. Real unix sockets; the socket's write() is only observed.
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { WsapiConnection } from '../../src/wsapi/connection.js';
import { writeCall } from '../../src/wsapi/codec.js';

let dir: string;
let server: net.Server;
let peer: net.Socket;
let local: net.Socket;
let received: Buffer[];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'afb-edge-conn-writes-'));
  const path = join(dir, 'sock');
  received = [];
  const accepted = new Promise<net.Socket>((resolve) => {
    server = net.createServer((s) => {
      s.on('data', (d: Buffer) => received.push(d));
      resolve(s);
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  local = net.connect(path);
  await new Promise((r) => local.once('connect', r));
  peer = await accepted;
});

afterEach(async () => {
  local.destroy();
  peer.destroy();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** Counts the stream writes and corks of `socket`, calling through to them. */
function observe(socket: net.Socket): { writes: number; corks: number } {
  const seen = { writes: 0, corks: 0 };
  const write = socket.write.bind(socket);
  const cork = socket.cork.bind(socket);
  socket.write = ((...args: Parameters<net.Socket['write']>) => {
    seen.writes++;
    return write(...args);
  }) as net.Socket['write'];
  socket.cork = () => {
    seen.corks++;
    cork();
  };
  return seen;
}

const arrived = async (bytes: number): Promise<Buffer> => {
  for (let i = 0; i < 200 && received.reduce((n, b) => n + b.length, 0) < bytes; i++) await new Promise((r) => setTimeout(r, 5));
  return Buffer.concat(received);
};

it('writes the small frames of one tick as one buffer, in order, and each tick apart', async () => {
  const conn = new WsapiConnection(local);
  const seen = observe(local);
  const frames = Array.from({ length: 10 }, (_, i) => writeCall(i + 1, 'ping', 0, 0, `{"i":${i}}`, null));
  for (const f of frames) expect(conn.send(f)).toBe(true);
  expect(seen.writes).toBe(0); // queued until the end of the tick
  await new Promise((r) => process.nextTick(r));
  expect(seen).toEqual({ writes: 1, corks: 0 });
  const one = writeCall(11, 'ping', 0, 0, 'true', null);
  conn.send(one);
  await new Promise((r) => setImmediate(r));
  expect(seen.writes).toBe(2);
  expect((await arrived(Buffer.concat([...frames, one]).length)).equals(Buffer.concat([...frames, one]))).toBe(true);
  expect(conn.stats.messagesOut).toBe(11);
});

it('corks a batch over 64 KiB instead of copying it, frames in order', async () => {
  const conn = new WsapiConnection(local);
  const seen = observe(local);
  const frames = Array.from({ length: 5 }, (_, i) => writeCall(i + 1, 'put', 0, 0, JSON.stringify('x'.repeat(20_000 + i)), null));
  for (const f of frames) conn.send(f);
  await new Promise((r) => process.nextTick(r));
  expect(seen).toEqual({ writes: 5, corks: 1 });
  const all = Buffer.concat(frames);
  expect((await arrived(all.length)).equals(all)).toBe(true);
});

it('hands what the tick queued to the socket before hanging up', async () => {
  const conn = new WsapiConnection(local);
  const frame = writeCall(1, 'ping', 0, 0, 'true', null);
  conn.send(frame);
  conn.hangUp('test');
  expect(conn.send(frame)).toBe(false);
  expect((await arrived(frame.length)).equals(frame)).toBe(true);
});
