/**
 * The event-loop delay monitor (src/health/event-loop-delay.ts): a window's
 * statistics on known samples, its ring of samples for percentiles, and the
 * monitor on the real event loop, beside perf_hooks' own monitor (what it
 * replaces) seeing the same loop.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { EventLoopDelayMonitor, DelayWindow } from '../../src/health/event-loop-delay.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Blocks the loop for at least `ms` (hrtime: Date.now()'s whole milliseconds could make it up to 1 ms shorter). */
const block = (ms: number) => {
  const end = process.hrtime.bigint() + BigInt(ms) * 1_000_000n;
  while (process.hrtime.bigint() < end) { /* the loop is blocked */ }
};

describe('DelayWindow', () => {
  const windowOf = (samples: number[], keep?: number) => {
    const w = new DelayWindow({ samples: keep }, () => {});
    for (const s of samples) w.record(s);
    return w;
  };

  it('reports count, min, max, mean and the population standard deviation of what it recorded', () => {
    const w = windowOf([2, 4, 4, 4, 5, 5, 7, 9]);
    expect([w.count, w.min, w.max, w.mean]).toEqual([8, 2, 9, 5]);
    expect(w.stddev).toBeCloseTo(2, 12);
  });

  it('gives the smallest sample that p percent of the samples do not exceed', () => {
    const w = windowOf(Array.from({ length: 100 }, (_, i) => 100 - i)); // 100..1, in reverse
    expect(w.percentile(50)).toBe(50);
    expect(w.percentile(90)).toBe(90);
    expect(w.percentile(99)).toBe(99);
    expect(w.percentile(100)).toBe(100);
    expect(w.percentile(0)).toBe(1);
    expect(windowOf([7]).percentile(99)).toBe(7);
    expect(w.percentiles([50, 90, 99, 0])).toEqual([50, 90, 99, 1]);
    expect(windowOf([]).percentiles([50, 99])).toEqual([0, 0]);
  });

  it('keeps the latest samples for percentiles, every sample for the rest', () => {
    const w = windowOf([1000, 1, 2, 3, 4], 4);
    expect(w.percentile(100)).toBe(4); // 1000 fell out of the ring
    expect(w.max).toBe(1000);
    expect(w.count).toBe(5);
  });

  it('with samples: 0 keeps none (percentiles 0) and still counts', () => {
    const w = windowOf([5, 50], 0);
    expect([w.count, w.max, w.percentile(50)]).toEqual([2, 50, 0]);
  });

  it('is empty after reset, and all zero before any sample', () => {
    const w = windowOf([3, 30, 300]);
    w.reset();
    expect([w.count, w.min, w.max, w.mean, w.stddev, w.percentile(99)]).toEqual([0, 0, 0, 0, 0, 0]);
    w.record(8);
    expect([w.count, w.min, w.max, w.percentile(50)]).toEqual([1, 8, 8, 8]);
  });
});

describe('EventLoopDelayMonitor', () => {
  const open: Array<{ close(): void }> = [];
  afterEach(() => {
    for (const w of open.splice(0)) w.close();
  });

  it('refuses a resolution that is not a whole number of ms >= 1', () => {
    expect(() => new EventLoopDelayMonitor(0)).toThrow(/resolution/);
    expect(() => new EventLoopDelayMonitor(2.5)).toThrow(/resolution/);
  });

  it('on an idle loop, records turns of about its resolution', async () => {
    const monitor = new EventLoopDelayMonitor(10);
    const w = monitor.openWindow();
    open.push(w);
    await sleep(300);
    expect(w.count).toBeGreaterThanOrEqual(10);
    expect(w.min).toBeGreaterThanOrEqual(7e6); // never much shorter: a timer does not fire early (ms rounding, a stale loop time)
    expect(w.percentile(50)).toBeLessThan(60e6);
  });

  it('sees a blocked loop as one long turn, as perf_hooks does', async () => {
    const monitor = new EventLoopDelayMonitor(20);
    const w = monitor.openWindow();
    open.push(w);
    const theirs = monitorEventLoopDelay({ resolution: 20 });
    theirs.enable();
    await sleep(100);
    block(250);
    await sleep(100);
    theirs.disable();
    expect(w.max).toBeGreaterThanOrEqual(250e6);
    expect(theirs.max).toBeGreaterThanOrEqual(250e6);
    // the same turn, measured by two timers of the same loop
    expect(Math.abs(w.max - theirs.max)).toBeLessThan(40e6);
  });

  it('feeds each window until it is reset or closed, and stops its timer with the last one', async () => {
    const monitor = new EventLoopDelayMonitor(5);
    const a = monitor.openWindow({ samples: 0 });
    const b = monitor.openWindow();
    expect(monitor.running).toBe(true);
    await sleep(60);
    const before = b.count;
    expect(a.count).toBeGreaterThan(0);
    a.reset();
    expect(a.count).toBe(0);
    expect(b.count).toBe(before); // another window's reset is not this one's
    a.close();
    await sleep(40);
    expect(a.count).toBe(0); // closed: no longer fed
    expect(b.count).toBeGreaterThan(before);
    expect(monitor.running).toBe(true);
    b.close();
    expect(monitor.running).toBe(false);
    const c = monitor.openWindow(); // and starts again
    open.push(c);
    expect(monitor.running).toBe(true);
  });
});
