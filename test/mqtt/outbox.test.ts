/**
 * The durable outbox on a real SQLite file: persistence across reopen,
 * group commit, in-flight/ack/release, both bounds policies, gauges, and
 * a corrupt file moved aside, refusal to open a locked one.
 */
import fs from 'node:fs';
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { OutboundMessage } from '../../src/core/event.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { Outbox, OutboxError } from '../../src/sinks/mqtt/outbox.js';
import { openOutbox } from '../../src/sinks/mqtt/outbox-open.js';
import { silentLogger } from '../../src/util/log.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { captureLogger, counter, outboxConfig } from '../helpers/mqtt-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function msg(i: number, topic = 't/a', size = 10): OutboundMessage {
  const payload = Buffer.alloc(size, 0x20);
  payload.write(String(i));
  return { topic, payload, qos: 1, retain: i % 2 === 0, route: 'r' };
}

function open(dir: string, over: Parameters<typeof outboxConfig>[1] = {}, metrics = new AgentMetrics({ defaultMetrics: false })): Outbox {
  const ob = new Outbox(outboxConfig(dir, over), { metrics });
  cleanup.add(() => ob.close());
  return ob;
}

const idx = (m: { payload: Buffer }): number => Number.parseInt(m.payload.toString(), 10);

describe('Outbox', () => {
  it('keeps accepted messages across a reopen, in order, with their fields', async () => {
    const dir = tempDir(cleanup, 'outbox');
    const a = open(dir);
    const results = await Promise.all([0, 1, 2, 3].map((i) => a.enqueue(msg(i, `t/${i}`))));
    expect(results).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    expect(a.next(2).map(idx)).toEqual([0, 1]); // in flight, never acked
    a.close();
    const b = open(dir);
    expect(b.depth).toBe(4);
    const all = b.next(10);
    expect(all.map(idx)).toEqual([0, 1, 2, 3]);
    expect(all.map((m) => [m.topic, m.qos, m.retain, m.route])).toEqual([
      ['t/0', 1, true, 'r'], ['t/1', 1, false, 'r'], ['t/2', 1, true, 'r'], ['t/3', 1, false, 'r'],
    ]);
    expect(all[0]!.bytes).toBe(3 + 10);
  });

  it('commits all the enqueues and acks of one turn in one transaction, resolving after it', async () => {
    const dir = tempDir(cleanup, 'outbox');
    const ob = open(dir);
    let resolved = 0;
    const ps = Array.from({ length: 1000 }, (_, i) => ob.enqueue(msg(i)).then((r) => { resolved++; return r; }));
    await Promise.resolve();
    expect(resolved).toBe(0); // nothing counts as accepted before the COMMIT
    expect(ob.stats.commits).toBe(0);
    await Promise.all(ps);
    expect(ob.stats.commits).toBe(1);
    const first = ob.next(500);
    for (const m of first) ob.ack(m.id);
    await ob.enqueue(msg(1000));
    expect(ob.stats.commits).toBe(2); // 500 deletes + 1 insert together
    expect(ob.depth).toBe(501);
  });

  it('an ack alone lingers for the next commit of messages and rides in it; without one it is committed after the linger', async () => {
    const dir = tempDir(cleanup, 'outbox');
    const ob = open(dir);
    await ob.enqueue(msg(0));
    expect(ob.stats.commits).toBe(1);
    ob.ack(ob.next(1)[0]!.id);
    expect(ob.depth).toBe(0); // acked: no longer waiting, whether its delete is committed yet or not
    expect(ob.bytes).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(ob.stats.commits).toBe(1); // no transaction for the delete alone
    await ob.enqueue(msg(1));
    expect(ob.stats.commits).toBe(2); // the insert, with the delete
    const second = ob.next(1);
    expect(second.map(idx)).toEqual([1]);
    ob.ack(second[0]!.id);
    await new Promise((r) => setTimeout(r, 50));
    expect(ob.stats.commits).toBe(2);
    await new Promise((r) => setTimeout(r, 150)); // past the linger (100 ms)
    expect(ob.stats.commits).toBe(3);
    ob.close();
    const again = open(dir);
    expect(again.depth).toBe(0); // both deletes are on disk
  });

  it('keeps SQLite\'s own page cache (2,000 KiB), not better-sqlite3\'s 16,000 KiB', () => {
    const opened = openOutbox(path.join(tempDir(cleanup, 'outbox'), 'outbox.db'), 'normal', 1 << 24, silentLogger);
    cleanup.add(() => opened.db.close());
    expect(opened.db.pragma('cache_size', { simple: true })).toBe(-2000);
  });

  it('many acks do not linger: 1024 of them are committed in the same turn', async () => {
    const ob = open(tempDir(cleanup, 'outbox'));
    await Promise.all(Array.from({ length: 1100 }, (_, i) => ob.enqueue(msg(i))));
    const commits = ob.stats.commits;
    for (const m of ob.next(1100)) ob.ack(m.id);
    await new Promise((r) => setImmediate(r));
    expect(ob.stats.commits).toBe(commits + 1);
    expect(ob.depth).toBe(0);
  });

  it('hands out each message once until ack or release; release puts it back in id order', async () => {
    const dir = tempDir(cleanup, 'outbox');
    const ob = open(dir);
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => ob.enqueue(msg(i))));
    const a = ob.next(3);
    expect(a.map(idx)).toEqual([0, 1, 2]);
    expect(ob.next(2).map(idx)).toEqual([3, 4]);
    ob.ack(a[0]!.id);
    ob.release(a[1]!.id);
    expect(ob.next(10).map(idx)).toEqual([1, 5]); // 2, 3, 4 still in flight
    ob.releaseAll();
    expect(ob.next(10).map(idx)).toEqual([1, 2, 3, 4, 5]); // the acked one never comes back
    ob.flush();
    expect(ob.depth).toBe(5);
  });

  it('serves from memory what it just wrote, from disk what is older or fell out of the cache, always in id order', async () => {
    const dir = tempDir(cleanup, 'outbox');
    const a = open(dir);
    await Promise.all([0, 1, 2].map((i) => a.enqueue(msg(i))));
    a.close();
    const ob = new Outbox(outboxConfig(dir), { cacheMessages: 3 });
    cleanup.add(() => ob.close());
    await Promise.all([3, 4, 5, 6, 7, 8].map((i) => ob.enqueue(msg(i)))); // 3 of them overflow the cache
    const first = ob.next(4);
    expect(first.map(idx)).toEqual([0, 1, 2, 3]); // from the previous run and the overflow: from disk
    expect(ob.next(2).map(idx)).toEqual([4, 5]);
    await ob.enqueue(msg(9));
    ob.release(first[3]!.id);
    expect(ob.next(10).map(idx)).toEqual([3, 6, 7, 8, 9]);
    expect(ob.next(10)).toEqual([]);
  });

  it('a burst larger than the cache: the oldest are served from memory, the rest from disk, then memory again', async () => {
    const ob = new Outbox(outboxConfig(tempDir(cleanup, 'outbox')), { cacheMessages: 3 });
    cleanup.add(() => ob.close());
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => ob.enqueue(msg(i))));
    expect(ob.next(2).map(idx)).toEqual([0, 1]);
    expect(ob.stats.rowsRead).toBe(0); // the next to go out were kept, not evicted by the newer ones
    expect(ob.next(10).map(idx)).toEqual([2, 3, 4, 5]);
    expect(ob.stats.rowsRead).toBe(3); // 3, 4, 5 came after the cache was full
    await Promise.all([6, 7].map((i) => ob.enqueue(msg(i))));
    expect(ob.next(10).map(idx)).toEqual([6, 7]);
    expect(ob.stats.rowsRead).toBe(3); // everything was handed out: cached again
  });

  it('rows only on disk, asked for a few at a time (the slots PUBACKs free), are each read once, in order', async () => {
    const ob = new Outbox(outboxConfig(tempDir(cleanup, 'outbox')), { cacheMessages: 3 });
    cleanup.add(() => ob.close());
    await Promise.all(Array.from({ length: 43 }, (_, i) => ob.enqueue(msg(i))));
    const got: number[] = [];
    for (let k = 1; got.length < 43; k = (k % 3) + 1) {
      const batch = ob.next(k);
      expect(batch.length).toBeGreaterThan(0);
      for (const m of batch) {
        got.push(idx(m));
        ob.ack(m.id);
      }
    }
    expect(got).toEqual(Array.from({ length: 43 }, (_, i) => i));
    expect(ob.stats.rowsRead).toBe(40); // not 16 per call, of which the unused were read again
    expect(ob.next(5)).toEqual([]);
  });

  it('rows read ahead from disk are kept up to 256 KiB beyond those asked for: large ones are read a few at a time', async () => {
    const ob = new Outbox(outboxConfig(tempDir(cleanup, 'outbox'), { max_bytes: 64 << 20 }), { cacheMessages: 1 });
    cleanup.add(() => ob.close());
    await Promise.all(Array.from({ length: 10 }, (_, i) => ob.enqueue(msg(i, 't/a', 100_000))));
    const reads: number[] = [];
    const got: number[] = [];
    for (let k = 0; k < 5; k++) {
      got.push(...ob.next(1).map(idx));
      reads.push(ob.stats.rowsRead);
    }
    expect(got).toEqual([0, 1, 2, 3, 4]);
    // 0 from memory; the 9 others read, 1 handed out and 2 kept (200,000 bytes; a third passes 256 KiB); read again at 4.
    expect(reads).toEqual([0, 9, 9, 9, 15]);
  });

  it('rows read ahead from disk that drop-oldest evicts are not handed out', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const ob = new Outbox(outboxConfig(tempDir(cleanup, 'outbox'), { max_messages: 20, policy: 'drop-oldest' }), { cacheMessages: 3, metrics });
    cleanup.add(() => ob.close());
    await Promise.all(Array.from({ length: 20 }, (_, i) => ob.enqueue(msg(i))));
    expect(ob.next(4).map(idx)).toEqual([0, 1, 2, 3]); // 3 from memory, then the rest of the rows are read ahead
    expect(ob.stats.rowsRead).toBe(17);
    await Promise.all(Array.from({ length: 6 }, (_, i) => ob.enqueue(msg(20 + i)))); // evicts 4..9
    expect(await counter(metrics.dropped, { reason: 'outbox_full' })).toBe(6);
    expect(ob.next(100).map(idx)).toEqual([...Array.from({ length: 10 }, (_, i) => 10 + i), 20, 21, 22, 23, 24, 25]);
  });

  it('ids keep growing after the outbox empties, and across restarts (outbox_ids), so nothing new is skipped', async () => {
    const dir = tempDir(cleanup, 'outbox');
    let ob = open(dir);
    await Promise.all([0, 1].map((i) => ob.enqueue(msg(i))));
    const first = ob.next(10);
    for (const m of first) ob.ack(m.id);
    ob.flush();
    expect(ob.depth).toBe(0);
    await ob.enqueue(msg(7));
    const second = ob.next(10);
    expect(second.map(idx)).toEqual([7]);
    expect(second[0]!.id).toBeGreaterThan(first[1]!.id);
    ob.ack(second[0]!.id);
    ob.close();
    ob = open(dir);
    expect(ob.depth).toBe(0);
    await ob.enqueue(msg(8));
    const third = ob.next(10);
    expect(third.map(idx)).toEqual([8]);
    expect(third[0]!.id).toBeGreaterThan(second[0]!.id);
  });

  it('ids keep growing when the database file is gone and the commit record remains (it names the highest id)', async () => {
    const dir = tempDir(cleanup, 'outbox');
    let ob = open(dir);
    await Promise.all([0, 1, 2].map((i) => ob.enqueue(msg(i))));
    const first = ob.next(10);
    for (const m of first) ob.ack(m.id);
    ob.flush();
    ob.close();
    const file = outboxConfig(dir).path;
    for (const f of [file, `${file}-wal`]) fs.rmSync(f, { force: true });
    expect(fs.existsSync(`${file}-commit`)).toBe(true);
    ob = open(dir);
    await ob.enqueue(msg(9));
    const [again] = ob.next(10);
    expect(idx(again!)).toBe(9);
    expect(again!.id).toBeGreaterThan(first[2]!.id);
  });

  it('a damaged outbox_ids (text where the reserved id was) gives no NaN ids: the next id follows the rows, and the reservation is written again', async () => {
    const dir = tempDir(cleanup, 'outbox');
    let ob = open(dir);
    await Promise.all([0, 1].map((i) => ob.enqueue(msg(i))));
    ob.close();
    const file = outboxConfig(dir).path;
    const raw = new Database(file);
    raw.prepare("UPDATE outbox_ids SET reserved = 'garbage'").run();
    const highest = raw.prepare('SELECT MAX(id) FROM outbox').pluck().get() as number;
    raw.close();
    ob = open(dir);
    await ob.enqueue(msg(2));
    const ids = ob.next(10).map((m) => m.id);
    expect(ids.every((id) => Number.isSafeInteger(id))).toBe(true);
    expect(ids.at(-1)).toBeGreaterThan(highest);
    ob.close();
    const check = new Database(file);
    const reserved = check.prepare('SELECT reserved FROM outbox_ids').pluck().get();
    check.close();
    expect(typeof reserved).toBe('number');
    expect(reserved as number).toBeGreaterThanOrEqual(ids.at(-1)!);
  });

  it('a message per commit appends one 1 KiB page to the WAL: no sequence page, ids reserved a block at a time', async () => {
    const dir = tempDir(cleanup, 'outbox');
    const ob = open(dir);
    await ob.enqueue(msg(0));
    const wal = `${outboxConfig(dir).path}-wal`;
    const before = fs.statSync(wal).size;
    for (let i = 1; i <= 300; i++) await ob.enqueue(msg(i)); // each its own commit
    const frames = (fs.statSync(wal).size - before) / (1024 + 24);
    expect(Number.isInteger(frames)).toBe(true);
    // one leaf page per commit, and a few more where a leaf filled (a new leaf and its parent) or ids were reserved
    expect(frames).toBeGreaterThanOrEqual(300);
    expect(frames).toBeLessThan(300 * 1.25);
    expect(ob.next(400)).toHaveLength(301);
  });

  it('drop-oldest: evicts the oldest pending messages (not those in flight), counts them and logs it (rate-limited)', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const logger = captureLogger();
    const ob = new Outbox(outboxConfig(tempDir(cleanup, 'outbox'), { max_messages: 5, policy: 'drop-oldest' }), { metrics, logger });
    cleanup.add(() => ob.close());
    expect(await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => ob.enqueue(msg(i))))).toEqual(Array(8).fill('accepted'));
    expect(ob.depth).toBe(5);
    expect(await counter(metrics.dropped, { reason: 'outbox_full' })).toBe(3);
    const inflight = ob.next(2);
    expect(inflight.map(idx)).toEqual([3, 4]);
    await Promise.all([8, 9].map((i) => ob.enqueue(msg(i))));
    ob.releaseAll();
    expect(ob.next(10).map(idx)).toEqual([3, 4, 7, 8, 9]); // 5 and 6 went, the in-flight 3 and 4 stayed
    expect(await counter(metrics.dropped, { reason: 'outbox_full' })).toBe(5);
    expect(logger.matching(/<warn> outbox .*: \d message\(s\) dropped \(outbox_full\): the outbox is full .*the oldest pending messages were evicted/)).toHaveLength(2);
  });

  it('a batch of many rows (several per INSERT) under drop-oldest: the newest stay, in order, on disk too', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const dir = tempDir(cleanup, 'outbox');
    const ob = new Outbox(outboxConfig(dir, { max_messages: 50, policy: 'drop-oldest' }), { metrics });
    const n = 137; // 4 full statements of 32 rows and 9 rows one by one, evicting from the 51st on
    expect(new Set(await Promise.all(Array.from({ length: n }, (_, i) => ob.enqueue(msg(i)))))).toEqual(new Set(['accepted']));
    expect(ob.depth).toBe(50);
    expect(await counter(metrics.dropped, { reason: 'outbox_full' })).toBe(n - 50);
    const served = ob.next(100).map(idx);
    expect(served).toEqual(Array.from({ length: 50 }, (_, i) => n - 50 + i));
    for (const m of ob.next(0)) ob.ack(m.id);
    ob.close();
    const again = open(dir, { max_messages: 50, policy: 'drop-oldest' });
    expect(again.depth).toBe(50);
    expect(again.bytes).toBe(50 * (3 + 10));
    expect(again.next(100).map(idx)).toEqual(served); // what the database holds is what was served from memory
  });

  it('drop-oldest applies the byte bound too', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const ob = open(tempDir(cleanup, 'outbox'), { max_bytes: 100, policy: 'drop-oldest' }, metrics); // 3 + 30 bytes each
    await Promise.all([0, 1, 2, 3, 4].map((i) => ob.enqueue(msg(i, 't/a', 30))));
    expect(ob.bytes).toBeLessThanOrEqual(100);
    expect(ob.next(10).map(idx)).toEqual([2, 3, 4]);
    expect(await counter(metrics.dropped, { reason: 'outbox_full' })).toBe(2);
  });

  it('reject-new: refuses what does not fit (count or bytes) and counts it', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const ob = open(tempDir(cleanup, 'outbox'), { max_messages: 5, max_bytes: 1000, policy: 'reject-new' }, metrics);
    const r = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map((i) => ob.enqueue(msg(i))));
    expect(r).toEqual([...Array(5).fill('accepted'), ...Array(3).fill('rejected')]);
    expect(ob.next(10).map(idx)).toEqual([0, 1, 2, 3, 4]);
    expect(await counter(metrics.dropped, { reason: 'outbox_rejected' })).toBe(3);
    const ob2 = open(tempDir(cleanup, 'outbox'), { max_bytes: 50, policy: 'reject-new' }, metrics);
    expect(await Promise.all([0, 1, 2].map((i) => ob2.enqueue(msg(i, 't/a', 20))))).toEqual(['accepted', 'accepted', 'rejected']);
    expect(await counter(metrics.dropped, { reason: 'outbox_rejected' })).toBe(4);
  });

  it('a message larger than max_bytes is refused under both policies', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    for (const policy of ['drop-oldest', 'reject-new'] as const) {
      const ob = open(tempDir(cleanup, 'outbox'), { max_bytes: 50, policy }, metrics);
      await ob.enqueue(msg(0));
      expect(await ob.enqueue(msg(1, 't/a', 60))).toBe('rejected');
      expect(ob.depth).toBe(1);
    }
    expect(await counter(metrics.dropped, { reason: 'outbox_too_large' })).toBe(2);
  });

  it('sets the depth, bytes and oldest-age gauges', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const ob = open(tempDir(cleanup, 'outbox'), {}, metrics);
    await Promise.all([0, 1, 2].map((i) => ob.enqueue(msg(i))));
    const gauge = async (g: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> => (await g.get()).values[0]!.value;
    expect(await gauge(metrics.outboxDepth)).toBe(3);
    expect(await gauge(metrics.outboxBytes)).toBe(39);
    await new Promise((r) => setTimeout(r, 1100));
    expect(ob.oldestAgeMs()).toBeGreaterThanOrEqual(1000);
    expect(await gauge(metrics.outboxOldestAge)).toBeGreaterThan(0.5); // computed when read, without a commit
    for (const m of ob.next(10)) ob.ack(m.id);
    ob.flush();
    expect(await gauge(metrics.outboxDepth)).toBe(0);
    expect(await gauge(metrics.outboxOldestAge)).toBe(0);
  });

  it('counts commits and WAL fsyncs, on from one outbox to the next on the same metrics', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const dir = tempDir(cleanup, 'outbox');
    const first = new Outbox(outboxConfig(dir), { metrics, synchronous: 'full' });
    await Promise.all([0, 1, 2].map((i) => first.enqueue(msg(i)))); // one turn: one commit, one fsync
    await first.enqueue(msg(3));
    expect(await counter(metrics.outboxCommits, {})).toBe(2);
    expect(await counter(metrics.outboxSyncs, {})).toBe(2);
    for (const m of first.next(10)) first.ack(m.id);
    first.close(); // the deletes: a commit without fsync
    expect(await counter(metrics.outboxCommits, {})).toBe(3);
    expect(await counter(metrics.outboxSyncs, {})).toBe(2);
    const second = open(dir, {}, metrics);
    await second.enqueue(msg(4));
    expect(await counter(metrics.outboxCommits, {})).toBe(4);
    expect(await counter(metrics.outboxSyncs, {})).toBe(3);
  });

  it('moves a corrupt file aside (left as it was, timestamped name) and starts empty, saying so', async () => {
    const dir = tempDir(cleanup, 'outbox');
    const file = path.join(dir, 'outbox', 'outbox.db');
    fs.mkdirSync(path.dirname(file));
    const junk = Buffer.from('this is not a database, but someone may want it back '.repeat(100));
    fs.writeFileSync(file, junk);
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const logger = captureLogger();
    const ob = new Outbox(outboxConfig(dir), { metrics, logger });
    cleanup.add(() => ob.close());
    expect(ob.depth).toBe(0);
    expect(ob.recovery).toMatchObject({ recovered: 'corrupt', moved_to: expect.stringMatching(/^outbox\.db\.corrupt-\d{8}T\d{6}Z$/), salvaged: 0, lost: null });
    expect(fs.readFileSync(path.join(path.dirname(file), ob.recovery!.moved_to!)).equals(junk)).toBe(true);
    expect(logger.matching(/<error> outbox .*not a valid SQLite database.*moved aside to outbox\.db\.corrupt-.*an unknown number of \(no commit record\) accepted message\(s\) lost/)).toHaveLength(1);
    expect(await counter(metrics.outboxRecovered, { reason: 'corrupt' })).toBe(1);
    expect(await ob.enqueue(msg(1))).toBe('accepted');
  });

  it('refuses a topic the broker would drop the connection for, before it reaches the disk', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const logger = captureLogger();
    const ob = new Outbox(outboxConfig(tempDir(cleanup, 'outbox')), { metrics, logger });
    cleanup.add(() => ob.close());
    expect(await ob.enqueue(msg(0, 'a/#'))).toBe('rejected');
    expect(await ob.enqueue(msg(1, 'a/\u0000'))).toBe('rejected');
    expect(await ob.enqueue(msg(2, 'a/b'))).toBe('accepted');
    expect(await ob.enqueue(msg(3, 'a/b'))).toBe('accepted');
    expect(await ob.enqueue(msg(4, 'a/+'))).toBe('rejected'); // a good topic before does not let the next one through
    expect(ob.depth).toBe(2);
    expect(await counter(metrics.dropped, { reason: 'topic_invalid' })).toBe(3);
    expect(logger.matching(/<warn> outbox .*1 message\(s\) dropped \(topic_invalid\): route r: '#' is a wildcard, not allowed in a topic name/)).toHaveLength(1);
  });

  it('dead-letter table: bounded to the 100 newest rows, every dead row counted', async () => {
    const dir = tempDir(cleanup, 'outbox');
    const a = open(dir);
    await Promise.all(Array.from({ length: 160 }, (_, i) => a.enqueue(msg(i))));
    a.close();
    // 150 rows damaged the way a flipped byte would (their checksum no longer matches)
    const db = new Database(outboxConfig(dir).path);
    db.prepare("UPDATE outbox SET payload = CAST(x'00' || substr(payload, 2) AS BLOB) WHERE id <= 150").run();
    db.close();
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const ob = open(dir, {}, metrics);
    const got: number[] = [];
    for (let m = ob.next(50); m.length > 0; m = ob.next(50)) got.push(...m.map(idx));
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => 150 + i));
    expect(await counter(metrics.dropped, { reason: 'outbox_invalid' })).toBe(150);
    expect(ob.depth).toBe(10);
    ob.close();
    const check = new Database(outboxConfig(dir).path, { readonly: true });
    cleanup.add(() => check.close());
    const dead = check.prepare('SELECT MIN(id) AS lo, MAX(id) AS hi, COUNT(*) AS n, MIN(reason) AS reason FROM outbox_dead').get();
    expect(dead).toEqual({ lo: 51, hi: 150, n: 100, reason: expect.stringMatching(/^checksum mismatch/) });
  });

  it('refuses a file held by another outbox (one agent per outbox), and does not move it', () => {
    const dir = tempDir(cleanup, 'outbox');
    open(dir);
    expect(() => new Outbox(outboxConfig(dir))).toThrow(OutboxError);
    expect(() => new Outbox(outboxConfig(dir))).toThrow(/locked by another process/);
    expect(fs.readdirSync(path.join(dir, 'outbox')).filter((f) => f.includes('corrupt'))).toEqual([]);
  });
});

