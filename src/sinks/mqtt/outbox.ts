/**
 * Durable FIFO of the messages published with QoS >= 1, on SQLite
 * (better-sqlite3, WAL). A message is on disk before `enqueue` says
 * 'accepted', and leaves only when `ack` says the broker has it.
 *
 * Group commit: every enqueue of one event-loop turn goes into ONE
 * transaction, committed from setImmediate, with the acks received since
 * the last commit (an ack alone lingers: ACK_LINGER_MS). A flood of N
 * messages in a turn costs one commit (one fsync), not N, which keeps
 * throughput high; a single message waits at most until the end of the
 * current turn. (Pacing
 * commits further — a fixed 2 ms gap, or twice the last commit's duration —
 * was measured with bench/serial-bridge.ts and bench/bridge.ts: +15 % on
 * 40,000-frame serial bursts, but p50 at 1,000 events/s went from 0.6 to
 * 1.6 ms; not the default.)
 *
 * Commit delay (`commit_delay_ms`, default 0): the first message waits that
 * long for others to share its commit (a commit starts early once
 * COMMIT_DELAY_MAX_MESSAGES or _BYTES wait). For storage that wears: at a
 * steady 1,000 events/s each event was its own commit, and every commit
 * writes whole pages (the table's last leaf, sqlite_sequence): 6.4-7.8 KB
 * written to the disk per ~150-byte event; with 20 ms, 1.0-1.2 KB, and the
 * agent's CPU per event ~150 -> ~65 µs, for a p50 latency of ~11 ms
 * (bench/bridge.ts' steady phase, /proc/PID/io, this repository's x86 VM).
 *
 * Durability (`synchronous`, default 'full'):
 * - 'full': the WAL is fsync'ed after each commit that added messages, and
 *   their enqueues say 'accepted' once that fsync returned. An accepted
 *   message survives kill -9, a kernel panic and a power cut (as far as the
 *   storage honours fsync). The fsync runs on the thread pool, not inside
 *   COMMIT on the event loop (wal-sync.ts): the messages go to the broker
 *   while the disk syncs, and fsyncs requested meanwhile are grouped.
 *   Two fsyncs start at least `sync_interval_ms` apart (default 10 ms):
 *   'accepted' may come that much later, and a power cut may take the
 *   messages of the last interval the broker had not acknowledged.
 * - 'normal': no fsync at commit (only at checkpoints). An accepted message
 *   survives kill -9 (the data is in the kernel's page cache once COMMIT
 *   returns), but a power cut or kernel crash may roll back the transactions
 *   committed since the last checkpoint (never corrupting the database).
 *   Choose it when fsync is slow or flash wear matters more than the last
 *   seconds of data before a power cut.
 * The default is 'full' because vehicles lose power without warning, and
 * "accepted" must mean "on disk".
 *
 * Ids only grow (even when the table empties, across restarts): the outbox
 * gives each row the next one itself (the checksum covers it), and keeps
 * the row of `outbox_ids` ID_BLOCK ids ahead of the last one it gave, in
 * the same transactions: one page written per ID_BLOCK messages, where
 * AUTOINCREMENT wrote its sqlite_sequence page at every commit
 * (outbox-db.ts). A restart continues after the reserved ids (a gap,
 * never a reuse). Delivery order is id order. Rows handed out by `next`
 * are "in flight" (in memory only): after a restart every row is pending
 * again.
 *
 * Damage (issue 11): every row read back from disk is checked
 * (row-check.ts) and dead-lettered when it cannot be the message written;
 * a damaged file or WAL is dealt with at open (outbox-open.ts); the files
 * stay within max_bytes (outbox-budget.ts); failed commits (disk full) are
 * logged rate-limited (outbox-log.ts) and the acknowledgements they held
 * are retried every second, so the gauges follow the deletes.
 */
import type Database from 'better-sqlite3';
import type { OutboundMessage } from '../../core/event.js';
import type { OutboxConfig } from '../../config/types.js';
import type { AgentMetrics, OutboxGauges } from '../../health/metrics.js';
import { IdTable } from '../../util/id-table.js';
import { silentLogger, type Logger } from '../../util/log.js';
import { CommitRecord, commitRecordPath } from './commit-record.js';
import { recordBytes, rowPages, SPLIT_RESERVE, TXN_FIXED_PAGES, type DiskBudget } from './outbox-budget.js';
import { isCorruption, OutboxError, type Synchronous } from './outbox-db.js';
import { OutboxLog } from './outbox-log.js';
import { openOutbox } from './outbox-open.js';
import type { OutboxRecovery } from './outbox-recovery.js';
import { PendingCache } from './pending-cache.js';
import { rawRow, rowChecksum, rowProblem, TopicCheck, type RawRow } from './row-check.js';
import { RowInserter } from './row-inserter.js';
import { WalSync } from './wal-sync.js';

export { OutboxError, type Synchronous } from './outbox-db.js';
export type { OutboxRecovery } from './outbox-recovery.js';

export type EnqueueResult = 'accepted' | 'rejected';

export interface StoredMessage {
  id: number;
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  route: string;
  /** Enqueue time, ms since the epoch. */
  createdAt: number;
  /** Counted size: topic (UTF-8) + payload bytes. */
  bytes: number;
}

