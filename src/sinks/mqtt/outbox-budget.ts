/**
 * How `outbox.max_bytes` bounds the outbox's files on disk (database + WAL),
 * and the page arithmetic the outbox uses to stay inside it.
 *
 * The WAL grows by one frame (a page + 24 bytes) per page a transaction
 * changes, and only shrinks back after a checkpoint. SQLite's defaults
 * (checkpoint at 1000 frames, ~4 MiB) ignore the database's size: with a
 * message per commit, every commit appends 2-3 frames, and on a 2 MiB
 * partition the WAL alone filled the disk after ~250 messages (issue 11).
 * So the budget is split:
 *
 *   WAL      W = max_bytes / 8, between 16 frames and 8 MiB. A checkpoint
 *            runs once the WAL holds W/2 (wal_autocheckpoint); one
 *            transaction may change at most the other half (the outbox
 *            splits bigger group commits), so the WAL file never exceeds
 *            W; journal_size_limit gives it back down to W/2 afterwards.
 *   database max_bytes - W, as a page count: max_page_count makes SQLite
 *            refuse to grow past it, and the outbox evicts (drop-oldest)
 *            or refuses (reject-new) before it would, from the pages
 *            really in use (page_count - freelist_count) and an upper
 *            bound of the pages each new message needs.
 *
 * A message must fit in one transaction's share of the WAL (with as much
 * again to evict under drop-oldest): bigger ones are refused as too large
 * (about max_bytes/32 under drop-oldest, max_bytes/16 under reject-new;
 * 2 MiB / 4 MiB with the default 64 MiB).
 *
 * max_bytes below MIN_FILES_BYTES is raised to it for the files (the
 * smallest outbox SQLite can run: the schema pages, a few data pages and
 * a WAL for one transaction); the message bound (topic + payload <=
 * max_bytes) still applies as written.
 */

export const MIN_FILES_BYTES = 256 << 10;
const MAX_WAL_BYTES = 8 << 20;
const WAL_HEADER = 32;
const FRAME_HEADER = 24;
/** Pages a transaction changes besides the rows: page 1, sqlite_sequence, interior pages, a freelist trunk. */
export const TXN_FIXED_PAGES = 5;
/** Pages kept free for b-tree interior splits when a message is admitted one by one. */
export const SPLIT_RESERVE = 3;

export interface DiskBudget {
  /** What the files may take (max_bytes, at least MIN_FILES_BYTES). */
  filesBytes: number;
  pageSize: number;
  /** WAL share of filesBytes. */
  walBytes: number;
  /** wal_autocheckpoint, in frames. */
  checkpointFrames: number;
  /** journal_size_limit, in bytes. */
  walLimitBytes: number;
  /** Pages one transaction may change. */
  txnPages: number;
  /** max_page_count of the database. */
  dbPages: number;
}

export function diskBudget(maxBytes: number, pageSize: number): DiskBudget {
  const filesBytes = Math.max(maxBytes, MIN_FILES_BYTES);
  const frame = pageSize + FRAME_HEADER;
  const walBytes = Math.min(MAX_WAL_BYTES, Math.max(Math.floor(filesBytes / 8), WAL_HEADER + 16 * frame));
  const walFrames = Math.floor((walBytes - WAL_HEADER) / frame);
  const checkpointFrames = Math.max(2, Math.floor(walFrames / 2));
  return {
    filesBytes,
    pageSize,
    walBytes,
    checkpointFrames,
    walLimitBytes: WAL_HEADER + checkpointFrames * frame,
    // a checkpoint runs after a commit that reached checkpointFrames: before a transaction the WAL holds at most checkpointFrames - 1
    txnPages: walFrames - checkpointFrames + 1,
    dbPages: Math.floor((filesBytes - walBytes) / pageSize),
  };
}

/**
 * Upper bound of the pages a row takes, as a fraction of pages: its cell
 * on a table leaf (SQLite fills leaves in id order, each at least half
 * full with the next cell: hence x2), plus whole overflow pages for what
 * does not fit in the cell (SQLite's local/overflow split for table
 * leaves). `recordBytes` is the row's record (columns and header).
 */
export function rowPages(recordBytes: number, pageSize: number): number {
  const usable = pageSize;
  const maxLocal = usable - 35;
  const minLocal = Math.floor(((usable - 12) * 32) / 255) - 23;
  let local = recordBytes;
  let overflow = 0;
  if (recordBytes > maxLocal) {
    local = minLocal + ((recordBytes - minLocal) % (usable - 4));
    if (local > maxLocal) local = minLocal;
    overflow = Math.ceil((recordBytes - local) / (usable - 4));
  }
  // cell = 2-byte pointer + length and rowid varints (<= 9 + 9) + the local part + 4-byte overflow pointer
  return overflow + (2 * (local + 22)) / (usable - 8);
}

/** Record bytes of a message row: its columns, and generously their header and integer columns. */
export function recordBytes(topicBytes: number, payloadBytes: number, routeBytes: number): number {
  return topicBytes + payloadBytes + routeBytes + 48;
}
