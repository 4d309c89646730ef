/**
 * Serial end-to-end benchmark: an slcan ECU on a pty (socat pair; this
 * script plays the adapter and paces the frames), through the agent (a child
 * process run by bin/afb-edge, as on a board) to a subscriber on the same
 * mosquitto. Baseline in the same run: the same frames on another pty pair,
 * read in this process by serialport + the slcan decoder and published by
 * plain mqtt.js (no router, no outbox) — what the agent adds is the ratio.
 *
 *   node dist/bench/serial-bridge.js [--rate 8000] [--seconds 10] [--burst 40000] [--qos 1]
 *
 * Phases: (1) steady: --rate frames/s (default 8,000 ≈ a 1 Mbit/s CAN bus
 * fully loaded) for --seconds, counting loss, order, p50/p99 latency (send on
 * the pty → message at the subscriber), the agent's RSS and CPU; (2) burst:
 * --burst frames written as fast as the pty takes them, delivered rate.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { SerialPortStream } from '@serialport/stream';
import mqtt from 'mqtt';
import { encodeFrame, SlcanDecoder } from '../src/serial/slcan-codec.js';
import { openSerialPort } from '../src/sim/ecu/serial-port.js';
import { startPtyPair, type PtyPair } from '../src/sim/pty-pair.js';
import { pct, rssMb, startMosquitto, stopProcess } from './support/mosquitto.js';

const here = dirname(fileURLToPath(import.meta.url));
const launcher = join(here, '..', '..', 'bin', 'afb-edge');
const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const { values } = parseArgs({ options: {
  rate: { type: 'string', default: '8000' },
  seconds: { type: 'string', default: '10' },
  burst: { type: 'string', default: '40000' },
  qos: { type: 'string', default: '1' },
} });
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const BURST = Number(values.burst);
const QOS = Number(values.qos) as 0 | 1;

const ptyPair = (dir: string, name: string): Promise<PtyPair> => startPtyPair(join(dir, `${name}-dev`), join(dir, `${name}-peer`));
const openPort = (path: string): Promise<SerialPortStream> => openSerialPort({ path, baudRate: 115200 });

/** The adapter side: answers setup commands with CR (the agent sends C, S, Z, O). */
function answerSetup(port: SerialPortStream): void {
  port.on('data', (d: Buffer) => {
    for (const b of d) if (b === 0x0d) port.write('\r');
  });
}

/** A frame carrying its sequence number (bytes 0-3, little-endian), id 0x200. */
function frame(n: number): Buffer {
  const data = Buffer.alloc(8);
  data.writeUInt32LE(n, 0);
  return encodeFrame({ id: 0x200, data });
}

/**
 * Writes `total` frames at `rate`/s (every 2 ms the frames then due, as an
 * adapter delivers several per USB packet), or as fast as the pty drains
 * when rate is 0. Records each frame's send time.
 */
async function drive(port: SerialPortStream, total: number, rate: number, sentAt: Float64Array): Promise<number> {
  const start = now();
  let sent = 0;
  while (sent < total) {
    const due = rate > 0 ? Math.min(total, Math.floor(((now() - start) / 1000) * rate) + 1) : Math.min(total, sent + 256);
    const parts: Buffer[] = [];
    const t = now();
    for (; sent < due; sent++) {
      sentAt[sent] = t;
      parts.push(frame(sent));
    }
    if (parts.length > 0 && !port.write(Buffer.concat(parts))) await new Promise((r) => port.once('drain', r));
    if (rate > 0) await sleep(2);
  }
  return (now() - start) / 1000;
}

/** Counts messages of `topic` whose JSON carries `values.n` (or `n`), their latency against sentAt, order and duplicates. */
async function subscriber(port: number, topic: string, sentAt: Float64Array) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `bench-sub-${Math.random().toString(16).slice(2)}` });
  const lat: number[] = [];
  let count = 0, outOfOrder = 0, last = -1, firstAt = 0, lastAt = 0;
  c.on('message', (_t, payload) => {
    const t = now();
    const m = /"n":(\d+)/.exec(payload.toString());
    if (!m) return;
    const n = Number(m[1]);
    if (count === 0) firstAt = t;
    lastAt = t;
    count++;
    if (n <= last) outOfOrder++;
    last = n;
    lat.push(t - sentAt[n]!);
  });
  await c.subscribeAsync(topic, { qos: QOS });
  return {
    reset() { count = 0; outOfOrder = 0; last = -1; lat.length = 0; },
    get count() { return count; },
    get outOfOrder() { return outOfOrder; },
    get spanS() { return (lastAt - firstAt) / 1000; },
    latencies() { return [...lat].sort((a, b) => a - b); },
    close: () => c.endAsync(),
  };
}

async function waitCount(sub: { count: number }, n: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (sub.count < n && Date.now() < end) await sleep(20);
  return sub.count >= n;
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks (USER_HZ = 100)
}