export interface OutboxOptions {
  /** Default 'full' (see the file comment). */
  synchronous?: Synchronous;
  metrics?: AgentMetrics;
  /** Recovery, failed commits (rate-limited), drops (rate-limited), dead-lettered rows. Default: silent. */
  logger?: Logger;
  /** Called after each commit that added messages (the sink starts sending them). */
  onCommit?: () => void;
  /** Called when a commit fails (disk full, I/O error), after it was counted and logged: the affected enqueues resolve 'rejected'. */
  onError?: (err: Error) => void;
  /** Bounds of the in-memory copy of recently written messages (default 10000 messages, 8 MiB). */
  cacheMessages?: number;
  cacheBytes?: number;
  /** Acknowledgements whose deletion failed are committed again after this delay (default 1000 ms). */
  retryMs?: number;
}

interface Pending {
  msg: OutboundMessage;
  bytes: number;
  /** Upper bound of the database pages the row takes (outbox-budget.ts). */
  pages: number;
  /** Told the result (undefined: nobody waits for it). */
  resolve: ((r: EnqueueResult) => void) | undefined;
}

/** Rows kept in the dead-letter table (the oldest go first), and the payload bytes kept of each. */
const DEAD_MAX_ROWS = 100;
const DEAD_PAYLOAD_BYTES = 4096;
/**
 * An acknowledgement alone waits up to ACK_LINGER_MS for the next commit of
 * new messages, and goes into it: at a steady 1,000 events/s each event was
 * two transactions (its insert, then the delete its PUBACK asked for, a turn
 * later), with three commit-record writes; riding along, one (bench/bridge.ts,
 * agent CPU per event at steady rate). Without new messages the deletes are
 * committed when the linger ends, or at once past ACK_LINGER_MAX acks. A
 * delete not yet committed costs at most a duplicate after a crash (at least
 * once), as an unsynced one always did.
 */
const ACK_LINGER_MS = 100;
const ACK_LINGER_MAX = 1024;
/** With commit_delay_ms, the messages (or their bytes) that start a commit before the delay ends: bounds the memory a flood holds. */
const COMMIT_DELAY_MAX_MESSAGES = 1024;
const COMMIT_DELAY_MAX_BYTES = 4 << 20;
/**
 * Rows read from the database at once when next() drains what the memory
 * cache could not hold: the sink asks for the few slots its PUBACKs freed,
 * and one query per one or two rows cost 8.7 us a row in the agent's profile
 * of 20,000-event bursts. The rows read ahead stay in memory until handed
 * out: at most READ_AHEAD_BYTES of them (counted sizes) beyond those asked
 * for, so that large messages are read a few at a time.
 */
const READ_AHEAD_ROWS = 64;
const READ_AHEAD_BYTES = 256 << 10;
/** Ids reserved at once in outbox_ids (see the file comment). */
const ID_BLOCK = 1024;
const ascending = (a: number, b: number): number => a - b;

/** Rows next() tries one by one past an unreadable page before giving up until its next call. */
const UNREADABLE_PROBE = 64;

export class Outbox {
  readonly path: string;
  /**
   * Transactions committed (group commit: one per event-loop turn with work, more for a burst larger than the WAL share);
   * rows read back from the database to be sent (those of a previous run, or committed while the memory cache was full).
   */
  readonly stats = { commits: 0, failedCommits: 0, rowsRead: 0 };
  /** 'full': the WAL's fsync, off the event loop (undefined for 'normal'). */
  private readonly walSync: WalSync | undefined;
  /** What was recovered or found lost when this outbox opened (undefined: nothing). */
  readonly recovery: OutboxRecovery | undefined;
  /** How max_bytes is split between the database and the WAL. */
  readonly budget: DiskBudget;
  private readonly db: Database.Database;
  private readonly stmt: {
    del: Database.Statement;
    delRange: Database.Statement;
    after: Database.Statement;
    nextId: Database.Statement;
    byId: Database.Statement;
    evictable: Database.Statement;
    oldest: Database.Statement;
    reserveIds: Database.Statement;
    pageCount: Database.Statement;
    freePages: Database.Statement;
    toDead: Database.Statement;
    trimDead: Database.Statement;
  };
  private readonly commit: (batch: Pending[], acks: number[]) => EnqueueResult[];
  private readonly rows: RowInserter;
  private readonly synchronous: Synchronous;
  private readonly log: OutboxLog;
  private readonly record: CommitRecord;
  private pending: Pending[] = [];
  private acks: number[] = [];
  /** Acked ids whose DELETE is not committed yet (next() must not hand them out again): id -> bytes. */
  private readonly ackPending = new IdTable<number>(); // IdTable, not Map: see id-table.ts
  /** The bytes of the rows in ackPending. */
  private ackPendingBytes = 0;
  private flushScheduled: NodeJS.Immediate | undefined;
  /** commit_delay_ms: the wait of the first pending message, and the bytes pending. */
  private delayTimer: NodeJS.Timeout | undefined;
  private pendingBytes = 0;
  /** Acks waiting for a commit to ride in (ACK_LINGER_MS). */
  private ackTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly topicCheck = new TopicCheck();
  /** Rows handed out by next() and not acked/released yet: id -> bytes. */
  private readonly inflight = new IdTable<number>();
  /**
   * Database pages surely free, without measuring (two PRAGMA statements at
   * every commit showed in the profile of 1,000 events/s, one commit each): the
   * last measure minus the pages of every row inserted since; undefined:
   * measure at the next commit.
   */
  private freeEstimate: number | undefined;
  /** Rows SQLite could neither read nor delete: skipped until the next start (bounded by what is unreadable). */
  private readonly unreadable = new Set<number>();
  /**
   * Rows of the database read ahead of next()'s need (READ_AHEAD_ROWS), in
   * id order from aheadAt on: every row the database held between the read's
   * start and the last of them. Emptied whenever rows in that range may
   * change other than by next() handing them out (release, eviction, dead
   * letters).
   */
  private ahead: RawRow[] = [];
  private aheadAt = 0;
  /** Every pending (not in-flight) row has an id above the cursor. */
  private cursor = 0;
  private lastId: number;
  /** outbox_ids.reserved as committed: ids up to it may be given without writing it. */
  private reservedId: number;
  private count = 0;
  private totalBytes = 0;
  private oldestMs: number | undefined;
  private oldestId = 0;
  private closed = false;
  private readonly cache: PendingCache;
  /** Effects of the transaction being built, applied once it committed. */
  private effects: { cache: StoredMessage[]; evicted: number[]; drops: Map<string, number> } = { cache: [], evicted: [], drops: new Map() };

