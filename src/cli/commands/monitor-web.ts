/**
 * afb-edge monitor --web [HOST:]PORT: the fleet dashboard
 * (src/remote/dashboard/). Runs until SIGINT/SIGTERM; prints the URL on
 * stdout (`dashboard: http://…/`), problems on stderr.
 */
import type { IClientOptions } from 'mqtt';
import { intArg, loggerArg } from '../args.js';
import { EXIT_OK, UsageError } from '../usage.js';
import { version } from '../version.js';

export interface MonitorWebArgs {
  values: Record<string, unknown>;
  broker: string;
  devices: string[];
  prefix: string;
  mqtt: IClientOptions;
}

export async function monitorWeb(a: MonitorWebArgs): Promise<number> {
  // Loaded here: the terminal monitor needs neither the server nor `ws`.
  const { parseWebListen, readToken } = await import('../../remote/dashboard/listen.js');
  const { startDashboard } = await import('../../remote/dashboard/server.js');
  const v = a.values;
  let listen;
  let token: string | undefined;
  try {
    listen = parseWebListen(v.web as string);
    token = v['token-file'] === undefined ? undefined : readToken(v['token-file'] as string);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const silentAfter = intArg(v['silent-after'] as string | undefined, '--silent-after', 1);
  const uiRate = intArg(v['ui-rate'] as string | undefined, '--ui-rate', 1);
  if (uiRate !== undefined && uiRate > 60) throw new UsageError(`--ui-rate must be at most 60 updates a second, not ${uiRate}`);
  const logger = loggerArg(v['log-level'] ?? 'info');
  let dashboard;
  try {
    dashboard = await startDashboard({
      listen,
      token,
      broker: a.broker,
      mqtt: a.mqtt,
      prefix: a.prefix,
      devices: a.devices,
      allowCommands: v['allow-commands'] === true,
      silentAfterMs: silentAfter === undefined ? undefined : silentAfter * 1000,
      uiRate,
      maxDevices: intArg(v['max-devices'] as string | undefined, '--max-devices', 1),
      history: intArg(v.history as string | undefined, '--history', 0),
      version: version(),
      logger,
    });
  } catch (err) {
    // A refused exposure, a port in use, missing assets: one line, exit 2.
    throw new UsageError((err as Error).message);
  }
  process.stdout.write(`dashboard: ${dashboard.url}\n`);
  if (token !== undefined) process.stdout.write(`token required: open ${dashboard.url}?token=<the token in ${v['token-file'] as string}> once (a cookie then holds it)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await dashboard.close();
  return EXIT_OK;
}
