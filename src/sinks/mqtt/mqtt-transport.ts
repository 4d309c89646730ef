/**
 * Creates the mqtt.js client over a TCP or TLS stream that we open
 * ourselves, instead of calling mqtt.connect().
 *
 * mqtt.connect() loads every transport it knows on the first connection.
 * That means websockets (ws), SOCKS proxies (socks, ip-address, smart-buffer)
 * and the browser ones: about 350 KB of JavaScript. The agent's broker URLs
 * are mqtt:// or mqtts:// only (config/semantic.ts). Loading those transports
 * cost ~0.5 s of the agent's start-up in the emulated arm64 guest
 * (docs/qemu.md). The MqttClient class is the same one mqtt.connect()
 * builds, fed a stream builder: mqtt.js documents that constructor,
 * `new MqttClient(streamBuilder, options)`, for custom transports.
 */
import { connect as netConnect, isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { ConnectOptions } from './connect-options.js';
import { lazyRequire } from '../../util/lazy-require.js';
// CommonJS modules compiled from TypeScript (exports.default = the class). Node's ES module
// loader and esbuild make module.exports their default import; vitest's loader gives the
// class itself. defaultExport() takes either.
import clientModule from 'mqtt/lib/client';
import storeModule from 'mqtt/lib/store';

const tls = lazyRequire<typeof import('node:tls')>('node:tls');
export const defaultExport = <T>(m: { default: T } | T): T => ((m as { default?: T }).default ?? m) as T;
const MqttClient = defaultExport(clientModule);
export type MqttClient = InstanceType<typeof MqttClient>;
/** mqtt.js's in-memory packet store (unkept-store.ts extends it). */
export const MqttStore = defaultExport(storeModule);

/** URL schemes the agent accepts, and whether each one means TLS. */
const SCHEMES: Record<string, { tls: boolean; port: number }> = {
  'mqtt:': { tls: false, port: 1883 },
  'tcp:': { tls: false, port: 1883 },
  'mqtts:': { tls: true, port: 8883 },
  'ssl:': { tls: true, port: 8883 },
};

export interface BrokerAddress {
  tls: boolean;
  host: string;
  port: number;
}

export function brokerAddress(url: string): BrokerAddress {
  const u = new URL(url);
  const scheme = SCHEMES[u.protocol];
  if (scheme === undefined) throw new Error(`unsupported broker URL scheme '${u.protocol}' in ${url} (mqtt:// or mqtts://)`);
  // new URL keeps IPv6 literals in brackets; net.connect wants them bare.
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname || 'localhost';
  return { tls: scheme.tls, host, port: u.port === '' ? scheme.port : Number(u.port) };
}

/**
 * A started mqtt.js client for `url` (mqtt://, mqtts://, tcp://, ssl://).
 * TLS options (ca, cert, key, passphrase, servername, rejectUnauthorized)
 * are taken from `options`, as mqtt.connect() would.
 */
export function connectMqtt(url: string, options: ConnectOptions): MqttClient {
  const address = brokerAddress(url);
  // Called again by the client for each connection; ours only ever makes one (reconnectPeriod 0).
  const build = () => {
    if (!address.tls) return netConnect({ host: address.host, port: address.port });
    return tls().connect({
      ...pickTls(options),
      host: address.host,
      port: address.port,
      // SNI only for names: RFC 6066 forbids IP literals in server_name.
      servername: options.servername ?? (isIP(address.host) === 0 ? address.host : undefined),
      rejectUnauthorized: options.rejectUnauthorized !== false,
    });
  };
  return new MqttClient(build, { ...options, host: address.host, port: address.port, protocol: address.tls ? 'mqtts' : 'mqtt' });
}

function pickTls(o: ConnectOptions): ConnectionOptions {
  const out: ConnectionOptions = {};
  if (o.ca !== undefined) out.ca = o.ca;
  if (o.cert !== undefined) out.cert = o.cert;
  if (o.key !== undefined) out.key = o.key;
  if (o.passphrase !== undefined) out.passphrase = o.passphrase;
  return out;
}
