/**
 * Codec against the captures: every C>/S> frame of every capture (AGL 2021,
 * seed 2020, redpesk) is parsed as a websocket frame here, its payload decoded
 * with decodeMessage() and compared with the capture's own decoding comment;
 * well-formed messages are re-encoded with encodeMessage() and must give the
 * captured bytes back exactly (JSON is kept as text by the codec).
 */
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, type DecodeResult } from '../../src/wsapi/codec.js';
import { DEFAULT_MAX_FRAME_PAYLOAD } from '../../src/wsapi/constants.js';
import {
  Op, Reassembler, VECTORS_DIR, buildFrame, checkAgainstComment, checkHeaderAgainstComment, framesOf, listCaptureFiles, loadCaptureFile,
  parseWsFrame, parseWsHeader, vectorsPresent, type AnyMessage, type Capture, type FrameLine,
} from '../helpers/vectors.js';

/** Every capture file the suite knows; a file added to or missing from the folder makes the inventory test fail. */
const EXPECTED_FILES = [
  '01-version-offer.txt', '02-call-success.txt', '03-call-error.txt', '04-describe.txt', '05-events-subscribe-push.txt',
  '06-event-unexpected.txt', '07-broadcast.txt', '08-session-token.txt', '09-session-token-raw.txt', '10-daemon-as-client.txt',
  '11-call-without-version.txt', '12-version-bad.txt', '13-malformed-binary.txt', '14-ws-level.txt', '15-too-large.txt',
  '16-native-client-vs-fake-server.txt',
  'seed-2020/s01-version.txt', 'seed-2020/s02-ping.txt', 'seed-2020/s03-describe-u32.txt', 'seed-2020/s04-events.txt',
  'seed-2020/s05-unknown-session.txt', 'seed-2020/s06-session-drop.txt', 'seed-2020/s07-token-drop.txt',
  'redpesk/hello3-c10-redpesk-binder-as-client.txt', 'redpesk/hello3-s02-ping.txt', 'redpesk/hello3-s03-describe.txt',
  'redpesk/hello3-s04-events.txt', 'redpesk/hello3-s05-unknown-session.txt', 'redpesk/hello3-s08-ws-level-nofrag.txt',
  'redpesk/hello3-s09-fragmented.txt', 'redpesk/hello3-s11-creds.txt', 'redpesk/hello4-r05-session-token-raw.txt',
  'redpesk/hello4-r07-malformed-binary.txt', 'redpesk/hello4-r08-ws-level.txt', 'redpesk/hello4-s01-version.txt',
  'redpesk/hello4-s02-ping.txt', 'redpesk/hello4-s03-describe.txt', 'redpesk/hello4-s04-events.txt',
  'redpesk/hello4-s05-unknown-session.txt',
];

function decodeSafely(payload: Buffer): DecodeResult | Error {
  try {
    return decodeMessage(payload);
  } catch (err) {
    return err as Error;
  }
}

