/**
 * Bridge benchmark: events from a wsapi server, through the agent (a child
 * process run by bin/afb-edge, as on a board), to a subscriber on the same
 * mosquitto; compared in the same run with plain mqtt.js publishing the same
 * messages to the same broker.
 *
 *   node dist/bench/bridge.js [--events N] [--rate R] [--warmup-seconds W] [--rate-seconds S] [--flood-seconds F] [--rounds R] [--commit-delay-ms D] [--max-bytes B]
 *
 * With --rounds R, the throughput phase runs R times, agent and plain mqtt.js
 * alternating, and prints the medians (the ratio moves by ±0.1 from one run to
 * the next on a shared 2-core machine); the agent's CPU time per event is the
 * steadier figure of its own cost. --commit-delay-ms sets the agent's
 * outbox.commit_delay_ms (default 0, the agent's default); the steady phase
 * prints what the agent wrote to the disk per event. --max-bytes sets the
 * agent's outbox.max_bytes (default 32 MiB), and with it the WAL's size and
 * how often SQLite checkpoints it: each checkpoint fsyncs the WAL and the
 * database on the agent's event loop (src/sinks/mqtt/outbox-budget.ts).
 *
 * Each throughput round also prints what one message cost the machine's CPU
 * in each half: this process (the wsapi server standing for the binder, or
 * plain mqtt.js, and the subscriber) + the agent + mosquitto, against this
 * process + mosquitto. On a 2-core machine the three processes of the agent
 * half keep both cores busy, so the rates go as the inverse of those totals
 * and the median line prints that quotient beside the measured ratio: it
 * says how much CPU the agent must save for a given ratio (mosquitto alone
 * takes ~30 µs of a QoS 1 message, two thirds in the kernel: it reads each
 * packet with several small reads).
 *
 * Phases: (1) latency at a steady R events/s (default 1000) with the peak of the agent's
 * RSS, on a fresh agent, after W seconds (default 5) at that rate printed
 * apart as its warm-up, then plain mqtt.js at the same rate (the floor); (2) throughput, QoS 0 and QoS 1 (durable outbox),
 * agent vs plain mqtt.js; (3) optional: broker down while events flood in for F seconds, RSS
 * sampled (bounded by the outbox caps). Ends with one summary line.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { WsapiServer, type ServerEvent } from '../src/wsapi/index.js';
import { cpuMs, diskWriteBytes, pct, rssMb, startMosquitto, stopProcess } from './support/mosquitto.js';

const here = dirname(fileURLToPath(import.meta.url));
const launcher = join(here, '..', '..', 'bin', 'afb-edge');
const now = (): number => performance.timeOrigin + performance.now();

/** A subscriber counting messages of one topic and their latency (payload carries the send time). */
async function subscriber(port: number, topic: string) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `bench-sub-${Math.random().toString(16).slice(2)}` });
  const lat: number[] = [];
  let count = 0;
  let waiter: { n: number; resolve: () => void } | undefined;
  c.on('message', (_t, payload) => {
    const t = now();
    count++;
    const m = /"t":([\d.]+)/.exec(payload.toString());
    if (m) lat.push(t - Number(m[1]));
    if (waiter && count >= waiter.n) { waiter.resolve(); waiter = undefined; }
  });
  await c.subscribeAsync(topic, { qos: 1 });
  return {
    reset() { count = 0; lat.length = 0; },
    wait(n: number, ms: number) {
      return new Promise<void>((resolve, reject) => {
        if (count >= n) return resolve();
        const t = setTimeout(() => reject(new Error(`only ${count} of ${n} messages within ${ms} ms`)), ms);
        waiter = { n, resolve: () => { clearTimeout(t); resolve(); } };
      });
    },
    get count() { return count; },
    latencies() { return [...lat].sort((a, b) => a - b); },
    close: () => c.endAsync(),
  };
}

/** The agent's outbox.max_bytes unless --max-bytes says otherwise. */
const DEFAULT_MAX_BYTES = 32 * 1024 * 1024;
const { values } = parseArgs({ options: {
  events: { type: 'string', default: '20000' },
  rate: { type: 'string', default: '1000' },
  'rate-seconds': { type: 'string', default: '10' },
  'warmup-seconds': { type: 'string', default: '5' },
  'flood-seconds': { type: 'string', default: '0' },
  rounds: { type: 'string', default: '1' },
  'commit-delay-ms': { type: 'string', default: '0' },
  'max-bytes': { type: 'string', default: String(DEFAULT_MAX_BYTES) },
} });
const N = Number(values.events);
const RATE = Number(values.rate);
const RATE_S = Number(values['rate-seconds']);
const WARM_S = Number(values['warmup-seconds']);
const FLOOD_S = Number(values['flood-seconds']);
const ROUNDS = Math.max(1, Number(values.rounds));
const COMMIT_DELAY_MS = Number(values['commit-delay-ms']);
const MAX_BYTES = Number(values['max-bytes']);

