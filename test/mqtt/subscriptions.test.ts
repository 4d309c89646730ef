/**
 * Subscriptions.dispatch: a handler that throws never takes the process (or
 * the other handlers) down, and a bug that fires on every message is logged
 * once per kind, then only counted.
 */
import { describe, expect, it } from 'vitest';
import type { IPublishPacket } from 'mqtt';
import { Subscriptions } from '../../src/sinks/mqtt/subscriptions.js';
import { errorKind, OncePerKindLog } from '../../src/util/log.js';

const packet = { cmd: 'publish', qos: 0, dup: false, retain: false, topic: 'a/b', payload: Buffer.alloc(0) } as IPublishPacket;

describe('Subscriptions.dispatch', () => {
  it('reports each throwing handler with its kind and still calls the others', () => {
    const reports: Array<[string, string]> = [];
    const subs = new Subscriptions(() => undefined, (kind, msg) => reports.push([kind, msg]));
    const seen: string[] = [];
    subs.add('a/+', 1, () => { throw new RangeError('Maximum call stack size exceeded'); });
    subs.add('a/#', 1, (t) => seen.push(t));
    subs.add('a/b', 1, () => { throw 'a string'; }); // eslint-disable-line no-throw-literal
    subs.dispatch('a/b', Buffer.from('x'), packet);
    subs.dispatch('a/b', Buffer.from('x'), packet);
    expect(seen).toEqual(['a/b', 'a/b']);
    expect(reports.map(([k]) => k)).toEqual(['RangeError: Maximum call stack size exceeded', 'thrown string: a string', 'RangeError: Maximum call stack size exceeded', 'thrown string: a string']);
    expect(reports[0]![1]).toBe('mqtt: the handler of a/+ failed on a message on a/b: RangeError: Maximum call stack size exceeded');
  });
});

describe('OncePerKindLog', () => {
  it('logs the first record of each kind, counts the rest, and rate-limits kinds past its bound', () => {
    const lines: string[] = [];
    const log = new OncePerKindLog((m) => lines.push(m), 2);
    for (let i = 0; i < 100; i++) log.log('A', 'a failed');
    log.log('B', 'b failed');
    for (let i = 0; i < 30; i++) log.log(`K${i}`, `k${i} failed`);
    expect(lines.slice(0, 2)).toEqual(['a failed (logged once; later ones of this kind are only counted)', 'b failed (logged once; later ones of this kind are only counted)']);
    expect(log.count('A')).toBe(100);
    expect(lines.length).toBe(2 + 10); // kinds beyond the bound: at most 10 lines per 10 s
    expect(errorKind(new TypeError('x\ny'))).toBe('TypeError: x');
  });
});
