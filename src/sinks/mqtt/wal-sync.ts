/**
 * The outbox's fsync, off the event loop. With `synchronous: full` SQLite
 * would fsync the WAL inside COMMIT, and better-sqlite3 runs COMMIT on the
 * event loop: every commit then stalls the whole agent for one fsync
 * (2.9 ms median, 6.9 ms p99 on the CI machine's disk), so events, acks and
 * the broker's traffic all queue behind the disk. Instead the outbox commits
 * with `synchronous = NORMAL` (the WAL frames are written, not synced) and
 * asks for this fsync of the WAL file, which runs on libuv's thread pool.
 * An enqueue says 'accepted' only once the fsync covering its commit
 * returned, so "accepted" still means "on stable storage", as SQLite's FULL
 * would make it; the messages are meanwhile already on their way to the
 * broker (a power cut before the fsync loses rows nobody was told were
 * accepted, some of which the broker may have: at most a duplicate, never a
 * loss). fsync of any descriptor of a file syncs the file (POSIX), so this
 * descriptor of our own serves; it only reads, and SQLite's locks are on the
 * database file, not on the WAL.
 *
 * Group fsync: requests made while an fsync runs wait for the next one,
 * which then covers all of them. And two fsyncs start at least
 * `minIntervalMs` apart: at a steady 1,000 events/s each event is its own
 * commit, and on a disk that syncs in a fraction of a millisecond each had
 * its own fsync, 1,000 a second; with 10 ms at most 100 (bench/bridge.ts,
 * steady phase: ~55 µs of system time on the thread pool and ~20 µs on the
 * event loop per event less). What it costs: 'accepted' comes up to that
 * much later, and a power cut may take the messages of the last interval
 * that the broker did not acknowledge yet (nobody was told they were
 * accepted). On storage whose fsync takes longer than the interval (eMMC,
 * SD cards: several ms), the fsyncs were already that far apart and nothing
 * changes.
 */
import { closeSync, fsync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

export type SyncDone = (err: Error | null) => void;

export class WalSync {
  /** fsyncs done (each covers every commit made before it started). */
  syncs = 0;
  private fd: number | undefined;
  private running = false;
  private closing = false;
  private waiting: SyncDone[] = [];
  /** performance.now() when the last fsync started. */
  private lastStart = -Infinity;
  /** The next fsync, due minIntervalMs after the last one started. */
  private spacing: NodeJS.Timeout | undefined;

  constructor(private readonly walPath: string, private readonly minIntervalMs = 0) {}

  /** `done` is called once every commit made so far is on stable storage (or with the error that prevented it). */
  request(done: SyncDone): void {
    this.waiting.push(done);
    if (!this.running && this.spacing === undefined) this.start();
  }

  /** Syncs now, on the calling thread, and answers every request (close). */
  flushSync(): void {
    this.cancelSpacing();
    if (this.waiting.length === 0 && !this.running) return;
    const batch = this.waiting.splice(0);
    let error: Error | null = null;
    try {
      fsyncSync(this.descriptor());
      this.syncs++;
    } catch (err) {
      error = err as Error;
    }
    for (const done of batch) done(error);
  }

  /** Answers what waits for a spaced fsync (with one now), then closes the descriptor (after the fsync under way, if any: the thread pool still uses it). */
  close(): void {
    if (this.spacing !== undefined) this.flushSync();
    this.closing = true;
    if (!this.running) this.closeFd();
  }

  private cancelSpacing(): void {
    if (this.spacing === undefined) return;
    clearTimeout(this.spacing);
    this.spacing = undefined;
  }

  private closeFd(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private start(): void {
    const wait = this.lastStart + this.minIntervalMs - performance.now();
    if (wait > 0) {
      this.spacing = setTimeout(() => {
        this.spacing = undefined;
        if (this.waiting.length > 0) this.start();
      }, wait);
      return;
    }
    this.lastStart = performance.now();
    const batch = this.waiting.splice(0);
    let fd: number;
    try {
      fd = this.descriptor();
    } catch (err) {
      for (const done of batch) done(err as Error);
      return;
    }
    this.running = true;
    fsync(fd, (err) => {
      this.running = false;
      if (!err) this.syncs++;
      for (const done of batch) done(err);
      if (this.closing) this.closeFd();
      else if (this.waiting.length > 0) this.start();
    });
  }

  /**
   * Opened at the first sync, once a commit made the WAL exist. The first
   * time, its directory is synced too: a WAL file whose directory entry is
   * not on disk is lost with everything in it (SQLite's FULL does the same).
   */
  private descriptor(): number {
    if (this.fd !== undefined) return this.fd;
    const fd = openSync(this.walPath, 'r');
    const dir = openSync(dirname(this.walPath), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    this.fd = fd;
    return fd;
  }
}
