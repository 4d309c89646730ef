/** afb-edge check-config FILE : validates a config file, one line per error on stderr. */
import { formatConfigError, loadConfigFile } from '../../config/load.js';
import { boardLoadOptions, selectBoard } from '../../config/board.js';
import { parse } from '../args.js';
import { EXIT_OK, EXIT_REPLY_ERROR, UsageError } from '../usage.js';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export async function checkConfigCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { board: { type: 'string' } });
  if (positionals.length === 0) throw new UsageError('missing FILE (the config file to check)');
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const file = positionals[0]!;
  // --board NAME (else $AFB_EDGE_BOARD): checks the file as `run` with that board would load it.
  const selected = selectBoard(values.board as string | undefined);
  if (selected.usage !== undefined) throw new UsageError(selected.usage);
  if (selected.errors !== undefined) {
    for (const line of selected.errors) process.stderr.write(line + '\n');
    return EXIT_REPLY_ERROR;
  }
  const { config, errors } = loadConfigFile(file, boardLoadOptions(selected.board));
  if (config === undefined) {
    for (const e of errors) process.stderr.write(formatConfigError(e, file) + '\n');
    return EXIT_REPLY_ERROR;
  }
  const commands = config.commands.enabled ? 'on' : 'off';
  const withBoard = selected.board !== undefined ? ` with board ${selected.board.name}` : '';
  process.stdout.write(`${file}: ok${withBoard} (${plural(config.binders.length, 'binder')}, ${plural(config.serial.links.length, 'serial link')}, ${plural(config.routes.length, 'route')}, commands ${commands}${config.ecu_api.listen.length > 0 ? ', ecu api exported' : ''})\n`);
  return EXIT_OK;
}
