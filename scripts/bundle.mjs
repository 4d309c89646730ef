#!/usr/bin/env node
/**
 * Bundles the compiled CLI (dist/src/cli/main.js) and its pure-JS
 * dependencies into one CommonJS file, dist/src/cli/afb-edge.bundle.cjs,
 * which bin/afb-edge runs when it exists.
 *
 * Why one file: Node otherwise resolves, reads and wraps ~400 files at
 * start-up. Why CommonJS rather than an ES module: Node's ES module loader
 * (module jobs, linking, the ES facades of the builtins it imports) costs
 * more than the code it loads. The CommonJS bundle reaches READY=1 in about
 * half the time of an ESM bundle of the same code, in the emulated arm64
 * guest (3.6 s against 6.6 s, docs/qemu.md) and on x86 (bench/startup.ts).
 * Commands stay lazy: esbuild keeps each dynamically imported module in a
 * function that runs when the command is chosen, so `run` parses the demo
 * and the simulators but does not execute them.
 *
 * Packages whose native addon they find themselves (serialport's bindings)
 * and dev-only ones stay external and load from node_modules; better-sqlite3
 * is bundled, and given its addon's path. The bundle sits beside main.js, so the paths the code
 * derives from import.meta.url (package.json, the addon, boards/) are the
 * same.
 *
 *   node scripts/bundle.mjs [--esbuild MODULE]
 *
 * --esbuild: the esbuild JS API to use (a path), e.g. esbuild-wasm's
 * lib/main.js where no native esbuild binary runs (the Yocto recipe).
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { esbuild: { type: 'string' }, root: { type: 'string' } } });
const { build } = values.esbuild ? await import(pathToFileURL(resolve(values.esbuild)).href) : await import('esbuild');

/**
 * mqtt's index ('mqtt') stays external: only the commands for people (monitor,
 * demo) use it, for mqtt.connect() and its websocket URLs. Bundled, its
 * transports (ws, socks, ip-address: ~350 KB) would be parsed at every start
 * of the agent, which imports mqtt/lib/* directly (src/sinks/mqtt/mqtt-transport.ts).
 * (esbuild's `external: ['mqtt']` would take mqtt/lib/* out as well.)
 */
const mqttIndexExternal = {
  name: 'mqtt-index-external',
  setup(b) {
    b.onResolve({ filter: /^mqtt$/ }, (args) => ({ path: args.path, external: true }));
  },
};

/**
 * Stand-ins for two dependencies of mqtt.js (scripts/bundle-shims/, whose
 * comments give the measured cost): `debug`, loaded only when $DEBUG is set,
 * and `lru-cache`, loaded at first use. The stand-ins load the real packages,
 * resolved from the root's node_modules.
 */
const shimDir = join(dirname(fileURLToPath(import.meta.url)), 'bundle-shims');
const SHIMS = { debug: join(shimDir, 'debug.cjs'), 'lru-cache': join(shimDir, 'lru-cache.cjs') };
const lazyShims = {
  name: 'lazy-shims',
  setup(b) {
    b.onResolve({ filter: /^(debug|lru-cache)$/ }, async (args) => {
      if (args.pluginData?.realPackage === true) return undefined;
      if (!Object.values(SHIMS).includes(args.importer)) return { path: SHIMS[args.path] };
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: root, pluginData: { realPackage: true } });
      return real.errors.length > 0 ? { errors: real.errors } : { path: real.path };
    });
  },
};

const root = values.root ? resolve(values.root) : join(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(root, 'dist/src/cli');
// Outputs of earlier bundle layouts (an ES module bundle with chunks): not left to be shipped.
for (const f of readdirSync(cliDir)) if (/^(afb-edge\.bundle|bundle-.*)\.(mjs|cjs)$/.test(f)) rmSync(join(cliDir, f));
const outfile = join(cliDir, 'afb-edge.bundle.cjs');
const result = await build({
  entryPoints: [join(cliDir, 'main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // better-sqlite3's JS is bundled (14 files the CommonJS loader would resolve, read and
  // compile at each start); its addon is loaded by path (src/sinks/mqtt/outbox-db.ts), so
  // `bindings`, its default lookup, is never reached.
  external: ['bindings', '@serialport/bindings-cpp', '@serialport/binding-mock', 'aedes'],
  plugins: [mqttIndexExternal, lazyShims],
  // import.meta does not exist in CommonJS: the same file URL, from __filename.
  define: { 'import.meta.url': '__afbEdgeModuleUrl' },
  banner: { js: "const __afbEdgeModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  // Whitespace and comments out, names kept (stack traces stay readable): V8
  // keeps the whole source in memory, and parses it at every start. ASCII
  // only, so that V8 stores it one byte per character, not two.
  minifyWhitespace: true,
  minifySyntax: true,
  charset: 'ascii',
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
// dist/src/cli/launch.cjs reads the bundle as latin1 (faster than UTF-8 on the boards): one
// byte above 0x7f would change its text there.
const text = readFileSync(outfile);
const high = text.findIndex((b) => b > 0x7f);
if (high >= 0) throw new Error(`bundle: ${outfile} is not ASCII (byte 0x${text[high].toString(16)} at offset ${high}): launch.cjs reads it as latin1`);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`bundle: dist/src/cli/afb-edge.bundle.cjs, ${Object.keys(result.metafile.inputs).length} modules, ${(bytes / 1024).toFixed(0)} KiB`);
