/**
 * afb-edge run --config FILE : the agent. SIGHUP reloads the file (an
 * invalid one is rejected with its errors and the running config stays);
 * SIGINT/SIGTERM stop it cleanly (offline status published, outbox closed).
 * Under systemd it is a Type=notify service (READY=1, STATUS=, watchdog,
 * reload and stop notifications, a bounded drain): src/systemd/service.ts.
 */
import { Agent } from '../../agent/agent.js';
import { SystemdService } from '../../systemd/service.js';
import { formatConfigError, loadConfigFile } from '../../config/load.js';
import { boardLoadOptions, heapWarning, selectBoard } from '../../config/board.js';
import { loggerArg, parse } from '../args.js';
import { EXIT_OK, EXIT_REPLY_ERROR, UsageError } from '../usage.js';
import { version } from '../version.js';
import { ParseCache } from '../../config/parse-cache.js';
import { startupCacheDir } from '../../util/cache-dir.js';

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string', short: 'c' }, board: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const file = values.config as string | undefined;
  if (file === undefined) throw new UsageError('run needs --config FILE');
  // --log-level overrides logging.level; checked before the config so a typo is a usage error.
  const cliLogger = values['log-level'] === undefined ? undefined : loggerArg(values['log-level']);
  // The files' parsed data from the last start, when they have not changed (config/parse-cache.ts).
  const cacheDir = startupCacheDir();
  const parseCache = cacheDir === undefined ? undefined : new ParseCache(cacheDir, version());
  // --board NAME (else $AFB_EDGE_BOARD): its overlay goes under the file, at start and on every reload.
  const selected = selectBoard(values.board as string | undefined, process.env, parseCache);
  if (selected.usage !== undefined) throw new UsageError(selected.usage);
  if (selected.errors !== undefined) {
    for (const line of selected.errors) process.stderr.write(line + '\n');
    process.stderr.write(`afb-edge: board file: ${selected.errors.length} error(s), not starting\n`);
    return EXIT_REPLY_ERROR;
  }
  const loadOptions = { ...boardLoadOptions(selected.board), parseCache };
  const loaded = loadConfigFile(file, loadOptions);
  if (loaded.config === undefined) {
    for (const e of loaded.errors) process.stderr.write(formatConfigError(e, file) + '\n');
    process.stderr.write(`afb-edge: ${file}: ${loaded.errors.length} error(s), not starting\n`);
    return EXIT_REPLY_ERROR;
  }
  const logger = cliLogger ?? loggerArg(loaded.config.logging.level);
  if (selected.board !== undefined) {
    logger.info(`board ${selected.board.name}: ${selected.board.description}`);
    const heap = heapWarning(selected.board);
    if (heap !== undefined) logger.warn(heap);
  }
  const logParseCache = () => {
    for (const problem of parseCache?.problems.splice(0) ?? []) logger.warn(problem);
  };
  logParseCache();
  const agent = new Agent(loaded.config, { logger, version: version() });
  await agent.start();
  // Type=notify: READY=1, STATUS=, watchdog, reload and stop notifications (no-ops without NOTIFY_SOCKET).
  const sd = new SystemdService({ logger });

  let reloading = Promise.resolve();
  const onHup = () => {
    reloading = reloading.then(async () => {
      sd.reloading();
      const next = loadConfigFile(file, loadOptions);
      if (next.config === undefined) {
        agent.metrics.configReloads.inc({ outcome: 'rejected' });
        logger.error(`config reload rejected, keeping the running configuration: ${next.errors.length} error(s)`);
        for (const e of next.errors) logger.error(formatConfigError(e, file));
        return;
      }
      try {
        await agent.reload(next.config);
        agent.metrics.configReloads.inc({ outcome: 'applied' });
        parseCache?.save();
        logParseCache();
      } catch (err) {
        agent.metrics.configReloads.inc({ outcome: 'failed' });
        logger.error(`config reload failed: ${(err as Error).message}`);
      }
    }).finally(() => sd.reloaded());
  };
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
      .catch((err: unknown) => logger.warn(`process metrics unavailable: ${(err as Error).message}`));
  });
  sd.stopping(signal);
  process.removeListener('SIGHUP', onHup);
  // Bounded (AFB_EDGE_STOP_TIMEOUT_S, below the unit's TimeoutStopSec): exits with 1 past it.
  await sd.drain(async () => {
    await reloading;
    await agent.stop(`shutdown (${signal})`);
  });
  return EXIT_OK;
}
