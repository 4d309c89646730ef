/**
 * The pending messages this process wrote to the outbox, also kept in
 * memory (bounded), so that handing them to the MQTT client does not read
 * back from SQLite what was just written: in steady operation every message
 * is served from here; rows from a previous run, or that fell out of the
 * cache, are read from the database.
 *
 * Invariant: every pending (not in flight) row with an id above `floor` is
 * in the cache. Anything that would break it raises the floor instead.
 */
import type { StoredMessage } from './outbox.js';

export class PendingCache {
  private readonly items = new Map<number, StoredMessage>(); // ascending ids (insertion order)
  private size = 0;

  constructor(public floor: number, private readonly maxItems = 10_000, private readonly maxBytes = 8 << 20) {}

  /** True when everything pending above `cursor` is here. */
  covers(cursor: number): boolean {
    return cursor >= this.floor;
  }

  /** A newly committed row (ids only grow). Evicts from the front past the bounds. */
  add(m: StoredMessage): void {
    this.items.set(m.id, m);
    this.size += m.bytes;
    while (this.items.size > this.maxItems || this.size > this.maxBytes) {
      const [id, old] = this.items.entries().next().value!;
      this.items.delete(id);
      this.size -= old.bytes;
      this.floor = Math.max(this.floor, id);
    }
  }

  /** Up to `limit` messages from the front, removed from the cache (they go in flight). */
  take(limit: number): StoredMessage[] {
    const out: StoredMessage[] = [];
    for (const [id, m] of this.items) {
      if (out.length >= limit) break;
      this.items.delete(id);
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
}