const dir = mkdtempSync(join(tmpdir(), 'afb-edge-bridge-'));
const broker = await startMosquitto(dir);
const server = new WsapiServer({ api: 'bench' });
const events: Record<string, ServerEvent> = { q0: server.event('q0'), q1: server.event('q1') };
server.verb('sub', (req) => { for (const e of Object.values(events)) req.subscribe(e); req.reply(null); });
await server.listen(`unix:${join(dir, 'bench')}`);
const configFile = join(dir, 'agent.yaml');
writeFileSync(configFile, `
device: { id: bench }
binders: [ { name: bench, spec: "unix:${join(dir, 'bench')}", subscribe: [ { verb: sub } ] } ]
mqtt: { url: "mqtt://127.0.0.1:${broker.port}", protocol_version: 4, status_interval_s: 0, reconnect: { initial_delay_ms: 100, max_delay_ms: 1000 } }
routes:
  - { name: q0, match: ["bench/q0"], qos: 0, payload: raw }
  - { name: q1, match: ["bench/q1"], qos: 1, payload: raw }
outbox: { path: ${join(dir, 'outbox.db')}, max_messages: 200000, max_bytes: ${MAX_BYTES}, commit_delay_ms: ${COMMIT_DELAY_MS} }
logging: { level: warn }
`);
const agent = spawn(launcher, ['run', '--config', configFile], { stdio: ['ignore', 'inherit', 'inherit'] });
const results: string[] = [];
try {
  const sub = await subscriber(broker.port, 'afb-edge/bench/events/bench/+');
  // Wait until the agent subscribed to the binder and reaches the broker.
  for (let i = 0; sub.count === 0; i++) {
    if (i > 200) throw new Error('the agent did not come up');
    events.q1!.push({ warmup: true });
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300));
  const plain = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'bench-plain' });
  const body = (i: number) => JSON.stringify({ i, t: now(), value: 42.5, unit: 'km/h', pad: 'x'.repeat(60) });

  // Steady load first, on a fresh agent: RATE events/s of QoS 1. The first WARM_S seconds are the
  // agent's warm-up (V8 compiles the data path: p99 2.9-3.7 ms in the first second, about 1 ms from
  // the fifth on this machine); they are printed apart, and the steady figures come after them.
  const interval = 1000 / RATE;
  // RSS once a second: at a steady rate it climbs (what survives two scavenges waits in the old
  // generation for the next full collection) and drops at each full collection, so the figure is the
  // peak of the phase, and a phase whose peak came in its last tenth most likely saw no full
  // collection yet: said. How long that takes depends on how fast the old generation fills: ~2 min at
  // 1,000 events/s in an earlier version; now so little is promoted that none came within 28 minutes,
  // and RSS rose 0.4 MB in that time (boards/README.md).
  let rssSamples: number[] = [];
  const paced = async (seconds: number): Promise<number> => {
    const start = now();
    let sent = 0;
    let nextSample = start;
    while (now() - start < seconds * 1000) {
      const due = Math.floor((now() - start) / interval);
      for (; sent < due; sent++) events.q1!.pushText(body(sent));
      if (now() >= nextSample) {
        rssSamples.push(rssMb(agent.pid!));
        nextSample += 1000;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await sub.wait(sent, 30_000);
    return sent;
  };
  const rssSummary = (): { peak: number; text: string } => {
    const peak = Math.max(...rssSamples);
    const at = rssSamples.indexOf(peak);
    const rising = rssSamples.length >= 10 && at >= rssSamples.length * 0.9;
    const text = `agent RSS peak ${peak.toFixed(1)} MB (${rssSamples[0]!.toFixed(1)} at the start${rising ? `; still rising at the end: no full collection in the phase yet, the plateau is higher` : ''})`;
    return { peak, text };
  };
  if (WARM_S > 0) {
    sub.reset();
    const warmCpu0 = cpuMs(agent.pid!);
    const warmSent = await paced(WARM_S);
    const warm = sub.latencies();
    const warmCpu = (cpuMs(agent.pid!) - warmCpu0) * 1000 / warmSent;
    console.log(`warm-up ${RATE} ev/s QoS 1 for ${WARM_S} s after start: ${warmSent} events, p50 ${pct(warm, 0.5).toFixed(2)} ms, p99 ${pct(warm, 0.99).toFixed(2)} ms, p99.9 ${pct(warm, 0.999).toFixed(2)} ms, agent CPU ${warmCpu.toFixed(1)} µs/event`);
    results.push(`warmup_p99_ms=${pct(warm, 0.99).toFixed(2)}`);
  }
  sub.reset();
  rssSamples = [];
  const steadyCpu0 = cpuMs(agent.pid!);
  const steadyDisk0 = diskWriteBytes(agent.pid!);
  const sent = await paced(RATE_S);
  const steady = sub.latencies();
  const steadyCpu = (cpuMs(agent.pid!) - steadyCpu0) * 1000 / sent;
  const steadyDisk = (diskWriteBytes(agent.pid!) - steadyDisk0) / sent;
  rssSamples.push(rssMb(agent.pid!));
  const rss = rssSummary();
  console.log(`steady ${RATE} ev/s QoS 1 for ${RATE_S} s${WARM_S > 0 ? ' after the warm-up' : ''}: ${sent} events, p50 ${pct(steady, 0.5).toFixed(2)} ms, p90 ${pct(steady, 0.9).toFixed(2)} ms, p99 ${pct(steady, 0.99).toFixed(2)} ms, p99.9 ${pct(steady, 0.999).toFixed(2)} ms, agent CPU ${steadyCpu.toFixed(1)} µs/event, disk writes ${Math.round(steadyDisk)} B/event${COMMIT_DELAY_MS > 0 ? ` (commit_delay_ms ${COMMIT_DELAY_MS})` : ''}${MAX_BYTES !== DEFAULT_MAX_BYTES ? ` (outbox max_bytes ${MAX_BYTES})` : ''}, ${rss.text}`);
  results.push(`steady_p99_ms=${pct(steady, 0.99).toFixed(2)}`, `steady_cpu_us=${steadyCpu.toFixed(1)}`, `steady_disk_bytes=${Math.round(steadyDisk)}`, `steady_rss_mb=${rss.peak.toFixed(1)}`);

  // The floor of that figure on this machine: plain mqtt.js publishing at the same rate to the same
  // subscriber (this process's own timers and GC, mosquitto, loopback), without the agent.
  const plainSteady = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'bench-plain-steady' });
  sub.reset();
  const pStart = now();
  let pSent = 0;
  while (now() - pStart < RATE_S * 1000) {
    const due = Math.floor((now() - pStart) / interval);
    for (; pSent < due; pSent++) plainSteady.publish('afb-edge/bench/events/bench/plain-steady', body(pSent), { qos: 1 });
    await new Promise((r) => setTimeout(r, 1));
  }
  await sub.wait(pSent, 30_000);
  const plainLat = sub.latencies();
  await plainSteady.endAsync();
  console.log(`steady ${RATE} msg/s QoS 1, plain mqtt.js (the measurement's floor): p50 ${pct(plainLat, 0.5).toFixed(2)} ms, p90 ${pct(plainLat, 0.9).toFixed(2)} ms, p99 ${pct(plainLat, 0.99).toFixed(2)} ms, p99.9 ${pct(plainLat, 0.999).toFixed(2)} ms`);
  results.push(`steady_plain_p99_ms=${pct(plainLat, 0.99).toFixed(2)}`);

  console.log(`bridge bench: node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, mosquitto on loopback, ${N} events per run, ${ROUNDS} round(s), agent flags ${process.env.AFB_EDGE_NODE_FLAGS ?? '(launcher default)'}`);
  console.log('mode      agent ev/s  p50 ms  p99 ms  CPU µs/ev | plain mqtt.js msg/s  p50 ms  p99 ms | ratio');
  for (const qos of [0, 1] as const) {
    const ratios: number[] = [];
    const cpuPerEvent: number[] = [];
    const cpuTotals: Array<[number, number]> = [];
    let burstRss = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // agent: the wsapi server pushes as fast as it can; the subscriber counts arrivals
      sub.reset();
      await new Promise((r) => setTimeout(r, 200));
      sub.reset();
      const cpu0 = cpuMs(agent.pid!);
      const broker0 = cpuMs(broker.proc.pid!);
      const self0 = process.cpuUsage();
      const t0 = now();
      for (let i = 0; i < N; i++) {
        events[`q${qos}`]!.pushText(body(i));
        if (i % 500 === 499) await new Promise((r) => setImmediate(r)); // let the socket drain
      }
      await sub.wait(qos === 0 ? Math.floor(N * 0.99) : N, 120_000).catch((e: Error) => console.log(`  agent QoS ${qos}: ${e.message}`));
      const agentRate = sub.count / ((now() - t0) / 1000);
      // the agent's CPU time for the run (reading, routing, storing, publishing, acks), per event received
      const agentCpu = (cpuMs(agent.pid!) - cpu0) * 1000 / sub.count;
      const agentLat = sub.latencies();
      const agentRss = rssMb(agent.pid!);
      burstRss = Math.max(burstRss, agentRss);
      // This process's own CPU per message in each half: the wsapi server standing for the binder
      // (and the subscriber), then plain mqtt.js (and the subscriber). Both share the 2 cores with the rest.
      const selfCpu = (u: NodeJS.CpuUsage) => (u.user + u.system) / sub.count;
      const benchAgentSide = selfCpu(process.cpuUsage(self0));
      const brokerAgentSide = (cpuMs(broker.proc.pid!) - broker0) * 1000 / sub.count;

      // plain mqtt.js: the same messages to the same broker, same subscriber
      sub.reset();
      const topic = `afb-edge/bench/events/bench/plain${qos}`;
      const self1 = process.cpuUsage();
      const broker1 = cpuMs(broker.proc.pid!);
      const t1 = now();
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < N; i++) {
        pending.push(plain.publishAsync(topic, body(i), { qos }));
        if (i % 500 === 499) await new Promise((r) => setImmediate(r));
      }
      await Promise.all(pending);
      await sub.wait(qos === 0 ? Math.floor(N * 0.99) : N, 120_000).catch((e: Error) => console.log(`  plain QoS ${qos}: ${e.message}`));
      const plainRate = sub.count / ((now() - t1) / 1000);
      const plainLat = sub.latencies();
      const benchPlainSide = selfCpu(process.cpuUsage(self1));
      const brokerPlainSide = (cpuMs(broker.proc.pid!) - broker1) * 1000 / sub.count;
      ratios.push(agentRate / plainRate);
      cpuPerEvent.push(agentCpu);
      // The CPU every message costs the machine in each half: when the cores are the limit (all three
      // processes busy on 2 cores), the rates go as the inverse of these totals.
      const totalAgent = benchAgentSide + agentCpu + brokerAgentSide;
      const totalPlain = benchPlainSide + brokerPlainSide;
      cpuTotals.push([totalAgent, totalPlain]);
      console.log(`QoS ${qos}  ${Math.round(agentRate).toString().padStart(12)} ${pct(agentLat, 0.5).toFixed(2).padStart(7)} ${pct(agentLat, 0.99).toFixed(2).padStart(7)} ${agentCpu.toFixed(1).padStart(10)} | ${Math.round(plainRate).toString().padStart(19)} ${pct(plainLat, 0.5).toFixed(2).padStart(7)} ${pct(plainLat, 0.99).toFixed(2).padStart(7)} | ${(agentRate / plainRate).toFixed(2)}   (agent RSS ${agentRss.toFixed(1)} MB; CPU µs/msg, agent half: this process ${benchAgentSide.toFixed(1)} + agent ${agentCpu.toFixed(1)} + mosquitto ${brokerAgentSide.toFixed(1)} = ${totalAgent.toFixed(1)}, plain half: this process ${benchPlainSide.toFixed(1)} + mosquitto ${brokerPlainSide.toFixed(1)} = ${totalPlain.toFixed(1)})`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    // What the ratio would be if the cores were the only limit: the plain half's CPU per message over the agent half's.
    const cpuBound = median(cpuTotals.map(([a, p]) => p / a));
    if (ROUNDS > 1) console.log(`QoS ${qos}  median of ${ROUNDS}: ratio ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}), agent CPU ${median(cpuPerEvent).toFixed(1)} µs/event, burst RSS ${burstRss.toFixed(1)} MB; CPU per message, plain half / agent half (the ratio when the ${cpus().length} cores are the limit): ${cpuBound.toFixed(2)}`);
    results.push(`qos${qos}_ratio=${median(ratios).toFixed(2)}`, `qos${qos}_cpu_us=${median(cpuPerEvent).toFixed(1)}`, `qos${qos}_burst_rss_mb=${burstRss.toFixed(1)}`, `qos${qos}_cpu_bound_ratio=${cpuBound.toFixed(2)}`);
  }
  await plain.endAsync();

  if (FLOOD_S > 0) {
    await broker.stop();
    const t = now();
    let n = 0;
    const samples: string[] = [];
    let nextSample = 0;
    while (now() - t < FLOOD_S * 1000) {
      for (let k = 0; k < 50; k++) events.q1!.pushText(body(n++));
      await new Promise((r) => setTimeout(r, 5));
      if (now() - t >= nextSample) {
        samples.push(`${Math.round((now() - t) / 1000)}s:${rssMb(agent.pid!).toFixed(0)}MB`);
        nextSample += Math.max(1000, (FLOOD_S * 1000) / 20);
      }
    }
    console.log(`broker down, ${n} events in ${FLOOD_S} s (outbox capped at 200,000 messages / ${(MAX_BYTES / 1048576).toFixed(0)} MiB): RSS ${samples.join(' ')}`);
    results.push(`flood_rss_mb=${rssMb(agent.pid!).toFixed(1)}`);
    await broker.start();
  }
  await sub.close();
  console.log(results.join(' '));
} finally {
  await stopProcess(agent);
  await server.close();
  await broker.stop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
