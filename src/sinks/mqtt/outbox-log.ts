/**
 * What the outbox says in the log, rate-limited: on a full disk every
 * commit fails (hundreds per second at 200 events/s), into a journal that
 * often lives on the same full disk. Each kind of line has its own
 * RateLimitedLog (10 per 10 s, then a count of what was held back), and a
 * run of failed commits ends with one line that sums it up.
 */
import { RateLimitedLog, type Logger } from '../../util/log.js';

export class OutboxLog {
  private readonly failures: RateLimitedLog;
  private readonly drops: RateLimitedLog;
  private readonly dead: RateLimitedLog;
  private readonly reads: RateLimitedLog;
  private failedCommits = 0;
  private refused = 0;
  private failingSince = 0;

  constructor(private readonly log: Logger, private readonly path: string) {
    this.failures = new RateLimitedLog((m) => log.error(m));
    this.drops = new RateLimitedLog((m) => log.warn(m));
    this.dead = new RateLimitedLog((m) => log.error(m));
    this.reads = new RateLimitedLog((m) => log.error(m));
  }

  /** A commit failed: `refused` messages of it were refused. */
  commitFailed(err: Error, refused: number): void {
    if (this.failedCommits === 0) this.failingSince = Date.now();
    this.failedCommits++;
    this.refused += refused;
    const what = refused > 0 ? `${refused} message(s) refused` : 'acknowledged messages stay until the next commit';
    this.failures.log(`outbox ${this.path}: commit failed: ${err.message} (${what})`);
  }

  /** Messages refused without a commit of their own, after one failed (the rest of a split group commit). */
  refusedToo(n: number): void {
    this.refused += n;
  }

  /** A commit succeeded: ends a run of failures with one summary line. */
  commitSucceeded(): void {
    if (this.failedCommits === 0) return;
    const s = ((Date.now() - this.failingSince) / 1000).toFixed(1);
    this.log.warn(`outbox ${this.path}: commits succeed again after ${this.failedCommits} failed commit(s) over ${s} s; ${this.refused} message(s) were refused (dropped, reason outbox_error)`);
    this.failedCommits = 0;
    this.refused = 0;
  }

  /** Messages dropped by a bound (counted in afb_edge_dropped_total{reason}). */
  dropped(reason: string, n: number, detail: string): void {
    this.drops.log(`outbox ${this.path}: ${n} message(s) dropped (${reason}): ${detail}`);
  }

  deadLettered(id: number, problem: string, kept: boolean): void {
    const where = kept ? 'moved to the dead-letter table outbox_dead' : 'deleted (it could not be copied to the dead-letter table)';
    this.dead.log(`outbox ${this.path}: row ${id} cannot be sent: ${problem}; ${where}, dropped (reason outbox_invalid)`);
  }

  readFailed(msg: string): void {
    this.reads.log(`outbox ${this.path}: ${msg}`);
  }
}
