/**
 * COBS + CRC framing for custom MCU serial links (issue 4), no I/O.
 *
 * Wire format of one frame:
 *
 *     COBS( payload ‖ CRC(payload) big-endian ) 0x00
 *
 * COBS (Consistent Overhead Byte Stuffing, Cheshire & Baker 1999) removes
 * every 0x00 from the block, so 0x00 only ever means "end of frame": after
 * garbage, line noise or a frame cut by a reset, the receiver is in sync
 * again at the next 0x00. The CRC (CRC-16/CCITT-FALSE or CRC-32, see crc.ts)
 * catches corrupted bytes COBS cannot see. Empty blocks (0x00 0x00) are
 * ignored without being counted: senders commonly emit a leading 0x00 to
 * flush whatever half frame the receiver holds.
 */
import { DelimitedBuffer } from './delimited-buffer.js';
import { crc16ccitt, crc32 } from './crc.js';

export type CrcKind = 'crc16' | 'crc32';

export type CobsRejectReason = 'cobs-invalid' | 'crc-mismatch' | 'too-short' | 'too-long';

export interface CobsDecoderOptions {
  /** Check appended to each payload (default 'crc16'). */
  crc?: CrcKind;
  /** Largest payload accepted, in bytes, CRC excluded (default 1024). */
  maxFrame?: number;
  /** Called for every rejected frame, e.g. for a debug log (optional). */
  onReject?: (reason: CobsRejectReason, encodedLength: number) => void;
}

export interface CobsStats {
  /** Frames decoded and verified. */
  frames: number;
  /** Rejected frames per reason; an over-long run counts once. */
  rejected: Record<CobsRejectReason, number>;
}

export const DEFAULT_MAX_FRAME = 1024;

export function crcLength(kind: CrcKind): 2 | 4 {
  return kind === 'crc32' ? 4 : 2;
}

/** Worst-case COBS size of n bytes (one code byte per 254 data bytes, at least one), delimiter excluded. */
export function cobsMaxEncodedLength(n: number): number {
  return n + Math.max(1, Math.ceil(n / 254));
}

/**
 * COBS-encode `payload`. Returns the stuffed block WITHOUT the 0x00
 * delimiter (encodeFrame adds CRC and delimiter). Uses the minimal form: a
 * block ending on a full 254-byte group has no trailing 0x01 code.
 */
export function cobsEncode(payload: Uint8Array): Buffer {
  const n = payload.length;
  const out = Buffer.allocUnsafe(cobsMaxEncodedLength(n));
  let codeIdx = 0;
  let o = 1;
  let code = 1;
  for (let i = 0; i < n; i++) {
    const b = payload[i]!;
    if (b === 0) {
      out[codeIdx] = code;
      codeIdx = o++;
      code = 1;
    } else {
      out[o++] = b;
      code++;
      // A full group (254 data bytes): close it, and open a new one only
      // if input remains (minimal encoding, matches the published vectors).
      if (code === 0xff && i < n - 1) {
        out[codeIdx] = code;
        codeIdx = o++;
        code = 1;
      }
    }
  }
  out[codeIdx] = code;
  return out.subarray(0, o);
}

/**
 * Decode one COBS block (delimiter excluded). Returns null when the block is
 * not valid COBS: empty, contains 0x00, or a code points past its end.
 */
export function cobsDecode(block: Uint8Array): Buffer | null {
  const n = block.length;
  if (n === 0) return null;
  const out = Buffer.allocUnsafe(n); // decoded is always shorter than encoded
  let i = 0;
  let o = 0;
  while (i < n) {
    const code = block[i++]!;
    if (code === 0) return null;
    const end = i + code - 1;
    if (end > n) return null;
    for (; i < end; i++) {
      const b = block[i]!;
      if (b === 0) return null;
      out[o++] = b;
    }
    // A group shorter than 254 data bytes stands for "data then 0x00",
    // except the last one (the implicit zero is the delimiter itself).
    if (code !== 0xff && i < n) out[o++] = 0;
  }
  return out.subarray(0, o);
}

function appendCrc(payload: Uint8Array, kind: CrcKind): Buffer {
  const len = payload.length;
  const buf = Buffer.allocUnsafe(len + crcLength(kind));
  buf.set(payload, 0);
  if (kind === 'crc32') buf.writeUInt32BE(crc32(payload), len);
  else buf.writeUInt16BE(crc16ccitt(payload), len);
  return buf;
}

