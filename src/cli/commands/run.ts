/**
 * afb-edge run --config FILE : the agent. SIGHUP reloads the file (checked
 * off the event loop; an invalid one is rejected with its errors and the
 * running config stays: ./run-reload.ts); SIGINT/SIGTERM stop it cleanly
 * (offline status published, outbox closed). Under systemd it is a
 * Type=notify service (READY=1, STATUS=, watchdog, reload and stop
 * notifications, a bounded drain): src/systemd/service.ts.
 *
 * Exit status (README.md, "CLI"): 0 stopped by SIGINT/SIGTERM; 1 invalid
 * config, board file or file the config names (nothing started); 2 usage
 * error; 3 a valid config that could not be started (its outbox, an
 * address); 1 also when the stop outlives AFB_EDGE_STOP_TIMEOUT_S.
 */
import { Agent } from '../../agent/agent.js';
import { SystemdService } from '../../systemd/service.js';
import { errorCount, formatConfigError, formatLoadErrors } from '../../config/errors.js';
import { configLoader, releaseConfigLoader } from '../../config/loader-module.js';
import type { Board } from '../../config/board.js';
import type { LoadResult } from '../../config/load.js';
import { loggerArg, parse } from '../args.js';
import { EXIT_INVALID_CONFIG, EXIT_OK, EXIT_START_FAILED, UsageError } from '../usage.js';
import { ConfigReloader } from './run-reload.js';
import { version } from '../version.js';
import { ParseCache } from '../../config/parse-cache.js';
import { startupCacheDir } from '../../util/cache-dir.js';

/**
 * Node's pool for small Buffers (Buffer.from of a short string,
 * Buffer.allocUnsafe: the payloads, the MQTT packets) in 1 KiB slabs rather
 * than 8. A slab still in use at two scavenges (one every ~110 ms at 1,000
 * events/s with 1 MB semi-spaces) is promoted, and its memory then waits for
 * a full collection, which a steady agent may not get for half an hour: the
 * smaller the slab, the less one long-lived Buffer pins. Chosen when the
 * outbox's RowInserter still kept payloads (RSS climbed ~9 KB a second with
 * 8 KiB slabs, less with 1 KiB); since that was fixed, both sizes measure the
 * same at a steady 4,000 events/s (ArrayBuffer memory flat at 0.1-0.2 MB,
 * RSS 58.3-58.9 MB, CPU per event alike: one run each, 150 s), and 1 KiB
 * stays as the bound for whatever else is kept across two scavenges. Buffers
 * over half a slab get their own memory, as they always did over 4 KiB.
 */
const BUFFER_POOL_BYTES = 1024;

/**
 * One full collection once the agent is ready, when node runs with
 * --expose-gc (bin/afb-edge's default flags and the boards' drop-ins,
 * src/config/board.ts). What start-up left behind (the config loader's
 * 0.42 MB of source and what it built, the code cache just written) waits
 * in the old generation for V8's first full collection, and at a steady
 * rate almost nothing else reaches the old generation: that first one may
 * be hours away. ~10 ms once on x86; the steady RSS after it is ~1 MB
 * lower and as flat (bench/bridge.ts, boards/README.md).
 */
function collectStartGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === 'function') gc();
}

