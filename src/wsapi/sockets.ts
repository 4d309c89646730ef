/**
 * Turns socket specs into connected sockets (client side) and listening
 * servers (server side): unix paths, abstract names in both address forms,
 * TCP, and sockets inherited from systemd.
 */
import net from 'node:net';
import { mkdirSync, unlinkSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { unixAddon, unixAddonError } from './native.js';
import type { AbstractForm, SocketSpec } from './spec.js';
import type { SocketReads } from './socket-reads.js';

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
/** Node ≥ 22 gives abstract names their exact length; Node 20 pads them to sun_path. */
const NET_ABSTRACT_IS_EXACT = NODE_MAJOR >= 22;

/** The `net` path that yields the padded form on Node ≥ 22 (NULs up to 108 bytes). */
function paddedPath(name: string): string {
  return '\0' + name + '\0'.repeat(107 - Buffer.byteLength(name));
}

export class ConnectError extends Error {
  constructor(readonly spec: string, readonly code: string, why: string) {
    super(`cannot connect to ${spec}: ${why}`);
    this.name = 'ConnectError';
  }
}

function netConnect(options: net.NetConnectOpts, spec: string, timeoutMs: number, reads?: SocketReads): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(reads ? { ...options, onread: reads.onread } : options);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectError(spec, 'ETIMEDOUT', `no connection after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ConnectError(spec, err.code ?? 'EIO', err.code ?? err.message));
    });
  });
}

/** Wraps a connected fd (from the addon or systemd) into a net.Socket. */
function socketFromFd(fd: number, reads?: SocketReads): net.Socket {
  // @types/node lists onread for net.connect only; the Socket constructor is what takes it
  // (net.connect hands it its options), for an fd too.
  const options: net.SocketConstructorOpts & { onread?: SocketReads['onread'] } = { fd, readable: true, writable: true };
  if (reads) options.onread = reads.onread;
  return new net.Socket(options);
}

async function connectAbstract(name: string, form: 'exact' | 'padded', spec: string, timeoutMs: number, reads?: SocketReads): Promise<net.Socket> {
  const viaNet = form === 'exact' ? NET_ABSTRACT_IS_EXACT : true;
  if (viaNet) {
    const path = form === 'exact' || !NET_ABSTRACT_IS_EXACT ? '\0' + name : paddedPath(name);
    return netConnect({ path }, spec, timeoutMs, reads);
  }
  const addon = unixAddon();
  if (addon === null) throw new ConnectError(spec, 'ENOTSUP', `exact-length abstract address needs ${unixAddonError()}`);
  try {
    return socketFromFd(addon.connectAbstract(name, false), reads);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConnectError(spec, e.code ?? 'EIO', e.code ?? e.message);
  }
}

/** Forms to try for `auto`: exact first (redpesk, systemd), then padded (AGL). */
function abstractForms(form: AbstractForm): Array<'exact' | 'padded'> {
  return form === 'auto' ? ['exact', 'padded'] : [form];
}

function inheritedFd(name: string): { fd: number } | undefined {
  const count = Number(process.env.LISTEN_FDS ?? '0');
  const pid = process.env.LISTEN_PID;
  if (!count || (pid !== undefined && pid !== '' && Number(pid) !== process.pid)) return undefined;
  const names = (process.env.LISTEN_FDNAMES ?? '').split(':');
  for (let i = 0; i < count; i++) {
    if (names[i] === name) return { fd: 3 + i };
  }
  return undefined;
}

export interface ConnectOptions {
  timeoutMs?: number;
  /** Read into this buffer (net's onread) instead of emitting 'data' (socket-reads.ts). */
  reads?: SocketReads;
}

/** Connects to a spec; abstract `auto` tries the exact then the padded address. */
export async function connectSpec(spec: SocketSpec, options: ConnectOptions = {}): Promise<net.Socket> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const reads = options.reads;
  switch (spec.kind) {
    case 'unix':
      return netConnect({ path: spec.path }, spec.text, timeoutMs, reads);
    case 'tcp':
      return netConnect({ host: spec.host, port: spec.port }, spec.text, timeoutMs, reads);
    case 'abstract': {
      let last: unknown;
      for (const form of abstractForms(spec.form)) {
        try {
          return await connectAbstract(spec.name, form, spec.text, timeoutMs, reads);
        } catch (err) {
          last = err;
          if (!(err instanceof ConnectError) || (err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT')) throw err;
        }
      }
      throw last;
    }
    case 'sd': {
      const inherited = inheritedFd(spec.name);
      if (inherited === undefined) throw new ConnectError(spec.text, 'ENOENT', `no socket named '${spec.name}' in LISTEN_FDNAMES`);
      return socketFromFd(inherited.fd, reads);
    }
  }
}

export interface ListenOptions {
  backlog?: number;
}

function listenServer(server: net.Server, what: net.ListenOptions | { fd: number }, spec: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(new Error(`cannot listen on ${spec}: ${err.code ?? err.message}`));
    server.once('error', onError);
    server.listen(what as net.ListenOptions, () => {
      server.removeListener('error', onError);
      resolve(server);
    });
  });
}

/** Removes a socket file left by a dead process, never a live one or another kind of file. */
async function removeStaleSocket(path: string, spec: string): Promise<void> {
  let st;
  try {
    st = statSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`cannot listen on ${spec}: ${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.connect({ path });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`cannot listen on ${spec}: another process is serving ${path}`);
  unlinkSync(path);
}

/**
 * Listens on a spec and calls `onConnection` for each peer. Abstract `auto`
 * listens on both address forms, so AGL (padded) and redpesk (exact) clients
 * both reach it. Returns the servers (close them to stop).
 */
export async function listenSpec(spec: SocketSpec, onConnection: (socket: net.Socket) => void, options: ListenOptions = {}): Promise<net.Server[]> {
  const backlog = options.backlog ?? 128;
  const make = () => net.createServer({ pauseOnConnect: false }, onConnection);
  switch (spec.kind) {
    case 'unix': {
      mkdirSync(dirname(spec.path), { recursive: true });
      await removeStaleSocket(spec.path, spec.text);
      return [await listenServer(make(), { path: spec.path, backlog }, spec.text)];
    }
    case 'tcp': {
      const host = spec.host === '*' ? undefined : spec.host;
      return [await listenServer(make(), { host, port: spec.port, backlog }, spec.text)];
    }
    case 'sd': {
      const inherited = inheritedFd(spec.name);
      if (inherited === undefined) throw new Error(`cannot listen on ${spec.text}: no socket named '${spec.name}' in LISTEN_FDNAMES (LISTEN_FDS=${process.env.LISTEN_FDS ?? 'unset'})`);
      return [await listenServer(make(), inherited, spec.text)];
    }
    case 'abstract': {
      const servers: net.Server[] = [];
      for (const form of abstractForms(spec.form)) {
        const viaNet = form === 'exact' ? NET_ABSTRACT_IS_EXACT : true;
        if (viaNet) {
          const path = form === 'exact' || !NET_ABSTRACT_IS_EXACT ? '\0' + spec.name : paddedPath(spec.name);
          servers.push(await listenServer(make(), { path, backlog }, `${spec.text} (${form})`));
        } else {
          const addon = unixAddon();
          if (addon === null) {
            if (spec.form === 'auto') continue; // padded form still served
            throw new Error(`cannot listen on ${spec.text}: exact-length abstract address needs ${unixAddonError()}`);
          }
          let fd: number;
          try {
            fd = addon.listenAbstract(spec.name, false, backlog);
          } catch (err) {
            throw new Error(`cannot listen on ${spec.text} (exact): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          }
          servers.push(await listenServer(make(), { fd }, `${spec.text} (exact)`));
        }
      }
      return servers;
    }
  }
}

/** Credentials of the process at the other end of a unix socket, when the addon is there. */
export function peerCredentials(socket: net.Socket): { uid: number; gid: number; pid: number } | undefined {
  const addon = unixAddon();
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (addon === null || typeof fd !== 'number' || fd < 0) return undefined;
  try {
    const cred = addon.peerCredentials(fd);
    // On a TCP socket Linux does not fail SO_PEERCRED but answers uid/gid -1 and
    // pid 0; like the reference (afb-cred.c refuses uid -1), that is "no credentials".
    if (cred.uid === 0xffffffff) return undefined;
    return cred;
  } catch {
    return undefined; // TCP peers have no SO_PEERCRED
  }
}
