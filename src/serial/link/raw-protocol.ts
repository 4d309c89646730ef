/**
 * COBS + CRC carrying raw bytes: each verified payload is the event `frame`
 * with its bytes in hex; sends take hex. Raw payloads have no id field to
 * correlate, so requests are not supported (the reply is just the next
 * `frame` event).
 */
import type { SerialLinkConfig } from '../../config/types.js';
import { CobsDecoder, encodeFrame } from '../cobs-codec.js';
import { hexBytes, isPlainObject, LinkError, type LinkIO, type LinkProtocol, type RoutedSend } from './link-protocol.js';

export class RawCobsProtocol implements LinkProtocol {
  readonly kind = 'cobs' as const;
  readonly namedVerbs = false;
  private readonly decoder: CobsDecoder;

  constructor(private readonly config: SerialLinkConfig, private readonly io: LinkIO) {
    this.decoder = new CobsDecoder({ crc: config.cobs.crc, maxFrame: config.cobs.max_frame, onReject: (reason) => io.rejected(reason) });
  }

  push(chunk: Buffer): void {
    for (const payload of this.decoder.push(chunk)) this.io.event('frame', { data: payload.toString('hex') });
  }

  async handshake(): Promise<void> {}

  reset(): void {
    this.decoder.reset();
  }

  encodeSend(args: unknown): Buffer {
    if (!isPlainObject(args)) throw new LinkError('invalid-request', 'expected {data: "hex"}');
    return encodeFrame(hexBytes(args.data, 'data', this.config.cobs.max_frame), { crc: this.config.cobs.crc });
  }

  encodeRouted(send: RoutedSend): Buffer {
    return this.encodeSend(send.data);
  }

  request(): Promise<unknown> {
    throw new LinkError('not-supported', `link ${this.config.name} carries raw payloads: no request/response (use send, and subscribe to its frames)`);
  }

  stats(): Record<string, unknown> {
    return { frames: this.decoder.stats.frames, rejected: { ...this.decoder.stats.rejected } };
  }
}
