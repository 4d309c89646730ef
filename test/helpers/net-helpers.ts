/**
 * Test helpers for wsapi over real sockets: temp dirs, unique abstract names,
 * free ports, a raw peer that records every byte it receives (with an
 * independent RFC 6455 frame splitter, so tests do not judge the frame
 * receiver with itself), a scripted fake server, and a cleanup stack.
 */
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/* ------------------------------------------------------------- cleanup */

/** LIFO list of cleanups, run from afterEach (errors are collected, not lost). */
export class Cleanup {
  private readonly fns: Array<() => unknown> = [];
  add<T extends (() => unknown)>(fn: T): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.fns.length > 0) {
      const fn = this.fns.pop()!;
      try {
        await withTimeout(Promise.resolve(fn()), 5000, 'cleanup step');
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/* ------------------------------------------------------ names and paths */

let counter = 0;

/** A fresh temp directory, removed by `cleanup`. */
export function tempDir(cleanup: Cleanup, tag = 'wsapi'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `afb-edge-${tag}-`));
  cleanup.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An abstract socket name unique to this process and call. */
export function uniqueName(tag = 'api'): string {
  counter++;
  return `afb-edge-test-${process.pid}-${counter}-${tag}`;
}

/** A TCP port that was free a moment ago (bound to port 0, then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, () => resolve());
  });
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/* ----------------------------------------------------------- waiting */

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `cond` (every 5 ms) until it holds; fails with `what` after `ms`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms = 3000, what = 'condition', intervalMs = 5): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves with the arguments of the next `event` emitted by `emitter`. */
export function nextEvent<T extends unknown[] = unknown[]>(
  emitter: NodeJS.EventEmitter, event: string, ms = 3000,
): Promise<T> {
  return withTimeout(new Promise<T>((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args as T))), ms, `event '${event}'`);
}

/* ------------------------------------------------------------- frames */

export const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;

export interface FrameOptions {
  opcode?: number;
  fin?: boolean;
  /** RSV bits as a 3-bit value (4 = RSV1). */
  rsv?: number;
  /** A 4-byte mask key, or true for a random one. */
  mask?: Uint8Array | boolean;
  /** Announced length, when it must differ from the payload's (lying headers). */
  announce?: number;
}

/** Builds one RFC 6455 frame (big-endian lengths, minimal length form). */
export function wsFrame(payload: Uint8Array | string = new Uint8Array(0), o: FrameOptions = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'hex') : Buffer.from(payload);
  const opcode = o.opcode ?? OP.BINARY;
  const fin = o.fin ?? true;
  const len = o.announce ?? data.length;
  const key = o.mask === true ? Buffer.from([Math.random() * 256, Math.random() * 256, Math.random() * 256, Math.random() * 256])
    : o.mask instanceof Uint8Array ? Buffer.from(o.mask) : null;
  const head: number[] = [(fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  const m = key ? 0x80 : 0;
  if (len < 126) {
    head.push(m | len);
  } else if (len < 65536) {
    head.push(m | 126, len >> 8, len & 0xff);
  } else {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(len));
    head.push(m | 127, ...b);
  }
  let body = data;
  if (key) {
    head.push(...key);
    body = Buffer.from(data.map((v, i) => v ^ key[i & 3]!));
  }
  return Buffer.concat([Buffer.from(head), body]);
}

export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

export interface WireFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
  raw: Buffer;
}

/** Splits a byte stream into complete frames (unmasking), leaving the incomplete tail in `rest`. */
export function splitFrames(buf: Buffer): { frames: WireFrame[]; rest: Buffer } {
  const frames: WireFrame[] = [];
  let pos = 0;
  for (;;) {
    if (buf.length - pos < 2) break;
    const b0 = buf[pos]!;
    const b1 = buf[pos + 1]!;
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    let h = 2;
    if (len === 126) {
      if (buf.length - pos < 4) break;
      len = buf.readUInt16BE(pos + 2);
      h = 4;
    } else if (len === 127) {
      if (buf.length - pos < 10) break;
      len = Number(buf.readBigUInt64BE(pos + 2));
      h = 10;
    }
    if (masked) h += 4;
    if (buf.length - pos < h + len) break;
    let payload = Buffer.from(buf.subarray(pos + h, pos + h + len));
    if (masked) {
      const key = buf.subarray(pos + h - 4, pos + h);
      payload = Buffer.from(payload.map((v, i) => v ^ key[i & 3]!));
    }
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload, raw: Buffer.from(buf.subarray(pos, pos + h + len)) });
    pos += h + len;
  }
  return { frames, rest: buf.subarray(pos) };
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/* ------------------------------------------------------------ raw peer */

/**
 * One end of a real stream socket driven by hand: records all bytes received,
 * tells when the other side ended or the socket closed, never interprets.
 */
