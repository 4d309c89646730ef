/** afb-edge check-config FILE : validates a config file, one line per error on stderr. */
import { formatConfigError, loadConfigFile } from '../../config/load.js';
import { parse } from '../args.js';
import { EXIT_OK, EXIT_REPLY_ERROR, UsageError } from '../usage.js';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export async function checkConfigCommand(argv: string[]): Promise<number> {
  const { positionals } = parse(argv, {});
  if (positionals.length === 0) throw new UsageError('missing FILE (the config file to check)');
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const file = positionals[0]!;
  const { config, errors } = loadConfigFile(file);
  if (config === undefined) {
    for (const e of errors) process.stderr.write(formatConfigError(e, file) + '\n');
    return EXIT_REPLY_ERROR;
  }
  const commands = config.commands.enabled ? 'on' : 'off';
  process.stdout.write(`${file}: ok (${plural(config.binders.length, 'binder')}, ${plural(config.routes.length, 'route')}, commands ${commands})\n`);
  return EXIT_OK;
}