/** Write side: one complete frame, COBS(payload ‖ CRC) 0x00, ready for the serial port. */
export function encodeFrame(payload: Uint8Array, options: { crc?: CrcKind } = {}): Buffer {
  const block = cobsEncode(appendCrc(payload, options.crc ?? 'crc16'));
  const frame = Buffer.allocUnsafe(block.length + 1);
  block.copy(frame, 0);
  frame[block.length] = 0;
  return frame;
}

/**
 * Streaming decoder: feed it whatever the serial port delivers, in any
 * chunking; `push` returns the verified payloads completed by that chunk.
 * Memory is bounded: at most `bufferLimit` encoded bytes are held, a longer
 * run without 0x00 is discarded up to the next 0x00 and counted once as
 * 'too-long'. Never throws on input.
 */
export class CobsDecoder {
  readonly stats: CobsStats = {
    frames: 0,
    rejected: { 'cobs-invalid': 0, 'crc-mismatch': 0, 'too-short': 0, 'too-long': 0 },
  };
  readonly crc: CrcKind;
  readonly maxFrame: number;
  private readonly crcLen: 2 | 4;
  private readonly records: DelimitedBuffer;
  private readonly onReject: ((reason: CobsRejectReason, encodedLength: number) => void) | undefined;

  constructor(options: CobsDecoderOptions = {}) {
    this.crc = options.crc ?? 'crc16';
    if (this.crc !== 'crc16' && this.crc !== 'crc32') {
      throw new RangeError(`CobsDecoder: crc must be 'crc16' or 'crc32', got ${JSON.stringify(options.crc)}`);
    }
    this.maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    if (!Number.isInteger(this.maxFrame) || this.maxFrame < 0 || this.maxFrame > 16 * 1024 * 1024) {
      throw new RangeError(`CobsDecoder: maxFrame must be an integer in 0..16777216, got ${options.maxFrame}`);
    }
    this.crcLen = crcLength(this.crc);
    this.records = new DelimitedBuffer(0x00, cobsMaxEncodedLength(this.maxFrame + this.crcLen));
    this.onReject = options.onReject;
  }

  /** Encoded bytes currently held (partial frame). */
  get bufferedLength(): number {
    return this.records.length;
  }

  /** Upper bound of bufferedLength: the largest valid encoded frame. */
  get bufferLimit(): number {
    return this.records.capacity;
  }

  push(chunk: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    this.records.push(
      chunk,
      // Empty blocks (0x00 0x00) are ignored: an MCU may send a 0x00 first to flush the receiver.
      (block) => { if (block.length > 0) this.finishBlock(block, out); },
      (length) => this.reject('too-long', length),
    );
    return out;
  }

  /** Forget any partial frame (e.g. after the port was reopened). Not counted. */
  reset(): void {
    this.records.reset();
  }

  private finishBlock(block: Buffer, out: Buffer[]): void {
    const decoded = cobsDecode(block);
    if (decoded === null) return this.reject('cobs-invalid', block.length);
    const payloadLen = decoded.length - this.crcLen;
    if (payloadLen < 0) return this.reject('too-short', block.length);
    if (payloadLen > this.maxFrame) return this.reject('too-long', block.length);
    const ok =
      this.crcLen === 4
        ? decoded.readUInt32BE(payloadLen) === crc32(decoded, 0, payloadLen)
        : decoded.readUInt16BE(payloadLen) === crc16ccitt(decoded, 0, payloadLen);
    if (!ok) return this.reject('crc-mismatch', block.length);
    this.stats.frames++;
    out.push(decoded.subarray(0, payloadLen));
  }

  private reject(reason: CobsRejectReason, encodedLength: number): void {
    this.stats.rejected[reason]++;
    this.onReject?.(reason, encodedLength);
  }
}

export type PayloadResult =
  | { ok: true; value: unknown }
  | { ok: false; reason: 'bad-json'; message: string };

// fatal: invalid UTF-8 is an error, not U+FFFD (it would hide a corrupted frame).
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Interpret a verified payload: 'raw' gives the bytes back, 'json' parses
 * UTF-8 JSON. Bad JSON (or bad UTF-8) is a result, not an exception: the
 * caller counts it as rejected reason 'bad-json'.
 */
export function decodePayload(buf: Uint8Array, as: 'json' | 'raw'): PayloadResult {
  if (as === 'raw') return { ok: true, value: buf };
  let text: string;
  try {
    text = UTF8.decode(buf);
  } catch {
    return { ok: false, reason: 'bad-json', message: `payload of ${buf.length} bytes is not valid UTF-8` };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, reason: 'bad-json', message: `payload of ${buf.length} bytes is not JSON: ${(err as Error).message}` };
  }
}
