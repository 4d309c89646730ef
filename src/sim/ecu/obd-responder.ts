/**
 * OBD-II (SAE J1979 over ISO 15765-4, 11-bit ids) as one engine ECU answers
 * it: requests arrive on the functional id 0x7DF (any ECU) or the physical
 * id 0x7E0 (this ECU), answers leave on 0x7E8. Only single frames are
 * needed: byte 0 is the ISO-TP length, then service, PID, data.
 *
 * Mode 01 (current data) PIDs: 0x00 (supported PIDs 01-20), 0x05 (coolant
 * temperature), 0x0C (engine speed), 0x0D (vehicle speed). An unsupported
 * PID gets no answer, as on a real bus (another ECU may support it). Another
 * service gets the negative response 7F <sid> 11 (serviceNotSupported) on a
 * physical request only: ISO 14229 keeps ECUs silent about it on functional
 * requests.
 */
import type { CanFrame, CanFrameInput } from '../../serial/slcan-codec.js';
import { coolantCelsius, engineRpm, speedKmh } from './vehicle-model.js';

export const OBD_FUNCTIONAL_ID = 0x7df;
export const OBD_PHYSICAL_ID = 0x7e0;
export const OBD_RESPONSE_ID = 0x7e8;

/** ISO 15765-4 pads single frames to 8 bytes; 0x55 is a common filler. */
const PAD = 0x55;

/** PIDs 0x01..0x20 supported, bit (32 - pid) of the 32-bit answer to PID 0x00. */
const SUPPORTED_01_20 = [0x05, 0x0c, 0x0d].reduce((mask, pid) => (mask | (1 << (32 - pid))) >>> 0, 0);

export function isObdRequest(frame: CanFrame): boolean {
  return !frame.extended && !frame.rtr && (frame.id === OBD_FUNCTIONAL_ID || frame.id === OBD_PHYSICAL_ID);
}

/** The answer to an OBD-II request frame at time `tMs`, or undefined when this ECU stays silent. */
export function answerObdRequest(frame: CanFrame, tMs: number): CanFrameInput | undefined {
  if (!isObdRequest(frame)) return undefined;
  const d = frame.data;
  const len = d[0];
  // A single frame has its length (1..7) in the low nibble and 0 in the high one.
  if (len === undefined || len < 1 || len > 7 || d.length < 1 + len) return undefined;
  const service = d[1]!;
  if (service !== 0x01) {
    return frame.id === OBD_PHYSICAL_ID ? reply([0x7f, service, 0x11]) : undefined;
  }
  if (len < 2) return undefined;
  const pid = d[2]!;
  switch (pid) {
    case 0x00:
      return reply([0x41, 0x00, SUPPORTED_01_20 >>> 24, (SUPPORTED_01_20 >>> 16) & 0xff, (SUPPORTED_01_20 >>> 8) & 0xff, SUPPORTED_01_20 & 0xff]);
    case 0x05: // A - 40 °C
      return reply([0x41, 0x05, clampByte(Math.round(coolantCelsius(tMs)) + 40)]);
    case 0x0c: { // (256 A + B) / 4 rpm
      const raw = Math.min(0xffff, Math.round(engineRpm(tMs) * 4));
      return reply([0x41, 0x0c, raw >> 8, raw & 0xff]);
    }
    case 0x0d: // A km/h
      return reply([0x41, 0x0d, clampByte(Math.round(speedKmh(tMs)))]);
    default:
      return undefined;
  }
}

function clampByte(v: number): number {
  return Math.max(0, Math.min(255, v));
}

function reply(payload: number[]): CanFrameInput {
  const data = Buffer.alloc(8, PAD);
  data[0] = payload.length;
  Buffer.from(payload).copy(data, 1);
  return { id: OBD_RESPONSE_ID, data };
}
