/**
 * The stand-ins scripts/bundle.mjs puts in the agent's bundle
 * (scripts/bundle-shims/): for `debug`, and for the modules it loads at
 * first use (yaml, lru-cache, worker-timers, child_process). They load the
 * real modules only when needed, and then behave as they do.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/cli.js';

const shims = join(projectRoot, 'scripts/bundle-shims');

/** Runs `script` in a fresh Node with the shim at `shim` as `S`; stderr and stdout. */
function node(shim: string, script: string, env: NodeJS.ProcessEnv = {}) {
  const base = { ...process.env };
  delete base.DEBUG;
  const r = spawnSync(process.execPath, ['-e', `const S = require(${JSON.stringify(join(shims, shim))});\n${script}`], {
    encoding: 'utf8', cwd: projectRoot, env: { ...base, ...env },
  });
  expect(r.status, r.stderr).toBe(0);
  return { stderr: r.stderr, stdout: r.stdout };
}

const loadedDebug = "Object.keys(require.cache).some((f) => /node_modules\\/debug\\//.test(f))";

describe('debug', () => {
  it('without $DEBUG: loggers print nothing, say they are disabled, and debug is not loaded', () => {
    const r = node('debug.cjs', `const d = S('afb-test:a'); d('hidden %s', 1); const e = d.extend('b');
      process.stdout.write(JSON.stringify({ enabled: d.enabled, ns: e.namespace, anyEnabled: S.enabled('afb-test:a'), loaded: ${loadedDebug} }));`);
    expect(JSON.parse(r.stdout)).toEqual({ enabled: false, ns: 'afb-test:a:b', anyEnabled: false, loaded: false });
    expect(r.stderr).toBe('');
  });

  it('enable() at run time loads debug, and the loggers made before print from then on', () => {
    const r = node('debug.cjs', `const d = S('afb-test:a'); d('before'); S.enable('afb-test:*'); d('after %d', 2);
      process.stdout.write(JSON.stringify({ enabled: d.enabled, loaded: ${loadedDebug} }));`);
    expect(JSON.parse(r.stdout)).toEqual({ enabled: true, loaded: true });
    expect(r.stderr).toMatch(/afb-test:a after 2/);
    expect(r.stderr).not.toMatch(/before/);
  });

  it('with $DEBUG: it is the debug package itself', () => {
    const r = node('debug.cjs', `const d = S('afb-test:a'); d('shown'); process.stdout.write(String(S === require('debug')));`, { DEBUG: 'afb-test:*' });
    expect(r.stdout).toBe('true');
    expect(r.stderr).toMatch(/afb-test:a shown/);
  });
});

describe('lazy modules (scripts/bundle-shims/lazy-module.mjs)', () => {
  let dir: string;
  beforeAll(() => {
    // inside the project: the stand-ins resolve the real modules from its node_modules
    mkdirSync(join(projectRoot, '.tmp'), { recursive: true });
    dir = mkdtempSync(join(projectRoot, '.tmp', 'lazy-module-test-'));
    writeFileSync(join(dir, 'fixture.cjs'), `globalThis.fixtureLoads = (globalThis.fixtureLoads ?? 0) + 1;
exports.add = (a, b) => a + b;
exports.Counter = class Counter { constructor(n) { this.n = n; } next() { return ++this.n; } };
exports.self = function () { return this; };
`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes the stand-in for `name` (resolved from `dir`) and returns a require for it. */
  async function standIn(name: string, kind: string): Promise<{ file: string; req: NodeJS.Require }> {
    const { lazyModuleSource } = await import(pathToFileURL(join(shims, 'lazy-module.mjs')).href) as { lazyModuleSource(n: string, real: unknown, k: string): string };
    const req = createRequire(join(dir, 'x.cjs'));
    const file = join(dir, `stand-in-${name.replace(/\W/g, '_')}-${kind}.cjs`);
    writeFileSync(file, lazyModuleSource(name, req(name), kind));
    return { file, req };
  }

  it("'call': the exports can be copied when the importer loads, the module loads at the first call, and behaves as itself", async () => {
    const { file, req } = await standIn('./fixture.cjs', 'call');
    const g = globalThis as { fixtureLoads?: number };
    const before = g.fixtureLoads ?? 0;
    // fresh copies: the fixture was loaded once above to read its export names
    delete req.cache[req.resolve('./fixture.cjs')];
    const m = req(file) as { add(a: number, b: number): number; Counter: new (n: number) => { next(): number }; self(this: unknown): unknown };
    const { add, Counter } = m; // what mqtt.js's get-timer.js does with worker-timers
    expect(g.fixtureLoads).toBe(before);
    expect(add(2, 3)).toBe(5);
    expect(g.fixtureLoads).toBe(before + 1);
    const c = new Counter(41);
    expect(c.next()).toBe(42);
    expect(c.constructor.name).toBe('Counter'); // an instance of the real class
    const ctx = { m: m.self };
    expect(ctx.m()).toBe(ctx); // `this` is passed through
    expect(g.fixtureLoads).toBe(before + 1);
  });

  it("'get': yaml behaves as itself through it, and is loaded only when first used", async () => {
    const { file, req } = await standIn('yaml', 'get');
    const yamlPath = req.resolve('yaml');
    delete req.cache[yamlPath];
    const m = req(file) as typeof import('yaml');
    expect(Object.keys(m).sort()).toEqual(Object.keys(req('yaml') as object).sort());
    delete req.cache[yamlPath];
    expect(req.cache[yamlPath]).toBeUndefined();
    const lines = new m.LineCounter();
    const doc = m.parseDocument('a: [1, 2]\n', { lineCounter: lines });
    expect(doc.toJS()).toEqual({ a: [1, 2] });
    expect(m.isMap(doc.contents)).toBe(true);
    expect(lines.linePos(3)).toEqual({ line: 1, col: 4 });
    expect(req.cache[yamlPath]).toBeDefined();
  });

  it('__esModule is a value (esbuild reads it as the importer loads), the rest stays lazy', async () => {
    const { file, req } = await standIn('lru-cache', 'get');
    const lruPath = req.resolve('lru-cache');
    delete req.cache[lruPath];
    const m = req(file) as { __esModule?: boolean; LRUCache: new (o: { max: number }) => Map<string, number> };
    expect(m.__esModule).toBe(true);
    expect(req.cache[lruPath]).toBeUndefined();
    const c = new m.LRUCache({ max: 2 });
    c.set('a', 1); c.set('b', 2); c.set('c', 3);
    expect([...c.keys()]).toEqual(['c', 'b']);
  });

  it("a built-in works through it ('get' for child_process, as serialport uses it)", async () => {
    const { file, req } = await standIn('node:child_process', 'get');
    const m = req(file) as typeof import('node:child_process');
    expect(m.spawnSync(process.execPath, ['-e', 'process.stdout.write("ok")'], { encoding: 'utf8' }).stdout).toBe('ok');
  });

  it("refuses 'call' for a module with exports that are not functions, and an unknown kind", async () => {
    await expect(standIn('node:path', 'call')).rejects.toThrow(/lazy module node:path: 'call' needs functions, .*sep/);
    await expect(standIn('yaml', 'lazy')).rejects.toThrow(/unknown kind 'lazy'/);
  });
});
