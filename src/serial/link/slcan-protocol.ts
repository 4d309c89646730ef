/**
 * slcan on a link: the adapter is initialised when the port opens (C, S<n>,
 * Z<0|1>, then O or L, each answered by CR or refused by BEL), received
 * frames become events named after their id or the message map, and frames
 * are sent from raw ids/bytes or from a message's physical values.
 *
 * Request/response: CAN frames carry no correlation, so a request is "send
 * this frame, answer with the next frame carrying that response id"
 * (OBD-II/UDS single-frame style: 0x7DF → 0x7E8). One request per response
 * id at a time.
 */
import type { SerialLinkConfig } from '../../config/types.js';
import { linkSignalMap, type LinkSignalMap } from '../can-signals.js';
import { loadDbcFile } from '../dbc/load.js';
import { encodeFrame, slcanCommands, SlcanDecoder, SLCAN_STATUS, type CanFrame, type CanFrameInput, type SlcanItem } from '../slcan-codec.js';
import { hexBytes, isPlainObject, LinkError, type LinkIO, type LinkProtocol, type RoutedSend } from './link-protocol.js';
import { PendingRequests } from './pending-requests.js';

const frameKey = (id: number, extended: boolean): string => (extended ? 'x' : 's') + id.toString(16);

/** Answers owed at most: far more than any adapter's transmit queue. */
const MAX_UNANSWERED = 4096;

/** Event name of an unmapped id: uppercase hex, 3 digits (standard) or 8 (extended). */
export function canIdName(id: number, extended: boolean): string {
  return id.toString(16).toUpperCase().padStart(extended ? 8 : 3, '0');
}

/** The event data of a frame (also a request's answer). */
export interface CanFrameData {
  id: number;
  extended: boolean;
  rtr: boolean;
  dlc: number;
  data: string;
  timestamp?: number;
  /** Physical values; a DBC VAL_ label where the raw value has one. */
  values?: Record<string, number | string>;
  units?: Record<string, string>;
  /** DBC messages: raw values (decimal strings beyond 2^53 − 1). */
  raw?: Record<string, number | string>;
}

