/**
 * MQTT sink throughput and latency, against plain mqtt.js on the same broker.
 *
 *   node --max-semi-space-size=2 dist/bench/mqtt.js [--count 20000] [--size 150]
 *        [--rate 1000] [--rate-seconds 3] [--flood-seconds 6] [--mqtt-version 4|5]
 *        [--rounds 3] [--max-inflight 1000 (the config's default)]
 *
 * Starts mosquitto on a free port (test/helpers/broker.ts; aedes if mosquitto
 * is missing, which it says). A subscriber in a child process receives
 * everything on bench/# (QoS 1 subscription) and measures the end-to-end
 * rate and latency from the send time carried in each payload.
 *
 * - burst: N messages published as fast as the publisher can (500 per
 *   event-loop turn), QoS 0 and QoS 1; plain = mqtt.js client.publish,
 *   sink = MqttSink.publish (QoS 1 through the durable outbox, fsync'ed).
 * - paced: --rate msgs/s for --rate-seconds: latency at a steady load.
 * - flood: the broker is stopped and the sink keeps publishing (QoS 1 and 0)
 *   for --flood-seconds; RSS is printed every 2 s and must stay flat (the
 *   outbox is bounded on disk, QoS 0 by qos0_max_queue).
 * Ends with one summary line.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import type { MqttConfig, OutboxConfig } from '../src/config/types.js';
import { AgentMetrics } from '../src/health/metrics.js';
import { MqttSink } from '../src/sinks/mqtt/mqtt-sink.js';
import type { Synchronous } from '../src/sinks/mqtt/outbox.js';
import { silentLogger } from '../src/util/log.js';
import { startBroker } from '../test/helpers/broker.js';

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/* ------------------------------------------------------------ subscriber */

interface Report { received: number; distinct: number; firstMs: number; lastMs: number; p50: number; p99: number }

function subscriber(url: string, version: 4 | 5): void {
  const client = mqtt.connect(url, { protocolVersion: version, clientId: `bench-sub-${process.pid}`, reconnectPeriod: 200 });
  let prefix = '';
  let expected = 0;
  let lat: number[] = [];
  let seen = new Set<number>();
  let received = 0;
  let first = 0;
  let last = 0;
  const report = (): void => {
    lat.sort((a, b) => a - b);
    const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
    const r: Report = { received, distinct: seen.size, firstMs: first, lastMs: last, p50: q(0.5), p99: q(0.99) };
    process.send!({ report: r });
    expected = 0;
  };
  client.on('message', (topic, payload) => {
    if (!topic.startsWith(prefix)) return;
    const t = now();
    let s: number;
    let i: number;
    try {
      ({ s, i } = JSON.parse(payload.toString()) as { s: number; i: number });
    } catch {
      return; // not one of ours
    }
    if (received === 0) first = t;
    last = t;
    received++;
    if (!seen.has(i)) {
      seen.add(i);
      lat.push(t - s);
    }
    if (expected > 0 && seen.size >= expected) report();
  });
  // a run that lost messages reports once nothing arrived for 2 s
  let armedAt = 0;
  setInterval(() => {
    if (expected > 0 && now() - Math.max(last, armedAt) > 2000) report();
  }, 250).unref();
  client.on('connect', () => {
    void client.subscribeAsync('bench/#', { qos: 1 }).then(() => process.send!({ ready: true }));
  });
  process.on('message', (m: { expect?: { prefix: string; count: number }; report?: boolean }) => {
    if (m.expect) {
      prefix = m.expect.prefix;
      expected = m.expect.count;
      lat = [];
      seen = new Set();
      received = 0;
      armedAt = now();
      process.send!({ armed: true });
    } else if (m.report) report();
  });
}

class Sub {
  private constructor(private readonly child: ChildProcess) {}

  static async start(url: string, version: 4 | 5): Promise<Sub> {
    const child = fork(fileURLToPath(import.meta.url), ['--subscriber', url, String(version)], { stdio: 'inherit' });
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    return new Sub(child);
  }

  /** Arms the subscriber for `count` messages under `prefix`; the promise gives its report (partial after `ms`). */
  async expect(prefix: string, count: number, ms: number): Promise<() => Promise<Report>> {
    this.child.send({ expect: { prefix, count } });
    await new Promise<void>((resolve) => this.child.once('message', () => resolve()));
    const done = new Promise<Report>((resolve) => this.child.once('message', (m: { report: Report }) => resolve(m.report)));
    return async () => {
      const timer = setTimeout(() => this.child.connected && this.child.send({ report: true }), ms);
      const r = await done;
      clearTimeout(timer);
      return r;
    };
  }

