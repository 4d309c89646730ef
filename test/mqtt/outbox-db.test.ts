/**
 * The outbox's SQLite file as src/sinks/mqtt/outbox-db.ts opens it: the
 * schema version it writes once, a newer one it refuses, and a reopening
 * that writes nothing (every write is a WAL frame on a board's flash).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { OutboxError, openDatabase } from '../../src/sinks/mqtt/outbox-db.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'afb-edge-outbox-db-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('a new file gets schema version 1', () => {
  const db = openDatabase(join(dir, 'o.db'), 'normal');
  expect(db.pragma('user_version', { simple: true })).toBe(1);
  expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  db.close();
});

it('reopening an outbox writes nothing to it', async () => {
  const file = join(dir, 'o.db');
  openDatabase(file, 'normal').close();
  const before = statSync(file, { bigint: true });
  await new Promise((r) => setTimeout(r, 20));
  const db = openDatabase(file, 'normal');
  expect(db.pragma('user_version', { simple: true })).toBe(1);
  db.close();
  const after = statSync(file, { bigint: true });
  expect({ mtime: after.mtimeNs, size: after.size }).toEqual({ mtime: before.mtimeNs, size: before.size });
});

it('a file written by a newer afb-edge is refused and left as it is', () => {
  const file = join(dir, 'o.db');
  const db = openDatabase(file, 'normal');
  db.pragma('user_version = 2');
  db.close();
  expect(() => openDatabase(file, 'normal')).toThrow(OutboxError);
  expect(() => openDatabase(file, 'normal')).toThrow(/schema version 2 was written by a newer afb-edge \(this one knows 1\)/);
});
