/**
 * The outbox's multi-row INSERTs (src/sinks/mqtt/row-inserter.ts), on a
 * real SQLite database: every row added is written, in order, by full
 * statements and by flush(); and once written, a row's payload is no longer
 * held by the inserter. A payload kept in a slot of the reused values array
 * lived on for as long as no statement reached that slot again, was
 * promoted, and pinned its Buffer pool slab until a full collection: the
 * agent's memory grew for as long as it ran at a steady rate.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { RowInserter } from '../../src/sinks/mqtt/row-inserter.js';

// A real collection, to see what the inserter still references (the flag only exposes gc()).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let db: Database.Database | undefined;
afterEach(() => db?.close());

function open(): Database.Database {
  db = new Database(':memory:');
  db.exec('CREATE TABLE outbox (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER, retain INTEGER, route TEXT, created_ms INTEGER, bytes INTEGER, crc INTEGER)');
  return db;
}

function addRows(rows: RowInserter, from: number, count: number): WeakRef<Buffer>[] {
  const refs: WeakRef<Buffer>[] = [];
  for (let id = from; id < from + count; id++) {
    const payload = Buffer.from(`payload ${id}`);
    refs.push(new WeakRef(payload));
    rows.add(id, `t/${id}`, payload, 1, 0, 'r', 1000 + id, payload.length, id);
  }
  return refs;
}

/** The payloads still alive after a full collection. */
async function alive(refs: WeakRef<Buffer>[]): Promise<number> {
  // WeakRef targets read in this job stay alive until it ends.
  await new Promise((r) => setImmediate(r));
  gc();
  return refs.filter((r) => r.deref() !== undefined).length;
}

describe('RowInserter', () => {
  it('writes every row, by full statements of 32 and by flush(), with its values', () => {
    const rows = new RowInserter(open());
    addRows(rows, 1, 70);
    expect(db!.prepare('SELECT COUNT(*) FROM outbox').pluck().get()).toBe(64); // two full statements
    rows.flush();
    const all = db!.prepare('SELECT * FROM outbox ORDER BY id').all() as Array<Record<string, unknown>>;
    expect(all.map((r) => r.id)).toEqual(Array.from({ length: 70 }, (_, i) => i + 1));
    expect(all[69]).toEqual({ id: 70, topic: 't/70', payload: Buffer.from('payload 70'), qos: 1, retain: 0, route: 'r', created_ms: 1070, bytes: 10, crc: 70 });
  });

  it('holds no payload once it is written: a commit of many rows, then commits of one', async () => {
    const rows = new RowInserter(open());
    const many = addRows(rows, 1, 40); // one full statement, 8 rows left
    rows.flush();
    for (let id = 41; id < 50; id++) {
      addRows(rows, id, 1);
      rows.flush();
    }
    expect(await alive(many)).toBe(0);
  });

  it('holds no payload of a statement that failed, nor of rows discarded', async () => {
    const rows = new RowInserter(open());
    addRows(rows, 1, 1);
    rows.flush();
    const failed = addRows(rows, 1, 3); // id 1 again: the primary key refuses the first of them
    expect(() => rows.flush()).toThrow(/UNIQUE/);
    const discarded = addRows(rows, 10, 5);
    rows.discard();
    rows.flush();
    expect(db!.prepare('SELECT COUNT(*) FROM outbox').pluck().get()).toBe(1);
    expect(await alive([...failed, ...discarded])).toBe(0);
  });
});
