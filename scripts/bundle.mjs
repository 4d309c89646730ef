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
 * The reload worker (src/config/check-worker.ts, which checks a config file
 * off the agent's event loop) is bundled the same way into its own file,
 * dist/src/cli/config-check-worker.bundle.cjs, beside the CLI's: the bundled
 * agent starts it from there (src/config/load-in-worker.ts).
 *
 * Dev-only packages stay external and load from node_modules.
 * better-sqlite3 and serialport's bindings are bundled, their addons loaded
 * from node_modules (below, and src/sinks/mqtt/outbox-db.ts). The bundle
 * sits beside main.js, so the paths the code derives from import.meta.url
 * (package.json, the addon, boards/) are the same.
 *
 *   node scripts/bundle.mjs [--esbuild MODULE]
 *
 * --esbuild: the esbuild JS API to use (a path), e.g. esbuild-wasm's
 * lib/main.js where no native esbuild binary runs (the Yocto recipe).
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { lazyModuleSource } from './bundle-shims/lazy-module.mjs';

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
 * readable-stream (mqtt.js's client and store, bl under mqtt-packet) is a copy
 * of Node's own streams, for browsers and older Node versions. In the agent it
 * is Node's `stream`: the same classes (readable-stream 4 is taken from Node's
 * sources), already loaded for the sockets and compiled from Node's code
 * cache. The bundle loses 116 KB of source, and the heap a second
 * implementation of streams, with its bytecode and optimised code, which
 * mqtt.js ran for every packet it read.
 */
const readableStreamIsNodeStream = {
  name: 'readable-stream-is-node-stream',
  setup(b) {
    b.onResolve({ filter: /^readable-stream$/ }, () => ({ path: 'node:stream', external: true }));
  },
};

/**
 * `bl`, under mqtt-packet's parser only: a whole Duplex stream around a list
 * of buffers, of which the parser uses eight list methods, and whose reads
 * copy what they read into new Buffers (five per PUBACK parsed). In the
 * bundle, src/sinks/mqtt/packet-bytes.ts's list instead
 * (scripts/bundle-shims/bl.cjs, which asks for it as afb-edge:packet-bytes:
 * the compiled file of the package being bundled); the build fails if any
 * other module asks for bl.
 */
const blShim = join(dirname(fileURLToPath(import.meta.url)), 'bundle-shims', 'bl.cjs');
const blIsPacketBytes = {
  name: 'bl-is-packet-bytes',
  setup(b) {
    b.onResolve({ filter: /^bl$/ }, (args) => {
      if (!/[\\/]mqtt-packet[\\/]parser\.js$/.test(args.importer)) {
        return { errors: [{ text: `bl required by ${args.importer}: only mqtt-packet's parser is expected to (scripts/bundle-shims/bl.cjs)` }] };
      }
      return { path: blShim };
    });
    // the list itself, from the package being bundled (the Yocto recipe's installed one, --root)
    b.onResolve({ filter: /^afb-edge:packet-bytes$/ }, () => ({ path: join(root, 'dist/src/sinks/mqtt/packet-bytes.js') }));
  },
};

/**
 * `debug`, for mqtt.js, mqtt-packet and serialport, loaded only when $DEBUG
 * is set (scripts/bundle-shims/debug.cjs: ~60-100 ms of start-up in the
 * emulated arm64 guest, with `tty`). The stand-in loads the real package,
 * resolved from the root's node_modules.
 */
const debugShim = join(dirname(fileURLToPath(import.meta.url)), 'bundle-shims', 'debug.cjs');
const lazyDebug = {
  name: 'lazy-debug',
  setup(b) {
    b.onResolve({ filter: /^debug$/ }, async (args) => {
      if (args.pluginData?.realPackage === true) return undefined;
      if (args.importer !== debugShim) return { path: debugShim };
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: root, pluginData: { realPackage: true } });
      return real.errors.length > 0 ? { errors: real.errors } : { path: real.path };
    });
  },
};

/**
 * Modules the agent's start-up loads but does not use, loaded at first use
 * instead (scripts/bundle-shims/lazy-module.mjs). Costs measured in the
 * emulated arm64 guest (docs/qemu.md):
 * - yaml: ~25-50 ms of module code, and with the parse cache
 *   (src/config/parse-cache.ts) an unchanged config is not parsed at all;
 * - lru-cache (mqtt.js's MQTT 5 topic aliases, used only when the broker
 *   grants them): it reads `performance` and `AbortController` as it loads,
 *   which makes Node load perf_hooks: ~85-120 ms;
 * - worker-timers (mqtt.js's keep-alive timers in browsers): ~30-50 ms;
 * - child_process (serialport lists ports with udevadm): ~50-100 ms.
 */
const LAZY_MODULES = { yaml: 'get', 'lru-cache': 'get', 'worker-timers': 'call', child_process: 'get', 'node:child_process': 'get' };
const lazyModules = {
  name: 'lazy-modules',
  setup(b) {
    const requireFromRoot = createRequire(join(root, 'package.json'));
    b.onResolve({ filter: /^(yaml|lru-cache|worker-timers|(node:)?child_process)$/ }, (args) =>
      // the stand-in's own require is the real module's
      args.namespace === 'lazy-module' ? undefined : { path: args.path, namespace: 'lazy-module' });
    b.onLoad({ filter: /.*/, namespace: 'lazy-module' }, (args) => ({
      contents: lazyModuleSource(args.path, requireFromRoot(args.path), LAZY_MODULES[args.path]),
      loader: 'js',
      resolveDir: root,
    }));
  },
};

