/**
 * A DBC file on a link through the whole agent, in process: the config is a
 * real YAML file naming the DBC by a relative path (loaded by the real
 * loader), the CAN adapter a real pty (socat) spoken to with the slcan
 * codec, the broker a real mosquitto, the binder the simulated one.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SerialPortStream } from '@serialport/stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { loadConfigFile } from '../../src/config/load.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { SlcanDecoder, type CanFrame } from '../../src/serial/slcan-codec.js';
import { SimulatedBinder } from '../../src/sim/simulated-binder.js';
import { startBroker } from '../helpers/broker.js';
import { GEARBOX_DBC } from '../helpers/dbc-fixtures.js';
import { Collector, captureLogger } from '../helpers/mqtt-helpers.js';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';
import { openPeer, ptyPair } from '../helpers/pty.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function slcanEcu(port: SerialPortStream): { sent: CanFrame[] } {
  const sent: CanFrame[] = [];
  let line = '';
  port.on('data', (d: Buffer) => {
    for (const ch of d.toString('latin1')) {
      if (ch !== '\r') { line += ch; continue; }
      if (/^[CSZOL]/.test(line)) port.write('\r');
      else if (line.startsWith('t') || line.startsWith('T')) {
        const [item] = new SlcanDecoder().push(Buffer.from(line + '\r', 'latin1'));
        if (item?.kind === 'frame') sent.push(item.frame);
      }
      line = '';
    }
  });
  return { sent };
}

describe('agent: a link with a DBC file', () => {
  it('publishes DBC-decoded frames (labels, raw, units) to MQTT and encodes routed binder events through the DBC', async () => {
    const b = await startBroker();
    cleanup.add(() => b.close());
    const dir = tempDir(cleanup, 'agent-dbc');
    writeFileSync(join(dir, 'gearbox.dbc'), GEARBOX_DBC);
    const sim = new SimulatedBinder({ api: 'vehicle', periodMs: 20 });
    await sim.listen(`unix:${join(dir, 'vehicle')}`);
    cleanup.add(() => sim.close());
    const pty = await ptyPair(cleanup, dir, 'can');
    const peer = await openPeer(cleanup, pty.peer);
    const ecu = slcanEcu(peer);
    writeFileSync(join(dir, 'afb-edge.yaml'), `device: { id: car-042 }
mqtt:
  url: ${b.url}
  protocol_version: ${b.supportsV5 ? 5 : 4}
  topic_prefix: fleet
  status_interval_s: 0
  reconnect: { initial_delay_ms: 50, max_delay_ms: 300 }
outbox: { path: ${join(dir, 'outbox.db')}, synchronous: normal }
binders:
  - name: car
    spec: unix:${join(dir, 'vehicle')}
    subscribe: [{ verb: subscribe, args: { event: speed } }]
serial:
  links:
    - name: can0
      device: ${pty.device}
      protocol: slcan
      slcan: { timestamps: false, status_interval_ms: 0 }
      reopen: { initial_delay_ms: 50, max_delay_ms: 200 }
      dbc: [gearbox.dbc]
routes:
  - name: can
    match: ['can0/*']
    sources: [can0]
    payload: raw
    topic: '{prefix}/{device}/ecu/{source}/{event}'
  - name: to-gearbox
    match: [vehicle/speed]
    sources: [car]
    link: { name: can0, message: TC1, values: { OilTemp: value } }
`);
    const loaded = loadConfigFile(join(dir, 'afb-edge.yaml'));
    expect(loaded.errors).toEqual([]);
    const c = await Collector.connect(b, ['fleet/#'], 1);
    cleanup.add(() => c.close());
    const logger = captureLogger();
    const agent = new Agent(loaded.config!, { logger, version: 'test', metrics: new AgentMetrics({ defaultMetrics: false }) });
    await agent.start();
    cleanup.add(() => agent.stop('test over'));
    await waitFor(() => (agent.health().links as Record<string, string> | undefined)?.can0 === 'open', 8000, 'link open', 20);

    peer.write('T18FEF1FE80F5A000000000000\r');
    await c.waitFor((m) => m.some((x) => x.topic === 'fleet/car-042/ecu/can0/TC1'), 5000, 'TC1 on MQTT');
    expect(JSON.parse(c.on('fleet/car-042/ecu/can0/TC1')[0]!.text)).toEqual({
      id: 0x18fef1fe, extended: true, rtr: false, dlc: 8, data: '0f5a000000000000',
      values: { Gear: 'Invalid', OilTemp: 50 }, units: { OilTemp: 'degC' }, raw: { Gear: 15, OilTemp: 90 },
    });
    expect(logger.lines.some((l) => l.includes(`link can0: ${join(dir, 'gearbox.dbc')}: 3 messages; skipped: CM_ 1`))).toBe(true);

    // vehicle/speed (20..100) → TC1.OilTemp, raw = value + 40, Gear left out = 0
    await waitFor(() => ecu.sent.length >= 3, 8000, 'TC1 frames on the bus', 20);
    for (const f of ecu.sent.slice(0, 3)) {
      expect(f).toMatchObject({ id: 0x18fef1fe, extended: true, dlc: 8 });
      expect(f.data[0]).toBe(0);
      expect(f.data[1]! - 40).toBeGreaterThanOrEqual(20);
      expect(f.data[1]! - 40).toBeLessThanOrEqual(100);
    }
  });
});
