/**
 * An slcan link with a DBC file beside its YAML messages, on real ptys
 * (socat): frames become events named after the DBC message with physical
 * values, VAL_ labels and raw values; sends take labels and set the
 * multiplexer from the signals given; a DBC frame longer than classic CAN
 * is refused with a reason (slcan carries 8 bytes).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { LinuxBinding } from '@serialport/bindings-cpp';
import type { SerialPortStream } from '@serialport/stream';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { LinkError } from '../../src/serial/link/link-protocol.js';
import { SerialLink } from '../../src/serial/link/serial-link.js';
import { captureLogger } from '../helpers/mqtt-helpers.js';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';
import { openPeer, ptyPair } from '../helpers/pty.js';
import { GEARBOX_DBC } from '../helpers/dbc-fixtures.js';
import { linkConfig } from '../helpers/serial-config.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());


function slcanAdapter(port: SerialPortStream): { commands: string[] } {
  const commands: string[] = [];
  let buf = '';
  port.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (let i = buf.indexOf('\r'); i >= 0; i = buf.indexOf('\r')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'F') port.write('F00\r');
      else {
        commands.push(line);
        port.write(/^[tT]/.test(line) ? (line[0] === 'T' ? 'Z\r' : 'z\r') : '\r');
      }
    }
  });
  return { commands };
}

describe('SerialLink slcan with a DBC file', () => {
  it('decodes DBC messages (labels, raw, units) beside YAML messages, and sends DBC messages from labels with the multiplexer set', async () => {
    const dir = tempDir(cleanup, 'serial-dbc');
    const dbc = path.join(dir, 'gearbox.dbc');
    writeFileSync(dbc, GEARBOX_DBC);
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    const adapter = slcanAdapter(peer);
    const config = linkConfig({
      device: pty.device, protocol: 'slcan', slcan: { adapter: 'lawicel', timestamps: false, status_interval_ms: 0 }, dbc: [dbc],
      messages: [{ id: 0x100, name: 'Speed', signals: [{ name: 'kmh', start_bit: 0, length: 16, scale: 0.01 }] }],
    });
    const link = new SerialLink(config, { logger: captureLogger(), metrics: new AgentMetrics({ defaultMetrics: false }), binding: LinuxBinding });
    const events: Array<[string, unknown]> = [];
    link.on('event', (name: string, data: unknown) => events.push([name, data]));
    cleanup.add(() => link.stop());
    link.start();
    await waitFor(() => link.isOpen, 5000, 'link open');

    peer.write('T18FEF1FE80F5A000000000000\r'); // Gear 15 (label), OilTemp raw 0x5A = 90 → 50 degC
    peer.write('t70080100000BB8000000\r'); // Page 1: Odometer raw 3000 → 300 km
    peer.write('t10021027\r'); // YAML map: 100 km/h
    peer.write('t6FF0\r'); // nothing describes it
    await waitFor(() => events.length === 4, 3000, 'four frames');
    expect(events[0]).toEqual(['TC1', { id: 0x18fef1fe, extended: true, rtr: false, dlc: 8, data: '0f5a000000000000', values: { Gear: 'Invalid', OilTemp: 50 }, units: { OilTemp: 'degC' }, raw: { Gear: 15, OilTemp: 90 } }]);
    expect(events[1]).toEqual(['Diag', expect.objectContaining({ values: { Page: 1, Odometer: 300 }, raw: { Page: 1, Odometer: 3000 }, units: { Odometer: 'km' } })]);
    expect(events[2]).toEqual(['Speed', expect.objectContaining({ values: { kmh: 100 }, units: {} })]);
    expect(events[3]![0]).toBe('6FF');

    link.send({ message: 'TC1', values: { Gear: 'Neutral', OilTemp: 20 } });
    link.send({ message: 'Diag', values: { Serial: 0x01020304 } });
    link.send({ message: 'Speed', values: { kmh: 50 } });
    await waitFor(() => adapter.commands.length === 7, 3000, 'three frames written');
    expect(adapter.commands.slice(4)).toEqual(['T18FEF1FE8003C000000000000', 't70080201020304000000', 't10028813']);

    expect(() => link.send({ message: 'TC1', values: { Gear: 'Reverse' } })).toThrow(/TC1\.Gear: "Reverse" is not one of its labels/);
    expect(() => link.send({ message: 'TC1', values: { OilTemp: 200 } })).toThrow('TC1.OilTemp = 200: above the maximum 150 of the DBC');
    expect(() => link.send({ message: 'Speed', values: { kmh: 'fast' } })).toThrow('Speed.kmh: "fast" is not a number');
    expect(() => link.send({ message: 'Wide', values: {} })).toThrow(LinkError);
    expect(() => link.send({ message: 'Wide', values: {} })).toThrow(/more than 8|at most 8|8 bytes/);
  });
});
