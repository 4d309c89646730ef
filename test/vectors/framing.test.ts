/**
 * FrameReceiver against the captures: each direction of each captured
 * connection is fed through src/wsapi/frame-receiver.ts (with the chunk
 * boundaries of raw/*.jsonl where they exist, and also frame by frame, all at
 * once and byte by byte) and must deliver the same messages, pings, pongs and
 * closes the capture holds, and stop with the same close code the captured
 * peer sent on a ws-level error (text → 1003; reserved opcode, RSV bits,
 * continuation misuse, control frame > 125 → 1002; header beyond 1048500 →
 * 1009, before the payload).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME_PAYLOAD } from '../../src/wsapi/constants.js';
import { FrameReceiver, type FrameHandler } from '../../src/wsapi/frame-receiver.js';
import {
  Op, eventsOf, framesOf, listCaptureFiles, listRawFiles, loadCaptureFile, loadRaw, parseWsFrame, parseWsHeader,
  type Capture, type CaptureEvent,
} from '../helpers/vectors.js';

const sha = (b: Buffer): string => createHash('sha1').update(b).digest('hex').slice(0, 12);
const describePayload = (b: Buffer): string => (b.length <= 64 ? b.toString('hex') : `${b.length}:${sha(b)}`);

/** Runs a FrameReceiver over chunks and records what it reports, one line per callback. */
function receive(chunks: Buffer[]): string[] {
  const out: string[] = [];
  const handler: FrameHandler = {
    onMessage: (p) => out.push(`message ${describePayload(p)}`),
    onPing: (p) => out.push(`ping ${p.toString('hex')}`),
    onPong: (p) => out.push(`pong ${p.toString('hex')}`),
    onClose: (code, reason) => out.push(`close ${code ?? '-'} ${reason}`),
    onProtocolError: (code) => out.push(`error ${code}`),
  };
  const r = new FrameReceiver(handler);
  for (const c of chunks) r.push(Buffer.from(c));
  return out;
}

interface Stream {
  conn: number;
  dir: 'C' | 'S';
  /** Frame bytes in order (trailing unframed bytes last). */
  pieces: Buffer[];
  /** Capture line of each piece. */
  lines: number[];
  /** Index of each piece in eventsOf(capture, conn). */
  at: number[];
}

function streamsOf(c: Capture): Stream[] {
  const out: Stream[] = [];
  for (const conn of c.conns) {
    for (const dir of ['C', 'S'] as const) {
      const s: Stream = { conn, dir, pieces: [], lines: [], at: [] };
      eventsOf(c, conn).forEach((e, i) => {
        if (e.type === 'frame' && e.frame.dir === dir) {
          s.pieces.push(e.frame.bytes!);
          s.lines.push(e.frame.line);
          s.at.push(i);
        } else if (e.type === 'trailing' && e.dir === dir) {
          s.pieces.push(e.bytes);
          s.lines.push(e.line);
          s.at.push(i);
        }
      });
      if (s.pieces.length > 0) out.push(s);
    }
  }
  return out;
}

/**
 * What a receiver following wsapi-v1.md reports for these frames, worked out
 * from the frame headers (an oracle independent of FrameReceiver's code),
 * with the index of the piece that stops it, if any.
 */
function oracle(pieces: Buffer[]): { events: string[]; stopAt: number | null; errorCode: number | null } {
  const events: string[] = [];
  let frag: Buffer[] | null = null;
  for (let i = 0; i < pieces.length; i++) {
    const h = parseWsHeader(pieces[i]!);
    if (h === null) return { events, stopAt: null, errorCode: null };
    const error = (code: number) => {
      events.push(`error ${code}`);
      return { events, stopAt: i, errorCode: code };
    };
    const control = (h.opcode & 8) !== 0;
    if (h.rsv !== 0) return error(1002);
    if (h.opcode === Op.TEXT) return error(1003);
    if (![Op.CONT, Op.BINARY, Op.CLOSE, Op.PING, Op.PONG].includes(h.opcode as 0)) return error(1002);
    if (h.opcode === Op.CONT && frag === null) return error(1002);
    if (h.opcode === Op.BINARY && frag !== null) return error(1002);
    if (control && (!h.fin || h.length > 125)) return error(1002);
    if (h.length > DEFAULT_MAX_FRAME_PAYLOAD) return error(1009);
    const f = parseWsFrame(pieces[i]!);
    if (f === null) return { events, stopAt: null, errorCode: null }; // incomplete last piece
    if (h.opcode === Op.PING) events.push(`ping ${f.payload.toString('hex')}`);
    else if (h.opcode === Op.PONG) events.push(`pong ${f.payload.toString('hex')}`);
    else if (h.opcode === Op.CLOSE) {
      const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : '-';
      events.push(`close ${code} ${f.payload.length > 2 ? f.payload.toString('utf8', 2) : ''}`);
      return { events, stopAt: i, errorCode: null };
    } else if (h.opcode === Op.BINARY && h.fin) events.push(`message ${describePayload(f.payload)}`);
    else if (h.opcode === Op.BINARY) frag = [f.payload];
    else {
      frag!.push(f.payload);
      if (h.fin) {
        events.push(`message ${describePayload(Buffer.concat(frag!))}`);
        frag = null;
      }
    }
  }
  return { events, stopAt: null, errorCode: null };
}

