/**
 * slcan (LAWICEL ASCII CAN) codec, no I/O: the line format the slcan
 * firmwares (LAWICEL, USBtin, CANable stock) and the Linux slcan driver share
 * over a serial link. Which commands exist and whether they are answered
 * differs per firmware: link/slcan-dialects.ts.
 *
 * Receive side: `SlcanDecoder` is fed arbitrary byte chunks (a UART cuts
 * lines anywhere) and yields frames and command replies. A line that is not a
 * valid message is rejected with a counted reason and decoding continues at
 * the next terminator, so one burst of noise costs at most one line. The
 * decoder keeps at most one line (SLCAN_MAX_LINE bytes) between chunks: a
 * longer line is counted as 'too-long' and skipped up to its CR, so a device
 * spewing bytes without CR cannot grow memory. It never throws on input.
 *
 * Hot path: frames are parsed straight from the chunk (no copy unless the
 * line straddles two chunks), hex digits through a 256-entry lookup table; no
 * regex, no strings.
 */

/** A classic CAN frame as the adapter reports it. */
export interface CanFrame {
  id: number;
  extended: boolean;
  rtr: boolean;
  /** Data length code 0-8; for RTR frames the requested length (data is empty). */
  dlc: number;
  data: Buffer;
  /** Adapter timestamp in ms within the minute (0-60000, see SLCAN_MAX_TIMESTAMP) when timestamps are on (Z1). */
  timestamp?: number;
}

export type SlcanItem =
  | { kind: 'frame'; frame: CanFrame }
  /** CR alone: the last command succeeded. */
  | { kind: 'ok' }
  /** BEL (0x07): the last command failed. */
  | { kind: 'error' }
  /** `z` / `Z`: a transmitted standard / extended frame was accepted by the adapter. */
  | { kind: 'tx-ack'; extended: boolean }
  /** `F` reply: status flag byte (bit meanings are adapter specific, see SLCAN_STATUS). */
  | { kind: 'status'; flags: number }
  /** `V` (hardware+software) or `v` (software only) version reply, 4 hex digits as sent. */
  | { kind: 'version'; which: 'V' | 'v'; value: string }
  /** `N` reply: 4-character serial number. */
  | { kind: 'serial'; value: string };

export type SlcanRejectReason =
  | 'bad-id'
  | 'bad-dlc'
  | 'bad-hex'
  | 'bad-timestamp'
  | 'length-mismatch'
  | 'too-long'
  /** A partial line interrupted by a BEL: the line was cut, the BEL itself still counts as an error reply. */
  | 'cut'
  | 'unknown';

export const SLCAN_REJECT_REASONS: readonly SlcanRejectReason[] = [
  'bad-id', 'bad-dlc', 'bad-hex', 'bad-timestamp', 'length-mismatch', 'too-long', 'cut', 'unknown',
];

/** Longest valid line without its CR: `T` + 8 id + 1 dlc + 16 data + 4 timestamp. */
export const SLCAN_MAX_LINE = 1 + 8 + 1 + 16 + 4;

/**
 * Largest timestamp accepted. LAWICEL counts 0-59999 (0xEA5F); USBtin's clock
 * (firmware v1.7 clock.c) resets only once its ms counter is above 60000, so it
 * stamps frames of that one millisecond with 60000 (0xEA60): not a corrupt line.
 */
export const SLCAN_MAX_TIMESTAMP = 60_000;

/** Status flags of the `F` reply as LAWICEL defines them (CANUSB manual). */
export const SLCAN_STATUS = {
  RX_FIFO_FULL: 0x01,
  TX_FIFO_FULL: 0x02,
  ERROR_WARNING: 0x04,
  DATA_OVERRUN: 0x08,
  ERROR_PASSIVE: 0x20,
  ARBITRATION_LOST: 0x40,
  BUS_ERROR: 0x80,
} as const;

export interface SlcanStats {
  frames: number;
  /** Command replies other than BEL: CR, z/Z, F, V/v, N. */
  acks: number;
  /** BEL replies. */
  errors: number;
  rejected: Record<SlcanRejectReason, number>;
}

const CR = 0x0d;
const BEL = 0x07;

/** Hex digit value by byte, -1 for anything else. Lowercase accepted on input (some firmwares send it). */
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}

