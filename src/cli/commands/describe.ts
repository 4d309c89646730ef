/** afb-edge describe SPEC : prints the API description. */
import { WsapiClient } from '../../wsapi/index.js';
import { intArg, loggerArg, parse, specArg } from '../args.js';
import { EXIT_OK, UsageError } from '../usage.js';

export async function describeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { timeout: { type: 'string' } });
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const spec = specArg(positionals[0]);
  const timeout = intArg(values.timeout as string | undefined, '--timeout', 1) ?? 30_000;
  const client = new WsapiClient(spec, { logger: loggerArg(values['log-level']) });
  await client.connect();
  let hungUp = false;
  client.once('disconnect', () => { hungUp = true; });
  try {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UsageError(`${spec.text}: no description within ${timeout} ms`)), timeout);
    });
    const description = await Promise.race([client.describe(), timedOut]).finally(() => clearTimeout(timer));
    if (hungUp) throw new UsageError(`${spec.text}: server hung up before describing`);
    process.stdout.write(JSON.stringify(description) + '\n');
    return EXIT_OK;
  } finally {
    client.close();
  }
}
