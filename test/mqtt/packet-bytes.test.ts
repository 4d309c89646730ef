/**
 * PacketBytes (src/sinks/mqtt/packet-bytes.ts) stands in for bl under
 * mqtt-packet's parser in the agent's bundle. It must give that parser what
 * bl gives it: the same packets from any split of the stream, and the same
 * errors (or the same exceptions) from damaged bytes, which is what a
 * hostile broker sends. Each case runs the real parser twice, on bl and on
 * PacketBytes, and compares everything it emitted.
 */
import bl from 'bl';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { PacketBytes, withPacketBytes, type ListHoldingParser } from '../../src/sinks/mqtt/packet-bytes.js';

type Parser = ReturnType<typeof mqttPacket.parser> & ListHoldingParser;

/** The real parser; with `lean`, its byte list is PacketBytes (as in the bundle). */
function parser(lean: boolean, protocolVersion: number): Parser {
  const p = mqttPacket.parser({ protocolVersion }) as Parser;
  return lean ? withPacketBytes(p) : p;
}

/** Everything the parser said for these chunks: packets, errors, an exception, and what it left unparsed. */
function run(lean: boolean, protocolVersion: number, chunks: Buffer[]): unknown[] {
  const p = parser(lean, protocolVersion);
  const out: unknown[] = [];
  p.on('packet', (packet) => out.push(['packet', JSON.parse(JSON.stringify(packet))]));
  p.on('error', (err: Error) => out.push(['error', err.message]));
  for (const c of chunks) {
    try {
      out.push(['left', p.parse(c)]);
    } catch (err) {
      out.push(['threw', (err as Error).constructor.name]);
    }
  }
  return out;
}

function same(protocolVersion: number, chunks: Buffer[]): unknown[] {
  const withBl = run(false, protocolVersion, chunks);
  expect(run(true, protocolVersion, chunks)).toEqual(withBl);
  return withBl;
}

/** A deterministic generator (the cases must be the same at every run). */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

const v5props = { userProperties: { a: 'b' }, reasonString: 'why' };
const packets: Record<4 | 5, mqttPacket.Packet[]> = {
  4: [
    { cmd: 'connack', returnCode: 0, sessionPresent: true },
    { cmd: 'connack', returnCode: 5, sessionPresent: false },
    { cmd: 'publish', topic: 'afb-edge/dev/events/hello/speed', payload: Buffer.from('{"v":42.5}'), qos: 0, retain: false, dup: false },
    { cmd: 'publish', topic: 't/é', payload: Buffer.alloc(300, 7), qos: 1, messageId: 65535, retain: true, dup: true },
    { cmd: 'publish', topic: 'big', payload: Buffer.alloc(70_000, 1), qos: 2, messageId: 9, retain: false, dup: false },
    { cmd: 'puback', messageId: 1 },
    { cmd: 'pubrec', messageId: 258 },
    { cmd: 'pubrel', messageId: 3 },
    { cmd: 'pubcomp', messageId: 4 },
    { cmd: 'suback', messageId: 5, granted: [0, 1, 2, 128] },
    { cmd: 'unsuback', messageId: 6 },
    { cmd: 'pingresp' },
    { cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: 'a/+', qos: 1 }] },
    { cmd: 'connect', clientId: 'c', protocolVersion: 4, keepalive: 30, clean: true, username: 'u', password: Buffer.from('p'), will: { topic: 'w', payload: Buffer.from('x'), qos: 1, retain: true } },
  ] as mqttPacket.Packet[],
  5: [
    { cmd: 'connack', reasonCode: 0, sessionPresent: false, properties: { topicAliasMaximum: 10, maximumPacketSize: 1 << 20, ...v5props } },
    { cmd: 'publish', topic: 'v5', payload: Buffer.from('p'), qos: 1, messageId: 77, retain: false, dup: false, properties: { contentType: 'application/json', messageExpiryInterval: 60, ...v5props } },
    { cmd: 'puback', messageId: 2, reasonCode: 16, properties: v5props },
    { cmd: 'puback', messageId: 3 },
    { cmd: 'suback', messageId: 4, granted: [1, 135], properties: v5props },
    { cmd: 'disconnect', reasonCode: 142, properties: { reasonString: 'taken over' } },
    { cmd: 'auth', reasonCode: 24, properties: { authenticationMethod: 'm', authenticationData: Buffer.from([1, 2]) } },
  ] as mqttPacket.Packet[],
};