/** The close code the other side of the capture sent after event `at` on `conn`, if it sent one. */
function peerCloseAfter(c: Capture, conn: number, dir: 'C' | 'S', at: number): number | null | 'none' {
  const other = dir === 'C' ? 'S' : 'C';
  for (const e of (eventsOf(c, conn) as CaptureEvent[]).slice(at + 1)) {
    if (e.type !== 'frame' || e.frame.dir !== other) continue;
    const f = parseWsFrame(e.frame.bytes!);
    if (f !== null && f.opcode === Op.CLOSE) return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
  }
  return 'none';
}

/**
 * Where the captured peer did not answer a ws-level error with a close frame, and why.
 * redpesk hello4-r08 conn 6: a new BINARY while a fragmented message is pending; the redpesk
 * binder never leaves the reading state after a non-final frame (hello3-s09), so it never saw it.
 */
const NO_CLOSE_FROM_PEER: Record<string, string> = {
  'redpesk/hello4-r08-ws-level.txt#6C': 'redpesk stalls on fragmented messages (hello3-s09)',
};

const files = listCaptureFiles();

describe.each(files)('FrameReceiver vs %s', (file) => {
  for (const cap of loadCaptureFile(file).captures) {
    const streams = streamsOf(cap);

    it(`${cap.name}: every stream delivers the captured frames, fed whole, frame by frame and byte by byte`, () => {
      expect(streams.length).toBeGreaterThan(0);
      for (const s of streams) {
        const what = `${file} conn ${s.conn} ${s.dir}>`;
        const want = oracle(s.pieces);
        const all = Buffer.concat(s.pieces);
        expect(receive(s.pieces), `${what} frame by frame`).toEqual(want.events);
        expect(receive([all]), `${what} in one chunk`).toEqual(want.events);
        if (all.length <= 64 * 1024) {
          const bytes: Buffer[] = [];
          for (let i = 0; i < all.length; i++) bytes.push(all.subarray(i, i + 1));
          expect(receive(bytes), `${what} byte by byte`).toEqual(want.events);
        }
      }
    });

    it(`${cap.name}: ws-level errors get the close code the captured peer sent`, () => {
      for (const s of streams) {
        const want = oracle(s.pieces);
        if (want.errorCode === null) continue;
        // Only a native endpoint's answer tells something: the native server receives the C> streams,
        // except in 16 where the server is a scripted fake and the native client receives the S> stream.
        // (The raw Python client of the r* captures does not enforce the limit on the 1.5 MB replies of 15.)
        const nativeReceiver = file.startsWith('16-') ? s.dir === 'S' : s.dir === 'C';
        if (!nativeReceiver) continue;
        const key = `${file}#${s.conn}${s.dir}`;
        const peer = peerCloseAfter(cap, s.conn, s.dir, s.at[want.stopAt!]!);
        if (key in NO_CLOSE_FROM_PEER) {
          expect(peer, key).toBe('none');
        } else {
          expect(peer, `${file}:${s.lines[want.stopAt!]} conn ${s.conn}`).toBe(want.errorCode);
        }
      }
      // Conversely, every close the capturing peers sent with an error code answers a stream error found here.
      for (const s of streams) {
        const other = s.dir === 'C' ? 'S' : 'C';
        for (const f of framesOf(cap, s.conn, other)) {
          const w = parseWsFrame(f.bytes!);
          if (w === null || w.opcode !== Op.CLOSE || w.payload.length < 2) continue;
          const code = w.payload.readUInt16BE(0);
          if (code === 1000) continue;
          expect(oracle(s.pieces).errorCode, `${file}:${f.line}`).toBe(code);
        }
      }
    });

    const raw = cap.generation === '2021' ? loadRaw(cap.rawName) : null;
    if (raw !== null) {
      it(`${cap.name}: raw/${cap.rawName}.jsonl chunks hold the same bytes and deliver the same frames`, () => {
        for (const s of streams) {
          const chunks = raw.filter((r) => r.conn === s.conn && r.dir === `${s.dir}>`).map((r) => Buffer.from(r.hex, 'hex'));
          const what = `raw ${cap.rawName} conn ${s.conn} ${s.dir}>`;
          expect(Buffer.concat(chunks).toString('hex'), what).toBe(Buffer.concat(s.pieces).toString('hex'));
          expect(receive(chunks), what).toEqual(oracle(s.pieces).events);
        }
      });
    }
  }
});

