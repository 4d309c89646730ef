/**
 * What a serial link needs from its protocol (slcan, COBS, NDJSON): decode
 * what the device sends into events and replies, prepare the device when the
 * port opens, and encode what is sent to it. A protocol does no I/O of its
 * own: it writes through the LinkIO its link gives it.
 */

/** Error codes, in the words wsapi replies use, so they pass through unchanged. */
export type LinkErrorCode = 'invalid-request' | 'busy' | 'disconnected' | 'timeout' | 'not-supported' | 'ecu-error';

export class LinkError extends Error {
  constructor(readonly code: LinkErrorCode, message: string) {
    super(message);
    this.name = 'LinkError';
  }
}

export interface LinkIO {
  /** Queues bytes for the device; throws LinkError 'busy' (queue bound) or 'disconnected'. */
  write(bytes: Buffer): void;
  /** An event from the ECU; `name` is the part after `{link}/`. */
  event(name: string, data: unknown): void;
  /** Input the decoder dropped, per reason (counted, logged rate-limited). */
  rejected(reason: string, detail?: string): void;
  /** The device is not what the handshake took it for: close the port and open it again (with backoff). */
  reopen(reason: string): void;
}

/** What a route asks to send: the event, and for slcan maps the message and its values. */
export interface RoutedSend {
  event: string;
  data: unknown;
  message?: string;
  values?: Record<string, unknown>;
}

export interface LinkProtocol {
  readonly kind: 'slcan' | 'cobs' | 'ndjson';
  /** The device answers named requests ({verb, args}): any verb may be relayed to it. */
  readonly namedVerbs: boolean;
  /** Bytes as the port delivers them (any chunking). Never throws. */
  push(chunk: Buffer): void;
  /** Runs once the port is open; resolves when the device is ready, rejects with the reason otherwise. */
  handshake(timeoutMs: number): Promise<void>;
  /** The port closed: drop partial input, fail whatever waits for the device. */
  reset(reason: string): void;
  /** Encodes a send from a command or the exported API. Throws LinkError 'invalid-request'. */
  encodeSend(args: unknown): Buffer;
  /** Encodes an event a route forwards to the ECU. Throws LinkError 'invalid-request'. */
  encodeRouted(send: RoutedSend): Buffer;
  /** What encodeSend/encodeRouted made was queued for the device (a protocol whose device answers each send counts it here). */
  sent?(bytes: Buffer): void;
  /** Sends a request and resolves with the ECU's answer; rejects with a LinkError. */
  request(args: unknown, timeoutMs: number): Promise<unknown>;
  /** Protocol counters for the `links` verb and logs. */
  stats(): Record<string, unknown>;
  /** What the handshake found out about the device (slcan: the adapter dialect and why), for the open log. */
  describe?(): string;
}

export const isPlainObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Parses a hex string of whole bytes ('' allowed); throws LinkError naming `what`. */
export function hexBytes(value: unknown, what: string, max: number): Buffer {
  if (typeof value !== 'string' || !/^(?:[0-9A-Fa-f]{2})*$/.test(value)) {
    throw new LinkError('invalid-request', `${what} must be a hex string of whole bytes, e.g. "0102ff"`);
  }
  if (value.length / 2 > max) throw new LinkError('invalid-request', `${what}: ${value.length / 2} bytes, at most ${max}`);
  return Buffer.from(value, 'hex');
}
