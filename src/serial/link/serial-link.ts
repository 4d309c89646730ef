/**
 * One serial link to an ECU: owns the port (serialport), keeps it open —
 * a device that is missing or unplugged is retried with capped backoff, so
 * a replugged USB adapter comes back by itself and an absent one costs one
 * open() per backoff step, never a busy loop — and hands bytes to its
 * protocol. Reading never pauses (data events, flowing mode); writes of one
 * event-loop turn go out as one write, and bytes waiting for the device are
 * bounded (a send past the bound is refused as busy and counted).
 *
 * States: closed → opening → initializing (protocol handshake) → open;
 * a failure or a loss at any step → waiting (backoff) → opening ...;
 * stop() → stopped from anywhere.
 *
 * Events: 'event' (name, data) from the ECU; 'state' (state, reason).
 */
import { EventEmitter } from 'node:events';
import type { BindingInterface } from '@serialport/bindings-cpp';
import { SerialPortStream } from '@serialport/stream';
import type { SerialLinkConfig } from '../../config/types.js';
import type { AgentMetrics } from '../../health/metrics.js';
import { Backoff } from '../../util/backoff.js';
import { RateLimitedLog, type Logger } from '../../util/log.js';
import { JsonProtocol } from './json-protocol.js';
import { LinkError, type LinkIO, type LinkProtocol, type RoutedSend } from './link-protocol.js';
import { RawCobsProtocol } from './raw-protocol.js';
import { SlcanProtocol } from './slcan-protocol.js';

export type LinkState = 'closed' | 'opening' | 'initializing' | 'open' | 'waiting' | 'stopped';

export interface SerialLinkDeps {
  logger: Logger;
  metrics: AgentMetrics;
  /** The serialport binding; tests and the demo pass @serialport/binding-mock. */
  binding: BindingInterface;
}

export interface LinkInfo {
  name: string;
  device: string;
  protocol: string;
  state: LinkState;
  /** Why the link is not open (last failure), '' when open. */
  reason: string;
  since: number;
  opens: number;
  stats: Record<string, unknown>;
}

export function createProtocol(config: SerialLinkConfig, io: LinkIO): LinkProtocol {
  if (config.protocol === 'slcan') return new SlcanProtocol(config, io);
  if (config.protocol === 'cobs' && config.cobs.payload === 'raw') return new RawCobsProtocol(config, io);
  return new JsonProtocol(config, io);
}

export class SerialLink extends EventEmitter {
  readonly name: string;
  private readonly protocol: LinkProtocol;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly rejectLog: RateLimitedLog;
  private port: SerialPortStream | undefined;
  private stateValue: LinkState = 'closed';
  private reason = 'not started';
  private since = Date.now();
  private lastFailure = '';
  private opens = 0;
  private timer: NodeJS.Timeout | undefined;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private readonly frames: { inc(): void };
  private readonly writes: Record<'ok' | 'busy' | 'down' | 'invalid', { inc(n?: number): void }>;

  constructor(readonly config: SerialLinkConfig, private readonly deps: SerialLinkDeps) {
    super();
    this.name = config.name;
    this.log = deps.logger;
    this.backoff = new Backoff(config.reopen.initial_delay_ms, config.reopen.max_delay_ms);
    this.rejectLog = new RateLimitedLog((m) => this.log.warn(m));
    const m = deps.metrics;
    this.frames = m.serialFrames.labels(this.name);
    this.writes = { ok: m.serialWrites.labels(this.name, 'ok'), busy: m.serialWrites.labels(this.name, 'busy'), down: m.serialWrites.labels(this.name, 'down'), invalid: m.serialWrites.labels(this.name, 'invalid') };
    m.serialUp.set({ link: this.name }, 0);
    this.protocol = createProtocol(config, {
      write: (bytes) => this.write(bytes),
      event: (name, data) => {
        this.frames.inc();
        this.emit('event', name, data);
      },
      rejected: (reason, detail) => {
        m.serialRejected.inc({ link: this.name, reason });
        this.rejectLog.log(`link ${this.name}: dropped input from ${config.device}: ${reason}${detail ? ` (${detail})` : ''}`);
      },
      reopen: (reason) => {
        const port = this.port;
        if (port !== undefined && (this.stateValue === 'open' || this.stateValue === 'initializing')) this.lost(port, reason);
      },
    });
  }

