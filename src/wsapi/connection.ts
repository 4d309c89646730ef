/**
 * One wsapi stream: frames in and out of a connected socket.
 *
 * - Always reading: the socket is never paused, because a native binder
 *   writes blocking and stalls entirely when its peer stops reading.
 * - Outbound frames queued in one turn (until the microtasks after it ran) leave together, in one write.
 * - Outbound backlog is bounded: a peer that lets more than `maxBacklog`
 *   bytes pile up is disconnected with a logged reason instead of letting
 *   memory grow without bound.
 * - Ping → empty pong; close received → hang up without echo; protocol
 *   errors → close frame with the RFC 6455 code, then hang up.
 * - What is held for the peer is bounded: a message being received
 *   (`maxMessageSize`, `maxFragments`), and for no longer than
 *   `partialMessageTimeoutMs`; with a shared `receiveBudget`, the bytes held
 *   by all connections together. A frame larger than the peer accepts
 *   (`peerMaxFramePayload`) is never written: the peer would close with 1009.
 */
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import {
  CloseCode, DEFAULT_MAX_BACKLOG, DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_FRAME_PAYLOAD, DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_PARTIAL_MESSAGE_TIMEOUT_MS, type LimitKind,
} from './constants.js';
import type { ByteBudget } from './byte-budget.js';
import { FrameReceiver, PONG_EMPTY, closeFrame, framePayloadLength, type FrameHandler } from './frame-receiver.js';
import { errorKind, OncePerKindLog, RateLimitedLog, silentLogger, type Logger } from '../util/log.js';
import type { SocketReads } from './socket-reads.js';

/**
 * Settled once: the end of a batch is a callback of its `then`, a microtask.
 * Not process.nextTick: that one makes a tick object per call and reads
 * process._exiting, a generic property load since `process` is a dictionary
 * object: 1,900 of the 24,800 instructions of a sequential call against
 * the native binder (valgrind's cachegrind). Frames queued by the promise
 * callbacks that run after the first send of a batch still join it.
 */
const SETTLED = Promise.resolve();

/** Largest batch of frames joined into one buffer before writing; larger ones are corked. */
const JOIN_MAX_BYTES = 64 * 1024;

export interface ConnectionOptions {
  /** Largest payload of one received frame (default 1,048,500, as the reference). */
  maxFramePayload?: number;
  /** Largest reassembled fragmented message (default 1,048,500: DEFAULT_MAX_MESSAGE_SIZE says why). */
  maxMessageSize?: number;
  /** Most frames one fragmented message may arrive in (default 1024). */
  maxFragments?: number;
  /**
   * Largest frame payload the peer accepts (default 1,048,500, a native
   * binder's receive limit; not negotiated by the protocol). Larger messages
   * are refused locally instead of getting the connection closed (1009).
   */
  peerMaxFramePayload?: number;
  /** A half frame or half message older than this closes the connection with 1008 (default 10 s; 0: never). */
  partialMessageTimeoutMs?: number;
  /** Bytes allowed to queue towards a peer that does not read (default 16 MiB). */
  maxBacklog?: number;
  logger?: Logger;
  /** Names the connection in logs, e.g. `client unix:/run/.../hello`. */
  label?: string;
}

export interface ConnectionStats {
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  malformed: number;
  pingsIn: number;
  backlogDisconnects: number;
  protocolErrors: number;
  handlerErrors: number;
  /** Outbound messages refused because the peer would not accept their size. */
  tooLargeRefused: number;
  /** Connections closed for holding a half frame or half message too long. */
  partialTimeouts: number;
  /** Connections closed because unfinished messages of all connections exceeded the shared budget. */
  bufferDisconnects: number;
  /** S/T declarations refused by the session/token table bounds (server side). */
  tableRefusals: number;
  /** Calls answered `busy` because too many calls (or args bytes) were in progress (server side). */
  busyRefusals: number;
  /** E messages ignored because the client's event table was full (client side). */
  eventTableRefusals: number;
}