  constructor(private readonly config: OutboxConfig, private readonly options: OutboxOptions = {}) {
    this.path = config.path;
    this.synchronous = options.synchronous ?? 'full';
    const logger = options.logger ?? silentLogger;
    this.log = new OutboxLog(logger, config.path);
    const opened = openOutbox(config.path, this.synchronous, config.max_bytes, logger);
    this.db = opened.db;
    this.budget = opened.budget;
    this.recovery = opened.recovery;
    this.lastId = opened.lastId;
    this.reservedId = opened.lastId;
    // COMMIT never fsyncs on the event loop: 'full' has WalSync do it on the thread pool.
    this.db.pragma('synchronous = NORMAL');
    if (this.synchronous === 'full') this.walSync = new WalSync(`${config.path}-wal`, config.sync_interval_ms);
    this.stmt = {
      del: this.db.prepare('DELETE FROM outbox WHERE id = ? RETURNING bytes'),
      delRange: this.db.prepare('DELETE FROM outbox WHERE id BETWEEN ? AND ?'),
      after: this.db.prepare('SELECT id, topic, payload, qos, retain, route, created_ms, bytes, crc FROM outbox WHERE id > ? ORDER BY id LIMIT ?').raw(), // rows as arrays (rawRow)
      nextId: this.db.prepare('SELECT id FROM outbox WHERE id > ? ORDER BY id LIMIT 1').pluck(),
      byId: this.db.prepare('SELECT id, topic, payload, qos, retain, route, created_ms, bytes, crc FROM outbox WHERE id = ?').raw(),
      evictable: this.db.prepare('SELECT id, bytes FROM outbox WHERE id > ? ORDER BY id LIMIT 256'),
      oldest: this.db.prepare('SELECT id, created_ms FROM outbox ORDER BY id LIMIT 1'),
      reserveIds: this.db.prepare('UPDATE outbox_ids SET reserved = ?'),
      pageCount: this.db.prepare('PRAGMA page_count').pluck(),
      freePages: this.db.prepare('PRAGMA freelist_count').pluck(),
      toDead: this.db.prepare(`INSERT OR REPLACE INTO outbox_dead (id, topic, payload, qos, retain, route, created_ms, bytes, crc, reason, dead_ms)
        SELECT id, topic, substr(payload, 1, ${DEAD_PAYLOAD_BYTES}), qos, retain, route, created_ms, bytes, crc, ?, ? FROM outbox WHERE id = ?`),
      trimDead: this.db.prepare(`DELETE FROM outbox_dead WHERE id IN (SELECT id FROM outbox_dead ORDER BY dead_ms DESC, id DESC LIMIT -1 OFFSET ${DEAD_MAX_ROWS})`),
    };
    this.rows = new RowInserter(this.db);
    this.commit = this.db.transaction((batch: Pending[], acks: number[]) => this.applyBatch(batch, acks));
    this.recount();
    this.cache = new PendingCache(this.lastId, options.cacheMessages, options.cacheBytes);
    this.refreshOldest();
    const m = options.metrics;
    if (this.recovery) {
      m?.outboxRecovered.inc({ reason: this.recovery.recovered });
      if (this.recovery.lost) m?.dropped.inc({ reason: 'outbox_lost' }, this.recovery.lost);
    }
    this.record = new CommitRecord(commitRecordPath(config.path), (err) => this.log.readFailed(err.message));
    this.writeRecord();
    options.metrics?.watchOutbox(this.gauges);
  }

  /** Messages not acknowledged yet (in flight included). */
  get depth(): number {
    return this.count - this.ackPending.size;
  }

  get bytes(): number {
    return this.totalBytes - this.ackPendingBytes;
  }

  /** WAL fsyncs done ('full'; each covers every commit before it). */
  get syncs(): number {
    return this.walSync?.syncs ?? 0;
  }

  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Age of the oldest unacknowledged message in ms (0 when empty). */
  oldestAgeMs(now = Date.now()): number {
    // Rows acked but not deleted yet (ACK_LINGER_MS) are no longer waiting for anything.
    return this.oldestMs === undefined || this.depth === 0 ? 0 : Math.max(0, now - this.oldestMs);
  }

  /** Stores `msg`; resolves once the transaction holding it committed (or it was refused by the bounds). */
  enqueue(msg: OutboundMessage): Promise<EnqueueResult> {
    return new Promise((resolve) => this.add(msg, resolve));
  }

