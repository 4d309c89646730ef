/**
 * The stand-ins scripts/bundle.mjs puts in the agent's bundle for `debug`
 * and `lru-cache` (scripts/bundle-shims/): they load the real packages only
 * when needed, and then behave as they do.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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

describe('lru-cache', () => {
  it('loads lru-cache at the first use of LRUCache, which is the real class', () => {
    const r = node('lru-cache.cjs', `const lru = () => Object.keys(require.cache).some((f) => /node_modules\\/lru-cache\\//.test(f));
      const before = lru(); const c = new S.LRUCache({ max: 2 }); c.set('a', 1); c.set('b', 2); c.set('c', 3);
      process.stdout.write(JSON.stringify({ before, after: lru(), same: S.LRUCache === require('lru-cache').LRUCache, keys: [...c.keys()] }));`);
    expect(JSON.parse(r.stdout)).toEqual({ before: false, after: true, same: true, keys: ['c', 'b'] });
  });
});
