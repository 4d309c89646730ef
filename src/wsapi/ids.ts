/**
 * Small id tables shared by the client and the server.
 */

/**
 * 16-bit id allocator for calls and describes: one counter, never 0, never
 * an id still in use (wraps around, skipping busy ids), at most `limit` in use.
 */
export class CallIdAllocator {
  private next = 1;
  private readonly inUse = new Set<number>();

  constructor(readonly limit: number) {}

  get size(): number {
    return this.inUse.size;
  }

  /** Returns a free id, or 0 when `limit` ids are in use. */
  allocate(): number {
    if (this.inUse.size >= this.limit) return 0;
    for (;;) {
      const id = this.next;
      this.next = id === 0xffff ? 1 : id + 1;
      if (!this.inUse.has(id)) {
        this.inUse.add(id);
        return id;
      }
    }
  }

  release(id: number): void {
    this.inUse.delete(id);
  }

  clear(): void {
    this.inUse.clear();
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
