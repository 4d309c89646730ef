/**
 * wsapi v1 message codec (wsapi-v1.md "Encoding" and "Messages"): the 17
 * message kinds round-trip, bad payloads are reported and never throw, and
 * every frame captured from real binders (../shared/wsapi-vectors) decodes
 * and re-encodes byte for byte.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage, encodeMessage, parseJsonText, toJsonText, writeCall, writeDescription, writeEventBroadcast,
  writeReply, writeVersionOffer, writeVersionSet, WSAPI_IDENTIFIER, type Message,
} from '../../src/wsapi/index.js';
import { hex, splitFrames, fcSeed } from '../helpers/net-helpers.js';

fc.configureGlobal({ seed: fcSeed() });

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Any Unicode text (no lone surrogates: they are not UTF-8), NULs included. */
const text = fc.string({ unit: 'binary', maxLength: 40 });
const nullable = fc.option(text, { nil: null });
const jsonText = fc.oneof(text, fc.json({ maxDepth: 2 }));
const uuid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a));

const arbitraries: Record<Message['kind'], fc.Arbitrary<Message>> = {
  V: fc.record({ kind: fc.constant('V' as const), identifier: u32, versions: fc.array(u8, { maxLength: 255 }) }),
  v: fc.record({ kind: fc.constant('v' as const), version: u8 }),
  K: fc.record({
    kind: fc.constant('K' as const), callId: u16, verb: text, sessionId: u16, tokenId: u16, args: jsonText, creds: nullable,
  }),
  k: fc.record({ kind: fc.constant('k' as const), callId: u16, error: nullable, info: nullable, data: jsonText }),
  D: fc.record({ kind: fc.constant('D' as const), descId: u16 }),
  d: fc.oneof(
    fc.record({ kind: fc.constant('d' as const), descId: u16, description: jsonText, layout: fc.constant(16 as const) }),
    fc.record({ kind: fc.constant('d' as const), descId: u32, description: jsonText, layout: fc.constant(32 as const) }),
  ),
  E: fc.record({ kind: fc.constant('E' as const), eventId: u16, name: text }),
  e: fc.record({ kind: fc.constant('e' as const), eventId: u16 }),
  X: fc.record({ kind: fc.constant('X' as const), callId: u16, eventId: u16 }),
  x: fc.record({ kind: fc.constant('x' as const), callId: u16, eventId: u16 }),
  P: fc.record({ kind: fc.constant('P' as const), eventId: u16, data: jsonText }),
  B: fc.record({ kind: fc.constant('B' as const), name: text, data: jsonText, uuid, hop: u8 }),
  U: fc.record({ kind: fc.constant('U' as const), eventId: u16 }),
  S: fc.record({ kind: fc.constant('S' as const), sessionId: u16, uuid: text }),
  s: fc.record({ kind: fc.constant('s' as const), sessionId: u16 }),
  T: fc.record({ kind: fc.constant('T' as const), tokenId: u16, token: text }),
  t: fc.record({ kind: fc.constant('t' as const), tokenId: u16 }),
};
const anyMessage = fc.oneof(...Object.values(arbitraries));
const KINDS = new Set(Object.keys(arbitraries));

/** The payload of the single frame `encodeMessage` produced, checking the frame itself. */
function payloadOf(frame: Buffer): Buffer {
  const { frames, rest } = splitFrames(frame);
  expect(rest.length).toBe(0);
  expect(frames).toHaveLength(1);
  const f = frames[0]!;
  expect(f.fin).toBe(true);
  expect(f.opcode).toBe(2);
  expect(f.rsv).toBe(0);
  expect(f.masked).toBe(false);
  expect(frame[0]).toBe(0x82);
  // minimal length form, as the reference writes
  const n = f.payload.length;
  expect(frame.length - n).toBe(n < 126 ? 2 : n < 65536 ? 4 : 10);
  return f.payload;
}

