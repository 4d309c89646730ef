#!/usr/bin/env node
/** afb-edge command-line entry point. */
import { EXIT_USAGE, USAGE, UsageError } from './usage.js';
import { version } from './version.js';
import { ConnectError, SpecError } from '../wsapi/index.js';

type Command = (argv: string[]) => Promise<number>;

/**
 * Each command is loaded when it is run: the agent (`run`) does not load
 * the demo, the monitor or the simulators (start-up time on small boards).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  call: async () => (await import('./commands/call.js')).callCommand,
  describe: async () => (await import('./commands/describe.js')).describeCommand,
  listen: async () => (await import('./commands/listen.js')).listenCommand,
  simulate: async () => (await import('./commands/simulate.js')).simulateCommand,
  demo: async () => (await import('./commands/demo.js')).demoCommand,
  monitor: async () => (await import('./commands/monitor.js')).monitorCommand,
  'check-config': async () => (await import('./commands/check-config.js')).checkConfigCommand,
  run: async () => (await import('./commands/run.js')).runCommand,
  'ecu-sim': async () => (await import('./commands/ecu-sim.js')).ecuSimCommand,
  can: async () => (await import('./commands/can.js')).canCommand,
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
  const load = COMMANDS[command];
  if (load === undefined) throw new UsageError(`unknown command '${command}' (try --help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  return (await load())(rest);
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
