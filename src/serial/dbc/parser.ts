/**
 * DBC reader: text → DbcDatabase (model.ts). Reads what decoding and
 * encoding need — BO_ (bit 31 = extended id), SG_ (both byte orders,
 * sign, factor/offset, min/max, unit, receivers, `M`/`mN`/`mNM`),
 * SIG_VALTYPE_ (IEEE float32/float64), VAL_ and VAL_TABLE_, SG_MUL_VAL_
 * (extended multiplexing), BA_DEF_/BA_DEF_DEF_/BA_ (VFrameFormat for CAN
 * FD, GenMsgCycleTime, GenSigStartValue, the long-name attributes), BU_,
 * VERSION, NS_, BS_ — and skips every other statement, counted per keyword
 * in `skipped`, never an error. A statement it reads but cannot make sense
 * of throws a DbcSyntaxError naming the file, line and column.
 *
 * The meaning follows cantools 42 (the reference the vectors in
 * ../shared/can-vectors come from): the token classes (lexer.ts), which
 * statements exist and what they hold; build.ts gives them cantools' meaning.
 *
 * Why hand-written: the npm DBC libraries were evaluated against the
 * vectors (a script outside the repository, 2026-12): `candied` 2.2.0 (ISC,
 * pure JS, 1.5 MB) loads none of the 14 files in strict mode (the indented
 * NS_ list is a syntax error to it) and, leniently, decodes 10,279 of the
 * 68,336 frames correctly (0 of vehicle.dbc's 19,964 and of j1939.dbc's 600:
 * extended ids; 0 of motohawk.dbc's 300 and 51 of acura's 5,751: signals
 * it leaves undecoded; 13 of floating_point.dbc's 600: no SIG_VALTYPE_
 * floats; 0 of multiplex.dbc and multiplex_2.dbc: no multiplexing, issue #44
 * upstream), rounds 64-bit values, and has no value → frame encoder with
 * range checks;
 * `dbc-can` 1.6.0 (its former name) cannot even be loaded on Linux (its
 * index requires './dbc/Dbc' but ships 'dbc/dbc.js'); `socketcan` 4.3.1 is
 * a native addon reading KCD, not DBC. None passes; the grammar is small.
 *
 * Hostile input: no recursion (a flat statement loop), the lexer bounds
 * number tokens, loaders bound the file size (load.ts), multiplexer ranges
 * are kept as ranges (`0-4294967295` costs two numbers, not four billion).
 */
import { build, MAX_MESSAGE_BYTES } from './build.js';
import { Collected, type AttrValue, type RawMessage, type RawSignal } from './collected.js';
import { Lexer, Tok, type Token } from './lexer.js';
import type { Choices, DbcDatabase, MuxRange } from './model.js';

const KEYWORDS = new Set([
  'BA_', 'BA_DEF_', 'BA_DEF_DEF_', 'BA_DEF_DEF_REL_', 'BA_DEF_REL_', 'BA_DEF_SGTYPE_', 'BA_REL_', 'BA_SGTYPE_', 'BO_', 'BO_TX_BU_', 'BS_',
  'BU_', 'BU_BO_REL_', 'BU_EV_REL_', 'BU_SG_REL_', 'CAT_', 'CAT_DEF_', 'CM_', 'ENVVAR_DATA_', 'EV_', 'EV_DATA_', 'FILTER', 'NS_', 'NS_DESC_',
  'SG_', 'SG_MUL_VAL_', 'SGTYPE_', 'SGTYPE_VAL_', 'SIG_GROUP_', 'SIG_TYPE_REF_', 'SIG_VALTYPE_', 'SIGTYPE_VALTYPE_', 'VAL_', 'VAL_TABLE_', 'VERSION',
]);

/** Highest start bit: 64 bytes (CAN FD). */
const MAX_BITS = MAX_MESSAGE_BYTES * 8;
const INT_TEXT = /^[-+]?\d+$/;


