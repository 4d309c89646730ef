/**
 * The dashboard: one MQTT client (mqtt.js, as the terminal monitor), one
 * HTTP server that serves the page and its bundle from the package (built by
 * scripts/bundle.mjs into dist/web/: no CDN, works on an isolated network)
 * and takes WebSocket upgrades on /ws (the `ws` package). The browser talks
 * to this server only: it never reaches the broker nor sees its
 * credentials.
 *
 * Every response carries a Content-Security-Policy that allows scripts and
 * styles from the page's own origin only (no inline script, no eval), no
 * framing, no forms.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from '../../util/log.js';
import { deviceFilters } from '../topics.js';
import { AccessCheck } from './access.js';
import { BusIngest } from './bus.js';
import { CommandConsole } from './commands.js';
import { DeviceLog } from './device-log.js';
import { Fleet } from './fleet.js';
import { Hub } from './hub.js';
import { checkExposure, type WebListen } from './listen.js';
import { DashboardMetrics } from './metrics.js';

export interface DashboardOptions {
  listen: WebListen;
  token?: string;
  broker: string;
  mqtt: IClientOptions;
  prefix: string;
  /** Device ids to follow; empty: every device under the prefix. */
  devices: string[];
  allowCommands: boolean;
  /** Fixed silence threshold; default: from each device's health interval. */
  silentAfterMs?: number;
  /** Row and event updates per second per browser (default 10). */
  uiRate?: number;
  maxDevices?: number;
  maxClients?: number;
  /** Messages kept per device for a device view opened later (default 100). */
  history?: number;
  commandTimeoutMs?: number;
  version: string;
  logger: Logger;
  /** Where app.js and app.css are (default: the package's dist/web). */
  assetsDir?: string;
}