  stop(): void {
    this.child.kill();
  }
}

/* ------------------------------------------------------------ publishers */

type Publish = (topic: string, payload: Buffer, qos: 0 | 1) => void;

/** ~`size` bytes of JSON carrying the send time (ms, sub-ms resolution) and the sequence number. */
function payload(i: number, size: number): Buffer {
  const head = `{"s":${now()},"i":${i},"d":"`;
  return Buffer.from(`${head}${'x'.repeat(Math.max(0, size - head.length - 2))}"}`);
}

/** `count` messages, 500 per event-loop turn (a busy source), or paced at `rate`/s. */
async function drive(pub: Publish, prefix: string, qos: 0 | 1, count: number, size: number, rate?: number): Promise<number> {
  const t0 = now();
  for (let i = 0; i < count; i++) {
    pub(`${prefix}/t${i % 4}`, payload(i, size), qos);
    if (rate === undefined) {
      if (i % 500 === 499) await turn();
    } else {
      const due = t0 + ((i + 1) * 1000) / rate;
      const wait = due - now();
      if (wait > 1) await sleep(wait);
      else if (i % 50 === 49) await turn();
    }
  }
  return t0;
}

interface Row { label: string; rate: number; p50: number; p99: number; lost: number }

async function measure(sub: Sub, label: string, prefix: string, pub: Publish, qos: 0 | 1, count: number, size: number, rate?: number): Promise<Row> {
  const report = await sub.expect(prefix, count, rate ? (count / rate) * 1000 + 10_000 : 60_000);
  const t0 = await drive(pub, prefix, qos, count, size, rate);
  const r = await report();
  return { label, rate: r.distinct / ((r.lastMs - t0) / 1000), p50: r.p50, p99: r.p99, lost: count - r.distinct };
}

/* ------------------------------------------------------------------ main */

let maxInflight = 1000;

function sinkConfigs(url: string, dir: string, version: 4 | 5): { mqtt: MqttConfig; outbox: OutboxConfig } {
  return {
    mqtt: { url, client_id: `bench-sink-${process.pid}-${path.basename(dir)}`, protocol_version: version, keepalive_s: 30, clean_session: true, topic_prefix: 'bench', status_topic: 'status/{device}',
      reconnect: { initial_delay_ms: 200, max_delay_ms: 2000 }, qos0_max_queue: 10_000, status_interval_s: 0 },
    outbox: { path: path.join(dir, 'outbox.db'), max_messages: 50_000, max_bytes: 16 << 20, policy: 'drop-oldest', max_inflight: maxInflight, sync_interval_ms: 10, commit_delay_ms: 0 },
  };
}

async function newSink(url: string, dir: string, version: 4 | 5, synchronous: Synchronous, metrics = new AgentMetrics({ defaultMetrics: false })): Promise<MqttSink> {
  fs.rmSync(dir, { recursive: true, force: true });
  const c = sinkConfigs(url, dir, version);
  const sink = new MqttSink(c.mqtt, c.outbox, { device: { id: 'bench', labels: {} }, metrics, logger: silentLogger, options: { synchronous } });
  await sink.start();
  if (!sink.connected) await new Promise((r) => sink.once('connected', r));
  return sink;
}

const sinkPub = (sink: MqttSink): Publish => (topic, p, qos) => void sink.publish({ topic, payload: p, qos, retain: false, route: 'bench' });
const plainPub = (client: MqttClient): Publish => (topic, p, qos) => void client.publish(topic, p, { qos });

const fmt = (r: Row): string => `${r.label.padEnd(26)} ${Math.round(r.rate).toString().padStart(9)} ${r.p50.toFixed(2).padStart(9)} ${r.p99.toFixed(2).padStart(9)} ${String(r.lost).padStart(6)}`;

/**
 * The agent-like process: only a sink. Steady load first (RSS at --rate/s),
 * then the parent stops the broker and the sink is flooded; RSS every 2 s.
 */
