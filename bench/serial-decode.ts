/**
 * Serial protocol decode throughput, one core, no I/O.
 *
 *   node dist/bench/serial-decode.js [--frames N] [--rounds R] [--only NAME]
 *
 * Each section decodes a pre-built Buffer of typical traffic fed in 4 KiB
 * chunks, as a serial port delivers it, and is compared with a baseline over
 * the same bytes: a bare scan counting line terminators, the least any
 * decoder must do per byte, so the ratio says what decoding costs on top.
 * Best of R rounds. Ends with one summary line.
 *
 * Sections are entries of SECTIONS ({ name, run }): slcan, COBS+CRC16 with
 * JSON payloads, NDJSON. COBS/NDJSON run on N/4 messages (they are larger).
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { encodeFrame, SlcanDecoder } from '../src/serial/slcan-codec.js';
import { CobsDecoder, decodePayload, encodeFrame as cobsFrame } from '../src/serial/cobs-codec.js';
import { NdjsonDecoder, encodeLine } from '../src/serial/ndjson-codec.js';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '2000000' }, rounds: { type: 'string', default: '3' }, only: { type: 'string' } } });
const N = Number(values.frames);
const ROUNDS = Number(values.rounds);
const CHUNK = 4096;

interface SectionResult {
  /** Messages decoded per second by the codec (best round). */
  perSecond: number;
  /** Messages per second of the baseline scan over the same bytes. */
  baselinePerSecond: number;
  bytes: number;
  /** A value derived from the decoded content, printed so the work cannot be optimised away. */
  check: number;
}

interface Section {
  name: string;
  run(): SectionResult;
}

function chunksOf(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += CHUNK) out.push(buf.subarray(i, i + CHUNK));
  return out;
}

/** Best of ROUNDS: messages / seconds. */
function best(messages: number, fn: () => void): number {
  let bestS = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    bestS = Math.min(bestS, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return messages / bestS;
}

/** Counts one terminator byte over all chunks: the baseline of every line/frame protocol. */
function scanCount(chunks: Buffer[], terminator: number): number {
  let n = 0;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++) if (c[i] === terminator) n++;
  }
  return n;
}

/** Typical bus traffic with Z1 on: 70% standard frames with 8 bytes, 20% extended (J1939-like), 10% short standard frames. */
function slcanTraffic(count: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const k = i % 10;
    const data = Buffer.alloc(k === 9 ? 2 : 8);
    for (let j = 0; j < data.length; j++) data[j] = (i * 31 + j * 7) & 0xff;
    const line = encodeFrame(k >= 7 && k < 9 ? { id: 0x18fef100 + (i & 0xff), extended: true, data } : { id: 0x100 + (i & 0x3ff), data });
    // encodeFrame writes no timestamp (transmit side); append the 4 hex digits a Z1 adapter adds before the CR.
    const ts = Buffer.from((i % 60000).toString(16).toUpperCase().padStart(4, '0'), 'latin1');
    parts.push(line.subarray(0, line.length - 1), ts, line.subarray(line.length - 1));
  }
  return Buffer.concat(parts);
}

const SECTIONS: Section[] = [
  {
    name: 'slcan',
    run() {
      const buf = slcanTraffic(N);
      const chunks = chunksOf(buf);
      let decoded = 0;
      let check = 0;
      const perSecond = best(N, () => {
        let frames = 0;
        let sum = 0;
        // Touch id, data and timestamp so the decoded frames are really used, as a consumer would.
        const dec = new SlcanDecoder({ onItem: (item) => {
          if (item.kind !== 'frame') return;
          frames++;
          sum = (sum + item.frame.id + item.frame.data[item.frame.dlc - 1]! + (item.frame.timestamp ?? 0)) | 0;
        } });
        for (const c of chunks) dec.push(c);
        decoded = frames;
        check = sum;
      });
      if (decoded !== N) throw new Error(`slcan bench: decoded ${decoded} frames of ${N}`);
      let counted = 0;
      const baselinePerSecond = best(N, () => { counted = scanCount(chunks, 0x0d); });
      if (counted !== N) throw new Error(`slcan baseline: counted ${counted} CRs of ${N}`);
      return { perSecond, baselinePerSecond, bytes: buf.length, check };
    },
  },
  {
    name: 'cobs',
    run() {
      const n = Math.floor(N / 4);
      const frames: Buffer[] = [];
      for (let i = 0; i < n; i++) frames.push(cobsFrame(Buffer.from(JSON.stringify({ id: i & 0xff, rpm: 1500 + (i % 900), t: i })), { crc: 'crc16' }));
      const buf = Buffer.concat(frames);
      const chunks = chunksOf(buf);
      let decoded = 0;
      let check = 0;
      const perSecond = best(n, () => {
        const dec = new CobsDecoder({ crc: 'crc16' });
        let count = 0;
        let sum = 0;
        for (const c of chunks) {
          for (const payload of dec.push(c)) {
            const r = decodePayload(payload, 'json');
            if (r.ok) sum = (sum + (r.value as { rpm: number }).rpm) | 0;
            count++;
          }
        }
        decoded = count;
        check = sum;
      });
      if (decoded !== n) throw new Error(`cobs bench: decoded ${decoded} of ${n}`);
      const baselinePerSecond = best(n, () => { scanCount(chunks, 0x00); });
      return { perSecond, baselinePerSecond, bytes: buf.length * (N / n), check };
    },
  },
  {
    name: 'ndjson',
    run() {
      const n = Math.floor(N / 4);
      const lines: Buffer[] = [];
      for (let i = 0; i < n; i++) lines.push(encodeLine({ id: i & 0xff, rpm: 1500 + (i % 900), t: i }));
      const buf = Buffer.concat(lines);
      const chunks = chunksOf(buf);
      let decoded = 0;
      let check = 0;
      const perSecond = best(n, () => {
        const dec = new NdjsonDecoder();
        let count = 0;
        let sum = 0;
        for (const c of chunks) {
          for (const v of dec.push(c)) {
            sum = (sum + (v as { rpm: number }).rpm) | 0;
            count++;
          }
        }
        decoded = count;
        check = sum;
      });
      if (decoded !== n) throw new Error(`ndjson bench: decoded ${decoded} of ${n}`);
      const baselinePerSecond = best(n, () => { scanCount(chunks, 0x0a); });
      return { perSecond, baselinePerSecond, bytes: buf.length * (N / n), check };
    },
  },
];

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
console.log(`serial decode: ${N} messages per section, ${CHUNK}-byte chunks, best of ${ROUNDS}, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}`);
const summary: string[] = [];
for (const s of SECTIONS) {
  if (values.only && values.only !== s.name) continue;
  const r = s.run();
  const ratio = r.baselinePerSecond / r.perSecond;
  console.log(`${s.name.padEnd(8)} ${fmt(r.perSecond).padStart(12)} msg/s  (${(r.perSecond * r.bytes / N / 1e6).toFixed(1)} MB/s)   baseline scan ${fmt(r.baselinePerSecond).padStart(12)} msg/s   baseline/codec ${ratio.toFixed(2)}×   (check ${r.check})`);
  summary.push(`${s.name} ${fmt(r.perSecond)}/s (${ratio.toFixed(2)}× baseline)`);
}
console.log(`summary: ${summary.join(', ')}`);
