/**
 * A QoS 1 message the broker refuses in its PUBACK (MQTT 5 reason code
 * 0x87, not authorized: a mosquitto ACL) is dropped and counted as
 * broker_rejected, and the messages after it are delivered: retrying it
 * would block the outbox forever. The sink writes QoS 1 PUBLISH packets
 * itself (publish-packet.ts) and reads their PUBACKs, reason codes
 * included.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { captureLogger, Collector, counter, device, mqttConfig, outboxConfig } from '../helpers/mqtt-helpers.js';

let broker: Broker;
beforeAll(async () => { broker = await startBroker({ persistence: false, acl: 'topic readwrite ok/#\ntopic readwrite fleet/#\n' }); });
afterAll(() => broker?.close());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('MqttSink, MQTT 5: a QoS 1 message refused in its PUBACK', () => {
  it('is dropped as broker_rejected, logged, and the next ones are delivered in order', async () => {
    if (!broker.supportsV5) {
      console.warn(`[skip] MQTT 5 test not run: the ${broker.kind} fallback broker does not speak MQTT 5 (install mosquitto)`);
      return;
    }
    const c = await Collector.connect(broker, ['ok/#'], 1, { protocolVersion: 5 });
    cleanup.add(() => c.close());
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const logger = captureLogger();
    const sink = new MqttSink(mqttConfig(broker.url, { protocol_version: 5, client_id: 'sink-rejected-{device}' }), outboxConfig(tempDir(cleanup, 'sink')), { device, metrics, logger, version: '9.9.9' });
    cleanup.add(() => sink.stop('test end'));
    await sink.start();
    await new Promise<void>((resolve) => sink.once('connected', () => resolve()));
    for (let i = 0; i < 20; i++) {
      sink.submit({ topic: i % 4 === 1 ? `denied/${i}` : `ok/${i}`, payload: Buffer.from(String(i)), qos: 1, retain: false, route: 'r' });
    }
    await c.waitCount('ok/', 15);
    for (let i = 0; i < 100 && (await counter(metrics.dropped, { reason: 'broker_rejected' })) < 5; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await counter(metrics.dropped, { reason: 'broker_rejected' })).toBe(5);
    expect(c.messages.map((m) => Number(m.text))).toEqual([0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19]);
    expect(logger.matching(/broker refused a message on denied\/1 \(route r\): Publish error: Not authorized; dropped/)).toHaveLength(1);
    expect(await counter(metrics.reconnects, { kind: 'mqtt' })).toBe(0);
  });
});
