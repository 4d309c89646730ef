/**
 * wsapi call throughput and latency.
 *
 *   npm run bench:wsapi                       full run: our client against our server
 *                                             (simulated binder in a child process), sequential
 *                                             and pipelined, with a raw-socket baseline
 *   npm run bench:wsapi -- --spec SPEC --verb VERB --args JSON --calls N --inflight K
 *                                             client only, against any server (a native binder too)
 *   ... --spec SPEC --count-only client|floor --rounds R
 *                                             R runs of N calls by our client or by the raw floor,
 *                                             nothing timed: what bench/wsapi-instructions.ts runs
 *                                             under valgrind to count instructions per call
 *   ... --spec SPEC --native-client PATH [--rounds R]
 *                                             the same calls made by the native C client
 *                                             (afb-client-demo -d -p K SPEC, lines "VERB ARGS" on its
 *                                             stdin, spawn to exit), by ours, and by a raw Node.js
 *                                             client (no codec: the floor), alternately, R rounds
 *                                             (default 5): each round's figures and the median ratios
 *
 * The baseline is a raw echo of pre-built frames of the same size over the
 * same kind of socket, in the same script: the floor any Node.js wsapi peer
 * pays for the socket and event loop. Ratios say how close the engine gets.
 * Every mode ends with one line: calls/s=… p50_us=… p99_us=… rss_mb=…
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WsapiClient, writeCall, writeReply } from '../src/wsapi/index.js';
import { SUPPORTED_VERSIONS } from '../src/wsapi/constants.js';
import { writeVersionOffer } from '../src/wsapi/codec.js';
import { connectSpec } from '../src/wsapi/sockets.js';
import { parseSpec } from '../src/wsapi/spec.js';

interface Result { calls: number; seconds: number; p50: number; p99: number }

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function summarize(latUs: Float64Array, calls: number, seconds: number): Result {
  latUs.sort();
  return { calls, seconds, p50: percentile(latUs, 0.5), p99: percentile(latUs, 0.99) };
}

/** Keeps `inflight` calls outstanding until `calls` replies came back. */
async function runClient(client: WsapiClient, verb: string, argsJson: string, calls: number, inflight: number): Promise<Result> {
  const lat = new Float64Array(calls);
  let started = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    let done = 0;
    const launch = (): void => {
      const i = started++;
      const t = process.hrtime.bigint();
      void client.callText(verb, argsJson).then((r) => {
        lat[i] = Number(process.hrtime.bigint() - t) / 1000;
        if (r.error !== null) failed++;
        if (++done === calls) resolve();
        else if (started < calls) launch();
      });
    };
    for (let k = 0; k < Math.min(inflight, calls); k++) launch();
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (failed > 0) throw new Error(`${failed} of ${calls} calls failed`);
  return summarize(lat, calls, seconds);
}

