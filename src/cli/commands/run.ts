/**
 * afb-edge run --config FILE : the agent. SIGHUP reloads the file (an
 * invalid one is rejected with its errors and the running config stays);
 * SIGINT/SIGTERM stop it cleanly (offline status published, outbox closed).
 */
import { Agent } from '../../agent/agent.js';
import { formatConfigError, loadConfigFile } from '../../config/load.js';
import { loggerArg, parse } from '../args.js';
import { EXIT_OK, EXIT_REPLY_ERROR, UsageError } from '../usage.js';
import { version } from '../version.js';

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { config: { type: 'string', short: 'c' } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const file = values.config as string | undefined;
  if (file === undefined) throw new UsageError('run needs --config FILE');
  // --log-level overrides logging.level; checked before the config so a typo is a usage error.
  const cliLogger = values['log-level'] === undefined ? undefined : loggerArg(values['log-level']);
  const loaded = loadConfigFile(file);
  if (loaded.config === undefined) {
    for (const e of loaded.errors) process.stderr.write(formatConfigError(e, file) + '\n');
    process.stderr.write(`afb-edge: ${file}: ${loaded.errors.length} error(s), not starting\n`);
    return EXIT_REPLY_ERROR;
  }
  const logger = cliLogger ?? loggerArg(loaded.config.logging.level);
  const agent = new Agent(loaded.config, { logger, version: version() });
  await agent.start();

  let reloading = Promise.resolve();
  const onHup = () => {
    reloading = reloading.then(async () => {
      const next = loadConfigFile(file);
      if (next.config === undefined) {
        agent.metrics.configReloads.inc({ outcome: 'rejected' });
        logger.error(`config reload rejected, keeping the running configuration: ${next.errors.length} error(s)`);
        for (const e of next.errors) logger.error(formatConfigError(e, file));
        return;
      }
      try {
        await agent.reload(next.config);
        agent.metrics.configReloads.inc({ outcome: 'applied' });
      } catch (err) {
        agent.metrics.configReloads.inc({ outcome: 'failed' });
        logger.error(`config reload failed: ${(err as Error).message}`);
      }
    });
  };
  process.on('SIGHUP', onHup);
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.removeListener('SIGHUP', onHup);
  await reloading;
  await agent.stop(`shutdown (${signal})`);
  return EXIT_OK;
}
