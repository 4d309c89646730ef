/**
 * The outbox's SQLite file: opened (created if needed) in WAL mode with an
 * exclusive lock, its schema created, checked or upgraded. Any failure is
 * an OutboxError naming the file and saying what kind of failure it is; the
 * file is never deleted or rewritten here (outbox-recovery.ts decides what
 * to do with a corrupt one).
 *
 * Schema version 3 (older files are upgraded in place):
 * - `outbox`: one row per message; `crc` is the row checksum of
 *   row-check.ts (NULL in rows written by version 1);
 * - `outbox_dead`: rows that failed the check when read back, with the
 *   reason (dead-letter table, bounded: see outbox.ts);
 * - `outbox_ids`: one row, the highest message id reserved (version 3).
 *
 * Why version 3 changed what each commit writes: SQLite appends every page
 * a transaction changed to the WAL, whole, and at a steady rate each
 * message is a commit of its own. Version 2 made that two 4 KiB pages per
 * message (the table's last leaf, and sqlite_sequence for AUTOINCREMENT):
 * ~8 KiB of WAL for a 150-byte event, so a 64 MiB outbox checkpointed
 * every ~500 messages, two fsyncs on the event loop each (the p99 latency
 * at 1,000 events/s, bench/bridge.ts), and the flash took all of it.
 * Version 3 files are created with 1 KiB pages and no AUTOINCREMENT: ids
 * still only grow, from `outbox_ids`, which the outbox moves ID_BLOCK ids
 * ahead at a time (outbox.ts), so a commit writes one 1 KiB page. A page
 * size is fixed once a WAL database exists: older files keep theirs; their
 * table loses AUTOINCREMENT at the first start that finds it empty.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

export type Synchronous = 'full' | 'normal';

/**
 * - corrupt: not a database, or one SQLite reports damaged (the only kind
 *   the outbox recovers from by moving the file aside);
 * - locked: another process holds it (another agent: never moved);
 * - newer: written by a newer afb-edge (a downgrade: never moved);
 * - foreign: a valid database that is not an outbox (a wrong path);
 * - other: I/O, permissions, the addon missing...
 */
export type OutboxErrorKind = 'corrupt' | 'locked' | 'newer' | 'foreign' | 'other';

export class OutboxError extends Error {
  constructor(message: string, readonly kind: OutboxErrorKind = 'other') {
    super(message);
    this.name = 'OutboxError';
  }
}

const SCHEMA_VERSION = 3;
/** The page size of a new file (see the file comment). */
export const NEW_FILE_PAGE_SIZE = 1024;
const COLUMNS = 'id,topic,payload,qos,retain,route,created_ms,bytes,crc';
const OUTBOX_TABLE = `
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  route TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  crc INTEGER
)`;
const SCHEMA = `
${OUTBOX_TABLE.replace('CREATE TABLE', 'CREATE TABLE IF NOT EXISTS')};
CREATE TABLE IF NOT EXISTS outbox_ids (reserved INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox_dead (
  id INTEGER PRIMARY KEY,
  topic, payload, qos, retain, route, created_ms, bytes, crc,
  reason TEXT NOT NULL,
  dead_ms INTEGER NOT NULL
)`;
const UPGRADE_1_TO_2 = 'ALTER TABLE outbox ADD COLUMN crc INTEGER';

/** SQLite result codes that mean the file's content is damaged (not a lock, not an I/O or permission problem). */
export function isCorruption(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB' || code === 'SQLITE_IOERR_SHORT_READ');
}

class CorruptFile extends Error {}

const ADDON = 'better-sqlite3/build/Release/better_sqlite3.node';
let addonPath: string | undefined;
/**
 * better-sqlite3's native addon, by path, where npm and the Yocto recipe
 * build it. Its default lookup (the `bindings` package) tries a dozen
 * locations, each a failed require (~60 ms of the agent's start-up in the
 * emulated arm64 guest), and cannot work from the agent's bundle
 * (scripts/bundle.mjs), which holds better-sqlite3's JS.
 */
export function sqliteAddon(path: string): string {
  try {
    return (addonPath ??= createRequire(import.meta.url).resolve(ADDON));
  } catch (err) {
    throw new OutboxError(`outbox ${path}: cannot open: SQLite's addon ${ADDON} is missing (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the installation is incomplete`, 'other');
  }
}

