/** The sink's small parts: backoff, bounded queue, topic filters, error descriptions, status payload. */
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/util/backoff.js';
import { BoundedQueue } from '../../src/sinks/mqtt/bounded-queue.js';
import { describeError } from '../../src/sinks/mqtt/describe-error.js';
import { fillTemplate, statusPayload } from '../../src/sinks/mqtt/status.js';
import { topicMatches } from '../../src/sinks/mqtt/topic-filter.js';

describe('Backoff', () => {
  it('doubles up to the cap, jitter within [d/2, d], reset starts over', () => {
    const lo = new Backoff(100, 1000, () => 0);
    const hi = new Backoff(100, 1000, () => 1);
    expect(Array.from({ length: 6 }, () => lo.next())).toEqual([50, 100, 200, 400, 500, 500]);
    expect(Array.from({ length: 6 }, () => hi.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    hi.reset();
    expect(hi.next()).toBe(100);
  });
});

describe('BoundedQueue', () => {
  it('evicts the oldest when full and keeps FIFO order across wrap-around', () => {
    const q = new BoundedQueue<number>(3);
    expect([1, 2, 3].map((n) => q.push(n))).toEqual([undefined, undefined, undefined]);
    expect(q.push(4)).toBe(1);
    expect(q.shift()).toBe(2);
    q.push(5);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([3, 4, 5, undefined]);
    expect(new BoundedQueue<number>(0).push(7)).toBe(7);
  });
});

describe('topicMatches', () => {
  it.each([
    ['a/+/c', 'a/b/c', true], ['a/+/c', 'a/b/d', false], ['a/#', 'a', true], ['a/#', 'a/b/c', true],
    ['#', '$SYS/x', false], ['+/x', '$SYS/x', false], ['$SYS/#', '$SYS/x', true], ['a/+', 'a/b/c', false], ['a/b', 'a/b', true],
  ])('%s vs %s -> %s', (f, t, r) => expect(topicMatches(f, t)).toBe(r));
});

describe('describeError', () => {
  it('gives stable keys per kind of failure', () => {
    expect(describeError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })).key).toBe('ECONNREFUSED');
    expect(describeError(Object.assign(new Error('Connection refused: Not authorized'), { code: 5 }))).toEqual({ key: 'rc:5', text: 'Connection refused: Not authorized (reason code 5)' });
    expect(describeError(Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })).text).toMatch(/^TLS error/);
    expect(describeError(undefined).key).toBe('closed');
  });
});

describe('status', () => {
  it('fills the topic template and makes the JSON document (ts in ISO 8601; none in the will; the outbox recovery when there is one)', () => {
    const dev = { id: 'car-1', labels: { fleet: 'f' } };
    expect(fillTemplate('{prefix}/{device}/status', { topic_prefix: 'p' }, dev)).toBe('p/car-1/status');
    expect(JSON.parse(statusPayload('online', 'started', dev, '1.2.3', { ts: 42 }).toString())).toEqual({ state: 'online', reason: 'started', ts: '1970-01-01T00:00:00.042Z', device: 'car-1', labels: { fleet: 'f' }, version: '1.2.3' });
    expect(JSON.parse(statusPayload('offline', 'connection lost', dev, '1.2.3', { ts: null }).toString())).toEqual({ state: 'offline', reason: 'connection lost', device: 'car-1', labels: { fleet: 'f' }, version: '1.2.3' });
    const outbox = { recovered: 'wal' as const, lost: 12, at: '2024-05-01T12:00:00.000Z' };
    expect(JSON.parse(statusPayload('online', 'started', dev, '1.2.3', { outbox }).toString()).outbox).toEqual(outbox);
  });
});