  /**
   * enqueue() without a promise: `done`, when given, is told what enqueue
   * would resolve. The agent's data path uses it: one promise (and its
   * continuation) per message was a measurable part of a QoS 1 burst's
   * allocations (bench/bridge.ts), and nothing there waits for the result.
   */
  add(msg: OutboundMessage, done?: (r: EnqueueResult) => void): void {
    if (this.closed) return done?.(this.refuse('outbox_closed', 'the outbox is closed'));
    // A topic the broker would drop the connection for must never reach the disk (it would come back at every resend).
    const bad = this.topicCheck.problem(msg.topic);
    if (bad !== undefined) return done?.(this.refuse('topic_invalid', `route ${msg.route}: ${bad}: ${JSON.stringify(msg.topic).slice(0, 200)}`));
    const topicBytes = Buffer.byteLength(msg.topic);
    const bytes = topicBytes + msg.payload.length;
    // route.length * 3: an upper bound of its UTF-8 size without encoding it
    const pages = rowPages(recordBytes(topicBytes, msg.payload.length, msg.route.length * 3), this.budget.pageSize);
    this.pending.push({ msg, bytes, pages, resolve: done });
    this.pendingBytes += bytes;
    const delay = this.config.commit_delay_ms;
    if (delay > 0 && this.pending.length < COMMIT_DELAY_MAX_MESSAGES && this.pendingBytes < COMMIT_DELAY_MAX_BYTES) {
      this.delayTimer ??= setTimeout(this.delayEnded, delay);
      return;
    }
    this.scheduleFlush();
  }

  /** Up to `limit` pending messages in id order; they are in flight until ack() or release(). */
  next(limit: number): StoredMessage[] {
    if (this.closed) return [];
    let out: StoredMessage[] = [];
    if (this.cache.covers(this.cursor)) {
      out = this.cache.take(limit);
      for (const m of out) this.inflight.set(m.id, m.bytes);
      if (out.length > 0) this.cursor = out[out.length - 1]!.id;
      // The rest, if any, is in the database only (rows committed while the cache was full).
      if (out.length === limit || !this.cache.overflowed || this.cache.length > 0) return out;
    }
    let after = this.cursor;
    let dead = 0;
    /** The database has no row after `after`. */
    let exhausted = false;
    while (out.length < limit) {
      // As many as are wanted, not more: rows read beyond `limit` were dropped and read again at
      // the next call, and the sink asks for a few at a time (the slots its PUBACKs freed). With a
      // floor of 16 rows, draining 20,000 rows written while the memory cache was full read each
      // row 16 times when asked one at a time: 55 us of CPU a row, now 13 (4 at a time: 14, now
      // 6.5; 16 or more: the same), a throwaway loop of next(k) and ack on this outbox.
      const want = limit - out.length;
      const rows = this.readAhead(after, want);
      exhausted = rows.length < want;
      if (rows.length === 0) break;
      for (const r of rows) {
        if (out.length >= limit) break;
        const id = r.id as number;
        after = id;
        if (this.inflight.has(id) || this.ackPending.has(id) || this.unreadable.has(id)) continue; // released rows may interleave with these
        const problem = rowProblem(r);
        if (problem !== undefined) {
          this.deadLetter(id, problem, true);
          dead++;
          continue;
        }
        this.inflight.set(id, r.bytes as number);
        this.cache.delete(id);
        out.push({ id, topic: r.topic as string, payload: r.payload as Buffer, qos: r.qos as 0 | 1 | 2, retain: r.retain === 1, route: r.route as string, createdAt: r.created_ms as number, bytes: r.bytes as number });
      }
    }
    this.cursor = after;
    // Everything committed is handed out: what is committed from now on can be served from memory again.
    if (exhausted && this.cache.overflowed && this.cache.length === 0 && this.noRowAfter(after)) {
      this.cache.restart(this.lastId);
      this.cursor = Math.max(this.cursor, this.lastId);
    }
    if (dead > 0) {
      this.recount();
      this.refreshOldest();
      this.writeRecord();
    }
    return out;
  }

  /** Confirmed by the index (readAfter's row-by-row fallback may stop early on a damaged page). */
  private noRowAfter(id: number): boolean {
    try {
      return this.stmt.nextId.get(id) === undefined;
    } catch {
      return false;
    }
  }

  /** The broker has it: delete it (in the next group commit). */
  ack(id: number): void {
    const bytes = this.inflight.get(id);
    if (bytes === undefined || this.closed) return;
    this.inflight.delete(id);
    this.acks.push(id);
    this.ackPending.set(id, bytes);
    this.ackPendingBytes += bytes;
    if (this.acks.length >= ACK_LINGER_MAX) this.scheduleFlush();
    else if (this.ackTimer === undefined && this.flushScheduled === undefined) {
      this.ackTimer = setTimeout(this.ackLingerEnded, ACK_LINGER_MS);
      this.ackTimer.unref();
    }
  }

  private readonly delayEnded = (): void => {
    this.delayTimer = undefined;
    this.flush();
  };

  private readonly ackLingerEnded = (): void => {
    this.ackTimer = undefined;
    this.flush();
  };

  /** Back to pending (connection lost before the ack): next() returns it again, in id order. */
  release(id: number): void {
    if (!this.inflight.delete(id)) return;
    this.cursor = Math.min(this.cursor, id - 1);
    this.cache.uncover(id);
    this.dropReadAhead();
  }

