/**
 * Loads the small C addon (native/unix_socket.c) built by node-gyp at install
 * time. It is optional: without it, exact-length abstract sockets on Node 20
 * and peer credentials are unavailable, and the callers say so.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface UnixAddon {
  connectAbstract(name: string, padded: boolean): number;
  listenAbstract(name: string, padded: boolean, backlog: number): number;
  peerCredentials(fd: number): { uid: number; gid: number; pid: number };
  /** One AF_UNIX datagram to "/path" or "@abstract" (sd_notify); bytes sent. Absent from addons built before it. */
  sendDatagram?(address: string, data: Buffer): number;
}

let cached: UnixAddon | null | undefined;
let loadError = '';

/** Finds build/Release/afb_edge_unix.node in the package this module belongs to. */
function locate(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'build', 'Release', 'afb_edge_unix.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

export function unixAddon(): UnixAddon | null {
  if (cached !== undefined) return cached;
  const path = locate();
  if (path === undefined) {
    loadError = 'native addon build/Release/afb_edge_unix.node not built (run npm ci or node-gyp rebuild)';
    cached = null;
    return null;
  }
  try {
    cached = createRequire(import.meta.url)(path) as UnixAddon;
  } catch (err) {
    loadError = `native addon ${path} failed to load: ${(err as Error).message}`;
    cached = null;
  }
  return cached;
}

export function unixAddonError(): string {
  unixAddon();
  return loadError;
}
