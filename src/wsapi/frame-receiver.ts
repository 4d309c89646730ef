/**
 * Incremental RFC 6455 frame parser for wsapi streams.
 *
 * Written here rather than reusing `ws`'s Receiver because wsapi differs from
 * browser WebSocket in ways that Receiver enforces the other way round:
 *  - masked and unmasked frames must both be accepted in either role (the
 *    Receiver requires exactly one masking mode per role);
 *  - the size limit applies to each frame as announced by its header, checked
 *    before the payload is read (the Receiver limits the whole message);
 *  - a text frame must end the connection with 1003 (the Receiver delivers it);
 *  - a ping is answered with an empty pong by the caller, not by the parser.
 * Everything else (header layout, control-frame rules, continuation rules)
 * follows RFC 6455 section 5 as the native websock.c does.
 */
import { Buffer } from 'node:buffer';
import { CloseCode, DEFAULT_MAX_FRAME_PAYLOAD } from './constants.js';

export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

export interface FrameHandler {
  /** A complete (possibly reassembled) binary message. */
  onMessage(payload: Buffer): void;
  onPing(payload: Buffer): void;
  onPong(payload: Buffer): void;
  /** The peer sent a close frame; `code` is absent when its payload was empty. */
  onClose(code: number | undefined, reason: string): void;
  /** The stream broke the protocol; the connection must send close `code` and hang up. */
  onProtocolError(code: number, reason: string): void;
}

export interface FrameReceiverOptions {
  /** Largest payload of one frame; bigger → close 1009 before the payload is read. */
  maxFramePayload?: number;
  /**
   * Largest reassembled fragmented message. The reference has none; this
   * parser's default (64 MiB) only keeps it finite: WsapiConnection passes
   * DEFAULT_MAX_MESSAGE_SIZE (see constants.ts for why that value).
   */
  maxMessageSize?: number;
  /** Most frames one fragmented message may arrive in (default 65,536; WsapiConnection: 1024). */
  maxFragments?: number;
  /**
   * The caller pushes views of one buffer it reuses (a socket read with
   * `onread`, socket-reads.ts): what the receiver holds past push() (half a
   * frame, a fragment) is copied, and a payload handed to the handler is
   * valid only during that call.
   */
  reusedChunks?: boolean;
}

const enum State { HEADER, PAYLOAD, DEAD }

/** Most fragments one message may arrive in (each costs a buffer even when empty). */
const MAX_FRAGMENTS = 65_536;

/**
 * A standalone copy of `b`: a fragment kept until its message completes must
 * not pin the whole socket chunk it was sliced from (a peer could otherwise
 * make each 1-byte fragment hold a 64 KiB read, padded with pings).
 */
function own(b: Buffer): Buffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b;
  const copy = Buffer.allocUnsafeSlow(b.length);
  b.copy(copy);
  return copy;
}

export class FrameReceiver {
  private readonly chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed (an offset, not a new view per frame). */
  private head = 0;
  private buffered = 0;
  private state = State.HEADER;

  /* current frame */
  private fin = false;
  private opcode = 0;
  private mask: Buffer | null = null;
  private payloadLength = 0;

  /* fragmented message being reassembled */
  private fragments: Buffer[] = [];
  private fragmentedSize = 0;
  private inFragmentedMessage = false;

  private readonly maxFramePayload: number;
  private readonly maxMessageSize: number;
  private readonly maxFragments: number;
  private readonly reusedChunks: boolean;
  private completedMessages = 0;

  constructor(private readonly handler: FrameHandler, options: FrameReceiverOptions = {}) {
    this.maxFramePayload = options.maxFramePayload ?? DEFAULT_MAX_FRAME_PAYLOAD;
    this.maxMessageSize = options.maxMessageSize ?? 64 * 1024 * 1024;
    this.maxFragments = options.maxFragments ?? MAX_FRAGMENTS;
    this.reusedChunks = options.reusedChunks ?? false;
  }

  /** True once a protocol error or close made the parser stop. */
  get dead(): boolean {
    return this.state === State.DEAD;
  }

  /** Bytes held for frames and messages not complete yet. */
  get heldBytes(): number {
    return this.buffered + this.fragmentedSize;
  }

