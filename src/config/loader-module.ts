/**
 * The config loader (./loader.ts) for the commands that read a
 * configuration, and its release once `run` is done with it.
 *
 * Bundled (scripts/bundle.mjs), the loader is a file of its own beside the
 * CLI's bundle, dist/src/cli/config-loader.bundle.cjs, loaded with a require
 * of its own and dropped from Node's module cache by releaseConfigLoader():
 * nothing then refers to its code, and V8 frees its source text (~350 KB:
 * the YAML parser and the schema validators) and what it compiled. In
 * `run`, that code served once, at start-up (reloads check the file in a
 * worker: ./load-in-worker.ts); kept, it was for good in the agent's heap:
 * ~8.4 MB live at 1,000 events/s with it, ~7.0 without (heap snapshots of
 * the agent 65 s into that rate; boards/README.md).
 *
 * Unbundled (tests, `node dist/src/cli/main.js`), it is the ES module,
 * which Node never unloads.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export type ConfigLoader = typeof import('./loader.js');

/** The loader's bundle when this code runs bundled, else undefined. */
export function loaderBundle(moduleUrl: string = import.meta.url): string | undefined {
  return moduleUrl.endsWith('.bundle.cjs') ? fileURLToPath(new URL('./config-loader.bundle.cjs', moduleUrl)) : undefined;
}

/** What dist/src/cli/launch.cjs exports (src/cli/launch.cts), when it started this process. */
interface Launcher {
  requireWithCodeCache?: (file: string) => unknown;
}

export async function configLoader(): Promise<ConfigLoader> {
  const bundle = loaderBundle();
  if (bundle !== undefined) {
    // A require of its own (its parent is a module nothing else keeps), so that the module
    // cache is the only other reference to it. In `run` with a code cache, the launcher runs
    // it with a cache of its own, outside the module cache.
    const req = createRequire(bundle);
    return ((req.main?.exports as Launcher | undefined)?.requireWithCodeCache?.(bundle) ?? req(bundle)) as ConfigLoader;
  }
  return import('./loader.js');
}

/**
 * Forgets the bundled loader: the next configLoader() loads it again (a
 * command that needs it after `run` started would pay its start-up again).
 */
export function releaseConfigLoader(): void {
  const bundle = loaderBundle();
  if (bundle !== undefined) delete createRequire(bundle).cache[bundle];
}
