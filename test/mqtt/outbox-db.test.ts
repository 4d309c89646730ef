/**
 * The outbox's SQLite file as src/sinks/mqtt/outbox-db.ts opens it: the
 * schema version it writes once, version 1 and 2 files upgraded in place,
 * a newer one it refuses, a reopening that writes nothing (every write is a
 * WAL frame on a board's flash), and the kind of each failure.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { OutboxError, highestId, openDatabase } from '../../src/sinks/mqtt/outbox-db.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'afb-edge-outbox-db-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const tableSql = (db: Database.Database): string => db.prepare("SELECT sql FROM sqlite_master WHERE name = 'outbox'").pluck().get() as string;

it('a new file gets schema version 3 (row checksum, dead-letter table, reserved ids), 1 KiB pages and no AUTOINCREMENT', () => {
  const db = openDatabase(join(dir, 'o.db'), 'normal');
  expect(db.pragma('user_version', { simple: true })).toBe(3);
  expect((db.pragma('table_info(outbox)') as Array<{ name: string }>).map((c) => c.name)).toContain('crc');
  expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'outbox_dead'").get()).toEqual({ name: 'outbox_dead' });
  expect(db.prepare('SELECT reserved FROM outbox_ids').all()).toEqual([{ reserved: 0 }]);
  expect(tableSql(db)).not.toMatch(/AUTOINCREMENT/i);
  expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'sqlite_sequence'").get()).toBeUndefined();
  expect(db.pragma('page_size', { simple: true })).toBe(1024);
  expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  db.close();
});

/** A file as version 2 wrote it: 4 KiB pages (SQLite's default), AUTOINCREMENT, the rows `ids`, its sequence at `seq` (a row given that id and deleted). */
function version2File(file: string, ids: number[], seq: number): void {
  const old = new Database(file);
  old.pragma('journal_mode = WAL');
  old.exec(`CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, route TEXT NOT NULL, created_ms INTEGER NOT NULL, bytes INTEGER NOT NULL, crc INTEGER);
    CREATE TABLE outbox_dead (id INTEGER PRIMARY KEY, topic, payload, qos, retain, route, created_ms, bytes, crc, reason TEXT NOT NULL, dead_ms INTEGER NOT NULL)`);
  const insert = old.prepare("INSERT INTO outbox VALUES (?, 't/a', x'41', 1, 0, 'r', 5, 4, NULL)");
  insert.run(seq);
  old.prepare('DELETE FROM outbox WHERE id = ?').run(seq);
  for (const id of ids) insert.run(id);
  old.pragma('user_version = 2');
  old.close();
}

it('a version 2 file holding messages is upgraded: its page size and AUTOINCREMENT stay, outbox_ids starts at its highest id', () => {
  const file = join(dir, 'o.db');
  version2File(file, [3, 4], 90);
  const db = openDatabase(file, 'normal');
  expect(db.pragma('user_version', { simple: true })).toBe(3);
  expect(db.pragma('page_size', { simple: true })).toBe(4096);
  expect(tableSql(db)).toMatch(/AUTOINCREMENT/);
  expect(db.prepare('SELECT id FROM outbox').pluck().all()).toEqual([3, 4]);
  expect(db.prepare('SELECT reserved FROM outbox_ids').all()).toEqual([{ reserved: 90 }]);
  expect(highestId(db)).toBe(90);
  db.close();
});

it('highestId counts only integers a message id can be: text, fractions, negatives and numbers past 2^53 in outbox_ids or sqlite_sequence are left out', () => {
  const file = join(dir, 'o.db');
  version2File(file, [7, 8], 5);
  let db = openDatabase(file, 'normal');
  db.prepare("INSERT INTO outbox_dead (id, reason, dead_ms) VALUES (12, 'x', 1)").run();
  expect(highestId(db)).toBe(12);
  for (const bad of ['zzz', 15.5, -40, 2n ** 60n, 1e300]) {
    db.prepare('UPDATE outbox_ids SET reserved = ?').run(bad);
    db.prepare("UPDATE sqlite_sequence SET seq = ? WHERE name = 'outbox'").run(bad);
    expect(highestId(db), String(bad)).toBe(12);
  }
  db.close();
  db = openDatabase(file, 'normal'); // and a reopening takes the file as it is
  expect(highestId(db)).toBe(12);
  db.close();
});

