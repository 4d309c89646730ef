/**
 * What bin/afb-edge starts: the one-file bundle (scripts/bundle.mjs), with a
 * V8 code cache when a cache directory is given; the compiled modules
 * (main.js) when there is no bundle.
 *
 * Why a code cache: at each start V8 parses the 0.75 MB bundle again and then
 * compiles every function the start-up runs. With the cache, V8 takes the
 * bytecode it compiled during an earlier run instead: READY=1 in about 0.7x
 * the time on x86 (bench/startup.ts) and in the emulated arm64 guest
 * (docs/qemu.md).
 * Node 22 has a compile cache of its own (module.enableCompileCache), but
 * Node 20, which current Yocto LTS releases ship, has none. The cache is
 * written once per bundle, at READY=1, so it holds the functions start-up
 * compiled (V8 adds those compiled since the script ran) and no others.
 *
 * Where: $AFB_EDGE_CODE_CACHE, else $CACHE_DIRECTORY (systemd's
 * CacheDirectory=afb-edge), else no cache. One file per bundle build and
 * Node version: `afb-edge-<node>-<arch>-<bundle size, mtime, inode>.v8cache`,
 * written once READY=1 is sent (or 10 s after start-up, or at exit), and
 * one for the config loader's bundle, `afb-edge-config-loader-*.v8cache`
 * (requireWithCodeCache below). Files of other builds are deleted when a
 * new one is written, so the directory holds at most one of each. V8
 * checks a cache against its own version and flags and rejects a stale
 * one. The file name guards against a bundle replaced by another of the
 * same length, which V8 would not notice.
 */
import fs = require('node:fs');
import path = require('node:path');
import vm = require('node:vm');
import Module = require('node:module');
import url = require('node:url');

const bundle = path.join(__dirname, 'afb-edge.bundle.cjs');
/** When the cache is written if `run` never says it is ready (ms after start). */
const WRITE_AFTER_MS = 10_000;
/** What `run` emits on process once READY=1 is sent (src/cli/commands/run.ts). */
const READY_EVENT = 'afb-edge:ready';

/** As src/util/cache-dir.ts (this file runs before the bundle and loads nothing from it). */
function cacheDir(): string | undefined {
  const dir = process.env.AFB_EDGE_CODE_CACHE || process.env.CACHE_DIRECTORY?.split(':')[0];
  return dir ? dir : undefined;
}

function warn(message: string): void {
  // Before the agent's logger exists, in its line format; a cache problem never stops the start.
  process.stderr.write(`<warn> launch: ${message}\n`);
}

/**
 * A bundle run as a CommonJS module with a code cache of its own, `kind`
 * naming its files; returns its exports. The cache is written at READY=1
 * when there was none or V8 rejected it.
 */
function runWithCache(dir: string, file: string, kind: string, parent: NodeJS.Module | undefined, st: fs.Stats = fs.statSync(file)): unknown {
  const cacheFile = path.join(dir, `${kind}-${process.version}-${process.arch}-${st.size}-${Math.trunc(st.mtimeMs)}-${st.ino}.v8cache`);
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    // first start of this build: no cache yet
  }
  // Release builds of V8 neither checksum the code caches they write nor check the ones they
  // read: a flipped bit on the board's flash would crash the agent. With this flag V8 does
  // both, and rejects a damaged cache. bin/afb-edge passes it; set here otherwise (loading
  // node:v8 costs ~80 ms of start-up in the emulated arm64 guest, hence not always).
  if (!process.execArgv.includes('--verify-snapshot-checksum') && !checksumFlagSet) {
    (require('node:v8') as typeof import('node:v8')).setFlagsFromString('--verify-snapshot-checksum');
    checksumFlagSet = true;
  }
  // latin1: the bundles are ASCII (scripts/bundle.mjs checks it), so this is the same text, and
  // the UTF-8 decoder costs ~120 ms more on 1 MB in the emulated arm64 guest.
  const source = fs.readFileSync(file, 'latin1');
  const script = new vm.Script(Module.wrap(source.startsWith('#!') ? '//' + source : source), {
    filename: file,
    cachedData,
    // No importModuleDynamically: Node 20 cannot resolve an import() in functions taken from a
    // code cache (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING even with USE_MAIN_CONTEXT_DEFAULT_LOADER),
    // so `run` has none on its path (src/serial/link/binding.ts) and fails the same way with or
    // without a cache if one comes back (test/cli/launch.test.ts).
  });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    if (script.cachedDataRejected === true) warn(`code cache ${cacheFile} rejected by V8, writing a new one`);
    let written = false;
    const write = () => {
      if (written) return;
      written = true;
      writeCache(script, dir, cacheFile, kind);
    };
    // At READY=1 (`run` emits READY_EVENT on process): the cache then holds what start-up
    // compiled and nothing more, and V8 deserializes all of a cache, needed or not. The
    // timer and the exit are for a start that never gets there.
    process.once(READY_EVENT, () => setImmediate(write));
    setTimeout(write, WRITE_AFTER_MS).unref();
    process.once('exit', write);
  }
  // (A parent keeps its children: the config loader has none, so that it can be collected.)
  const mod = new Module(file, parent);
  mod.filename = file;
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(__dirname);
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(mod.exports, mod.exports, Module.createRequire(file), mod, file, __dirname);
  return mod.exports;
}

let checksumFlagSet = false;

/**
 * For the CLI's bundle (src/config/loader-module.ts): the config loader's
 * bundle, `file`, run with a code cache of its own (files
 * `afb-edge-config-loader-*.v8cache`, written at READY=1) when `run` has a
 * cache directory; undefined otherwise, and the caller requires it. Its
 * functions are compiled at every start, the validators among them: in the
 * CLI's bundle before, they were in its cache (~12 ms of READY=1 with the
 * cache on x86, bench/startup.ts).
 */
export function requireWithCodeCache(file: string): unknown {
  const dir = cacheDir();
  if (dir === undefined || process.argv[2] !== 'run' || require.main !== module) return undefined;
  return runWithCache(dir, file, 'afb-edge-config-loader', undefined);
}

function writeCache(script: vm.Script, dir: string, file: string, kind: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const data = script.createCachedData();
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd); // a power cut after the rename leaves the whole file, not an empty one
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file); // atomic: a concurrent start reads the old file or the whole new one
    // The same kind's files of other builds ("afb-edge-v20..." is not "afb-edge-config-loader-v20...").
    const ofKind = `${kind}-v`;
    for (const f of fs.readdirSync(dir)) {
      if (f.startsWith(ofKind) && f.endsWith('.v8cache') && path.join(dir, f) !== file) fs.rmSync(path.join(dir, f), { force: true });
    }
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true }); // a full disk must not keep half a cache
    } catch {
      // nothing more to do about it: the warning below says where
    }
    warn(`cannot write the code cache in ${dir}: ${(err as Error).message}`);
  }
}

function main(): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(bundle);
  } catch {
    // No bundle (a build without scripts/bundle.mjs): the compiled ES modules.
    void import(url.pathToFileURL(path.join(__dirname, 'main.js')).href);
    return;
  }
  const dir = cacheDir();
  // The cache is the service's: the other commands compile other functions and would each
  // rewrite it with theirs (and the demo imports aedes, an ES module, with import()).
  if (dir === undefined || process.argv[2] !== 'run') {
    require(bundle);
    return;
  }
  runWithCache(dir, bundle, 'afb-edge', module, st);
}

main();
