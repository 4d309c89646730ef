/**
 * One wsapi stream: frames in and out of a connected socket.
 *
 * - Always reading: the socket is never paused, because a native binder
 *   writes blocking and stalls entirely when its peer stops reading.
 * - Outbound frames written in one tick are corked together (one writev).
 * - Outbound backlog is bounded: a peer that lets more than `maxBacklog`
 *   bytes pile up is disconnected with a logged reason instead of letting
 *   memory grow without bound.
 * - Ping → empty pong; close received → hang up without echo; protocol
 *   errors → close frame with the RFC 6455 code, then hang up.
 */
import type { Socket } from 'node:net';
import { CloseCode, DEFAULT_MAX_BACKLOG, DEFAULT_MAX_FRAME_PAYLOAD } from './constants.js';
import { FrameReceiver, PONG_EMPTY, closeFrame, type FrameHandler } from './frame-receiver.js';
import { RateLimitedLog, silentLogger, type Logger } from '../util/log.js';

export interface ConnectionOptions {
  /** Largest payload of one received frame (default 1,048,500, as the reference). */
  maxFramePayload?: number;
  /** Largest reassembled fragmented message (default 64 MiB). */
  maxMessageSize?: number;
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
}

export function newConnectionStats(): ConnectionStats {
  return { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, malformed: 0, pingsIn: 0, backlogDisconnects: 0, protocolErrors: 0, handlerErrors: 0 };
}

export class WsapiConnection {
  /** Called with each complete binary message. */
  onMessage: (payload: Buffer) => void = () => {};
  /** Called once, when the socket is gone, with why. */
  onClose: (reason: string) => void = () => {};

  readonly stats: ConnectionStats;
  readonly label: string;
  private readonly receiver: FrameReceiver;
  private readonly maxBacklog: number;
  private readonly log: Logger;
  private readonly malformedLog: RateLimitedLog;
  private corked = false;
  /** Bytes written since the current cork (this tick). */
  private batchBytes = 0;
  private closing = false;
  private closed = false;
  private closeReason = 'connection closed';

  constructor(readonly socket: Socket, options: ConnectionOptions = {}, stats?: ConnectionStats) {
    this.stats = stats ?? newConnectionStats();
    this.label = options.label ?? 'wsapi';
    this.log = options.logger ?? silentLogger;
    this.maxBacklog = options.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    this.malformedLog = new RateLimitedLog((m) => this.log.warn(`${this.label}: ${m}`));
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
          this.log.error(`${this.label}: message handler failed: ${(err as Error)?.stack ?? String(err)}`);
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
        this.closeWith(code, `protocol error: ${reason}`);
      },
    };
    this.receiver = new FrameReceiver(frames, {
      maxFramePayload: options.maxFramePayload ?? DEFAULT_MAX_FRAME_PAYLOAD,
      maxMessageSize: options.maxMessageSize,
    });
    socket.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => {
      this.stats.bytesIn += chunk.length;
      this.receiver.push(chunk);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.closing) this.closeReason = `socket error: ${err.code ?? err.message}`;
    });
    socket.on('end', () => {
      if (!this.closing) this.closeReason = 'peer hung up';
    });
    socket.on('close', () => {
      this.closed = true;
      this.closing = true;
      this.onClose(this.closeReason);
    });
  }

  get isOpen(): boolean {
    return !this.closing && !this.closed;
  }

  /** Queues one complete frame. Returns false when the connection is closing. */
  send(frame: Buffer): boolean {
    if (this.closing) return false;
    if (!this.corked) {
      this.corked = true;
      this.batchBytes = 0;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    // Only bytes left over from earlier ticks say the peer is not reading: a
    // large batch produced in this tick (many pipelined replies) is not held
    // against a peer that keeps up.
    const carried = this.socket.writableLength - this.batchBytes;
    if (carried > this.maxBacklog) {
      this.stats.backlogDisconnects++;
      this.hangUp(`peer not reading: ${carried} bytes still queued from earlier writes > limit ${this.maxBacklog}`, 'warn');
      return false;
    }
    this.socket.write(frame);
    this.batchBytes += frame.length;
    this.stats.messagesOut++;
    this.stats.bytesOut += frame.length;
    return true;
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /** Closes the socket without a close frame, as the reference does on hang-up. */
  hangUp(reason: string, level: 'debug' | 'info' | 'warn' = 'debug'): void {
    if (this.closing) return;
    this.closing = true;
    this.closeReason = reason;
    this.log[level](`${this.label}: hanging up: ${reason}`);
    // Hand what this tick already wrote to the kernel first: the native peer,
    // writing blocking, has always sent it before it hangs up.
    if (this.corked) this.uncork();
    this.socket.destroy();
  }

  /** Sends close `code` and hangs up once it is flushed. */
  closeWith(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.closeReason = reason;
    if (this.corked) this.uncork();
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
