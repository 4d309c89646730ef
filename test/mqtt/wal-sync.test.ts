/**
 * The outbox's fsync off the event loop (src/sinks/mqtt/wal-sync.ts): on a
 * real file, requests made together share one fsync, requests made while
 * one runs get the next, close() answers what is left; and the outbox says
 * 'accepted' only after the fsync covering the commit ('full'), never with
 * 'normal'.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Outbox } from '../../src/sinks/mqtt/outbox.js';
import { WalSync } from '../../src/sinks/mqtt/wal-sync.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { outboxConfig } from '../helpers/mqtt-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const msg = (i: number) => ({ topic: `t/${i % 4}`, payload: Buffer.from(`m${i}`), qos: 1 as const, retain: false, route: 'r' });

describe('WalSync', () => {
  it('groups the requests of one turn into one fsync, and those made during it into the next', async () => {
    const dir = tempDir(cleanup, 'walsync');
    const file = path.join(dir, 'x.db-wal');
    fs.writeFileSync(file, 'frames');
    const sync = new WalSync(file);
    cleanup.add(() => sync.close());
    const order: string[] = [];
    const first = Array.from({ length: 10 }, (_, i) => new Promise<void>((resolve, reject) => sync.request((err) => (err ? reject(err) : (order.push(`a${i}`), resolve())))));
    const second = new Promise<void>((resolve) => setImmediate(() => sync.request(() => { order.push('b'); resolve(); })));
    await Promise.all([...first, second]);
    expect(sync.syncs).toBe(2);
    expect(order.at(-1)).toBe('b');
  });

  it('starts two fsyncs at least minIntervalMs apart, the requests of the interval sharing the second', async () => {
    const dir = tempDir(cleanup, 'walsync');
    const file = path.join(dir, 'z.db-wal');
    fs.writeFileSync(file, 'frames');
    const sync = new WalSync(file, 40);
    cleanup.add(() => sync.close());
    const done = (): Promise<number> => new Promise((resolve, reject) => sync.request((err) => (err ? reject(err) : resolve(performance.now()))));
    const t0 = performance.now();
    await done(); // the first one starts at once
    expect(performance.now() - t0).toBeLessThan(40);
    const later = [done(), done()];
    await new Promise((r) => setTimeout(r, 5));
    later.push(done());
    const answered = await Promise.all(later);
    expect(sync.syncs).toBe(2); // the three requests of the interval: one fsync
    for (const t of answered) expect(t - t0).toBeGreaterThanOrEqual(39); // timers may round down by a ms
    // With 0, one each time the previous one is done.
    const eager = new WalSync(file, 0);
    cleanup.add(() => eager.close());
    for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => eager.request(() => resolve()));
    expect(eager.syncs).toBe(3);
  });

  it('close() answers a request waiting for its interval with an fsync now', async () => {
    const dir = tempDir(cleanup, 'walsync');
    const file = path.join(dir, 'w.db-wal');
    fs.writeFileSync(file, 'frames');
    const sync = new WalSync(file, 60_000);
    await new Promise<void>((resolve) => sync.request(() => resolve()));
    const answered: Array<Error | null> = [];
    sync.request((err) => answered.push(err)); // due in a minute
    expect(answered).toEqual([]);
    sync.close();
    expect(answered).toEqual([null]);
    expect(sync.syncs).toBe(2);
  });

  it('reports the error when the file cannot be opened, and close() answers what still waits', () => {
    const dir = tempDir(cleanup, 'walsync');
    const missing = new WalSync(path.join(dir, 'nope-wal'));
    let error: Error | null = null;
    missing.request((err) => { error = err; });
    expect((error as unknown as NodeJS.ErrnoException)?.code).toBe('ENOENT');
    const file = path.join(dir, 'y-wal');
    fs.writeFileSync(file, 'frames');
    const sync = new WalSync(file);
    const answered: Array<Error | null> = [];
    sync.request((err) => answered.push(err)); // an fsync starts on the thread pool
    sync.request((err) => answered.push(err)); // waits for the next one
    sync.flushSync(); // the waiting one, here and now
    expect(answered).toEqual([null]);
    sync.close(); // the descriptor is closed once the running fsync is done
  });
});

describe('Outbox durability', () => {
  it("'full': a burst of one turn is accepted after one fsync of the WAL, done off the event loop", async () => {
    const ob = new Outbox(outboxConfig(tempDir(cleanup, 'dur')), { synchronous: 'full' });
    cleanup.add(() => ob.close());
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => ob.enqueue(msg(i))));
    expect(results.every((r) => r === 'accepted')).toBe(true);
    expect(ob.syncs).toBe(1);
    expect(ob.stats.commits).toBe(1);
    // an acknowledgement-only commit asks for no fsync of its own
    const out = ob.next(100);
    for (const m of out) ob.ack(m.id);
    ob.flush();
    expect(ob.syncs).toBe(1);
  });

  it("'full' with sync_interval_ms: commits of separate turns share the next fsync, their messages go out meanwhile", async () => {
    const ob = new Outbox(outboxConfig(tempDir(cleanup, 'dur'), { sync_interval_ms: 50 }), { synchronous: 'full' });
    cleanup.add(() => ob.close());
    const t0 = performance.now();
    expect(await ob.enqueue(msg(0))).toBe('accepted'); // the first fsync starts at once
    const results: Array<Promise<string>> = [];
    for (let i = 1; i <= 3; i++) {
      results.push(ob.enqueue(msg(i)));
      await new Promise((r) => setImmediate(r)); // one commit per turn
    }
    expect(ob.stats.commits).toBe(4);
    expect(ob.next(10).map((m) => m.payload.toString())).toEqual(['m0', 'm1', 'm2', 'm3']); // committed: sendable before the fsync
    expect(await Promise.all(results)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(ob.syncs).toBe(2);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(49); // the second started 50 ms after the first (timers may round down by a ms)
  });

  it("'normal': no fsync at all (a power cut may take the last commits, kill -9 cannot)", async () => {
    const ob = new Outbox(outboxConfig(tempDir(cleanup, 'dur')), { synchronous: 'normal' });
    cleanup.add(() => ob.close());
    expect(await ob.enqueue(msg(1))).toBe('accepted');
    expect(ob.syncs).toBe(0);
  });
});
