/**
 * The outbox's SQLite file: opened (created if needed) in WAL mode with an
 * exclusive lock, its schema created or checked. Any failure is an
 * OutboxError naming the file; the file is never deleted or rewritten here:
 * it may hold undelivered data that an operator wants to recover.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export type Synchronous = 'full' | 'normal';

export class OutboxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutboxError';
  }
}

const SCHEMA_VERSION = 1;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  route TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  bytes INTEGER NOT NULL
)`;

const ADDON = 'better-sqlite3/build/Release/better_sqlite3.node';
let addonPath: string | undefined;
/**
 * better-sqlite3's native addon, by path, where npm and the Yocto recipe
 * build it. Its default lookup (the `bindings` package) tries a dozen
 * locations, each a failed require (~60 ms of the agent's start-up in the
 * emulated arm64 guest), and cannot work from the agent's bundle
 * (scripts/bundle.mjs), which holds better-sqlite3's JS.
 */
function sqliteAddon(path: string): string {
  try {
    return (addonPath ??= createRequire(import.meta.url).resolve(ADDON));
  } catch (err) {
    throw new OutboxError(`outbox ${path}: cannot open: SQLite's addon ${ADDON} is missing (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the installation is incomplete`);
  }
}

export function openDatabase(path: string, synchronous: Synchronous): Database.Database {
  const nativeBinding = sqliteAddon(path);
  let db: Database.Database | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new Database(path, { timeout: 1000, nativeBinding });
    // One process per outbox: a second agent on the same file would send everything twice.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    // After a burst, give the WAL file back down to 16 MiB once checkpointed.
    db.pragma('journal_size_limit = 16777216');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Error(`schema version ${version} was written by a newer afb-edge (this one knows ${SCHEMA_VERSION})`);
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw new Error(`integrity check failed: ${check}`);
    db.exec(SCHEMA);
    const cols = (db.pragma('table_info(outbox)') as Array<{ name: string }>).map((c) => c.name).join(',');
    if (cols !== 'id,topic,payload,qos,retain,route,created_ms,bytes') throw new Error(`table 'outbox' has unexpected columns (${cols})`);
    // Written once, when the file is new: every write is a WAL frame on the board's flash.
    if (version !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* already failing */
    }
    const e = err as Error & { code?: string };
    const why = e.code === 'SQLITE_BUSY' ? 'it is locked by another process (another agent on the same outbox?)'
      : e.code === 'SQLITE_NOTADB' || e.code === 'SQLITE_CORRUPT' ? `it is not a valid SQLite database or is corrupt (${e.message})`
      : e.message;
    throw new OutboxError(`outbox ${path}: cannot open: ${why}. The file was left untouched; move it away to start with an empty outbox.`);
  }
}
