/**
 * Bursts of line noise for robustness tests (`--noise N`). Each burst is
 * built so that the receiving codec is guaranteed to reject it (a random
 * burst could, once in a while, happen to be a valid message and make a test
 * flaky) and ends on the protocol's own delimiter, so it costs no valid
 * frame: the receiver must count it as rejected and keep decoding.
 *
 * The bytes come from a seeded generator: a failing run can be replayed.
 */
import { cobsDecode, cobsEncode, encodeFrame as encodeCobsFrame, type CrcKind } from '../../serial/cobs-codec.js';

/** xorshift32: tiny, fast, good enough for noise. */
export class NoiseRandom {
  private state: number;
  constructor(seed = 0x2545f491) {
    this.state = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + (this.next() % (hi - lo + 1));
  }
  /** `n` random bytes none of which is in `excluded`. */
  bytes(n: number, excluded: readonly number[]): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) {
      let b: number;
      do b = this.next() & 0xff; while (excluded.includes(b));
      out[i] = b;
    }
    return out;
  }
}

const CR = 0x0d;
const BEL = 0x07;
const LF = 0x0a;

/**
 * slcan: a line starting with '#' (no slcan message starts so: rejected as
 * 'unknown', or 'too-long' past 30 bytes), random bytes without CR or BEL (a
 * BEL would read as an error reply), then CR.
 */
export function slcanGarbage(rng: NoiseRandom): Buffer {
  return Buffer.concat([Buffer.from('#'), rng.bytes(rng.between(3, 40), [CR, BEL]), Buffer.from([CR])]);
}

/**
 * COBS: alternately a block that is not valid COBS (a 0xFF code announcing
 * 254 data bytes in a shorter block: 'cobs-invalid') and a well-formed frame
 * whose CRC has one bit flipped ('crc-mismatch'). Both end with 0x00.
 */
export function cobsGarbage(rng: NoiseRandom, crc: CrcKind): Buffer {
  if (rng.next() % 2 === 0) {
    return Buffer.concat([Buffer.from([0xff]), rng.bytes(rng.between(3, 40), [0x00]), Buffer.from([0x00])]);
  }
  // A good frame, unstuffed to payload ‖ CRC, one payload bit flipped, stuffed again:
  // valid COBS whose CRC no longer matches.
  const payload = rng.bytes(rng.between(1, 40), []);
  const good = encodeCobsFrame(payload, { crc });
  const unstuffed = Buffer.from(cobsDecode(good.subarray(0, good.length - 1))!);
  const bit = rng.between(0, payload.length * 8 - 1);
  unstuffed[bit >> 3]! ^= 1 << (bit & 7);
  return Buffer.concat([cobsEncode(unstuffed), Buffer.from([0x00])]);
}

/** NDJSON: '#' then random bytes without LF (invalid JSON, sometimes invalid UTF-8 too), then LF. */
export function ndjsonGarbage(rng: NoiseRandom): Buffer {
  return Buffer.concat([Buffer.from('#'), rng.bytes(rng.between(3, 60), [LF]), Buffer.from([LF])]);
}
