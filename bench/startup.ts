/**
 * Cold start to READY=1: spawns `bin/afb-edge run` (as systemd does, through
 * the launcher) with NOTIFY_SOCKET pointing at a real datagram receiver
 * (python3, test/systemd/notify-listener.ts) and measures, per run:
 *   - spawn -> READY=1 received, on CLOCK_MONOTONIC (the receiver stamps the
 *     datagram with time.monotonic_ns, we stamp the spawn with hrtime: one
 *     clock, no pipe latency in the figure);
 *   - "ready in N ms, cpu M ms" as the agent logs it (process.uptime():
 *     from Node's own start, so without the launcher shell and the exec; and
 *     the CPU time it used until then, which a loaded machine inflates much
 *     less than the wall time);
 *   - SIGTERM -> exit (the drain of an idle agent).
 * The config is the minimal one (device, mqtt, outbox; no binder, no route)
 * against a local mosquitto, so the figure is the agent's own start-up. The
 * agent gets a service's environment (PATH, NOTIFY_SOCKET), not this one's.
 * A bare `node -e 0` run gives Node's own floor on this machine.
 *
 *   node dist/bench/startup.js [--runs N] [--binders N] [--board NAME]
 *
 * --board: run with that board profile (AFB_EDGE_BOARD, as the board's
 * systemd drop-in does on an installed image).
 *
 * Two modes, run alternately so that both see the same machine load: the
 * agent without a code cache (the baseline: a first start after install)
 * and with the start-up caches in AFB_EDGE_CODE_CACHE, filled by one warm-up
 * run first (every later start): the V8 code cache of dist/src/cli/launch.cjs
 * and the parsed config of src/config/parse-cache.ts. Prints a table, then
 * one line per mode, "startup[mode]: spawn->READY=1 median X ms (min, p90,
 * max) ...", and the ratio of the medians.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WsapiServer } from '../src/wsapi/index.js';
import { startBroker } from '../test/helpers/broker.js';
import { NotifyListener, monotonicNs } from '../test/systemd/notify-listener.js';

const here = dirname(fileURLToPath(import.meta.url));
const launcher = join(here, '..', '..', 'bin', 'afb-edge');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    binders: { type: 'string', default: '0' },
    board: { type: 'string' },
  },
});
const runs = Number(values.runs);
const binderCount = Number(values.binders);

const ms = (ns: bigint): number => Number(ns / 1000n) / 1000;
function stats(xs: number[]): { min: number; median: number; p90: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { min: s[0]!, median: at(0.5), p90: at(0.9), max: s[s.length - 1]! };
}
const fmt = (x: number): string => x.toFixed(0).padStart(6);

const MODES = ['plain', 'cached'] as const;
type Mode = (typeof MODES)[number];
interface Sample { toReady: number; logged: number; cpu: number; toExit: number }

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-startup-'));
  const broker = await startBroker();
  const servers: WsapiServer[] = [];
  const listener = await NotifyListener.start('@afb-edge-bench-startup-' + process.pid);
  try {
    const binders: string[] = [];
    for (let i = 0; i < binderCount; i++) {
      const s = new WsapiServer({ api: `b${i}` });
      s.verb('sub', (req) => req.reply(null));
      await s.listen(`unix:${join(dir, `b${i}`)}`);
      servers.push(s);
      binders.push(`{ name: b${i}, spec: "unix:${join(dir, `b${i}`)}", subscribe: [ { verb: sub } ] }`);
    }
    const config = join(dir, 'afb-edge.yaml');
    writeFileSync(config, [
      'device: { id: bench-0 }',
      `mqtt: { url: "${broker.url}" }`,
      `outbox: { path: ${join(dir, 'outbox.db')} }`,
      `binders: [ ${binders.join(', ')} ]`,
      'routes: []',
      '',
    ].join('\n'));
    // The environment systemd gives a service, not this shell's: variables such as
    // NODE_EXTRA_CA_CERTS or NODE_OPTIONS change Node's own start-up (a certificate bundle
    // read and parsed at start: ~70 ms on this kind of machine).
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C.UTF-8', NOTIFY_SOCKET: listener.address };
    if (values.board !== undefined) env.AFB_EDGE_BOARD = values.board;
    const cacheDir = join(dir, 'code-cache');
    mkdirSync(cacheDir);
    const envFor = (mode: Mode): NodeJS.ProcessEnv => (mode === 'cached' ? { ...env, AFB_EDGE_CODE_CACHE: cacheDir } : env);

    const nodeFloor: number[] = [];
    for (let i = 0; i < Math.min(5, runs); i++) {
      const t0 = monotonicNs();
      spawnSync(process.execPath, ['-e', '0'], { env });
      nodeFloor.push(ms(monotonicNs() - t0));
    }

    const load0 = loadavg()[0]!;
    console.log(`node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? '?'}, load ${load0.toFixed(2)}, broker ${broker.kind}, ${binderCount} binder(s), board ${values.board ?? 'none'}`);

    /** One start: spawn -> READY=1, the agent's own figures, SIGTERM -> exit (the exit writes the code cache when there was none). */
    const startOnce = async (mode: Mode): Promise<Sample> => {
      rmSync(join(dir, 'outbox.db'), { force: true });
      const from = listener.messages.length;
      const t0 = monotonicNs();
      const child = spawn(launcher, ['run', '--config', config], { env: envFor(mode), stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d) => { stderr += d; });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const ready = await listener.next((m) => m.fields.READY === '1' && m.pid === child.pid, 20_000, from);
      const toReady = ms(ready.t - t0);
      await new Promise((r) => setTimeout(r, 50)); // the log line follows the datagram
      const line = /ready in (\d+) ms, cpu (\d+) ms/.exec(stderr);
      const t1 = monotonicNs();
      child.kill('SIGTERM');
      await exited;
      if (/launch:/.test(stderr)) throw new Error(`launcher warning: ${stderr}`);
      return { toReady, logged: Number(line?.[1] ?? NaN), cpu: Number(line?.[2] ?? NaN), toExit: ms(monotonicNs() - t1) };
    };

    await startOnce('cached'); // warm-up: writes the cache
    const cacheFiles = readdirSync(cacheDir).sort();
    const expected = [/^afb-edge-config-loader-v.*\.v8cache$/, /^afb-edge-parsed-config\.json$/, /^afb-edge-v.*\.v8cache$/];
    if (cacheFiles.length !== expected.length || !expected.every((re, i) => re.test(cacheFiles[i]!))) {
      throw new Error(`the warm-up run left ${cacheFiles.join(', ')} in the cache directory, expected the parse cache and the code caches of the CLI's bundle and of the config loader's`);
    }
    const samples: Record<Mode, Sample[]> = { plain: [], cached: [] };
    console.log('run  mode     spawn->READY  "ready in"     cpu  SIGTERM->exit   (ms)');
    for (let i = 0; i < runs; i++) {
      for (const mode of MODES) {
        const x = await startOnce(mode);
        samples[mode].push(x);
        console.log(`${String(i + 1).padStart(3)}  ${mode.padEnd(6)}  ${fmt(x.toReady)}        ${fmt(x.logged)}  ${fmt(x.cpu)}     ${fmt(x.toExit)}`);
      }
    }
    const n = stats(nodeFloor);
    console.log(`node -e 0 (spawn->exit): median ${n.median.toFixed(0)} ms`);
    for (const mode of MODES) {
      const xs = samples[mode];
      const r = stats(xs.map((x) => x.toReady));
      const g = stats(xs.map((x) => x.logged));
      const c = stats(xs.map((x) => x.cpu));
      const e = stats(xs.map((x) => x.toExit));
      console.log(`startup[${mode}]: spawn->READY=1 median ${r.median.toFixed(0)} ms (min ${r.min.toFixed(0)}, p90 ${r.p90.toFixed(0)}, max ${r.max.toFixed(0)}); "ready in" median ${g.median.toFixed(0)} ms (cpu ${c.median.toFixed(0)} ms); stop median ${e.median.toFixed(0)} ms; ${runs} runs`);
    }
    const med = (mode: Mode) => stats(samples[mode].map((x) => x.toReady)).median;
    const cpuMed = (mode: Mode) => stats(samples[mode].map((x) => x.cpu)).median;
    console.log(`startup: cached/plain spawn->READY=1 ${(med('cached') / med('plain')).toFixed(2)}x, cpu ${(cpuMed('cached') / cpuMed('plain')).toFixed(2)}x; load ${load0.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}`);
  } finally {
    await listener.close();
    for (const s of servers) await s.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