interface CommandWaiter {
  command: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class SlcanProtocol implements LinkProtocol {
  readonly kind = 'slcan' as const;
  readonly namedVerbs = false;
  private readonly decoder: SlcanDecoder;
  /** The link's YAML messages and DBC files (names ids for events, decodes and encodes signals). */
  private readonly map: LinkSignalMap | undefined;
  private readonly requests: PendingRequests<string>;
  /** Commands sent during the handshake, answered in order by CR or BEL. */
  private readonly waiting: CommandWaiter[] = [];
  private txAcks = 0;
  private txRefused = 0;
  /**
   * Frames and status polls written since the handshake and not answered yet
   * (each gets CR, z/Z, F or BEL). Only then is a BEL a refusal; a BEL with
   * nothing waiting is line noise or a confused adapter (`unexpected-bell`).
   * Saturates: an adapter that never answers cannot grow it.
   */
  private unanswered = 0;
  private unexpectedBells = 0;
  private statusTimer: NodeJS.Timeout | undefined;
  /** Last status flags reported (undefined: none since the link opened). */
  private lastFlags: number | undefined;

  constructor(private readonly config: SerialLinkConfig, private readonly io: LinkIO) {
    this.decoder = new SlcanDecoder({ onItem: (item) => this.onItem(item), onReject: (reason) => io.rejected(reason) });
    if (config.messages.length > 0 || config.dbc.length > 0) {
      // The config check loaded these files already: loadDbcFile returns them from its cache.
      this.map = linkSignalMap(config.messages, config.dbc.map((file) => ({ file, dbc: loadDbcFile(file) })));
    }
    this.requests = new PendingRequests<string>(config.max_pending_requests, `link ${config.name}`);
  }

  push(chunk: Buffer): void {
    this.decoder.push(chunk);
  }

  async handshake(timeoutMs: number): Promise<void> {
    const s = this.config.slcan;
    // C first: an adapter left open by a previous run refuses S and Z. Its answer
    // is ignored (a closed adapter may refuse C itself).
    await this.command(slcanCommands.close(), timeoutMs, true);
    await this.command(slcanCommands.bitrate(s.bitrate), timeoutMs);
    await this.command(slcanCommands.timestamps(s.timestamps), timeoutMs);
    await this.command(s.listen_only ? slcanCommands.listenOnly() : slcanCommands.open(), timeoutMs);
    this.startStatusPoll();
  }

  reset(reason: string): void {
    this.unanswered = 0;
    clearInterval(this.statusTimer);
    this.statusTimer = undefined;
    this.lastFlags = undefined;
    this.decoder.reset();
    for (const w of this.waiting.splice(0)) w.reject(new LinkError('disconnected', reason));
    this.requests.failAll(reason);
  }

  encodeSend(args: unknown): Buffer {
    if (this.config.slcan.listen_only) {
      throw new LinkError('not-supported', `link ${this.config.name} is listen-only: nothing is sent on the bus`);
    }
    if (!isPlainObject(args)) throw new LinkError('invalid-request', 'expected {id, extended?, rtr?, data: "hex"} or {message, values}');
    return encodeChecked(typeof args.message === 'string' ? this.encodeMessage(args.message, args.values) : frameInput(args));
  }

  encodeRouted(send: RoutedSend): Buffer {
    if (send.message !== undefined) return this.encodeSend({ message: send.message, values: send.values ?? {} });
    return this.encodeSend(send.data);
  }

  request(args: unknown, timeoutMs: number): Promise<unknown> {
    if (!isPlainObject(args)) throw new LinkError('invalid-request', 'expected a frame (or {message, values}) with response_id');
    const responseId = args.response_id;
    const responseExtended = args.response_extended === true;
    if (typeof responseId !== 'number' || !Number.isInteger(responseId) || responseId < 0 || responseId > (responseExtended ? 0x1fffffff : 0x7ff)) {
      throw new LinkError('invalid-request', 'response_id must be the CAN id of the answer (e.g. 0x7E8 = 2024)');
    }
    const bytes = this.encodeSend(args);
    return this.requests.add(frameKey(responseId, responseExtended), timeoutMs, () => {
      this.io.write(bytes);
      this.sent();
    });
  }

  /** A frame or poll went out: the adapter owes one answer. */
  sent(): void {
    if (this.unanswered < MAX_UNANSWERED) this.unanswered++;
  }

  stats(): Record<string, unknown> {
    const d = this.decoder.stats;
    return { frames: d.frames, adapter_errors: d.errors, tx_acks: this.txAcks, tx_refused: this.txRefused, unexpected_bells: this.unexpectedBells, rejected: { ...d.rejected }, late_replies: this.requests.late };
  }

  private command(bytes: Buffer, timeoutMs: number, ignoreRefusal = false): Promise<void> {
    const command = bytes.toString('latin1', 0, bytes.length - 1);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new LinkError('timeout', `the adapter did not answer '${command}' within ${timeoutMs} ms (is it an slcan adapter at this baud rate?)`));
      }, timeoutMs);
      const waiter: CommandWaiter = {
        command,
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (err) => { clearTimeout(timer); if (ignoreRefusal && err instanceof LinkError && err.code === 'ecu-error') resolve(); else reject(err); },
      };
      this.waiting.push(waiter);
      try {
        this.io.write(bytes);
      } catch (err) {
        this.waiting.pop();
        clearTimeout(timer);
        reject(err);
      }
    });
  }

  private onItem(item: SlcanItem): void {
    switch (item.kind) {
      case 'frame':
        this.onFrame(item.frame);
        return;
      case 'status':
        // Outside the setup, an F reply is the poll's: matched by its kind, not by order
        // (frames sent meanwhile get their own z/Z/CR replies).
        if (this.waiting.length === 0) {
          this.answered();
          this.onStatus(item.flags);
          return;
        }
        this.waiting.shift()!.resolve();
        return;
      case 'ok':
      case 'tx-ack':
      case 'version':
      case 'serial': {
        const w = this.waiting.shift();
        if (w !== undefined) w.resolve();
        else {
          this.answered();
          this.txAcks++;
        }
        return;
      }
      case 'error': {
        const w = this.waiting.shift();
        if (w !== undefined) w.reject(new LinkError('ecu-error', `the adapter refused '${w.command}'`));
        else if (this.unanswered > 0) {
          this.answered();
          this.txRefused++;
          this.io.rejected('tx-refused', 'the adapter refused a frame (BEL): bus off, queue full or channel closed');
        } else {
          this.unexpectedBells++;
          this.io.rejected('unexpected-bell', 'a BEL while no command or frame waited for an answer (line noise?)');
        }
      }
    }
  }

  /** Polls the adapter's status flags (bus errors are otherwise invisible on slcan). */
  private startStatusPoll(): void {
    const every = this.config.slcan.status_interval_ms;
    if (every <= 0) return;
    this.statusTimer = setInterval(() => {
      try {
        this.io.write(slcanCommands.readStatus());
        this.sent();
      } catch {
        /* busy or closing: the next tick asks again */
      }
    }, every);
    this.statusTimer.unref();
  }

  private answered(): void {
    if (this.unanswered > 0) this.unanswered--;
  }

  private onStatus(flags: number): void {
    if (flags === this.lastFlags) return;
    this.lastFlags = flags;
    const errors = Object.entries(SLCAN_STATUS).filter(([, bit]) => (flags & bit) !== 0).map(([name]) => name);
    this.io.event('status', { flags, errors });
  }

  private onFrame(frame: CanFrame): void {
    const key = frameKey(frame.id, frame.extended);
    const data: CanFrameData = { id: frame.id, extended: frame.extended, rtr: frame.rtr, dlc: frame.dlc, data: frame.data.toString('hex') };
    if (frame.timestamp !== undefined) data.timestamp = frame.timestamp;
    const decoded = this.map?.decode(frame);
    if (decoded !== undefined) {
      data.values = decoded.values;
      data.units = decoded.units;
      if (decoded.raw !== undefined) data.raw = decoded.raw;
    }
    if (this.requests.size > 0 && this.requests.has(key)) this.requests.settle(key, { value: data });
    this.io.event((decoded?.name ?? this.map?.nameOf(frame.id, frame.extended)) ?? canIdName(frame.id, frame.extended), data);
  }

  private encodeMessage(message: string, values: unknown): CanFrameInput {
    if (this.map === undefined) throw new LinkError('invalid-request', `link ${this.config.name} has no message map: send {id, data}`);
    if (values !== undefined && !isPlainObject(values)) throw new LinkError('invalid-request', 'values must be an object {signal: number or DBC label}');
    try {
      return this.map.encode(message, values ?? {});
    } catch (err) {
      throw new LinkError('invalid-request', (err as Error).message);
    }
  }
}

function frameInput(args: Record<string, unknown>): CanFrameInput {
  const { id, extended, rtr, dlc } = args;
  if (typeof id !== 'number') throw new LinkError('invalid-request', 'id must be a number (CAN identifier)');
  if (extended !== undefined && typeof extended !== 'boolean') throw new LinkError('invalid-request', 'extended must be true or false');
  if (rtr !== undefined && typeof rtr !== 'boolean') throw new LinkError('invalid-request', 'rtr must be true or false');
  if (dlc !== undefined && typeof dlc !== 'number') throw new LinkError('invalid-request', 'dlc must be a number 0-8');
  const frame: CanFrameInput = { id, extended: extended === true, rtr: rtr === true, data: hexBytes(args.data ?? '', 'data', 8) };
  if (dlc !== undefined) frame.dlc = dlc;
  return frame;
}

/** encodeFrame checks the id range and the DLC with a precise message: pass it on as the request's error. */
function encodeChecked(frame: CanFrameInput): Buffer {
  try {
    return encodeFrame(frame);
  } catch (err) {
    throw new LinkError('invalid-request', (err as Error).message);
  }
}