describe('codec round trip (property)', () => {
  it('has an arbitrary for each of the 17 message kinds', () => {
    expect([...KINDS].sort()).toEqual([...'VvKkDdEeXxPBUSsTt'].sort());
    expect(KINDS.size).toBe(17);
  });

  for (const [kind, arb] of Object.entries(arbitraries)) {
    it(`'${kind}': encodeMessage → one frame → decodeMessage gives the same message`, () => {
      fc.assert(fc.property(arb, (m) => {
        const payload = payloadOf(encodeMessage(m));
        expect(payload[0]).toBe(kind.charCodeAt(0));
        expect(decodeMessage(payload)).toEqual(m);
      }), { numRuns: 150 });
    });
  }

  it('every strict prefix of a message is malformed (all fields are required)', () => {
    // 'd' is left out: its descid width is guessed from the bytes, so a cut one may read as the other layout.
    const arb = anyMessage.filter((m) => m.kind !== 'd');
    fc.assert(fc.property(arb, fc.nat(), (m, cut) => {
      const payload = payloadOf(encodeMessage(m));
      const at = cut % payload.length; // 0 .. length-1: strictly shorter
      const r = decodeMessage(payload.subarray(0, at));
      expect(r.kind).toBe('malformed');
    }), { numRuns: 400 });
  });

  it('trailing bytes after a message are ignored, as the reference does', () => {
    const arb = anyMessage.filter((m) => m.kind !== 'd');
    fc.assert(fc.property(arb, fc.uint8Array({ minLength: 1, maxLength: 20 }), (m, tail) => {
      const payload = payloadOf(encodeMessage(m));
      expect(decodeMessage(Buffer.concat([payload, tail]))).toEqual(m);
    }), { numRuns: 300 });
  });
});

describe('decodeMessage never throws', () => {
  const check = (bytes: Uint8Array): void => {
    let r;
    expect(() => { r = decodeMessage(Buffer.from(bytes)); }).not.toThrow();
    const kind = (r as unknown as { kind: string }).kind;
    expect(kind === 'malformed' || KINDS.has(kind)).toBe(true);
  };

  it('on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 2000 });
  });

  it('on a known letter followed by random bytes', () => {
    const letter = fc.constantFrom(...[...KINDS].map((k) => k.charCodeAt(0)));
    fc.assert(fc.property(letter, fc.uint8Array({ maxLength: 64 }), (l, rest) => check(Buffer.concat([Buffer.from([l]), rest]))),
      { numRuns: 3000 });
  });

  it('on valid messages with random bytes flipped', () => {
    fc.assert(fc.property(anyMessage, fc.array(fc.tuple(fc.nat(), u8), { minLength: 1, maxLength: 4 }), (m, flips) => {
      const p = Buffer.from(payloadOf(encodeMessage(m)));
      for (const [at, v] of flips) p[at % p.length] = v;
      check(p);
    }), { numRuns: 1000 });
  });

  it('on string lengths near 2^32 (no huge allocation, no throw)', () => {
    const p = Buffer.from('4b0100ffffffff70696e6700', 'hex');
    expect(decodeMessage(p)).toMatchObject({ kind: 'malformed', letter: 0x4b });
    const q = Buffer.from('50010000000080', 'hex'); // P, len 0x80000000
    expect(decodeMessage(q)).toMatchObject({ kind: 'malformed', letter: 0x50 });
  });
});

describe('decodeMessage: malformed payloads', () => {
  it('empty payload and unknown letters', () => {
    expect(decodeMessage(Buffer.alloc(0))).toEqual({ kind: 'malformed', letter: -1, reason: 'empty message' });
    expect(decodeMessage(Buffer.from('5a6a756e6b', 'hex'))).toEqual({ kind: 'malformed', letter: 0x5a, reason: 'unknown letter 0x5a' });
    // 2017 letters are out of scope (wsapi-v1.md Quirks): C is unknown
    expect(decodeMessage(Buffer.from('43', 'hex'))).toMatchObject({ kind: 'malformed', letter: 0x43 });
  });

  it('a string whose last byte is not NUL is refused', () => {
    // From the real binder's capture 13: K whose verb lacks its NUL
    const p = Buffer.from('4b02000400000070696e6700000000050000006e756c6c0000000000', 'hex');
    expect(decodeMessage(p)).toEqual({ kind: 'malformed', letter: 0x4b, reason: 'string not NUL terminated' });
    // E with name "ab" but length 2 covering "ab" only
    expect(decodeMessage(Buffer.from('4501000200000061620000', 'hex'))).toMatchObject({ kind: 'malformed', reason: 'string not NUL terminated' });
  });

  it('a zero length where a string is required is refused; nullstr takes it as null', () => {
    // K with verb length 0
    const k = Buffer.from('4b010000000000000000050000006e756c6c0000000000', 'hex');
    expect(decodeMessage(k)).toEqual({ kind: 'malformed', letter: 0x4b, reason: 'empty string where one is required' });
    // k: error and info null (u32 0), data "null"
    const reply = Buffer.from('6b0100000000000000000005000000' + '6e756c6c00', 'hex');
    expect(decodeMessage(reply)).toEqual({ kind: 'k', callId: 1, error: null, info: null, data: 'null' });
    // k: data (a json, required) with length 0
    expect(decodeMessage(Buffer.from('6b01000000000000000000000000', 'hex'))).toMatchObject({ kind: 'malformed', letter: 0x6b });
    // K: creds null vs creds ""
    const nullCreds = decodeMessage(payloadOf(writeCall(1, 'v', 0, 0, 'null', null)));
    const emptyCreds = decodeMessage(payloadOf(writeCall(1, 'v', 0, 0, 'null', '')));
    expect(nullCreds).toMatchObject({ creds: null });
    expect(emptyCreds).toMatchObject({ creds: '' });
  });

  it('truncated fixed fields', () => {
    expect(decodeMessage(Buffer.from('4b01', 'hex'))).toEqual({ kind: 'malformed', letter: 0x4b, reason: 'truncated' });
    expect(decodeMessage(Buffer.from('44', 'hex'))).toMatchObject({ kind: 'malformed', letter: 0x44 });
    // V with count 2 but one version byte
    expect(decodeMessage(Buffer.from('5609144c170201', 'hex'))).toMatchObject({ kind: 'malformed', letter: 0x56 });
    // B with a 15-byte uuid
    const b = payloadOf(writeEventBroadcast('a/b', 'null', Buffer.alloc(16, 7), 3));
    expect(decodeMessage(b.subarray(0, b.length - 2))).toMatchObject({ kind: 'malformed', letter: 0x42 });
  });
});

