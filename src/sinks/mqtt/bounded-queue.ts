/**
 * A FIFO ring of fixed capacity: pushing into a full queue evicts (and
 * returns) the oldest item. Used for QoS 0 messages waiting for the
 * connection, so an outage costs at most `capacity` messages of memory.
 */
export class BoundedQueue<T> {
  private readonly items: Array<T | undefined>;
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(Math.max(0, capacity));
  }

  get length(): number {
    return this.size;
  }

  /** Adds `item`; returns the evicted oldest item, or `item` itself when the capacity is 0. */
  push(item: T): T | undefined {
    if (this.capacity === 0) return item;
    let evicted: T | undefined;
    if (this.size === this.capacity) {
      evicted = this.shift();
    }
    this.items[(this.head + this.size) % this.capacity] = item;
    this.size++;
    return evicted;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return item;
  }

  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.size = 0;
  }
}