/** Checks one frame line; returns the differences found. */
function checkFrame(cap: Capture, f: FrameLine): string[] {
  const where = `${f.file}:${f.line}`;
  const diffs: string[] = [];
  if (f.bytes === null) return [`${where}: elided frame could not be rebuilt`];
  const w = parseWsFrame(f.bytes);
  if (w === null || w.raw.length !== f.bytes.length) return [`${where}: not exactly one complete frame`];
  for (const d of checkHeaderAgainstComment(w, f.header)) diffs.push(`${where}: ${d}`);
  const d = f.decoded;
  switch (d.what) {
    case 'message':
    case 'malformed':
    case 'unknown':
    case 'empty': {
      if (w.opcode !== Op.BINARY) {
        diffs.push(`${where}: a decoded message in a non-binary frame`);
        break;
      }
      const m = decodeSafely(w.payload);
      if (m instanceof Error) {
        diffs.push(`${where}: decodeMessage threw ${m.message}`);
        break;
      }
      for (const x of checkAgainstComment(m as unknown as AnyMessage, d, w.payload)) diffs.push(`${where}: ${x}`);
      if (m.kind === 'malformed' || !w.fin) break;
      // Re-encoding: the codec writes unmasked, RSV-clear frames with the shortest length form.
      const encoded = encodeMessage(m);
      const trailing = d.what === 'message' ? d.fields.get('TRAILING') : undefined;
      let want: Buffer;
      if (trailing !== undefined && trailing.type === 'raw') {
        want = buildFrame(Op.BINARY, w.payload.subarray(0, w.payload.length - trailing.text.length / 2));
      } else if (w.masked || w.rsv !== 0) {
        want = buildFrame(Op.BINARY, w.payload);
      } else {
        want = f.bytes;
      }
      if (!encoded.equals(want)) {
        diffs.push(`${where}: re-encoded ${m.kind} differs:\n  captured ${want.toString('hex').slice(0, 200)}\n  encoded  ${encoded.toString('hex').slice(0, 200)}`);
      }
      // The generation tells the layout of d: u32 descid in the seed, u16 afterwards.
      if (m.kind === 'd') {
        const layout = cap.generation === 'seed-2020' ? 32 : 16;
        if (m.layout !== layout) diffs.push(`${where}: d layout ${m.layout}, expected ${layout} for ${cap.generation}`);
      }
      break;
    }
    case 'continuation':
      if (w.opcode !== Op.CONT) diffs.push(`${where}: continuation comment on opcode ${w.opcode}`);
      // The comment of an elided frame shows only the first 32 bytes of its payload.
      if (f.elided ? !w.payload.toString('hex').startsWith(d.hex) : w.payload.toString('hex') !== d.hex) {
        diffs.push(`${where}: continuation payload differs`);
      }
      break;
    case 'payload':
      if (w.payload.toString('hex') !== d.hex) diffs.push(`${where}: payload differs`);
      break;
    case 'close': {
      if (w.opcode !== Op.CLOSE) diffs.push(`${where}: close comment on opcode ${w.opcode}`);
      const code = w.payload.length >= 2 ? w.payload.readUInt16BE(0) : null;
      if (code !== d.code) diffs.push(`${where}: close code ${code}, comment ${d.code}`);
      if (w.payload.subarray(2).toString('utf8') !== d.reason) diffs.push(`${where}: close reason differs`);
      break;
    }
    case 'text':
      if (w.opcode !== Op.TEXT || w.payload.toString('latin1') !== d.text) diffs.push(`${where}: text frame differs`);
      break;
  }
  return diffs;
}

/** Fragmented messages (BINARY noFIN, CONT..., CONT FIN) reassemble into a well-formed message. */
function checkReassembly(cap: Capture): string[] {
  const diffs: string[] = [];
  for (const conn of cap.conns) {
    for (const dir of ['C', 'S'] as const) {
      const r = new Reassembler();
      let start: FrameLine | null = null;
      for (const f of framesOf(cap, conn, dir)) {
        const w = parseWsFrame(f.bytes!)!;
        if (w.opcode === Op.BINARY) start = w.fin ? null : f;
        const whole = r.push(w);
        if (whole === null || start === null || w.opcode !== Op.CONT) continue;
        const m = decodeSafely(whole);
        if (m instanceof Error || m.kind === 'malformed') {
          diffs.push(`${f.file}:${start.line}: reassembled message does not decode`);
        } else if (!encodeMessage(m).equals(buildFrame(Op.BINARY, whole))) {
          diffs.push(`${f.file}:${start.line}: reassembled message does not re-encode to its bytes`);
        }
      }
    }
  }
  return diffs;
}

describe('wsapi vectors folder', () => {
  it('is present at ../shared/wsapi-vectors (relative to the project root) with every known capture', () => {
    expect(vectorsPresent(), `missing ${VECTORS_DIR}`).toBe(true);
    expect(listCaptureFiles()).toEqual(EXPECTED_FILES);
  });
});

