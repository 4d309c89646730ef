/**
 * The QoS 0 and QoS 1 PUBLISH encoder against mqtt-packet (the encoder
 * mqtt.js uses): the same bytes for every topic, payload size, retain flag,
 * packet id and protocol version, remaining-length boundaries included; and
 * mqtt-packet's parser reads back what was written. Batched writes keep
 * their order and go out in one write per tick.
 */
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { publishPacket, writeBatched } from '../../src/sinks/mqtt/publish-packet.js';
import { fcSeed } from '../helpers/net-helpers.js';

fc.configureGlobal({ seed: fcSeed() });

const reference = (topic: string, payload: Buffer, retain: boolean, protocolVersion: 3 | 4 | 5, messageId?: number): Buffer =>
  mqttPacket.generate(messageId === undefined
    ? { cmd: 'publish', topic, payload, qos: 0, retain, dup: false }
    : { cmd: 'publish', topic, payload, qos: 1, retain, dup: false, messageId }, { protocolVersion });
const qos0PublishPacket = (topic: string, payload: Buffer, retain: boolean, v: number): Buffer | undefined => publishPacket(topic, payload, retain, v);

const versions = [3, 4, 5] as const;

describe('publishPacket', () => {
  it('QoS 1: writes what mqtt-packet writes, packet id included (property)', () => {
    fc.assert(fc.property(
      fc.string({ unit: 'grapheme', maxLength: 80 }), fc.uint8Array({ maxLength: 600 }), fc.boolean(), fc.constantFrom(...versions), fc.integer({ min: 1, max: 65535 }),
      (topic, bytes, retain, v, id) => {
        const payload = Buffer.from(bytes);
        expect(publishPacket(topic, payload, retain, v, id)!.equals(reference(topic, payload, retain, v, id))).toBe(true);
      },
    ), { numRuns: 300 });
    for (const v of versions) {
      const payload = Buffer.alloc(16_384 - (2 + 3 + 2 + (v === 5 ? 1 : 0)), 0x62);
      expect(publishPacket('a/b', payload, true, v, 65535)!.equals(reference('a/b', payload, true, v, 65535))).toBe(true);
    }
  });

  it('batched writes: in order, one write per tick', async () => {
    const writes: Buffer[][] = [];
    const stream = new Writable({
      writev(chunks, cb) { writes.push(chunks.map((c) => c.chunk as Buffer)); cb(); },
      write(chunk: Buffer, _enc, cb) { writes.push([chunk]); cb(); },
    });
    for (let i = 0; i < 5; i++) writeBatched(stream, Buffer.from([i]));
    await new Promise((r) => setImmediate(r));
    writeBatched(stream, Buffer.from([9]));
    await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => Buffer.concat(w).toString('hex'))).toEqual(['0001020304', '09']);
  });

  it('writes what mqtt-packet writes, for any topic, payload, retain flag and version (property)', () => {
    fc.assert(fc.property(
      fc.string({ unit: 'grapheme', maxLength: 80 }), fc.uint8Array({ maxLength: 600 }), fc.boolean(), fc.constantFrom(...versions),
      (topic, bytes, retain, v) => {
        const payload = Buffer.from(bytes);
        expect(qos0PublishPacket(topic, payload, retain, v)!.equals(reference(topic, payload, retain, v))).toBe(true);
      },
    ), { numRuns: 300 });
  });

  it('at each boundary of the remaining length (1, 2, 3 and 4 bytes)', () => {
    for (const v of versions) {
      const fixed = 2 + 3 + (v === 5 ? 1 : 0); // topic 'a/b'
      for (const remaining of [127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
        const payload = Buffer.alloc(remaining - fixed, 0x61);
        const ours = qos0PublishPacket('a/b', payload, false, v)!;
        expect(ours.equals(reference('a/b', payload, false, v)), `v${v} remaining ${remaining}`).toBe(true);
      }
    }
  });

  it('is read back by mqtt-packet\'s parser as the message written', () => {
    for (const v of versions) {
      const parser = mqttPacket.parser({ protocolVersion: v });
      const got: mqttPacket.Packet[] = [];
      parser.on('packet', (p) => got.push(p));
      parser.parse(qos0PublishPacket('vehicle/€/speed', Buffer.from('{"v":1}'), true, v)!);
      parser.parse(publishPacket('vehicle/€/rpm', Buffer.from('{"v":2}'), false, v, 4242)!);
      expect(got).toHaveLength(2);
      expect(got[0]).toMatchObject({ cmd: 'publish', topic: 'vehicle/€/speed', qos: 0, retain: true, dup: false });
      expect(got[1]).toMatchObject({ cmd: 'publish', topic: 'vehicle/€/rpm', qos: 1, retain: false, dup: false, messageId: 4242 });
      expect((got[0] as mqttPacket.IPublishPacket).payload.toString()).toBe('{"v":1}');
    }
  });

  it('refuses a packet beyond MQTT\'s largest remaining length (268,435,455 bytes)', () => {
    const payload = Buffer.allocUnsafe(268_435_455 - 2 - 1 + 1); // one byte over with topic 'a'
    expect(qos0PublishPacket('a', payload, false, 4)).toBeUndefined();
  });
});
