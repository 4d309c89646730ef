/**
 * The bytes mqtt-packet's parser has received and not yet parsed, in the
 * agent's bundle in place of `bl` (scripts/bundle.mjs, bundle-shims/bl.cjs).
 *
 * Why not `bl`: its readUInt8/readUInt16BE/readUInt32BE first copy the bytes
 * they read into a new Buffer (a slice of the list), and its consume() makes
 * a new view of the chunk at each call. Parsing one 4-byte PUBACK made five
 * Buffers that way; with a QoS 1 burst, one PUBACK per event, that was about
 * 650 of the ~4,100 bytes the agent allocated per event, and about half of
 * the parser's time (bench/mqtt-parse.ts: 841 against 414 ns per PUBACK).
 * bl() is also a whole Duplex stream, made again at each parser error.
 * Here the reads index the chunks, and consumed bytes only move an offset.
 * Only what the parser uses is here (append, consume, length, the three
 * reads, slice, toString), with bl's results, errors included:
 * test/mqtt/packet-bytes.test.ts runs the parser on both, over every packet
 * type, split at every byte, and on damaged input.
 */
export class PacketBytes {
  /** Bytes not consumed yet. */
  length = 0;
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private head = 0;

  append(buf: Buffer | Uint8Array): this {
    const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (b.length === 0) return this;
    this.chunks.push(b);
    this.length += b.length;
    return this;
  }

  consume(bytes: number): this {
    let n = Math.trunc(bytes);
    if (!(n > 0)) return this; // NaN and negatives too, as bl
    while (n > 0 && this.chunks.length > 0) {
      const rest = this.chunks[0]!.length - this.head;
      if (n < rest) {
        this.head += n;
        this.length -= n;
        return this;
      }
      n -= rest;
      this.length -= rest;
      this.chunks.shift();
      this.head = 0;
    }
    return this;
  }

  readUInt8(position = 0): number {
    const offset = this.check(position, 1);
    const first = this.chunks[0]!;
    const i = this.head + offset;
    return i < first.length ? first[i]! : this.byteAt(offset);
  }

  readUInt16BE(position = 0): number {
    const offset = this.check(position, 2);
    const first = this.chunks[0]!;
    const i = this.head + offset;
    if (i + 2 <= first.length) return (first[i]! << 8) | first[i + 1]!;
    return (this.byteAt(offset) << 8) | this.byteAt(offset + 1);
  }

  readUInt32BE(position = 0): number {
    const offset = this.check(position, 4);
    const first = this.chunks[0]!;
    const i = this.head + offset;
    if (i + 4 <= first.length) return first.readUInt32BE(i);
    return this.byteAt(offset) * 0x1000000 + ((this.byteAt(offset + 1) << 16) | (this.byteAt(offset + 2) << 8) | this.byteAt(offset + 3));
  }

  /**
   * Bytes start..end as bl gives them: a view of the chunk when they lie in
   * one, a copy otherwise; negative positions count from the end; out of
   * range, clamped, and an empty Buffer when nothing is left; an end before
   * the start, as below.
   */
  slice(start?: number, end?: number): Buffer {
    let s = typeof start === 'number' ? (start < 0 ? start + this.length : start) : 0;
    let e = typeof end === 'number' ? (end < 0 ? end + this.length : end) : this.length;
    if (s < 0) s = 0;
    if (e > this.length) e = this.length;
    if (s >= this.length || e <= 0) return Buffer.alloc(0);
    // the chunk holding byte s
    let k = 0;
    let at = s + this.head;
    while (at >= this.chunks[k]!.length) at -= this.chunks[k++]!.length;
    const chunk = this.chunks[k]!;
    if (e < s) {
      // bl's answer to an end before the start (mqtt-packet asks it of some damaged packets): the
      // chunk's subarray(start, start + (end - start)), where a negative end counts from the
      // chunk's end, in bl's view of the chunk (what is left of it after consume()).
      const base = k === 0 ? this.head : 0;
      return chunk.subarray(base).subarray(at - base, at - base + (e - s));
    }
    if (at + (e - s) <= chunk.length) return chunk.subarray(at, at + (e - s));
    const out = Buffer.allocUnsafe(e - s);
    let filled = 0;
    while (filled < out.length) {
      const c = this.chunks[k++]!;
      const n = Math.min(c.length - at, out.length - filled);
      c.copy(out, filled, at, at + n);
      filled += n;
      at = 0;
    }
    return out;
  }

  toString(encoding?: BufferEncoding, start?: number, end?: number): string {
    return this.slice(start, end).toString(encoding);
  }

  /**
   * The offset to read `size` bytes at, as bl reads them (a slice of the
   * list): a negative position counts from the end. Past either end, or not
   * a whole number: the RangeError that a Buffer read throws (bl's, on the
   * short slice).
   */
  private check(position: number, size: number): number {
    const offset = position < 0 && position + size < 0 ? position + this.length : position;
    if (!(offset >= 0 && offset + size <= this.length) || !Number.isInteger(offset)) {
      throw new RangeError(`Attempt to read ${size} byte(s) at offset ${position} of ${this.length} buffered`);
    }
    return offset;
  }

  /** Byte `offset` (in range) when it is not in the first chunk. */
  private byteAt(offset: number): number {
    let at = offset + this.head;
    let k = 0;
    while (at >= this.chunks[k]!.length) at -= this.chunks[k++]!.length;
    return this.chunks[k]![at]!;
  }
}

/** What withPacketBytes() needs of an mqtt-packet parser (its byte list, and the method that makes a new one). */
export interface ListHoldingParser {
  _list: unknown;
  _resetState(): void;
}

/**
 * Gives an mqtt-packet parser PacketBytes as its byte list, now and after
 * each reset (an error makes it start over with a new list), as the bundle's
 * stand-in for bl does. For the compiled modules, where mqtt-packet has bl:
 * the tests and bench/mqtt-parse.ts compare the two on the same parser.
 */
export function withPacketBytes<P extends ListHoldingParser>(parser: P): P {
  const reset = parser._resetState;
  parser._resetState = function resetWithPacketBytes(this: P) {
    reset.call(this);
    this._list = new PacketBytes();
  };
  parser._resetState();
  return parser;
}
