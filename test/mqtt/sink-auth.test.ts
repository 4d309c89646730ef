/**
 * Password authentication against mosquitto's password file: the good
 * password connects; a bad one is logged once with the broker's reason
 * code, retried with backoff without crashing, never logged itself, and the
 * password file is re-read on each attempt (fixing it is enough).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { captureLogger, Collector, counter, device, mqttConfig, outboxConfig } from '../helpers/mqtt-helpers.js';

let broker: Broker;
beforeAll(async () => { broker = await startBroker({ users: { agent: 'right-horse-battery', watcher: 'w' }, persistence: false }); });
afterAll(() => broker?.close());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

for (const version of [4, 5] as const) {
  describe(`password authentication, MQTT ${version === 5 ? '5' : '3.1.1'}`, () => {
    function setup(password: string) {
      const dir = tempDir(cleanup, 'auth');
      const pwFile = path.join(dir, 'mqtt-password');
      fs.writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
      const metrics = new AgentMetrics({ defaultMetrics: false });
      const logger = captureLogger();
      const sink = new MqttSink(mqttConfig(broker.url, { protocol_version: version, username: 'agent', password_file: pwFile, client_id: `auth-v${version}-{device}` }),
        outboxConfig(dir), { device, metrics, logger });
      cleanup.add(() => sink.stop());
      return { sink, metrics, logger, pwFile };
    }

    it('connects with the right password and publishes', async () => {
      if (version === 5 && !broker.supportsV5) return console.warn(`[skip] MQTT 5 not available on the ${broker.kind} fallback broker`);
      const c = await Collector.connect(broker, [`auth/v${version}/#`], 1, { username: 'watcher', password: 'w', protocolVersion: version });
      cleanup.add(() => c.close());
      const { sink } = setup('right-horse-battery');
      await sink.start();
      await new Promise<void>((resolve) => sink.once('connected', () => resolve()));
      await sink.publish({ topic: `auth/v${version}/x`, payload: Buffer.from('hello'), qos: 1, retain: false, route: 'r' });
      await c.waitCount(`auth/v${version}/`, 1);
    });

    it('a bad password: logged once with the reason code, retried with backoff, no crash; the fixed file is picked up', async () => {
      if (version === 5 && !broker.supportsV5) return console.warn(`[skip] MQTT 5 not available on the ${broker.kind} fallback broker`);
      const { sink, logger, metrics, pwFile } = setup('wrong-password');
      const failures: Array<{ reason: string; retryInMs: number }> = [];
      sink.on('connect-failed', (f: { reason: string; retryInMs: number }) => failures.push(f));
      await sink.start();
      const accepted = await sink.publish({ topic: `auth/v${version}/queued`, payload: Buffer.from('kept'), qos: 1, retain: false, route: 'r' });
      expect(accepted).toBe('accepted'); // durable while the credentials are being fixed
      await expect.poll(() => failures.length, { timeout: 5000 }).toBeGreaterThanOrEqual(4);
      // 3.1.1: CONNACK return code 5 (mosquitto refuses bad credentials as "not authorized"); 5: reason code 0x86 or 0x87
      const code = version === 5 ? /reason code 13[45]/ : /reason code [45]\b/;
      expect(failures[0]!.reason).toMatch(code);
      const lines = logger.matching(/cannot connect/);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^<error> mqtt: cannot connect to mqtt:\/\/127\.0\.0\.1:\d+: Connection refused: .*retrying with backoff/);
      expect(lines[0]).toMatch(code);
      expect(failures[3]!.retryInMs).toBeGreaterThanOrEqual(200); // 50, 100, 200, 400 (jitter: [d/2, d])
      expect(logger.lines.join('\n')).not.toContain('wrong-password');
      expect(await counter(metrics.errors, { component: 'mqtt' })).toBe(1);

      fs.writeFileSync(pwFile, 'right-horse-battery\n');
      await new Promise<void>((resolve) => sink.once('connected', () => resolve()));
      expect(logger.matching(/connected to .* after \d+ failed attempt/)).toHaveLength(1);
      await expect.poll(() => counter(metrics.published, { qos: '1' })).toBe(1); // the message kept meanwhile
    });
  });
}