  get state(): LinkState {
    return this.stateValue;
  }

  /** Whether any verb may be relayed to the device as a named request (JSON links). */
  get namedVerbs(): boolean {
    return this.protocol.namedVerbs;
  }

  get isOpen(): boolean {
    return this.stateValue === 'open';
  }

  start(): void {
    if (this.stateValue !== 'closed') return;
    this.open();
  }

  /** Closes the port; pending requests fail with 'disconnected'. */
  async stop(): Promise<void> {
    if (this.stateValue === 'stopped') return;
    clearTimeout(this.timer);
    this.setState('stopped', 'stopped');
    this.protocol.reset('link stopped');
    await this.closePort();
  }

  /** A frame/message from a command or the exported API (see the protocol for the shape). */
  send(args: unknown): void {
    this.requireOpen();
    this.writeEncoded(() => this.protocol.encodeSend(args));
  }

  /** An event a route forwards to this link. */
  sendRouted(send: RoutedSend): void {
    this.requireOpen();
    this.writeEncoded(() => this.protocol.encodeRouted(send));
  }

  async request(args: unknown, timeoutMs = this.config.request_timeout_ms): Promise<unknown> {
    const outcome = (o: string) => this.deps.metrics.serialRequests.inc({ link: this.name, outcome: o });
    try {
      this.requireOpen();
      const value = await this.protocol.request(args, timeoutMs);
      outcome('ok');
      return value;
    } catch (err) {
      outcome(err instanceof LinkError ? err.code : 'error');
      throw err;
    }
  }

  info(): LinkInfo {
    return {
      name: this.name,
      device: this.config.device,
      protocol: this.config.protocol,
      state: this.stateValue,
      reason: this.stateValue === 'open' ? '' : this.reason,
      since: this.since,
      opens: this.opens,
      stats: this.protocol.stats(),
    };
  }

  private requireOpen(): void {
    if (this.stateValue !== 'open') {
      this.writes.down.inc();
      throw new LinkError('disconnected', `link ${this.name} is ${this.stateValue}${this.reason ? ` (${this.reason})` : ''}`);
    }
  }

  private writeEncoded(encode: () => Buffer): void {
    let bytes: Buffer;
    try {
      bytes = encode();
    } catch (err) {
      this.writes.invalid.inc();
      throw err instanceof LinkError ? err : new LinkError('invalid-request', (err as Error).message);
    }
    this.write(bytes);
    this.protocol.sent?.(bytes);
  }

  /** Queues bytes for the device; the writes of one turn go out together. */
  private write(bytes: Buffer): void {
    const port = this.port;
    if (port === undefined || (this.stateValue !== 'open' && this.stateValue !== 'initializing')) {
      this.writes.down.inc();
      throw new LinkError('disconnected', `link ${this.name} is ${this.stateValue}`);
    }
    if (port.writableLength + this.batchBytes + bytes.length > this.config.write_queue_bytes) {
      this.writes.busy.inc();
      throw new LinkError('busy', `link ${this.name}: ${port.writableLength + this.batchBytes} bytes already wait for ${this.config.device} (write_queue_bytes ${this.config.write_queue_bytes})`);
    }
    // The first bytes of a turn schedule its one write (a flush after a failure finds nothing).
    if (this.batch.length === 0) setImmediate(() => this.flush());
    this.batch.push(bytes);
    this.batchBytes += bytes.length;
    this.writes.ok.inc();
  }