export function parseDbc(text: string, file: string): DbcDatabase {
  const lx = new Lexer(text, file);
  const c = new Collected();
  for (;;) {
    const t = lx.next();
    if (t.kind === Tok.End) break;
    if (t.kind !== Tok.Word) throw lx.error(t, `expected a statement keyword (BO_, SG_, VAL_, BA_, CM_...), found ${describe(t)}`);
    switch (t.text) {
      case 'VERSION': c.version = expectString(lx, 'the version string after VERSION').text; break;
      case 'NS_': readNewSymbols(lx); break;
      case 'BS_': readBitTiming(lx); break;
      case 'BU_': readNodes(lx, c); break;
      case 'BO_': c.messages.push(readMessage(lx)); break;
      case 'VAL_TABLE_': readValueTable(lx, c); break;
      case 'VAL_': readChoices(lx, c); break;
      case 'SIG_VALTYPE_': readSignalType(lx, c); break;
      case 'SG_MUL_VAL_': readMuxValues(lx, c); break;
      case 'BA_DEF_': readAttrDef(lx, c); break;
      case 'BA_DEF_DEF_': readAttrDefault(lx, c); break;
      case 'BA_': readAttr(lx, c); break;
      default:
        count(c, KEYWORDS.has(t.text) ? t.text : `unknown ${t.text}`);
        skipStatement(lx);
    }
  }
  return build(c, file);
}

/** Distinct kinds counted at most; a file inventing thousands of keywords shares one counter beyond. */
const MAX_SKIP_KINDS = 100;

function count(c: Collected, kind: string): void {
  const key = kind in c.skipped || Object.keys(c.skipped).length < MAX_SKIP_KINDS ? kind : 'unknown (other kinds)';
  c.skipped[key] = (c.skipped[key] ?? 0) + 1;
}

function describe(t: Token): string {
  switch (t.kind) {
    case Tok.End: return 'the end of the file';
    case Tok.String: return `the string "${t.text.length > 40 ? t.text.slice(0, 40) + '…' : t.text}"`;
    default: return `'${t.text.length > 40 ? t.text.slice(0, 40) + '…' : t.text}'`;
  }
}

/** `where` (optional) leads the message: "signal S: expected ',' between factor and offset, found ';'". */
function expectPunct(lx: Lexer, ch: string, what: string, where?: string): Token {
  const t = lx.next();
  if (t.kind !== Tok.Punct || t.text !== ch) throw lx.error(t, `${where !== undefined ? `${where}: ` : ''}expected '${ch}' ${what}, found ${describe(t)}`);
  return t;
}

function expectWord(lx: Lexer, what: string): Token {
  const t = lx.next();
  if (t.kind !== Tok.Word) throw lx.error(t, `expected ${what}, found ${describe(t)}`);
  return t;
}

function expectNumber(lx: Lexer, what: string): Token {
  const t = lx.next();
  if (t.kind !== Tok.Number) throw lx.error(t, `expected ${what} (a number), found ${describe(t)}`);
  return t;
}

function expectString(lx: Lexer, what: string): Token {
  const t = lx.next();
  if (t.kind !== Tok.String) throw lx.error(t, `expected ${what} (a "string"), found ${describe(t)}`);
  return t;
}

/** An integer as written, within [min, max] (safe integers only). */
function expectInt(lx: Lexer, what: string, min: number, max: number): number {
  const t = expectNumber(lx, what);
  return intOf(lx, t, what, min, max);
}

function intOf(lx: Lexer, t: Token, what: string, min: number, max: number): number {
  if (!INT_TEXT.test(t.text)) throw lx.error(t, `${what} must be an integer, not ${t.text}`);
  const v = Number(t.text);
  if (!(v >= min && v <= max)) throw lx.error(t, `${what} ${t.text} is out of range ${min}..${max}`);
  return v;
}

const isPunct = (t: Token, ch: string): boolean => t.kind === Tok.Punct && t.text === ch;
/** A keyword starting a line begins the next statement. */
const startsStatement = (t: Token): boolean => t.kind === Tok.End || (t.kind === Tok.Word && t.lineStart && KEYWORDS.has(t.text));

