/**
 * The sink's mqtt.js outgoing store keeps nothing: what mqtt.js asks of it
 * (put, del at the PUBACK, createStream at connect) is answered without a
 * copy kept. Delivery through it (QoS 1 and 2, against mosquitto) is in
 * sink-publish.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { UnkeptStore } from '../../src/sinks/mqtt/unkept-store.js';

const publish = { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, messageId: 7 } as const;

describe('UnkeptStore', () => {
  it('answers put at once and gives back a packet at del (an error there would fail the publish callback)', () => {
    const store = new UnkeptStore();
    let put = 0;
    store.put(publish, () => put++);
    expect(put).toBe(1);
    let delErr: Error | undefined = new Error('not called');
    let delPacket: unknown;
    store.del({ messageId: 7 }, (err, packet) => { delErr = err; delPacket = packet; });
    expect(delErr).toBeUndefined();
    expect(delPacket).toEqual({ messageId: 7 });
  });

  it('holds no packet: get finds none, and the stream mqtt.js resends from at connect is empty', async () => {
    const store = new UnkeptStore();
    store.put(publish, () => {});
    let getErr: Error | undefined;
    store.get({ messageId: 7 }, (err) => { getErr = err; });
    expect(getErr?.message).toBe('missing packet');
    const resent: unknown[] = [];
    for await (const p of store.createStream()) resent.push(p);
    expect(resent).toEqual([]);
  });
});
