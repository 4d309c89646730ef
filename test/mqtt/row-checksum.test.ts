/**
 * The outbox's row checksum (src/sinks/mqtt/row-check.ts) keeps its
 * definition: the CRC-32 of the id (float64 LE), QoS, retain, the topic
 * (UTF-8) and the payload, one after the other. Rows written by earlier
 * versions, which computed it with zlib.crc32, must still check.
 */
import zlib from 'node:zlib';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { rowChecksum } from '../../src/sinks/mqtt/row-check.js';
import { crc32 } from '../../src/serial/crc.js';

const head = (id: number, qos: number, retain: boolean) => {
  const b = Buffer.alloc(10);
  b.writeDoubleLE(id, 0);
  b[8] = qos;
  b[9] = retain ? 1 : 0;
  return b;
};

const rows = fc.record({
  id: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  qos: fc.constantFrom(0, 1, 2),
  retain: fc.boolean(),
  topic: fc.oneof(fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 30 })),
  payload: fc.uint8Array({ maxLength: 300 }),
});

it('is the CRC-32 of id, QoS, retain, topic (UTF-8) and payload', () => {
  fc.assert(
    fc.property(rows, ({ id, qos, retain, topic, payload }) => {
      const p = Buffer.from(payload);
      expect(rowChecksum(id, qos, retain, topic, p)).toBe(crc32(Buffer.concat([head(id, qos, retain), Buffer.from(topic, 'utf8'), p])));
    }),
  );
});

const zlibCrc = (zlib as { crc32?: (data: Buffer | string, value?: number) => number }).crc32;

it.runIf(zlibCrc !== undefined)('is what zlib.crc32 gave for the rows of earlier versions', () => {
  fc.assert(
    fc.property(rows, ({ id, qos, retain, topic, payload }) => {
      const p = Buffer.from(payload);
      expect(rowChecksum(id, qos, retain, topic, p)).toBe(zlibCrc!(p, zlibCrc!(topic, zlibCrc!(head(id, qos, retain)))));
    }),
  );
});
