/**
 * afb-edge demo: the full agent demo (./demo-agent.ts); with --wsapi, a
 * simulated binder on a temporary socket and a wsapi client using it (call,
 * error, describe, subscribe, events), narrated on stdout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimulatedBinder } from '../../sim/simulated-binder.js';
import { runAgentDemo } from './demo-agent.js';
import { checkExposure, parseWebListen } from '../../remote/dashboard/listen.js';
import { WsapiClient } from '../../wsapi/index.js';
import { intArg, loggerArg, parse } from '../args.js';
import { EXIT_OK, UsageError } from '../usage.js';

export async function demoCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    count: { type: 'string' }, period: { type: 'string' }, wsapi: { type: 'boolean' },
    duration: { type: 'string' }, json: { type: 'boolean' }, web: { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (values.wsapi !== true) {
    const durationS = intArg(values.duration as string | undefined, '--duration', 0) ?? 15;
    let web;
    try {
      web = parseWebListen((values.web as string | undefined) ?? '127.0.0.1:0');
      checkExposure(web, undefined);
    } catch (err) {
      throw new UsageError(`${(err as Error).message} (the demo's dashboard has no token: loopback only)`);
    }
    await runAgentDemo({ durationS, logger: loggerArg(values['log-level']), json: values.json === true, web });
    return EXIT_OK;
  }
  const count = intArg(values.count as string | undefined, '--count', 1) ?? 9;
  const period = intArg(values.period as string | undefined, '--period', 10) ?? 300;
  const logger = loggerArg(values['log-level']);
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-demo-'));
  const spec = `unix:${join(dir, 'vehicle')}`;
  const binder = new SimulatedBinder({ api: 'vehicle', periodMs: period, logger });
  const client = new WsapiClient(spec, { logger });
  const say = (line: string) => process.stdout.write(line + '\n');
  try {
    await binder.listen(spec);
    say(`simulated binder exports API 'vehicle' on ${spec}`);
    await client.connect();
    say(`client connected (wsapi version offer sent)`);
    const ping = await client.call('ping', { hello: 'board' });
    say(`call vehicle/ping {"hello":"board"} -> ${JSON.stringify(ping)}`);
    const fail = await client.call('fail', { info: 'demo error' });
    say(`call vehicle/fail -> ${JSON.stringify(fail)}`);
    const desc = (await client.describe()) as { paths?: Record<string, unknown> } | null;
    say(`describe -> verbs ${Object.keys(desc?.paths ?? {}).map((p) => p.slice(1)).join(' ')}`);
    let seen = 0;
    const done = new Promise<void>((resolve) => {
      client.on('event', (name: string, data: unknown) => {
        if (seen >= count) return;
        seen++;
        say(`event ${name} ${JSON.stringify(data)}`);
        if (seen === count) resolve();
      });
    });
    const sub = await client.subscribe('subscribe', { event: 'speed' });
    say(`call vehicle/subscribe {"event":"speed"} -> ${JSON.stringify(sub)}`);
    await client.subscribe('subscribe', { event: 'alert' });
    await client.call('push', { event: 'alert', data: { level: 'info', text: 'demo alert' } });
    await client.call('broadcast', { event: 'hello', data: { from: 'demo' } });
    await done;
    say(`done: ${seen} events received; client stats ${JSON.stringify(client.stats)}`);
    return EXIT_OK;
  } finally {
    client.close();
    await binder.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
