/**
 * mqtt.js options for one connection attempt, built fresh before each
 * attempt so that a changed password file or rotated TLS files are used.
 */
import type { IClientOptions } from 'mqtt';
import type { DeviceConfig, MqttConfig } from '../../config/types.js';
import type { SecretReader } from './secrets-reader.js';
import type { TlsMaterial } from './tls-files.js';
import { UnkeptStore } from './unkept-store.js';

export interface ConnectParts {
  config: MqttConfig;
  device: DeviceConfig;
  secrets: SecretReader;
  tls: TlsMaterial | undefined;
  will: { topic: string; payload: Buffer };
  connectTimeoutMs: number;
  sessionExpiryS: number;
}

export function clientId(config: MqttConfig, device: DeviceConfig): string {
  return config.client_id.replaceAll('{device}', device.id);
}

/** mqtt.js hands every option to tls.connect(), passphrase included (its types omit it). */
export type ConnectOptions = IClientOptions & { passphrase?: string; servername?: string };

export function buildConnectOptions(p: ConnectParts): ConnectOptions {
  const { config } = p;
  const opts: ConnectOptions = {
    protocolVersion: config.protocol_version,
    clientId: clientId(config, p.device),
    keepalive: config.keepalive_s,
    clean: config.clean_session,
    connectTimeout: p.connectTimeoutMs,
    // Reconnection is ours (backoff with jitter, fresh options per attempt): mqtt.js's
    // fixed-period timer would hammer a broker that is down and reuse stale TLS files.
    reconnectPeriod: 0,
    // mqtt.js would keep QoS 0 messages published while offline in an unbounded
    // queue; ours is bounded (qos0_max_queue) and we only hand it messages when connected.
    queueQoSZero: false,
    // mqtt-packet would otherwise build, on the first packet, a table of 65,536 two-byte
    // Buffers for the numbers it writes: ~6 MB of heap for the process's lifetime, and
    // ~1 s of start-up in the emulated arm64 guest. Without it each number written is a
    // 2-byte allocation: bench/mqtt.ts bursts go from 126-148k to 88-89k QoS 0 msgs/s and
    // from 31-33k to 28-30k durable QoS 1 msgs/s, far above what a vehicle's events need;
    // latency at 1,000 msgs/s is unchanged, steady RSS is 8-11 MB lower.
    writeCache: false,
    // We resubscribe ourselves after each connection (the client object is new each time).
    resubscribe: false,
    // The outbox resends what was not acknowledged, with a new client: mqtt.js's copies are never used.
    outgoingStore: new UnkeptStore(),
    // A PINGREQ every keepalive, whatever else flows (one small packet a minute). mqtt.js's
    // default postpones it at every PUBACK received, which cleared and re-armed a timer per
    // QoS 1 message: ~4 % of the agent's CPU in a QoS 1 burst (bench/bridge.ts profile).
    reschedulePings: false,
    will: { topic: p.will.topic, payload: p.will.payload, qos: 1, retain: true },
  };
  if (config.username !== undefined) opts.username = config.username;
  if (config.password_file !== undefined) opts.password = p.secrets.text(config.password_file, 'mqtt.password_file');
  if (config.protocol_version === 5 && !config.clean_session) {
    // Without it an MQTT 5 session ends with the connection, whatever clean_session says.
    opts.properties = { sessionExpiryInterval: p.sessionExpiryS };
  }
  const tls = config.tls;
  if (tls) {
    opts.rejectUnauthorized = tls.reject_unauthorized;
    if (tls.servername !== undefined) opts.servername = tls.servername;
    if (p.tls?.ca) opts.ca = p.tls.ca;
    if (p.tls?.cert) opts.cert = p.tls.cert;
    if (p.tls?.key) opts.key = p.tls.key;
    if (p.tls?.passphrase !== undefined) opts.passphrase = p.tls.passphrase;
  }
  return opts;
}

/** host:port of the broker URL, without credentials, for logs and metric labels. */
export function brokerLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(invalid url)';
  }
}