/** Up to the `;` that ends it, or to the next line starting with a keyword (statements without `;`). */
function skipStatement(lx: Lexer): void {
  for (;;) {
    const t = lx.peek();
    if (startsStatement(t)) return;
    lx.next();
    if (isPunct(t, ';')) return;
  }
}

function readNewSymbols(lx: Lexer): void {
  expectPunct(lx, ':', 'after NS_');
  // The list of symbols ends where the next statement (`BS_:`, `BU_:`) puts its ':'.
  while (lx.peek().kind !== Tok.End && !isPunct(lx.peek(1), ':')) lx.next();
}

function readBitTiming(lx: Lexer): void {
  expectPunct(lx, ':', 'after BS_');
  if (lx.peek().kind !== Tok.Number) return;
  lx.next();
  if (isPunct(lx.peek(), ':')) {
    lx.next();
    expectNumber(lx, 'BTR1');
    expectPunct(lx, ',', 'between BTR1 and BTR2');
    expectNumber(lx, 'BTR2');
  }
}

function readNodes(lx: Lexer, c: Collected): void {
  expectPunct(lx, ':', 'after BU_');
  while (lx.peek().kind === Tok.Word && !KEYWORDS.has(lx.peek().text)) c.nodes.push(lx.next().text);
}

function readMessage(lx: Lexer): RawMessage {
  const idTok = expectNumber(lx, 'the message id after BO_');
  const dbcId = intOf(lx, idTok, 'message id', 0, 0xffffffff);
  const name = expectWord(lx, 'the message name').text;
  expectPunct(lx, ':', `after the message name ${name}`);
  const length = expectInt(lx, `the length of message ${name}`, 0, 0xffffffff);
  let transmitter = '';
  if (lx.peek().kind === Tok.Word && !startsStatement(lx.peek())) transmitter = lx.next().text;
  const msg: RawMessage = { dbcId, name, length, transmitter, signals: [], line: idTok.line, col: idTok.col };
  while (lx.peek().kind === Tok.Word && lx.peek().text === 'SG_') {
    lx.next();
    msg.signals.push(readSignal(lx, name));
  }
  return msg;
}

function readSignal(lx: Lexer, message: string): RawSignal {
  const nameTok = expectWord(lx, `a signal name after SG_ (message ${message})`);
  const name = nameTok.text;
  let mux: string | undefined;
  if (lx.peek().kind === Tok.Word) {
    const m = lx.next();
    if (!/^(M|m\d{1,15}M?)$/.test(m.text)) throw lx.error(m, `signal ${name}: '${m.text}' is not a multiplexer indicator (M, m<n> or m<n>M)`);
    mux = m.text;
  }
  const where = `signal ${name}`;
  expectPunct(lx, ':', 'after the name', where);
  const start = expectInt(lx, `${where}: start bit`, 0, MAX_BITS - 1);
  expectPunct(lx, '|', 'between start bit and length', where);
  const length = expectInt(lx, `${where}: length`, 1, 64);
  expectPunct(lx, '@', 'before the byte order', where);
  const order = expectNumber(lx, `${where}: byte order`);
  if (order.text !== '0' && order.text !== '1') throw lx.error(order, `${where}: byte order must be 0 (big endian, Motorola) or 1 (little endian, Intel), not ${order.text}`);
  const sign = lx.next();
  if (sign.kind !== Tok.Punct || (sign.text !== '+' && sign.text !== '-')) throw lx.error(sign, `${where}: expected + (unsigned) or - (signed) after @${order.text}, found ${describe(sign)}`);
  expectPunct(lx, '(', 'before factor,offset', where);
  const scaleText = expectNumber(lx, `${where}: factor`).text;
  expectPunct(lx, ',', 'between factor and offset', where);
  const offsetText = expectNumber(lx, `${where}: offset`).text;
  expectPunct(lx, ')', 'after factor,offset', where);
  expectPunct(lx, '[', 'before [min|max]', where);
  const minText = expectNumber(lx, `${where}: minimum`).text;
  expectPunct(lx, '|', 'between minimum and maximum', where);
  const maxText = expectNumber(lx, `${where}: maximum`).text;
  expectPunct(lx, ']', 'after [min|max]', where);
  const unit = expectString(lx, `${where}: unit`).text;
  const receivers: string[] = [];
  // Receivers: comma-separated (the standard), or space-separated on the same line (seen in the field).
  while (lx.peek().kind === Tok.Word && !lx.peek().lineStart) {
    receivers.push(lx.next().text);
    if (isPunct(lx.peek(), ',')) lx.next();
  }
  return { name, mux, start, length, bigEndian: order.text === '0', signed: sign.text === '-', scaleText, offsetText, minText, maxText, unit, receivers, line: nameTok.line, col: nameTok.col };
}

