/**
 * Small id tables shared by the client and the server.
 */
import { IdTable } from '../util/id-table.js';

const MAX_ID = 0xffff;

/**
 * The calls and describes waiting for their answer, by 16-bit id: one
 * counter, never 0, never an id still in use (wraps around, skipping busy
 * ids), at most `limit` in use.
 *
 * In an IdTable rather than a Map and a Set beside it: each call sets and
 * deletes one id, and under that churn V8's Map and Set copy themselves as
 * their deleted entries fill them (their rehashes, sets and deletes were
 * ~3 % of the instructions of a sequential call against the native binder,
 * counted with valgrind's cachegrind). Ids are consecutive, so they take
 * consecutive slots.
 */
export class CallTable<V> {
  private next = 1;
  private readonly table = new IdTable<V>(64);

  constructor(readonly limit: number) {}

  get size(): number {
    return this.table.size;
  }

  /** Stores `value` under a free id and returns that id, or 0 when `limit` ids are in use. */
  add(value: V): number {
    if (this.table.size >= this.limit) return 0;
    for (;;) {
      const id = this.next;
      this.next = id === MAX_ID ? 1 : id + 1;
      if (!this.table.has(id)) {
        this.table.set(id, value);
        return id;
      }
    }
  }

  get(id: number): V | undefined {
    return this.table.get(id);
  }

  delete(id: number): void {
    this.table.delete(id);
  }

  /** Empties the table; returns what it held, oldest id first. */
  drain(): V[] {
    const held: Array<[number, V]> = [];
    // The ids given since the counter last passed `next` are the newest: age is the distance from it.
    this.table.forEach((v, id) => held.push([(id - this.next + MAX_ID) % MAX_ID, v]));
    this.table.clear();
    held.sort((a, b) => a[0] - b[0]);
    return held.map(([, v]) => v);
  }
}

/** Bounded set of recently seen keys (oldest forgotten first). */
export class RecentSet {
  private readonly keys = new Set<string>();
  constructor(private readonly capacity: number) {}

  /** Adds `key`; returns false if it was already there. */
  add(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.capacity) {
      const oldest = this.keys.values().next().value as string;
      this.keys.delete(oldest);
    }
    return true;
  }
}
