/** afb-edge simulate --ws-server SPEC … : a simulated binder. */
import { SimulatedBinder } from '../../sim/simulated-binder.js';
import { intArg, loggerArg, parse, specArg } from '../args.js';
import { EXIT_OK, UsageError } from '../usage.js';

export async function simulateCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    'ws-server': { type: 'string', multiple: true },
    api: { type: 'string' },
    period: { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const specs = (values['ws-server'] as string[] | undefined) ?? [];
  if (specs.length === 0) throw new UsageError('simulate needs --ws-server SPEC');
  const parsed = specs.map((s) => specArg(s, '--ws-server SPEC'));
  const api = (values.api as string | undefined) ?? parsed[0]!.api;
  const logger = loggerArg(values['log-level'] ?? 'info');
  const binder = new SimulatedBinder({ api, periodMs: intArg(values.period as string | undefined, '--period', 0) ?? 1000, logger });
  for (const spec of parsed) {
    try {
      await binder.listen(spec.text);
    } catch (err) {
      await binder.close();
      throw new UsageError((err as Error).message);
    }
  }
  process.stderr.write(`afb-edge: simulated binder '${api}' serving ${specs.join(', ')}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await binder.close();
  return EXIT_OK;
}
