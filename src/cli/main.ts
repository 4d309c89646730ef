#!/usr/bin/env node
/** afb-edge command-line entry point. */
import { callCommand } from './commands/call.js';
import { checkConfigCommand } from './commands/check-config.js';
import { demoCommand } from './commands/demo.js';
import { describeCommand } from './commands/describe.js';
import { ecuSimCommand } from './commands/ecu-sim.js';
import { listenCommand } from './commands/listen.js';
import { monitorCommand } from './commands/monitor.js';
import { runCommand } from './commands/run.js';
import { simulateCommand } from './commands/simulate.js';
import { EXIT_USAGE, USAGE, UsageError } from './usage.js';
import { version } from './version.js';
import { ConnectError, SpecError } from '../wsapi/index.js';

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  call: callCommand,
  describe: describeCommand,
  listen: listenCommand,
  simulate: simulateCommand,
  demo: demoCommand,
  monitor: monitorCommand,
  'check-config': checkConfigCommand,
  run: runCommand,
  'ecu-sim': ecuSimCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? EXIT_USAGE : 0;
  }
  if (command === '--version') {
    process.stdout.write(version() + '\n');
    return 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) throw new UsageError(`unknown command '${command}' (try --help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof ConnectError || err instanceof SpecError) {
      process.stderr.write(`afb-edge: ${err.message}\n`);
    } else {
      process.stderr.write(`afb-edge: ${(err as Error)?.stack ?? String(err)}\n`);
    }
    process.exitCode = EXIT_USAGE;
  },
);
