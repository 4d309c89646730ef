/**
 * The broker address the agent's own stream builder derives from the config
 * URL (src/sinks/mqtt/mqtt-transport.ts). Connections over TCP and TLS are
 * exercised against mosquitto by the sink tests (sink-publish, sink-tls).
 */
import { describe, expect, it } from 'vitest';
import { brokerAddress, connectMqtt } from '../../src/sinks/mqtt/mqtt-transport.js';

describe('brokerAddress', () => {
  it('takes the port from the URL, or the scheme\'s default', () => {
    expect(brokerAddress('mqtt://broker.example.com')).toEqual({ tls: false, host: 'broker.example.com', port: 1883 });
    expect(brokerAddress('tcp://10.0.0.2:1884')).toEqual({ tls: false, host: '10.0.0.2', port: 1884 });
    expect(brokerAddress('mqtts://broker.example.com')).toEqual({ tls: true, host: 'broker.example.com', port: 8883 });
    expect(brokerAddress('ssl://broker.example.com:9883')).toEqual({ tls: true, host: 'broker.example.com', port: 9883 });
  });

  it('unwraps IPv6 literals', () => {
    expect(brokerAddress('mqtt://[::1]:1883')).toEqual({ tls: false, host: '::1', port: 1883 });
  });

  it('refuses the transports the agent does not load, naming the URL', () => {
    expect(() => brokerAddress('ws://broker.example.com/mqtt')).toThrow(/unsupported broker URL scheme 'ws:' in ws:\/\/broker\.example\.com\/mqtt/);
    expect(() => brokerAddress('wss://b:443')).toThrow(/mqtt:\/\/ or mqtts:\/\//);
  });
});

describe('connectMqtt', () => {
  it('returns an mqtt.js client that reports a refused connection as an error event', async () => {
    // Port 9 (discard) on loopback: nothing listens in the test environment.
    const client = connectMqtt('mqtt://127.0.0.1:9', { reconnectPeriod: 0, connectTimeout: 2000 });
    const err = await new Promise<Error & { code?: unknown }>((resolve) => client.once('error', (e) => resolve(e)));
    expect(err.code).toBe('ECONNREFUSED');
    client.end(true);
  });
});
