/**
 * The mqtt.js options the sink builds for each connection attempt
 * (src/sinks/mqtt/connect-options.ts): the ones that make the sink's own
 * bounds and reconnection the only ones, and the start-up and memory choice
 * of no number cache.
 */
import { expect, it } from 'vitest';
import { buildConnectOptions } from '../../src/sinks/mqtt/connect-options.js';
import { defaultSecretReader } from '../../src/sinks/mqtt/secrets-reader.js';
import { device, mqttConfig } from '../helpers/mqtt-helpers.js';

it('leaves reconnection, QoS 0 queueing and resubscription to the sink, and builds no number cache', () => {
  const opts = buildConnectOptions({
    config: mqttConfig('mqtt://127.0.0.1:1883'),
    device,
    secrets: defaultSecretReader,
    tls: undefined,
    will: { topic: 'afb-edge/car-042/status', payload: Buffer.from('{}') },
    connectTimeoutMs: 5000,
    sessionExpiryS: 3600,
  });
  expect(opts).toMatchObject({ reconnectPeriod: 0, queueQoSZero: false, resubscribe: false, writeCache: false, connectTimeout: 5000 });
  expect(opts.will).toEqual({ topic: 'afb-edge/car-042/status', payload: Buffer.from('{}'), qos: 1, retain: true });
});