  /** True while part of a frame or of a fragmented message is held. */
  get holdsPartial(): boolean {
    return this.buffered > 0 || this.inFragmentedMessage;
  }

  /** Binary messages delivered so far (tells progress apart from a stalled half message). */
  get messagesCompleted(): number {
    return this.completedMessages;
  }

  /** Feeds bytes read from the socket. */
  push(chunk: Buffer): void {
    this.feed(chunk);
    // Only the tail of this chunk can still be held (earlier ones were copied when their push ended):
    // chunks are consumed in order, so if any of it is held, it is the last one held.
    const last = this.chunks.length - 1;
    if (this.reusedChunks && last >= 0 && this.chunks[last] === chunk) {
      this.chunks[last] = Buffer.from(last === 0 ? this.chunks[0]!.subarray(this.head) : this.chunks[last]!);
      if (last === 0) this.head = 0;
    }
  }

  private feed(chunk: Buffer): void {
    if (this.state === State.DEAD) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.state === State.HEADER) {
        if (!this.readHeader()) return;
      } else if (this.state === State.PAYLOAD) {
        if (this.buffered < this.payloadLength) return;
        this.readPayload();
      } else {
        return;
      }
    }
  }

  /** Copies out (or slices, when it lies in one chunk) the next `n` buffered bytes. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    const rest = first.length - this.head;
    if (n === rest) {
      this.chunks.shift();
      const out = this.head === 0 ? first : first.subarray(this.head);
      this.head = 0;
      return out;
    }
    if (n < rest) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const avail = c.length - this.head;
      const want = n - off;
      if (avail <= want) {
        out.set(this.head === 0 ? c : c.subarray(this.head), off);
        off += avail;
        this.chunks.shift();
        this.head = 0;
      } else {
        out.set(c.subarray(this.head, this.head + want), off);
        this.head += want;
        off += want;
      }
    }
    return out;
  }

  /** Consumes the next `n` buffered bytes (a frame's header, read with peek). */
  private skip(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const avail = this.chunks[0]!.length - this.head;
      if (n < avail) {
        this.head += n;
        return;
      }
      n -= avail;
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Byte at offset `i` of the buffered data, without consuming it. */
  private peek(i: number): number {
    i += this.head;
    for (let k = 0; k < this.chunks.length; k++) {
      const c = this.chunks[k]!;
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    return -1;
  }

  /** The big-endian 32-bit value at offset `i` of the buffered data (all four bytes there), without consuming it. */
  private peek32(i: number): number {
    return this.peek(i) * 0x100_0000 + ((this.peek(i + 1) << 16) | (this.peek(i + 2) << 8) | this.peek(i + 3));
  }

  private fail(code: number, reason: string): false {
    this.state = State.DEAD;
    this.chunks.length = 0;
    this.head = 0;
    this.buffered = 0;
    this.fragments = [];
    this.fragmentedSize = 0;
    this.inFragmentedMessage = false;
    this.handler.onProtocolError(code, reason);
    return false;
  }

  private readHeader(): boolean {
    if (this.buffered < 2) return false;
    const b0 = this.peek(0);
    const b1 = this.peek(1);
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const headerSize = 2 + extra + (masked ? 4 : 0);

    this.fin = (b0 & 0x80) !== 0;
    this.opcode = b0 & 0x0f;
    if ((b0 & 0x70) !== 0) return this.fail(CloseCode.PROTOCOL_ERROR, 'reserved bits set');
    const isControl = (this.opcode & 0x08) !== 0;
    switch (this.opcode) {
      case Opcode.CONTINUATION:
        if (!this.inFragmentedMessage) return this.fail(CloseCode.PROTOCOL_ERROR, 'continuation without a started message');
        break;
      case Opcode.TEXT:
        return this.fail(CloseCode.CANT_ACCEPT, 'text frame');
      case Opcode.BINARY:
        if (this.inFragmentedMessage) return this.fail(CloseCode.PROTOCOL_ERROR, 'new message while a fragmented one is pending');
        break;
      case Opcode.CLOSE:
      case Opcode.PING:
      case Opcode.PONG:
        break;
      default:
        return this.fail(CloseCode.PROTOCOL_ERROR, `reserved opcode ${this.opcode}`);
    }
    if (isControl && (!this.fin || len7 > 125)) {
      return this.fail(CloseCode.PROTOCOL_ERROR, 'fragmented or oversized control frame');
    }

    // The length check needs only the length bytes: refuse before the mask and payload arrive.
    if (this.buffered < 2 + extra) return false;
    let length = len7;
    if (extra > 0) {
      if (extra === 2) {
        length = (this.peek(2) << 8) | this.peek(3);
      } else {
        const high = this.peek32(2);
        if (high > 0x1fffff) return this.fail(CloseCode.MESSAGE_TOO_LARGE, 'frame length beyond 2^53');
        length = high * 0x1_0000_0000 + this.peek32(6);
      }
    }
    if (length > this.maxFramePayload) {
      return this.fail(CloseCode.MESSAGE_TOO_LARGE, `frame payload ${length} > limit ${this.maxFramePayload}`);
    }
    if (this.opcode === Opcode.CONTINUATION || (this.opcode === Opcode.BINARY && !this.fin)) {
      if (this.fragmentedSize + length > this.maxMessageSize) {
        return this.fail(CloseCode.MESSAGE_TOO_LARGE, `fragmented message > limit ${this.maxMessageSize}`);
      }
      // Empty fragments cost memory too: bound their number as well.
      if (this.fragments.length >= this.maxFragments) {
        return this.fail(CloseCode.MESSAGE_TOO_LARGE, `fragmented message in more than ${this.maxFragments} pieces`);
      }
    }
    if (this.buffered < headerSize) return false;
    if (masked) {
      const m = Buffer.allocUnsafe(4);
      for (let k = 0; k < 4; k++) m[k] = this.peek(headerSize - 4 + k);
      this.mask = m;
    } else {
      this.mask = null;
    }
    this.skip(headerSize);
    this.payloadLength = length;
    this.state = State.PAYLOAD;
    return true;
  }

  private readPayload(): void {
    let payload = this.payloadLength === 0 ? Buffer.alloc(0) : this.take(this.payloadLength);
    if (this.mask !== null) {
      // Unmask into a copy: the chunk may be shared with the next frame.
      const m = this.mask;
      const out = Buffer.allocUnsafe(payload.length);
      for (let i = 0; i < payload.length; i++) out[i] = payload[i]! ^ m[i & 3]!;
      payload = out;
    }
    this.state = State.HEADER;

    switch (this.opcode) {
      case Opcode.PING:
        this.handler.onPing(payload);
        return;
      case Opcode.PONG:
        this.handler.onPong(payload);
        return;
      case Opcode.CLOSE: {
        this.state = State.DEAD;
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
        const reason = payload.length > 2 ? payload.toString('utf8', 2) : '';
        this.chunks.length = 0;
        this.head = 0;
        this.buffered = 0;
        this.fragments = [];
        this.fragmentedSize = 0;
        this.inFragmentedMessage = false;
        this.handler.onClose(code, reason);
        return;
      }
      default:
        break;
    }
    if (!this.fin) {
      this.inFragmentedMessage = true;
      this.fragments.push(this.reusedChunks ? Buffer.from(payload) : own(payload));
      this.fragmentedSize += payload.length;
      return;
    }
    if (this.inFragmentedMessage) {
      this.fragments.push(payload);
      const whole = Buffer.concat(this.fragments, this.fragmentedSize + payload.length);
      this.fragments = [];
      this.fragmentedSize = 0;
      this.inFragmentedMessage = false;
      this.completedMessages++;
      this.handler.onMessage(whole);
      return;
    }
    this.completedMessages++;
    this.handler.onMessage(payload);
  }
}

/** Payload length of one complete unmasked frame built by the codec (header lengths as RFC 6455). */
export function framePayloadLength(frame: Buffer): number {
  const len7 = frame[1]! & 0x7f;
  const header = len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  return frame.length - header - ((frame[1]! & 0x80) !== 0 ? 4 : 0);
}

/** Control frames the endpoints send (always unmasked, like the reference). */
export const PONG_EMPTY = Buffer.from([0x8a, 0x00]);

export function closeFrame(code: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = 0x88;
  b[1] = 2;
  b.writeUInt16BE(code, 2);
  return b;
}