const EMPTY = Buffer.alloc(0);

export interface SlcanDecoderOptions {
  /** Receives every item as it is decoded; when set, push() returns an empty array. */
  onItem?: (item: SlcanItem) => void;
  /** Called for every rejected line, e.g. to count it per link (optional). */
  onReject?: (reason: SlcanRejectReason) => void;
}

export class SlcanDecoder {
  /**
   * The CANable stock firmware (canable-fw and canable2-fw, slcan.c
   * slcan_parse_frame) writes DLC data bytes after an RTR frame's DLC too.
   * When true, an `r`/`R` line carries 2×DLC hex digits (checked, then
   * dropped: an RTR frame has no data); when false (LAWICEL), none.
   */
  rtrCarriesData = false;

  readonly stats: SlcanStats = {
    frames: 0, acks: 0, errors: 0,
    rejected: { 'bad-id': 0, 'bad-dlc': 0, 'bad-hex': 0, 'bad-timestamp': 0, 'length-mismatch': 0, 'too-long': 0, cut: 0, unknown: 0 },
  };

  private readonly onItem: ((item: SlcanItem) => void) | undefined;
  private readonly onReject: ((reason: SlcanRejectReason) => void) | undefined;
  /** Start of a line that straddles chunks; never more than SLCAN_MAX_LINE bytes. */
  private readonly pending = Buffer.alloc(SLCAN_MAX_LINE);
  private pendingLen = 0;
  /** The current line already exceeded SLCAN_MAX_LINE: skip to its terminator. */
  private overflow = false;
  private out: SlcanItem[] = [];

  constructor(options: SlcanDecoderOptions = {}) {
    this.onItem = options.onItem;
    this.onReject = options.onReject;
  }

  /** Feeds bytes as they arrive; returns the items completed by this chunk (empty with onItem). */
  push(chunk: Uint8Array): SlcanItem[] {
    const out: SlcanItem[] = [];
    this.out = out;
    const n = chunk.length;
    let start = 0;
    for (let i = 0; i < n; i++) {
      const b = chunk[i]!;
      if (b !== CR && b !== BEL) continue;
      if (this.overflow) {
        this.reject('too-long');
      } else if (this.pendingLen > 0) {
        const total = this.pendingLen + (i - start);
        if (total > SLCAN_MAX_LINE) {
          this.reject('too-long');
        } else if (b === BEL) {
          this.reject('cut');
        } else {
          this.pending.set(chunk.subarray(start, i), this.pendingLen);
          this.parseLine(this.pending, 0, total);
        }
      } else if (i - start > SLCAN_MAX_LINE) {
        this.reject('too-long');
      } else if (b === BEL) {
        if (i > start) this.reject('cut');
      } else {
        this.parseLine(chunk, start, i);
      }
      if (b === BEL) {
        this.stats.errors++;
        this.emit({ kind: 'error' });
      }
      this.pendingLen = 0;
      this.overflow = false;
      start = i + 1;
    }
    // Keep the unterminated tail, bounded: past SLCAN_MAX_LINE only remember that it is too long.
    const rest = n - start;
    if (rest > 0 && !this.overflow) {
      if (this.pendingLen + rest > SLCAN_MAX_LINE) {
        this.overflow = true;
        this.pendingLen = 0;
      } else {
        this.pending.set(chunk.subarray(start, n), this.pendingLen);
        this.pendingLen += rest;
      }
    }
    return this.onItem ? [] : out;
  }

  /** Bytes of an unterminated line currently held (for tests and diagnostics). */
  get buffered(): number {
    return this.pendingLen;
  }

  private emit(item: SlcanItem): void {
    if (this.onItem) this.onItem(item);
    else this.out.push(item);
  }

  /** Drops a partial line (e.g. after the port was reopened: its start is gone). */
  reset(): void {
    this.pendingLen = 0;
    this.overflow = false;
  }

  private reject(reason: SlcanRejectReason): void {
    this.stats.rejected[reason]++;
    this.onReject?.(reason);
  }

  private ack(item: SlcanItem): void {
    this.stats.acks++;
    this.emit(item);
  }

