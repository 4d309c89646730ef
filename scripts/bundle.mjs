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
 * Dev-only packages stay external and load from node_modules.
 * better-sqlite3 and serialport's bindings are bundled, their addons loaded
 * from node_modules (below, and src/sinks/mqtt/outbox-db.ts). The bundle sits beside main.js, so the paths the code
 * derives from import.meta.url (package.json, the addon, boards/) are the
 * same.
 *
 *   node scripts/bundle.mjs [--esbuild MODULE]
 *
 * --esbuild: the esbuild JS API to use (a path), e.g. esbuild-wasm's
 * lib/main.js where no native esbuild binary runs (the Yocto recipe).
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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

/**
 * @serialport/bindings-cpp is bundled too (its 20 files, with its parsers,
 * would otherwise be resolved and compiled at each start of an agent with a
 * serial link). It finds its addon from its own directory, __dirname, which
 * in the bundle is the bundle's: that one expression becomes the package's
 * directory as Node resolves it at run time, so node-gyp-build looks where
 * it always does (build/Release, then prebuilds/).
 */
const SERIALPORT_ADDON_DIR = "(0, path_1.join)(__dirname, '../')";
const serialportAddonDir = {
  name: 'serialport-addon-dir',
  setup(b) {
    b.onLoad({ filter: /@serialport[\\/]bindings-cpp[\\/]dist[\\/]serialport-bindings\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes(SERIALPORT_ADDON_DIR)) throw new Error(`${args.path}: no ${SERIALPORT_ADDON_DIR} to replace (a new @serialport/bindings-cpp?)`);
      const runtimeDir = "(0, path_1.join)((0, path_1.dirname)(require.resolve('@serialport/bindings-cpp')), '..')";
      return { contents: source.replace(SERIALPORT_ADDON_DIR, runtimeDir), loader: 'js' };
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
  // `bindings`, its default lookup, is never reached. binding-mock: tests only.
  external: ['bindings', '@serialport/binding-mock', 'aedes'],
  plugins: [mqttIndexExternal, lazyShims, serialportAddonDir],
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
  // Wanted: the one require.resolve in the bundle finds serialport's package at run time (above).
  logOverride: { 'require-resolve-not-external': 'silent' },
  metafile: true,
});
// dist/src/cli/launch.cjs reads the bundle as latin1 (faster than UTF-8 on the boards): one
// byte above 0x7f would change its text there.
const text = readFileSync(outfile);
const high = text.findIndex((b) => b > 0x7f);
if (high >= 0) throw new Error(`bundle: ${outfile} is not ASCII (byte 0x${text[high].toString(16)} at offset ${high}): launch.cjs reads it as latin1`);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`bundle: dist/src/cli/afb-edge.bundle.cjs, ${Object.keys(result.metafile.inputs).length} modules, ${(bytes / 1024).toFixed(0)} KiB`);