/** Opens the database at `path` (see the file comment); `nativeBinding` is resolved here. */
export function openDatabase(path: string, synchronous: Synchronous): Database.Database {
  const nativeBinding = sqliteAddon(path);
  let db: Database.Database | undefined;
  let kind: OutboxErrorKind = 'other';
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new Database(path, { timeout: 1000, nativeBinding });
    // One process per outbox: a second agent on the same file would send everything twice.
    // (Exclusive locking also keeps the WAL index in process memory: no -shm file.)
    db.pragma('locking_mode = EXCLUSIVE');
    // Only a new file takes it (before its first write, which the WAL mode is); a file's own stays.
    db.pragma(`page_size = ${NEW_FILE_PAGE_SIZE}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      kind = 'newer';
      throw new Error(`schema version ${version} was written by a newer afb-edge (this one knows ${SCHEMA_VERSION})`);
    }
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw new CorruptFile(`integrity check failed: ${check}`);
    const hadOutbox = tableColumns(db, 'outbox') !== '';
    if (version < 2 && hadOutbox && !tableColumns(db, 'outbox').endsWith(',crc')) {
      // Version 1: one ALTER (rows keep crc NULL: checked for structure only) and the dead-letter table.
      db.transaction(() => {
        db!.exec(UPGRADE_1_TO_2);
        db!.exec(SCHEMA);
      })();
    } else {
      db.exec(SCHEMA);
    }
    const cols = tableColumns(db, 'outbox');
    if (cols !== COLUMNS) {
      // A file this agent wrote (its version number says so) whose schema text changed is damaged;
      // without the number it is another application's database at the outbox's path.
      if (version >= 1) throw new CorruptFile(`its schema is damaged: table 'outbox' has unexpected columns (${cols})`);
      kind = 'foreign';
      throw new Error(`table 'outbox' has unexpected columns (${cols})`);
    }
    keepIdsGrowing(db);
    // Written once, when the file is new or upgraded: every write is a WAL frame on the board's flash.
    if (version !== SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      /* already failing */
    }
    const e = err as Error & { code?: string };
    if (err instanceof CorruptFile || isCorruption(err)) kind = 'corrupt';
    else if (e.code === 'SQLITE_BUSY') kind = 'locked';
    const why = kind === 'locked' ? 'it is locked by another process (another agent on the same outbox?)'
      : kind === 'corrupt' ? `it is not a valid SQLite database or is corrupt (${e.message})`
      : e.message;
    const hint = kind === 'corrupt' ? '' : ' The file was left untouched; move it away to start with an empty outbox.';
    throw new OutboxError(`outbox ${path}: cannot open: ${why}.${hint}`, kind);
  }
}

/**
 * The highest message id ever used or reserved: outbox_ids, the tables, and
 * sqlite_sequence where an older file's AUTOINCREMENT kept it. Only integers
 * a message id can be count (0 < id < 2^53): a damaged or edited file may hold
 * text, a fraction or a huge number there, and SQLite's MAX would return it
 * (text sorts above numbers), making every new id NaN or inexact. A value
 * left out is repaired by the outbox's next reservation.
 */
export function highestId(db: Database.Database): number {
  const sound = `BETWEEN 1 AND ${Number.MAX_SAFE_INTEGER}`;
  const sequence = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").get() !== undefined
    ? `SELECT seq AS x FROM sqlite_sequence WHERE name = 'outbox' AND typeof(seq) = 'integer' AND seq ${sound} UNION ALL ` : '';
  // The tables' ids are integer keys: a range on them is a b-tree search, not a scan.
  const row = db.prepare(`SELECT MAX(x) AS id FROM (${sequence}SELECT reserved AS x FROM outbox_ids WHERE typeof(reserved) = 'integer' AND reserved ${sound}
    UNION ALL SELECT MAX(id) FROM outbox WHERE id ${sound} UNION ALL SELECT MAX(id) FROM outbox_dead WHERE id ${sound})`).get() as { id: number | null };
  return row.id ?? 0;
}

/**
 * outbox_ids gets its row (an upgraded file: the highest id so far), and an
 * older file's table with AUTOINCREMENT, found empty, is made again without
 * it (nothing to copy; its sequence goes to outbox_ids first). Writes
 * nothing when there is nothing to do.
 */
function keepIdsGrowing(db: Database.Database): void {
  const hasRow = db.prepare('SELECT 1 FROM outbox_ids').get() !== undefined;
  const sql = (db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'outbox'").pluck().get() as string | undefined) ?? '';
  const rebuild = /AUTOINCREMENT/i.test(sql) && db.prepare('SELECT 1 FROM outbox LIMIT 1').get() === undefined;
  if (hasRow && !rebuild) return;
  db.transaction(() => {
    const highest = highestId(db);
    if (hasRow) db.prepare('UPDATE outbox_ids SET reserved = ?').run(highest);
    else db.prepare('INSERT INTO outbox_ids (reserved) VALUES (?)').run(highest);
    if (rebuild) {
      db.exec('DROP TABLE outbox');
      db.exec(OUTBOX_TABLE);
    }
  })();
}

function tableColumns(db: Database.Database, table: string): string {
  return (db.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name).join(',');
}