  /** One line without its CR, buf[s..e). */
  private parseLine(buf: Uint8Array, s: number, e: number): void {
    const len = e - s;
    if (len === 0) return this.ack({ kind: 'ok' });
    const c = buf[s]!;
    switch (c) {
      case 0x74: return this.parseFrame(buf, s, e, 3, false, false); // t
      case 0x54: return this.parseFrame(buf, s, e, 8, true, false); // T
      case 0x72: return this.parseFrame(buf, s, e, 3, false, true); // r
      case 0x52: return this.parseFrame(buf, s, e, 8, true, true); // R
      case 0x7a: // z
      case 0x5a: // Z
        if (len !== 1) return this.reject('length-mismatch');
        return this.ack({ kind: 'tx-ack', extended: c === 0x5a });
      case 0x46: { // F
        if (len !== 3) return this.reject('length-mismatch');
        const hi = HEX[buf[s + 1]!]!, lo = HEX[buf[s + 2]!]!;
        if (hi < 0 || lo < 0) return this.reject('bad-hex');
        return this.ack({ kind: 'status', flags: (hi << 4) | lo });
      }
      case 0x56: // V
      case 0x76: { // v
        if (len !== 5) return this.reject('length-mismatch');
        for (let i = s + 1; i < e; i++) if (HEX[buf[i]!]! < 0) return this.reject('bad-hex');
        return this.ack({ kind: 'version', which: c === 0x56 ? 'V' : 'v', value: Buffer.from(buf.subarray(s + 1, e)).toString('latin1') });
      }
      case 0x4e: { // N: serial numbers are alphanumeric on CANUSB/USBtin
        if (len !== 5) return this.reject('length-mismatch');
        for (let i = s + 1; i < e; i++) if (!isAlnum(buf[i]!)) return this.reject('bad-hex');
        return this.ack({ kind: 'serial', value: Buffer.from(buf.subarray(s + 1, e)).toString('latin1') });
      }
      default:
        return this.reject('unknown');
    }
  }

  private parseFrame(buf: Uint8Array, s: number, e: number, idLen: number, extended: boolean, rtr: boolean): void {
    const len = e - s;
    const head = 1 + idLen + 1;
    if (len < head) return this.reject('length-mismatch');
    let id = 0;
    for (let i = s + 1; i <= s + idLen; i++) {
      const h = HEX[buf[i]!]!;
      if (h < 0) return this.reject('bad-id');
      id = id * 16 + h; // not <<: 8 hex digits overflow int32
    }
    if (id > (extended ? 0x1fffffff : 0x7ff)) return this.reject('bad-id');
    const dlc = HEX[buf[s + idLen + 1]!]!;
    if (dlc < 0 || dlc > 8) return this.reject('bad-dlc');
    const dataLen = rtr && !this.rtrCarriesData ? 0 : dlc * 2;
    const bare = head + dataLen;
    if (len !== bare && len !== bare + 4) return this.reject('length-mismatch');
    let data = EMPTY;
    if (dataLen > 0) {
      data = Buffer.allocUnsafe(dlc);
      let p = s + head;
      for (let k = 0; k < dlc; k++, p += 2) {
        const hi = HEX[buf[p]!]!, lo = HEX[buf[p + 1]!]!;
        if (hi < 0 || lo < 0) return this.reject('bad-hex');
        data[k] = (hi << 4) | lo;
      }
      if (rtr) data = EMPTY;
    }
    const frame: CanFrame = { id, extended, rtr, dlc, data };
    if (len === bare + 4) {
      let ts = 0;
      for (let i = s + bare; i < e; i++) {
        const h = HEX[buf[i]!]!;
        if (h < 0) return this.reject('bad-hex');
        ts = ts * 16 + h;
      }
      // Z1 timestamps count ms within a minute; more is not a timestamp but a corrupted line.
      if (ts > SLCAN_MAX_TIMESTAMP) return this.reject('bad-timestamp');
      frame.timestamp = ts;
    }
    this.stats.frames++;
    this.emit({ kind: 'frame', frame });
  }
}

