/**
 * EcuSimulator used in-process on @serialport/binding-mock, as a demo does
 * where socat is missing: the mock port records what the simulator writes
 * and `emitData` plays the host.
 */
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it } from 'vitest';
// binding-mock's package "exports" give ESM importers no types: take its CommonJS build, typed by its index.d.ts.
import type { MockBindingInterface, MockPortBinding } from '@serialport/binding-mock' with { 'resolution-mode': 'require' };
import { SerialPortStream } from '@serialport/stream';
import { EcuSimulator } from '../../src/sim/ecu-sim.js';
import { NdjsonDecoder, encodeLine } from '../../src/serial/ndjson-codec.js';
import { SlcanDecoder, type CanFrame } from '../../src/serial/slcan-codec.js';
import { waitFor } from '../helpers/net-helpers.js';

const { MockBinding } = createRequire(import.meta.url)('@serialport/binding-mock') as { MockBinding: MockBindingInterface };

let opened: Array<{ sim: EcuSimulator; port: SerialPortStream }> = [];

afterEach(async () => {
  for (const { sim, port } of opened) {
    sim.stop();
    if (port.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }
  opened = [];
  MockBinding.reset();
});

async function mockPort(path: string): Promise<{ port: SerialPortStream; mock: MockPortBinding }> {
  MockBinding.createPort(path, { echo: false, record: true });
  const port = new SerialPortStream({ binding: MockBinding, path, baudRate: 115_200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return { port, mock: port.port as MockPortBinding };
}

describe('EcuSimulator in-process on binding-mock', () => {
  it('ndjson: events up to --count, a reply to a request, the received message reported', async () => {
    const { port, mock } = await mockPort('/dev/ECUSIM0');
    const received: unknown[] = [];
    const sim = new EcuSimulator(port, { protocol: 'ndjson', rate: 2000, count: 20, onReceive: (m) => received.push(m) });
    opened.push({ sim, port });
    const done = new Promise((r) => sim.once('done', r));
    sim.start();
    mock.emitData(encodeLine({ id: 1, verb: 'ping' }));
    await done;
    // The mock records a write when its (async) write completes: wait for the last counter and the reply.
    await waitFor(() => mock.recording.includes('"n":19') && mock.recording.includes('"pong"'), 3000, 'the last counter and the reply recorded');
    const messages = new NdjsonDecoder().push(mock.recording) as Array<Record<string, unknown>>;
    expect(messages.filter((m) => m.event === 'counter').map((m) => m.data)).toEqual(Array.from({ length: 20 }, (_, n) => ({ n })));
    expect(messages).toContainEqual({ id: 1, result: 'pong' });
    expect(received).toEqual([{ id: 1, verb: 'ping' }]);
    expect(sim.stats).toMatchObject({ periodicSent: 39, countersSent: 20, received: 1 });
    expect(sim.done).toBe(true);
  });

  it('slcan: silent until the host opens the channel, then frames and OBD answers', async () => {
    const { port, mock } = await mockPort('/dev/ECUSIM1');
    const sim = new EcuSimulator(port, { protocol: 'slcan', rate: 500 });
    opened.push({ sim, port });
    sim.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(mock.recording).toHaveLength(0);

    mock.emitData('O\rt7DF302010D\r');
    await waitFor(() => mock.recording.includes('t7E8'), 3000, 'the OBD answer');
    const items = new SlcanDecoder().push(mock.recording);
    expect(items[0]).toEqual({ kind: 'ok' });
    const frames = items.flatMap((i) => (i.kind === 'frame' ? [i.frame] : [])) as CanFrame[];
    expect(frames[0]!.id).toBe(0x200);
    const answer = frames.find((f) => f.id === 0x7e8)!;
    expect([...answer.data.subarray(0, 3)]).toEqual([0x03, 0x41, 0x0d]);
    sim.stop();
    const at = mock.recording.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(mock.recording.length, 'nothing written after stop()').toBe(at);
  });
});
