/**
 * An MCU speaking JSON messages (cobs with payload json, or ndjson):
 * periodic events {"event":"counter","data":{"n":…}} and
 * {"event":"temperature","data":{"celsius":…}} (see periodic-slots.ts for
 * which slot carries which), answers to requests (json-requests.ts), and
 * every received message reported as is.
 */
import type { NoiseRandom } from './garbage.js';
import { JsonRequestHandler } from './json-requests.js';
import type { MessageFraming } from './message-framing.js';
import { slotContent } from './periodic-slots.js';
import type { EcuPersonality, PersonalityHooks } from './personality.js';
import { coolantCelsius } from './vehicle-model.js';

export class JsonEcu implements EcuPersonality {
  readonly emitsAtStart = true;
  private readonly requests = new JsonRequestHandler();

  constructor(private readonly framing: MessageFraming<unknown>, private readonly hooks: PersonalityHooks) {}

  get rejected(): Readonly<Record<string, number>> {
    return this.framing.rejected;
  }

  receive(chunk: Buffer, out: Buffer[]): void {
    for (const message of this.framing.decode(chunk)) {
      this.hooks.received(message);
      const reply = this.requests.handle(message);
      if (reply !== undefined) out.push(this.framing.encode(reply));
    }
  }

  periodic(slot: number, out: Buffer[]): void {
    const content = slotContent(slot);
    const message = content.kind === 'counter'
      ? { event: 'counter', data: { n: content.n } }
      : { event: 'temperature', data: { celsius: coolantCelsius(this.hooks.elapsedMs()) } };
    out.push(this.framing.encode(message));
  }

  garbage(rng: NoiseRandom): Buffer {
    return this.framing.garbage(rng);
  }
}