describe('codec: layouts and encodings', () => {
  it('V and v as the native client and daemon write them', () => {
    expect(hex(writeVersionOffer([1]))).toBe('82075609144c170101');
    expect(hex(writeVersionSet(1))).toBe('82027601');
    expect(WSAPI_IDENTIFIER).toBe(0o2723012011);
    // newer binders pad the list with zeros
    expect(decodeMessage(Buffer.from('5609144c170400000100', 'hex'))).toEqual({ kind: 'V', identifier: WSAPI_IDENTIFIER, versions: [0, 0, 1, 0] });
  });

  it('d with a u16 descid (2021+) and with a u32 descid (January 2020)', () => {
    // u16: 64 | 0500 | len 5 | "null\0"
    const d16 = Buffer.from('640500050000006e756c6c00', 'hex');
    expect(decodeMessage(d16)).toEqual({ kind: 'd', descId: 5, description: 'null', layout: 16 });
    // u32: 64 | 05000000 | len 5 | "null\0"
    const d32 = Buffer.from('64050000000500' + '00006e756c6c00', 'hex');
    expect(decodeMessage(d32)).toEqual({ kind: 'd', descId: 5, description: 'null', layout: 32 });
    // The server writes the u16 form; the 32 form exists for tests.
    expect(hex(writeDescription(5, 'null'))).toBe('820c' + hex(d16));
    expect(hex(writeDescription(5, 'null', 32))).toBe('820e' + hex(d32));
    // A large description, both layouts
    const big = JSON.stringify({ openapi: '3.0.0', info: { title: 'x'.repeat(70_000) } });
    expect(decodeMessage(payloadOf(writeDescription(0x1234, big)))).toEqual({ kind: 'd', descId: 0x1234, description: big, layout: 16 });
    expect(decodeMessage(payloadOf(writeDescription(0x1234, big, 32)))).toEqual({ kind: 'd', descId: 0x1234, description: big, layout: 32 });
  });

  it('all integers little-endian inside, frame lengths big-endian outside', () => {
    const f = writeReply(0x0102, 'err', null, 'x'.repeat(300));
    expect(f[0]).toBe(0x82);
    expect(f[1]).toBe(126);
    expect(f.readUInt16BE(2)).toBe(f.length - 4);
    expect(f[4]).toBe(0x6b);
    expect(f.readUInt16LE(5)).toBe(0x0102);
    expect(f.readUInt32LE(7)).toBe(4); // "err\0"
    const big = writeReply(1, null, null, 'y'.repeat(70_000));
    expect(big[1]).toBe(127);
    expect(big.readBigUInt64BE(2)).toBe(BigInt(big.length - 10));
  });

  it('UTF-8 strings: the length counts bytes plus the NUL', () => {
    const verb = 'vérbe-✓-🚀';
    const p = payloadOf(writeCall(7, verb, 0, 0, '"ü"', null));
    expect(p.readUInt32LE(3)).toBe(Buffer.byteLength(verb) + 1);
    expect(Buffer.byteLength(verb)).toBeGreaterThan(verb.length);
    expect(decodeMessage(p)).toEqual({ kind: 'K', callId: 7, verb, sessionId: 0, tokenId: 0, args: '"ü"', creds: null });
  });

  it('every string is written as Buffer writes UTF-8 (short ASCII ones are copied without it), ids little-endian', () => {
    // The short ASCII path and Buffer's encoder must agree byte for byte, around the
    // 64-character edge too, and lone surrogates (U+FFFD, 3 bytes) must still take Buffer's.
    const text = fc.oneof(
      fc.string({ unit: 'binary-ascii', maxLength: 70 }),
      fc.string({ unit: 'grapheme', maxLength: 70 }),
      fc.string({ unit: 'binary', maxLength: 70 }),
      fc.constantFrom('x'.repeat(63), 'x'.repeat(64), 'x'.repeat(65), 'é'.repeat(64), '\ud800', 'a\udc00b'),
    );
    const cstr = (t: string | null): Buffer => {
      if (t === null) return Buffer.alloc(4);
      const bytes = Buffer.from(t, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(bytes.length + 1);
      return Buffer.concat([len, bytes, Buffer.from([0])]);
    };
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff }), text.filter((t) => t.length > 0), text, fc.option(text.filter((t) => t.length > 0)),
      (id, verb, args, creds) => {
        const ids = Buffer.alloc(6);
        ids.writeUInt16LE(id, 0);
        ids.writeUInt16LE(0xbeef, 2);
        ids.writeUInt16LE(0x1234, 4);
        const expected = Buffer.concat([Buffer.from('K'), ids.subarray(0, 2), cstr(verb), ids.subarray(2), cstr(args), cstr(creds)]);
        expect(payloadOf(writeCall(id, verb, 0xbeef, 0x1234, args, creds))).toEqual(expected);
      }), { seed: fcSeed(), numRuns: 2000 });
  });

  it('broadcast uuid must be 16 bytes', () => {
    expect(() => writeEventBroadcast('a/b', 'null', Buffer.alloc(15), 1)).toThrow(RangeError);
  });

  it('json text: invalid JSON is delivered as a string; null is written as null', () => {
    expect(parseJsonText('{"a":1}')).toEqual({ a: 1 });
    expect(parseJsonText('not json{')).toBe('not json{');
    expect(parseJsonText('null')).toBe(null);
    expect(toJsonText(undefined)).toBe('null');
    expect(toJsonText(null)).toBe('null');
    expect(toJsonText(() => 1)).toBe('null');
    expect(toJsonText({ a: [1, 'b'] })).toBe('{"a":[1,"b"]}');
  });
});