it('a table with AUTOINCREMENT found empty is made again without it, its sequence carried to outbox_ids', () => {
  const file = join(dir, 'o.db');
  version2File(file, [], 90);
  let db = openDatabase(file, 'normal');
  expect(tableSql(db)).not.toMatch(/AUTOINCREMENT/i);
  expect(highestId(db)).toBe(90);
  expect((db.pragma('table_info(outbox)') as Array<{ name: string }>).map((c) => c.name).join(',')).toBe('id,topic,payload,qos,retain,route,created_ms,bytes,crc');
  db.close();
  // and the same for a file that held messages at its upgrade, at the first start that finds it empty
  rmSync(file);
  version2File(file, [95], 90);
  db = openDatabase(file, 'normal');
  expect(tableSql(db)).toMatch(/AUTOINCREMENT/);
  db.prepare('DELETE FROM outbox').run();
  db.close();
  db = openDatabase(file, 'normal');
  expect(tableSql(db)).not.toMatch(/AUTOINCREMENT/i);
  expect(highestId(db)).toBe(95);
  db.close();
});

it('reopening an outbox writes nothing to it', async () => {
  const file = join(dir, 'o.db');
  openDatabase(file, 'normal').close();
  const before = statSync(file, { bigint: true });
  await new Promise((r) => setTimeout(r, 20));
  const db = openDatabase(file, 'normal');
  expect(db.pragma('user_version', { simple: true })).toBe(3);
  db.close();
  const after = statSync(file, { bigint: true });
  expect({ mtime: after.mtimeNs, size: after.size }).toEqual({ mtime: before.mtimeNs, size: before.size });
});

it('a file written by a newer afb-edge is refused (kind newer) and left as it is', () => {
  const file = join(dir, 'o.db');
  const db = openDatabase(file, 'normal');
  db.pragma('user_version = 4');
  db.close();
  expect(() => openDatabase(file, 'normal')).toThrow(/schema version 4 was written by a newer afb-edge \(this one knows 3\)/);
  try {
    openDatabase(file, 'normal');
  } catch (err) {
    expect(err).toBeInstanceOf(OutboxError);
    expect((err as OutboxError).kind).toBe('newer');
  }
});

it('a version 1 file is upgraded in place: its rows kept (checksum NULL), the dead-letter and reserved-ids tables added', () => {
  const file = join(dir, 'o.db');
  const old = new Database(file);
  old.pragma('journal_mode = WAL');
  old.exec('CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, route TEXT NOT NULL, created_ms INTEGER NOT NULL, bytes INTEGER NOT NULL)');
  old.prepare("INSERT INTO outbox (topic, payload, qos, retain, route, created_ms, bytes) VALUES ('t/a', x'41', 1, 0, 'r', 5, 4)").run();
  old.pragma('user_version = 1');
  old.close();
  const db = openDatabase(file, 'normal');
  expect(db.pragma('user_version', { simple: true })).toBe(3);
  expect(db.prepare('SELECT id, topic, crc FROM outbox').all()).toEqual([{ id: 1, topic: 't/a', crc: null }]);
  expect(db.prepare('SELECT COUNT(*) AS n FROM outbox_dead').get()).toEqual({ n: 0 });
  expect(db.prepare('SELECT reserved FROM outbox_ids').pluck().get()).toBe(1);
  db.close();
});

it('failures say their kind: a corrupt file, a valid database that is not an outbox', () => {
  const junk = join(dir, 'junk.db');
  writeFileSync(junk, Buffer.alloc(8192, 0x41));
  const kind = (f: string): string | undefined => {
    try {
      openDatabase(f, 'normal').close();
      return undefined;
    } catch (err) {
      return (err as OutboxError).kind;
    }
  };
  expect(kind(junk)).toBe('corrupt');
  const other = join(dir, 'other.db');
  const db = new Database(other);
  db.exec('CREATE TABLE outbox (a, b)');
  db.close();
  expect(kind(other)).toBe('foreign');
});
