/**
 * afb-edge check-config FILE : validates a config file, one line per error
 * (and warning) on stderr. The files the config names are read and checked
 * too (src/config/referenced-files.ts), as an operator outside the service
 * can: what only the service can see (its systemd credentials, a file only
 * its user may read) is a warning, not an error.
 */
import { errorCount, formatConfigError, formatLoadErrors } from '../../config/errors.js';
import { configLoader } from '../../config/loader-module.js';
import { parse } from '../args.js';
import { EXIT_INVALID_CONFIG, EXIT_OK, UsageError } from '../usage.js';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export async function checkConfigCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { board: { type: 'string' } });
  if (positionals.length === 0) throw new UsageError('missing FILE (the config file to check)');
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const file = positionals[0]!;
  const { boardLoadOptions, loadConfigFile, selectBoard } = await configLoader();
  // --board NAME (else $AFB_EDGE_BOARD): checks the file as `run` with that board would load it.
  const selected = selectBoard(values.board as string | undefined);
  if (selected.usage !== undefined) throw new UsageError(selected.usage);
  if (selected.errors !== undefined) {
    for (const line of selected.errors) process.stderr.write(line + '\n');
    return EXIT_INVALID_CONFIG;
  }
  const loaded = loadConfigFile(file, { ...boardLoadOptions(selected.board), files: 'check' });
  for (const line of formatLoadErrors(loaded, file)) process.stderr.write(line + '\n');
  for (const w of loaded.warnings) process.stderr.write(formatConfigError(w, file, true) + '\n');
  const { config } = loaded;
  if (config === undefined || errorCount(loaded) > 0) return EXIT_INVALID_CONFIG;
  const commands = config.commands.enabled ? 'on' : 'off';
  const withBoard = selected.board !== undefined ? ` with board ${selected.board.name}` : '';
  const warned = loaded.warnings.length > 0 ? `, ${plural(loaded.warnings.length, 'warning')}` : '';
  process.stdout.write(`${file}: ok${withBoard}${warned} (${plural(config.binders.length, 'binder')}, ${plural(config.serial.links.length, 'serial link')}, ${plural(config.routes.length, 'route')}, commands ${commands}${config.ecu_api.listen.length > 0 ? ', ecu api exported' : ''})\n`);
  return EXIT_OK;
}
