/**
 * The command side of each simulated slcan adapter (`ecu-sim --adapter`),
 * written from what each firmware does (docs/ecu-protocols.md has the
 * table and the sources): which commands exist, what each answers, in which
 * channel state. Frames, the bus and the ECU are slcan-adapter.ts.
 *
 * - lawicel: LAWICEL CANUSB — every command answered CR (done) or BEL
 *   (refused, unknown), z/Z for a transmitted frame, settings only while
 *   closed, C refused when already closed, V1011, N, F.
 * - usbtin: USBtin firmware v1.7 (frontend.c parseLine) — CR/BEL, z/Z, Z at
 *   any time, V0100 / v0107 / NFFFF, G/W/s/m/M, `l` loop-back, LF ignored,
 *   an empty line is an unknown command (BEL), timestamps 0..60000 from O.
 * - canable: normaldotcom canable-fw (slcan.c, usbd_cdc_if.c) — nothing is
 *   ever answered except V (a text line), unknown commands are ignored,
 *   M1 = silent (listen-only), A0/A1, S7 = 750 kbit/s, no Z/F/N/L, and an
 *   empty line re-runs the previous command (the stale line buffer).
 */

export const SIM_ADAPTERS = ['lawicel', 'canable', 'usbtin'] as const;
export type SimAdapter = (typeof SIM_ADAPTERS)[number];

/** `loopback` (USBtin `l`): transmitted frames come back to the host, nothing reaches the bus. */
export type ChannelState = 'closed' | 'open' | 'listen-only' | 'loopback';

export interface AdapterState {
  channel: ChannelState;
  timestamps: boolean;
  /** Index of the last accepted S command. */
  bitrateIndex: number;
  /** CANable M1: the channel opens silent (listen-only). */
  silent: boolean;
  /** performance-clock ms of the last O / L (USBtin resets its clock on O). */
  openedAtMs: number;
}

export interface SlcanFirmware {
  readonly name: SimAdapter;
  /** Answers of the identification commands, for the ready line and tests. */
  readonly identity: string;
  /** Answers commands at all (CR / BEL); a line too long for its buffer is then refused with BEL. */
  readonly answers: boolean;
  /** What an empty line does: nothing, BEL, or the previous command again. */
  readonly emptyLine: 'ignore' | 'bell' | 'repeat';
  /** A received LF is dropped before the line is parsed (USBtin main.c). */
  readonly dropsLf: boolean;
  /** Handles a command line (not a frame); pushes the answer bytes; false when the firmware does not know it. */
  command(line: string, state: AdapterState, out: Buffer[], nowMs: number): boolean;
  /** The answer to a transmit line: `sent` whether the frame went out (or back, loop-back), `frame` whether the line parsed. */
  frameAnswer(line: string, parsed: boolean, sent: boolean, out: Buffer[]): void;
  /** The timestamp appended to a frame under Z1. */
  timestamp(nowMs: number, state: AdapterState): number;
}

const CR = Buffer.from('\r', 'latin1');
const BEL = Buffer.from([0x07]);
const reply = (text: string): Buffer => Buffer.from(text + '\r', 'latin1');
const isHex = (s: string, n: number): boolean => s.length === n && /^[0-9A-Fa-f]*$/.test(s);

class Lawicel implements SlcanFirmware {
  readonly name = 'lawicel' as const;
  readonly identity = 'V1011 NA123';
  readonly answers = true;
  readonly emptyLine = 'ignore' as const;
  readonly dropsLf = false;

  command(line: string, st: AdapterState, out: Buffer[], nowMs: number): boolean {
    const closed = st.channel === 'closed';
    const answer = (ok: boolean): void => void out.push(ok ? CR : BEL);
    switch (line) {
      case 'C':
        if (!closed) st.channel = 'closed';
        answer(!closed);
        return true;
      case 'O':
      case 'L':
        if (closed) {
          st.channel = line === 'O' ? 'open' : 'listen-only';
          st.openedAtMs = nowMs;
        }
        answer(closed);
        return true;
      case 'Z0':
      case 'Z1':
        if (closed) st.timestamps = line === 'Z1';
        answer(closed);
        return true;
      case 'F': out.push(reply('F00')); return true;
      case 'V': out.push(reply('V1011')); return true;
      case 'N': out.push(reply('NA123')); return true;
    }
    if (/^S[0-8]$/.test(line)) {
      if (closed) st.bitrateIndex = Number(line[1]);
      answer(closed);
      return true;
    }
    out.push(BEL);
    return false;
  }

  frameAnswer(line: string, parsed: boolean, sent: boolean, out: Buffer[]): void {
    out.push(parsed && sent ? reply(line[0] === 'T' || line[0] === 'R' ? 'Z' : 'z') : BEL);
  }

  timestamp(nowMs: number): number {
    return Math.floor(nowMs) % 60_000;
  }
}

