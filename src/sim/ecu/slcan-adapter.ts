/**
 * A CANable-style slcan adapter with one ECU behind it on a simulated bus.
 *
 * Host commands (one line each, CR terminated) and answers:
 *
 *   C            close the channel (accepted when already closed: hosts send it first)  → CR
 *   O / L        open normal / listen-only, only while closed                          → CR, else BEL
 *   S0..S8       bit rate, only while closed                                            → CR, else BEL
 *   Z0 / Z1      timestamps off / on, only while closed (LAWICEL rule)                  → CR, else BEL
 *   F            status flags                                                           → F00
 *   V            version                                                                → V1013
 *   N            serial number                                                          → NA123
 *   t/T/r/R…     transmit a frame, only while open in normal mode → z / Z (LAWICEL tx ack), else BEL
 *   empty line   ignored (hosts send CRs to flush a half-typed command)
 *   anything else, or a malformed frame                                                → BEL
 *
 * Frames flow only while the channel is open (O or L). With Z1 every frame
 * the adapter sends carries a 4-hex-digit timestamp, ms within the minute
 * (0..59999). A transmitted frame reaches the simulated ECU: it is reported
 * (printed as {"rx":…}) and, when it is an OBD-II request, answered.
 *
 * Parsing uses the project's codecs: lines are split with DelimitedBuffer,
 * frame lines are parsed by SlcanDecoder, frames sent by encodeFrame.
 */
import { DelimitedBuffer } from '../../serial/delimited-buffer.js';
import {
  SLCAN_MAX_LINE, SlcanDecoder, encodeFrame, type CanFrame, type CanFrameInput,
} from '../../serial/slcan-codec.js';
import { eec1Frame, sequenceFrame, vehicleSpeedFrame } from './can-messages.js';
import { slcanGarbage, type NoiseRandom } from './garbage.js';
import { answerObdRequest } from './obd-responder.js';
import { slotContent } from './periodic-slots.js';
import type { EcuPersonality, PersonalityHooks } from './personality.js';

const CR = 0x0d;
const BEL_REPLY = Buffer.from([0x07]);
const OK_REPLY = Buffer.from([CR]);
const FRAME_STARTS = new Set([0x74, 0x54, 0x72, 0x52]); // t T r R

/** Answers of the identification commands, as a CANable with this firmware would give them. */
export const SLCAN_SIM_IDENTITY = { status: 'F00', version: 'V1013', serial: 'NA123' } as const;

type ChannelState = 'closed' | 'open' | 'listen-only';

export class SlcanAdapter implements EcuPersonality {
  readonly emitsAtStart = false;
  private state: ChannelState = 'closed';
  private timestamps = false;
  /** Index of the S command; 6 (500 kbit/s) until the host sets one, as CANable firmware defaults. */
  private bitrateIndex = 6;
  private readonly lines = new DelimitedBuffer(CR, SLCAN_MAX_LINE);
  private readonly frames = new SlcanDecoder();
  private readonly ownRejects = { 'bad-command': 0, 'too-long': 0 };

  constructor(private readonly hooks: PersonalityHooks) {}

  get rejected(): Readonly<Record<string, number>> {
    const r: Record<string, number> = { ...this.frames.stats.rejected };
    r['too-long'] = (r['too-long'] ?? 0) + this.ownRejects['too-long'];
    r['bad-command'] = this.ownRejects['bad-command'];
    return r;
  }

  /** Channel state, bit rate and timestamp setting, for diagnostics. */
  get settings(): { state: ChannelState; bitrateIndex: number; timestamps: boolean } {
    return { state: this.state, bitrateIndex: this.bitrateIndex, timestamps: this.timestamps };
  }

  receive(chunk: Buffer, out: Buffer[]): void {
    this.lines.push(
      chunk,
      (line) => this.handleLine(line, out),
      () => {
        // Longer than any valid line: refused once, as an adapter's overflowing command buffer would.
        this.ownRejects['too-long']++;
        out.push(BEL_REPLY);
      },
    );
  }

  periodic(slot: number, out: Buffer[]): void {
    const content = slotContent(slot);
    const t = this.hooks.elapsedMs();
    const frame = content.kind === 'counter' ? sequenceFrame(content.n)
      : content.which === 'a' ? vehicleSpeedFrame(t) : eec1Frame(t);
    out.push(this.encode(frame));
  }

  garbage(rng: NoiseRandom): Buffer {
    return slcanGarbage(rng);
  }

  private handleLine(line: Buffer, out: Buffer[]): void {
    if (line.length === 0) return;
    if (FRAME_STARTS.has(line[0]!)) return this.handleFrameLine(line, out);
    const cmd = line.toString('latin1');
    this.hooks.logger.debug(`ecu-sim slcan: command ${JSON.stringify(cmd)} (channel ${this.state})`);
    const closed = this.state === 'closed';
    switch (cmd) {
      case 'C':
        if (!closed) this.hooks.setEmitting(false);
        this.state = 'closed';
        return void out.push(OK_REPLY);
      case 'O':
      case 'L':
        if (!closed) return void out.push(BEL_REPLY);
        this.state = cmd === 'O' ? 'open' : 'listen-only';
        out.push(OK_REPLY);
        // After the CR: the first periodic frame must not precede the answer to O.
        this.hooks.setEmitting(true);
        return;
      case 'Z0':
      case 'Z1':
        if (!closed) return void out.push(BEL_REPLY);
        this.timestamps = cmd === 'Z1';
        return void out.push(OK_REPLY);
      case 'F': return void out.push(reply(SLCAN_SIM_IDENTITY.status));
      case 'V': return void out.push(reply(SLCAN_SIM_IDENTITY.version));
      case 'N': return void out.push(reply(SLCAN_SIM_IDENTITY.serial));
    }
    if (cmd.length === 2 && cmd[0] === 'S' && cmd[1]! >= '0' && cmd[1]! <= '8') {
      if (!closed) return void out.push(BEL_REPLY);
      this.bitrateIndex = Number(cmd[1]);
      return void out.push(OK_REPLY);
    }
    this.ownRejects['bad-command']++;
    out.push(BEL_REPLY);
  }

  private handleFrameLine(line: Buffer, out: Buffer[]): void {
    let frame: CanFrame | undefined;
    for (const item of this.frames.push(Buffer.concat([line, OK_REPLY]))) {
      if (item.kind === 'frame') frame = item.frame;
    }
    // Malformed (the decoder counted why), or nowhere to send it: a closed or listen-only channel.
    if (frame === undefined || this.state !== 'open') return void out.push(BEL_REPLY);
    out.push(Buffer.from(frame.extended ? 'Z\r' : 'z\r', 'latin1'));
    this.hooks.received({
      id: frame.id, extended: frame.extended, rtr: frame.rtr, dlc: frame.dlc, data: frame.data.toString('hex'),
    });
    const answer = answerObdRequest(frame, this.hooks.elapsedMs());
    if (answer !== undefined) out.push(this.encode(answer));
  }

  /** A frame as the adapter sends it to the host, with the Z1 timestamp when on. */
  private encode(frame: CanFrameInput): Buffer {
    const line = encodeFrame(frame);
    if (!this.timestamps) return line;
    const ts = (Math.floor(this.hooks.elapsedMs()) % 60_000).toString(16).toUpperCase().padStart(4, '0');
    const out = Buffer.allocUnsafe(line.length + 4);
    line.copy(out, 0, 0, line.length - 1);
    out.write(ts, line.length - 1, 'latin1');
    out[out.length - 1] = CR;
    return out;
  }
}

function reply(text: string): Buffer {
  return Buffer.from(text + '\r', 'latin1');
}
