/**
 * The QoS 0 PUBLISH encoder against mqtt-packet (the encoder mqtt.js uses):
 * the same bytes for every topic, payload size, retain flag and protocol
 * version, remaining-length boundaries included; and mqtt-packet's parser
 * reads back what was written.
 */
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { qos0PublishPacket } from '../../src/sinks/mqtt/qos0-packet.js';
import { fcSeed } from '../helpers/net-helpers.js';

fc.configureGlobal({ seed: fcSeed() });

const reference = (topic: string, payload: Buffer, retain: boolean, protocolVersion: 3 | 4 | 5): Buffer =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, retain, dup: false }, { protocolVersion });

const versions = [3, 4, 5] as const;

describe('qos0PublishPacket', () => {
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
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ cmd: 'publish', topic: 'vehicle/€/speed', qos: 0, retain: true, dup: false });
      expect((got[0] as mqttPacket.IPublishPacket).payload.toString()).toBe('{"v":1}');
    }
  });

  it('refuses a packet beyond MQTT\'s largest remaining length (268,435,455 bytes)', () => {
    const payload = Buffer.allocUnsafe(268_435_455 - 2 - 1 + 1); // one byte over with topic 'a'
    expect(qos0PublishPacket('a', payload, false, 4)).toBeUndefined();
  });
});
