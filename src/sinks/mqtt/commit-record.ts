/**
 * The outbox's commit record: a 48-byte file beside the database
 * (`outbox.db-commit`) that says, after every commit, how many messages
 * the outbox held and which ids. It exists to detect a loss SQLite does
 * not report: when the WAL is damaged (garbage after a crash, a torn
 * write), SQLite keeps the frames up to the last sound commit and silently
 * drops the rest (by design: a WAL frame is valid only if every frame
 * before it is). Comparing what the database holds at start-up with this
 * record gives the number of accepted messages that were lost.
 *
 * Hot path: one pwrite of 48 bytes per commit, no fsync (the database's
 * own commits keep their durability; this file only needs to outlive the
 * process, which any completed write() does). After a power cut it may be
 * one write behind (never ahead of a synchronous=full database): the loss
 * of the very last commit may then go unreported. A torn or foreign file
 * fails its checksum and is ignored (logged).
 *
 * Layout (little-endian): "AFBOXCR1", maxId f64, count f64, oldestId f64,
 * written-at ms f64, CRC-32 of the 40 bytes before, 4 zero bytes.
 */
import fs from 'node:fs';
import { crc32 } from '../../serial/crc.js';

const MAGIC = Buffer.from('AFBOXCR1');
const SIZE = 48;

export interface CommitState {
  /** Highest message id ever committed (ids only grow). */
  maxId: number;
  /** Messages in the outbox after the commit. */
  count: number;
  /** Id of the oldest of them (0 when empty). */
  oldestId: number;
}

/** `state` when the record is usable; else `problem` says why not (undefined: there is none yet). */
export interface RecordRead {
  state?: CommitState;
  problem?: string;
}

/** The record's path for the database at `dbPath`. */
export function commitRecordPath(dbPath: string): string {
  return `${dbPath}-commit`;
}

/** Reads the record; `problem` is undefined when there is none (first start), else why it cannot be used. */
export function readCommitRecord(path: string): RecordRead {
  let data: Buffer;
  try {
    data = fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: code === 'ENOENT' ? undefined : `cannot read ${path}: ${code ?? (err as Error).message}` };
  }
  if (data.length !== SIZE || !data.subarray(0, 8).equals(MAGIC)) return { problem: `${path} is not a commit record (${data.length} bytes)` };
  if (crc32(data, 0, 40) !== data.readUInt32LE(40)) return { problem: `${path} fails its checksum (a torn write?)` };
  const state = { maxId: data.readDoubleLE(8), count: data.readDoubleLE(16), oldestId: data.readDoubleLE(24) };
  if (![state.maxId, state.count, state.oldestId].every((v) => Number.isSafeInteger(v) && v >= 0)) return { problem: `${path} holds impossible values` };
  return { state };
}

export class CommitRecord {
  private fd: number | undefined;
  private readonly buf = Buffer.alloc(SIZE);

  /** Opens (creates) the file; `onError` gets each failure to write it (the outbox goes on without it). */
  constructor(readonly path: string, private readonly onError: (err: Error) => void) {
    MAGIC.copy(this.buf, 0);
    try {
      this.fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    } catch (err) {
      onError(new Error(`cannot open the commit record ${path}: ${(err as Error).message}: a damaged WAL after a crash would go unreported`));
    }
  }

  write(s: CommitState): void {
    if (this.fd === undefined) return;
    const b = this.buf;
    b.writeDoubleLE(s.maxId, 8);
    b.writeDoubleLE(s.count, 16);
    b.writeDoubleLE(s.oldestId, 24);
    b.writeDoubleLE(Date.now(), 32);
    b.writeUInt32LE(crc32(b, 0, 40), 40);
    try {
      fs.writeSync(this.fd, b, 0, SIZE, 0);
    } catch (err) {
      this.onError(new Error(`cannot write the commit record ${this.path}: ${(err as Error).message}`));
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* nothing to do */
    }
    this.fd = undefined;
  }
}