/** `NUMBER "label"` pairs up to `;`. */
function readPairs(lx: Lexer, what: string): Choices {
  const out: Choices = new Map();
  while (lx.peek().kind === Tok.Number) {
    const k = lx.next();
    if (!INT_TEXT.test(k.text)) throw lx.error(k, `${what}: value ${k.text} must be an integer`);
    out.set(choiceKey(k.text), expectString(lx, `${what}: the description of value ${k.text}`).text);
  }
  expectPunct(lx, ';', `at the end of ${what}`);
  return out;
}

/** Raw values as map keys: a number when exact, else the canonical decimal string. */
export function choiceKey(intText: string): number | string {
  const n = Number(intText);
  return Number.isSafeInteger(n) ? n : BigInt(intText).toString();
}

function readValueTable(lx: Lexer, c: Collected): void {
  const name = expectWord(lx, 'the table name after VAL_TABLE_').text;
  c.valueTables.set(name, readPairs(lx, `VAL_TABLE_ ${name}`));
}

function readChoices(lx: Lexer, c: Collected): void {
  let dbcId: number | undefined;
  if (lx.peek().kind === Tok.Number) dbcId = intOf(lx, lx.next(), 'VAL_ message id', 0, 0xffffffff);
  const sig = expectWord(lx, 'a signal name in VAL_').text;
  const table = readPairs(lx, `VAL_ ${sig}`);
  if (dbcId === undefined) {
    // An environment variable's values: not a signal.
    count(c, 'VAL_ (environment variable)');
    return;
  }
  if (table.size === 0) return;
  let bySig = c.choices.get(dbcId);
  if (bySig === undefined) c.choices.set(dbcId, (bySig = new Map()));
  bySig.set(sig, table);
}

function readSignalType(lx: Lexer, c: Collected): void {
  const dbcId = expectInt(lx, 'the message id after SIG_VALTYPE_', 0, 0xffffffff);
  const sig = expectWord(lx, 'a signal name in SIG_VALTYPE_').text;
  if (isPunct(lx.peek(), ':')) lx.next();
  const type = expectInt(lx, `SIG_VALTYPE_ ${sig}: type`, 0, 3);
  expectPunct(lx, ';', 'at the end of SIG_VALTYPE_');
  let bySig = c.sigTypes.get(dbcId);
  if (bySig === undefined) c.sigTypes.set(dbcId, (bySig = new Map()));
  bySig.set(sig, type);
}