export class RawPeer {
  data = Buffer.alloc(0);
  ended = false;
  closed = false;
  error: NodeJS.ErrnoException | undefined;
  private readonly watchers = new Set<() => void>();

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.error = err;
      this.notify();
    });
  }

  static connect(options: net.NetConnectOpts): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect(options);
      s.once('error', reject);
      s.once('connect', () => {
        s.removeListener('error', reject);
        resolve(new RawPeer(s));
      });
    });
  }

  private notify(): void {
    for (const w of [...this.watchers]) w();
  }

  get frames(): WireFrame[] {
    return splitFrames(this.data).frames;
  }

  /** Payloads of the binary frames received so far. */
  get messages(): Buffer[] {
    return this.frames.filter((f) => f.opcode === OP.BINARY).map((f) => f.payload);
  }

  /** Waits until `cond` holds, re-checking on every byte and on end/close. */
  until(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (cond()) {
          clearTimeout(timer);
          this.watchers.delete(check);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.watchers.delete(check);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; received ${this.data.length} bytes: ${hex(this.data.subarray(0, 200))}${this.closed ? ' (closed)' : ''}`));
      }, ms);
      this.watchers.add(check);
    });
  }

  async waitFrames(n: number, ms = 3000): Promise<WireFrame[]> {
    await this.until(() => this.frames.length >= n, ms, `${n} frame(s)`);
    return this.frames;
  }

  async waitMessages(n: number, ms = 3000): Promise<Buffer[]> {
    await this.until(() => this.messages.length >= n, ms, `${n} binary message(s)`);
    return this.messages;
  }

  waitClosed(ms = 3000): Promise<void> {
    return this.until(() => this.closed, ms, 'socket close');
  }

  write(b: Uint8Array | string): void {
    this.socket.write(typeof b === 'string' ? Buffer.from(b, 'hex') : b);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/* --------------------------------------------------------- fake server */

/** A listening unix socket whose peers are RawPeers, for driving a client by hand. */
export class FakeServer {
  readonly peers: RawPeer[] = [];
  private readonly watchers = new Set<() => void>();
  private constructor(readonly server: net.Server) {
    server.on('connection', (s) => {
      this.peers.push(new RawPeer(s));
      for (const w of [...this.watchers]) w();
    });
  }

  static async listen(options: net.ListenOptions): Promise<FakeServer> {
    const srv = net.createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(options, () => resolve());
    });
    return new FakeServer(srv);
  }

  /** Waits for the `n`-th connection (1-based). */
  async peer(n = 1, ms = 3000): Promise<RawPeer> {
    if (this.peers.length < n) {
      await withTimeout(new Promise<void>((resolve) => {
        const w = (): void => {
          if (this.peers.length >= n) {
            this.watchers.delete(w);
            resolve();
          }
        };
        this.watchers.add(w);
      }), ms, `connection #${n} to the fake server`);
    }
    return this.peers[n - 1]!;
  }

  close(): Promise<void> {
    for (const p of this.peers) p.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/* ------------------------------------------------------------- socat */

/** Absolute path of socat; throws (so that tests fail, not skip) when it is missing. */
export function socatPath(): string {
  const r = spawnSync('sh', ['-c', 'command -v socat'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  if (r.status !== 0 || p === '') throw new Error('socat is required by these tests (apt-get install socat)');
  return p;
}

/** Starts a long-running socat, killed by `cleanup` (only this pid). */
export function startSocat(cleanup: Cleanup, args: string[]): ChildProcess {
  const child = spawn(socatPath(), args, { stdio: ['ignore', 'ignore', 'inherit'] });
  cleanup.add(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
  });
  return child;
}

/** Runs `socat - ADDRESS` with `input` on stdin; resolves with what it printed. */
export function socatOnce(args: string[], input: Buffer, ms = 5000): Promise<{ stdout: Buffer; stderr: string; code: number | null }> {
  return withTimeout(new Promise((resolve, reject) => {
    const child = spawn(socatPath(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.once('error', reject);
    child.once('close', (code) => resolve({ stdout: Buffer.concat(out), stderr: err, code }));
    child.stdin!.on('error', () => {}); // EPIPE when socat exits at once (connection refused)
    child.stdin!.end(input);
  }), ms, `socat ${args.join(' ')}`);
}

/* --------------------------------------------------------- /proc/net/unix */

/** Paths of the listening unix sockets, as /proc/net/unix shows them (NULs as '@'). */
export function listeningUnixPaths(): string[] {
  const lines = fs.readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1);
  const out: string[] = [];
  for (const line of lines) {
    const cols = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = __SO_ACCEPTCON (listening)
    if (cols.length >= 8 && cols[3] === '00010000') out.push(cols.slice(7).join(' '));
  }
  return out;
}

/** How /proc/net/unix shows an abstract name in each form. */
export function procAbstract(name: string, form: 'exact' | 'padded'): string {
  return form === 'exact' ? `@${name}` : `@${name}${'@'.repeat(107 - Buffer.byteLength(name))}`;
}

/* ------------------------------------------------------------ fast-check */

/**
 * Seed for fast-check: fixed, so that runs are reproducible; set FC_SEED to
 * another integer to explore (a failure prints the seed to replay it).
 */
export function fcSeed(): number {
  const s = process.env.FC_SEED;
  return s !== undefined && /^-?\d+$/.test(s) ? Number(s) : 0x5eed_2021;
}
