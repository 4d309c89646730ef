/**
 * A simulated ECU on a byte stream: the other end of an afb-edge serial link
 * (docs/ecu-protocols.md), for tests and demos without hardware.
 *
 * `EcuSimulator` takes a stream that is already open — a SerialPortStream
 * on a pty or a real UART, one on @serialport/binding-mock, any Duplex — and
 * does not own it: the caller opens it, handles its 'error' and 'close', and
 * closes it after stop(). `afb-edge ecu-sim` (src/cli/commands/ecu-sim.ts)
 * is the command-line wrapper.
 *
 * The protocol-specific half is a personality (src/sim/ecu/): SlcanAdapter,
 * JsonEcu (cobs json, ndjson) or RawEcu (cobs raw). This file owns what they
 * share: periodic output paced in batches (one write per timer tick, see
 * ecu/pacer.ts), --count, --noise, and back-pressure — when the port stops
 * draining (nobody reads the other end) periodic output pauses instead of
 * queueing without bound, so counters are late but never skipped; once it
 * drains the schedule is caught up (at most 1 s of it), keeping the average.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { CrcKind } from '../serial/cobs-codec.js';
import { silentLogger, type Logger } from '../util/log.js';
import { NoiseRandom } from './ecu/garbage.js';
import { JsonEcu } from './ecu/json-ecu.js';
import { CobsJsonFraming, CobsRawFraming, NdjsonFraming } from './ecu/message-framing.js';
import { Pacer } from './ecu/pacer.js';
import { lastSlotForCount, slotContent } from './ecu/periodic-slots.js';
import type { EcuPersonality, PersonalityHooks } from './ecu/personality.js';
import { RawEcu } from './ecu/raw-ecu.js';
import { SlcanAdapter } from './ecu/slcan-adapter.js';
import { SIM_ADAPTERS, type SimAdapter } from './ecu/slcan-firmwares.js';

export { ECU_SIM_IDS, ECU_SIM_SIGNAL_MAP } from './ecu/can-messages.js';
export { INITIAL_STORE } from './ecu/json-requests.js';
export { RAW_PAYLOAD_TYPE } from './ecu/raw-ecu.js';
export { CANABLE_VERSION_LINE, SIM_ADAPTERS, type SimAdapter } from './ecu/slcan-firmwares.js';
export { slotContent, lastSlotForCount } from './ecu/periodic-slots.js';

export const ECU_PROTOCOLS = ['slcan', 'cobs', 'ndjson'] as const;
export type EcuProtocol = (typeof ECU_PROTOCOLS)[number];

export interface EcuSimOptions {
  protocol: EcuProtocol;
  /** slcan only: the firmware whose command behaviour is simulated (default lawicel). */
  adapter?: SimAdapter;
  /** Periodic frames per second, all kinds together (default 10; 0 = none; fractions allowed). */
  rate?: number;
  /** Counter messages to send before periodic output stops (0 or absent = forever); see ecu/periodic-slots.ts. */
  count?: number;
  /** cobs only (default crc16). */
  crc?: CrcKind;
  /** cobs only (default json). */
  payload?: 'json' | 'raw';
  /** A burst of garbage after every N periodic frames (0 or absent = none). */
  noise?: number;
  /** Seed of the garbage generator (fixed by default: runs are reproducible). */
  noiseSeed?: number;
  /** Each message received from the host: a CAN frame, a JSON message, or {data: hex} for raw payloads. */
  onReceive?: (message: unknown) => void;
  logger?: Logger;
}

export interface EcuSimStats {
  /** Periodic frames written, counters and signals together. */
  periodicSent: number;
  countersSent: number;
  noiseBursts: number;
  /** Messages received from the host and reported. */
  received: number;
  bytesWritten: number;
  /** Times periodic output paused because the port did not drain. */
  backpressurePauses: number;
  /** Host input rejected by the decoder, by reason. */
  rejected: Record<string, number>;
}

/**
 * Events: 'done' once --count counters have been sent (the simulator keeps
 * answering requests until stop()).
 */
export class EcuSimulator extends EventEmitter {
  readonly options: Readonly<Required<Omit<EcuSimOptions, 'onReceive' | 'logger'>>>;
  private readonly personality: EcuPersonality;
  private readonly pacer: Pacer | undefined;
  private readonly logger: Logger;
  private readonly rng: NoiseRandom;
  private readonly lastSlot: number;
  private readonly counters = { periodicSent: 0, countersSent: 0, noiseBursts: 0, received: 0, bytesWritten: 0, backpressurePauses: 0 };
  private startedAt = performance.now();
  private nextSlot = 0;
  private running = false;
  private wantEmit = false;
  private waitingDrain = false;
  private finished = false;
  /** Output collected while handling one chunk or one tick, written as one batch. */
  private readonly pending: Buffer[] = [];

