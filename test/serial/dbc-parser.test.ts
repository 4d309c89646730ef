/**
 * DBC reader and codec on hand-written files: what is read, what is skipped
 * and counted, syntax errors with file/line/column, attributes (CAN FD,
 * cycle time, start values, long names), multiplexing built from ranges,
 * encoding (labels, range checks, multiplexers set from the signals given),
 * and hostile input (fast-check: random bytes, cut real files, huge numbers,
 * deep cascades) that must only ever give a DbcSyntaxError, quickly.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DbcEncodeError } from '../../src/serial/dbc/codec.js';
import { decodeCp1252 } from '../../src/serial/dbc/cp1252.js';
import { DbcSyntaxError } from '../../src/serial/dbc/errors.js';
import { compileDbcBytes, DBC_MAX_BYTES, DbcFileError, loadDbcFile } from '../../src/serial/dbc/load.js';
import { parseDbc } from '../../src/serial/dbc/parser.js';
import { PROJECT_ROOT } from '../helpers/vectors.js';

const dbcOf = (text: string, file = 'test.dbc'): ReturnType<typeof compileDbcBytes> => compileDbcBytes(Buffer.from(text, 'latin1'), file);
const frame = (id: number, hex: string, extended = false): { id: number; extended: boolean; data: Buffer } => ({ id, extended, data: Buffer.from(hex, 'hex') });

function syntaxError(text: string): DbcSyntaxError {
  try {
    dbcOf(text, 'bad.dbc');
  } catch (err) {
    if (err instanceof DbcSyntaxError) return err;
    throw err;
  }
  throw new Error('no error');
}

const HEADER = 'VERSION ""\n\nNS_ :\n\tNS_DESC_\n\tCM_\n\tBA_DEF_\n\nBS_:\n\nBU_: ECU TESTER\n';

describe('DBC reader', () => {
  it('reads messages, both byte orders, sign, scale/offset, range, unit, receivers, and an extended id from bit 31', () => {
    const db = parseDbc(
      HEADER +
        'BO_ 2566844926 EEC1: 8 ECU\n' +
        ' SG_ EngineSpeed : 24|16@1+ (0.125,0) [0|8031.875] "rpm" TESTER,ECU\n' +
        ' SG_ Torque : 7|12@0- (0.5,-10) [-1000|1000] "Nm" Vector__XXX\n',
      'a.dbc',
    );
    expect(db.messages).toHaveLength(1);
    const m = db.messages[0]!;
    expect(m).toMatchObject({ id: 0x18fef1fe, extended: true, name: 'EEC1', length: 8, transmitter: 'ECU', fd: false });
    expect(m.signals[0]).toMatchObject({ name: 'EngineSpeed', startBit: 24, length: 16, byteOrder: 'little_endian', signed: false, scale: 0.125, offset: 0, min: 0, max: 8031.875, unit: 'rpm', receivers: ['TESTER', 'ECU'] });
    expect(m.signals[1]).toMatchObject({ name: 'Torque', byteOrder: 'big_endian', signed: true, scale: 0.5, offset: -10, receivers: [] });
    const dbc = dbcOf(HEADER + 'BO_ 2566844926 EEC1: 8 ECU\n SG_ EngineSpeed : 24|16@1+ (0.125,0) [0|8031.875] "rpm" TESTER\n');
    expect(dbc.decode(frame(0x18fef1fe, '000000201c000000', true))).toEqual({ message: 'EEC1', values: { EngineSpeed: 900 }, raw: { EngineSpeed: 7200 }, units: { EngineSpeed: 'rpm' } });
    expect(dbc.decode(frame(0x18fef1fe, '000000201c000000', false))).toBeUndefined();
  });

  it('skips every statement it does not use, counted per keyword, and unknown keywords too', () => {
    const db = parseDbc(
      HEADER +
        'BO_ 100 M: 8 ECU\n SG_ S : 0|8@1+ (1,0) [0|0] "" ECU\n' +
        'CM_ SG_ 100 S "a comment; with a semicolon";\nCM_ "bus comment";\n' +
        'EV_ EnvVar: 0 [0|10] "" 0 1 DUMMY_NODE_VECTOR0 Vector__XXX;\n' +
        'SIG_GROUP_ 100 G 1 : S;\nBO_TX_BU_ 100 : ECU,TESTER;\n' +
        'FANCY_NEW_THING_ 1 2 "x";\n',
      'a.dbc',
    );
    expect({ ...db.skipped }).toEqual({ CM_: 2, EV_: 1, SIG_GROUP_: 1, BO_TX_BU_: 1, 'unknown FANCY_NEW_THING_': 1 });
    expect(db.messages[0]!.signals[0]!.min).toBeUndefined(); // [0|0] = no range
  });

  it('names the file, line and column of a syntax error', () => {
    const e = syntaxError(HEADER + 'BO_ 100 M: 8 ECU\n SG_ S : 0|8@1+ (1;0) [0|0] "" ECU\n');
    expect(e.message).toBe("bad.dbc:12:19: signal S: expected ',' between factor and offset, found ';'");
    expect([e.file, e.line, e.column]).toEqual(['bad.dbc', 12, 19]);
    expect(syntaxError('BO_ 0x100 M: 8 ECU\n').message).toBe("bad.dbc:1:5: expected the message id after BO_ (a number), found '0x100'");
    expect(syntaxError('CM_ "never closed;\n\n').message).toBe('bad.dbc:1:5: string not closed (no " before the end of the file)');
    expect(syntaxError('BU_: A\n\u0001').message).toBe('bad.dbc:2:1: unexpected character U+0001');
    expect(syntaxError('BO_ 1 M: 8 E\n SG_ S : 0|8@2+ (1,0) [0|0] "" E\n').message).toMatch(/^bad\.dbc:2:14: signal S: byte order must be 0/);
    expect(syntaxError('BO_ 1 M: 8 E\n SG_ S : 510|8@1+ (1,0) [0|0] "" E\n').message).toMatch(/^bad\.dbc:2:6: signal S of message M: little-endian start bit 510 length 8 reaches past 64 bytes/);
  });

  it('reads value tables, SIG_VALTYPE_ floats, CAN FD (VFrameFormat), GenMsgCycleTime, GenSigStartValue and long names', () => {
    const dbc = dbcOf(
      HEADER +
        'VAL_TABLE_ OnOff 1 "On" 0 "Off" ;\n' +
        'BO_ 2147483905 FdMsg: 32 ECU\n SG_ Mode : 0|8@1+ (1,0) [0|0] "" ECU\n SG_ Temp : 8|32@1- (1,0) [0|0] "degC" ECU\n SG_ Short_32 : 40|8@1+ (1,0) [0|0] "" ECU\n SG_ Tail : 248|8@1+ (1,0) [0|0] "" ECU\n' +
        'BA_DEF_ BO_ "VFrameFormat" ENUM "StandardCAN","ExtendedCAN","reserved","J1939PG","x","x","x","x","x","x","x","x","x","x","StandardCAN_FD","ExtendedCAN_FD";\n' +
        'BA_DEF_ BO_ "GenMsgCycleTime" INT 0 65535;\nBA_DEF_ SG_ "GenSigStartValue" INT 0 255;\nBA_DEF_ SG_ "SystemSignalLongSymbol" STRING ;\n' +
        'BA_DEF_DEF_ "VFrameFormat" "StandardCAN";\nBA_DEF_DEF_ "GenMsgCycleTime" 0;\n' +
        'BA_ "VFrameFormat" BO_ 2147483905 15;\nBA_ "GenMsgCycleTime" BO_ 2147483905 100;\nBA_ "GenSigStartValue" SG_ 2147483905 Tail 170;\n' +
        'BA_ "SystemSignalLongSymbol" SG_ 2147483905 Short_32 "A_very_long_signal_name_beyond_32_characters";\n' +
        'VAL_ 2147483905 Mode 1 "On" 0 "Off" ;\nSIG_VALTYPE_ 2147483905 Temp : 1;\n',
    );
    const m = dbc.message('FdMsg')!;
    expect(m.spec).toMatchObject({ id: 0x101, extended: true, fd: true, cycleTimeMs: 100, length: 32 });
    const data = Buffer.alloc(32);
    data[0] = 1;
    data.writeFloatLE(-12.5, 1);
    data[5] = 7;
    data[31] = 0x55;
    expect(dbc.decode({ id: 0x101, extended: true, data })).toMatchObject({
      values: { Mode: 'On', Temp: -12.5, A_very_long_signal_name_beyond_32_characters: 7, Tail: 0x55 },
      raw: { Mode: 1, Temp: -12.5, A_very_long_signal_name_beyond_32_characters: 7, Tail: 0x55 },
    });
    const enc = dbc.encode('FdMsg', { Mode: 'Off', Temp: 21.25 });
    expect(enc).toMatchObject({ id: 0x101, extended: true, fd: true });
    expect(enc.data).toHaveLength(32);
    expect(enc.data.readFloatLE(1)).toBe(21.25);
    expect(enc.data[31]).toBe(170); // GenSigStartValue of the signal left out
    expect(dbc.skipped).toEqual({});
  });

  it('keeps 64-bit raw values exact: decimal strings beyond 2^53, labels keyed exactly', () => {
    const dbc = dbcOf('BO_ 1 M: 8 E\n SG_ U : 0|64@1+ (1,0) [0|0] "" E\n' + 'VAL_ 1 U 18446744073709551615 "ALL_ONES" ;\n');
    expect(dbc.decode(frame(1, 'ffffffffffffffff'))!.values.U).toBe('ALL_ONES');
    expect(dbc.decode(frame(1, 'feffffffffffffff'))!.raw.U).toBe('18446744073709551614');
    expect(dbc.decode(frame(1, '0100000000000000'))!.raw.U).toBe(1);
    expect(dbc.encode('M', { U: 'ALL_ONES' }).data.toString('hex')).toBe('ffffffffffffffff');
  });
});

describe('DBC multiplexing', () => {
  const MUX = dbcOf(
    'BO_ 2024 OBD: 8 E\n' +
      ' SG_ Service M : 15|8@0+ (1,0) [0|0] "" E\n' +
      ' SG_ Pid m65M : 23|8@0+ (1,0) [0|0] "" E\n' +
      ' SG_ Speed m13 : 31|8@0+ (1,0) [0|255] "km/h" E\n' +
      ' SG_ Rpm m12 : 31|16@0+ (0.25,0) [0|16383.75] "rpm" E\n' +
      ' SG_ Wide m0 : 63|8@0+ (1,0) [0|0] "" E\n' +
      'SG_MUL_VAL_ 2024 Pid Service 65-65;\nSG_MUL_VAL_ 2024 Speed Pid 13-13;\nSG_MUL_VAL_ 2024 Rpm Pid 12-12;\n' +
      'SG_MUL_VAL_ 2024 Wide Pid 0-4294967295;\n',
  );

  it('decodes the branch the multiplexer values select, ranges included (0-4294967295 is one range)', () => {
    expect(MUX.decode(frame(2024, '03410d3200000009'))!.values).toEqual({ Service: 0x41, Pid: 13, Speed: 50, Wide: 9 });
    expect(MUX.decode(frame(2024, '03410c1af8000009'))!.values).toEqual({ Service: 0x41, Pid: 12, Rpm: 1726, Wide: 9 });
    // a value no branch names: the multiplexer alone
    expect(MUX.decode(frame(2024, '0342000000000000'))!.values).toEqual({ Service: 0x42 });
  });

  it('sets the multiplexers from the signals given, and names the branch when a signal does not belong', () => {
    expect(MUX.encode('OBD', { Rpm: 1726 }).data.toString('hex')).toBe('00410c1af8000000');
    expect(MUX.encode('OBD', { Service: 0x41, Pid: 13, Speed: 50 }).data.toString('hex')).toBe('00410d3200000000');
    expect(() => MUX.encode('OBD', { Pid: 13, Rpm: 1 })).toThrow('OBD.Rpm is not sent with Pid = 13 (give Pid the value of its branch)');
    expect(() => MUX.encode('OBD', { Speed: 300 })).toThrow('OBD.Speed = 300: above the maximum 255 of the DBC');
    expect(() => MUX.encode('OBD', { Nope: 1 })).toThrow(DbcEncodeError);
  });
});

describe('DBC encoding checks', () => {
  const DB = dbcOf('BO_ 10 M: 2 E\n SG_ Gear : 0|4@1+ (1,0) [0|7] "" E\n SG_ Temp : 8|8@1- (0.5,-40) [-50|20] "degC" E\n' + 'VAL_ 10 Gear 15 "Invalid" 14 "Error" 13 "Error" ;\n');

  it('takes labels, rounds half to even, checks ranges (a VAL_ value passes), refuses ambiguous labels', () => {
    expect(DB.encode('M', { Gear: 'Invalid', Temp: -40 }).data.toString('hex')).toBe('0f00');
    expect(DB.encode('M', { Gear: 2, Temp: -39.75 }).data.toString('hex')).toBe('0200'); // raw 0.5 → 0 (half to even)
    expect(DB.encode('M', { Gear: 2, Temp: -39.25 }).data.toString('hex')).toBe('0202'); // raw 1.5 → 2
    expect(() => DB.encode('M', { Gear: 8 })).toThrow('M.Gear = 8: above the maximum 7 of the DBC');
    expect(() => DB.encode('M', { Gear: 'Error' })).toThrow('M.Gear: the label "Error" stands for several raw values: give the number');
    expect(() => DB.encode('M', { Gear: 'Nope' })).toThrow(/"Nope" is not one of its labels/);
    expect(() => DB.encode('M', { Temp: Number.NaN })).toThrow('M.Temp: null is neither a finite number nor a label');
  });
});

describe('DBC files', () => {
  it('bounds the file size and names unreadable files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbc-'));
    expect(() => loadDbcFile(path.join(dir, 'missing.dbc'))).toThrow(new DbcFileError(path.join(dir, 'missing.dbc'), 'cannot read: no such file'));
    const big = path.join(dir, 'big.dbc');
    writeFileSync(big, Buffer.alloc(DBC_MAX_BYTES + 1, 0x20));
    expect(() => loadDbcFile(big)).toThrow(/larger than the 16777216-byte limit/);
  });

  it('refuses what is not a regular file without blocking or reading it (a FIFO with no writer, /dev/zero, a directory)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dbc-'));
    const fifo = path.join(dir, 'fifo.dbc');
    execFileSync('mkfifo', [fifo]);
    for (const p of [fifo, '/dev/zero', dir]) expect(() => loadDbcFile(p), p).toThrow(new DbcFileError(p, 'is not a regular file'));
  });

  it('decodes cp1252 (0x80-0x9F differ from Latin-1)', () => {
    expect(decodeCp1252(Buffer.from([0x80, 0xb0, 0xe4, 0x9f, 0x41]))).toBe('€°äŸA');
  });
});

describe('DBC reader on hostile input (fast-check)', () => {
  const expectOnlySyntaxErrors = (text: string): void => {
    const t0 = performance.now();
    try {
      // What loads must also decode any payload and encode (or refuse with a DbcEncodeError) without a surprise.
      const dbc = dbcOf(text, 'fuzz.dbc');
      for (const m of dbc.messages) {
        dbc.decode({ id: m.spec.id, extended: m.spec.extended, data: Buffer.alloc(64, 0xa5) });
        try {
          dbc.encode(m.spec.name, {});
        } catch (err) {
          if (!(err instanceof DbcEncodeError)) throw err;
        }
      }
    } catch (err) {
      if (!(err instanceof DbcSyntaxError)) throw err;
      expect(err.message).toMatch(/^fuzz\.dbc:\d+:\d+: /);
    }
    expect(performance.now() - t0).toBeLessThan(2000);
  };

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (b) => expectOnlySyntaxErrors(decodeCp1252(b))), { numRuns: 500 });
  });

  it('random sequences of DBC tokens', () => {
    const tok = fc.constantFrom('BO_', 'SG_', 'VAL_', 'BA_', 'BA_DEF_', 'SG_MUL_VAL_', 'SIG_VALTYPE_', 'CM_', 'M', 'm1', 'm2M', ':', '|', '@', '+', '-', '(', ')', '[', ']', ',', ';', '"x"', '"', '0', '1', '8', '64', '-5', '1e999', '99999999999999999999999', 'Name', '\n');
    fc.assert(fc.property(fc.array(tok, { maxLength: 300 }), (toks) => expectOnlySyntaxErrors(toks.join(' '))), { numRuns: 1000 });
  });

  it('real files cut anywhere, or with one byte changed', () => {
    const dir = path.resolve(PROJECT_ROOT, '..', 'shared', 'can-vectors');
    const texts = readdirSync(dir).filter((f) => f.endsWith('.dbc')).map((f) => decodeCp1252(readFileSync(path.join(dir, f))));
    fc.assert(
      fc.property(fc.nat(texts.length - 1), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 }), fc.boolean(), (i, at, byte, cut) => {
        const t = texts[i]!;
        const k = Math.floor(at * t.length);
        expectOnlySyntaxErrors(cut ? t.slice(0, k) : t.slice(0, k) + String.fromCharCode(byte) + t.slice(k + 1));
      }),
      { numRuns: 300 },
    );
  });

  it('huge numbers, huge ranges, long cascades, many overlapping ranges', () => {
    expectOnlySyntaxErrors('BO_ 99999999999999999999 M: 8 E\n');
    expectOnlySyntaxErrors(`BO_ 1 M: 8 E\n SG_ S : 0|8@1+ (1e999,0) [0|0] "" E\n`);
    expectOnlySyntaxErrors(`BO_ 1 M: 8 E\n SG_ S : 0|8@1+ (${'9'.repeat(5000)},0) [0|0] "" E\n`);
    // one range covering 2^53 values: kept as a range
    const wide = dbcOf('BO_ 1 M: 8 E\n SG_ A M : 0|8@1+ (1,0) [0|0] "" E\n SG_ B m0 : 8|8@1+ (1,0) [0|0] "" E\n SG_ C M : 16|8@1+ (1,0) [0|0] "" E\nSG_MUL_VAL_ 1 B A 0-9007199254740991;\n');
    expect(wide.decode(frame(1, '0705000000000000'))!.values).toEqual({ A: 7, B: 5, C: 0 });
    // a 2000-deep cascade m0M → m0M → …: no recursion
    let deep = 'BO_ 1 M: 8 E\n SG_ S0 M : 0|1@1+ (1,0) [0|0] "" E\n';
    for (let i = 1; i < 2000; i++) deep += ` SG_ S${i} m0M : ${i % 64}|1@1+ (1,0) [0|0] "" E\n`;
    for (let i = 1; i < 2000; i++) deep += `SG_MUL_VAL_ 1 S${i} S${i - 1} 0-0;\n`;
    const cascade = dbcOf(deep);
    expect(Object.keys(cascade.decode(frame(1, '0000000000000000'))!.values)).toHaveLength(2000);
    // encoding a signal at the bottom of a 2,000-deep cascade sets every multiplexer above it (each to 1), quickly
    let up = 'BO_ 2 N: 64 E\n SG_ S0 M : 0|1@1+ (1,0) [0|0] "" E\n SG_ Leaf m0 : 511|1@1+ (1,0) [0|0] "" E\n';
    for (let i = 1; i < 2000; i++) up += ` SG_ S${i} m1M : ${1 + (i % 500)}|1@1+ (1,0) [0|0] "" E\n`;
    for (let i = 1; i < 2000; i++) up += `SG_MUL_VAL_ 2 S${i} S${i - 1} 1-1;\n`;
    up += 'SG_MUL_VAL_ 2 Leaf S1999 0-0;\n';
    const t0 = performance.now();
    const data = dbcOf(up).encode('N', { Leaf: 1 }).data;
    expect(performance.now() - t0).toBeLessThan(2000);
    expect([data[0]! & 1, data[63]! >> 7]).toEqual([1, 1]); // S0 = 1 (inferred through 1,999 levels), Leaf = 1
    // quadratic growth of branch segments is bounded: a syntax error naming the message
    let quad = 'BO_ 1 Q: 8 E\n SG_ X M : 0|8@1+ (1,0) [0|0] "" E\n';
    for (let i = 0; i < 1500; i++) quad += ` SG_ K${i} m0 : 8|8@1+ (1,0) [0|0] "" E\n`;
    for (let i = 0; i < 1500; i++) quad += `SG_MUL_VAL_ 1 K${i} X ${i}-${3000 - i};\n`;
    expect(() => dbcOf(quad)).toThrow(/^test\.dbc:1:1: message Q: its multiplexing needs more than 200000 branch entries/);
  });
});
