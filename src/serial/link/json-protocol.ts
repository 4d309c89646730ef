/**
 * JSON messages to and from an MCU (docs/ecu-protocols.md), framed either by
 * COBS + CRC (`cobs`, payload json) or by newlines (`ndjson`): events in,
 * requests out with an id and their replies correlated back, one-way
 * commands and routed events out.
 */
import type { SerialLinkConfig } from '../../config/types.js';
import { linkSignalMap, type LinkSignalMap } from '../can-signals.js';
import { CobsDecoder, decodePayload, encodeFrame } from '../cobs-codec.js';
import { loadDbcFile } from '../dbc/load.js';
import { encodeLine, NdjsonDecoder } from '../ndjson-codec.js';
import { isPlainObject, LinkError, type LinkIO, type LinkProtocol, type RoutedSend } from './link-protocol.js';
import { PendingRequests } from './pending-requests.js';
import { canIdName } from './slcan-protocol.js';

/** One framing: bytes in → JSON values, JSON value → bytes out. */
interface JsonFraming {
  push(chunk: Buffer, onValue: (value: unknown) => void): void;
  encode(value: unknown): Buffer;
  reset(): void;
  readonly stats: { rejected: Record<string, number> };
}

function cobsFraming(config: SerialLinkConfig, io: LinkIO): JsonFraming {
  const { crc, max_frame: maxFrame } = config.cobs;
  const decoder = new CobsDecoder({ crc, maxFrame, onReject: (reason) => io.rejected(reason) });
  let badJson = 0;
  return {
    push(chunk, onValue) {
      for (const payload of decoder.push(chunk)) {
        const r = decodePayload(payload, 'json');
        if (r.ok) onValue(r.value);
        else {
          badJson++;
          io.rejected('bad-json', r.message);
        }
      }
    },
    encode(value) {
      let text: string;
      try {
        text = JSON.stringify(value);
      } catch (err) {
        throw new LinkError('invalid-request', `cannot be sent as JSON: ${(err as Error).message}`);
      }
      const payload = Buffer.from(text, 'utf8');
      if (payload.length > maxFrame) throw new LinkError('invalid-request', `message of ${payload.length} bytes, the link's max_frame is ${maxFrame}`);
      return encodeFrame(payload, { crc });
    },
    reset: () => decoder.reset(),
    get stats() {
      return { rejected: { ...decoder.stats.rejected, 'bad-json': badJson } };
    },
  };
}

function ndjsonFraming(config: SerialLinkConfig, io: LinkIO): JsonFraming {
  const maxLine = config.ndjson.max_line;
  const decoder = new NdjsonDecoder({ maxLine, onReject: (reason) => io.rejected(reason) });
  return {
    push(chunk, onValue) {
      for (const v of decoder.push(chunk)) onValue(v);
    },
    encode(value) {
      let line: Buffer;
      try {
        line = encodeLine(value);
      } catch (err) {
        throw new LinkError('invalid-request', (err as Error).message);
      }
      if (line.length - 1 > maxLine) throw new LinkError('invalid-request', `message of ${line.length - 1} bytes, the link's max_line is ${maxLine}`);
      return line;
    },
    reset: () => decoder.reset(),
    get stats() {
      return { rejected: { ...decoder.stats.rejected } };
    },
  };
}

/** `{verb, args}` of a send or request, checked; args default to null. */
function verbCall(args: unknown): { verb: string; args: unknown } {
  if (!isPlainObject(args) || typeof args.verb !== 'string' || args.verb === '') {
    throw new LinkError('invalid-request', 'expected {verb: "name", args?: any}');
  }
  return { verb: args.verb, args: args.args ?? null };
}

export class JsonProtocol implements LinkProtocol {
  readonly kind: 'cobs' | 'ndjson';
  readonly namedVerbs = true;
  private readonly framing: JsonFraming;
  private readonly requests: PendingRequests<number>;
  private messages = 0;
  private unexpected = 0;
  /**
   * An MCU that gateways a CAN (FD) bus sends frames as `can` events; with
   * `messages` or `dbc` on the link they are decoded as slcan frames are.
   */
  private readonly map: LinkSignalMap | undefined;

  constructor(private readonly config: SerialLinkConfig, private readonly io: LinkIO) {
    this.kind = config.protocol === 'cobs' ? 'cobs' : 'ndjson';
    this.framing = this.kind === 'cobs' ? cobsFraming(config, io) : ndjsonFraming(config, io);
    this.requests = new PendingRequests<number>(config.max_pending_requests, `link ${config.name}`);
    if (config.messages.length > 0 || config.dbc.length > 0) {
      this.map = linkSignalMap(config.messages, config.dbc.map((file) => ({ file, dbc: loadDbcFile(file) })));
    }
  }

