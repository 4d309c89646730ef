/**
 * The durable outbox alone, in this process, against the same rows written
 * and deleted with better-sqlite3 and nothing else (the floor any outbox on
 * SQLite pays): no broker, no sockets, no other process sharing the cores,
 * so its figures move far less from run to run than bench/bridge.ts's.
 *
 *   node --max-semi-space-size=1 dist/bench/outbox.js [--messages 20000] [--batch 500]
 *        [--payload 120] [--rounds 7] [--synchronous full|normal]
 *
 * Outbox: `batch` messages added (one event-loop turn of a burst), committed
 * (flush), handed out 250 at a time and acknowledged, the acks committed with
 * the next batch, as the MQTT sink does in a QoS 1 burst (bench/bridge.ts'
 * profile: the outbox transaction alone is ~30 % of the agent's CPU per message
 * there).
 * Floor: the same rows through the outbox's RowInserter (32 per INSERT) in one
 * transaction per batch, with one DELETE of the previous batch's id range, on a
 * database with the outbox's schema and pragmas (outbox-db.ts): no checksum, no
 * memory cache, no bounds, no fsync.
 * Each round runs both, alternately; the medians and their ratio are printed
 * (CPU time of this process per message, fsyncs on libuv's pool included).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Outbox } from '../src/sinks/mqtt/outbox.js';
import { openDatabase } from '../src/sinks/mqtt/outbox-db.js';
import { RowInserter } from '../src/sinks/mqtt/row-inserter.js';

const { values } = parseArgs({ options: {
  messages: { type: 'string', default: '20000' },
  batch: { type: 'string', default: '500' },
  payload: { type: 'string', default: '120' },
  rounds: { type: 'string', default: '7' },
  synchronous: { type: 'string', default: 'full' },
} });
const N = Number(values.messages);
const BATCH = Number(values.batch);
const PAYLOAD = Number(values.payload);
const ROUNDS = Number(values.rounds);
const SYNC = values.synchronous === 'normal' ? 'normal' : 'full';
const TOPIC = 'afb-edge/bench/events/bench/q1';

const dir = mkdtempSync(join(tmpdir(), 'afb-edge-outbox-bench-'));
// Texts made once; each message gets a Buffer of its own, as the router makes one per event
// (the Buffers the outbox keeps in its memory cache are part of what it costs).
const texts = Array.from({ length: 256 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(Math.max(0, PAYLOAD - 20)) }).slice(0, PAYLOAD));
const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50)); // the last fsyncs

const outbox = new Outbox({ path: join(dir, 'outbox.db'), max_messages: 200_000, max_bytes: 32 << 20, policy: 'drop-oldest', max_inflight: 1000, commit_delay_ms: 0, sync_interval_ms: 10, synchronous: SYNC }, { synchronous: SYNC });

async function outboxRound(): Promise<number> {
  const t0 = cpuUs();
  for (let i = 0; i < N; i += BATCH) {
    for (let k = 0; k < BATCH && i + k < N; k++) outbox.add({ topic: TOPIC, payload: Buffer.from(texts[(i + k) & 255]!), qos: 1, retain: false, route: 'q1' });
    outbox.flush();
    for (let out = outbox.next(250); out.length > 0; out = outbox.next(250)) for (const m of out) outbox.ack(m.id);
  }
  outbox.flush();
  await settle();
  return (cpuUs() - t0) / N;
}

const db = openDatabase(join(dir, 'floor.db'), SYNC);
db.pragma('synchronous = NORMAL'); // no fsync at commit, as the outbox's own connection (it syncs off the event loop)
const rows = new RowInserter(db); // the outbox's own INSERTs: 32 rows per statement, the rest one by one
const deleteRange = db.prepare('DELETE FROM outbox WHERE id BETWEEN ? AND ?');
let floorId = 0;

async function floorRound(): Promise<number> {
  const t0 = cpuUs();
  let previous: [number, number] | undefined;
  const commit = db.transaction((from: number, n: number) => {
    // the previous batch's delete rides in this transaction, as acknowledgements do in the outbox's
    if (previous) deleteRange.run(previous[0], previous[1]);
    for (let k = 0; k < n; k++) {
      const p = Buffer.from(texts[(from + k) & 255]!);
      rows.add(++floorId, TOPIC, p, 1, 0, 'q1', Date.now(), TOPIC.length + p.length, 0);
    }
    rows.flush();
  });
  for (let i = 0; i < N; i += BATCH) {
    const first = floorId + 1;
    commit(i, Math.min(BATCH, N - i));
    previous = [first, floorId];
  }
  if (previous) deleteRange.run(previous[0], previous[1]);
  await settle();
  return (cpuUs() - t0) / N;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  console.log(`outbox bench: node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, ${N} messages of ${PAYLOAD} bytes per round, ${BATCH} per commit, synchronous ${SYNC}, ${ROUNDS} rounds`);
  const ob: number[] = [];
  const fl: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    ob.push(await outboxRound());
    fl.push(await floorRound());
    console.log(`round ${r + 1}: outbox ${ob[r]!.toFixed(1)} µs/message, better-sqlite3 floor ${fl[r]!.toFixed(1)} µs/message, ratio ${(ob[r]! / fl[r]!).toFixed(2)}`);
  }
  // The first round compiles both paths: the medians leave it out when there are others.
  const from = ROUNDS > 2 ? 1 : 0;
  const o = median(ob.slice(from));
  const f = median(fl.slice(from));
  console.log(`median${from ? ' (rounds 2+)' : ''}: outbox ${o.toFixed(1)} µs/message, floor ${f.toFixed(1)}, outbox/floor ${(o / f).toFixed(2)}; outbox commits ${outbox.stats.commits}, fsyncs ${outbox.syncs}`);
  console.log(`outbox_us=${o.toFixed(1)} floor_us=${f.toFixed(1)} ratio=${(o / f).toFixed(2)}`);
} finally {
  outbox.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
}
