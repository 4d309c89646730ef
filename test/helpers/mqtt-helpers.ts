/**
 * Helpers for the MQTT sink tests: config builders, a recording logger, a
 * plain mqtt.js subscriber that records what the broker delivers, and a TCP
 * proxy that can cut the network between the sink and the broker.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { DeviceConfig, MqttConfig, OutboxConfig } from '../../src/config/types.js';
import type { Logger } from '../../src/util/log.js';
import type { Broker } from './broker.js';
import { freePort, withTimeout } from './net-helpers.js';

export const device: DeviceConfig = { id: 'car-042', labels: { fleet: 'test', model: 'sim' } };

export function mqttConfig(url: string, over: Partial<MqttConfig> = {}): MqttConfig {
  return {
    url,
    client_id: 'afb-edge-{device}',
    protocol_version: 4,
    keepalive_s: 30,
    clean_session: true,
    topic_prefix: 'fleet',
    status_topic: '{prefix}/{device}/status',
    reconnect: { initial_delay_ms: 50, max_delay_ms: 400 },
    qos0_max_queue: 100,
    status_interval_s: 0,
    ...over,
  };
}

export function outboxConfig(dir: string, over: Partial<OutboxConfig> = {}): OutboxConfig {
  return { path: path.join(dir, 'outbox', 'outbox.db'), max_messages: 10_000, max_bytes: 10_000_000, policy: 'drop-oldest', max_inflight: 50, sync_interval_ms: 10, commit_delay_ms: 0, ...over };
}

export interface CapturedLogger extends Logger {
  lines: string[];
  matching(re: RegExp): string[];
}

/** Records every line; DEBUG_MQTT_TESTS=1 also prints them. */
export function captureLogger(): CapturedLogger {
  const lines: string[] = [];
  const rec = (lvl: string) => (msg: string): void => {
    lines.push(`<${lvl}> ${msg}`);
    if (process.env.DEBUG_MQTT_TESTS) console.log(`<${lvl}> ${msg}`);
  };
  return { lines, matching: (re) => lines.filter((l) => re.test(l)), debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}

export interface Received {
  topic: string;
  text: string;
  qos: number;
  retain: boolean;
  /** DUP flag: the broker redelivers to this subscriber (its own retransmission, not a new publication). */
  dup: boolean;
}

/** A plain mqtt.js subscriber (the "remote side"). */
export class Collector {
  readonly messages: Received[] = [];
  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.messages.push({ topic, text: payload.toString(), qos: packet.qos, retain: packet.retain, dup: packet.dup });
    });
  }

  /** Connects to `broker` (with the watcher certificate on a TLS broker) and subscribes. */
  static async connect(broker: Broker, filters: string[], qos: 0 | 1 | 2 = 1, extra: IClientOptions = {}): Promise<Collector> {
    const opts: IClientOptions = { reconnectPeriod: 100, connectTimeout: 3000, clientId: `collector-${Math.random().toString(16).slice(2)}`, ...extra };
    if (broker.pki) {
      opts.ca = fs.readFileSync(broker.pki.ca.cert);
      opts.cert = fs.readFileSync(broker.pki.watcher.cert);
      opts.key = fs.readFileSync(broker.pki.watcher.key);
    }
    const client = await withTimeout(mqtt.connectAsync(broker.url, opts), 5000, 'collector connection');
    const c = new Collector(client);
    await client.subscribeAsync(Object.fromEntries(filters.map((f) => [f, { qos }])));
    return c;
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }

  async waitFor(pred: (msgs: Received[]) => boolean, ms = 5000, what = 'messages'): Promise<void> {
    const end = Date.now() + ms;
    while (!pred(this.messages)) {
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; got ${this.messages.length}: ${this.messages.slice(-5).map((m) => `${m.topic}=${m.text.slice(0, 80)}`).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Resolves once `n` messages arrived on topics starting with `prefix`. */
  waitCount(prefix: string, n: number, ms = 5000): Promise<void> {
    return this.waitFor((m) => m.filter((x) => x.topic.startsWith(prefix)).length >= n, ms, `${n} messages on ${prefix}*`);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/**
 * A TCP relay in front of the broker. block() stops listening and cuts every
 * connection (the network is gone); unblock() listens again on the same port.
 * cut() only kills the current connections, without DISCONNECT (the broker
 * then publishes the will).
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<net.Socket>();
  private constructor(readonly port: number, private readonly target: number) {}

  static async start(target: number, open = true): Promise<TcpProxy> {
    const p = new TcpProxy(await freePort(), target);
    if (open) await p.unblock();
    return p;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get connections(): number {
    return this.pairs.size / 2;
  }

  async unblock(): Promise<void> {
    if (this.server) return;
    const srv = net.createServer((inbound) => {
      const outbound = net.connect({ host: '127.0.0.1', port: this.target });
      for (const s of [inbound, outbound]) {
        this.pairs.add(s);
        s.on('error', () => undefined);
        s.once('close', () => {
          this.pairs.delete(s);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = srv;
  }

  cut(): void {
    for (const s of this.pairs) s.destroy();
  }

  /**
   * A half-open link (a cellular or NAT path that died silently): the open
   * connections stay open and forward nothing more, either way; new ones
   * are forwarded as before.
   */
  freeze(): void {
    for (const s of this.pairs) {
      s.unpipe();
      s.pause();
    }
  }

  async block(): Promise<void> {
    const srv = this.server;
    this.server = undefined;
    this.cut();
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
  }
}

/** Parses the JSON of the last message on `topic`. */
export function lastJson(c: Collector, topic: string): Record<string, unknown> | undefined {
  const msgs = c.on(topic);
  return msgs.length ? (JSON.parse(msgs[msgs.length - 1]!.text) as Record<string, unknown>) : undefined;
}

/** Counter value from a prom-client counter with labels. */
export async function counter(metric: { get(): Promise<{ values: Array<{ labels: Record<string, unknown>; value: number }> }> }, labels: Record<string, string>): Promise<number> {
  const v = (await metric.get()).values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}
