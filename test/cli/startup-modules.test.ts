/**
 * What `afb-edge run` loads before READY=1 with a plain configuration (an
 * mqtt:// broker, no health port, no exported API): none of the Node
 * built-ins that src/util/lazy-require.ts defers (tls, http, crypto,
 * perf_hooks), not prom-client's process collectors (loaded after READY=1;
 * the only user of node:v8 on that path, for the heap metrics), not tty
 * (the `debug` package, which the bundle loads only with $DEBUG) nor
 * child_process (serialport's port listing), which scripts/bundle.mjs makes
 * lazy, nor worker_threads (the reload check, src/config/load-in-worker.ts), and no JavaScript file beside the bundle: only the native addons
 * load from node_modules. A static import slipping back
 * in fails here. The config loader's bundle (src/config/loader-module.ts)
 * is loaded before READY=1 and released: it is not in the module cache
 * then. Once the process metrics run (after READY=1), neither perf_hooks
 * nor zlib is loaded (src/health/event-loop-delay.ts,
 * src/sinks/mqtt/row-check.ts: ~0.9 MB of RSS together), and small
 * Buffers come from 1 KiB slabs (src/cli/commands/run.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureBuilt, projectRoot } from '../helpers/cli.js';

let dir: string;
beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'afb-edge-startup-modules-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `run` with `config`; at READY=1 (the event `run` emits), what it has loaded. */
async function loadedAtReady(name: string, config: string): Promise<{ builtins: string[]; files: string[]; later: string[]; builtinsLater: string[]; bufferPool: number }> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, config);
  const preload = join(dir, 'at-ready.cjs');
  writeFileSync(preload, `process.once('afb-edge:ready', () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  const files = Object.keys(module.constructor._cache).filter((f) => f !== __filename);
  process.stderr.write('AT-READY ' + JSON.stringify({ builtins, files }) + '\\n');
  setTimeout(() => {
    const later = Object.keys(module.constructor._cache).filter((f) => f !== __filename);
    const builtinsLater = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
    process.stderr.write('LATER ' + JSON.stringify({ later, builtinsLater, bufferPool: Buffer.poolSize }) + '\\n');
  }, 1000);
});\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, AFB_EDGE_NODE_FLAGS: `--max-semi-space-size=2 --require ${preload}` };
  delete env.NOTIFY_SOCKET;
  delete env.AFB_EDGE_CODE_CACHE;
  delete env.CACHE_DIRECTORY;
  delete env.DEBUG;
  const child = spawn(join(projectRoot, 'bin/afb-edge'), ['run', '--config', file], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no AT-READY line: ${stderr}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      const m = /AT-READY (.*)\n(?:.*\n)*LATER (.*)\n/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(`{"atReady":${m[1]!},"later":${m[2]!}}`); }
    });
  });
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const loaded = JSON.parse(line) as { atReady: { builtins: string[]; files: string[] }; later: { later: string[]; builtinsLater: string[]; bufferPool: number } };
  const rel = (files: string[]) => files.map((f) => f.slice(projectRoot.length + 1)).sort();
  return { builtins: loaded.atReady.builtins, files: rel(loaded.atReady.files), later: rel(loaded.later.later), builtinsLater: loaded.later.builtinsLater, bufferPool: loaded.later.bufferPool };
}

const BUNDLE = ['dist/src/cli/afb-edge.bundle.cjs', 'dist/src/cli/launch.cjs'];
const SQLITE_ADDON = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';

it('run reaches READY=1 with the bundle and the addon it needs, and none of the deferred modules', async () => {
  const { builtins, files } = await loadedAtReady('plain', `device: { id: modules-test }\nmqtt: { url: "mqtt://127.0.0.1:9" }\noutbox: { path: ${join(dir, 'outbox.db')} }\nbinders: []\nroutes: []\n`);
  expect(builtins).toContain('net'); // the list is real: the MQTT client is connecting
  for (const m of ['tls', 'http', 'https', 'crypto', 'v8', 'perf_hooks', 'tty', 'child_process', 'worker_threads']) expect(builtins, m).not.toContain(m);
  expect(files).toEqual([...BUNDLE, SQLITE_ADDON].sort());
});

it('once the process metrics run, still no perf_hooks nor zlib (event-loop delay and row checksums without them); small Buffers in 1 KiB slabs', async () => {
  const { builtinsLater, bufferPool } = await loadedAtReady('metrics', `device: { id: modules-test }\nmqtt: { url: "mqtt://127.0.0.1:9" }\noutbox: { path: ${join(dir, 'outbox-metrics.db')} }\nbinders: []\nroutes: []\n`);
  expect(builtinsLater).toContain('v8'); // the list is real: the heap metrics are registered
  for (const m of ['perf_hooks', 'zlib', 'internal/perf/performance', 'internal/perf/event_loop_delay']) expect(builtinsLater, m).not.toContain(m);
  expect(bufferPool).toBe(1024); // src/cli/commands/run.ts says why
});

it("with a serial link, nothing of serialport before READY=1; its addon right after (its JavaScript is in the bundle)", async () => {
  const { builtins, files, later } = await loadedAtReady('serial', `device: { id: modules-test }\nmqtt: { url: "mqtt://127.0.0.1:9" }\noutbox: { path: ${join(dir, 'outbox-serial.db')} }\nbinders: []\nroutes: []\nserial: { links: [ { name: ecu0, device: /nonexistent/afb-edge-modules-test, protocol: ndjson } ] }\n`);
  for (const m of ['tty', 'child_process']) expect(builtins, m).not.toContain(m);
  // src/serial/link/binding.ts: the link loads the binding one event-loop turn after it starts
  expect(files).toEqual([...BUNDLE, SQLITE_ADDON].sort());
  // node-gyp-build reads the package's name (for its <NAME>_PREBUILD variable), then takes
  // the addon built from source (build/Release), else the package's prebuilt one (npm ci on x86)
  const addon = later.filter((f) => /^node_modules\/@serialport\/bindings-cpp\/(build\/Release|prebuilds\/linux-[^/]+)\/[^/]+\.node$/.test(f));
  expect(addon).toHaveLength(1);
  expect(later).toEqual([...BUNDLE, SQLITE_ADDON, addon[0]!, 'node_modules/@serialport/bindings-cpp/package.json'].sort());
});

it('once ready, one full collection (gc() from the launcher\'s --expose-gc) takes what start-up left in the old generation', async () => {
  const file = join(dir, 'gc.yaml');
  writeFileSync(file, `device: { id: modules-test }\nmqtt: { url: "mqtt://127.0.0.1:9" }\noutbox: { path: ${join(dir, 'outbox-gc.db')} }\nbinders: []\nroutes: []\n`);
  const preload = join(dir, 'ready-mark.cjs');
  writeFileSync(preload, `process.once('afb-edge:ready', () => process.stderr.write('AT-READY\\n'));\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, AFB_EDGE_NODE_FLAGS: `--max-semi-space-size=2 --expose-gc --trace-gc --require ${preload}` };
  for (const k of ['NOTIFY_SOCKET', 'AFB_EDGE_CODE_CACHE', 'CACHE_DIRECTORY', 'DEBUG']) delete env[k];
  const child = spawn(join(projectRoot, 'bin/afb-edge'), ['run', '--config', file], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready: ${stderr}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      if (stderr.includes('AT-READY\n')) { clearTimeout(timer); resolve(); }
    });
  });
  // V8's --trace-gc names a collection gc() asked for "testing"
  const forced = () => stdout.split('\n').filter((l) => /Mark-Compact .* testing; GC in old space requested/.test(l));
  for (let i = 0; i < 50 && forced().length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  expect(forced(), stdout).toHaveLength(1);
});