async function floodChild(url: string, version: 4 | 5, rate: number, steadySeconds: number, floodSeconds: number, size: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afb-edge-bench-flood-'));
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const sink = await newSink(url, dir, version, 'full', metrics);
  const pub = sinkPub(sink);
  console.log(`flood child (sink only): RSS ${(process.memoryUsage().rss / 1048576).toFixed(1)} MB once connected`);
  const mb = (): number => process.memoryUsage().rss / 1048576;
  let sent = 0;
  const steady: number[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < steadySeconds * 1000) {
    await drive(pub, 'bench/steady', 1, rate / 10, size, rate); // 100 ms slices at `rate`
    sent += rate / 10;
    if ((Date.now() - t0) % 2000 < 100) steady.push(mb());
  }
  steady.push(mb());
  console.log(`steady: ${sent} QoS 1 messages at ${rate}/s over ${steadySeconds} s through the durable outbox, RSS ${Math.min(...steady).toFixed(1)}..${Math.max(...steady).toFixed(1)} MB`);
  process.send!({ stopBroker: true });
  await new Promise<void>((resolve) => process.once('message', () => resolve()));
  while (sink.connected) await sleep(10);
  console.log(`flood: broker stopped, QoS 1 + QoS 0 as fast as possible for ${floodSeconds} s (outbox caps 50000 msgs / 16 MiB, drop-oldest; qos0_max_queue 10000)`);
  const rss: number[] = [];
  const f0 = Date.now();
  let n = 0;
  let nextPrint = f0 + 2000;
  while (Date.now() - f0 < floodSeconds * 1000) {
    for (let k = 0; k < 500; k++, n++) pub(`bench/flood/t${n % 4}`, payload(n, size), (n % 2) as 0 | 1);
    await turn();
    if (Date.now() >= nextPrint) {
      nextPrint += 2000;
      rss.push(mb());
      const mu = process.memoryUsage();
      const dropped = (await metrics.dropped.get()).values.map((v) => `${v.labels.reason}=${v.value}`).join(' ');
      console.log(`  t=${String(Math.round((Date.now() - f0) / 1000)).padStart(4)} s  published ${n}  rss ${rss.at(-1)!.toFixed(1)} MB (heap ${(mu.heapUsed / 1048576).toFixed(1)}, external ${(mu.external / 1048576).toFixed(1)})  outbox ${(await metrics.outboxDepth.get()).values[0]?.value} msgs  dropped ${dropped}`);
    }
  }
  await sink.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  // RSS swings with each GC cycle: compare the mean of the first and last thirds of the samples, not two points
  const third = Math.max(1, Math.floor(rss.length / 3));
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const first = mean(rss.slice(0, third));
  const lastMean = mean(rss.slice(-third));
  const growth = lastMean - first;
  console.log(`flood: ${n} messages in ${floodSeconds} s; RSS min ${Math.min(...rss).toFixed(1)} max ${Math.max(...rss).toFixed(1)} MB; mean of the first third ${first.toFixed(1)} MB, of the last third ${lastMean.toFixed(1)} MB (growth ${growth.toFixed(1)} MB)`);
  process.send!({ done: { steadyMax: Math.max(...steady), floodGrowth: growth, floodPeak: Math.max(0, ...rss) } });
}