function readMuxValues(lx: Lexer, c: Collected): void {
  const dbcId = expectInt(lx, 'the message id after SG_MUL_VAL_', 0, 0xffffffff);
  const sig = expectWord(lx, 'a signal name in SG_MUL_VAL_').text;
  const mux = expectWord(lx, `the multiplexer of ${sig} in SG_MUL_VAL_`).text;
  const ranges: MuxRange[] = [];
  const what = `SG_MUL_VAL_ ${sig}`;
  for (;;) {
    const lo = expectInt(lx, `${what}: range start`, 0, Number.MAX_SAFE_INTEGER);
    // `2-5` reads as the numbers 2 and -5 (the sign belongs to the number); `2 - 5` as 2, '-', 5.
    let hiTok = lx.next();
    if (isPunct(hiTok, '-')) hiTok = expectNumber(lx, `${what}: range end`);
    else if (hiTok.kind !== Tok.Number || !hiTok.text.startsWith('-')) throw lx.error(hiTok, `${what}: expected a range end such as -5 after ${lo}, found ${describe(hiTok)}`);
    const hi = intOf(lx, { ...hiTok, text: hiTok.text.replace(/^-/, '') }, `${what}: range end`, 0, Number.MAX_SAFE_INTEGER);
    if (lo <= hi) ranges.push([lo, hi]);
    if (!isPunct(lx.peek(), ',')) break;
    lx.next();
  }
  expectPunct(lx, ';', `at the end of ${what}`);
  let byMux = c.mulVals.get(dbcId);
  if (byMux === undefined) c.mulVals.set(dbcId, (byMux = new Map()));
  let bySig = byMux.get(mux);
  if (bySig === undefined) byMux.set(mux, (bySig = new Map()));
  bySig.set(sig, ranges);
}

function readAttrDef(lx: Lexer, c: Collected): void {
  if (lx.peek().kind === Tok.Word && ['BU_', 'BO_', 'SG_', 'EV_'].includes(lx.peek().text)) lx.next();
  const name = expectString(lx, 'the attribute name in BA_DEF_').text;
  const type = expectWord(lx, `the type of attribute ${name} (INT, HEX, FLOAT, STRING, ENUM)`).text;
  const enumValues: string[] = [];
  for (;;) {
    const t = lx.next();
    if (isPunct(t, ';')) break;
    if (t.kind === Tok.String) enumValues.push(t.text);
    else if (t.kind !== Tok.Number && !isPunct(t, ',')) throw lx.error(t, `BA_DEF_ ${name}: expected values or ';', found ${describe(t)}`);
  }
  c.attrDefs.set(name, { type, enumValues });
}

function attrValue(lx: Lexer, what: string): AttrValue {
  const t = lx.next();
  if (t.kind !== Tok.Number && t.kind !== Tok.String) throw lx.error(t, `expected the value of ${what}, found ${describe(t)}`);
  return { kind: t.kind, text: t.text };
}

function readAttrDefault(lx: Lexer, c: Collected): void {
  const name = expectString(lx, 'the attribute name in BA_DEF_DEF_').text;
  c.attrDefaults.set(name, attrValue(lx, `attribute ${name}`));
  expectPunct(lx, ';', 'at the end of BA_DEF_DEF_');
}

function readAttr(lx: Lexer, c: Collected): void {
  const name = expectString(lx, 'the attribute name in BA_').text;
  let target: { dbcId: number; sig?: string } | undefined;
  const p = lx.peek();
  if (p.kind === Tok.Word) {
    lx.next();
    if (p.text === 'BO_') target = { dbcId: expectInt(lx, `BA_ ${name}: message id`, 0, 0xffffffff) };
    else if (p.text === 'SG_') target = { dbcId: expectInt(lx, `BA_ ${name}: message id`, 0, 0xffffffff), sig: expectWord(lx, `BA_ ${name}: signal name`).text };
    else if (p.text === 'BU_' || p.text === 'EV_') expectWord(lx, `BA_ ${name}: ${p.text === 'BU_' ? 'node' : 'environment variable'} name`);
    else throw lx.error(p, `BA_ ${name}: expected BO_, SG_, BU_, EV_ or a value, found ${describe(p)}`);
  }
  const value = attrValue(lx, `attribute ${name}`);
  expectPunct(lx, ';', 'at the end of BA_');
  if (target === undefined) return;
  if (target.sig === undefined) {
    let m = c.msgAttrs.get(target.dbcId);
    if (m === undefined) c.msgAttrs.set(target.dbcId, (m = new Map()));
    m.set(name, value);
  } else {
    let bySig = c.sigAttrs.get(target.dbcId);
    if (bySig === undefined) c.sigAttrs.set(target.dbcId, (bySig = new Map()));
    let m = bySig.get(target.sig);
    if (m === undefined) bySig.set(target.sig, (m = new Map()));
    m.set(name, value);
  }
}
