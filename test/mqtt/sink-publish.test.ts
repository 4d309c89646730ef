/**
 * MqttSink against a real broker, MQTT 3.1.1 and 5: QoS 0/1/2 and retain
 * seen by a plain mqtt.js subscriber, the retained online/offline status
 * (birth, will when the socket dies, offline with the reason on stop),
 * publishNow with MQTT 5 properties, subscriptions kept across reconnects.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { captureLogger, Collector, counter, device, lastJson, mqttConfig, outboxConfig, TcpProxy } from '../helpers/mqtt-helpers.js';

let broker: Broker;
beforeAll(async () => { broker = await startBroker({ persistence: false }); });
afterAll(() => broker?.close());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const STATUS = 'fleet/car-042/status';

for (const version of [4, 5] as const) {
  describe(`MqttSink, MQTT ${version === 5 ? '5' : '3.1.1'}`, () => {
    // aedes (the fallback when mosquitto is missing) has no MQTT 5: say so instead of failing
    const v5Missing = (): boolean => {
      if (version === 5 && !broker.supportsV5) {
        console.warn(`[skip] MQTT 5 test not run: the ${broker.kind} fallback broker does not speak MQTT 5 (install mosquitto)`);
        return true;
      }
      return false;
    };

    async function makeSink(url = broker.url, metrics = new AgentMetrics({ defaultMetrics: false })) {
      const logger = captureLogger();
      const sink = new MqttSink(mqttConfig(url, { protocol_version: version, client_id: `sink-v${version}-{device}` }), outboxConfig(tempDir(cleanup, 'sink')), { device, metrics, logger, version: '9.9.9' });
      cleanup.add(() => sink.stop('test end'));
      await sink.start();
      await new Promise<void>((resolve) => sink.once('connected', () => resolve()));
      return { sink, metrics, logger };
    }

    async function collector(filters: string[], qos: 0 | 1 | 2 = 2): Promise<Collector> {
      const c = await Collector.connect(broker, filters, qos, { protocolVersion: version });
      cleanup.add(() => c.close());
      return c;
    }

    it('delivers QoS 0, 1 and 2 messages; retained ones are kept by the broker with the retain flag', async () => {
      if (v5Missing()) return;
      const live = await collector([`v${version}/qos/#`]);
      const { sink, metrics } = await makeSink();
      const topic = (q: number): string => `v${version}/qos/${q}`;
      for (const qos of [0, 1, 2] as const) {
        expect(await sink.publish({ topic: topic(qos), payload: Buffer.from(`q${qos}`), qos, retain: qos !== 1, route: 'r' })).toBe('accepted');
      }
      await live.waitCount(`v${version}/qos/`, 3);
      expect(live.messages.map((m) => [m.topic, m.text, m.qos]).sort()).toEqual([[topic(0), 'q0', 0], [topic(1), 'q1', 1], [topic(2), 'q2', 2]]);
      await expect.poll(() => counter(metrics.published, { qos: '2' })).toBe(1);
      expect(await counter(metrics.published, { qos: '1' })).toBe(1);
      expect(await counter(metrics.published, { qos: '0' })).toBe(1);
      // a late subscriber gets only the retained ones, flagged retained
      const late = await collector([`v${version}/qos/#`]);
      await late.waitCount(`v${version}/qos/`, 2);
      await new Promise((r) => setTimeout(r, 100));
      expect(late.messages.map((m) => [m.topic, m.retain]).sort()).toEqual([[topic(0), true], [topic(2), true]]);
    });

    it('status: online (retained) on connect, offline by the will when the socket dies, offline with the reason on stop', async () => {
      if (v5Missing()) return;
      const proxy = await TcpProxy.start(broker.port);
      cleanup.add(() => proxy.block());
      const { sink } = await makeSink(proxy.url);
      const watcher = await collector([STATUS], 1);
      await watcher.waitFor(() => lastJson(watcher, STATUS)?.state === 'online', 3000, 'online status');
      expect(watcher.on(STATUS).at(-1)!.retain).toBe(true); // it was retained: a new subscriber got it
      expect(lastJson(watcher, STATUS)).toMatchObject({ state: 'online', reason: 'started', device: 'car-042', labels: { fleet: 'test', model: 'sim' }, version: '9.9.9' });
      expect(lastJson(watcher, STATUS)!.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

      proxy.cut(); // the agent's connection dies without DISCONNECT
      await watcher.waitFor(() => lastJson(watcher, STATUS)?.state === 'offline', 3000, 'will');
      expect(lastJson(watcher, STATUS)).toMatchObject({ state: 'offline', reason: 'connection lost', device: 'car-042' });
      expect(lastJson(watcher, STATUS)).not.toHaveProperty('ts'); // made at connect time, published later: no time that could lie
      await watcher.waitFor(() => lastJson(watcher, STATUS)?.state === 'online', 3000, 'online again');
      expect(lastJson(watcher, STATUS)!.reason).toBe('reconnected');

      await sink.stop('maintenance');
      await watcher.waitFor(() => lastJson(watcher, STATUS)?.state === 'offline', 3000, 'offline on stop');
      expect(lastJson(watcher, STATUS)).toMatchObject({ state: 'offline', reason: 'maintenance' });
      await new Promise((r) => setTimeout(r, 200));
      expect(lastJson(watcher, STATUS)!.reason).toBe('maintenance'); // a clean DISCONNECT: no will after it
      const late = await collector([STATUS], 1);
      await late.waitFor(() => late.on(STATUS).length === 1, 3000, 'retained status');
      expect(late.on(STATUS)[0]!.retain).toBe(true);
      expect(lastJson(late, STATUS)!.reason).toBe('maintenance');
    });

    it('publishNow sends without the outbox (MQTT 5 properties included) and reports failure when offline', async () => {
      if (v5Missing()) return;
      const c = await collector([`v${version}/reply/#`], 1);
      let props: Record<string, unknown> | undefined;
      c.client.on('message', (_t, _p, packet) => { props = packet.properties as Record<string, unknown> | undefined; });
      const { sink } = await makeSink();
      const ok = await sink.publishNow(`v${version}/reply/1`, Buffer.from('{"ok":true}'), {
        qos: 1, retain: false, properties: { correlationData: Buffer.from('c-1'), userProperties: { kind: 'reply' } },
      });
      expect(ok).toBe(true);
      await c.waitCount(`v${version}/reply/`, 1);
      if (version === 5) {
        expect(Buffer.from(props!.correlationData as Buffer).toString()).toBe('c-1');
        expect(props!.userProperties).toEqual({ kind: 'reply' });
      } else {
        expect(props).toBeUndefined();
      }
      await sink.stop();
      expect(await sink.publishNow(`v${version}/reply/2`, Buffer.from('x'), { qos: 1, retain: false })).toBe(false);
    });

    it('publishNow refuses a topic the broker would drop the connection for, and stays connected', async () => {
      if (v5Missing()) return;
      const c = await collector([`v${version}/guard/#`], 1);
      const { sink, metrics, logger } = await makeSink();
      for (const bad of [`v${version}/guard/\u0001`, `v${version}/guard/#`, `v${version}/guard/\ud800`, '']) {
        expect(await sink.publishNow(bad, Buffer.from('x'), { qos: 1, retain: false }), JSON.stringify(bad)).toBe(false);
      }
      expect(await sink.publishNow(`v${version}/guard/ok`, Buffer.from('x'), { qos: 1, retain: false })).toBe(true);
      await c.waitCount(`v${version}/guard/`, 1);
      expect(await counter(metrics.dropped, { reason: 'topic_invalid' })).toBe(4);
      expect(await counter(metrics.reconnects, { kind: 'mqtt' })).toBe(0);
      expect(logger.matching(/not published: .*control character/).length).toBe(1);
    });

    it('a burst of QoS 1 messages: all delivered in order, in flight bounded (MQTT 5: by the broker\'s Receive Maximum)', async () => {
      if (v5Missing()) return;
      const c = await collector([`v${version}/burst/#`], 1);
      const { sink, metrics } = await makeSink();
      const N = 500;
      const r = await Promise.all(Array.from({ length: N }, (_, i) => sink.publish({ topic: `v${version}/burst/t`, payload: Buffer.from(String(i)), qos: 1, retain: false, route: 'r' })));
      expect(r.every((x) => x === 'accepted')).toBe(true);
      await c.waitCount(`v${version}/burst/`, N, 10_000);
      expect(c.messages.map((m) => Number(m.text))).toEqual(Array.from({ length: N }, (_, i) => i));
      expect(await counter(metrics.reconnects, { kind: 'mqtt' })).toBe(0);
      // mosquitto announces Receive Maximum 20 to MQTT 5 clients (and, unlike stricter brokers, tolerates more): check the window itself
      expect(sink.stats.inflightLimit).toBe(version === 5 ? 20 : 50);
      expect(sink.stats.inflightPeak).toBe(sink.stats.inflightLimit);
      await expect.poll(() => counter(metrics.published, { qos: '1' })).toBe(N);
    });

    it('subscriptions are made again after a reconnection', async () => {
      if (v5Missing()) return;
      const proxy = await TcpProxy.start(broker.port);
      cleanup.add(() => proxy.block());
      const { sink, metrics } = await makeSink(proxy.url);
      const got: string[] = [];
      expect(await sink.subscribe(`v${version}/cmd/+`, 1, (topic, payload) => got.push(`${topic}=${payload}`))).toBe(true);
      const sender = await collector(['unused/none']);
      await sender.client.publishAsync(`v${version}/cmd/a`, 'one', { qos: 1 });
      await expect.poll(() => got).toEqual([`v${version}/cmd/a=one`]);
      const resubscribed = new Promise<{ ok: boolean }>((resolve) => sink.once('resubscribed', resolve));
      proxy.cut();
      expect(await resubscribed).toEqual({ ok: true }); // after the SUBACK of the new connection
      await sender.client.publishAsync(`v${version}/cmd/b`, 'two', { qos: 1 });
      await expect.poll(() => got).toEqual([`v${version}/cmd/a=one`, `v${version}/cmd/b=two`]);
      expect(await counter(metrics.reconnects, { kind: 'mqtt' })).toBe(1);
    });
  });
}
