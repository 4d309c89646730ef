/**
 * The sink reads the PUBACKs of the QoS 1 messages it writes itself
 * (publish-packet.ts), so what a broker sends back is an input path of its
 * own. A broker written here (net + mqtt-packet) answers every PUBLISH with
 * a PUBACK twice, adds PUBACKs for ids nobody sent, and, in the second
 * case, garbage bytes: the agent stays up, counts each message once,
 * closes the connection on garbage (as MQTT says; mqtt.js alone only emits
 * an error and reads on), says why, reconnects, and loses nothing.
 */
import net from 'node:net';
import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import { Cleanup, tempDir } from '../helpers/net-helpers.js';
import { captureLogger, counter, device, mqttConfig, outboxConfig } from '../helpers/mqtt-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A broker that acknowledges each PUBLISH twice and sends stray PUBACKs; `garbageAfter` publishes, garbage once. */
async function hostileBroker(garbageAfter?: number): Promise<{ url: string; received: string[]; connections: number }> {
  const state = { url: '', received: [] as string[], connections: 0 };
  let garbageSent = false;
  const server = net.createServer((socket) => {
    state.connections++;
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const send = (p: mqttPacket.Packet): void => { socket.write(mqttPacket.generate(p)); };
    parser.on('packet', (p) => {
      if (p.cmd === 'connect') send({ cmd: 'connack', returnCode: 0, sessionPresent: false });
      else if (p.cmd === 'pingreq') send({ cmd: 'pingresp' });
      else if (p.cmd === 'publish') {
        if (p.topic.startsWith('data/')) state.received.push(p.payload.toString());
        if (p.qos === 0) return;
        send({ cmd: 'puback', messageId: p.messageId });
        send({ cmd: 'puback', messageId: p.messageId }); // again
        send({ cmd: 'puback', messageId: ((p.messageId ?? 0) + 30_000) % 65_535 + 1 }); // nobody's
        if (garbageAfter !== undefined && !garbageSent && state.received.length >= garbageAfter) {
          garbageSent = true;
          socket.write(Buffer.from([0x00, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xde, 0xad])); // packet type 0, a 5-byte length
        }
      }
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (d) => parser.parse(d));
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.add(() => new Promise<void>((r) => server.close(() => r())));
  state.url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return state;
}

async function sinkTo(url: string) {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const logger = captureLogger();
  const sink = new MqttSink(mqttConfig(url, { protocol_version: 4, client_id: 'hostile-{device}', reconnect: { initial_delay_ms: 50, max_delay_ms: 200 } }),
    outboxConfig(tempDir(cleanup, 'sink')), { device, metrics, logger, version: '9.9.9' });
  cleanup.add(() => sink.stop('test end'));
  await sink.start();
  await new Promise<void>((resolve) => sink.once('connected', () => resolve()));
  return { sink, metrics, logger };
}

async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('MqttSink against a broker that acknowledges twice, or not its own ids, or sends garbage', () => {
  it('duplicate and stray PUBACKs: every message counted once, none lost, no reconnection', async () => {
    const broker = await hostileBroker();
    const { sink, metrics } = await sinkTo(broker.url);
    for (let i = 0; i < 300; i++) sink.submit({ topic: `data/${i % 3}`, payload: Buffer.from(String(i)), qos: 1, retain: false, route: 'r' });
    await until(async () => (await counter(metrics.published, { qos: '1' })) >= 300, 10_000, '300 acknowledged');
    await new Promise((r) => setTimeout(r, 200)); // room for a double count to show
    expect(await counter(metrics.published, { qos: '1' })).toBe(300);
    expect(new Set(broker.received).size).toBe(300);
    expect(broker.received.map(Number)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(await counter(metrics.reconnects, { kind: 'mqtt' })).toBe(0);
    expect(sink.connected).toBe(true);
  });

  it('garbage bytes: the connection is dropped and made again, and every message arrives (at least once)', async () => {
    const broker = await hostileBroker(50);
    const { sink, metrics, logger } = await sinkTo(broker.url);
    for (let i = 0; i < 300; i++) sink.submit({ topic: `data/${i % 3}`, payload: Buffer.from(String(i)), qos: 1, retain: false, route: 'r' });
    await until(async () => (await counter(metrics.published, { qos: '1' })) >= 300, 15_000, '300 acknowledged');
    expect(logger.matching(/mqtt: connection to .* lost: .*Invalid variable byte integer/)).toHaveLength(1);
    expect(new Set(broker.received).size).toBe(300);
    expect(broker.connections).toBeGreaterThanOrEqual(2);
    expect(await counter(metrics.reconnects, { kind: 'mqtt' })).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(await counter(metrics.published, { qos: '1' })).toBe(300);
    expect(sink.connected).toBe(true);
  });
});
