/**
 * How the JSON and raw ECUs put messages on the wire: the three framings of
 * docs/ecu-protocols.md, each a thin wrapper over the project's codec, with
 * the decoder's rejections counted in one place.
 */
import { CobsDecoder, decodePayload, encodeFrame as encodeCobsFrame, type CrcKind } from '../../serial/cobs-codec.js';
import { NdjsonDecoder, encodeLine } from '../../serial/ndjson-codec.js';
import { cobsGarbage, ndjsonGarbage, type NoiseRandom } from './garbage.js';

export interface MessageFraming<T> {
  /** The messages completed by this chunk; rejected input is counted in `rejected`. */
  decode(chunk: Buffer): T[];
  encode(message: T): Buffer;
  garbage(rng: NoiseRandom): Buffer;
  readonly rejected: Readonly<Record<string, number>>;
}

/** COBS + CRC frames carrying UTF-8 JSON. */
export class CobsJsonFraming implements MessageFraming<unknown> {
  private readonly decoder: CobsDecoder;
  private badJson = 0;
  constructor(private readonly crc: CrcKind) {
    this.decoder = new CobsDecoder({ crc });
  }
  get rejected(): Readonly<Record<string, number>> {
    return { ...this.decoder.stats.rejected, 'bad-json': this.badJson };
  }
  decode(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    for (const payload of this.decoder.push(chunk)) {
      const r = decodePayload(payload, 'json');
      if (r.ok) out.push(r.value);
      else this.badJson++;
    }
    return out;
  }
  encode(message: unknown): Buffer {
    return encodeCobsFrame(Buffer.from(JSON.stringify(message), 'utf8'), { crc: this.crc });
  }
  garbage(rng: NoiseRandom): Buffer {
    return cobsGarbage(rng, this.crc);
  }
}

/** COBS + CRC frames carrying raw bytes. */
export class CobsRawFraming implements MessageFraming<Buffer> {
  private readonly decoder: CobsDecoder;
  constructor(private readonly crc: CrcKind) {
    this.decoder = new CobsDecoder({ crc });
  }
  get rejected(): Readonly<Record<string, number>> {
    return { ...this.decoder.stats.rejected };
  }
  decode(chunk: Buffer): Buffer[] {
    return this.decoder.push(chunk);
  }
  encode(payload: Buffer): Buffer {
    return encodeCobsFrame(payload, { crc: this.crc });
  }
  garbage(rng: NoiseRandom): Buffer {
    return cobsGarbage(rng, this.crc);
  }
}

/** One JSON value per line. */
export class NdjsonFraming implements MessageFraming<unknown> {
  private readonly decoder = new NdjsonDecoder();
  get rejected(): Readonly<Record<string, number>> {
    return { ...this.decoder.stats.rejected };
  }
  decode(chunk: Buffer): unknown[] {
    return this.decoder.push(chunk);
  }
  encode(message: unknown): Buffer {
    return encodeLine(message);
  }
  garbage(rng: NoiseRandom): Buffer {
    return ndjsonGarbage(rng);
  }
}