/**
 * The config loader (src/config/loader.ts: the YAML parser, the schema
 * validators, the semantic checks) is a bundle of its own,
 * dist/src/cli/config-loader.bundle.cjs, which src/config/loader-module.ts
 * loads by path and `run` drops once the agent has its configuration. Out
 * of the CLI's bundle: its source text would otherwise stay in the agent's
 * heap for good, with the rest of the bundle's.
 */
const configLoaderApart = {
  name: 'config-loader-apart',
  setup(b) {
    // loader-module.ts imports ./loader.js only when it does not run bundled
    b.onResolve({ filter: /^\.\/loader\.js$/ }, (args) =>
      /[\\/]config[\\/]loader-module\.js$/.test(args.importer) ? { path: 'loader.js', namespace: 'config-loader-apart' } : undefined);
    b.onLoad({ filter: /.*/, namespace: 'config-loader-apart' }, () => ({
      contents: "throw new Error('the bundled CLI loads the config loader from config-loader.bundle.cjs (src/config/loader-module.ts)');",
      loader: 'js',
    }));
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
for (const f of readdirSync(cliDir)) if (/^(afb-edge\.bundle|config-check-worker\.bundle|config-loader\.bundle|bundle-.*)\.(mjs|cjs)$/.test(f)) rmSync(join(cliDir, f));
const outfile = join(cliDir, 'afb-edge.bundle.cjs');
const workerOutfile = join(cliDir, 'config-check-worker.bundle.cjs');
const loaderOutfile = join(cliDir, 'config-loader.bundle.cjs');
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // better-sqlite3's JS is bundled (14 files the CommonJS loader would resolve, read and
  // compile at each start); its addon is loaded by path (src/sinks/mqtt/outbox-db.ts), so
  // `bindings`, its default lookup, is never reached. binding-mock: tests only. ws: only the
  // dashboard (monitor --web) uses it, loaded from node_modules then, as mqtt's index is.
  external: ['bindings', '@serialport/binding-mock', 'aedes', 'ws'],
  plugins: [mqttIndexExternal, readableStreamIsNodeStream, blIsPacketBytes, lazyDebug, lazyModules, serialportAddonDir, configLoaderApart],
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
};
const result = await build({ ...common, entryPoints: [join(cliDir, 'main.js')], outfile });
await build({ ...common, entryPoints: [join(root, 'dist/src/config/check-worker.js')], outfile: workerOutfile, metafile: false });
const loader = await build({ ...common, entryPoints: [join(root, 'dist/src/config/loader.js')], outfile: loaderOutfile });
// dist/src/cli/launch.cjs reads the bundle as latin1 (faster than UTF-8 on the boards): one
// byte above 0x7f would change its text there.
const text = readFileSync(outfile);
const high = text.findIndex((b) => b > 0x7f);
if (high >= 0) throw new Error(`bundle: ${outfile} is not ASCII (byte 0x${text[high].toString(16)} at offset ${high}): launch.cjs reads it as latin1`);
if (!existsSync(workerOutfile)) throw new Error(`bundle: no ${workerOutfile}`);
// What the config loader's bundle is for: none of it in the CLI's (configLoaderApart above).
const stray = Object.keys(result.metafile.inputs).filter((f) => /node_modules[\\/]yaml[\\/]|dist[\\/]src[\\/]config[\\/](generated[\\/]|load\.js|board\.js|parse-yaml\.js)/.test(f));
if (stray.length > 0) throw new Error(`bundle: the CLI's bundle holds what the config loader's is for: ${stray.slice(0, 5).join(', ')}`);
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`bundle: dist/src/cli/afb-edge.bundle.cjs, ${Object.keys(result.metafile.inputs).length} modules, ${(bytes / 1024).toFixed(0)} KiB`);
const loaderBytes = Object.values(loader.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`bundle: dist/src/cli/config-loader.bundle.cjs, ${Object.keys(loader.metafile.inputs).length} modules, ${(loaderBytes / 1024).toFixed(0)} KiB`);

/**
 * The dashboard's browser code (src/remote/dashboard/web/, TypeScript with
 * uPlot, a devDependency) as one script and one style sheet in dist/web/,
 * which `afb-edge monitor --web` serves from the package: no CDN, no
 * network at run time. picomatch's posix entry replaces its index there (the
 * index reads process.platform). License comments are kept at the end.
 * Where the sources are not (the Yocto recipe bundles the installed package,
 * which has none), there is no dashboard bundle, and the monitor says so.
 */
const webEntry = join(root, 'src/remote/dashboard/web/main.ts');
if (existsSync(webEntry)) {
  const web = await build({
    entryPoints: [webEntry],
    outfile: join(root, 'dist/web/app.js'),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: ['chrome100', 'firefox100', 'safari15'],
    alias: { picomatch: 'picomatch/posix' },
    minify: true,
    charset: 'ascii',
    legalComments: 'eof',
    logLevel: 'warning',
    metafile: true,
  });
  const sizes = Object.entries(web.metafile.outputs).map(([f, o]) => `${f.slice(f.lastIndexOf('/') + 1)} ${(o.bytes / 1024).toFixed(0)} KiB`);
  console.log(`bundle: dist/web/ (dashboard), ${sizes.join(', ')}`);
} else {
  console.log(`bundle: no ${webEntry}: dashboard bundle not made`);
}
