/**
 * A JSON link (NDJSON on a real pty) whose MCU gateways a CAN FD bus: `can`
 * events are decoded with the link's DBC like slcan frames (64-byte
 * payloads included), malformed ones are counted as bad-can-frame, and a
 * routed DBC message goes out as a `can` event.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { LinuxBinding } from '@serialport/bindings-cpp';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { SerialLink } from '../../src/serial/link/serial-link.js';
import { encodeLine, NdjsonDecoder } from '../../src/serial/ndjson-codec.js';
import { GEARBOX_DBC } from '../helpers/dbc-fixtures.js';
import { captureLogger, counter } from '../helpers/mqtt-helpers.js';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';
import { openPeer, ptyPair } from '../helpers/pty.js';
import { linkConfig } from '../helpers/serial-config.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('JSON link carrying CAN frames', () => {
  it('decodes can events with the DBC (CAN FD length too), counts malformed ones, sends routed DBC messages as can events', async () => {
    const dir = tempDir(cleanup, 'json-can');
    const dbc = path.join(dir, 'gearbox.dbc');
    writeFileSync(dbc, GEARBOX_DBC);
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    const fromAgent: unknown[] = [];
    const dec = new NdjsonDecoder();
    peer.on('data', (d: Buffer) => fromAgent.push(...dec.push(d)));
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const link = new SerialLink(linkConfig({ device: pty.device, protocol: 'ndjson', dbc: [dbc] }), { logger: captureLogger(), metrics, binding: LinuxBinding });
    const events: Array<[string, unknown]> = [];
    link.on('event', (name: string, data: unknown) => events.push([name, data]));
    cleanup.add(() => link.stop());
    link.start();
    await waitFor(() => link.isOpen, 5000, 'link open');

    peer.write(encodeLine({ event: 'can', data: { id: 0x18fef1fe, extended: true, data: '005A000000000000' } }));
    peer.write(encodeLine({ event: 'can', data: { id: 0x701, data: '0000000000000000000000FE' } }));
    peer.write(encodeLine({ event: 'can', data: { id: 0x800, data: '00' } }));
    peer.write(encodeLine({ event: 'temperature', data: { celsius: 21.5 } }));
    await waitFor(() => events.length === 3, 3000, 'three events');
    expect(events[0]).toEqual(['TC1', { id: 0x18fef1fe, extended: true, rtr: false, dlc: 8, data: '005a000000000000', values: { Gear: 'Neutral', OilTemp: 50 }, units: { OilTemp: 'degC' }, raw: { Gear: 0, OilTemp: 90 } }]);
    expect(events[1]).toEqual(['Wide', expect.objectContaining({ dlc: 12, values: { Tail: 0xfe } })]);
    expect(events[2]).toEqual(['temperature', { celsius: 21.5 }]);
    expect(await counter(metrics.serialRejected, { link: 'ecu0', reason: 'bad-can-frame' })).toBe(1);

    link.sendRouted({ event: 'vehicle/gear', data: { gear: 'Neutral' }, message: 'TC1', values: { Gear: 'Invalid', OilTemp: 0 } });
    await waitFor(() => fromAgent.length === 1, 3000, 'routed frame');
    expect(fromAgent[0]).toEqual({ event: 'can', data: { id: 0x18fef1fe, extended: true, data: '0f28000000000000' } });
  });
});
