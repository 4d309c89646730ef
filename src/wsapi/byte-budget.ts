/**
 * A number of bytes shared by several holders (the connections of one
 * server): each holder declares how much it holds now, and growth that would
 * take the total past the limit is refused, so the holder can be closed.
 */
export class ByteBudget {
  private usedBytes = 0;

  constructor(readonly limit: number) {}

  get used(): number {
    return this.usedBytes;
  }

  /**
   * Moves a holder's share from `before` to `after` bytes. Shrinking always
   * succeeds; growth past the limit is refused and changes nothing.
   */
  resize(before: number, after: number): boolean {
    const next = this.usedBytes - before + after;
    if (after > before && next > this.limit) return false;
    this.usedBytes = next;
    return true;
  }
}
