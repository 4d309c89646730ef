#!/usr/bin/env node
/**
 * Bundles the compiled CLI (dist/src/cli/main.js) and its pure-JS
 * dependencies into dist/src/cli/afb-edge.bundle.mjs (plus one chunk per
 * lazily loaded command, beside it), which bin/afb-edge runs when it exists. Why: Node resolves, reads and wraps
 * ~400 files at start-up otherwise; one file starts about a third faster on
 * x86 (bench/startup.ts) and more on small or emulated ARM cores, with a few
 * MB less RSS. Packages with native addons (and dev-only ones) stay external
 * and load from node_modules as usual. The bundle sits beside main.js so that
 * the paths the code derives from import.meta.url (package.json, the addon,
 * boards/) are the same.
 */
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cliDir = join(root, 'dist/src/cli');
// Chunk names carry a hash: drop the previous build's, or they pile up in dist/ (and in npm pack).
for (const f of readdirSync(cliDir)) if (/^(afb-edge\.bundle|bundle-.*)\.mjs$/.test(f)) rmSync(join(cliDir, f));
const result = await build({
  entryPoints: { 'afb-edge.bundle': join(root, 'dist/src/cli/main.js') },
  outdir: join(root, 'dist/src/cli'),
  outExtension: { '.js': '.mjs' },
  // One chunk per lazily imported command: `run` does not parse the demo or the simulators.
  splitting: true,
  chunkNames: 'bundle-[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', '@serialport/bindings-cpp', '@serialport/binding-mock', 'aedes'],
  // Bundled CommonJS modules call require(): give the ES module one.
  banner: { js: "import { createRequire as __afbEdgeRequire } from 'node:module'; const require = __afbEdgeRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`bundle: dist/src/cli/afb-edge.bundle.mjs + ${Object.keys(result.metafile.outputs).length - 1} chunks, ${Object.keys(result.metafile.inputs).length} modules, ${(bytes / 1024).toFixed(0)} KiB`);
