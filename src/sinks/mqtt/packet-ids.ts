/**
 * MQTT packet ids (1..65535) for a persistent session: mqtt.js's
 * messageIdProvider interface, with the same choice as its
 * UniqueMessageIdProvider (the smallest id not in use), kept in a bitmap.
 *
 * Why not mqtt.js's provider: it keeps the ids in use in a Set, and each
 * QoS 1 message adds one id and deletes it at its PUBACK. V8's Set leaves
 * a hole per delete and copies itself into a new table when the holes fill
 * it, every few messages with a few in flight; once the Set has reached
 * the old generation (any full collection moves it there) each new table
 * is allocated there too. At a steady 1,000 QoS 1 messages a second that
 * was ~2.7 MB of old-generation garbage a minute, and the agent's RSS went
 * up and down by ~3.5 MB between full collections, where it had been flat
 * (a sampling heap profile named Set.prototype.add in the allocator as
 * half of what the agent allocated there: bench/bridge.ts, steady phase).
 * Here allocate and deallocate write one bit of a fixed 8 KiB array.
 */
import type { IMessageIdProvider } from 'mqtt/lib/default-message-id-provider';

const MAX_ID = 65535;
const WORDS = (MAX_ID + 1) / 32;

export class PacketIdAllocator implements IMessageIdProvider {
  /** Bit n set: id n in use. Bit 0 (id 0, never valid) is always set. */
  private readonly bits = new Uint32Array(WORDS);
  private inUse = 0;
  /** No free id below this one. */
  private low = 1;
  private last: number | null = null;

  constructor() {
    this.bits[0] = 1;
  }

  /** Ids in use. */
  get size(): number {
    return this.inUse;
  }

  allocate(): number | null {
    if (this.inUse === MAX_ID) return null;
    const from = this.low;
    for (let w = from >>> 5; w < WORDS; w++) {
      // free bits of this word, the ones below `from` excluded in its first word
      let free = ~this.bits[w]!;
      if (w === from >>> 5) free &= ~((1 << (from & 31)) - 1);
      if (free === 0) continue;
      const id = (w << 5) | (31 - Math.clz32(free & -free));
      this.bits[w]! |= 1 << (id & 31);
      this.inUse++;
      this.low = id + 1;
      this.last = id;
      return id;
    }
    return null;
  }

  getLastAllocated(): number | null {
    return this.last;
  }

  /** Marks an id in use (one the broker still holds from the session); false if taken or not a packet id. */
  register(id: number): boolean {
    if (!isPacketId(id)) return false;
    const mask = 1 << (id & 31);
    if ((this.bits[id >>> 5]! & mask) !== 0) return false;
    this.bits[id >>> 5]! |= mask;
    this.inUse++;
    return true;
  }

  deallocate(id: number): void {
    if (!isPacketId(id)) return;
    const mask = 1 << (id & 31);
    if ((this.bits[id >>> 5]! & mask) === 0) return;
    this.bits[id >>> 5]! &= ~mask;
    this.inUse--;
    if (id < this.low) this.low = id;
  }

  clear(): void {
    this.bits.fill(0);
    this.bits[0] = 1;
    this.inUse = 0;
    this.low = 1;
  }
}

function isPacketId(id: number): boolean {
  return Number.isInteger(id) && id >= 1 && id <= MAX_ID;
}
