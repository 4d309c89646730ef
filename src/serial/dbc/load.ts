/**
 * Reading DBC files from disk: bounded in size, decoded as cp1252, parsed
 * and compiled. The config check and the link that uses a file both ask for
 * it; a small cache keyed by path, size, mtime and inode makes the second
 * ask free, and a file changed on disk (a reload after an edit) is read again.
 */
import { statSync } from 'node:fs';
import { FileReadError, readRegularFile } from '../../util/read-file.js';
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

/** Reads and compiles a DBC file. Throws DbcFileError (unreadable, not a regular file, too large) or DbcSyntaxError. */
export function loadDbcFile(path: string): LoadedDbc {
  // stat() does not block on a FIFO: the cache check needs no open
  let stamp: string | undefined;
  try {
    const st = statSync(path);
    if (st.isFile()) stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    /* reported by the read below, with its reason */
  }
  const hit = stamp === undefined ? undefined : cache.get(path);
  if (hit !== undefined && hit.stamp === stamp) return hit.dbc;
  let bytes: Buffer;
  try {
    bytes = readRegularFile(path, DBC_MAX_BYTES);
  } catch (err) {
    const e = err as FileReadError;
    if (e.reason === 'too-large') throw new DbcFileError(path, `${e.message}, larger than the ${DBC_MAX_BYTES}-byte limit for a DBC file`);
    if (e.reason === 'not-regular' || e.reason === 'is-directory') throw new DbcFileError(path, 'is not a regular file');
    throw new DbcFileError(path, `cannot read: ${e.message}`);
  }
  const dbc = compileDbcBytes(bytes, path);
  if (stamp !== undefined) {
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
    cache.set(path, { stamp, dbc });
  }
  return dbc;
}