  constructor(private readonly port: Duplex, options: EcuSimOptions) {
    super();
    this.options = {
      protocol: options.protocol,
      adapter: options.adapter ?? 'lawicel',
      rate: options.rate ?? 10,
      count: options.count ?? 0,
      crc: options.crc ?? 'crc16',
      payload: options.payload ?? 'json',
      noise: options.noise ?? 0,
      noiseSeed: options.noiseSeed ?? 0x2545f491,
    };
    const o = this.options;
    if (!ECU_PROTOCOLS.includes(o.protocol)) throw new RangeError(`EcuSimulator: protocol must be one of ${ECU_PROTOCOLS.join(', ')}, got ${JSON.stringify(o.protocol)}`);
    if (!(o.rate >= 0) || !Number.isFinite(o.rate)) throw new RangeError(`EcuSimulator: rate must be a finite number ≥ 0, got ${o.rate}`);
    if (!Number.isInteger(o.count) || o.count < 0) throw new RangeError(`EcuSimulator: count must be an integer ≥ 0, got ${o.count}`);
    if (!Number.isInteger(o.noise) || o.noise < 0) throw new RangeError(`EcuSimulator: noise must be an integer ≥ 0, got ${o.noise}`);
    if (o.crc !== 'crc16' && o.crc !== 'crc32') throw new RangeError(`EcuSimulator: crc must be crc16 or crc32, got ${JSON.stringify(o.crc)}`);
    if (!SIM_ADAPTERS.includes(o.adapter)) throw new RangeError(`EcuSimulator: adapter must be one of ${SIM_ADAPTERS.join(', ')}, got ${JSON.stringify(o.adapter)}`);
    if (o.payload !== 'json' && o.payload !== 'raw') throw new RangeError(`EcuSimulator: payload must be json or raw, got ${JSON.stringify(o.payload)}`);
    this.logger = options.logger ?? silentLogger;
    this.rng = new NoiseRandom(o.noiseSeed);
    this.lastSlot = o.count > 0 ? lastSlotForCount(o.count) : Infinity;
    const onReceive = options.onReceive;
    const hooks: PersonalityHooks = {
      received: (message) => {
        this.counters.received++;
        onReceive?.(message);
      },
      setEmitting: (on) => {
        this.wantEmit = on;
        this.updatePacer();
      },
      elapsedMs: () => performance.now() - this.startedAt,
      logger: this.logger,
    };
    this.personality = o.protocol === 'slcan' ? new SlcanAdapter(hooks, o.adapter)
      : o.protocol === 'ndjson' ? new JsonEcu(new NdjsonFraming(), hooks)
      : o.payload === 'raw' ? new RawEcu(new CobsRawFraming(o.crc), hooks)
      : new JsonEcu(new CobsJsonFraming(o.crc), hooks);
    this.pacer = o.rate > 0 ? new Pacer(o.rate, (n) => this.emitSlots(n)) : undefined;
  }

  get stats(): EcuSimStats {
    return { ...this.counters, rejected: { ...this.personality.rejected } };
  }

  /** True once --count counters were sent. */
  get done(): boolean {
    return this.finished;
  }

  /** Starts listening to the port and, unless the protocol waits for the host (slcan), periodic output. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.startedAt = performance.now();
    this.port.on('data', this.onData);
    this.port.on('drain', this.onDrain);
    this.wantEmit = this.personality.emitsAtStart;
    this.updatePacer();
  }

  /** Stops periodic output and stops listening; the port stays open (its owner closes it). */
  stop(): void {
    this.running = false;
    this.pacer?.stop();
    this.port.off('data', this.onData);
    this.port.off('drain', this.onDrain);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.personality.receive(chunk, this.pending);
    this.flush();
  };

  private readonly onDrain = (): void => {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    this.logger.debug('ecu-sim: port drained, periodic output resumes');
    // The same schedule, caught up: a reader's short hiccup must not lower the average rate.
    this.updatePacer('resume');
  };

  /** Runs or stops the pacer per the state; 'start' begins a new schedule (channel opened), 'resume' continues it. */
  private updatePacer(how: 'start' | 'resume' = 'start'): void {
    if (this.pacer === undefined) return;
    if (!(this.running && this.wantEmit && !this.waitingDrain && !this.finished)) return this.pacer.stop();
    if (how === 'resume') this.pacer.resume();
    else this.pacer.start();
  }

  private emitSlots(n: number): void {
    const noise = this.options.noise;
    for (let i = 0; i < n && !this.finished; i++) {
      const slot = this.nextSlot++;
      this.personality.periodic(slot, this.pending);
      this.counters.periodicSent++;
      if (slotContent(slot).kind === 'counter') this.counters.countersSent++;
      if (noise > 0 && this.counters.periodicSent % noise === 0) {
        this.pending.push(this.personality.garbage(this.rng));
        this.counters.noiseBursts++;
      }
      if (slot === this.lastSlot) this.finished = true;
    }
    this.flush();
    if (this.finished) {
      this.pacer?.stop();
      this.logger.info(`ecu-sim: --count reached: ${this.counters.countersSent} counters in ${this.counters.periodicSent} periodic frames; still answering requests`);
      this.emit('done');
    }
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    // Emptied in place: a personality may still be pushing replies to this same array (a chunk
    // holding "O\rV\r" starts the pacer, which flushes, in the middle of it).
    this.pending.length = 0;
    this.counters.bytesWritten += batch.length;
    const more = this.port.write(batch);
    if (!more && !this.waitingDrain) {
      this.waitingDrain = true;
      this.counters.backpressurePauses++;
      this.logger.debug('ecu-sim: port is not draining (is anyone reading the other end?), periodic output paused');
      this.updatePacer();
    }
  }
}