const median = (xs: Row[]): Row => [...xs].sort((a, b) => a.rate - b.rate)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    count: { type: 'string', default: '20000' }, size: { type: 'string', default: '150' }, rate: { type: 'string', default: '1000' },
    'rate-seconds': { type: 'string', default: '3' }, 'flood-seconds': { type: 'string', default: '6' }, 'mqtt-version': { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' }, 'max-inflight': { type: 'string', default: '1000' },
  } });
  maxInflight = Number(values['max-inflight']);
  const count = Number(values.count);
  const size = Number(values.size);
  const rate = Number(values.rate);
  const rateSeconds = Number(values['rate-seconds']);
  const paced = rate * rateSeconds;
  const rounds = Number(values.rounds);
  const version = Number(values['mqtt-version']) === 5 ? 5 : 4;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afb-edge-bench-mqtt-'));
  const broker = await startBroker({ persistence: false });
  const sub = await Sub.start(broker.url, version);
  console.log(`mqtt bench: node ${process.version} ${process.execArgv.join(' ') || '(default flags)'}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${broker.kind} on ${broker.url}, MQTT ${version === 5 ? 5 : '3.1.1'}`);
  console.log(`burst: ${count} messages of ${size} B (500 per event-loop turn), ${rounds} alternating rounds, median shown; paced: ${paced} at ${rate}/s; subscriber in a child process (QoS 1 subscription); sink max_inflight ${maxInflight}`);
  try {
    const plain = await mqtt.connectAsync(broker.url, { protocolVersion: version, clientId: `bench-plain-${process.pid}` });
    const full = await newSink(broker.url, path.join(dir, 'full'), version, 'full');
    const normal = await newSink(broker.url, path.join(dir, 'normal'), version, 'normal');
    const runs: Record<string, Row[]> = {};
    const run = async (label: string, prefix: string, pub: Publish, qos: 0 | 1, n: number, r?: number): Promise<void> => {
      (runs[label] ??= []).push(await measure(sub, label, prefix, pub, qos, n, size, r));
    };
    for (let k = 0; k < rounds; k++) {
      await run('qos0 burst  plain mqtt.js', `bench/p0/${k}`, plainPub(plain), 0, count);
      await run('qos0 burst  sink', `bench/s0/${k}`, sinkPub(full), 0, count);
      await run('qos1 burst  plain mqtt.js', `bench/p1/${k}`, plainPub(plain), 1, count);
      await run('qos1 burst  sink (full)', `bench/s1/${k}`, sinkPub(full), 1, count);
      await run('qos1 burst  sink (normal)', `bench/n1/${k}`, sinkPub(normal), 1, count);
    }
    await run(`qos0 ${rate}/s plain`, 'bench/r0p', plainPub(plain), 0, paced, rate);
    await run(`qos0 ${rate}/s sink`, 'bench/r0s', sinkPub(full), 0, paced, rate);
    await run(`qos1 ${rate}/s plain`, 'bench/r1p', plainPub(plain), 1, paced, rate);
    await run(`qos1 ${rate}/s sink (full)`, 'bench/r1s', sinkPub(full), 1, paced, rate);
    await full.stop();
    await normal.stop();
    await plain.endAsync();
    const rows = Object.values(runs).map(median);
    console.log('\nrun                          msgs/s   p50 ms    p99 ms   lost');
    for (const r of rows) console.log(fmt(r));
    const at = (label: string): Row => rows.find((r) => r.label === label)!;
    const ratio = (a: string, b: string): string => (at(a).rate / at(b).rate).toFixed(2);
    const q0 = ratio('qos0 burst  sink', 'qos0 burst  plain mqtt.js');
    const q1 = ratio('qos1 burst  sink (full)', 'qos1 burst  plain mqtt.js');
    console.log(`\nratios sink/plain: qos0 burst ${q0}, qos1 burst durable (synchronous full: WAL fsync per commit, on the thread pool) ${q1}, qos1 burst synchronous=normal ${ratio('qos1 burst  sink (normal)', 'qos1 burst  plain mqtt.js')}\n`);

    const child = fork(fileURLToPath(import.meta.url), ['--flood', broker.url, String(version), String(rate), String(rateSeconds), values['flood-seconds']!, String(size)], { stdio: 'inherit' });
    const done = await new Promise<{ steadyMax: number; floodGrowth: number; floodPeak: number }>((resolve) => {
      child.on('message', (m: { stopBroker?: boolean; done?: { steadyMax: number; floodGrowth: number; floodPeak: number } }) => {
        if (m.stopBroker) void broker.stop().then(() => child.send({ stopped: true }));
        if (m.done) resolve(m.done);
      });
    });
    child.kill();
    console.log(`\nsummary: qos0 sink/plain=${q0} qos1-durable sink/plain=${q1} p99_ms@${rate}/s qos0=${at(`qos0 ${rate}/s sink`).p99.toFixed(2)} qos1=${at(`qos1 ${rate}/s sink (full)`).p99.toFixed(2)} steady_rss_mb=${done.steadyMax.toFixed(1)} flood_rss_growth_mb=${done.floodGrowth.toFixed(1)} flood_peak_rss_mb=${done.floodPeak.toFixed(1)}`);
  } finally {
    sub.stop();
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const argv = process.argv.slice(2);
if (argv[0] === '--subscriber') subscriber(argv[1]!, Number(argv[2]) === 5 ? 5 : 4);
else if (argv[0] === '--flood') await floodChild(argv[1]!, Number(argv[2]) === 5 ? 5 : 4, Number(argv[3]), Number(argv[4]), Number(argv[5]), Number(argv[6]));
else await main();
