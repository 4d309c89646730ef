/**
 * Topics the broker would drop the connection for never leave the sink
 * (issue 11, siblings of the poison row): a reply topic chosen by a remote
 * client ('#', '+', a control character), a QoS 0 or QoS 1 message on such
 * a topic. Each is refused, counted (dropped{reason="topic_invalid"}) and
 * logged rate-limited; the connection stays up and the next message goes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { captureLogger, Collector, counter, device, mqttConfig, outboxConfig } from '../helpers/mqtt-helpers.js';

let broker: Broker;
beforeAll(async () => { broker = await startBroker({ persistence: false }); });
afterAll(() => broker?.close());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function connectedSink() {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const logger = captureLogger();
  const sink = new MqttSink(mqttConfig(broker.url, { client_id: `topics-${Math.random().toString(16).slice(2)}` }), outboxConfig(tempDir(cleanup, 'topics')), { device, metrics, logger });
  cleanup.add(() => sink.stop());
  await sink.start();
  await new Promise<void>((resolve) => sink.once('connected', () => resolve()));
  const c = await Collector.connect(broker, ['ok/#'], 1);
  cleanup.add(() => c.close());
  return { sink, metrics, logger, c };
}

const BAD = ['reply/#', 'reply/+/x', 'reply/\u0001', 'reply/\u0085', 'reply/\uffff', ''];

describe('topics the broker refuses', () => {
  it('publishNow (a reply topic a remote client chose): refused, counted, logged; the connection stays', async () => {
    const { sink, metrics, logger, c } = await connectedSink();
    for (const topic of BAD) expect(await sink.publishNow(topic, Buffer.from('{}'), { qos: 1, retain: false }), JSON.stringify(topic)).toBe(false);
    expect(await sink.publishNow('ok/after', Buffer.from('{}'), { qos: 1, retain: false })).toBe(true);
    await c.waitCount('ok/', 1);
    expect(await counter(metrics.reconnects, { kind: 'mqtt' })).toBe(0);
    expect(await counter(metrics.dropped, { reason: 'topic_invalid' })).toBe(BAD.length);
    expect(logger.matching(/message dropped \(topic_invalid\): not published: '#' is a wildcard, not allowed in a topic name/)).toHaveLength(1);
  });

  it('publish at QoS 0 and QoS 1 (nothing stored for the resends): refused, counted; the connection stays', async () => {
    const { sink, metrics, c } = await connectedSink();
    for (const qos of [0, 1] as const) {
      for (const topic of BAD) expect(await sink.publish({ topic, payload: Buffer.from('x'), qos, retain: false, route: 'r' }), `${qos} ${JSON.stringify(topic)}`).toBe('rejected');
    }
    expect(await sink.publish({ topic: 'ok/after', payload: Buffer.from('x'), qos: 1, retain: false, route: 'r' })).toBe('accepted');
    await c.waitCount('ok/', 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(await counter(metrics.reconnects, { kind: 'mqtt' })).toBe(0);
    expect(await counter(metrics.dropped, { reason: 'topic_invalid' })).toBe(2 * BAD.length);
    expect((await metrics.outboxDepth.get()).values[0]?.value).toBe(0);
  });
});