/** The baseline: serialport + slcan decoder + plain mqtt.js, in this process. */
async function baseline(dir: string, brokerPort: number, topic: string) {
  const pair = await ptyPair(dir, 'base');
  const reader = await openPort(pair.device);
  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: 'bench-baseline' });
  const dec = new SlcanDecoder({
    onItem: (item) => {
      if (item.kind !== 'frame') return;
      const n = item.frame.data.readUInt32LE(0);
      pub.publish(topic, JSON.stringify({ id: item.frame.id, data: item.frame.data.toString('hex'), values: { n } }), { qos: QOS });
    },
  });
  reader.on('data', (d: Buffer) => dec.push(d));
  const writer = await openPort(pair.peer);
  return {
    writer,
    async close() {
      await pub.endAsync();
      await new Promise<void>((r) => reader.close(() => r()));
      await new Promise<void>((r) => writer.close(() => r()));
      await pair.close();
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'afb-edge-serial-bench-'));
const broker = await startMosquitto(dir);
const pair = await ptyPair(dir, 'can');
const ecu = await openPort(pair.peer);
answerSetup(ecu);
const configFile = join(dir, 'agent.yaml');
writeFileSync(configFile, `
device: { id: bench }
binders: []
serial:
  links:
    - name: can0
      device: ${pair.device}
      protocol: slcan
      slcan: { bitrate: 1000000, timestamps: false }
      messages: [ { id: 0x200, name: Counter, signals: [ { name: n, start_bit: 0, length: 32 } ] } ]
mqtt: { url: "mqtt://127.0.0.1:${broker.port}", status_interval_s: 0 }
routes:
  - { name: can, match: ["can0/Counter"], qos: ${QOS}, payload: raw, topic: "bench/agent" }
outbox: { path: ${join(dir, 'outbox.db')}, max_messages: 500000, max_bytes: 134217728 }
logging: { level: warn }
`);
const agent = spawn(launcher, ['run', '--config', configFile], { stdio: ['ignore', 'inherit', 'inherit'] });
const total = Math.round(RATE * SECONDS);
const sentAt = new Float64Array(Math.max(total, BURST) + 1);
const lines: string[] = [];
const row = (label: string, frames: number, got: number, spanS: number, lat: number[], extra = ''): string =>
  `${label.padEnd(30)} ${String(got).padStart(7)}/${String(frames).padEnd(7)} ${Math.round(got / spanS).toString().padStart(8)}/s  p50 ${pct(lat, 0.5).toFixed(2).padStart(6)} ms  p99 ${pct(lat, 0.99).toFixed(2).padStart(7)} ms ${extra}`;
try {
  const sub = await subscriber(broker.port, 'bench/agent', sentAt);
  // The link is up once a probe frame comes through.
  for (let i = 0; sub.count === 0; i++) {
    if (i > 300) throw new Error('the agent did not come up');
    sentAt[0] = now();
    ecu.write(frame(0));
    await sleep(50);
  }
  await sleep(300);
  sub.reset();

  console.log(`serial bench: slcan over a pty, ${RATE} frames/s for ${SECONDS} s, then a burst of ${BURST}; QoS ${QOS}; ${cpus()[0]?.model} × ${cpus().length}, node ${process.version}`);
  // (1) steady rate through the agent
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(rssMb(agent.pid!)), 250);
  const cpu0 = cpuSeconds(agent.pid!);
  const took = await drive(ecu, total, RATE, sentAt);
  const complete = await waitCount(sub, total, 30_000);
  const cpu = (cpuSeconds(agent.pid!) - cpu0) / took;
  clearInterval(sampler);
  const agentSteady = { got: sub.count, lat: sub.latencies(), span: took, ooo: sub.outOfOrder };
  lines.push(row('agent, steady', total, agentSteady.got, took, agentSteady.lat,
    `lost ${total - agentSteady.got}${complete ? '' : ' (timeout)'}, out of order ${agentSteady.ooo}, agent RSS max ${Math.max(...rss).toFixed(1)} MB, CPU ${(cpu * 100).toFixed(0)} %`));

  // (2) burst through the agent
  sub.reset();
  await drive(ecu, BURST, 0, sentAt);
  await waitCount(sub, BURST, 60_000);
  const agentBurst = { got: sub.count, span: sub.spanS, lat: sub.latencies() };
  lines.push(row('agent, burst', BURST, agentBurst.got, agentBurst.span, agentBurst.lat, `lost ${BURST - agentBurst.got}`));

  // Baseline: same frames, same broker, no agent.
  const baseSub = await subscriber(broker.port, 'bench/baseline', sentAt);
  const base = await baseline(dir, broker.port, 'bench/baseline');
  await sleep(200);
  const bTook = await drive(base.writer, total, RATE, sentAt);
  await waitCount(baseSub, total, 30_000);
  const baseSteady = { got: baseSub.count, lat: baseSub.latencies() };
  lines.push(row('baseline (mqtt.js), steady', total, baseSteady.got, bTook, baseSteady.lat, `lost ${total - baseSteady.got}`));
  baseSub.reset();
  await drive(base.writer, BURST, 0, sentAt);
  await waitCount(baseSub, BURST, 60_000);
  const baseBurst = { got: baseSub.count, span: baseSub.spanS, lat: baseSub.latencies() };
  lines.push(row('baseline (mqtt.js), burst', BURST, baseBurst.got, baseBurst.span, baseBurst.lat, `lost ${BURST - baseBurst.got}`));
  await base.close();
  await baseSub.close();
  await sub.close();

  for (const l of lines) console.log(l);
  const burstRatio = (agentBurst.got / agentBurst.span) / (baseBurst.got / baseBurst.span);
  console.log(`summary: steady ${RATE}/s delivered ${agentSteady.got}/${total} (lost ${total - agentSteady.got}), p99 ${pct(agentSteady.lat, 0.99).toFixed(2)} ms vs baseline ${pct(baseSteady.lat, 0.99).toFixed(2)} ms; burst ${Math.round(agentBurst.got / agentBurst.span)}/s = ${burstRatio.toFixed(2)} × baseline`);
} finally {
  await stopProcess(agent);
  ecu.close();
  await pair.close();
  await broker.stop();
  rmSync(dir, { recursive: true, force: true });
}
