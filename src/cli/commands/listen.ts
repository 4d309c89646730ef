/** afb-edge listen SPEC --subscribe VERB [JSON] … : prints events as JSON lines. */
import { WsapiClient } from '../../wsapi/index.js';
import { intArg, jsonArg, loggerArg, parse, specArg } from '../args.js';
import { EXIT_OK, EXIT_REPLY_ERROR, UsageError } from '../usage.js';

interface SubscribeCall { verb: string; args: string }

/**
 * `--subscribe VERB [JSON]` takes one or two values, which parseArgs cannot
 * express: pull those groups out first, hand the rest to parseArgs.
 */
function splitSubscribes(argv: string[]): { subscribes: SubscribeCall[]; rest: string[] } {
  const subscribes: SubscribeCall[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a !== '--subscribe') {
      rest.push(a);
      continue;
    }
    const verb = argv[i + 1];
    if (verb === undefined || verb.startsWith('--')) throw new UsageError('--subscribe needs a VERB');
    i++;
    let args = 'null';
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      args = jsonArg(next, `args of --subscribe ${verb}`);
      i++;
    }
    subscribes.push({ verb, args });
  }
  return { subscribes, rest };
}

export async function listenCommand(argv: string[]): Promise<number> {
  const { subscribes, rest } = splitSubscribes(argv);
  const { values, positionals } = parse(rest, {
    count: { type: 'string' },
    session: { type: 'string' },
    token: { type: 'string' },
    reconnect: { type: 'boolean' },
  });
  if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
  const spec = specArg(positionals[0]);
  if (subscribes.length === 0) throw new UsageError('listen needs at least one --subscribe VERB [JSON]');
  const count = intArg(values.count as string | undefined, '--count', 1);
  const callOptions = { session: values.session as string | undefined, token: values.token as string | undefined };
  const client = new WsapiClient(spec, { logger: loggerArg(values['log-level']), reconnect: values.reconnect === true });

  let seen = 0;
  let finished = false;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => { resolveDone = resolve; });
  const finish = (code: number) => {
    if (finished) return;
    finished = true;
    resolveDone(code);
  };
  client.on('event', (name: string, data: unknown) => {
    if (count !== undefined && seen >= count) return;
    seen++;
    process.stdout.write(JSON.stringify({ event: name, data }) + '\n');
    if (count !== undefined && seen >= count) finish(EXIT_OK);
  });
  client.on('disconnect', (reason: string) => {
    if (values.reconnect !== true && !finished) {
      process.stderr.write(`afb-edge: ${spec.text}: ${reason}\n`);
      finish(2);
    }
  });
  const onSignal = () => finish(EXIT_OK);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  await client.connect();
  for (const s of subscribes) {
    const reply = await client.subscribe(s.verb, JSON.parse(s.args), callOptions);
    if (reply.error !== null) {
      process.stderr.write(`afb-edge: ${spec.api}/${s.verb}: ${reply.error}${reply.info ? ` (${reply.info})` : ''}\n`);
      client.close();
      return EXIT_REPLY_ERROR;
    }
  }
  try {
    return await done;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    client.close();
  }
}