describe('FrameReceiver: the 1048500-byte limit (15-too-large)', () => {
  const cap = loadCaptureFile('15-too-large.txt').captures[0]!;
  const client = (conn: number) => framesOf(cap, conn, 'C').map((f) => f.bytes!);

  it('a 1048500-byte payload is accepted', () => {
    const [, big] = client(1);
    expect(parseWsHeader(big!)!.length).toBe(1_048_500);
    expect(receive([big!])).toEqual([`message ${describePayload(parseWsFrame(big!)!.payload)}`]);
  });

  it('a 1048501-byte header is refused with 1009 before any payload byte', () => {
    const [, big] = client(2);
    const h = parseWsHeader(big!)!;
    expect(h.length).toBe(1_048_501);
    expect(receive([big!.subarray(0, h.headerLength)])).toEqual(['error 1009']);
    // Even when only the length bytes of the header have arrived.
    expect(receive([big!.subarray(0, 2), big!.subarray(2, h.headerLength)])).toEqual(['error 1009']);
  });

  it('the 2^32 header of conn 3 is refused with 1009 at once', () => {
    const t = cap.events.find((e) => e.type === 'trailing');
    if (t?.type !== 'trailing') throw new Error('no trailing bytes');
    expect(receive([t.bytes])).toEqual(['error 1009']);
  });

  it('a 1.5 MB message in two fragments is accepted: the limit is per frame', () => {
    const frags = client(4).slice(1);
    expect(frags).toHaveLength(2);
    const whole = Buffer.concat(frags.map((f) => parseWsFrame(f)!.payload));
    expect(whole.length).toBe(1_500_027);
    expect(receive(frags)).toEqual([`message ${describePayload(whole)}`]);
  });

  it('the native client refused the fake server\'s 1048501-byte reply with 1009 (16 f-too-large)', () => {
    const c = loadCaptureFile('16-native-client-vs-fake-server.txt').captures.find((x) => x.name === 'f-too-large')!;
    const big = framesOf(c, 1, 'S').map((f) => f.bytes!).find((b) => b.length > 1_000_000)!;
    expect(receive([big.subarray(0, 10)])).toEqual(['error 1009']);
    expect(framesOf(c, 1, 'C').at(-1)!.bytes!.toString('hex')).toBe('880203f1');
  });
});

describe('FrameReceiver: coverage of the ws-level error cases', () => {
  it('the captures hold every kind of ws-level error, each answered by a native peer with its close code', () => {
    const seen: string[] = [];
    for (const file of files) {
      for (const cap of loadCaptureFile(file).captures) {
        for (const s of streamsOf(cap)) {
          const want = oracle(s.pieces);
          if (want.errorCode === null) continue;
          const peer = peerCloseAfter(cap, s.conn, s.dir, s.at[want.stopAt!]!);
          if (peer === want.errorCode) seen.push(`${file.replace(/\/.*/, '')}:${want.errorCode}`);
        }
      }
    }
    // 2021 r08: text, op3, RSV, CONT alone, BINARY inside a fragmented message, PING of 126; r09: 1048501, 2^32;
    // 16: the native client's 1009; redpesk hello4-r08: the same five as 2021 but the fragment case.
    expect(seen.sort()).toEqual([
      '15-too-large.txt:1009', '15-too-large.txt:1009',
      '16-native-client-vs-fake-server.txt:1009',
      ...['1002', '1002', '1002', '1002', '1002', '1003'].map((c) => `14-ws-level.txt:${c}`),
      ...['1002', '1002', '1002', '1002', '1003'].map((c) => `redpesk:${c}`),
    ].sort());
  });
});

describe('FrameReceiver: raw/*.jsonl', () => {
  it('every raw file belongs to a 2021 capture (so every one of them is fed to the receiver above)', () => {
    const names = files.filter((f) => !f.includes('/')).flatMap((f) => loadCaptureFile(f).captures.map((c) => c.rawName));
    const raws = listRawFiles();
    expect(raws.length).toBe(22);
    for (const r of raws) expect(names, r).toContain(r);
  });
});
