/**
 * What the simulator core (ecu-sim.ts) needs from each protocol: the
 * protocol-specific half of the simulated ECU. The core owns the port, the
 * pacing, the batching of writes, --count and --noise; a personality turns
 * received bytes into replies and slots into frames.
 */
import type { Logger } from '../../util/log.js';
import type { NoiseRandom } from './garbage.js';

export interface PersonalityHooks {
  /** Reports one message received from the host (the CLI prints it as {"rx":…}). */
  received(message: unknown): void;
  /** Periodic output may run (true) or must pause (false): slcan only emits while the CAN channel is open. */
  setEmitting(on: boolean): void;
  /** Milliseconds since the simulator started (vehicle model time, slcan timestamps). */
  elapsedMs(): number;
  logger: Logger;
}

export interface EcuPersonality {
  /** Whether periodic output may start as soon as the simulator starts (slcan: not before O or L). */
  readonly emitsAtStart: boolean;
  /** Handles bytes from the host; pushes the replies onto `out` (written as one batch). */
  receive(chunk: Buffer, out: Buffer[]): void;
  /** Pushes the bytes of periodic slot `slot` onto `out` (see periodic-slots.ts). */
  periodic(slot: number, out: Buffer[]): void;
  /** One burst of garbage the host's decoder is certain to reject. */
  garbage(rng: NoiseRandom): Buffer;
  /** Host input the personality's decoder rejected, by reason. */
  readonly rejected: Readonly<Record<string, number>>;
}
