/**
 * slcan on a link: the adapter is set up when the port opens, per its
 * dialect (slcan-control.ts: probed or configured, acknowledged or not),
 * received frames become events named after their id or the message map,
 * and frames are sent from raw ids/bytes or from a message's physical values.
 *
 * Request/response: CAN frames carry no correlation, so a request is "send
 * this frame, answer with the next frame carrying that response id"
 * (OBD-II/UDS single-frame style: 0x7DF → 0x7E8). One request per response
 * id at a time.
 */
import type { SerialLinkConfig } from '../../config/types.js';
import { linkSignalMap, type LinkSignalMap } from '../can-signals.js';
import { loadDbcFile } from '../dbc/load.js';
import { encodeFrame, SlcanDecoder, type CanFrame, type CanFrameInput, type SlcanItem } from '../slcan-codec.js';
import { hexBytes, isPlainObject, LinkError, type LinkIO, type LinkProtocol, type RoutedSend } from './link-protocol.js';
import { PendingRequests } from './pending-requests.js';
import { SlcanControl } from './slcan-control.js';

const frameKey = (id: number, extended: boolean): string => (extended ? 'x' : 's') + id.toString(16);

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

export class SlcanProtocol implements LinkProtocol {
  readonly kind = 'slcan' as const;
  readonly namedVerbs = false;
  private readonly decoder: SlcanDecoder;
  /** The link's YAML messages and DBC files (names ids for events, decodes and encodes signals). */
  private readonly map: LinkSignalMap | undefined;
  private readonly requests: PendingRequests<string>;
  /** Dialect, setup, acks, status polls. */
  private readonly control: SlcanControl;

  constructor(private readonly config: SerialLinkConfig, private readonly io: LinkIO) {
    this.decoder = new SlcanDecoder({ onItem: (item) => this.onItem(item), onReject: (reason) => io.rejected(reason) });
    this.control = new SlcanControl(config, io, this.decoder);
    if (config.messages.length > 0 || config.dbc.length > 0) {
      // The config check loaded these files already: loadDbcFile returns them from its cache.
      this.map = linkSignalMap(config.messages, config.dbc.map((file) => ({ file, dbc: loadDbcFile(file) })));
    }
    this.requests = new PendingRequests<string>(config.max_pending_requests, `link ${config.name}`);
  }

  push(chunk: Buffer): void {
    if (!this.control.intercept(chunk)) this.decoder.push(chunk);
  }

  handshake(timeoutMs: number): Promise<void> {
    return this.control.handshake(timeoutMs);
  }

  describe(): string {
    return this.control.describe();
  }

  reset(reason: string): void {
    this.control.reset(reason);
    this.decoder.reset();
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

  /** A frame went out: whether the adapter owes an answer depends on its dialect. */
  sent(): void {
    this.control.sent();
  }

  stats(): Record<string, unknown> {
    const d = this.decoder.stats;
    return { frames: d.frames, adapter_errors: d.errors, ...this.control.stats(), rejected: { ...d.rejected }, late_replies: this.requests.late };
  }

  private onItem(item: SlcanItem): void {
    if (item.kind === 'frame') this.onFrame(item.frame);
    else this.control.onReply(item);
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