export interface Dashboard {
  /** http://host:port/ as a browser on this machine reaches it. */
  url: string;
  port: number;
  metrics: DashboardMetrics;
  close(): Promise<void>;
}

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const SECURITY_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>afb-edge dashboard</title><link rel="stylesheet" href="/app.css"><script src="/app.js" defer></script></head>
<body><noscript>The afb-edge dashboard needs JavaScript.</noscript></body></html>
`;

/** The package's dist/web: found from this module upwards (it may be bundled into dist/src/cli). */
export function defaultAssetsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'afb-edge') return join(dir, 'dist', 'web');
    dir = dirname(dir);
  }
  throw new Error('dashboard: the afb-edge package directory was not found above ' + fileURLToPath(import.meta.url));
}

function loadAssets(dir: string): Map<string, { type: string; body: Buffer }> {
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const [name, type] of [['app.js', 'text/javascript; charset=utf-8'], ['app.css', 'text/css; charset=utf-8']] as const) {
    const file = join(dir, name);
    if (!existsSync(file)) throw new Error(`dashboard: ${file} is missing: the browser bundle is made by npm run build (scripts/bundle.mjs)`);
    assets.set(`/${name}`, { type, body: readFileSync(file) });
  }
  assets.set('/', { type: 'text/html; charset=utf-8', body: Buffer.from(PAGE) });
  return assets;
}

export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  checkExposure(o.listen, o.token);
  const assets = loadAssets(o.assetsDir ?? defaultAssetsDir());
  const uiRate = o.uiRate ?? 10;
  const metrics = new DashboardMetrics();
  const access = new AccessCheck(o.token);
  let client: MqttClient | undefined;
  let brokerUp = false;

  const commands = new CommandConsole({
    enabled: o.allowCommands,
    prefix: o.prefix,
    timeoutMs: o.commandTimeoutMs ?? 15_000,
    metrics,
    publish: async (topic, payload) => {
      if (client === undefined || !brokerUp) throw new Error('not connected to the broker');
      await client.publishAsync(topic, payload, { qos: 1 });
    },
  });
  const log = new DeviceLog(o.history ?? 100, 64 * 1024 * 1024);
  let hub: Hub | undefined;
  const fleet = new Fleet({
    maxDevices: o.maxDevices ?? 10_000,
    silentAfterMs: o.silentAfterMs,
    onRow: (d) => hub?.rowChanged(d),
    onActivity: (d) => hub?.activityChanged(d),
    onRemoved: (d) => hub?.rowRemoved(d),
  });
  hub = new Hub({
    uiRate,
    activityRate: Math.min(uiRate, 2),
    maxClients: o.maxClients ?? 32,
    limits: { maxQueued: 1000, maxPerFlush: 200, maxBuffered: 1024 * 1024, rowsPerMessage: 500 },
    fleet: { row: (d) => fleet.row(d), rows: () => fleet.rows(), history: (d) => log.history(d) },
    commands,
    metrics,
    logger: o.logger,
    hello: () => ({ t: 'hello', version: o.version, prefix: o.prefix, devices: o.devices, commands: o.allowCommands, uiRate, maxEvents: 500, now: Date.now(), broker: brokerUp }),
  });
  const ingest = new BusIngest(o.prefix, { fleet, log, hub, commands, metrics, logger: o.logger });
  const tick = setInterval(() => {
    fleet.tick(Date.now());
    metrics.devices.set(fleet.size);
    metrics.historyBytes.set(log.bytes);
  }, 1000);

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const send = (status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}) =>
      res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-store', ...extra }).end(req.method === 'HEAD' ? undefined : body);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
    // ?token=… once: a cookie stands for it from then on, and the address bar loses it.
    const offered = url.searchParams.get('token');
    if (offered !== null && access.needsToken) {
      if (!access.tokenMatches(offered)) {
        metrics.refused.inc({ reason: 'token' });
        return send(401, 'text/plain; charset=utf-8', 'wrong token\n');
      }
      return send(303, 'text/plain', 'see /\n', { location: url.pathname, 'set-cookie': access.setCookie() });
    }
    const denied = access.refuse(req);
    if (denied !== undefined) {
      metrics.refused.inc({ reason: denied });
      return denied === 'token'
        ? send(401, 'text/plain; charset=utf-8', 'token required: open the dashboard as /?token=<the token of the monitor\'s --token-file>\n', { 'www-authenticate': 'Bearer' })
        : send(403, 'text/plain; charset=utf-8', 'this dashboard answers to loopback names only (localhost, 127.0.0.1, [::1])\n');
    }
    if (url.pathname === '/metrics') {
      metrics.registry.metrics().then((body) => send(200, metrics.registry.contentType, body), (err: Error) => send(500, 'text/plain', `metrics failed: ${err.message}\n`));
      return;
    }
    if (url.pathname === '/favicon.ico') return send(204, 'text/plain', '');
    const asset = assets.get(url.pathname);
    if (asset === undefined) return send(404, 'text/plain', 'not found\n');
    return send(200, asset.type, asset.body, { 'cache-control': 'no-cache' });
  });
  server.on('upgrade', (req, socket, head) => {
    const refuse = (status: string, reason: string) => {
      metrics.refused.inc({ reason });
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    socket.on('error', () => socket.destroy());
    if (new URL(req.url ?? '/', 'http://dashboard').pathname !== '/ws') return refuse('404 Not Found', 'path');
    const denied = access.refuseUpgrade(req);
    if (denied !== undefined) return refuse(denied === 'token' ? '401 Unauthorized' : '403 Forbidden', denied);
    if (!hub!.upgrade(req, socket, head)) refuse('503 Service Unavailable', 'max-clients');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`dashboard: cannot listen on ${o.listen.host}:${o.listen.port}: ${err.code ?? err.message}`)));
    server.listen(o.listen.port, o.listen.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  client = mqtt.connect(o.broker, o.mqtt);
  let lastError = '';
  client.on('error', (err) => {
    if (err.message === lastError) return;
    lastError = err.message;
    o.logger.warn(`monitor: ${o.broker}: ${err.message}`);
  });
  client.on('connect', () => {
    lastError = '';
    brokerUp = true;
    hub?.broadcast({ t: 'broker', up: true, text: `connected to ${o.broker}` });
    // QoS 0: a live view needs no broker-side queue or acknowledgements (with QoS 1, mosquitto's
    // in-flight window would pace a busy fleet); what matters is retained and comes again on reconnect.
    client!.subscribe(deviceFilters(o.prefix, o.devices), { qos: 0 }, (err) => {
      if (err) o.logger.error(`monitor: subscribe to ${deviceFilters(o.prefix, o.devices).join(' ')} failed: ${err.message}`);
    });
  });
  client.on('close', () => {
    if (!brokerUp) return;
    brokerUp = false;
    hub?.broadcast({ t: 'broker', up: false, text: `connection to ${o.broker} lost${lastError ? `: ${lastError}` : ''}` });
  });
  client.on('message', (topic, payload, packet) => ingest.message(topic, payload, packet.retain));

  const shownHost = o.listen.host === '0.0.0.0' ? '127.0.0.1' : o.listen.host === '::' ? '[::1]' : o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host;
  return {
    url: `http://${shownHost}:${port}/`,
    port,
    metrics,
    async close() {
      clearInterval(tick);
      commands.close();
      await hub!.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await client!.endAsync(true);
    },
  };
}