describe('Outbox commit_delay_ms', () => {
  it('holds the messages of several turns for one commit, started by the first message', async () => {
    // 400 ms, not 40: five turns of a 2 ms timer took more than 40 ms once in CI (2 loaded cores).
    const ob = open(tempDir(cleanup, 'outbox'), { commit_delay_ms: 400 });
    const t0 = performance.now();
    const results: Array<Promise<string>> = [];
    for (let i = 0; i < 5; i++) {
      results.push(ob.enqueue(msg(i)));
      await new Promise((r) => setTimeout(r, 2));
    }
    const turns = performance.now() - t0;
    expect(turns, 'the five turns must end within the delay for this test to mean anything').toBeLessThan(400);
    expect(ob.stats.commits).toBe(0);
    expect(ob.next(10)).toEqual([]); // nothing is sent before it is committed
    expect(await Promise.all(results)).toEqual(Array(5).fill('accepted'));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(399); // timers may round down by a ms
    expect(ob.stats.commits).toBe(1);
    expect(ob.next(10).map(idx)).toEqual([0, 1, 2, 3, 4]);
  });

  it('commits early once 1,024 messages wait, and at close what still waits', async () => {
    const dir = tempDir(cleanup, 'outbox');
    const ob = new Outbox(outboxConfig(dir, { commit_delay_ms: 1000 }), { metrics: new AgentMetrics({ defaultMetrics: false }) });
    const t0 = performance.now();
    const flood = Array.from({ length: 1024 }, (_, i) => ob.enqueue(msg(i)));
    expect(await Promise.all(flood)).toEqual(Array(1024).fill('accepted'));
    expect(performance.now() - t0).toBeLessThan(900);
    expect(ob.stats.commits).toBe(1);
    const late = ob.enqueue(msg(1024));
    ob.close(); // commits it, the delay notwithstanding
    expect(await late).toBe('accepted');
    const again = open(dir);
    expect(again.depth).toBe(1025);
  });
});
