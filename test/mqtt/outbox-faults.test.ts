/**
 * Outbox fault injection (issue 11): random damage to the database file
 * and to its WAL between a real kill -9 and a restart. Whatever the damage,
 * the sink comes up, delivers every message that survived exactly as it
 * was written (none garbled: the row checksum stops those), in order per
 * topic, and reports every loss with a count:
 *
 *   delivered + reported lost (outbox_lost at open + outbox_invalid rows) = written
 *
 * (reported lost may exceed that only by dead-lettered rows whose damaged
 * id lies outside the ids written: counted lost by the commit record and
 * invalid when read; the test measures them from the dead-letter table).
 *
 * Two writer runs give the starting points: a WAL holding everything (the
 * default budget) and a database holding most of it (a 512 KiB budget:
 * frequent checkpoints). fast-check picks the file, the kind of damage
 * (bytes flipped, a range of garbage, a zeroed page, a truncation), where
 * and how much; FC_SEED replays a run (test/helpers/net-helpers.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startBroker, type Broker } from '../helpers/broker.js';
import { counter } from '../helpers/mqtt-helpers.js';
import { Cleanup, fcSeed, tempDir } from '../helpers/net-helpers.js';
import { deliverAll, ensureBuilt, reportedLost, writeAndKill } from './outbox-fault-helpers.js';

const N = 1500;
const RUNS = Number(process.env.OUTBOX_FAULT_RUNS ?? 48);

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let broker: Broker;
/** Snapshots of the files right after kill -9: name -> directory holding outbox.db, -wal, -commit. */
const snapshots = new Map<string, string>();

beforeAll(async () => {
  ensureBuilt();
  broker = await startBroker({ persistence: false });
  const keep = new Cleanup();
  for (const [name, maxBytes] of [['wal-heavy', 64 << 20], ['db-heavy', 512 << 10]] as const) {
    const dir = fs.mkdtempSync(path.join(tempDir(keep, 'faults-base'), `${name}-`));
    await writeAndKill(keep, path.join(dir, 'outbox.db'), N, maxBytes);
    snapshots.set(name, dir);
  }
  afterAllCleanups.push(() => keep.run());
}, 120_000);
const afterAllCleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of afterAllCleanups) await c();
  await broker?.close();
});

type Damage =
  | { kind: 'flip'; at: number; count: number }
  | { kind: 'garbage'; at: number; length: number; seed: number }
  | { kind: 'zero-page'; at: number }
  | { kind: 'truncate'; at: number };

/** Where in the file, as a fraction: without fast-check's bias towards the bounds (it would hit the header and the last byte most). */
const where = fc.noBias(fc.integer({ min: 0, max: 999_999 })).map((n) => n / 1_000_000);

const damage: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: where, count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('garbage' as const), at: where, length: fc.integer({ min: 1, max: 4096 }), seed: fc.integer({ min: 1, max: 0x7fffffff }) }),
  fc.record({ kind: fc.constant('zero-page' as const), at: where }),
  fc.record({ kind: fc.constant('truncate' as const), at: where }),
);

/** A small deterministic byte source for the garbage (fast-check gives the seed). */
function bytes(seed: number, n: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function apply(file: string, d: Damage): void {
  if (!fs.existsSync(file)) return;
  const data = fs.readFileSync(file);
  if (data.length === 0) return;
  const at = Math.floor(d.at * data.length);
  switch (d.kind) {
    case 'flip':
      for (let k = 0; k < d.count; k++) {
        const i = (at + k * 997) % data.length;
        data[i] = data[i]! ^ (1 << (k % 8));
      }
      break;
    case 'garbage':
      bytes(d.seed, Math.min(d.length, data.length - at)).copy(data, at);
      break;
    case 'zero-page':
      data.fill(0, at - (at % 4096), Math.min(data.length, at - (at % 4096) + 4096));
      break;
    case 'truncate':
      fs.writeFileSync(file, data.subarray(0, at));
      return;
  }
  fs.writeFileSync(file, data);
}

/** Rows of the dead-letter table whose (damaged) id is not one the writer used. */
function deadOutOfRange(file: string): number {
  const db = new Database(file, { fileMustExist: true });
  try {
    const table = db.prepare("SELECT name FROM sqlite_master WHERE name = 'outbox_dead'").get();
    return table === undefined ? 0 : (db.prepare('SELECT COUNT(*) AS n FROM outbox_dead WHERE id < 1 OR id > ?').get(N) as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('outbox fault injection: random damage between kill -9 and restart', () => {
  it(`comes up, delivers every surviving message intact and in order per topic, and counts every loss (${RUNS} runs)`, async () => {
    const outcomes: Record<string, number> = {};
    await fc.assert(fc.asyncProperty(
      fc.constantFrom('wal-heavy', 'db-heavy'),
      fc.constantFrom('db', 'wal', 'both'),
      fc.array(damage, { minLength: 1, maxLength: 3 }),
      async (snapshot, target, damages) => {
        const run = new Cleanup();
        const t0 = Date.now();
        try {
          const dir = tempDir(run, 'faults');
          for (const f of fs.readdirSync(snapshots.get(snapshot)!)) fs.copyFileSync(path.join(snapshots.get(snapshot)!, f), path.join(dir, f));
          const file = path.join(dir, 'outbox.db');
          for (const d of damages) {
            if (target !== 'wal') apply(file, d);
            if (target !== 'db') apply(`${file}-wal`, d);
          }
          const d = await deliverAll(run, broker, file);
          const delivered = d.delivered();
          expect(d.garbled(), 'messages that are not what was written').toEqual([]);
          const perTopic = new Map<number, number>();
          for (const m of d.collector.messages) {
            const i = (JSON.parse(m.text) as { i: number }).i;
            expect(i, `order on ${m.topic}`).toBeGreaterThan(perTopic.get(i % 4) ?? -1);
            perTopic.set(i % 4, i);
          }
          const lost = await reportedLost(d.metrics);
          const recovered = d.sink.outboxRecovery?.recovered ?? 'none';
          await d.sink.stop();
          const extra = deadOutOfRange(file);
          expect(delivered.size + lost, `${snapshot}/${target} ${JSON.stringify(damages)}: delivered ${delivered.size}, reported lost ${lost}, recovery ${recovered}`)
            .toBeGreaterThanOrEqual(N);
          expect(delivered.size + lost).toBeLessThanOrEqual(N + extra);
          const key = `${snapshot}/${target} ${recovered}${lost > 0 ? '+lost' : ''}${(await counter(d.metrics.dropped, { reason: 'outbox_invalid' })) > 0 ? '+dead' : ''}`;
          outcomes[key] = (outcomes[key] ?? 0) + 1;
        } finally {
          await run.run();
          if (Date.now() - t0 > 3000) console.log(`[outbox faults] slow run (${Date.now() - t0} ms): ${snapshot}/${target} ${JSON.stringify(damages)}`);
        }
      },
    ), { numRuns: RUNS, seed: fcSeed(), endOnFailure: true });
    console.log(`[outbox faults] outcomes over ${RUNS} runs: ${JSON.stringify(outcomes)}`);
  }, Math.max(60_000, RUNS * 2000));
});
