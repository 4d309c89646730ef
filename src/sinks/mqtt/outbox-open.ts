/**
 * Opening the outbox at start-up, whatever state the files are in:
 * - a damaged database is moved aside and a fresh one started, with what
 *   can still be read from the old one (outbox-recovery.ts);
 * - the commit record of the last run (commit-record.ts) tells how many
 *   accepted messages are gone when the database holds fewer than it
 *   committed (a damaged WAL, a missing file);
 * - the disk budget (outbox-budget.ts) is applied to the connection.
 * Only a file locked by another agent, written by a newer afb-edge, not an
 * outbox, or not openable at all (permissions, I/O) still throws.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { isoTime } from '../../util/iso-time.js';
import type { Logger } from '../../util/log.js';
import { commitRecordPath, readCommitRecord, type CommitState } from './commit-record.js';
import { diskBudget, type DiskBudget } from './outbox-budget.js';
import { highestId, openDatabase, OutboxError, sqliteAddon, type Synchronous } from './outbox-db.js';
import { moveAside, salvage, type OutboxRecovery } from './outbox-recovery.js';

export interface OpenedOutbox {
  db: Database.Database;
  budget: DiskBudget;
  /** Set when something was recovered or found lost at this start. */
  recovery: OutboxRecovery | undefined;
  /** Highest id ever used or reserved (outbox_ids, the tables, the commit record): new messages get the next ones. */
  lastId: number;
}

export function openOutbox(file: string, synchronous: Synchronous, maxBytes: number, log: Logger): OpenedOutbox {
  const record = readCommitRecord(commitRecordPath(file));
  if (record.problem !== undefined) log.warn(`outbox ${file}: commit record ignored: ${record.problem}; a loss from a damaged WAL cannot be counted at this start`);
  // A new WAL-mode database may live in its WAL alone until the first checkpoint.
  const existed = [file, `${file}-wal`].some((f) => fs.existsSync(f) && fs.statSync(f).size > 0);
  let db: Database.Database;
  let aside: { name: string; why: string } | undefined;
  try {
    db = openDatabase(file, synchronous);
  } catch (err) {
    if (!(err instanceof OutboxError) || err.kind !== 'corrupt') throw err;
    let moved: { name: string; deleted: string[] };
    try {
      moved = moveAside(file);
    } catch (e) {
      throw new OutboxError(`${err.message.replace(/\.$/, '')}; it cannot be moved aside (${(e as Error).message}): move it away by hand`, 'corrupt');
    }
    aside = { name: moved.name, why: err.message };
    for (const f of moved.deleted) log.warn(`outbox ${file}: deleted ${f}, an older moved-aside outbox (only the newest is kept)`);
    db = openDatabase(file, synchronous);
  }
  const budget = applyBudget(db, maxBytes, file, log);
  let salvaged: { copied: number; problem?: string } | undefined;
  if (aside) salvaged = salvage(path.join(path.dirname(file), aside.name), db, budget, sqliteAddon(file));
  // The commit record too: a file moved aside took its highest ids with it.
  const lastId = Math.max(highestId(db), record.state?.maxId ?? 0);

  const lost = record.state ? lostSince(db, record.state) : undefined;
  const at = isoTime(Date.now());
  if (aside) {
    const n = lost === undefined ? 'an unknown number of (no commit record)' : String(lost);
    const why = salvaged!.problem === undefined ? '' : ` (${salvaged!.problem})`;
    log.error(`${aside.why.replace(/\.$/, '')}: moved aside to ${aside.name} (same directory), a fresh outbox started; ${salvaged!.copied} message(s) copied from it${why}, ${n} accepted message(s) lost`);
    return { db, budget, lastId, recovery: { recovered: 'corrupt', moved_to: aside.name, salvaged: salvaged!.copied, lost: lost ?? null, at } };
  }
  if (lost !== undefined && lost > 0) {
    const s = record.state!;
    const recovered = existed ? 'wal' : 'missing';
    const why = existed
      ? 'its WAL was damaged (SQLite keeps the commits before the first bad frame and drops the rest) or the file was replaced by an older copy'
      : 'the database file was missing or empty';
    log.error(`outbox ${file}: ${lost} accepted message(s) lost: the last commit record lists ${s.count} message(s) (ids ${s.oldestId}..${s.maxId}) and the database holds ${s.count - lost} of them; ${why}`);
    return { db, budget, lastId, recovery: { recovered, lost, at } };
  }
  return { db, budget, lastId, recovery: undefined };
}

/**
 * Accepted messages the last commit record lists that the database does
 * not hold. The record lists `count` rows, all with ids in
 * [oldestId, maxId]; rows in that range now are survivors. (A row acked
 * out of order and brought back by a rolled-back WAL would count as a
 * survivor: delivered anyway, it is then sent twice, not lost.)
 */
function lostSince(db: Database.Database, s: CommitState): number {
  if (s.count === 0) return 0;
  const { n } = db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE id BETWEEN ? AND ?').get(s.oldestId, s.maxId) as { n: number };
  return Math.max(0, s.count - n);
}

/**
 * SQLite's own default page cache (2,000 KiB). better-sqlite3 builds SQLite
 * with 16,000 KiB, and the outbox filled it: rows are appended at one end
 * and deleted at the other, every page is touched once, and the cache kept
 * them all, up to 16 MB of the agent's RSS after a burst for pages it never
 * reads again (messages to send come from the PendingCache). A transaction
 * larger than the cache spills its pages to the WAL before COMMIT, which
 * SQLite allows in WAL mode.
 */
const CACHE_KIB = 2000;

function applyBudget(db: Database.Database, maxBytes: number, file: string, log: Logger): DiskBudget {
  db.pragma(`cache_size = -${CACHE_KIB}`);
  const budget = diskBudget(maxBytes, db.pragma('page_size', { simple: true }) as number);
  db.pragma(`wal_autocheckpoint = ${budget.checkpointFrames}`);
  db.pragma(`journal_size_limit = ${budget.walLimitBytes}`);
  // SQLite keeps the file at least as large as it is: a file from a larger max_bytes keeps its size.
  const pages = db.pragma(`max_page_count = ${budget.dbPages}`, { simple: true }) as number;
  if (pages > budget.dbPages) {
    log.warn(`outbox ${file}: the database already takes ${pages} pages, more than max_bytes allows (${budget.dbPages}); it keeps that size (SQLite files do not shrink)`);
    budget.dbPages = pages;
  }
  return budget;
}
