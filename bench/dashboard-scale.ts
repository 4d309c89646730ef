/**
 * Dashboard at fleet scale: N simulated devices (default 500) publishing, in
 * the agent's formats, a retained status, a health message every 5 s and
 * --rate events a second each (default 5: 2,500 messages/s), through one
 * mosquitto to one `afb-edge monitor --web` (bin/afb-edge, as an operator
 * runs it), with headless Chromium showing the fleet view in one page and a
 * device view (with a chart of its speed) in another.
 *
 *   node dist/bench/dashboard-scale.js [--devices N] [--rate R] [--warmup S] [--seconds S] [--trace FILE]
 *
 * --trace: a Chromium trace (devtools timeline) of the measured window, for
 * chrome://tracing; the bench then also reports, for the renderers' tasks
 * over 50 ms of wall time, how much CPU time they took (a task stretched by
 * a busy machine has a long wall time and a short CPU time).
 *
 * Reports, over the measured window: the monitor's CPU (% of one core) and
 * RSS, each page's long tasks (PerformanceObserver 'longtask': count and the
 * longest) and frame rate (requestAnimationFrame callbacks a second), and
 * publish-to-pixels latency p50/p99: every event carries its publish time as
 * the envelope's `ts`, and the page notes, for what it paints, the time from
 * that `ts` to the frame that shows it (web/probe.ts: requestAnimationFrame,
 * then a message posted from it, which runs after the paint). Ends with one
 * summary line. Aims (issue 14): no long task over 50 ms, p99 under 500 ms,
 * monitor RSS under 150 MB.
 *
 * Two controls, because a shared machine stretches tasks: a third page that
 * does nothing but count frames and long tasks (what the machine's load
 * alone costs a page), and each page's main-thread time per second from
 * Chromium's own counters (CDP Performance.getMetrics: TaskDuration,
 * ScriptDuration, LayoutDuration, RecalcStyleDuration), which contention
 * does not inflate as much as wall-clock task lengths.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import type { Page } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { pct, rssMb, startMosquitto, stopProcess } from './support/mosquitto.js';

const { values } = parseArgs({ options: { devices: { type: 'string' }, rate: { type: 'string' }, warmup: { type: 'string' }, seconds: { type: 'string' }, trace: { type: 'string' } } });
const DEVICES = Number(values.devices ?? 500);
const RATE = Number(values.rate ?? 5);
const WARMUP_S = Number(values.warmup ?? 10);
const SECONDS = Number(values.seconds ?? 30);
const HEALTH_EVERY_S = 5;
const here = dirname(fileURLToPath(import.meta.url));
const launcher = join(here, '..', '..', 'bin', 'afb-edge');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const id = (i: number) => `dev-${String(i).padStart(4, '0')}`;

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** One process publishing for every device, in the agent's formats. */
async function startFleet(port: number): Promise<{ stop(): Promise<void>; sent(): number }> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'bench-fleet' });
  const started = Date.now();
  for (let i = 0; i < DEVICES; i++) {
    c.publish(`afb-edge/${id(i)}/status`, JSON.stringify({ state: 'online', reason: 'started', ts: Date.now(), device: id(i), labels: { fleet: 'bench' }, version: 'bench' }), { qos: 1, retain: true });
  }
  let sent = 0;
  let seq = 0;
  const tickMs = 20;
  let tick = 0;
  const timer = setInterval(() => {
    tick++;
    const t = Date.now();
    const ts = new Date(t).toISOString();
    // Each device's events spread over the ticks of a second, RATE per second.
    const perTick = (DEVICES * RATE * tickMs) / 1000;
    for (let k = 0; k < perTick; k++) {
      const n = Math.floor(((tick * perTick + k) % DEVICES));
      seq++;
      c.publish(`afb-edge/${id(n)}/events/vehicle/speed`, `{"event":"vehicle/speed","source":"vehicle","ts":"${ts}","seq":${seq},"data":{"value":${(50 + 40 * Math.sin(seq / 50)).toFixed(2)},"unit":"km/h"}}`, { qos: 0 });
      sent++;
    }
    // Health: every device every HEALTH_EVERY_S, spread over the ticks.
    const healthPerTick = (DEVICES * tickMs) / (HEALTH_EVERY_S * 1000);
    for (let k = 0; k < healthPerTick; k++) {
      const n = Math.floor((tick * healthPerTick + k) % DEVICES);
      c.publish(`afb-edge/${id(n)}/health`, JSON.stringify({
        device: id(n), uptime_s: Math.round((t - started) / 1000), mqtt: 'connected', binders: { vehicle: 'connected' }, links: { can0: 'open' }, ts,
        metrics: { afb_edge_outbox_messages: n % 7, afb_edge_outbox_bytes: (n % 7) * 200, afb_edge_outbox_oldest_age_seconds: n % 7 ? 0.5 : 0, afb_edge_dropped_total: { qos0_queue_full: n % 3 }, afb_edge_process_resident_memory_bytes: 60e6 + n * 1000 },
      }), { qos: 0, retain: true });
      sent++;
    }
  }, tickMs);
  return {
    sent: () => sent,
    async stop() {
      clearInterval(timer);
      for (let i = 0; i < DEVICES; i++) {
        c.publish(`afb-edge/${id(i)}/status`, '', { qos: 1, retain: true });
        c.publish(`afb-edge/${id(i)}/health`, '', { qos: 1, retain: true });
      }
      await c.endAsync();
    },
  };
}