  private flush(): void {
    const port = this.port;
    const chunk = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchBytes);
    this.batch = [];
    this.batchBytes = 0;
    if (port === undefined || chunk.length === 0) return;
    // A failed write makes the stream report a disconnect ('close'): handled there.
    port.write(chunk, (err) => { if (err) this.log.debug(`link ${this.name}: write failed: ${err.message}`); });
  }

  private open(): void {
    this.setState('opening', this.reason);
    const c = this.config;
    const port = new SerialPortStream({
      binding: this.deps.binding,
      path: c.device,
      baudRate: c.baud_rate,
      dataBits: c.data_bits,
      parity: c.parity,
      stopBits: c.stop_bits,
      rtscts: c.rtscts,
      autoOpen: false,
    });
    this.port = port;
    port.on('error', (err: Error) => this.log.debug(`link ${this.name}: port error: ${err.message}`));
    port.open((err) => {
      if (this.stateValue === 'stopped' || this.port !== port) {
        if (!err) port.close(() => undefined);
        return;
      }
      if (err) return this.failed(`cannot open ${c.device}: ${err.message}`);
      // Whatever the device sent before the port was ours (a half line, bytes the tty
      // echoed while it was still in cooked mode) is discarded, not decoded.
      port.flush(() => this.attach(port));
    });
  }

  private attach(port: SerialPortStream): void {
    const c = this.config;
    if (this.stateValue === 'stopped' || this.port !== port) return;
    this.protocol.reset('port reopened');
    port.on('data', (chunk: Buffer) => this.protocol.push(chunk));
    port.on('close', (e: Error | null) => this.lost(port, e ? `device lost: ${e.message}` : 'device closed (unplugged?)'));
    port.on('end', () => this.lost(port, 'device closed: end of file (unplugged?)'));
    // The last failure stays the reason until the link is open: an operator asking for
    // info() while a retry is initialising sees why the previous attempt failed.
    this.setState('initializing', this.reason);
    this.protocol.handshake(c.request_timeout_ms).then(
      () => {
        if (this.port !== port || this.stateValue !== 'initializing') return;
        this.opens++;
        this.backoff.reset();
        this.lastFailure = '';
        this.deps.metrics.serialUp.set({ link: this.name }, 1);
        const about = this.protocol.describe?.() ?? '';
        this.log.info(`link ${this.name}: ${c.protocol} on ${c.device} open${about ? `: ${about}` : ''}`);
        this.setState('open', '');
      },
      (e: Error) => {
        if (this.port !== port || this.stateValue !== 'initializing') return;
        void this.closePort();
        this.failed(`${c.device}: initialisation failed: ${e.message}`);
      },
    );
  }

  private lost(port: SerialPortStream, reason: string): void {
    if (this.port !== port || this.stateValue === 'stopped' || this.stateValue === 'waiting') return;
    this.port = undefined;
    port.removeAllListeners('data');
    // The stream may end without closing its binding: release the descriptor, or every unplug leaks one.
    if (port.isOpen) port.close(() => port.destroy());
    else port.destroy();
    this.failed(`${this.config.device}: ${reason}`);
  }

  /** Logs a failure once per distinct reason (then at debug), and schedules a reopen. */
  private failed(reason: string): void {
    const wasOpen = this.stateValue === 'open';
    this.deps.metrics.serialUp.set({ link: this.name }, 0);
    this.protocol.reset(reason);
    this.batch = [];
    this.batchBytes = 0;
    if (reason !== this.lastFailure || wasOpen) this.log.warn(`link ${this.name}: ${reason}; retrying`);
    else this.log.debug(`link ${this.name}: ${reason}; retrying`);
    this.lastFailure = reason;
    this.setState('waiting', reason);
    const delay = this.backoff.next();
    this.deps.metrics.reconnects.inc({ kind: 'serial', name: this.name });
    this.timer = setTimeout(() => {
      if (this.stateValue === 'waiting') this.open();
    }, delay);
  }

  private async closePort(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    if (port === undefined) return;
    port.removeAllListeners('data');
    if (!port.isOpen) return;
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private setState(state: LinkState, reason: string): void {
    const changed = state !== this.stateValue;
    this.stateValue = state;
    this.reason = reason;
    if (changed) {
      this.since = Date.now();
      this.emit('state', state, reason);
    }
  }
}
