/**
 * Issue 11 item 7 at the sink level, on real files after a real kill -9:
 * garbage in the WAL (SQLite silently drops the frames from the first bad
 * one on) is detected, the loss reported with its number, the rest
 * delivered; a corrupt database file is moved aside, what can still be
 * read from it is kept, the loss is counted; a deleted database is a loss
 * too; and a kill -9 while acknowledgements are being committed is never
 * reported as a loss.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Outbox } from '../../src/sinks/mqtt/outbox.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Cleanup, tempDir, withTimeout } from '../helpers/net-helpers.js';
import { Collector, counter, lastJson, outboxConfig } from '../helpers/mqtt-helpers.js';
import { deliverAll, ensureBuilt, faultPayload, reportedLost, writeAndKill } from './outbox-fault-helpers.js';

let broker: Broker;
beforeAll(async () => {
  ensureBuilt();
  broker = await startBroker({ persistence: false });
}, 120_000);
afterAll(() => broker?.close());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const N = 3000;

describe('outbox: garbage in the WAL after kill -9', () => {
  it('the messages SQLite drops are reported with their number; every other one is delivered', async () => {
    const file = path.join(tempDir(cleanup, 'wal'), 'outbox.db');
    await writeAndKill(cleanup, file, N);
    const wal = fs.readFileSync(`${file}-wal`);
    expect(wal.length).toBeGreaterThan(100_000); // the messages are in the WAL, not checkpointed
    wal.fill(0xa5, wal.length >> 1, (wal.length >> 1) + 64);
    fs.writeFileSync(`${file}-wal`, wal);

    const d = await deliverAll(cleanup, broker, file);
    const delivered = d.delivered();
    expect(d.garbled()).toEqual([]);
    expect(delivered.size).toBeLessThan(N); // the garbage did cost messages
    expect(delivered.size).toBeGreaterThan(0);
    const lost = await reportedLost(d.metrics);
    expect(lost, `delivered ${delivered.size} of ${N}`).toBe(N - delivered.size);
    expect(await counter(d.metrics.outboxRecovered, { reason: 'wal' })).toBe(1);
    const lines = d.logger.matching(/<error> outbox .*: (\d+) accepted message\(s\) lost/);
    expect(lines, d.logger.lines.join('\n')).toHaveLength(1);
    expect(lines[0]).toContain(`${N - delivered.size} accepted message(s) lost`);
    await d.collector.client.subscribeAsync('fleet/car-042/status', { qos: 1 });
    await d.collector.waitFor(() => lastJson(d.collector, 'fleet/car-042/status') !== undefined, 3000, 'status');
    expect(lastJson(d.collector, 'fleet/car-042/status')!.outbox).toMatchObject({ recovered: 'wal', lost: N - delivered.size });
  }, 60_000);
});

describe('outbox: a damaged database file', () => {
  it('a zeroed page in the middle: moved aside, the rows before and after it copied to the fresh outbox and delivered, the rest counted lost', async () => {
    const file = path.join(tempDir(cleanup, 'salvage'), 'outbox.db');
    const ob = new Outbox({ ...outboxConfig(''), path: file, max_messages: 100_000 });
    await Promise.all(Array.from({ length: N }, (_, i) => ob.enqueue({ topic: `fault/${i % 4}`, payload: Buffer.from(faultPayload(i)), qos: 1, retain: false, route: 'r' })));
    ob.close(); // checkpointed: everything in the database file
    const data = fs.readFileSync(file);
    const page = Math.floor(data.length / 4096 / 2) * 4096;
    data.fill(0, page, page + 4096);
    fs.writeFileSync(file, data);

    const d = await deliverAll(cleanup, broker, file);
    const delivered = d.delivered();
    expect(d.garbled()).toEqual([]);
    const r = d.sink.outboxRecovery!;
    expect(r).toMatchObject({ recovered: 'corrupt', moved_to: expect.stringMatching(/^outbox\.db\.corrupt-/) });
    expect(r.salvaged).toBe(delivered.size);
    expect(delivered.size).toBeGreaterThan(N * 0.9); // one page holds a few dozen rows
    expect(delivered.has(0) && delivered.has(N - 1)).toBe(true); // both sides of the damaged page
    expect(r.lost).toBe(N - delivered.size);
    expect(await reportedLost(d.metrics)).toBe(N - delivered.size);
    expect(d.logger.matching(new RegExp(`moved aside to ${r.moved_to!.replace(/\./g, '\\.')} .*${r.salvaged} message\\(s\\) copied from it .*${r.lost} accepted message\\(s\\) lost`))).toHaveLength(1);
  }, 60_000);

  it('the database deleted, its commit record left: every message it held is reported lost (missing)', async () => {
    const file = path.join(tempDir(cleanup, 'missing'), 'outbox.db');
    await writeAndKill(cleanup, file, 500);
    fs.rmSync(file);
    fs.rmSync(`${file}-wal`, { force: true });
    const d = await deliverAll(cleanup, broker, file);
    expect(d.sink.outboxRecovery).toMatchObject({ recovered: 'missing', lost: 500 });
    expect(await counter(d.metrics.dropped, { reason: 'outbox_lost' })).toBe(500);
    expect(await counter(d.metrics.outboxRecovered, { reason: 'missing' })).toBe(1);
  }, 60_000);

  it('a torn commit record is ignored with a warning: the outbox opens and delivers everything', async () => {
    const file = path.join(tempDir(cleanup, 'torn'), 'outbox.db');
    await writeAndKill(cleanup, file, 500);
    const rec = fs.readFileSync(`${file}-commit`);
    rec[20] ^= 0xff;
    fs.writeFileSync(`${file}-commit`, rec);
    const d = await deliverAll(cleanup, broker, file);
    expect(d.delivered().size).toBe(500);
    expect(d.sink.outboxRecovery).toBeUndefined();
    expect(d.logger.matching(/<warn> outbox .*commit record ignored: .*fails its checksum/)).toHaveLength(1);
  }, 60_000);
});

describe('outbox: kill -9 while the broker acknowledges', () => {
  const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/outbox-child.mjs');

  it('deletes being committed when the process dies are never reported as a loss (5 kills at different moments)', async () => {
    const file = path.join(tempDir(cleanup, 'kill-acks'), 'outbox.db');
    const c = await Collector.connect(broker, ['kill/#'], 1);
    cleanup.add(() => c.close());
    let accepted = -1;
    for (let round = 0; round < 5; round++) {
      // the child publishes 100 per batch and delivers them to the live broker at the same time
      const proc = spawn(process.execPath, [child, broker.url, file, '1000000', 'drop-oldest'], { stdio: ['ignore', 'pipe', 'pipe'] });
      cleanup.add(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      const killAfter = 300 + round * 170;
      let lines = 0;
      await withTimeout(new Promise<void>((resolve) => {
        proc.stdout!.on('data', (d: Buffer) => {
          for (const l of d.toString().split('\n')) {
            if (!l.startsWith('accepted ')) continue;
            accepted = Math.max(accepted, Number(l.slice(9)));
            if (++lines * 100 >= killAfter) resolve();
          }
        });
      }), 15_000, 'the child');
      proc.kill('SIGKILL');
      await exited;
      const d = await deliverAll(cleanup, broker, file, 'kill');
      expect(d.sink.outboxRecovery, `round ${round}: ${d.logger.matching(/lost/).join(' ')}`).toBeUndefined();
      expect(await counter(d.metrics.dropped, { reason: 'outbox_lost' })).toBe(0);
      await d.sink.stop();
    }
    // each round's child restarts its numbering: every number up to the highest accepted arrived
    const got = new Set(c.messages.map((m) => (JSON.parse(m.text) as { i: number }).i));
    for (let i = 0; i <= 400; i++) expect(got.has(i), `message ${i}`).toBe(true);
    expect(accepted).toBeGreaterThan(400);
  }, 120_000);
});