  releaseAll(): void {
    this.inflight.forEach((_bytes, id) => {
      this.cursor = Math.min(this.cursor, id - 1);
      this.cache.uncover(id);
    });
    this.inflight.clear();
    this.dropReadAhead();
  }

  /**
   * Commits what is waiting now (normally done from setImmediate): one
   * transaction, or several when it would change more pages than the WAL's
   * share for one transaction (outbox-budget.ts).
   */
  flush(): void {
    if (this.flushScheduled) {
      clearImmediate(this.flushScheduled);
      this.flushScheduled = undefined;
    }
    if (this.ackTimer !== undefined) {
      clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
    }
    if (this.delayTimer !== undefined) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
    }
    if (this.closed || (this.pending.length === 0 && this.acks.length === 0)) return;
    let batch = this.pending;
    let acks = this.acks;
    this.pending = [];
    this.pendingBytes = 0;
    this.acks = [];
    let added = false;
    while (batch.length > 0 || acks.length > 0) {
      const [b, a] = this.takeChunk(batch, acks);
      batch = batch.slice(b.length);
      acks = acks.slice(a.length);
      const ok = this.commitChunk(b, a);
      if (ok === undefined) {
        // The rest would fail the same way (disk full): refused now, acks retried later.
        this.refuseAfterFailure(batch);
        this.acks = acks.concat(this.acks);
        break;
      }
      added ||= ok;
    }
    if (this.acks.length > 0) this.scheduleRetry();
    if (added) this.options.onCommit?.();
  }

  /** Commits what is pending, syncs it, and closes the database. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.walSync?.flushSync();
    this.walSync?.close();
    this.closed = true;
    this.options.metrics?.unwatchOutbox(this.gauges);
    clearTimeout(this.retryTimer);
    for (const p of this.pending) p.resolve?.('rejected');
    this.pending = [];
    this.inflight.clear();
    this.record.close();
    this.db.close();
  }

  /* ------------------------------------------------------------------ */

  /** The first messages and acks that fit in one transaction's share of the WAL (at least one of them). */
  private takeChunk(batch: Pending[], acks: number[]): [Pending[], number[]] {
    const allowance = this.budget.txnPages - TXN_FIXED_PAGES;
    const evictFactor = this.config.policy === 'drop-oldest' ? 2 : 1;
    const ps = this.budget.pageSize;
    let used = 0;
    let a = 0;
    // acks first, up to half of the allowance
    while (a < acks.length) {
      const cost = rowPages(recordBytes(this.ackPending.get(acks[a]!) ?? 0, 0, 0), ps);
      if (a > 0 && used + cost > allowance / 2) break;
      used += cost;
      a++;
    }
    let b = 0;
    while (b < batch.length) {
      const cost = batch[b]!.pages * evictFactor;
      if ((a > 0 || b > 0) && used + cost > allowance) break;
      used += cost;
      b++;
    }
    if (a === acks.length && b === batch.length) return [batch, acks];
    return [batch.slice(0, b), acks.slice(0, a)];
  }

  /** One transaction: true when it added messages, false when not, undefined when it failed. */
  private commitChunk(batch: Pending[], acks: number[]): boolean | undefined {
    const before = { count: this.count, bytes: this.totalBytes, lastId: this.lastId, reservedId: this.reservedId };
    this.effects = { cache: [], evicted: [], drops: new Map() };
    // Deletes: say first they may have happened, so that a crash right after the commit can never
    // make the next start count these delivered messages as lost (commit-record.ts).
    if (acks.length > 0) this.record.write({ maxId: this.lastId, count: Math.max(0, this.count - acks.length), oldestId: this.oldestId });
    let results: EnqueueResult[];
    try {
      results = this.commit(batch, acks);
    } catch (err) {
      // rolled back: the counters too; nothing of the transaction is on disk
      this.rows.discard();
      this.freeEstimate = undefined;
      this.count = before.count;
      this.totalBytes = before.bytes;
      this.lastId = before.lastId;
      this.reservedId = before.reservedId;
      this.acks = acks.concat(this.acks);
      this.stats.failedCommits++;
      this.options.metrics?.errors.inc({ component: 'outbox' });
      const e = err as Error;
      this.log.commitFailed(e, batch.length);
      for (const p of batch) {
        this.options.metrics?.dropped.inc({ reason: 'outbox_error' });
        p.resolve?.('rejected');
      }
      this.recount();
      this.options.onError?.(new OutboxError(`outbox ${this.path}: commit failed: ${e.message}`, isCorruption(err) ? 'corrupt' : 'other'));
      return undefined;
    }
    this.stats.commits++;
    this.log.commitSucceeded();
    for (const id of acks) {
      this.ackPendingBytes -= this.ackPending.get(id) ?? 0;
      this.ackPending.delete(id);
    }
    const { cache, evicted, drops } = this.effects;
    for (const id of evicted) this.cache.delete(id);
    if (evicted.length > 0) this.dropReadAhead();
    for (const m of cache) this.cache.add(m);
    for (const [reason, n] of drops) {
      this.options.metrics?.dropped.inc({ reason }, n);
      this.log.dropped(reason, n, DROP_DETAIL[reason] ?? reason);
    }
    // The oldest row changes only when rows left, or when there was none.
    if (acks.length > 0 || evicted.length > 0 || this.oldestMs === undefined) this.refreshOldest();
    this.writeRecord();
    this.settle(batch, results);
    return results.includes('accepted');
  }

  /**
   * Tells the enqueues how they went: refusals at once, acceptances once the
   * WAL is synced ('full'). A commit of acks only is not synced for its own
   * sake: losing it to a power cut only makes the broker get those messages
   * again (at least once); the next sync covers it anyway.
   */
  private settle(batch: Pending[], results: EnqueueResult[]): void {
    let synced = 0; // accepted rows waiting for the fsync, whether anybody waits for them or not
    const waiting: Pending[] = [];
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      if (results[i] === 'accepted' && this.walSync !== undefined) {
        synced++;
        if (p.resolve) waiting.push(p);
      } else p.resolve?.(results[i]!);
    }
    if (synced === 0) return;
    this.walSync!.request((err) => {
      if (err === null) {
        for (const p of waiting) p.resolve!('accepted');
        return;
      }
      // Committed but maybe not on stable storage: not 'accepted' (they may still reach the broker).
      this.stats.failedCommits++;
      this.options.metrics?.errors.inc({ component: 'outbox' });
      this.options.metrics?.dropped.inc({ reason: 'outbox_error' }, synced);
      this.log.commitFailed(new Error(`fsync of ${this.path}-wal failed: ${err.message}`), synced);
      for (const p of waiting) p.resolve!('rejected');
    });
  }

  /** Runs inside the transaction. */
  private applyBatch(batch: Pending[], acks: number[]): EnqueueResult[] {
    const { maxBytes, dropOldest } = this.bounds();
    const results: EnqueueResult[] = [];
    this.deleteAcked(acks);
    const now = Date.now();
    /**
     * The rows inserted, in id order, and the batch index of each (arrays rather than a Map:
     * iterating a Map's entries allocates an array per entry, and its table grows by rehashing;
     * a batch is hundreds of rows in a burst). `evictedHere`: rows of this batch that a newer one
     * of the same batch evicted (drop-oldest), made at the first.
     */
    const insertedIds: number[] = [];
    const insertedAt: number[] = [];
    let evictedHere: Set<number> | undefined;
    let evict: Evictor | undefined; // made when the first eviction is needed
    // Pages: measured when the estimate may not cover the batch; when the whole batch fits for
    // sure, no further measure (the hot path).
    let need = 0;
    for (const p of batch) need += p.pages;
    let free = this.freeEstimate;
    if (free === undefined || Math.ceil(need) + SPLIT_RESERVE > free) free = this.freePages();
    const exact = Math.ceil(need) + SPLIT_RESERVE > free;
    // Conservative: the pages this batch frees (acks, evictions) are not counted back until the next measure.
    this.freeEstimate = exact ? undefined : free - need;
    const maxPages = this.maxMessagePages();
    // A loop, not batch.forEach: the callback was a new closure per commit, and V8 optimized it
    // again and again (10 times in 8 bursts of 20,000 events, up to ~38 ms of compiling each).
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const { msg, bytes } = p;
      let result: EnqueueResult = 'accepted';
      if (bytes > maxBytes || p.pages > maxPages) {
        result = 'rejected';
        this.drop('outbox_too_large');
      } else {
        if (exact) this.rows.flush(); // the pages are measured in the database
        if (!this.fits(p, exact)) {
          if (dropOldest) {
            this.rows.flush(); // the evictor reads the oldest rows from the database
            evict ??= new Evictor({
              rows: (after) => this.stmt.evictable.all(after) as Array<{ id: number; bytes: number }>,
              busy: (id) => this.inflight.has(id) || this.ackPending.has(id),
              remove: (id) => this.deleteRow(id),
            }, (id) => {
              // one of this batch's own rows (ids at or above its first): it must not go to the cache
              if (insertedIds.length > 0 && id >= insertedIds[0]!) (evictedHere ??= new Set()).add(id);
            });
            while (!this.fits(p, exact) && evict.one()) { /* evicting the oldest */ }
          }
          if (!this.fits(p, exact)) {
            result = 'rejected';
            this.drop(dropOldest ? 'outbox_full' : 'outbox_rejected');
          }
        }
      }
      if (result === 'accepted') {
        const id = ++this.lastId;
        const crc = rowChecksum(id, msg.qos, msg.retain, msg.topic, msg.payload);
        this.rows.add(id, msg.topic, msg.payload, msg.qos, msg.retain ? 1 : 0, msg.route, now, bytes, crc);
        insertedIds.push(id);
        insertedAt.push(i);
        this.count++;
        this.totalBytes += bytes;
      }
      results.push(result);
    }
    this.rows.flush();
    if (this.lastId > this.reservedId) {
      this.reservedId = this.lastId + ID_BLOCK;
      this.stmt.reserveIds.run(this.reservedId);
    }
    if (evict !== undefined && evict.dropped > 0) this.drop('outbox_full', evict.dropped);
    for (let k = 0; k < insertedIds.length; k++) {
      const id = insertedIds[k]!;
      if (evictedHere?.has(id)) continue;
      const i = insertedAt[k]!;
      const { msg, bytes } = batch[i]!;
      this.effects.cache.push({ id, topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, route: msg.route, createdAt: now, bytes });
    }
    return results;
  }

  /**
   * Deletes acknowledged rows, one statement per run of consecutive ids:
   * the broker acknowledges mostly in order, and a DELETE per row was a
   * fifth of the outbox's time in a QoS 1 burst (bench/bridge.ts profile).
   * Their sizes come from memory (ackPending), not from a RETURNING clause,
   * which SQLite materialises row by row (a quarter of the DELETE's time).
   */
  private deleteAcked(acks: number[]): void {
    if (acks.length === 0) return;
    // This transaction's own array; PUBACKs come nearly always in order, so it is rarely sorted.
    let ordered = true;
    for (let i = 1; i < acks.length && ordered; i++) ordered = acks[i]! > acks[i - 1]!;
    const ids = ordered ? acks : acks.sort(ascending);
    let start = 0;
    let missing = false;
    for (let i = 1; i <= ids.length; i++) {
      if (i < ids.length && ids[i] === ids[i - 1]! + 1) continue;
      const from = ids[start]!;
      const to = ids[i - 1]!;
      const deleted = this.stmt.delRange.run(from, to).changes;
      if (deleted === to - from + 1) {
        this.count -= deleted;
        for (let id = from; id <= to; id++) this.totalBytes -= this.ackPending.get(id) ?? 0;
      } else {
        missing = true;
      }
      start = i;
    }
    // A row of a run was not there (acked rows are never evicted, so only damage could do it): counted again.
    if (missing) this.recount();
  }

  /** Deletes the row (a message leaving without delivery) inside the current transaction: false when it was not there. */
  private deleteRow(id: number): boolean {
    const row = this.stmt.del.get(id) as { bytes: number } | undefined;
    if (!row) return false;
    this.count--;
    this.totalBytes -= row.bytes;
    this.effects.evicted.push(id);
    return true;
  }

  /** Whether `p` fits in the bounds now; the pages are measured only when the batch may not fit (`exact`). */
  private fits(p: Pending, exact: boolean): boolean {
    return this.count + 1 <= this.config.max_messages && this.totalBytes + p.bytes <= this.config.max_bytes
      && (!exact || Math.ceil(p.pages) + SPLIT_RESERVE <= this.freePages());
  }

  /** Database pages that can still be used before the budget is reached (measured now). */
  private freePages(): number {
    return this.budget.dbPages - ((this.stmt.pageCount.get() as number) - (this.stmt.freePages.get() as number));
  }

  /** A message needing more pages is refused as too large: one transaction's share, with the pages to evict as much under drop-oldest. */
  private maxMessagePages(): number {
    const share = (this.budget.txnPages - TXN_FIXED_PAGES) / (this.config.policy === 'drop-oldest' ? 2 : 1);
    return Math.min(share, this.budget.dbPages - 8);
  }

  /** Counted once the transaction committed. */
  private drop(reason: string, n = 1): void {
    this.effects.drops.set(reason, (this.effects.drops.get(reason) ?? 0) + n);
  }

  /** A message refused before it reached a transaction: counted and logged now. */
  private refuse(reason: string, detail: string): EnqueueResult {
    this.options.metrics?.dropped.inc({ reason });
    this.log.dropped(reason, 1, detail);
    return 'rejected';
  }

  private refuseAfterFailure(batch: Pending[]): void {
    if (batch.length === 0) return;
    this.log.refusedToo(batch.length);
    this.options.metrics?.dropped.inc({ reason: 'outbox_error' }, batch.length);
    for (const p of batch) p.resolve?.('rejected');
  }

  /**
   * Moves a row that cannot be sent to the dead-letter table (its payload
   * cut to 4 KiB, at most 100 rows kept), or deletes it when even that
   * fails, or skips it until the next start when SQLite cannot delete it.
   */
  private deadLetter(id: number, problem: string, copy: boolean): void {
    this.freeEstimate = undefined; // the copy takes pages the estimate does not know of
    this.options.metrics?.dropped.inc({ reason: 'outbox_invalid' });
    this.cache.delete(id);
    this.dropReadAhead();
    try {
      this.db.transaction(() => {
        if (copy) {
          this.stmt.toDead.run(problem, Date.now(), id);
          this.stmt.trimDead.run();
        }
        this.stmt.del.run(id);
      })();
      this.log.deadLettered(id, problem, copy);
      return;
    } catch (err) {
      if (copy) return this.deadLetterFallback(id, problem, err as Error);
      this.unreadable.add(id);
      this.log.readFailed(`row ${id} cannot be sent (${problem}) nor deleted (${(err as Error).message}): skipped until the next start; dropped (reason outbox_invalid)`);
    }
  }

  private deadLetterFallback(id: number, problem: string, err: Error): void {
    try {
      this.stmt.del.run(id);
      this.log.deadLettered(id, `${problem}; copy failed: ${err.message}`, false);
    } catch (e) {
      this.unreadable.add(id);
      this.log.readFailed(`row ${id} cannot be sent (${problem}) nor deleted (${(e as Error).message}): skipped until the next start; dropped (reason outbox_invalid)`);
    }
  }

  /**
   * Up to `want` rows after `after`, from the rows read ahead, read again
   * (READ_AHEAD_ROWS at least) when those run short. `after` is never below
   * the start of the rows read ahead: next() moves it forward only, and what
   * moves the cursor back (release) empties them.
   */
  private readAhead(after: number, want: number): RawRow[] {
    const ahead = this.ahead;
    let at = this.aheadAt;
    while (at < ahead.length && (ahead[at]!.id as number) <= after) at++;
    if (ahead.length - at < want) {
      const from = at < ahead.length ? (ahead[ahead.length - 1]!.id as number) : after;
      const more = this.readAfter(from, Math.max(want, READ_AHEAD_ROWS));
      this.stats.rowsRead += more.length;
      let keep = Math.max(0, want - (ahead.length - at)); // handed out now
      for (let bytes = 0; keep < more.length; keep++) {
        const b = more[keep]!.bytes;
        bytes += typeof b === 'number' ? b : 0; // a damaged row: checked (and dead-lettered) by next()
        if (bytes > READ_AHEAD_BYTES) break;
      }
      more.length = Math.min(more.length, keep);
      this.ahead = at < ahead.length ? ahead.slice(at).concat(more) : more;
      at = 0;
    }
    const rows = this.ahead.slice(at, at + want);
    this.aheadAt = at + rows.length;
    if (this.aheadAt === this.ahead.length) this.dropReadAhead();
    return rows;
  }

  private dropReadAhead(): void {
    this.ahead = [];
    this.aheadAt = 0;
  }

  /**
   * Rows after `after`. When SQLite cannot read them (a damaged page found
   * at run time), rows are tried one by one: an unreadable one is deleted
   * (dead-lettered without a copy) and the next ones are served.
   */
  private readAfter(after: number, limit: number): RawRow[] {
    try {
      return (this.stmt.after.all(after, limit) as unknown[][]).map(rawRow);
    } catch (err) {
      this.options.metrics?.errors.inc({ component: 'outbox' });
      this.log.readFailed(`reading the rows after id ${after} failed: ${(err as Error).message}; trying them one by one`);
    }
    const out: RawRow[] = [];
    let at = after;
    for (let k = 0; k < UNREADABLE_PROBE && out.length < limit; k++) {
      let id: number | undefined;
      try {
        id = this.stmt.nextId.get(at) as number | undefined;
      } catch (err) {
        this.log.readFailed(`cannot find the row after id ${at}: ${(err as Error).message}; retried at the next delivery`);
        break;
      }
      if (id === undefined) break;
      at = id;
      if (this.unreadable.has(id)) continue;
      try {
        const v = this.stmt.byId.get(id) as unknown[] | undefined;
        if (v) out.push(rawRow(v));
      } catch (err) {
        this.deadLetter(id, `unreadable (${(err as Error).message})`, false);
      }
    }
    return out;
  }

  private bounds(): { maxBytes: number; dropOldest: boolean } {
    return { maxBytes: this.config.max_bytes, dropOldest: this.config.policy === 'drop-oldest' };
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) this.flushScheduled = setImmediate(() => {
      this.flushScheduled = undefined;
      this.flush();
    });
  }

  /** Acks whose commit failed: tried again (their deletes are what lets the gauges drop after a disk-full period). */
  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, this.options.retryMs ?? 1000);
    this.retryTimer.unref();
  }

  private recount(): void {
    try {
      const totals = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM outbox').get() as { n: number; b: number };
      this.count = totals.n;
      this.totalBytes = totals.b;
    } catch {
      /* keep the last known values */
    }
  }

  private refreshOldest(): void {
    try {
      const row = this.stmt.oldest.get() as { id: number; created_ms: number } | undefined;
      this.oldestMs = row?.created_ms;
      this.oldestId = row?.id ?? 0;
    } catch {
      /* keep the last known values (a damaged page: see readAfter) */
    }
  }

  private writeRecord(): void {
    this.record.write({ maxId: this.lastId, count: this.count, oldestId: this.oldestId });
  }

  /** What the outbox gauges show, computed when they are read (AgentMetrics.watchOutbox). */
  private readonly gauges = (): OutboxGauges => ({ depth: this.depth, bytes: this.bytes, oldestAgeS: this.oldestAgeMs() / 1000, commits: this.stats.commits, syncs: this.syncs });
}

