/**
 * Every slcan adapter dialect end to end: `afb-edge ecu-sim --protocol slcan
 * --adapter X` (a separate process, each firmware's command behaviour) on
 * one end of a socat pty pair, the agent (Agent, the system serialport
 * binding, `slcan.adapter: auto`) on the other, a real mosquitto. The agent
 * must pick the dialect from the adapter's answers, say so in the link's
 * info, deliver every counter to MQTT without a gap, answer an OBD-II
 * request sent through MQTT, and send each adapter only the commands its
 * firmware has (read from the sim's debug log of the commands it received).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { ECU_SIM_SIGNAL_MAP, SIM_ADAPTERS } from '../../src/sim/ecu-sim.js';
import { startBroker } from '../helpers/broker.js';
import { ensureBuilt } from '../helpers/cli.js';
import { Collector, captureLogger, counter } from '../helpers/mqtt-helpers.js';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';
import { ptyPair } from '../helpers/pty.js';
import { agentConfig } from '../helpers/serial-config.js';
import { startSim as startSimProcess } from '../sim/ecu-sim-harness.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** The simulator through bin/afb-edge, with its debug log: the command lines the adapter received. */
async function startSim(args: string[]) {
  ensureBuilt();
  const sim = await startSimProcess(cleanup, [...args, '--log-level', 'debug'], { launcher: true });
  return { ...sim, commands: () => [...sim.stderr().matchAll(/ecu-sim slcan \(\w+\): command "([^"]*)"/g)].map((m) => m[1]!) };
}

const COUNT = 300;
/** What each firmware must receive from the agent, first (then only F polls, where it has F). */
const EXPECTED_SETUP: Record<string, string[]> = {
  lawicel: ['C', 'V', 'v', 'S6', 'Z1', 'O'],
  usbtin: ['C', 'V', 'v', 'S6', 'Z1', 'O'],
  canable: ['C', 'V', 'v', 'S6', 'M0', 'O'],
};

describe('agent ↔ afb-edge ecu-sim, every slcan adapter dialect (adapter: auto)', () => {
  for (const adapter of SIM_ADAPTERS) {
    it(`${adapter}: probed and named in the link info, ${COUNT} counters in order to MQTT, an OBD-II request through MQTT answered, no command the firmware lacks`, async () => {
      const b = await startBroker();
      cleanup.add(() => b.close());
      const dir = tempDir(cleanup, 'agent-slcan');
      const pty = await ptyPair(cleanup, dir, 'can');
      // The adapter is plugged in before the agent opens it (a USB adapter's tty exists only then).
      const sim = await startSim(['--protocol', 'slcan', '--adapter', adapter, '--device', pty.peer, '--rate', '1000', '--count', String(COUNT)]);

      const metrics = new AgentMetrics({ defaultMetrics: false });
      const logger = captureLogger();
      const cfg = agentConfig({
        mqtt: { url: b.url, protocol_version: 4, topic_prefix: 'fleet', status_interval_s: 0 },
        outbox: { path: join(dir, 'outbox.db'), synchronous: 'normal' },
        serial: { links: [{
          name: 'can0', device: pty.device, protocol: 'slcan', messages: ECU_SIM_SIGNAL_MAP.messages,
          slcan: { status_interval_ms: 100 }, reopen: { initial_delay_ms: 50, max_delay_ms: 200 },
        }] },
        routes: [{ name: 'counters', match: ['can0/Sequence'], payload: 'raw', qos: 1 }],
        commands: { enabled: true, allow: [{ binder: 'can0', verbs: ['request', 'info'] }] },
      });
      const collector = await Collector.connect(b, ['fleet/#'], 1);
      cleanup.add(() => collector.close());
      const agent = new Agent(cfg, { logger, version: 'test', metrics });
      await agent.start();
      cleanup.add(() => agent.stop('test over'));

      await waitFor(() => agent.serialLink('can0')?.isOpen === true, 8000, 'link open', 20);
      const stats = agent.serialLink('can0')!.info().stats;
      expect(stats.adapter).toBe(adapter);
      expect(stats.adapter_reason).toMatch(/^probed: /);
      expect(logger.matching(new RegExp(`<info> link can0: slcan on .* open: adapter ${adapter} \\(probed: `))).toHaveLength(1);

      const topic = 'fleet/car-042/events/can0/Sequence';
      await collector.waitCount(topic, COUNT, 20_000);
      const ns = collector.on(topic).map((m) => (JSON.parse(m.text) as { values: { counter: number } }).values.counter);
      expect(ns).toEqual(Array.from({ length: COUNT }, (_, i) => i));

      // OBD-II engine speed through MQTT: the frame goes out on 0x7DF, the answer on 0x7E8 comes back as the reply.
      await collector.client.publishAsync('fleet/car-042/call/can0/request', JSON.stringify({ id: 'obd1', args: { id: 0x7df, data: '02010c5555555555', response_id: 0x7e8 } }), { qos: 1 });
      await collector.waitFor((m) => m.some((x) => x.topic === 'fleet/car-042/reply/can0/request'), 5000, 'request reply');
      const reply = JSON.parse(collector.on('fleet/car-042/reply/can0/request')[0]!.text) as { id: string; error: string | null; data: { id: number; data: string } };
      expect(reply).toMatchObject({ id: 'obd1', error: null, data: { id: 0x7e8 } });
      expect(reply.data.data.slice(0, 6)).toBe('04410c');
      expect(sim.stdout.filter((l) => typeof l === 'object' && l !== null && 'rx' in l)).toEqual([{ rx: { id: 2015, extended: false, rtr: false, dlc: 8, data: '02010c5555555555' } }]);

      await new Promise((r) => setTimeout(r, 300)); // a few status poll periods
      const commands = sim.commands();
      expect(commands.slice(0, 6)).toEqual(EXPECTED_SETUP[adapter]);
      const after = commands.slice(6);
      if (adapter === 'canable') expect(after).toEqual([]); // no F, no Z, nothing it would silently ignore
      else {
        expect(after.length).toBeGreaterThan(0);
        expect(new Set(after)).toEqual(new Set(['F']));
      }
      expect(await counter(metrics.serialRejected, { link: 'can0', reason: 'tx-refused' })).toBe(0);
      expect(await counter(metrics.serialRejected, { link: 'can0', reason: 'unexpected-reply' })).toBe(0);
      expect(await counter(metrics.serialRejected, { link: 'can0', reason: 'unexpected-bell' })).toBe(0);
    }, 45_000);
  }
});