/** Raw baseline: a server echoing a fixed reply frame per request frame, no codec at all. */
async function rawBaseline(path: string, calls: number, inflight: number, request: Buffer, reply: Buffer): Promise<Result> {
  const server = net.createServer((s) => {
    let pending = 0;
    s.on('data', (chunk: Buffer) => {
      // Count whole request frames (all the same size) and answer each.
      pending += chunk.length;
      const n = Math.floor(pending / request.length);
      pending -= n * request.length;
      if (n > 0) s.write(n === 1 ? reply : Buffer.concat(Array(n).fill(reply)));
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  const sock = net.connect(path);
  await new Promise<void>((r) => sock.once('connect', r));
  sock.setNoDelay(true);
  const lat = new Float64Array(calls);
  const sentAt: bigint[] = [];
  let sent = 0;
  let got = 0;
  let buffered = 0;
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    sock.on('data', (chunk: Buffer) => {
      buffered += chunk.length;
      const now = process.hrtime.bigint();
      let n = 0;
      while (buffered >= reply.length) {
        buffered -= reply.length;
        lat[got] = Number(now - sentAt[got]!) / 1000;
        got++;
        n++;
      }
      if (got === calls) return resolve();
      const more = Math.min(n, calls - sent);
      if (more > 0) {
        for (let k = 0; k < more; k++) sentAt[sent + k] = now;
        sent += more;
        sock.write(more === 1 ? request : Buffer.concat(Array(more).fill(request)));
      }
    });
    const first = Math.min(inflight, calls);
    const now = process.hrtime.bigint();
    for (let k = 0; k < first; k++) sentAt[k] = now;
    sent = first;
    sock.write(Buffer.concat(Array(first).fill(request)));
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  sock.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return summarize(lat, calls, seconds);
}

function peakRssMb(pid?: number): number {
  try {
    const status = readFileSync(`/proc/${pid ?? 'self'}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

function line(r: Result, rss: number): string {
  return `calls/s=${Math.round(r.calls / r.seconds)} p50_us=${r.p50.toFixed(0)} p99_us=${r.p99.toFixed(0)} rss_mb=${rss.toFixed(1)}`;
}

async function clientOnly(spec: string, verb: string, args: string, calls: number, inflight: number): Promise<void> {
  JSON.parse(args);
  const client = new WsapiClient(spec);
  await client.connect();
  // Warm-up, so the JIT does not count as protocol cost.
  await runClient(client, verb, args, Math.min(2000, calls), inflight);
  const r = await runClient(client, verb, args, calls, inflight);
  client.close();
  console.log(`client against ${spec} verb=${verb} calls=${calls} inflight=${inflight}, node ${process.version} ${process.execArgv.join(' ')}`);
  console.log(line(r, peakRssMb()));
}

/**
 * The native C client (AGL's afb-client-demo) making the same calls: `-d`
 * (the socket serves the API directly), `-p K` (K calls in flight), one
 * "VERB ARGS" line per call on its stdin, replies to /dev/null. Its stdin
 * is a file, as with `afb-client-demo … < calls.txt` (from a pipe it runs
 * about a third slower here). Timed from spawn to exit, so its own start (a
 * few ms) counts against it: at 20,000 calls that is under 2 % of a run.
 */
function nativeRun(clientPath: string, spec: string, inputFile: string, calls: number, inflight: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const stdin = openSync(inputFile, 'r');
    const t0 = process.hrtime.bigint();
    const child = spawn(clientPath, ['-d', '-p', String(inflight), spec], { stdio: [stdin, 'ignore', 'pipe'] });
    closeSync(stdin);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d; });
    child.once('error', reject);
    child.once('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`${clientPath} exited with ${code}: ${err.slice(0, 500)}`));
      else resolve(calls / seconds);
    });
  });
}

/**
 * The floor of any Node.js client of that binder: pre-built K frames (ids
 * 1..inflight reused), replies only counted (frame lengths read from their
 * headers, nothing decoded), one write per batch of replies. What the engine
 * costs is the gap between this and afb-edge; the gap between this and the
 * native client is Node.js's own (event loop, streams, V8) on this machine.
 */
async function rawNodeRun(spec: string, verb: string, args: string, calls: number, inflight: number): Promise<number> {
  const sock = await connectSpec(parseSpec(spec));
  sock.setNoDelay?.(true);
  const k = Math.min(inflight, calls);
  const frames = Array.from({ length: k }, (_, i) => writeCall(i + 1, verb, 0, 0, args, null));
  let pending: Buffer = Buffer.alloc(0);
  let versionSeen = false;
  let got = 0;
  let sent = 0;
  let t0 = 0n;
  const seconds = await new Promise<number>((resolve, reject) => {
    sock.once('error', reject);
    sock.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let replies = 0;
      for (;;) {
        if (pending.length < 2) break;
        const len7 = pending[1]! & 0x7f;
        const head = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
        if (pending.length < head) break;
        const len = len7 < 126 ? len7 : len7 === 126 ? pending.readUInt16BE(2) : Number(pending.readBigUInt64BE(2));
        if (pending.length < head + len) break;
        pending = pending.subarray(head + len);
        if (!versionSeen) versionSeen = true; // the binder's version answer
        else replies++;
      }
      if (replies === 0 && got > 0) return;
      if (sent === 0) {
        t0 = process.hrtime.bigint();
        sent = k;
        sock.write(k === 1 ? frames[0]! : Buffer.concat(frames));
        return;
      }
      got += replies;
      if (got >= calls) return resolve(Number(process.hrtime.bigint() - t0) / 1e9);
      const more = Math.min(replies, calls - sent);
      if (more > 0) {
        const batch = frames.slice(0, more); // ids whose replies came back are free again
        sent += more;
        sock.write(more === 1 ? batch[0]! : Buffer.concat(batch));
      }
    });
    sock.write(writeVersionOffer(SUPPORTED_VERSIONS));
  });
  sock.destroy();
  return calls / seconds;
}

/** `rounds` runs of `calls` calls, by our client or by the floor, nothing timed or printed but a count. */
async function countOnly(who: string, spec: string, verb: string, args: string, calls: number, inflight: number, rounds: number): Promise<void> {
  if (who !== 'client' && who !== 'floor') throw new Error(`--count-only takes client or floor, not ${who}`);
  const client = who === 'client' ? new WsapiClient(spec) : null;
  await client?.connect();
  for (let r = 0; r < rounds; r++) {
    if (client !== null) await runClient(client, verb, args, calls, inflight);
    else await rawNodeRun(spec, verb, args, calls, inflight);
  }
  client?.close();
  console.log(`count-only ${who}: ${rounds} x ${calls} calls`);
}

async function versusNative(clientPath: string, spec: string, verb: string, args: string, calls: number, inflight: number, rounds: number): Promise<void> {
  JSON.parse(args);
  const client = new WsapiClient(spec);
  await client.connect();
  await runClient(client, verb, args, Math.min(2000, calls), inflight); // warm-up
  console.log(`native ${clientPath} vs afb-edge WsapiClient against ${spec}: ${calls} x ${verb} ${args}, ${inflight} in flight, ${rounds} rounds, node ${process.version} ${process.execArgv.join(' ')}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`);
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-bench-'));
  const inputFile = join(dir, 'calls.txt');
  writeFileSync(inputFile, `${verb} ${args}\n`.repeat(calls));
  const ratios: number[] = [];
  const floorRatios: number[] = [];
  const oursCpus: number[] = [];
  const floorCpus: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const native = await nativeRun(clientPath, spec, inputFile, calls, inflight);
    // this process's CPU per call (user + system), the engine's own cost beside the floor's
    const cpuPerCall = (u: NodeJS.CpuUsage): number => (u.user + u.system) / calls;
    let c0 = process.cpuUsage();
    const ours = await runClient(client, verb, args, calls, inflight);
    const oursCpu = cpuPerCall(process.cpuUsage(c0));
    c0 = process.cpuUsage();
    const floor = await rawNodeRun(spec, verb, args, calls, inflight);
    const floorCpu = cpuPerCall(process.cpuUsage(c0));
    oursCpus.push(oursCpu);
    floorCpus.push(floorCpu);
    const rate = ours.calls / ours.seconds;
    ratios.push(rate / native);
    floorRatios.push(floor / native);
    console.log(`round ${i + 1}: native ${Math.round(native)} calls/s, afb-edge ${Math.round(rate)} calls/s (p50 ${ours.p50.toFixed(0)} us, p99 ${ours.p99.toFixed(0)} us), raw Node.js floor ${Math.round(floor)} calls/s; CPU per call ${oursCpu.toFixed(1)} / floor ${floorCpu.toFixed(1)} us; ratio ${(rate / native).toFixed(2)} (floor ${(floor / native).toFixed(2)})`);
  }
  client.close();
  rmSync(dir, { recursive: true, force: true });
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const spread = (xs: number[]): string => `median ${median(xs).toFixed(2)}, min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}`;
  console.log(`ratio afb-edge/native: ${spread(ratios)}; raw Node.js floor/native: ${spread(floorRatios)}; CPU per call (median) afb-edge ${median(oursCpus).toFixed(1)} us, floor ${median(floorCpus).toFixed(1)} us; peak RSS ${peakRssMb().toFixed(1)} MB`);
}

async function fullRun(calls: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-bench-'));
  const spec = `unix:${join(dir, 'bench')}`;
  const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, main, 'simulate', '--ws-server', spec, '--period', '0', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('serving')) resolve(); });
      child.once('exit', (code) => reject(new Error(`simulator exited with ${code}`)));
    });
    const client = new WsapiClient(spec);
    await client.connect();
    const args = '{"n":1}';
    // The same frames the engine exchanges for one ping, for the raw baseline.
    const probe = await client.callText('ping', args);
    const request = writeCall(1, 'ping', 0, 0, args, null);
    const reply = writeReply(1, probe.error, probe.info, JSON.stringify(probe.data));
    await runClient(client, 'ping', args, 5000, 10); // warm-up
    console.log(`wsapi bench: node ${process.version} ${process.execArgv.join(' ') || '(default flags)'}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, ${calls} calls per run, unix socket`);
    console.log(`request ${request.length} B, reply ${reply.length} B; server = afb-edge simulate in a child process`);
    // Engine runs first, so the peak RSS read after them is the engine's alone.
    const modes = [1, 10, 100].map((inflight) => ({ inflight, calls: inflight === 1 ? Math.min(calls, 30_000) : calls }));
    const ours: Result[] = [];
    for (const m of modes) ours.push(await runClient(client, 'ping', args, m.calls, m.inflight));
    const clientPeak = peakRssMb();
    const serverPeak = peakRssMb(child.pid);
    client.close();
    const raw: Result[] = [];
    for (const m of modes) raw.push(await rawBaseline(join(dir, `raw${m.inflight}`), m.calls, m.inflight, request, reply));
    console.log('mode            engine calls/s   p50 us   p99 us | raw-echo msgs/s  p50 us | ratio');
    modes.forEach((m, i) => {
      const rate = ours[i]!.calls / ours[i]!.seconds;
      const rawRate = raw[i]!.calls / raw[i]!.seconds;
      const label = m.inflight === 1 ? 'sequential' : `pipelined x${m.inflight}`;
      console.log(`${label.padEnd(15)} ${Math.round(rate).toString().padStart(14)} ${ours[i]!.p50.toFixed(0).padStart(8)} ${ours[i]!.p99.toFixed(0).padStart(8)} | ${Math.round(rawRate).toString().padStart(15)} ${raw[i]!.p50.toFixed(0).padStart(7)} | ${(rate / rawRate).toFixed(2)}`);
    });
    console.log(`peak RSS during the engine runs: client ${clientPeak.toFixed(1)} MB, server ${serverPeak.toFixed(1)} MB`);
    const last = ours[ours.length - 1]!;
    console.log(line(last, clientPeak));
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({
  options: {
    spec: { type: 'string' },
    verb: { type: 'string', default: 'ping' },
    args: { type: 'string', default: 'null' },
    calls: { type: 'string', default: '200000' },
    inflight: { type: 'string', default: '100' },
    'native-client': { type: 'string' },
    rounds: { type: 'string', default: '5' },
    'count-only': { type: 'string' },
  },
});
const calls = Number(values.calls);
if (values['count-only'] !== undefined) {
  if (values.spec === undefined) throw new Error('--count-only needs --spec');
  await countOnly(values['count-only'], values.spec, values.verb!, values.args!, calls, Number(values.inflight), Number(values.rounds));
} else if (values['native-client'] !== undefined) {
  if (values.spec === undefined) throw new Error('--native-client needs --spec (the native binder to call)');
  await versusNative(values['native-client'], values.spec, values.verb!, values.args!, calls, Number(values.inflight), Number(values.rounds));
} else if (values.spec !== undefined) {
  await clientOnly(values.spec, values.verb!, values.args!, calls, Number(values.inflight));
} else {
  await fullRun(calls);
}
