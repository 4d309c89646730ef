/**
 * What the outbox does with a database file SQLite reports damaged
 * (issue 11): the agent must stay up — an outbox that cannot open means no
 * telemetry and no commands until someone logs in. So the file (with its
 * -wal and -shm) is renamed aside in the same directory, a fresh outbox is
 * started, and what SQLite can still read from the damaged file is copied
 * into it: rows in id order until the first unreadable page, then from the
 * end backwards until the same (a damaged page usually costs only the rows
 * on it). Copied rows are checked like any row read back (row-check.ts).
 *
 * Opening the renamed file for that read lets SQLite merge its WAL into it
 * when it closes (it always does for the last connection); the moved file
 * then holds the same data in one file. A file SQLite cannot open at all
 * is left exactly as it was.
 *
 * Only the newest moved-aside file is kept (older ones are deleted,
 * logged): each may be as large as the outbox, on a partition sized for one.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { isoTime } from '../../util/iso-time.js';
import { rowPages, SPLIT_RESERVE, type DiskBudget } from './outbox-budget.js';
import { isCorruption } from './outbox-db.js';
import { rawRow, type RawRow } from './row-check.js';

export type RecoveryReason = 'corrupt' | 'wal' | 'missing';

/** What the outbox found and did at start-up; published in the status and health messages. */
export interface OutboxRecovery {
  /**
   * corrupt: the database was damaged and moved aside;
   * wal: the database opened but holds fewer messages than were committed (damaged WAL);
   * missing: no database (or an empty one) where messages were committed.
   */
  recovered: RecoveryReason;
  /** The moved-aside file's name, in the outbox's directory (corrupt). */
  moved_to?: string;
  /** Rows copied from the damaged file into the fresh outbox (corrupt). */
  salvaged?: number;
  /** Accepted messages that are gone; null when it cannot be told (no commit record). */
  lost: number | null;
  /** When it was found (ISO 8601). */
  at: string;
}

const SUFFIXES = ['', '-wal', '-shm', '-journal'];

/** `outbox.db.corrupt-20240501T120000Z` (UTC, to the second; `-2`, `-3`... when taken). */
export function asideName(dbPath: string, now = new Date()): string {
  const stamp = isoTime(now.getTime()).replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const base = `${path.basename(dbPath)}.corrupt-${stamp}`;
  let name = base;
  for (let n = 2; fs.existsSync(path.join(path.dirname(dbPath), name)); n++) name = `${base}-${n}`;
  return name;
}

/**
 * Renames the database and its companion files aside; returns the new
 * name of the database and the names of the older moved-aside files it
 * deleted. Throws (fs errors) when the rename itself fails.
 */
export function moveAside(dbPath: string): { name: string; deleted: string[] } {
  const dir = path.dirname(dbPath);
  const base = path.basename(dbPath);
  const older = fs.readdirSync(dir).filter((f) => f.startsWith(`${base}.corrupt-`));
  const name = asideName(dbPath);
  for (const s of SUFFIXES) {
    try {
      fs.renameSync(dbPath + s, path.join(dir, name + s));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  const deleted: string[] = [];
  for (const f of older) {
    try {
      fs.rmSync(path.join(dir, f), { force: true });
      deleted.push(f);
    } catch {
      /* kept: only disk space */
    }
  }
  return { name, deleted };
}

/**
 * Copies the rows SQLite can read from the moved-aside database `from`
 * into `into` (a fresh outbox), with their ids, as long as the budget's
 * pages allow. Returns how many were copied and, when reading stopped
 * early, why.
 */
export function salvage(from: string, into: Database.Database, budget: DiskBudget, nativeBinding: string): { copied: number; problem?: string } {
  let src: Database.Database;
  try {
    src = new Database(from, { fileMustExist: true, nativeBinding });
    src.pragma('locking_mode = EXCLUSIVE');
  } catch (err) {
    return { copied: 0, problem: `cannot open it: ${(err as Error).message}` };
  }
  let copied = 0;
  let problem: string | undefined;
  try {
    // By position, not by name: a damaged schema text may have renamed a column (the table is ours).
    const cols = (src.pragma('table_info(outbox)') as Array<{ name: string }>).length;
    if (cols !== 8 && cols !== 9) return { copied: 0, problem: `its outbox table has ${cols} columns` };
    const select = 'SELECT * FROM outbox';
    const insert = into.prepare('INSERT OR IGNORE INTO outbox (id, topic, payload, qos, retain, route, created_ms, bytes, crc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const pageCount = into.prepare('PRAGMA page_count').pluck();
    const freePages = into.prepare('PRAGMA freelist_count').pluck();
    let full = false;
    const copy = (rows: RawRow[]): void => {
      into.transaction(() => {
        for (const r of rows) {
          const size = (Buffer.isBuffer(r.payload) ? r.payload.length : 0) + (typeof r.topic === 'string' ? Buffer.byteLength(r.topic) : 0) + 64;
          const used = (pageCount.get() as number) - (freePages.get() as number);
          if (used + Math.ceil(rowPages(size, budget.pageSize)) + SPLIT_RESERVE > budget.dbPages) {
            full = true;
            return;
          }
          try {
            if (insert.run(r.id, r.topic, r.payload, r.qos, r.retain, r.route, r.created_ms, r.bytes, r.crc).changes > 0) copied++;
          } catch (err) {
            if (!into.inTransaction) throw err; // SQLite gave up the transaction (disk full): stop here
            /* a row with NULLs where NOT NULL: not a survivor, counted as lost */
          }
        }
      })();
    };
    const seen = new Set<number>();
    const pass = (order: 'ASC' | 'DESC'): void => {
      let batch: RawRow[] = [];
      try {
        for (const v of src.prepare(`${select} ORDER BY rowid ${order}`).raw().iterate() as IterableIterator<unknown[]>) {
          const r = rawRow(v);
          if (typeof r.id !== 'number') continue;
          if (seen.has(r.id)) break; // the backward pass met the forward one
          seen.add(r.id);
          batch.push(r);
          if (batch.length >= 256) {
            copy(batch);
            batch = [];
            if (full) return;
          }
        }
      } catch (err) {
        if (!isCorruption(err)) throw err;
        problem = `reading stopped at a damaged page (${(err as Error).message})`;
      }
      if (!full) copy(batch);
    };
    pass('ASC');
    if (problem !== undefined && !full) pass('DESC');
    if (full) problem = `the outbox budget (max_bytes) was reached after ${copied} rows`;
  } catch (err) {
    problem = `reading failed: ${(err as Error).message}`;
  } finally {
    try {
      src.close();
    } catch {
      /* the copy is done */
    }
  }
  return { copied, problem };
}
