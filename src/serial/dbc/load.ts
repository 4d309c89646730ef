/**
 * Reading DBC files from disk: bounded in size, decoded as cp1252, parsed
 * and compiled. The config check and the link that uses a file both ask for
 * it; a small cache keyed by path, size, mtime and inode makes the second
 * ask free, and a file changed on disk (a reload after an edit) is read again.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { compileDbc, type CompiledDbc } from './codec.js';
import { decodeCp1252 } from './cp1252.js';
import { DbcSyntaxError } from './errors.js';
import { parseDbc } from './parser.js';

/** Largest DBC file read (bytes): the biggest real databases are a few MB. */
export const DBC_MAX_BYTES = 16 * 1024 * 1024;

export class DbcFileError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'DbcFileError';
  }
}

/** Parses DBC text (bytes as read: cp1252) and compiles it. Throws DbcSyntaxError. */
export function compileDbcBytes(bytes: Uint8Array, file: string): CompiledDbc & { readonly skipped: Record<string, number>; readonly warnings: string[] } {
  if (bytes.length > DBC_MAX_BYTES) throw new DbcFileError(file, `${bytes.length} bytes, larger than the ${DBC_MAX_BYTES}-byte limit for a DBC file`);
  const db = parseDbc(decodeCp1252(bytes), file);
  return Object.assign(compileDbc(db), { skipped: db.skipped, warnings: db.warnings });
}

export type LoadedDbc = ReturnType<typeof compileDbcBytes>;

interface CacheEntry {
  stamp: string;
  dbc: LoadedDbc;
}

const cache = new Map<string, CacheEntry>();
/** Files kept compiled at most (an agent uses a handful). */
const CACHE_MAX = 32;

/** Reads and compiles a DBC file. Throws DbcFileError (unreadable, too large) or DbcSyntaxError. */
export function loadDbcFile(path: string): LoadedDbc {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new DbcFileError(path, `cannot read: ${reason(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new DbcFileError(path, 'is not a regular file');
    if (st.size > DBC_MAX_BYTES) throw new DbcFileError(path, `${st.size} bytes, larger than the ${DBC_MAX_BYTES}-byte limit for a DBC file`);
    const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
    const hit = cache.get(path);
    if (hit !== undefined && hit.stamp === stamp) return hit.dbc;
    // One byte more than the limit: a file that grew since fstat is caught too.
    const buf = Buffer.allocUnsafe(Math.min(st.size, DBC_MAX_BYTES) + 1);
    let n = 0;
    for (let r = 1; r > 0 && n < buf.length; n += r) r = readSync(fd, buf, n, buf.length - n, null);
    if (n > DBC_MAX_BYTES) throw new DbcFileError(path, `larger than the ${DBC_MAX_BYTES}-byte limit for a DBC file`);
    const dbc = compileDbcBytes(buf.subarray(0, n), path);
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(path, { stamp, dbc });
    return dbc;
  } catch (err) {
    if (err instanceof DbcFileError || err instanceof DbcSyntaxError) throw err;
    throw new DbcFileError(path, `cannot read: ${reason(err)}`);
  } finally {
    closeSync(fd);
  }
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : (e.message ?? String(err));
}