export function newConnectionStats(): ConnectionStats {
  return {
    messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, malformed: 0, pingsIn: 0, backlogDisconnects: 0,
    protocolErrors: 0, handlerErrors: 0, tooLargeRefused: 0, partialTimeouts: 0, bufferDisconnects: 0, tableRefusals: 0,
    busyRefusals: 0, eventTableRefusals: 0,
  };
}

/** What a connection needs besides its options: the server's shared budget, and where limits are reported. */
export interface ConnectionContext {
  /** Bytes of unfinished messages, shared by the connections of one server. */
  receiveBudget?: ByteBudget;
  /** Called (after counting and logging) each time a bound refuses something. */
  onLimit?: (kind: LimitKind, detail: string) => void;
  /** The socket was made with these reads (client side): its bytes come from there, not from 'data'. */
  reads?: SocketReads;
}

export class WsapiConnection {
  /** Called with each complete binary message. */
  onMessage: (payload: Buffer) => void = () => {};
  /** Called once, when the socket is gone, with why. */
  onClose: (reason: string) => void = () => {};

  readonly stats: ConnectionStats;
  readonly label: string;
  /** Largest frame payload we send: the peer's receive limit. */
  readonly peerMaxFramePayload: number;
  private readonly receiver: FrameReceiver;
  private readonly maxBacklog: number;
  private readonly partialTimeoutMs: number;
  private readonly budget: ByteBudget | undefined;
  private readonly onLimit: (kind: LimitKind, detail: string) => void;
  private readonly log: Logger;
  private readonly handlerErrorLog: OncePerKindLog;
  private readonly malformedLog: RateLimitedLog;
  private readonly limitLog: RateLimitedLog;
  /** This connection's share of the budget. */
  private held = 0;
  private partialTimer: NodeJS.Timeout | undefined;
  private partialSince = 0;
  /** Frames queued in this turn, written together once its microtasks ran (flush); null when none. */
  private batch: Buffer[] | null = null;
  private batchBytes = 0;
  private closing = false;
  private closed = false;
  private closeReason = 'connection closed';

