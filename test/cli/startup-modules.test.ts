/**
 * What `afb-edge run` loads before READY=1 with a plain configuration (an
 * mqtt:// broker, no health port, no exported API): none of the Node
 * built-ins that src/util/lazy-require.ts defers (tls, http, crypto,
 * perf_hooks), not prom-client's process collectors (loaded after READY=1;
 * the only user of node:v8 on that path, for the heap metrics), not tty
 * (the `debug` package, which the bundle loads only with $DEBUG:
 * scripts/bundle-shims/), and no JavaScript file beside the bundle: only
 * the native addons load from node_modules. A static import slipping back
 * in fails here.
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

it('run reaches READY=1 with the bundle and the addons it needs, and none of the deferred modules', async () => {
  const config = join(dir, 'agent.yaml');
  writeFileSync(config, `device: { id: modules-test }\nmqtt: { url: "mqtt://127.0.0.1:9" }\noutbox: { path: ${join(dir, 'outbox.db')} }\nbinders: []\nroutes: []\n`);
  // At the event `run` emits once READY=1 is sent: the built-ins loaded so far.
  const preload = join(dir, 'at-ready.cjs');
  writeFileSync(preload, `process.once('afb-edge:ready', () => {
  const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
  const files = Object.keys(module.constructor._cache).filter((f) => f !== __filename);
  process.stderr.write('AT-READY ' + JSON.stringify({ builtins, files }) + '\\n');
});\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, AFB_EDGE_NODE_FLAGS: `--max-semi-space-size=2 --require ${preload}` };
  delete env.NOTIFY_SOCKET;
  delete env.AFB_EDGE_CODE_CACHE;
  delete env.CACHE_DIRECTORY;
  const child = spawn(join(projectRoot, 'bin/afb-edge'), ['run', '--config', config], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no AT-READY line: ${stderr}`)), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      const m = /AT-READY (.*)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
  });
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const { builtins, files } = JSON.parse(line) as { builtins: string[]; files: string[] };
  expect(builtins).toContain('net'); // the list is real: the MQTT client is connecting
  for (const m of ['tls', 'http', 'https', 'crypto', 'v8', 'perf_hooks', 'tty']) expect(builtins, m).not.toContain(m);
  expect(files.map((f) => f.slice(projectRoot.length + 1)).sort()).toEqual([
    'dist/src/cli/afb-edge.bundle.cjs',
    'dist/src/cli/launch.cjs',
    'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
  ]);
});
