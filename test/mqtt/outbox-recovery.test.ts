/**
 * Issue 11 item 7 at the sink level, on real files after a real kill -9:
 * garbage in the WAL (SQLite silently drops the frames from the first bad
 * one on) is detected, the loss reported with its number, the rest
 * delivered; a corrupt database file is moved aside, what can still be
 * read from it is kept, the loss is counted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { counter, lastJson } from '../helpers/mqtt-helpers.js';
import { deliverAll, ensureBuilt, reportedLost, writeAndKill } from './outbox-fault-helpers.js';

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