  constructor(readonly socket: Socket, options: ConnectionOptions = {}, stats?: ConnectionStats, context: ConnectionContext = {}) {
    this.stats = stats ?? newConnectionStats();
    this.label = options.label ?? 'wsapi';
    this.log = options.logger ?? silentLogger;
    this.handlerErrorLog = new OncePerKindLog((m) => this.log.error(m));
    this.maxBacklog = options.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    this.peerMaxFramePayload = options.peerMaxFramePayload ?? DEFAULT_MAX_FRAME_PAYLOAD;
    this.partialTimeoutMs = options.partialMessageTimeoutMs ?? DEFAULT_PARTIAL_MESSAGE_TIMEOUT_MS;
    this.budget = context.receiveBudget;
    this.onLimit = context.onLimit ?? (() => {});
    this.malformedLog = new RateLimitedLog((m) => this.log.warn(`${this.label}: ${m}`));
    this.limitLog = new RateLimitedLog((m) => this.log.warn(`${this.label}: ${m}`));
    const frames: FrameHandler = {
      onMessage: (payload) => {
        // Once we hung up (bad v, bad V, backlog...), later messages of the same
        // chunk must not be acted upon: the reference stops reading at hang-up.
        if (this.closing) return;
        this.stats.messagesIn++;
        try {
          this.onMessage(payload);
        } catch (err) {
          // A throwing handler (ours or a user's event listener) must not take the process down.
          this.stats.handlerErrors++;
          // the stack of the first one of each kind: a bug hit by every message is one log record
          this.handlerErrorLog.log(errorKind(err), `${this.label}: message handler failed: ${(err as Error)?.stack ?? String(err)}`);
        }
      },
      onPing: () => {
        this.stats.pingsIn++;
        this.send(PONG_EMPTY);
      },
      onPong: () => {},
      onClose: (code, reason) => {
        this.hangUp(`peer sent close${code !== undefined ? ` ${code}` : ''}${reason ? ` (${reason})` : ''}`);
      },
      onProtocolError: (code, reason) => {
        this.stats.protocolErrors++;
        this.log.warn(`${this.label}: protocol error (close ${code}): ${reason}`);
        if (code === CloseCode.MESSAGE_TOO_LARGE) this.onLimit('frame_in', reason);
        this.closeWith(code, `protocol error: ${reason}`);
      },
    };
    this.receiver = new FrameReceiver(frames, {
      maxFramePayload: options.maxFramePayload ?? DEFAULT_MAX_FRAME_PAYLOAD,
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      maxFragments: options.maxFragments ?? DEFAULT_MAX_FRAGMENTS,
      reusedChunks: context.reads !== undefined,
    });
    socket.setNoDelay?.(true);
    const onChunk = (chunk: Buffer): void => {
      this.stats.bytesIn += chunk.length;
      // Once closing, nothing more is parsed or held (the reference stops reading at hang-up).
      if (this.closing) return;
      const completedBefore = this.receiver.messagesCompleted;
      this.receiver.push(chunk);
      if (this.closing) return;
      this.afterPush(completedBefore);
    };
    if (context.reads !== undefined) context.reads.deliverTo(onChunk);
    else socket.on('data', onChunk);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.closing) this.closeReason = `socket error: ${err.code ?? err.message}`;
    });
    socket.on('end', () => {
      if (!this.closing) this.closeReason = 'peer hung up';
    });
    socket.on('close', () => {
      this.closed = true;
      this.closing = true;
      this.releaseHeld();
      this.onClose(this.closeReason);
    });
  }

  /** Accounts what the receiver holds now, and watches how long a half message stays. */
  private afterPush(completedBefore: number): void {
    const held = this.receiver.heldBytes;
    if (this.budget !== undefined && held !== this.held) {
      if (!this.budget.resize(this.held, held)) {
        this.stats.bufferDisconnects++;
        this.limit('buffered_bytes', `unfinished messages of all connections would hold ${this.budget.used - this.held + held} bytes > limit ${this.budget.limit} (this one ${held})`);
        this.closeWith(CloseCode.MESSAGE_TOO_LARGE, `receive budget exhausted (${held} bytes held here)`);
        return;
      }
      this.held = held;
    }
    if (this.partialTimeoutMs <= 0) return;
    if (!this.receiver.holdsPartial) {
      this.clearPartialTimer();
    } else if (this.partialTimer === undefined || this.receiver.messagesCompleted !== completedBefore) {
      // A message completed: the half one held now is a new one, its clock starts now.
      this.clearPartialTimer();
      this.partialSince = Date.now();
      this.partialTimer = setTimeout(this.partialExpired, this.partialTimeoutMs);
      this.partialTimer.unref?.();
    }
  }

  private readonly partialExpired = (): void => {
    this.partialTimer = undefined;
    if (this.closing || !this.receiver.holdsPartial) return;
    this.stats.partialTimeouts++;
    const age = Date.now() - this.partialSince;
    this.limit('partial_timeout', `half a message (${this.receiver.heldBytes} bytes) held for ${age} ms > limit ${this.partialTimeoutMs} ms`);
    this.closeWith(CloseCode.POLICY_VIOLATION, `half a message held for ${age} ms`);
  };

  private clearPartialTimer(): void {
    if (this.partialTimer !== undefined) clearTimeout(this.partialTimer);
    this.partialTimer = undefined;
  }

  private releaseHeld(): void {
    this.clearPartialTimer();
    if (this.budget !== undefined && this.held > 0) this.budget.resize(this.held, 0);
    this.held = 0;
  }

  /** Logs (rate-limited) and reports a bound that refused something; the caller counts it. */
  limit(kind: LimitKind, detail: string): void {
    this.limitLog.log(`limit ${kind}: ${detail}`);
    this.onLimit(kind, detail);
  }

  /** True when a frame with this payload length can be sent: the peer accepts it. */
  fits(payloadLength: number): boolean {
    return payloadLength <= this.peerMaxFramePayload;
  }

  /**
   * Counts and reports an outbound message refused for its size. `what`
   * names it (e.g. `reply to call 7`).
   */
  refuseTooLarge(what: string, payloadLength: number): void {
    this.stats.tooLargeRefused++;
    this.limit('peer_frame', `${what}: ${payloadLength} bytes > the peer's frame limit of ${this.peerMaxFramePayload} bytes, not sent`);
  }

  get isOpen(): boolean {
    return !this.closing && !this.closed;
  }

  /** Queues one complete frame. Returns false when the connection is closing. */
  send(frame: Buffer): boolean {
    if (this.closing) return false;
    // Last line of defence: callers check fits() first and send something else.
    const payloadLength = framePayloadLength(frame);
    if (!this.fits(payloadLength)) {
      this.refuseTooLarge(`message '${String.fromCharCode(frame[frame.length - payloadLength] ?? 0x3f)}'`, payloadLength);
      return false;
    }
    if (this.batch === null) {
      // Bytes still queued from earlier ticks say the peer is not reading: a large batch made
      // in this tick (many pipelined replies) is not held against a peer that keeps up.
      const carried = this.socket.writableLength;
      if (carried > this.maxBacklog) {
        this.stats.backlogDisconnects++;
        this.onLimit('backlog', `${carried} bytes unread > limit ${this.maxBacklog}`);
        this.hangUp(`peer not reading: ${carried} bytes still queued from earlier writes > limit ${this.maxBacklog}`, 'warn');
        return false;
      }
      this.batch = [frame];
      this.batchBytes = frame.length;
      void SETTLED.then(this.flush);
    } else {
      this.batch.push(frame);
      this.batchBytes += frame.length;
    }
    this.stats.messagesOut++;
    this.stats.bytesOut += frame.length;
    return true;
  }

  /**
   * Writes the frames queued in this tick. Small ones are joined into one
   * buffer and one stream write: for pipelined calls and replies (tens of
   * bytes each) that cost less than a corked write per frame, which the
   * stream queues one by one and hands to a writev (a WsapiClient against
   * the native binder after 30,000 calls of warm-up, 3 alternating pairs:
   * 6.8 against 7.2 us of CPU per call with 10 in flight, 27.8 against 28.7
   * sequential). Large batches are corked, not copied.
   */
  private readonly flush = (): void => {
    const batch = this.batch;
    if (batch === null) return;
    this.batch = null;
    if (batch.length === 1) {
      this.socket.write(batch[0]!);
    } else if (this.batchBytes <= JOIN_MAX_BYTES) {
      this.socket.write(Buffer.concat(batch, this.batchBytes));
    } else {
      this.socket.cork();
      for (const frame of batch) this.socket.write(frame);
      this.socket.uncork();
    }
  };

  /** Closes the socket without a close frame, as the reference does on hang-up. */
  hangUp(reason: string, level: 'debug' | 'info' | 'warn' = 'debug'): void {
    if (this.closing) return;
    this.closing = true;
    this.closeReason = reason;
    this.releaseHeld();
    this.log[level](`${this.label}: hanging up: ${reason}`);
    // Hand what this tick already wrote to the kernel first: the native peer,
    // writing blocking, has always sent it before it hangs up.
    this.flush();
    this.socket.destroy();
  }

  /** Sends close `code` and hangs up once it is flushed. */
  closeWith(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.closeReason = reason;
    this.releaseHeld();
    this.flush();
    this.socket.end(closeFrame(code), () => this.socket.destroy());
    // A peer that never reads must not keep the socket alive.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Counts and logs (rate-limited) a message that could not be decoded or used. */
  malformed(reason: string): void {
    this.stats.malformed++;
    this.malformedLog.log(`ignored malformed message: ${reason}`);
  }
}

export { CloseCode };
