/**
 * Splits a byte stream on a delimiter byte into bounded records: the shared
 * core of the COBS (0x00) and NDJSON (LF) decoders. A record longer than the
 * bound is dropped up to the next delimiter, reported once, and decoding
 * resumes after it — memory never exceeds `capacity`.
 */
export class DelimitedBuffer {
  private readonly buf: Buffer;
  private len = 0;
  private discarding = false;

  constructor(private readonly delimiter: number, capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Bytes of the current partial record. */
  get length(): number {
    return this.len;
  }

  get capacity(): number {
    return this.buf.length;
  }

  /**
   * Feeds a chunk. `onRecord` gets each complete record (delimiter excluded;
   * a view valid only during the call, possibly empty); `onOverflow` gets the
   * length reached by a record that did not fit, once per such record.
   */
  push(chunk: Uint8Array, onRecord: (record: Buffer) => void, onOverflow: (length: number) => void): void {
    const n = chunk.length;
    let pos = 0;
    while (pos < n) {
      const d = chunk.indexOf(this.delimiter, pos);
      const end = d < 0 ? n : d;
      if (!this.discarding && end > pos) {
        if (this.len + (end - pos) > this.buf.length) {
          // Longer than any valid record: drop it now rather than buffer it.
          onOverflow(this.len + (end - pos));
          this.discarding = true;
          this.len = 0;
        } else {
          this.buf.set(chunk.subarray(pos, end), this.len);
          this.len += end - pos;
        }
      }
      if (d < 0) break;
      if (this.discarding) this.discarding = false;
      else onRecord(this.buf.subarray(0, this.len));
      this.len = 0;
      pos = d + 1;
    }
  }

  /** Forgets any partial record (e.g. after the port was reopened). */
  reset(): void {
    this.len = 0;
    this.discarding = false;
  }
}
