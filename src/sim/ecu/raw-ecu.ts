/**
 * An MCU sending raw binary payloads in COBS + CRC frames (payload raw).
 * Each payload starts with a type byte:
 *
 *   01 nn nn nn nn   counter, 32-bit little-endian (slots 0, 2, 4, …)
 *   02 tt tt         coolant temperature, signed 16-bit little-endian, 0.01 °C (odd slots)
 *
 * Small counters are full of 0x00 bytes, which is what COBS stuffing is for.
 * Received payloads have no meaning here: each is reported as {"data":"hex"}.
 */
import type { NoiseRandom } from './garbage.js';
import type { CobsRawFraming } from './message-framing.js';
import { slotContent } from './periodic-slots.js';
import type { EcuPersonality, PersonalityHooks } from './personality.js';
import { coolantCelsius } from './vehicle-model.js';

export const RAW_PAYLOAD_TYPE = { counter: 0x01, temperature: 0x02 } as const;

export class RawEcu implements EcuPersonality {
  readonly emitsAtStart = true;

  constructor(private readonly framing: CobsRawFraming, private readonly hooks: PersonalityHooks) {}

  get rejected(): Readonly<Record<string, number>> {
    return this.framing.rejected;
  }

  receive(chunk: Buffer, _out: Buffer[]): void {
    for (const payload of this.framing.decode(chunk)) this.hooks.received({ data: payload.toString('hex') });
  }

  periodic(slot: number, out: Buffer[]): void {
    const content = slotContent(slot);
    let payload: Buffer;
    if (content.kind === 'counter') {
      payload = Buffer.alloc(5);
      payload[0] = RAW_PAYLOAD_TYPE.counter;
      payload.writeUInt32LE(content.n % 2 ** 32, 1);
    } else {
      payload = Buffer.alloc(3);
      payload[0] = RAW_PAYLOAD_TYPE.temperature;
      payload.writeInt16LE(Math.round(coolantCelsius(this.hooks.elapsedMs()) * 100), 1);
    }
    out.push(this.framing.encode(payload));
  }

  garbage(rng: NoiseRandom): Buffer {
    return this.framing.garbage(rng);
  }
}
