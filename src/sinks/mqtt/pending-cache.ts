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
  private readonly items = new Map<number, StoredMessage>(); // ascending ids (insertion order)
  private size = 0;
  /** Rows were committed past the bounds and are only in the database: nothing is added until restart(). */
  private overflow = false;

  constructor(public floor: number, private readonly maxItems = 10_000, private readonly maxBytes = 8 << 20) {}

  /** True when the next pending rows above `cursor` are here. */
  covers(cursor: number): boolean {
    return cursor >= this.floor && (this.items.size > 0 || !this.overflow);
  }

  /** Rows newer than those held are in the database only. */
  get overflowed(): boolean {
    return this.overflow;
  }

  get length(): number {
    return this.items.size;
  }

  /** A newly committed row (ids only grow); not kept when the bounds are reached or were since the last restart. */
  add(m: StoredMessage): void {
    if (this.overflow) return;
    if (this.items.size + 1 > this.maxItems || this.size + m.bytes > this.maxBytes) {
      this.overflow = true;
      return;
    }
    this.items.set(m.id, m);
    this.size += m.bytes;
  }

  /** Up to `limit` messages from the front, removed from the cache (they go in flight). */
  take(limit: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    // values(), not entries: destructuring [id, m] allocated an array per message
    for (const m of this.items.values()) {
      if (out.length >= limit) break;
      this.items.delete(m.id);
      this.size -= m.bytes;
      out.push(m);
    }
    return out;
  }

  delete(id: number): void {
    const m = this.items.get(id);
    if (m) {
      this.items.delete(id);
      this.size -= m.bytes;
    }
  }

  /** Row `id` is pending again but not cached (released): the database serves up to it. */
  uncover(id: number): void {
    this.floor = Math.max(this.floor, id);
  }

  /** The database served every row up to `lastId`, the newest: the rows committed from now on are cached again. */
  restart(lastId: number): void {
    this.items.clear();
    this.size = 0;
    this.overflow = false;
    this.floor = Math.max(this.floor, lastId);
  }
}