describe('codec against frames captured from real binders', () => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.resolve(here, '..', '..', '..', 'shared', 'wsapi-vectors');

  it('decodes every captured unmasked frame as the binder did, and re-encodes it byte for byte', () => {
    const files: string[] = [];
    for (const d of ['.', 'redpesk', 'seed-2020']) {
      for (const f of fs.readdirSync(path.join(root, d))) if (f.endsWith('.txt') && f !== 'README.txt') files.push(path.join(root, d, f));
    }
    expect(files.length).toBeGreaterThan(30);
    let identical = 0;
    let trailing = 0;
    let malformed = 0;
    let u32Descriptions = 0;
    for (const file of files) {
      let comment = '';
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        if (line.startsWith('#')) {
          comment = line;
          continue;
        }
        const m = /^[CS]> ([0-9a-f]+)$/.exec(line);
        if (m === null) continue;
        const { frames, rest } = splitFrames(Buffer.from(m[1]!, 'hex'));
        expect(rest.length, `${file}: ${line.slice(0, 60)}`).toBe(0);
        const f = frames[0]!;
        if (f.opcode !== 2 || !f.fin || f.masked || f.rsv !== 0) continue;
        const where = `${path.basename(file)}: ${comment.slice(0, 160)}`;
        const msg = decodeMessage(f.payload);
        if (/MALFORMED|unknown letter|empty binary/.test(comment)) {
          expect(msg.kind, where).toBe('malformed');
          malformed++;
          continue;
        }
        expect(msg.kind, where).not.toBe('malformed');
        if (msg.kind === 'd' && msg.layout === 32) u32Descriptions++;
        const again = encodeMessage(msg as Message);
        if (/TRAILING=/.test(comment)) {
          expect(hex(f.raw).slice(4)).toContain(hex(again).slice(4)); // same message, binder's trailing bytes dropped
          trailing++;
        } else {
          expect(hex(again), where).toBe(hex(f.raw));
          identical++;
        }
      }
    }
    expect(identical).toBeGreaterThan(600);
    expect(trailing).toBe(2);
    expect(malformed).toBeGreaterThan(10);
    expect(u32Descriptions).toBeGreaterThan(0); // seed-2020/s03-describe-u32.txt
  });
});
