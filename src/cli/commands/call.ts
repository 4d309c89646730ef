/** afb-edge call SPEC VERB [JSON] … : one call, one JSON line. */
import { WsapiClient } from '../../wsapi/index.js';
import { intArg, jsonArg, loggerArg, parse, specArg } from '../args.js';
import { EXIT_OK, EXIT_REPLY_ERROR, UsageError } from '../usage.js';

export async function callCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    session: { type: 'string' },
    token: { type: 'string' },
    creds: { type: 'string' },
    timeout: { type: 'string' },
  });
  const [specText, verb, argsText, ...extra] = positionals;
  const spec = specArg(specText);
  if (verb === undefined) throw new UsageError('missing VERB');
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const args = jsonArg(argsText, 'JSON args');
  const timeout = intArg(values.timeout as string | undefined, '--timeout', 1) ?? 30_000;
  const client = new WsapiClient(spec, { logger: loggerArg(values['log-level']) });
  await client.connect();
  try {
    const reply = await client.callText(verb, args, {
      session: values.session as string | undefined,
      token: values.token as string | undefined,
      creds: values.creds as string | undefined,
      timeout,
    });
    if (reply.error === 'disconnected') throw new UsageError(`${spec.text}: ${reply.info ?? 'disconnected'} before replying to ${verb}`);
    process.stdout.write(JSON.stringify({ error: reply.error, info: reply.info, data: reply.data }) + '\n');
    return reply.error === null ? EXIT_OK : EXIT_REPLY_ERROR;
  } finally {
    client.close();
  }
}
