import { describe, expect, it } from 'vitest';
import type { StoredMessage } from '../../src/sinks/mqtt/outbox.js';
import { PendingCache } from '../../src/sinks/mqtt/pending-cache.js';

const msg = (id: number, bytes = 10): StoredMessage => ({ id, topic: 't', payload: Buffer.alloc(0), qos: 1, retain: false, route: 'r', createdAt: 0, bytes });
const ids = (ms: StoredMessage[]) => ms.map((m) => m.id);

describe('PendingCache', () => {
  it('hands out from the front in id order, skipping deleted ones', () => {
    const c = new PendingCache(0);
    for (let id = 1; id <= 10; id++) c.add(msg(id));
    c.delete(3);
    c.delete(4);
    c.delete(42); // not there
    expect(c.length).toBe(8);
    expect(ids(c.take(3))).toEqual([1, 2, 5]);
    c.delete(5); // already taken
    expect(ids(c.take(100))).toEqual([6, 7, 8, 9, 10]);
    expect([c.length, c.take(5)]).toEqual([0, []]);
  });

  it('overflows at its bounds (messages or bytes) and starts again after restart()', () => {
    const c = new PendingCache(0, 3, 1000);
    for (let id = 1; id <= 5; id++) c.add(msg(id));
    expect([c.length, c.overflowed]).toEqual([3, true]);
    expect(ids(c.take(1))).toEqual([1]);
    c.add(msg(6)); // room again, but rows 4 and 5 are only on disk: not kept
    expect(c.length).toBe(2);
    expect(c.covers(1)).toBe(true);
    c.take(10);
    expect(c.covers(3)).toBe(false); // empty and overflowed: the database serves
    c.restart(6);
    expect([c.overflowed, c.floor, c.covers(6)]).toEqual([false, 6, true]);
    c.add(msg(7, 600));
    c.add(msg(8, 600)); // 1,200 bytes > 1,000
    expect([c.length, c.overflowed]).toEqual([1, true]);
  });

  it('agrees with an array over a long random run (wrapping, growing, holes squeezed out)', () => {
    let seed = 11;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const c = new PendingCache(0, 5000, 1 << 30);
    let model: number[] = [];
    let next = 1;
    for (let step = 0; step < 20_000; step++) {
      const op = rand(10);
      if (op < 5) {
        const n = 1 + rand(40);
        for (let k = 0; k < n && model.length < 5000; k++) {
          c.add(msg(next));
          model.push(next++);
        }
      } else if (op < 8) {
        const n = 1 + rand(30);
        expect(ids(c.take(n))).toEqual(model.slice(0, n));
        model = model.slice(n);
      } else if (model.length > 0) {
        const id = model[rand(model.length)]!;
        c.delete(id);
        model = model.filter((x) => x !== id);
        c.delete(next + 5); // never added
      }
      expect(c.length).toBe(model.length);
    }
    expect(ids(c.take(1e9))).toEqual(model);
  });
});