function isAlnum(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

// ---------------------------------------------------------------- encoders

export interface CanFrameInput {
  id: number;
  extended?: boolean;
  rtr?: boolean;
  /** Payload, at most 8 bytes; for an RTR frame only its length matters (unless dlc is given). */
  data?: Uint8Array;
  /** Explicit DLC, for RTR frames requesting a length; must equal data.length for data frames. */
  dlc?: number;
}

const HEX_UPPER = '0123456789ABCDEF';

/** Encodes a frame to transmit: "t1230411223344\r" style, uppercase hex. Throws with the reason on invalid input. */
export function encodeFrame(frame: CanFrameInput): Buffer {
  const extended = frame.extended ?? false;
  const rtr = frame.rtr ?? false;
  const data = frame.data ?? EMPTY;
  const max = extended ? 0x1fffffff : 0x7ff;
  if (!Number.isInteger(frame.id) || frame.id < 0 || frame.id > max) {
    throw new RangeError(`slcan encodeFrame: ${extended ? 'extended' : 'standard'} id ${String(frame.id)} out of range 0..0x${max.toString(16).toUpperCase()}`);
  }
  if (data.length > 8) throw new RangeError(`slcan encodeFrame: id 0x${frame.id.toString(16)}: ${data.length} data bytes, at most 8`);
  const dlc = frame.dlc ?? data.length;
  if (!Number.isInteger(dlc) || dlc < 0 || dlc > 8) throw new RangeError(`slcan encodeFrame: id 0x${frame.id.toString(16)}: dlc ${String(dlc)} out of range 0..8`);
  if (!rtr && dlc !== data.length) throw new RangeError(`slcan encodeFrame: id 0x${frame.id.toString(16)}: dlc ${dlc} but ${data.length} data bytes`);
  const idLen = extended ? 8 : 3;
  const out = Buffer.allocUnsafe(1 + idLen + 1 + (rtr ? 0 : dlc * 2) + 1);
  out[0] = (rtr ? (extended ? 'R' : 'r') : (extended ? 'T' : 't')).charCodeAt(0);
  let id = frame.id;
  for (let i = idLen; i >= 1; i--) {
    out[i] = HEX_UPPER.charCodeAt(id & 0xf);
    id = Math.floor(id / 16);
  }
  let p = idLen + 1;
  out[p++] = 0x30 + dlc;
  if (!rtr) {
    for (let k = 0; k < dlc; k++) {
      out[p++] = HEX_UPPER.charCodeAt(data[k]! >> 4);
      out[p++] = HEX_UPPER.charCodeAt(data[k]! & 0xf);
    }
  }
  out[p] = CR;
  return out;
}

/** Bit rates of the `Sn` command, index = n, as LAWICEL and USBtin define them (CANable's S7 is 750 kbit/s: see link/slcan-dialects.ts). */
export const SLCAN_BITRATES = [10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 800_000, 1_000_000] as const;
export type SlcanBitrate = (typeof SLCAN_BITRATES)[number];

const cmd = (text: string): Buffer => Buffer.from(text + '\r', 'latin1');

export const slcanCommands = {
  /** Open the channel (normal mode). */
  open: (): Buffer => cmd('O'),
  close: (): Buffer => cmd('C'),
  /** Open the channel in listen-only mode: no ACKs, no transmission on the bus. */
  listenOnly: (): Buffer => cmd('L'),
  /** `S0`..`S8` for 10 kbit/s .. 1 Mbit/s; only while the channel is closed. */
  bitrate(bps: number): Buffer {
    const n = SLCAN_BITRATES.indexOf(bps as SlcanBitrate);
    if (n < 0) throw new RangeError(`slcan bitrate ${String(bps)} bit/s not supported; one of ${SLCAN_BITRATES.join(', ')}`);
    return cmd(`S${n}`);
  },
  /** `Z1` / `Z0`: append (or not) a 4-hex ms timestamp to received frames. */
  timestamps: (on: boolean): Buffer => cmd(on ? 'Z1' : 'Z0'),
  readStatus: (): Buffer => cmd('F'),
  version: (): Buffer => cmd('V'),
  /** `v`: USBtin's firmware version (vMMmm); LAWICEL refuses it, CANable ignores it. */
  firmwareVersion: (): Buffer => cmd('v'),
  /** CANable stock firmware only: `M1` silent (listen-only) / `M0` normal mode, while closed; it has no `L`. */
  silentMode: (on: boolean): Buffer => cmd(on ? 'M1' : 'M0'),
} as const;
