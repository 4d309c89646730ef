import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import uniqueIdModule from 'mqtt/lib/unique-message-id-provider';
import { defaultExport } from '../../src/sinks/mqtt/mqtt-transport.js';
import { PacketIdAllocator } from '../../src/sinks/mqtt/packet-ids.js';

// mqtt.js's own provider for persistent sessions, which PacketIdAllocator replaces: the reference.
const UniqueMessageIdProvider = defaultExport(uniqueIdModule);

describe('PacketIdAllocator', () => {
  it('hands out 1..65535, the smallest free id first, then null', () => {
    const ids = new PacketIdAllocator();
    expect(ids.getLastAllocated()).toBe(null);
    const got: Array<number | null> = [];
    for (let i = 1; i <= 65535; i++) got.push(ids.allocate());
    expect(got).toEqual(Array.from({ length: 65535 }, (_, i) => i + 1));
    expect(ids.size).toBe(65535);
    expect(ids.allocate()).toBe(null);
    ids.deallocate(40000);
    ids.deallocate(7);
    expect(ids.allocate()).toBe(7);
    expect(ids.allocate()).toBe(40000);
    expect(ids.getLastAllocated()).toBe(40000);
    expect(ids.allocate()).toBe(null);
  });

  it('register marks an id the broker still holds; deallocate and register ignore what is not a packet id', () => {
    const ids = new PacketIdAllocator();
    expect(ids.register(1)).toBe(true);
    expect(ids.register(1)).toBe(false);
    expect(ids.register(3)).toBe(true);
    for (const bad of [0, -1, 65536, 1.5, Number.NaN]) {
      expect(ids.register(bad)).toBe(false);
      ids.deallocate(bad);
    }
    expect(ids.size).toBe(2);
    expect(ids.allocate()).toBe(2);
    expect(ids.allocate()).toBe(4);
    ids.deallocate(9); // not in use: no change
    expect(ids.size).toBe(4);
    ids.clear();
    expect(ids.size).toBe(0);
    expect(ids.allocate()).toBe(1);
  });

  it('word boundaries: ids 31, 32, 63, 64 and 65535', () => {
    const ids = new PacketIdAllocator();
    for (let i = 1; i <= 65535; i++) ids.register(i);
    for (const id of [65535, 64, 63, 32, 31]) ids.deallocate(id);
    expect([ids.allocate(), ids.allocate(), ids.allocate(), ids.allocate(), ids.allocate(), ids.allocate()]).toEqual([31, 32, 63, 64, 65535, null]);
  });

  it('answers as mqtt.js UniqueMessageIdProvider does, for any sequence of calls', () => {
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.constant({ kind: 'allocate' as const }) },
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('deallocate' as const), id: fc.oneof(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 65530, max: 65536 })) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('register' as const), id: fc.oneof(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 65530, max: 65536 })) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const ours = new PacketIdAllocator();
        const theirs = new UniqueMessageIdProvider();
        for (const o of ops) {
          if (o.kind === 'allocate') expect(ours.allocate()).toBe(theirs.allocate());
          else if (o.kind === 'register') expect(ours.register(o.id)).toBe(theirs.register(o.id));
          else if (o.kind === 'deallocate') {
            ours.deallocate(o.id);
            theirs.deallocate(o.id);
          } else {
            ours.clear();
            theirs.clear();
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
