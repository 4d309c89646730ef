/**
 * TLS: mTLS against mosquitto with require_certificate, an encrypted client
 * key with its passphrase file, certificate rotation, an untrusted server.
 *
 * How rotation is verified: the broker maps the client certificate's CN to
 * the username (use_identity_as_username) and its ACL lets a user write
 * only under id/<its CN>/ (pattern id/%u/#). The sink starts with a
 * certificate for CN agent-a; its files are then replaced by a certificate
 * for CN agent-b (same CA). A message on id/agent-b/... can only reach the
 * subscriber if the sink reconnected with the new certificate; one on
 * id/agent-a/... published afterwards must not arrive; and mosquitto's log
 * shows the new connection with u'agent-b'.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TlsConfig } from '../../src/config/types.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { encryptKey, makeCa } from '../helpers/certs.js';
import { Cleanup, tempDir, withTimeout } from '../helpers/net-helpers.js';
import { captureLogger, Collector, device, mqttConfig, outboxConfig } from '../helpers/mqtt-helpers.js';

let broker: Broker;
beforeAll(async () => {
  broker = await startBroker({
    tls: true, useIdentityAsUsername: true, persistence: false,
    acl: 'pattern readwrite id/%u/#\npattern readwrite fleet/#\nuser watcher\ntopic read #\n',
  });
});
afterAll(() => broker?.close());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function makeSink(tls: TlsConfig, tlsCheckIntervalMs = 60_000) {
  const logger = captureLogger();
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const sink = new MqttSink(mqttConfig(broker.url, { tls, client_id: `tls-${Math.random().toString(16).slice(2)}` }), outboxConfig(tempDir(cleanup, 'tls')),
    { device, metrics, logger, options: { tlsCheckIntervalMs } });
  cleanup.add(() => sink.stop());
  return { sink, logger, metrics };
}

const connected = (sink: MqttSink): Promise<void> => new Promise((resolve) => sink.once('connected', () => resolve()));
const publish = (sink: MqttSink, topic: string, text: string): Promise<string> => sink.publish({ topic, payload: Buffer.from(text), qos: 1, retain: false, route: 'r' });

describe('MqttSink over TLS', () => {
  it('mTLS with an encrypted key and its passphrase file', async () => {
    const dir = tempDir(cleanup, 'tls-files');
    const client = broker.pki!.client('agent-a', 'mtls-a');
    const encKey = encryptKey(client.key, 'open sesame', path.join(dir, 'client.key.enc'));
    const pass = path.join(dir, 'passphrase');
    fs.writeFileSync(pass, 'open sesame\n', { mode: 0o600 });
    const c = await Collector.connect(broker, ['id/#']);
    cleanup.add(() => c.close());
    const { sink } = makeSink({ ca_file: broker.pki!.ca.cert, cert_file: client.cert, key_file: encKey, key_passphrase_file: pass, reject_unauthorized: true });
    await sink.start();
    await connected(sink);
    await publish(sink, 'id/agent-a/hello', 'over mTLS');
    await c.waitCount('id/agent-a/', 1);
    expect(c.messages[0]!.text).toBe('over mTLS');
  });

  it('certificate rotation: replaced cert/key files are noticed and the sink reconnects with them', async () => {
    const dir = tempDir(cleanup, 'tls-rotate');
    const a = broker.pki!.client('agent-a', 'rot-a');
    const b = broker.pki!.client('agent-b', 'rot-b');
    const cert = path.join(dir, 'client.crt');
    const key = path.join(dir, 'client.key');
    fs.copyFileSync(a.cert, cert);
    fs.copyFileSync(a.key, key);
    const c = await Collector.connect(broker, ['id/#']);
    cleanup.add(() => c.close());
    const { sink, logger } = makeSink({ ca_file: broker.pki!.ca.cert, cert_file: cert, key_file: key, reject_unauthorized: true }, 100);
    await sink.start();
    await connected(sink);
    await publish(sink, 'id/agent-a/before', '1');
    await c.waitCount('id/agent-a/', 1);

    // rotate the way certbot/step do: write new files, rename them over the old ones
    const rotated = new Promise<void>((resolve) => sink.once('tls-rotated', () => resolve()));
    const reconnected = new Promise<void>((resolve) => sink.on('connected', (e: { reconnect: boolean }) => e.reconnect && resolve()));
    fs.copyFileSync(b.key, `${key}.new`);
    fs.copyFileSync(b.cert, `${cert}.new`);
    fs.renameSync(`${key}.new`, key);
    fs.renameSync(`${cert}.new`, cert);
    await withTimeout(rotated, 3000, 'the rotation to be noticed');
    await withTimeout(reconnected, 3000, 'the reconnection with the new certificate');
    expect(logger.matching(/TLS files changed/)).toHaveLength(1);
    await publish(sink, 'id/agent-b/after', '2');
    await c.waitCount('id/agent-b/', 1); // only agent-b may write there
    if (broker.kind === 'mosquitto') {
      await publish(sink, 'id/agent-a/denied', '3'); // the old identity's topic is no longer writable
      await publish(sink, 'id/agent-b/marker', '4');
      await c.waitCount('id/agent-b/', 2);
      expect(c.messages.map((m) => m.topic)).toEqual(['id/agent-a/before', 'id/agent-b/after', 'id/agent-b/marker']);
      expect(broker.log()).toMatch(/New client connected .* u'agent-b'/);
    }
  });

  it('an untrusted server certificate: a TLS error logged once, retried', async () => {
    const dir = tempDir(cleanup, 'tls-bad');
    const otherCa = makeCa(dir, 'other-ca');
    const client = broker.pki!.client('agent-a', 'bad-a');
    const { sink, logger } = makeSink({ ca_file: otherCa.cert, cert_file: client.cert, key_file: client.key, reject_unauthorized: true });
    let failures = 0;
    sink.on('connect-failed', () => failures++);
    await sink.start();
    await expect.poll(() => failures, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    const lines = logger.matching(/cannot connect/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^<error> .*TLS error: .*(unable to verify|self.signed|certificate)/i);
    expect(sink.connected).toBe(false);
  });
});