const DROP_DETAIL: Record<string, string> = {
  outbox_full: 'the outbox is full (max_messages, max_bytes or its disk budget): the oldest pending messages were evicted (policy drop-oldest)',
  outbox_rejected: 'the outbox is full (max_messages, max_bytes or its disk budget): new messages refused (policy reject-new)',
  outbox_too_large: 'a message larger than the outbox can hold (max_bytes, or one transaction\'s share of the WAL)',
};

interface EvictorAccess {
  /** The oldest rows after `after` (a page of them). */
  rows(after: number): Array<{ id: number; bytes: number }>;
  /** In flight (probably being acknowledged now) or acknowledged: never evicted. */
  busy(id: number): boolean;
  /** Deletes the row in the current transaction; false when it was not there. */
  remove(id: number): boolean;
}

/** drop-oldest inside one transaction: deletes the oldest rows that are not in flight, one at a time. */
class Evictor {
  dropped = 0;
  private after = 0;
  private rows: Array<{ id: number; bytes: number }> = [];

  /** `evicted`: told each row it deleted (the batch's own rows among them must not be cached). */
  constructor(private readonly access: EvictorAccess, private readonly evicted: (id: number) => void) {}

  /**
   * Evicts the oldest evictable row; false when none is left. A message of
   * this batch evicted by a newer one of the same batch still counts as
   * accepted then dropped, like any other evicted message.
   */
  one(): boolean {
    for (;;) {
      if (this.rows.length === 0) {
        this.rows = this.access.rows(this.after);
        if (this.rows.length === 0) return false;
      }
      const r = this.rows.shift()!;
      this.after = r.id;
      if (this.access.busy(r.id) || !this.access.remove(r.id)) continue;
      this.evicted(r.id);
      this.dropped++;
      return true;
    }
  }
}
