/**
 * The CAN messages the simulated ECU sends, as a signal map in the agent's
 * own format (src/serial/can-signals.ts) so a link configuration can decode
 * them with the same map, and frames are built by the same encoder.
 */
import { compileSignalMap, type SignalMap } from '../../serial/can-signals.js';
import type { CanFrame } from '../../serial/slcan-codec.js';
import { engineRpm, speedKmh } from './vehicle-model.js';

export const ECU_SIM_IDS = {
  vehicleSpeed: 0x100,
  /** J1939 EEC1 (PGN 61444) from source address 0x00, priority 3. */
  eec1: 0x0cf00400,
  sequence: 0x200,
} as const;

export const ECU_SIM_SIGNAL_MAP: SignalMap = {
  messages: [
    {
      id: ECU_SIM_IDS.vehicleSpeed, name: 'VehicleSpeed', signals: [
        { name: 'speed', start_bit: 0, length: 16, byte_order: 'little_endian', scale: 0.01, unit: 'km/h', min: 0, max: 655.35 },
      ],
    },
    {
      // J1939 frames always carry 8 bytes; the bytes this map leaves out are sent as 0.
      id: ECU_SIM_IDS.eec1, extended: true, name: 'EEC1', dlc: 8, signals: [
        { name: 'engine_speed', start_bit: 24, length: 16, byte_order: 'little_endian', scale: 0.125, unit: 'rpm', min: 0, max: 8031.875 },
      ],
    },
    {
      // The counter's bitwise complement in bytes 4-7 lets a receiver tell a corrupted frame from a lost one.
      id: ECU_SIM_IDS.sequence, name: 'Sequence', dlc: 8, signals: [
        { name: 'counter', start_bit: 0, length: 32, byte_order: 'little_endian' },
        { name: 'counter_complement', start_bit: 32, length: 32, byte_order: 'little_endian' },
      ],
    },
  ],
};

const map = compileSignalMap(ECU_SIM_SIGNAL_MAP);

export function sequenceFrame(n: number): CanFrame {
  const counter = n % 2 ** 32;
  return map.encode('Sequence', { counter, counter_complement: 2 ** 32 - 1 - counter });
}

export function vehicleSpeedFrame(tMs: number): CanFrame {
  return map.encode('VehicleSpeed', { speed: speedKmh(tMs) });
}

export function eec1Frame(tMs: number): CanFrame {
  return map.encode('EEC1', { engine_speed: engineRpm(tMs) });
}
