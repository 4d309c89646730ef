/**
 * The slcan dialects in use, each as its firmware behaves. "slcan" is one
 * name for several firmwares that agree on frame lines (t/T/r/R) but not on
 * the rest: whether commands are acknowledged (CR / BEL), which setup
 * commands exist, what S7 means. The agent must never wait for an answer a
 * dialect does not send, nor send a command it lacks.
 *
 * Sources (docs/ecu-protocols.md has the per-command table):
 * - lawicel: the LAWICEL CAN232/CANUSB command set (CR or BEL for every
 *   command, z/Z for a transmitted frame, Z, F, V, N).
 * - canable: normaldotcom canable-fw and canable2-fw, src/slcan.c and
 *   src/usbd_cdc_if.c: the CR/BEL answers are commented out in cdc_process(),
 *   no Z / F / N / L, listen-only is `M1`, S7 is 750 kbit/s, `V` answers
 *   "<git describe> <remote>\r", unknown commands are ignored.
 * - usbtin: USBtin firmware v1.7 (frontend.c / main.c): CR/BEL answers,
 *   z/Z for frames, Z at any time, F, V (hardware), v (firmware), N.
 * - no-ack: any other adapter that answers nothing: only the commands every
 *   slcan firmware has (C, Sn, O / L), written without waiting, as can-utils'
 *   slcand and python-can do.
 */
import { LinkError } from './link-protocol.js';

export const SLCAN_ADAPTERS = ['lawicel', 'canable', 'usbtin', 'no-ack'] as const;
export type SlcanAdapterName = (typeof SLCAN_ADAPTERS)[number];

export interface SlcanDialect {
  name: SlcanAdapterName;
  /** Who speaks it, for logs and errors. */
  label: string;
  /** Commands are answered CR (done) / BEL (refused), frames z/Z or BEL. */
  acks: boolean;
  /** Has `Z0`/`Z1` (receive timestamps). */
  timestamps: boolean;
  /** Has `F` (status flags): the link polls it. */
  statusFlags: boolean;
  /** The `Sn` command for each bit rate it has. */
  bitrates: ReadonlyMap<number, string>;
  /** Commands that open the channel, normal or listen-only (none: the dialect cannot listen only). */
  open(listenOnly: boolean): string[];
  /** RTR frames carry DLC data bytes on the wire (see SlcanDecoder.rtrCarriesData). */
  rtrCarriesData: boolean;
}

const sTable = (rates: number[]): ReadonlyMap<number, string> => new Map(rates.map((bps, n) => [bps, `S${n}`]));

/** S0..S8 as LAWICEL defines them (USBtin frontend.c: S7 = MCP2515_TIMINGS_800K). */
const LAWICEL_RATES = sTable([10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 800_000, 1_000_000]);
/** canable-fw inc/can.h enum can_bitrate: S7 = CAN_BITRATE_750K (canable2-fw adds S9 = 83.3k, canable-fw has none). */
const CANABLE_RATES = sTable([10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 750_000, 1_000_000]);
/** Without knowing the firmware, S7 is ambiguous (800k LAWICEL, 750k CANable): it is left out. */
const COMMON_RATES = new Map([...LAWICEL_RATES].filter(([bps]) => bps !== 800_000));

export const SLCAN_DIALECTS: Readonly<Record<SlcanAdapterName, SlcanDialect>> = {
  lawicel: {
    name: 'lawicel', label: 'LAWICEL CANUSB/CAN232', acks: true, timestamps: true, statusFlags: true,
    bitrates: LAWICEL_RATES, open: (listen) => [listen ? 'L' : 'O'], rtrCarriesData: false,
  },
  usbtin: {
    name: 'usbtin', label: 'USBtin', acks: true, timestamps: true, statusFlags: true,
    bitrates: LAWICEL_RATES, open: (listen) => [listen ? 'L' : 'O'], rtrCarriesData: false,
  },
  canable: {
    // M0 too: the mode outlives a close (can_set_silent only changes Init.Mode), so a previous M1 must be undone.
    name: 'canable', label: 'CANable stock slcan firmware', acks: false, timestamps: false, statusFlags: false,
    bitrates: CANABLE_RATES, open: (listen) => [listen ? 'M1' : 'M0', 'O'], rtrCarriesData: true,
  },
  'no-ack': {
    name: 'no-ack', label: 'slcan adapter without acknowledgements', acks: false, timestamps: false, statusFlags: false,
    bitrates: COMMON_RATES, open: (listen) => [listen ? 'L' : 'O'], rtrCarriesData: false,
  },
};

/** The `Sn` command of `bps` in `dialect`; a LinkError naming what the dialect has otherwise. */
export function bitrateCommand(dialect: SlcanDialect, bps: number): string {
  const s = dialect.bitrates.get(bps);
  if (s !== undefined) return s;
  const why = dialect.name === 'no-ack' && (bps === 800_000 || bps === 750_000)
    ? 'S7 is 800 kbit/s on LAWICEL and USBtin but 750 kbit/s on CANable: set slcan.adapter to the adapter you have'
    : `it has ${[...dialect.bitrates.keys()].map((b) => b / 1000).join(', ')} kbit/s`;
  return fail(`${dialect.label} (slcan.adapter ${dialect.name}) cannot run the bus at ${bps} bit/s: ${why}`);
}

function fail(message: string): never {
  throw new LinkError('invalid-request', message);
}
