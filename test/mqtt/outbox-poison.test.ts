/**
 * Issue 11 item 6, a poison message: a few corrupt bytes in one stored row
 * (a '#' or a control character in its topic) pass SQLite's quick_check;
 * mosquitto drops the connection at every resend of it. The row must be
 * found as it is read back, moved to the dead-letter table, counted and
 * logged with its id, and everything else must drain.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import { Outbox } from '../../src/sinks/mqtt/outbox.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { captureLogger, Collector, counter, device, mqttConfig, outboxConfig } from '../helpers/mqtt-helpers.js';

let broker: Broker;
beforeAll(async () => { broker = await startBroker({ persistence: false }); });
afterAll(() => broker?.close());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const N = 1500;
const POISON = 777;
const topicOf = (i: number): string => `poison/${String(i).padStart(4, '0')}`;

/** Replaces the first occurrence of `find` in the file by `replace` (same length): bytes changed under SQLite. */
function patchFile(file: string, find: string, replace: Buffer): void {
  const data = fs.readFileSync(file);
  const at = data.indexOf(Buffer.from(find));
  expect(at, `${find} in ${file}`).toBeGreaterThan(0);
  replace.copy(data, at);
  fs.writeFileSync(file, data);
}

/** The outbox file as this release's Outbox writes it: N messages, then closed (checkpointed into the main file). */
async function writeWithOutbox(file: string): Promise<void> {
  const ob = new Outbox({ ...outboxConfig(''), path: file, max_messages: 100_000 });
  await Promise.all(Array.from({ length: N }, (_, i) => ob.enqueue({ topic: topicOf(i), payload: Buffer.from(JSON.stringify({ i })), qos: 1, retain: false, route: 'r' })));
  ob.close();
}

/** The outbox file as the previous release (schema version 1, no row checksum) wrote it. */
function writeVersion1(file: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, route TEXT NOT NULL, created_ms INTEGER NOT NULL, bytes INTEGER NOT NULL)');
  db.pragma('user_version = 1');
  const ins = db.prepare('INSERT INTO outbox (topic, payload, qos, retain, route, created_ms, bytes) VALUES (?, ?, 1, 0, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < N; i++) {
      const payload = Buffer.from(JSON.stringify({ i }));
      ins.run(topicOf(i), payload, 'r', Date.now(), Buffer.byteLength(topicOf(i)) + payload.length);
    }
  })();
  db.close();
}

async function drain(file: string): Promise<{ c: Collector; metrics: AgentMetrics; logger: ReturnType<typeof captureLogger>; sink: MqttSink }> {
  const c = await Collector.connect(broker, ['poison/#'], 1);
  cleanup.add(() => c.close());
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const logger = captureLogger();
  const sink = new MqttSink(mqttConfig(broker.url, { client_id: `poison-${Math.random().toString(16).slice(2)}` }), { ...outboxConfig(''), path: file, max_messages: 100_000 },
    { device, metrics, logger });
  cleanup.add(() => sink.stop());
  await sink.start();
  return { c, metrics, logger, sink };
}

const variants: Array<{ name: string; write: (file: string) => Promise<void> | void; bytes: Buffer }> = [
  { name: "a '#' in the topic of a row written by the previous release (no checksum)", write: writeVersion1, bytes: Buffer.from('#') },
  { name: 'a control character in the topic of a row written by this release', write: writeWithOutbox, bytes: Buffer.from([0x01]) },
  { name: "a '#' in the topic of a row written by this release", write: writeWithOutbox, bytes: Buffer.from('#') },
];

describe('a poison row in the outbox', () => {
  for (const v of variants) {
    it(`${v.name}: dead-lettered, counted, logged with its id; the other ${N - 1} are delivered without a reconnection`, async () => {
      const file = path.join(tempDir(cleanup, 'poison'), 'outbox.db');
      await v.write(file);
      // poison/0777 -> poison/07#7 (or a control character): same length, quick_check still passes
      patchFile(file, topicOf(POISON), Buffer.concat([Buffer.from(topicOf(POISON).slice(0, 9)), v.bytes, Buffer.from(topicOf(POISON).slice(10))]));
      const check = new Database(file, { readonly: true });
      expect(check.pragma('quick_check', { simple: true })).toBe('ok');
      check.close();

      const { c, metrics, logger, sink } = await drain(file);
      await c.waitFor((m) => new Set(m.map((x) => x.text)).size >= N - 1, 10_000, `${N - 1} messages`);
      const got = new Set(c.messages.map((m) => (JSON.parse(m.text) as { i: number }).i));
      expect(got.has(POISON)).toBe(false);
      expect(got.size).toBe(N - 1);
      expect(await counter(metrics.reconnects, { kind: 'mqtt' })).toBe(0);
      expect(await counter(metrics.dropped, { reason: 'outbox_invalid' })).toBe(1);
      const lines = logger.matching(/outbox .*row 778/);
      expect(lines.length, logger.lines.join('\n')).toBe(1);
      expect(lines[0]).toMatch(/dead-letter/);
      await expect.poll(() => metrics.outboxDepth.get().then((g) => g.values[0]?.value), { timeout: 5000 }).toBe(0);
      // the row is kept for an operator, in the dead-letter table, with its reason
      await sink.stop();
      const db = new Database(file, { readonly: true, fileMustExist: true });
      cleanup.add(() => db.close());
      const dead = db.prepare('SELECT id, reason FROM outbox_dead').all() as Array<{ id: number; reason: string }>;
      expect(dead).toEqual([{ id: POISON + 1, reason: expect.stringMatching(/topic|checksum/) }]);
      expect(db.prepare('SELECT COUNT(*) AS n FROM outbox').get()).toEqual({ n: 0 });
    });
  }
});
