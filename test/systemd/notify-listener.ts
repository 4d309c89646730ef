/**
 * A real sd_notify receiver for tests and the startup bench: a python3
 * process bound to an AF_UNIX datagram socket, the way systemd binds its
 * notify socket (a path, or an abstract name of exact length), with
 * SO_PASSCRED so that each datagram comes with the sender's pid, which is
 * what systemd checks for NotifyAccess=main. It prints one JSON line per
 * datagram with the receive time on CLOCK_MONOTONIC (time.monotonic_ns,
 * the clock of process.hrtime and of MONOTONIC_USEC).
 *
 * python3 rather than our own addon on the receiving side: the sender is
 * what is under test, so it is judged by an independent implementation.
 * Modes: 'read' (default); 'stall' binds and never reads (the queue fills:
 * the sender must not block); 'padded' binds the abstract name padded with
 * NULs to the whole sun_path (the AGL form), which an exact-length sender
 * must NOT reach.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The system's python3 (CI installs it with apt); a PATH shim such as pyenv's costs seconds per start. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

const SCRIPT = String.raw`
import json, os, socket, struct, sys, time
addr, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
if addr.startswith('@'):
    name = b'\0' + addr[1:].encode()
    if mode == 'padded':
        name = name + b'\0' * (108 - len(name))
    s.bind(name)
else:
    # bound from its directory: python refuses a full 108-byte path, which the kernel
    # (and the sender under test) accept
    os.chdir(os.path.dirname(addr))
    s.bind(os.path.basename(addr).encode())
print(json.dumps({'listening': addr}), flush=True)
if mode == 'stall':
    sys.stdin.read()
    sys.exit(0)
ucred = struct.calcsize('iII')
while True:
    data, anc, flags, _ = s.recvmsg(65536, socket.CMSG_SPACE(ucred))
    t = time.monotonic_ns()
    pid = None
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', cdata[:ucred])[0]
    print(json.dumps({'t': t, 'pid': pid, 'data': data.decode('utf-8', 'replace')}), flush=True)
`;

export interface Datagram {
  /** Receive time, CLOCK_MONOTONIC nanoseconds. */
  t: bigint;
  /** Sender pid from SCM_CREDENTIALS. */
  pid: number | null;
  data: string;
  /** The datagram's assignments, in order (a key sent twice keeps the last value). */
  fields: Record<string, string>;
}

export class NotifyListener {
  readonly messages: Datagram[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private stderr = '';
  private waiters: Array<() => void> = [];

  private constructor(readonly address: string, mode: 'read' | 'stall' | 'padded') {
    this.child = spawn(PYTHON, ['-c', SCRIPT, address, mode], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
  }

  /** Starts a listener and resolves once it is bound. */
  static async start(address: string, mode: 'read' | 'stall' | 'padded' = 'read'): Promise<NotifyListener> {
    const l = new NotifyListener(address, mode);
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      let bound = false;
      const timer = setTimeout(() => reject(new Error(`notify listener on ${address} not bound within 15 s: ${l.stderr}`)), 15_000);
      l.child.once('exit', (code) => { if (!bound) { clearTimeout(timer); reject(new Error(`notify listener exited (${code}): ${l.stderr}`)); } });
      l.child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          // BigInt for t: nanoseconds since boot do not fit a double exactly.
          const obj = JSON.parse(line.replace(/"t": (\d+)/, '"t": "$1"')) as { listening?: string; t?: string; pid?: number | null; data?: string };
          if (obj.listening !== undefined) {
            bound = true;
            clearTimeout(timer);
            resolve();
            continue;
          }
          l.messages.push({ t: BigInt(obj.t!), pid: obj.pid ?? null, data: obj.data!, fields: parseFields(obj.data!) });
          for (const w of l.waiters.splice(0)) w();
        }
      });
    });
    return l;
  }

  /** Datagrams that carry `key` (with `value`, when given). */
  with(key: string, value?: string): Datagram[] {
    return this.messages.filter((m) => key in m.fields && (value === undefined || m.fields[key] === value));
  }

  /** Resolves with the first datagram (from index `from` on) matching `pred`. */
  async next(pred: (m: Datagram) => boolean, timeoutMs = 5000, from = 0): Promise<Datagram> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(pred);
      if (found) return found;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no matching datagram on ${this.address} within ${timeoutMs} ms; got: ${JSON.stringify(this.messages.map((m) => m.data))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
  }

  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export function parseFields(data: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of data.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** CLOCK_MONOTONIC now, in nanoseconds (libuv's uv_hrtime). */
export const monotonicNs = (): bigint => process.hrtime.bigint();