const files = listCaptureFiles();

describe.each(files)('codec vs %s', (file) => {
  const cf = loadCaptureFile(file);

  it('parses into captures whose frames all carry a decoding comment', () => {
    expect(cf.captures.length).toBeGreaterThan(0);
    for (const c of cf.captures) expect(framesOf(c).length, c.name).toBeGreaterThan(0);
  });

  it.each(cf.captures.map((c) => [c.name, c] as const))('capture %s: every frame decodes as its comment says and re-encodes byte for byte', (_name, cap) => {
    const diffs: string[] = [];
    for (const f of framesOf(cap)) diffs.push(...checkFrame(cap, f));
    diffs.push(...checkReassembly(cap));
    expect(diffs).toEqual([]);
  });
});

describe('codec: generation-specific layouts and edge cases', () => {
  const d16: number[] = [];
  const d32: Array<{ id: number; layout: number }> = [];
  for (const file of files) {
    for (const c of loadCaptureFile(file).captures) {
      for (const f of framesOf(c, undefined, 'S')) {
        const w = f.bytes ? parseWsFrame(f.bytes) : null;
        if (w === null || w.payload[0] !== 0x64) continue;
        const m = decodeMessage(w.payload);
        if (m.kind !== 'd') continue;
        if (c.generation === 'seed-2020') d32.push({ id: m.descId, layout: m.layout });
        else d16.push(m.layout);
      }
    }
  }

  it('seed-2020 d frames (u32 descid) decode with layout 32 and the right ids', () => {
    // s03: hello (1, 0xBEEF), mininull (1, 0x1234, 0xFFFF), minispec (2), hello over TCP (3)
    expect(d32).toEqual([1, 0xbeef, 1, 0x1234, 0xffff, 2, 3].map((id) => ({ id, layout: 32 })));
  });

  it('2021 and redpesk d frames decode with layout 16', () => {
    expect(d16.length).toBeGreaterThanOrEqual(10);
    expect(new Set(d16)).toEqual(new Set([16]));
  });

  it('u32 d is re-encoded in its own layout, and a u16 d of the same description is 2 bytes shorter', () => {
    const cf = loadCaptureFile('seed-2020/s03-describe-u32.txt');
    const f = framesOf(cf.captures[0]!, 2, 'S').find((x) => x.bytes![2] === 0x64)!;
    const m = decodeMessage(parseWsFrame(f.bytes!)!.payload);
    if (m.kind !== 'd') throw new Error('not a d');
    expect(m).toMatchObject({ descId: 1, description: 'null', layout: 32 });
    expect(encodeMessage(m).equals(f.bytes!)).toBe(true);
    const u16 = encodeMessage({ ...m, layout: 16 });
    expect(u16.toString('hex')).toBe('820c640100050000006e756c6c00');
  });

  it('malformed payloads (13, hello4-r07, truncated V of 12) decode to kind malformed without throwing', () => {
    const seen: string[] = [];
    for (const file of ['13-malformed-binary.txt', 'redpesk/hello4-r07-malformed-binary.txt', '12-version-bad.txt', '14-ws-level.txt']) {
      for (const c of loadCaptureFile(file).captures) {
        for (const f of framesOf(c)) {
          if (f.decoded.what !== 'malformed' && f.decoded.what !== 'unknown' && f.decoded.what !== 'empty') continue;
          const m = decodeSafely(parseWsFrame(f.bytes!)!.payload);
          expect(m, `${file}:${f.line}`).not.toBeInstanceOf(Error);
          expect((m as DecodeResult).kind, `${file}:${f.line}`).toBe('malformed');
          seen.push(f.decoded.what === 'malformed' ? f.decoded.letter : f.decoded.what);
        }
      }
    }
    // Z, empty, K x2, D, S, T in 13 and again in hello4-r07; V truncated in 12; the first fragments of 14
    expect(seen.filter((x) => x === 'V')).toHaveLength(1);
    expect(seen.filter((x) => x === 'unknown')).toHaveLength(2);
    expect(seen.filter((x) => x === 'empty')).toHaveLength(2);
    expect(seen.filter((x) => x === 'D' || x === 'S' || x === 'T')).toHaveLength(6);
  });

  it('the four fragmented calls of the captures (14, 15, hello3-s09, hello4-r08) reassemble into K messages', () => {
    const calls: string[] = [];
    for (const file of files) {
      for (const c of loadCaptureFile(file).captures) {
        for (const conn of c.conns) {
          const r = new Reassembler();
          for (const f of framesOf(c, conn, 'C')) {
            const w = parseWsFrame(f.bytes!)!;
            const whole = r.push(w);
            if (whole === null || w.opcode !== Op.CONT) continue;
            const m = decodeMessage(whole);
            calls.push(m.kind === 'K' ? `${file}:${m.callId}:${m.verb}:${m.args.length}` : `${file}:${m.kind}`);
          }
        }
      }
    }
    expect(calls).toEqual([
      '14-ws-level.txt:2:ping:12', '15-too-large.txt:2:ping:1500002',
      'redpesk/hello3-s09-fragmented.txt:2:ping:12', 'redpesk/hello4-r08-ws-level.txt:2:ping:12',
    ]);
  });

  it('every truncation of every captured message decodes without throwing', () => {
    let n = 0;
    for (const file of files) {
      for (const c of loadCaptureFile(file).captures) {
        for (const f of framesOf(c)) {
          const w = f.bytes ? parseWsFrame(f.bytes) : null;
          if (w === null || w.opcode !== Op.BINARY || w.payload.length > 4096) continue;
          for (let cut = 0; cut < w.payload.length; cut++) {
            const m = decodeSafely(w.payload.subarray(0, cut));
            if (m instanceof Error) throw new Error(`${file}:${f.line} cut at ${cut}: ${m.message}`);
            n++;
          }
        }
      }
    }
    expect(n).toBeGreaterThan(10_000);
  });

  it('elided frames of 15 and 16 are rebuilt and match the prefix, suffix and length the capture keeps', () => {
    const rebuilt: string[] = [];
    for (const file of ['15-too-large.txt', '16-native-client-vs-fake-server.txt']) {
      for (const c of loadCaptureFile(file).captures) {
        for (const f of framesOf(c)) {
          if (f.elided === null) continue;
          expect(f.bytes, `${file}:${f.line}`).not.toBeNull();
          const b = f.bytes!;
          expect(b.length, `${file}:${f.line}`).toBe(f.elided.totalLength);
          expect(b.subarray(0, f.elided.prefix.length).equals(f.elided.prefix), `${file}:${f.line} prefix`).toBe(true);
          expect(b.subarray(b.length - f.elided.suffix.length).equals(f.elided.suffix), `${file}:${f.line} suffix`).toBe(true);
          rebuilt.push(`${f.dir}${parseWsHeader(b)!.length}`);
        }
      }
    }
    // 15: K 1048500 + reply, K 1048501, two fragments + 1.5 MB reply, K 600027 + 1.2 MB reply; 16: reply 1048501
    expect(rebuilt).toEqual(['C1048500', 'S1048554', 'C1048501', 'C750013', 'C750014', 'S1500081', 'C600027', 'S1200081', 'S1048501']);
  });

  it('the unframed bytes of 15 conn 3 announce a 2^32-byte frame, beyond the 1048500 limit', () => {
    const c = loadCaptureFile('15-too-large.txt').captures[0]!;
    const t = c.events.find((e) => e.type === 'trailing');
    if (t === undefined || t.type !== 'trailing') throw new Error('no trailing bytes');
    expect(t.conn).toBe(3);
    const h = parseWsHeader(t.bytes)!;
    expect(h.length).toBe(2 ** 32);
    expect(h.length).toBeGreaterThan(DEFAULT_MAX_FRAME_PAYLOAD);
  });
});
