import { describe, expect, it } from 'vitest';
import { IdTable } from '../../src/util/id-table.js';

const entries = <V>(t: IdTable<V>): Array<[number, V]> => {
  const out: Array<[number, V]> = [];
  t.forEach((v, id) => out.push([id, v]));
  return out.sort((a, b) => a[0] - b[0]);
};

describe('IdTable', () => {
  it('sets, gets, replaces and deletes', () => {
    const t = new IdTable<string>(8);
    expect(t.set(1, 'a').set(2, 'b').size).toBe(2);
    t.set(1, 'A');
    expect([t.get(1), t.get(2), t.get(3)]).toEqual(['A', 'b', undefined]);
    expect([t.has(2), t.has(3)]).toEqual([true, false]);
    expect([t.delete(2), t.delete(2), t.delete(3)]).toEqual([true, false, false]);
    expect(t.size).toBe(1);
    expect(entries(t)).toEqual([[1, 'A']]);
    t.clear();
    expect([t.size, t.has(1), entries(t)]).toEqual([0, false, []]);
  });

  it('keeps ids that share a slot (further apart than the capacity), and grows when many do', () => {
    const t = new IdTable<number>(8);
    t.set(3, 3).set(11, 11).set(19, 19); // the same slot of 8
    expect([t.get(3), t.get(11), t.get(19), t.size]).toEqual([3, 11, 19, 3]);
    expect(t.delete(3)).toBe(true);
    t.set(27, 27); // slot free again: 27 takes it, 11 and 19 stay where they are
    expect([t.get(11), t.get(19), t.get(27), t.has(3), t.size]).toEqual([11, 19, 27, false, 3]);
    for (let i = 0; i < 40; i++) t.set(1000 + i * 8, i);
    expect(t.size).toBe(43);
    for (let i = 0; i < 40; i++) expect(t.get(1000 + i * 8)).toBe(i);
    expect(entries(t).map(([id]) => id)).toEqual([11, 19, 27, ...Array.from({ length: 40 }, (_, i) => 1000 + i * 8)]);
  });

  it('setting an id kept beside its slot replaces it there, once the slot is free too', () => {
    const t = new IdTable<string>(8);
    t.set(1, 'x').set(9, 'y'); // 9 beside slot 1
    t.delete(1);
    t.set(9, 'z'); // slot 1 is free, but 9 already lives beside it
    expect([t.get(9), t.size]).toEqual(['z', 1]);
    expect(t.delete(9)).toBe(true);
    expect([t.has(9), t.size]).toEqual([false, 0]);
  });

  it('takes ids beyond 2^32 and up to 2^53 - 1; refuses others', () => {
    const t = new IdTable<number>(16);
    const big = [2 ** 32, 2 ** 32 + 1, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER, 0];
    for (const id of big) t.set(id, id);
    for (const id of big) expect(t.get(id)).toBe(id);
    expect(t.has(1)).toBe(false); // 2^32 + 1 lives in slot 1
    for (const bad of [-1, 1.5, NaN, 2 ** 53, Infinity]) expect(() => t.set(bad, 0)).toThrow(RangeError);
    for (const bad of [-1, 1.5, NaN]) expect([t.has(bad), t.get(bad), t.delete(bad)]).toEqual([false, undefined, false]);
    expect(t.size).toBe(big.length);
  });

  it('agrees with a Map over a long random sequence of a sliding window of ids', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const t = new IdTable<number>(16);
    const m = new Map<number, number>();
    let next = 2 ** 32 - 5000; // crosses 2^32 on the way
    for (let step = 0; step < 50_000; step++) {
      const op = rand(10);
      if (op < 5) {
        const id = next++;
        t.set(id, step);
        m.set(id, step);
      } else if (op < 8) {
        const id = next - 1 - rand(300); // recent ones mostly
        expect(t.delete(id)).toBe(m.delete(id));
      } else if (op < 9) {
        const id = next - 1 - rand(5000); // some far behind (held back)
        expect(t.get(id)).toBe(m.get(id));
      } else {
        const id = next - 1 - rand(100);
        if (m.has(id)) {
          t.set(id, -step);
          m.set(id, -step);
        }
      }
      expect(t.size).toBe(m.size);
    }
    expect(entries(t)).toEqual([...m].sort((a, b) => a[0] - b[0]));
  });
});
