/**
 * A map from integer ids (0 <= id < 2^53) to values, for the bookkeeping
 * of messages in flight: ids come nearly consecutive, each is set once and
 * deleted soon after, and a few hundred are live at a time.
 *
 * Why not a Map: under that churn V8's Map leaves a hole per delete and
 * copies itself into a new table whenever the holes fill it. In the agent's
 * 20,000-event QoS 1 bursts the Maps a message went through allocated ~430
 * bytes per message (~14 % of all it allocated: a sampling heap profile),
 * and their set, find, delete and rehash took ~4 % of its CPU (perf).
 *
 * Here an id has one slot, id modulo the capacity, in fixed arrays: live ids
 * that are less than the capacity apart never meet, and set, get and delete
 * are an array access each, allocating nothing. An id whose slot is taken
 * (ids further apart than that: a message held back while thousands went)
 * goes to a Map beside it; when that Map holds more than a quarter of the
 * capacity, the capacity doubles (up to MAX_CAPACITY, then the Map takes the
 * rest). The capacity never shrinks: what is live is the caller's to bound.
 */
/** Free slots hold NaN, which equals no id. */
const EMPTY = NaN;
const MAX_CAPACITY = 1 << 16;

export class IdTable<V> {
  private ids: Float64Array;
  private values: Array<V | undefined>;
  private mask: number;
  private direct = 0;
  /** Ids whose slot another id held when they were set. */
  private readonly others = new Map<number, V>();

  constructor(capacity = 256) {
    let cap = 8;
    while (cap < capacity && cap < MAX_CAPACITY) cap *= 2;
    this.ids = new Float64Array(cap).fill(EMPTY);
    this.values = new Array<V | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.direct + this.others.size;
  }

  has(id: number): boolean {
    return this.ids[slot(id, this.mask)] === id || (this.others.size > 0 && this.others.has(id));
  }

  get(id: number): V | undefined {
    const i = slot(id, this.mask);
    if (this.ids[i] === id) return this.values[i];
    return this.others.size > 0 ? this.others.get(id) : undefined;
  }

  set(id: number, value: V): this {
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`IdTable: id ${id} is not an integer in [0, 2^53)`);
    const i = slot(id, this.mask);
    const k = this.ids[i]!;
    if (k === id || (Number.isNaN(k) && !(this.others.size > 0 && this.others.has(id)))) {
      if (k !== id) this.direct++;
      this.ids[i] = id;
      this.values[i] = value;
      return this;
    }
    this.others.set(id, value);
    if (this.others.size * 4 > this.ids.length && this.ids.length < MAX_CAPACITY) this.grow();
    return this;
  }

  delete(id: number): boolean {
    const i = slot(id, this.mask);
    if (this.ids[i] === id) {
      this.ids[i] = EMPTY;
      this.values[i] = undefined;
      this.direct--;
      return true;
    }
    return this.others.size > 0 && this.others.delete(id);
  }

  clear(): void {
    if (this.direct > 0) {
      this.ids.fill(EMPTY);
      this.values.fill(undefined);
      this.direct = 0;
    }
    this.others.clear();
  }

  /** Every entry, in no particular order; the callback must not change the table. */
  forEach(fn: (value: V, id: number) => void): void {
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) if (!Number.isNaN(ids[i]!)) fn(this.values[i] as V, ids[i]!);
    for (const [id, v] of this.others) fn(v, id);
  }

  private grow(): void {
    const oldIds = this.ids;
    const oldValues = this.values;
    const moved = [...this.others];
    const cap = oldIds.length * 2;
    this.ids = new Float64Array(cap).fill(EMPTY);
    this.values = new Array<V | undefined>(cap).fill(undefined);
    this.mask = cap - 1;
    this.direct = 0;
    this.others.clear();
    for (let i = 0; i < oldIds.length; i++) if (!Number.isNaN(oldIds[i]!)) this.set(oldIds[i]!, oldValues[i] as V);
    for (const [id, v] of moved) this.set(id, v);
  }
}

/** id modulo 2^32 (>>> 0), then modulo the capacity: consecutive ids take consecutive slots. */
function slot(id: number, mask: number): number {
  return (id >>> 0) & mask;
}
