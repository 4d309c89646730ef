/**
 * afb-edge monitor --broker URL [--device ID]… [--topic FILTER]… : the remote
 * side. Subscribes to the agents' topics and shows live events and agent
 * status: a compact live table on a terminal, JSON lines when piped; with
 * --web [HOST:]PORT, the fleet dashboard in a browser (./monitor-web.ts).
 */
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions } from 'mqtt';
import { intArg, parse } from '../args.js';
import { EXIT_OK, UsageError } from '../usage.js';
import { LiveTable } from './monitor-table.js';
import { monitorWeb } from './monitor-web.js';
import { deviceFilters } from '../../remote/topics.js';

export interface MonitorLine {
  ts: string;
  topic: string;
  retained: boolean;
  payload: unknown;
}

function decodePayload(payload: Buffer): unknown {
  const text = payload.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function monitorCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    broker: { type: 'string' },
    device: { type: 'string', multiple: true },
    prefix: { type: 'string' },
    web: { type: 'string' },
    'token-file': { type: 'string' },
    'allow-commands': { type: 'boolean' },
    'silent-after': { type: 'string' },
    'ui-rate': { type: 'string' },
    'max-devices': { type: 'string' },
    history: { type: 'string' },
    topic: { type: 'string', multiple: true },
    username: { type: 'string' },
    'password-file': { type: 'string' },
    ca: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    count: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const broker = values.broker as string | undefined;
  if (broker === undefined) throw new UsageError('monitor needs --broker URL (mqtt://host:port or mqtts://host:port)');
  if (!/^(mqtts?|tcp|ssl|wss?):\/\/./.test(broker)) throw new UsageError(`--broker must be an mqtt:// or mqtts:// URL, not '${broker}'`);
  const devices = (values.device as string[] | undefined) ?? [];
  for (const device of devices) if (!/^[^/#+\u0000-\u001f]+$/.test(device)) throw new UsageError(`--device must be a device id, not '${device}'`);
  const prefix = (values.prefix as string | undefined) ?? 'afb-edge';
  if (/[#+]/.test(prefix) || prefix === '' || prefix.endsWith('/')) throw new UsageError(`--prefix must be a topic prefix without wildcards, not '${prefix}'`);
  const filters = (values.topic as string[] | undefined) ?? deviceFilters(prefix, devices);
  const count = intArg(values.count as string | undefined, '--count', 1);
  const read = (f: unknown, what: string): Buffer | undefined => {
    if (f === undefined) return undefined;
    try {
      return readFileSync(f as string);
    } catch (err) {
      throw new UsageError(`${what} ${f as string}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const options: IClientOptions = {
    clientId: `afb-edge-monitor-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    username: values.username as string | undefined,
    password: read(values['password-file'], '--password-file')?.toString('utf8').replace(/\r?\n$/, ''),
    ca: read(values.ca, '--ca'),
    cert: read(values.cert, '--cert'),
    key: read(values.key, '--key'),
    reconnectPeriod: 2000,
    connectTimeout: 10_000,
  };
  if (values.web !== undefined) {
    if (values.topic !== undefined || values.count !== undefined || values.json !== undefined) throw new UsageError('--web shows the dashboard: --topic, --count and --json are for the terminal monitor');
    return monitorWeb({ values, broker, devices, prefix, mqtt: options });
  }
  if (values['token-file'] !== undefined || values['allow-commands'] !== undefined) throw new UsageError('--token-file and --allow-commands need --web');

  const live = values.json !== true && process.stdout.isTTY === true;
  const table = live ? new LiveTable(prefix, (s) => process.stdout.write(s)) : undefined;
  const client = mqtt.connect(broker, options);
  let seen = 0;
  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => { finish = resolve; });
  let lastError = '';
  client.on('error', (err) => {
    if (err.message !== lastError) {
      lastError = err.message;
      process.stderr.write(`afb-edge monitor: ${broker}: ${err.message}\n`);
    }
  });
  client.on('connect', () => {
    lastError = '';
    client.subscribe(filters.map((f) => ({ topic: f, qos: 1 as const })).reduce((o, f) => ({ ...o, [f.topic]: { qos: f.qos } }), {}), (err) => {
      if (err) {
        process.stderr.write(`afb-edge monitor: subscribe failed: ${err.message}\n`);
        finish(2);
      }
    });
  });
  client.on('message', (topic, payload, packet) => {
    if (count !== undefined && seen >= count) return;
    seen++;
    const line: MonitorLine = { ts: new Date().toISOString(), topic, retained: packet.retain, payload: decodePayload(payload) };
    if (table) table.add(line);
    else process.stdout.write(JSON.stringify(line) + '\n');
    if (count !== undefined && seen >= count) finish(EXIT_OK);
  });
  const onSignal = () => finish(EXIT_OK);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const redraw = table ? setInterval(() => table.render(), 500) : undefined;
  try {
    return await done;
  } finally {
    clearInterval(redraw);
    table?.render();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await client.endAsync();
  }
}
