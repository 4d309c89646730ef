/**
 * Loads and checks a config file in a worker thread (./check-worker.ts), for
 * reloads: the agent's event loop keeps serving MQTT, binders and the
 * watchdog however long the check takes. Bounded: the worker has its own
 * heap limit (a file that needs more is refused, the agent is untouched),
 * a deadline, and is terminated when the agent stops.
 *
 * Not used at start-up (nothing runs yet that the check could hold up, and
 * starting a worker costs time on small boards) nor by check-config.
 *
 * The worker's script: beside the CLI's bundle when this runs bundled
 * (scripts/bundle.mjs makes dist/src/cli/config-check-worker.bundle.cjs),
 * else the compiled module beside this one.
 */
import type { Board } from './board.js';
import type { LoadResult } from './load.js';
import type { CacheEntry } from './parse-cache.js';
import { lazyRequire } from '../util/lazy-require.js';

// loaded at the first reload, not at start-up (test/cli/startup-modules.test.ts)
const workerThreads = lazyRequire<typeof import('node:worker_threads')>('node:worker_threads');

/** The check of a file under every limit (src/config/limits.ts) takes ~1 s on x86; emulated ARM is ~20x slower. */
export const CHECK_TIMEOUT_MS = 60_000;
/**
 * The worker's V8 heap. A file just under MAX_YAML_ITEMS peaks at ~40 MB
 * while parsing; the agent itself is untouched if it needs more.
 */
export const CHECK_HEAP_MB = 96;

export interface WorkerLoad extends LoadResult {
  /** What the agent's parse cache keeps for the file's text (./parse-cache.ts). */
  cacheEntry?: CacheEntry;
}

export interface WorkerLoadOptions {
  board?: Board;
  /** Abandons the check (the agent is stopping): the promise rejects with an AbortError. */
  signal?: AbortSignal;
  timeoutMs?: number;
}

export function workerScript(moduleUrl: string = import.meta.url): URL {
  return moduleUrl.endsWith('.bundle.cjs') ? new URL('./config-check-worker.bundle.cjs', moduleUrl) : new URL('./check-worker.js', moduleUrl);
}

export function loadConfigInWorker(file: string, options: WorkerLoadOptions = {}): Promise<WorkerLoad> {
  const { Worker } = workerThreads();
  const timeoutMs = options.timeoutMs ?? CHECK_TIMEOUT_MS;
  return new Promise<WorkerLoad>((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(abortError());
      return;
    }
    const worker = new Worker(workerScript(), {
      workerData: { file, board: options.board },
      // not the agent's flags (--require hooks and the like); V8's heap flags are per process anyway
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: CHECK_HEAP_MB, maxYoungGenerationSizeMb: 8, stackSizeMb: 4 },
      stdout: false,
      stderr: false,
    });
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      f();
      void worker.terminate();
    };
    const failed = (message: string): WorkerLoad => ({ errors: [{ path: '', message }], warnings: [] });
    const timer = setTimeout(() => settle(() => resolve(failed(`the check did not finish within ${Math.round(timeoutMs / 1000)} s`))), timeoutMs);
    const onAbort = () => settle(() => reject(abortError()));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (m: { result: LoadResult; entry?: CacheEntry }) => settle(() => resolve({ ...m.result, ...(m.entry !== undefined ? { cacheEntry: m.entry } : {}) })));
    worker.once('error', (err: Error & { code?: string }) => settle(() => resolve(failed(err.code === 'ERR_WORKER_OUT_OF_MEMORY'
      ? `checking the file needs more than ${CHECK_HEAP_MB} MB of memory: not a configuration of this agent`
      : `the check failed: ${err.message}`))));
    worker.once('exit', (code) => settle(() => resolve(failed(`the check stopped (exit ${code}) without a result`))));
  });
}

function abortError(): Error {
  const err = new Error('the config check was abandoned');
  err.name = 'AbortError';
  return err;
}