class Usbtin implements SlcanFirmware {
  readonly name = 'usbtin' as const;
  readonly identity = 'V0100 v0107 NFFFF';
  readonly answers = true;
  readonly emptyLine = 'bell' as const;
  readonly dropsLf = true;

  command(line: string, st: AdapterState, out: Buffer[], nowMs: number): boolean {
    const closed = st.channel === 'closed';
    let ok = false;
    let known = true;
    const c = line[0];
    const arg = line.slice(1);
    switch (c) {
      case 'S':
        ok = closed && /^[0-8]/.test(arg); // parseLine looks at line[1] only
        if (ok) st.bitrateIndex = Number(arg[0]);
        break;
      case 's': ok = closed && /^[0-9A-Fa-f]{6}/.test(arg); break;
      case 'G':
        ok = /^[0-9A-Fa-f]{2}/.test(arg);
        if (ok) out.push(Buffer.from('00', 'latin1')); // the register's value; no MCP2515 here
        break;
      case 'W': ok = /^[0-9A-Fa-f]{4}/.test(arg); break;
      case 'm':
      case 'M': ok = closed && /^[0-9A-Fa-f]{8}/.test(arg); break;
      case 'V': out.push(Buffer.from('V0100', 'latin1')); ok = true; break;
      case 'v': out.push(Buffer.from('v0107', 'latin1')); ok = true; break;
      case 'N': out.push(Buffer.from('NFFFF', 'latin1')); ok = true; break;
      case 'O':
      case 'l':
      case 'L':
        ok = closed;
        if (ok) {
          st.channel = c === 'O' ? 'open' : c === 'L' ? 'listen-only' : 'loopback';
          if (c === 'O') st.openedAtMs = nowMs; // clock_reset() on O only
        }
        break;
      case 'C':
        ok = !closed;
        if (ok) st.channel = 'closed';
        break;
      case 'F': out.push(Buffer.from('F00', 'latin1')); ok = true; break;
      case 'Z':
        ok = /^[0-9A-Fa-f]/.test(arg);
        if (ok) st.timestamps = Number.parseInt(arg[0]!, 16) !== 0;
        break;
      default:
        known = false;
    }
    out.push(ok ? CR : BEL);
    return known;
  }

  frameAnswer(line: string, parsed: boolean, sent: boolean, out: Buffer[]): void {
    if (parsed && sent) out.push(Buffer.from(line[0] === 'T' || line[0] === 'R' ? 'Z' : 'z', 'latin1'));
    out.push(parsed && sent ? CR : BEL);
  }

  timestamp(nowMs: number, st: AdapterState): number {
    // clock.c: the ms counter is reset to 0 once it is above 60000, so 60000 itself is sent for one ms.
    return Math.floor(nowMs - st.openedAtMs) % 60_001;
  }
}

class Canable implements SlcanFirmware {
  readonly name = 'canable' as const;
  /** slcan.c: GIT_VERSION " " GIT_REMOTE "\r" (git describe of the build, the origin URL). */
  static readonly VERSION_LINE = '8ca5d39 https://github.com/normaldotcom/canable-fw.git';
  readonly identity = Canable.VERSION_LINE;
  readonly answers = false;
  readonly emptyLine = 'repeat' as const;
  readonly dropsLf = false;

  command(line: string, st: AdapterState, out: Buffer[], nowMs: number): boolean {
    const closed = st.channel === 'closed';
    switch (line[0]) {
      case 'O':
        if (closed) {
          st.channel = st.silent ? 'listen-only' : 'open';
          st.openedAtMs = nowMs;
        }
        return true;
      case 'C':
        st.channel = 'closed';
        return true;
      case 'S': {
        const n = hexDigit(line[1]);
        if (n >= 0 && n <= 8 && closed) st.bitrateIndex = n; // can_set_bitrate: ignored while on bus
        return n >= 0 && n <= 8;
      }
      case 'm':
      case 'M':
        if (closed) st.silent = hexDigit(line[1]) === 1; // can_set_silent: ignored while on bus
        return true;
      case 'a':
      case 'A':
        return true; // auto-retransmission: no effect on a simulated bus
      case 'V':
        out.push(reply(Canable.VERSION_LINE));
        return true;
    }
    return false; // slcan_parse_str returns -1: nothing is sent back (the answer code is commented out)
  }

  frameAnswer(): void {
    // Never answered: the frame is queued (can_tx) or, channel closed, dropped by the HAL.
  }

  timestamp(): number {
    return 0; // no Z: never called
  }
}

function hexDigit(ch: string | undefined): number {
  return ch !== undefined && isHex(ch, 1) ? Number.parseInt(ch, 16) : -1;
}

export function slcanFirmware(name: SimAdapter): SlcanFirmware {
  switch (name) {
    case 'lawicel': return new Lawicel();
    case 'usbtin': return new Usbtin();
    case 'canable': return new Canable();
  }
}

export const CANABLE_VERSION_LINE = Canable.VERSION_LINE;
