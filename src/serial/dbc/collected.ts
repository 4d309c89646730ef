/** What the statements of a DBC file say, keyed as the file keys it (message id as written, short signal names): the parser fills it, build.ts turns it into a DbcDatabase. */
import type { Tok } from './lexer.js';
import type { Choices, MuxRange } from './model.js';

export interface RawSignal {
  name: string;
  mux: string | undefined;
  start: number;
  length: number;
  bigEndian: boolean;
  signed: boolean;
  scaleText: string;
  offsetText: string;
  minText: string;
  maxText: string;
  unit: string;
  receivers: string[];
  line: number;
  col: number;
}

export interface RawMessage {
  dbcId: number;
  name: string;
  length: number;
  transmitter: string;
  signals: RawSignal[];
  line: number;
  col: number;
}

export interface AttrValue {
  kind: Tok.Number | Tok.String;
  text: string;
}

export interface AttrDef {
  type: string;
  enumValues: string[];
}

export class Collected {
  version: string | undefined;
  nodes: string[] = [];
  messages: RawMessage[] = [];
  valueTables = new Map<string, Choices>();
  choices = new Map<number, Map<string, Choices>>();
  sigTypes = new Map<number, Map<string, number>>();
  /** dbcId → multiplexer → signal → ranges (insertion order matters: see resolveMux). */
  mulVals = new Map<number, Map<string, Map<string, MuxRange[]>>>();
  attrDefs = new Map<string, AttrDef>();
  attrDefaults = new Map<string, AttrValue>();
  msgAttrs = new Map<number, Map<string, AttrValue>>();
  sigAttrs = new Map<number, Map<string, Map<string, AttrValue>>>();
  skipped: Record<string, number> = Object.create(null) as Record<string, number>;
  warnings: string[] = [];
  warningCount = 0;
}