const OBSERVE = `
window.__bench = { long: [], frames: 0 };
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__bench.long.push(e.duration); }).observe({ type: 'longtask', buffered: true });
const f = () => { window.__bench.frames++; requestAnimationFrame(f); }; requestAnimationFrame(f);
`;

interface PageFigures { longTasks: number; longestMs: number; fps: number; latency: Record<string, number[]>; busy: string }

type Metrics = Record<string, number>;
const cdp = new Map<Page, { send(m: string): Promise<unknown> }>();

async function metrics(page: Page): Promise<Metrics> {
  let s = cdp.get(page);
  if (s === undefined) {
    s = await page.context().newCDPSession(page) as unknown as { send(m: string): Promise<unknown> };
    await s.send('Performance.enable');
    cdp.set(page, s);
  }
  const r = await s.send('Performance.getMetrics') as { metrics: Array<{ name: string; value: number }> };
  return Object.fromEntries(r.metrics.map((m) => [m.name, m.value]));
}

const before = new Map<Page, Metrics>();

async function reset(page: Page): Promise<void> {
  await page.evaluate('window.__bench.long = []; window.__bench.frames = 0; window.afbEdgeDashboard?.resetLatency()');
  before.set(page, await metrics(page));
}

async function figures(page: Page, seconds: number): Promise<PageFigures> {
  const b = await page.evaluate('({ long: window.__bench.long, frames: window.__bench.frames, latency: window.afbEdgeDashboard ? window.afbEdgeDashboard.latency() : {} })') as { long: number[]; frames: number; latency: Record<string, number[]> };
  const m0 = before.get(page)!;
  const m1 = await metrics(page);
  const per = (k: string) => (((m1[k] ?? 0) - (m0[k] ?? 0)) * 1000) / seconds;
  const busy = `main thread ${per('TaskDuration').toFixed(0)} ms/s (script ${per('ScriptDuration').toFixed(0)}, layout ${per('LayoutDuration').toFixed(0)}, style ${per('RecalcStyleDuration').toFixed(0)})`;
  return { longTasks: b.long.length, longestMs: b.long.length ? Math.max(...b.long) : 0, fps: b.frames / seconds, latency: b.latency, busy };
}

