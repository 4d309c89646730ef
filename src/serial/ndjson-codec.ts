import { DelimitedBuffer } from './delimited-buffer.js';
/**
 * Newline-delimited JSON for MCU serial links (issue 4), no I/O.
 *
 * One JSON value per line, '\n' terminated; a '\r' before it is tolerated
 * (MCU printf-style firmware often sends CRLF). The newline is the
 * resynchronisation point: after garbage or a cut line, the next complete
 * line decodes again. Lines are split on bytes and decoded as UTF-8 per line,
 * never per chunk, so a multi-byte character split across serial reads is
 * intact. Invalid UTF-8 counts as 'bad-json' (JSON text is UTF-8, RFC 8259).
 */
export type NdjsonRejectReason = 'bad-json' | 'too-long';

export interface NdjsonDecoderOptions {
  /** Largest line accepted, in bytes, line terminator excluded (default 64 KiB). */
  maxLine?: number;
  /** Called for every rejected line, e.g. for a debug log (optional). */
  onReject?: (reason: NdjsonRejectReason, lineLength: number) => void;
}

export interface NdjsonStats {
  /** Lines decoded into a value. */
  lines: number;
  /** Rejected lines per reason; an over-long line counts once. */
  rejected: Record<NdjsonRejectReason, number>;
}

export const DEFAULT_MAX_LINE = 64 * 1024;

// fatal: invalid UTF-8 is an error, not U+FFFD. Measured faster than
// isUtf8() + toString() on short lines (Node 20).
const UTF8 = new TextDecoder('utf-8', { fatal: true });

const LF = 0x0a;
const CR = 0x0d;

/**
 * Streaming decoder: `push` takes any chunk and returns the values of the
 * lines it completed. At most `bufferLimit` bytes are held; a longer line is
 * dropped up to its newline and counted once as 'too-long'. Never throws on
 * input.
 */
export class NdjsonDecoder {
  readonly stats: NdjsonStats = { lines: 0, rejected: { 'bad-json': 0, 'too-long': 0 } };
  readonly maxLine: number;
  private readonly records: DelimitedBuffer;
  private readonly onReject: ((reason: NdjsonRejectReason, lineLength: number) => void) | undefined;

  constructor(options: NdjsonDecoderOptions = {}) {
    this.maxLine = options.maxLine ?? DEFAULT_MAX_LINE;
    if (!Number.isInteger(this.maxLine) || this.maxLine < 1 || this.maxLine > 64 * 1024 * 1024) {
      throw new RangeError(`NdjsonDecoder: maxLine must be an integer in 1..67108864, got ${options.maxLine}`);
    }
    // +1: room for the '\r' of a maximal CRLF line.
    this.records = new DelimitedBuffer(LF, this.maxLine + 1);
    this.onReject = options.onReject;
  }

  /** Bytes of the current partial line held. */
  get bufferedLength(): number {
    return this.records.length;
  }

  /** Upper bound of bufferedLength. */
  get bufferLimit(): number {
    return this.records.capacity;
  }

  push(chunk: Uint8Array): unknown[] {
    const out: unknown[] = [];
    this.records.push(chunk, (line) => this.finishLine(line, out), (length) => this.reject('too-long', length));
    return out;
  }

  /** Forget any partial line (e.g. after the port was reopened). Not counted. */
  reset(): void {
    this.records.reset();
  }

  private finishLine(record: Buffer, out: unknown[]): void {
    let end = record.length;
    if (end > 0 && record[end - 1] === CR) end--;
    if (end > this.maxLine) return this.reject('too-long', end);
    const line = record.subarray(0, end);
    let text: string;
    try {
      text = UTF8.decode(line);
    } catch {
      return this.reject('bad-json', end);
    }
    if (text.trim() === '') return; // empty (or blank) line: keep-alive, not an error
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.reject('bad-json', end);
    }
    this.stats.lines++;
    out.push(value);
  }

  private reject(reason: NdjsonRejectReason, lineLength: number): void {
    this.stats.rejected[reason]++;
    this.onReject?.(reason, lineLength);
  }
}

/**
 * Write side: `value` as one JSON line, '\n' terminated. Refuses what JSON
 * cannot represent faithfully instead of sending something else: undefined,
 * functions and symbols (at top level or in arrays, where JSON.stringify
 * would turn them into null), non-finite numbers (would become null),
 * BigInt and cycles. An undefined object property is omitted, as an absent
 * optional field.
 */
export function encodeLine(value: unknown): Buffer {
  let text: string | undefined;
  let topLevel = true; // the replacer's first call is for the value itself
  try {
    text = JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
      const where = topLevel ? 'top level' : `key ${JSON.stringify(key)}`;
      topLevel = false;
      if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError(`non-finite number ${v} at ${where}`);
      if (typeof v === 'bigint') throw new TypeError(`BigInt ${v}n at ${where}`);
      if (typeof v === 'function' || typeof v === 'symbol') throw new TypeError(`${typeof v} at ${where}`);
      if (v === undefined && (Array.isArray(this) || where === 'top level')) throw new TypeError(`undefined at ${where}`);
      return v;
    });
  } catch (err) {
    throw new TypeError(`encodeLine: value cannot be represented as JSON: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) throw new TypeError('encodeLine: value cannot be represented as JSON');
  return Buffer.from(text + '\n', 'utf8');
}