export async function runCommand(argv: string[]): Promise<number> {
  Buffer.poolSize = BUFFER_POOL_BYTES;
  const { values, positionals } = parse(argv, { config: { type: 'string', short: 'c' }, board: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const file = values.config as string | undefined;
  if (file === undefined) throw new UsageError('run needs --config FILE');
  // --log-level overrides logging.level; checked before the config so a typo is a usage error.
  const cliLogger = values['log-level'] === undefined ? undefined : loggerArg(values['log-level']);
  // The files' parsed data from the last start, when they have not changed (config/parse-cache.ts).
  const cacheDir = startupCacheDir();
  const parseCache = cacheDir === undefined ? undefined : new ParseCache(cacheDir, version());
  const start = await loadAtStart(file, values.board as string | undefined, parseCache);
  if ('usage' in start) throw new UsageError(start.usage);
  if ('boardErrors' in start) {
    for (const line of start.boardErrors) process.stderr.write(line + '\n');
    process.stderr.write(`afb-edge: board file: ${start.boardErrors.length} error(s), not starting\n`);
    return EXIT_INVALID_CONFIG;
  }
  const { board, heap, loaded } = start;
  if (loaded.config === undefined) {
    for (const line of formatLoadErrors(loaded, file)) process.stderr.write(line + '\n');
    process.stderr.write(`afb-edge: ${file}: ${errorCount(loaded)} error(s), not starting\n`);
    return EXIT_INVALID_CONFIG;
  }
  const logger = cliLogger ?? loggerArg(loaded.config.logging.level);
  if (board !== undefined) {
    logger.info(`board ${board.name}: ${board.description}`);
    if (heap !== undefined) logger.warn(heap);
  }
  const logParseCache = () => {
    for (const problem of parseCache?.problems.splice(0) ?? []) logger.warn(problem);
  };
  logParseCache();
  for (const w of loaded.warnings) logger.warn(formatConfigError(w, file, true));
  const agent = new Agent(loaded.config, { logger, version: version() });
  try {
    await agent.start();
  } catch (err) {
    // the outbox cannot be opened, an address is taken...: one line, not a stack, and a status of its own
    await agent.stop('start failed').catch(() => undefined);
    process.stderr.write(`afb-edge: cannot start: ${(err as Error).message}\n`);
    // whatever the failed start left running (a reconnect timer...) must not keep the process alive
    setTimeout(() => process.exit(EXIT_START_FAILED), 2000).unref();
    return EXIT_START_FAILED;
  }
  // Type=notify: READY=1, STATUS=, watchdog, reload and stop notifications (no-ops without NOTIFY_SOCKET).
  const sd = new SystemdService({ logger });

  const reloader = new ConfigReloader({ file, board, agent, sd, logger, parseCache, afterApplied: () => logParseCache() });
  const onHup = () => reloader.request();
  process.on('SIGHUP', onHup);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
    // READY=1 only once the handlers are in place: systemd may send SIGHUP or SIGTERM as soon as it has it.
    void sd.ready(agent)
      .then(() => {
        // dist/src/cli/launch.cjs writes the V8 code cache on this (see there).
        (process.emit as (event: string) => boolean)('afb-edge:ready');
        parseCache?.save(); // after READY=1: the write is not on the start-up's path
        logParseCache();
        return agent.metrics.collectProcessMetrics();
      })
      .catch((err: unknown) => logger.warn(`process metrics unavailable: ${(err as Error).message}`))
      // the last of start-up: after the process metrics' registration and launch.cjs's code cache
      // write (an immediate queued on the ready event, so before this one)
      .finally(() => setImmediate(collectStartGarbage));
  });
  sd.stopping(signal);
  process.removeListener('SIGHUP', onHup);
  // Bounded (AFB_EDGE_STOP_TIMEOUT_S, below the unit's TimeoutStopSec): exits with 1 past it.
  await sd.drain(async () => {
    await reloader.stop();
    await agent.stop(`shutdown (${signal})`);
  });
  return EXIT_OK;
}

type StartLoad =
  | { usage: string }
  | { boardErrors: string[] }
  | { board: Board | undefined; heap: string | undefined; loaded: LoadResult };

/**
 * The board (--board NAME, else $AFB_EDGE_BOARD: its overlay goes under the
 * file, at start and on every reload) and the config, read with the config
 * loader, which is released then: nothing in the running agent needs the
 * YAML parser or the validators again (reloads check the file in a worker).
 * In process, not in a worker: nothing runs yet that the check could hold
 * up. The files the config names are read as check-config reads them, as
 * the agent's user: a config that could never connect does not start (it
 * would rather be retried with backoff forever).
 */
async function loadAtStart(file: string, boardFlag: string | undefined, parseCache: ParseCache | undefined): Promise<StartLoad> {
  const loader = await configLoader();
  try {
    const selected = loader.selectBoard(boardFlag, process.env, parseCache);
    if (selected.usage !== undefined) return { usage: selected.usage };
    if (selected.errors !== undefined) return { boardErrors: selected.errors };
    const loaded = loader.loadConfigFile(file, { ...loader.boardLoadOptions(selected.board), parseCache, files: 'agent' });
    return { board: selected.board, heap: selected.board === undefined ? undefined : loader.heapWarning(selected.board), loaded };
  } finally {
    releaseConfigLoader();
  }
}
