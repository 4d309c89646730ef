/**
 * The verbs a serial link answers as a command target (SerialSource.call):
 * the dispatch only, on links that are not open (the I/O is tested on ptys).
 */
import { LinuxBinding } from '@serialport/bindings-cpp';
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { SerialSource } from '../../src/sources/serial/serial-source.js';
import { captureLogger } from '../helpers/mqtt-helpers.js';
import { linkConfig } from '../helpers/serial-config.js';

function source(over: Parameters<typeof linkConfig>[0]): SerialSource {
  return new SerialSource(linkConfig(over), { metrics: new AgentMetrics({ defaultMetrics: false }), logger: captureLogger(), binding: LinuxBinding, onEvent: () => undefined });
}

describe('SerialSource as a command target', () => {
  it('relays any verb to a JSON link as a named request, but not to slcan or raw links', async () => {
    const json = source({ device: '/dev/null', protocol: 'ndjson' });
    const slcan = source({ device: '/dev/null', protocol: 'slcan' });
    const raw = source({ device: '/dev/null', protocol: 'cobs', cobs: { payload: 'raw' } });
    // the JSON link takes the verb (and fails only because it is not open)
    expect(await json.call('get', '{"key":"fan"}')).toMatchObject({ error: 'disconnected' });
    for (const s of [slcan, raw]) expect(await s.call('get', '{}')).toMatchObject({ error: 'unknown-verb', info: expect.stringContaining('send, request, info') });
  });

  it('answers info, refuses sends while closed, and bad JSON arguments', async () => {
    const s = source({ device: '/dev/null', protocol: 'slcan' });
    expect(await s.call('info', 'null')).toMatchObject({ error: null, data: { name: 'ecu0', protocol: 'slcan', state: 'closed' } });
    expect(await s.call('send', '{"id":1,"data":"00"}')).toMatchObject({ error: 'disconnected' });
    expect(await s.call('send', '{not json')).toMatchObject({ error: 'invalid-request' });
    expect(await s.subscribeOnDemand()).toMatchObject({ error: 'not-supported' });
  });
});