/** Renderer main-thread tasks over 50 ms of wall time in a trace, and their CPU time (ms). */
function traceLongTasks(file: string): { count: number; maxWallMs: number; maxCpuMs: number; over50Cpu: number } {
  type Ev = { ph?: string; name?: string; pid: number; tid: number; dur?: number; tdur?: number; args?: { name?: string } };
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents?: Ev[] } | Ev[];
  const events = Array.isArray(raw) ? raw : raw.traceEvents ?? [];
  const mains = new Set(events.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  const long = events.filter((e) => e.ph === 'X' && (e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask') && (e.dur ?? 0) > 50_000 && mains.has(`${e.pid}:${e.tid}`));
  return {
    count: long.length,
    maxWallMs: Math.max(0, ...long.map((e) => (e.dur ?? 0) / 1000)),
    maxCpuMs: Math.max(0, ...long.map((e) => (e.tdur ?? 0) / 1000)),
    over50Cpu: long.filter((e) => (e.tdur ?? 0) > 50_000).length,
  };
}

const fmt = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length === 0 ? 'n/a' : `p50 ${pct(s, 0.5).toFixed(0)} ms, p99 ${pct(s, 0.99).toFixed(0)} ms (n=${s.length})`;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-bench-dash-'));
  const broker = await startMosquitto(dir);
  const monitor = spawn(launcher, ['monitor', '--web', '127.0.0.1:0', '--broker', `mqtt://127.0.0.1:${broker.port}`, '--log-level', 'warn', '--max-devices', String(DEVICES + 10)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    monitor.stdout!.on('data', (d: Buffer) => { out += d; const m = /dashboard: (\S+)/.exec(out); if (m) resolve(m[1]!); });
    monitor.once('exit', (c) => reject(new Error(`monitor exited ${c}`)));
  });
  const fleet = await startFleet(broker.port);
  const browser = await launchChromium();
  try {
    const open = async (path: string) => {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await ctx.addInitScript(OBSERVE);
      const page = await ctx.newPage();
      await page.goto(url + path);
      return page;
    };
    const fleetPage = await open('');
    const devicePage = await open(`#/device/${id(7)}?s=vehicle/speed|data.value`);
    // The control: the same observer on a page of the same server that draws nothing (its 404 text).
    const controlPage = await open('nothing-here');
    console.log(`dashboard-scale: ${DEVICES} devices × ${RATE} events/s + health every ${HEALTH_EVERY_S} s; warm-up ${WARMUP_S} s, measured ${SECONDS} s; ${cpus().length} × ${cpus()[0]?.model ?? '?'}`);
    await sleep(WARMUP_S * 1000);
    await reset(fleetPage);
    await reset(devicePage);
    await reset(controlPage);
    const cpu0 = cpuSeconds(monitor.pid!);
    const sent0 = fleet.sent();
    if (values.trace) await browser.startTracing(undefined, { path: values.trace, categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute', 'blink.user_timing'] });
    const t0 = Date.now();
    let rssMax = 0;
    const rssTimer = setInterval(() => { rssMax = Math.max(rssMax, rssMb(monitor.pid!)); }, 500);
    await sleep(SECONDS * 1000);
    clearInterval(rssTimer);
    if (values.trace) await browser.stopTracing();
    const secs = (Date.now() - t0) / 1000;
    const cpu = ((cpuSeconds(monitor.pid!) - cpu0) / secs) * 100;
    const rssEnd = rssMb(monitor.pid!);
    const msgRate = (fleet.sent() - sent0) / secs;
    const f = await figures(fleetPage, secs);
    const d = await figures(devicePage, secs);
    const c = await figures(controlPage, secs);
    const counts = await fleetPage.evaluate('window.afbEdgeDashboard.counts()') as { devices: number; fleetRows: number };
    console.log(`published ${msgRate.toFixed(0)} messages/s; fleet page knows ${counts.devices} devices, ${counts.fleetRows} rows in its DOM (windowed)`);
    console.log(`monitor: CPU ${cpu.toFixed(1)} % of one core, RSS ${rssEnd.toFixed(1)} MB (max ${rssMax.toFixed(1)} MB)`);
    console.log(`fleet view: ${f.longTasks} long tasks (longest ${f.longestMs.toFixed(0)} ms), ${f.fps.toFixed(1)} frames/s, ${f.busy}; latency row (health) ${fmt(f.latency.fleetRow!)}; activity (events) ${fmt(f.latency.fleetActivity!)}`);
    console.log(`device view: ${d.longTasks} long tasks (longest ${d.longestMs.toFixed(0)} ms), ${d.fps.toFixed(1)} frames/s, ${d.busy}; latency events ${fmt(d.latency.events!)}; chart ${fmt(d.latency.chart!)}`);
    console.log(`control page (draws nothing): ${c.longTasks} long tasks (longest ${c.longestMs.toFixed(0)} ms), ${c.fps.toFixed(1)} frames/s, ${c.busy}; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    if (values.trace) {
      const t = traceLongTasks(values.trace);
      console.log(`trace (all pages): ${t.count} renderer tasks over 50 ms of wall time (longest ${t.maxWallMs.toFixed(0)} ms); their CPU time at most ${t.maxCpuMs.toFixed(0)} ms; ${t.over50Cpu} over 50 ms of CPU`);
    }
    const all = [...d.latency.events!, ...d.latency.chart!, ...f.latency.fleetRow!].sort((a, b) => a - b);
    console.log(`summary: devices=${DEVICES} msg_s=${msgRate.toFixed(0)} monitor_cpu_pct=${cpu.toFixed(1)} monitor_rss_mb=${rssMax.toFixed(1)} longest_task_ms=${Math.max(f.longestMs, d.longestMs).toFixed(0)} control_longest_task_ms=${c.longestMs.toFixed(0)} fleet_fps=${f.fps.toFixed(1)} device_fps=${d.fps.toFixed(1)} p50_ms=${pct(all, 0.5).toFixed(0)} p99_ms=${pct(all, 0.99).toFixed(0)}`);
  } finally {
    await browser.closeAll();
    await fleet.stop();
    await stopProcess(monitor);
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(`dashboard-scale: ${err.stack ?? err.message}`);
  process.exit(1);
});