  push(chunk: Buffer): void {
    this.framing.push(chunk, (v) => this.onMessage(v));
  }

  /** Nothing to set up: the MCU talks as soon as the port is open. */
  async handshake(): Promise<void> {}

  reset(reason: string): void {
    this.framing.reset();
    this.requests.failAll(reason);
  }

  encodeSend(args: unknown): Buffer {
    return this.framing.encode(verbCall(args));
  }

  encodeRouted(send: RoutedSend): Buffer {
    if (send.message === undefined) return this.framing.encode({ event: send.event, data: send.data ?? null });
    if (this.map === undefined) throw new LinkError('invalid-request', `link ${this.config.name} has no message map (messages or dbc): cannot encode ${send.message}`);
    let frame;
    try {
      frame = this.map.encode(send.message, send.values ?? {});
    } catch (err) {
      throw new LinkError('invalid-request', (err as Error).message);
    }
    return this.framing.encode({ event: CAN_EVENT, data: { id: frame.id, extended: frame.extended, data: frame.data.toString('hex') } });
  }

  request(args: unknown, timeoutMs: number): Promise<unknown> {
    const call = verbCall(args);
    const id = this.requests.allocateId();
    const bytes = this.framing.encode({ id, ...call });
    return this.requests.add(id, timeoutMs, () => this.io.write(bytes));
  }

  stats(): Record<string, unknown> {
    return { messages: this.messages, unexpected: this.unexpected, late_replies: this.requests.late, pending: this.requests.size, rejected: this.framing.stats.rejected };
  }

  private onMessage(m: unknown): void {
    if (isPlainObject(m)) {
      if (typeof m.event === 'string' && m.event !== '') {
        this.messages++;
        if (m.event === CAN_EVENT && this.map !== undefined) this.onCanFrame(m.data);
        else this.io.event(m.event, m.data ?? null);
        return;
      }
      if (typeof m.id === 'number' && ('result' in m || 'error' in m)) {
        this.messages++;
        const outcome = 'error' in m && m.error !== null && m.error !== undefined
          ? { error: new LinkError('ecu-error', typeof m.error === 'string' ? m.error : JSON.stringify(m.error)) }
          : { value: m.result ?? null };
        if (!this.requests.settle(m.id, outcome)) this.io.rejected('late-reply', `reply to request ${m.id}, which no longer waits`);
        return;
      }
    }
    this.unexpected++;
    this.io.rejected('unexpected-message', 'valid JSON, but neither an event nor a reply');
  }

  /** `{"id":291,"extended":false,"data":"<hex, up to 64 bytes>"}` → the event the slcan link would give for it. */
  private onCanFrame(f: unknown): void {
    const why = badCanFrame(f);
    if (why !== undefined) {
      this.io.rejected('bad-can-frame', why);
      return;
    }
    const { id, extended = false, data: hex } = f as { id: number; extended?: boolean; data: string };
    const data = Buffer.from(hex, 'hex');
    const frame = { id, extended, rtr: false, dlc: data.length, data };
    const out: Record<string, unknown> = { id, extended, rtr: false, dlc: data.length, data: hex.toLowerCase() };
    const decoded = this.map!.decode(frame);
    if (decoded !== undefined) {
      out.values = decoded.values;
      out.units = decoded.units;
      if (decoded.raw !== undefined) out.raw = decoded.raw;
    }
    this.io.event((decoded?.name ?? this.map!.nameOf(id, extended)) ?? canIdName(id, extended), out);
  }
}

/** The event an MCU gateway uses for CAN (FD) frames, both ways. */
export const CAN_EVENT = 'can';

function badCanFrame(f: unknown): string | undefined {
  if (!isPlainObject(f)) return 'a can event carries {"id","extended","data"}';
  const extended = f.extended ?? false;
  if (typeof extended !== 'boolean') return 'can event: "extended" must be true or false';
  const max = extended ? 0x1fffffff : 0x7ff;
  if (typeof f.id !== 'number' || !Number.isInteger(f.id) || f.id < 0 || f.id > max) return `can event: "id" must be an integer 0..0x${max.toString(16).toUpperCase()}`;
  if (typeof f.data !== 'string' || !/^(?:[0-9A-Fa-f]{2}){0,64}$/.test(f.data)) return 'can event: "data" must be hex, whole bytes, at most 64';
  return undefined;
}
