/**
 * A DBC file as read (parser.ts), before compilation into a decoder
 * (codec.ts). Names are the ones cantools gives: a long name from the
 * `SystemMessageLongSymbol` / `SystemSignalLongSymbol` attributes replaces
 * the 32-character name of BO_/SG_.
 */

/** An inclusive range of multiplexer values. */
export type MuxRange = readonly [lo: number, hi: number];

export type ValueType = 'integer' | 'float32' | 'float64';

/** Value descriptions: raw value → label. Keys are numbers, or decimal strings beyond 2^53. */
export type Choices = Map<number | string, string>;

export interface DbcSignal {
  name: string;
  line: number;
  col: number;
  startBit: number;
  length: number;
  byteOrder: 'little_endian' | 'big_endian';
  signed: boolean;
  valueType: ValueType;
  scale: number;
  offset: number;
  /** As written: cantools multiplies an integer raw by an integer scale exactly (before adding a fractional offset). */
  scaleText: string;
  offsetText: string;
  /** undefined when the DBC says [0|0] (no range). */
  min: number | undefined;
  max: number | undefined;
  unit: string;
  receivers: string[];
  /** `M` or `mNM`: selects a branch of the message. */
  isMultiplexer: boolean;
  /** The multiplexer this signal depends on (undefined: always present). */
  multiplexer: string | undefined;
  /** Values of `multiplexer` for which the signal is present (from `mN` and SG_MUL_VAL_). */
  muxRanges: MuxRange[] | undefined;
  choices: Choices | undefined;
  /** GenSigStartValue (a raw value): sent when an encode leaves the signal out. */
  initialRaw: number | undefined;
}

export interface DbcMessage {
  /** The CAN id without the extended flag. */
  id: number;
  extended: boolean;
  name: string;
  /** Payload bytes (up to 64, CAN FD). */
  length: number;
  /** VFrameFormat says StandardCAN_FD or ExtendedCAN_FD. */
  fd: boolean;
  /** GenMsgCycleTime in ms, when the DBC gives a non-zero one. */
  cycleTimeMs: number | undefined;
  transmitter: string;
  signals: DbcSignal[];
  line: number;
}

export interface DbcDatabase {
  file: string;
  version: string | undefined;
  nodes: string[];
  messages: DbcMessage[];
  /** VAL_TABLE_ tables by name (signals take theirs from VAL_). */
  valueTables: Map<string, Choices>;
  /** Statements read but not used, and statements of unknown kinds, per keyword. */
  skipped: Record<string, number>;
  /** What was dropped or is doubtful (message too long for CAN FD, duplicate id...), with file:line. */
  warnings: string[];
}
