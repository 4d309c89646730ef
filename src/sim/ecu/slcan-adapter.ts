/**
 * An slcan adapter with one ECU behind it on a simulated bus, speaking the
 * dialect of a real firmware (`--adapter lawicel|canable|usbtin`): the
 * command answers are slcan-firmwares.ts, this file is what they share —
 * splitting lines, transmit lines onto the bus, periodic frames while the
 * channel is open, Z1 timestamps, the OBD-II ECU.
 *
 * Frames flow only while the channel is open (O, L, or CANable's O after
 * M1). A transmitted frame reaches the simulated ECU only when the channel
 * is open in normal mode: it is reported (printed as {"rx":…}) and, when it
 * is an OBD-II request, answered.
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
import { slcanFirmware, type AdapterState, type ChannelState, type SimAdapter, type SlcanFirmware } from './slcan-firmwares.js';

const CR = 0x0d;
const LF = 0x0a;
const BEL_REPLY = Buffer.from([0x07]);
const FRAME_STARTS = new Set(['t', 'T', 'r', 'R']);

export class SlcanAdapter implements EcuPersonality {
  readonly emitsAtStart = false;
  readonly firmware: SlcanFirmware;
  /** 500 kbit/s (S6) until the host sets one. */
  private readonly state: AdapterState = { channel: 'closed', timestamps: false, bitrateIndex: 6, silent: false, openedAtMs: 0 };
  private readonly lines = new DelimitedBuffer(CR, SLCAN_MAX_LINE);
  private readonly frames = new SlcanDecoder();
  private readonly ownRejects = { 'bad-command': 0, 'too-long': 0 };
  /** The last command line (CANable re-runs it on an empty line). */
  private previous = '';

  constructor(private readonly hooks: PersonalityHooks, adapter: SimAdapter = 'lawicel') {
    this.firmware = slcanFirmware(adapter);
  }

  get rejected(): Readonly<Record<string, number>> {
    const r: Record<string, number> = { ...this.frames.stats.rejected };
    r['too-long'] = (r['too-long'] ?? 0) + this.ownRejects['too-long'];
    r['bad-command'] = this.ownRejects['bad-command'];
    return r;
  }

  /** Channel state, bit rate and timestamp setting, for diagnostics. */
  get settings(): { state: ChannelState; bitrateIndex: number; timestamps: boolean } {
    return { state: this.state.channel, bitrateIndex: this.state.bitrateIndex, timestamps: this.state.timestamps };
  }

  receive(chunk: Buffer, out: Buffer[]): void {
    this.lines.push(
      this.firmware.dropsLf ? chunk.filter((b) => b !== LF) : chunk,
      (line) => this.handleLine(line.toString('latin1'), out),
      () => {
        // Longer than any valid line: refused once, as an adapter's overflowing command buffer would.
        this.ownRejects['too-long']++;
        if (this.firmware.answers) out.push(BEL_REPLY);
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

  private handleLine(text: string, out: Buffer[]): void {
    if (text === '') {
      if (this.firmware.emptyLine === 'bell') return void out.push(BEL_REPLY);
      if (this.firmware.emptyLine === 'ignore' || this.previous === '') return;
      text = this.previous;
    }
    this.previous = text;
    if (FRAME_STARTS.has(text[0]!)) return this.handleFrameLine(text, out);
    this.hooks.logger.debug(`ecu-sim slcan (${this.firmware.name}): command ${JSON.stringify(text)} (channel ${this.state.channel})`);
    const wasEmitting = this.onBus(this.state.channel);
    if (!this.firmware.command(text, this.state, out, this.hooks.elapsedMs())) this.ownRejects['bad-command']++;
    // After the answer: the first periodic frame must not precede the answer to O.
    const emitting = this.onBus(this.state.channel);
    if (emitting !== wasEmitting) this.hooks.setEmitting(emitting);
  }

  /** Frames from the bus reach the host while open or listening (not in loop-back: the controller is off the bus). */
  private onBus(channel: ChannelState): boolean {
    return channel === 'open' || channel === 'listen-only';
  }

  private handleFrameLine(text: string, out: Buffer[]): void {
    let frame: CanFrame | undefined;
    for (const item of this.frames.push(Buffer.from(text + '\r', 'latin1'))) {
      if (item.kind === 'frame') frame = item.frame;
    }
    const channel = this.state.channel;
    const sent = frame !== undefined && (channel === 'open' || channel === 'loopback');
    this.firmware.frameAnswer(text, frame !== undefined, sent, out);
    if (!sent || frame === undefined) return;
    const input: CanFrameInput = { id: frame.id, extended: frame.extended, rtr: frame.rtr, dlc: frame.dlc, data: frame.data };
    if (channel === 'loopback') return void out.push(this.encode(input));
    this.hooks.received({
      id: frame.id, extended: frame.extended, rtr: frame.rtr, dlc: frame.dlc, data: frame.data.toString('hex'),
    });
    const answer = answerObdRequest(frame, this.hooks.elapsedMs());
    if (answer !== undefined) out.push(this.encode(answer));
  }

  /** A frame as the adapter sends it to the host, with the Z1 timestamp when on. */
  private encode(frame: CanFrameInput): Buffer {
    const line = encodeFrame(frame);
    if (!this.state.timestamps) return line;
    const ts = this.firmware.timestamp(this.hooks.elapsedMs(), this.state).toString(16).toUpperCase().padStart(4, '0');
    const out = Buffer.allocUnsafe(line.length + 4);
    line.copy(out, 0, 0, line.length - 1);
    out.write(ts, line.length - 1, 'latin1');
    out[out.length - 1] = CR;
    return out;
  }
}
