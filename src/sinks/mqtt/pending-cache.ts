/**
 * The pending messages this process wrote to the outbox, also kept in
 * memory (bounded), so that handing them to the MQTT client does not read
 * back from SQLite what was just written: in steady operation every message
 * is served from here; rows from a previous run, or written while the cache
 * was full, are read from the database.
 *
 * Invariant: the cache holds every pending (not in flight) row with an id in
 * (floor, last id cached], in id order. Anything that would break it raises
 * the floor instead.
 *
 * When it is full, new rows are not added (`overflowed`), rather than
 * evicting the oldest: delivery is in id order, so the oldest are the next
 * to go out, and evicting them made a burst larger than the cache read back
 * nearly every row from the database (bench/bridge.ts, QoS 1). Once the
 * database has served everything up to the newest row, the cache starts
 * again (`restart`).
 */
import type { StoredMessage } from './outbox.js';

export class PendingCache {
  /**
   * The messages in id order, in a ring from `head` (`slots` of them, holes
   * included); a deleted one leaves its slot undefined and its id in `ids`,
   * which binary search needs. A ring rather than a Map: a Map churned by
   * every message copies itself as its deletes pile up (see
   * src/util/id-table.ts), and the cache only ever takes from the front and
   * adds at the back.
   */
  private msgs: Array<StoredMessage | undefined> = new Array<StoredMessage | undefined>(64).fill(undefined);
  private ids = new Float64Array(64);
  private head = 0;
  private slots = 0;
  private live = 0;
  private size = 0;
  /** Rows were committed past the bounds and are only in the database: nothing is added until restart(). */
  private overflow = false;

  constructor(public floor: number, private readonly maxItems = 10_000, private readonly maxBytes = 8 << 20) {}

  /** True when the next pending rows above `cursor` are here. */
  covers(cursor: number): boolean {
    return cursor >= this.floor && (this.live > 0 || !this.overflow);
  }

  /** Rows newer than those held are in the database only. */
  get overflowed(): boolean {
    return this.overflow;
  }

  get length(): number {
    return this.live;
  }

  /** A newly committed row (ids only grow); not kept when the bounds are reached or were since the last restart. */
  add(m: StoredMessage): void {
    if (this.overflow) return;
    if (this.live + 1 > this.maxItems || this.size + m.bytes > this.maxBytes) {
      this.overflow = true;
      return;
    }
    if (this.slots === this.msgs.length) this.resize();
    const at = (this.head + this.slots) % this.msgs.length;
    this.msgs[at] = m;
    this.ids[at] = m.id;
    this.slots++;
    this.live++;
    this.size += m.bytes;
  }

  /** Up to `limit` messages from the front, removed from the cache (they go in flight). */
  take(limit: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    const msgs = this.msgs;
    while (this.slots > 0 && out.length < limit) {
      const m = msgs[this.head];
      msgs[this.head] = undefined;
      this.head = (this.head + 1) % msgs.length;
      this.slots--;
      if (m === undefined) continue;
      this.live--;
      this.size -= m.bytes;
      out.push(m);
    }
    return out;
  }

  delete(id: number): void {
    // binary search over the ring's ids (ascending from head)
    let lo = 0;
    let hi = this.slots - 1;
    const n = this.msgs.length;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = (this.head + mid) % n;
      const k = this.ids[at]!;
      if (k < id) lo = mid + 1;
      else if (k > id) hi = mid - 1;
      else {
        const m = this.msgs[at];
        if (m !== undefined) {
          this.msgs[at] = undefined;
          this.live--;
          this.size -= m.bytes;
        }
        return;
      }
    }
  }

  /** Row `id` is pending again but not cached (released): the database serves up to it. */
  uncover(id: number): void {
    this.floor = Math.max(this.floor, id);
  }

  /** The database served every row up to `lastId`, the newest: the rows committed from now on are cached again. */
  restart(lastId: number): void {
    this.msgs.fill(undefined);
    this.head = 0;
    this.slots = 0;
    this.live = 0;
    this.size = 0;
    this.overflow = false;
    this.floor = Math.max(this.floor, lastId);
  }

  /** The ring is full of slots: holes are squeezed out, and it doubles if that was not enough. */
  private resize(): void {
    const n = this.msgs.length;
    const cap = this.live * 2 > n ? n * 2 : n;
    const msgs = new Array<StoredMessage | undefined>(cap).fill(undefined);
    const ids = new Float64Array(cap);
    let k = 0;
    for (let i = 0; i < this.slots; i++) {
      const at = (this.head + i) % n;
      const m = this.msgs[at];
      if (m === undefined) continue;
      msgs[k] = m;
      ids[k++] = this.ids[at]!;
    }
    this.msgs = msgs;
    this.ids = ids;
    this.head = 0;
    this.slots = k;
  }
}