describe.each([4, 5] as const)('MQTT %i: the parser on PacketBytes and on bl', (version) => {
  const stream = Buffer.concat(packets[version].map((p) => mqttPacket.generate(p, { protocolVersion: version })));

  it('whole stream in one chunk: every packet, same fields', () => {
    const out = same(version, [stream]);
    expect(out.filter((o) => (o as unknown[])[0] === 'packet')).toHaveLength(packets[version].length);
  });

  it('split in two at every byte', () => {
    // the 70,000-byte payload is left out here (its packet is split in the next cases): every split of the rest
    const small = Buffer.concat(packets[version].filter((p) => p.cmd !== 'publish' || (p.payload as Buffer).length < 1000)
      .map((p) => mqttPacket.generate(p, { protocolVersion: version })));
    for (let at = 0; at <= small.length; at++) same(version, [small.subarray(0, at), small.subarray(at)]);
  });

  it('one byte at a time, and random chunkings', () => {
    same(version, [...stream.subarray(0, 2000)].map((b) => Buffer.from([b])));
    const next = random(version);
    for (let k = 0; k < 80; k++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < stream.length;) {
        const n = 1 + Math.floor(next() * (next() < 0.8 ? 16 : 4096));
        chunks.push(stream.subarray(at, at + n));
        at += n;
      }
      same(version, chunks);
    }
  });

  it('damaged bytes: the same errors, exceptions and packets (bytes flipped, cut short, random)', () => {
    const next = random(100 + version);
    const seen = new Map<string, number>();
    const count = (out: unknown[]) => { for (const o of out) seen.set((o as string[])[0]!, (seen.get((o as string[])[0]!) ?? 0) + 1); };
    for (let k = 0; k < 3000; k++) {
      const damaged = Buffer.from(stream.subarray(0, 1 + Math.floor(next() * 600)));
      for (let f = 1 + Math.floor(next() * 4); f > 0; f--) damaged[Math.floor(next() * damaged.length)] = Math.floor(next() * 256);
      const cut = Math.floor(next() * damaged.length);
      count(same(version, [damaged.subarray(0, cut), damaged.subarray(cut)]));
    }
    for (let k = 0; k < 2000; k++) {
      const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(next() * 40) }, () => Math.floor(next() * 256)));
      count(same(version, [bytes]));
    }
    // the cases reached the parser's error paths, not only its packets
    expect(seen.get('error')).toBeGreaterThan(500);
    expect(seen.get('packet')).toBeGreaterThan(500);
  });
});

describe('PacketBytes against bl, method by method', () => {
  const chunks = [Buffer.from([1, 2, 3]), Buffer.from([]), Buffer.from([4]), Buffer.from([5, 6, 7, 8, 9, 10]), Buffer.from([0xff, 0xfe, 0xfd, 0xfc])];

  function both(consumed: number): [PacketBytes, ReturnType<typeof bl>] {
    const lean = new PacketBytes();
    const list = bl();
    for (const c of chunks) {
      lean.append(c);
      list.append(c);
    }
    lean.consume(consumed);
    list.consume(consumed);
    return [lean, list];
  }

  it('reads, slices and strings at every position, after every consume', () => {
    for (let consumed = 0; consumed <= 15; consumed++) {
      const [lean, list] = both(consumed);
      expect(lean.length).toBe(list.length);
      for (let o = -2; o <= list.length + 1; o++) {
        for (const read of ['readUInt8', 'readUInt16BE', 'readUInt32BE'] as const) {
          let expected: unknown;
          try {
            expected = list[read](o);
          } catch (err) {
            expected = (err as Error).constructor.name;
          }
          let got: unknown;
          try {
            got = lean[read](o);
          } catch (err) {
            got = (err as Error).constructor.name;
          }
          expect(got, `${read}(${o}) after consume(${consumed})`).toEqual(expected);
        }
        for (let e = -2; e <= list.length + 1; e++) {
          expect(lean.slice(o, e), `slice(${o}, ${e})`).toEqual(list.slice(o, e));
          expect(lean.toString('hex', o, e)).toBe(list.toString('hex', o, e));
        }
      }
      expect(lean.slice()).toEqual(list.slice());
    }
  });

  it('consume: past the end empties it; zero, negative and NaN do nothing', () => {
    for (const n of [0, -3, Number.NaN, 2.7, 100]) {
      const [lean, list] = both(0);
      lean.consume(n);
      list.consume(n);
      expect(lean.length).toBe(list.length);
      expect(lean.slice()).toEqual(list.slice());
    }
    const [lean] = both(100);
    expect(lean.length).toBe(0);
    expect(() => lean.readUInt8(0)).toThrow(RangeError);
    lean.append(Buffer.from([42]));
    expect(lean.readUInt8(0)).toBe(42);
  });

  it('a slice within one chunk is a view of it (no copy), as bl gives', () => {
    const chunk = Buffer.from([1, 2, 3, 4, 5, 6]);
    const lean = new PacketBytes().append(chunk);
    lean.consume(1);
    const view = lean.slice(1, 3);
    expect(view.buffer).toBe(chunk.buffer);
    expect([...view]).toEqual([3, 4]);
  });
});
