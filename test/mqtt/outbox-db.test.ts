/**
 * The outbox's SQLite file as src/sinks/mqtt/outbox-db.ts opens it: the
 * schema version it writes once, a version 1 file upgraded in place, a
 * newer one it refuses, a reopening that writes nothing (every write is a
 * WAL frame on a board's flash), and the kind of each failure.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { OutboxError, openDatabase } from '../../src/sinks/mqtt/outbox-db.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'afb-edge-outbox-db-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('a new file gets schema version 2 (row checksum, dead-letter table)', () => {
  const db = openDatabase(join(dir, 'o.db'), 'normal');
  expect(db.pragma('user_version', { simple: true })).toBe(2);
  expect((db.pragma('table_info(outbox)') as Array<{ name: string }>).map((c) => c.name)).toContain('crc');
  expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'outbox_dead'").get()).toEqual({ name: 'outbox_dead' });
  expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  db.close();
});

it('reopening an outbox writes nothing to it', async () => {
  const file = join(dir, 'o.db');
  openDatabase(file, 'normal').close();
  const before = statSync(file, { bigint: true });
  await new Promise((r) => setTimeout(r, 20));
  const db = openDatabase(file, 'normal');
  expect(db.pragma('user_version', { simple: true })).toBe(2);
  db.close();
  const after = statSync(file, { bigint: true });
  expect({ mtime: after.mtimeNs, size: after.size }).toEqual({ mtime: before.mtimeNs, size: before.size });
});

it('a file written by a newer afb-edge is refused (kind newer) and left as it is', () => {
  const file = join(dir, 'o.db');
  const db = openDatabase(file, 'normal');
  db.pragma('user_version = 3');
  db.close();
  expect(() => openDatabase(file, 'normal')).toThrow(/schema version 3 was written by a newer afb-edge \(this one knows 2\)/);
  try {
    openDatabase(file, 'normal');
  } catch (err) {
    expect(err).toBeInstanceOf(OutboxError);
    expect((err as OutboxError).kind).toBe('newer');
  }
});

it('a version 1 file is upgraded in place: its rows kept (checksum NULL), the dead-letter table added', () => {
  const file = join(dir, 'o.db');
  const old = new Database(file);
  old.pragma('journal_mode = WAL');
  old.exec('CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, route TEXT NOT NULL, created_ms INTEGER NOT NULL, bytes INTEGER NOT NULL)');
  old.prepare("INSERT INTO outbox (topic, payload, qos, retain, route, created_ms, bytes) VALUES ('t/a', x'41', 1, 0, 'r', 5, 4)").run();
  old.pragma('user_version = 1');
  old.close();
  const db = openDatabase(file, 'normal');
  expect(db.pragma('user_version', { simple: true })).toBe(2);
  expect(db.prepare('SELECT id, topic, crc FROM outbox').all()).toEqual([{ id: 1, topic: 't/a', crc: null }]);
  expect(db.prepare('SELECT COUNT(*) AS n FROM outbox_dead').get()).toEqual({ n: 0 });
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
