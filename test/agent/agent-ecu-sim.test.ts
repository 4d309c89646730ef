/**
 * Every protocol end to end with the real simulator: `afb-edge ecu-sim` (a
 * separate process) on one end of a socat pty pair, the agent's link on the
 * other, mosquitto, and a wsapi client of the exported ecu API — counters
 * complete and in order on MQTT and on the API, with and without line noise,
 * and a command back to the ECU.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { AgentMetrics } from '../../src/health/metrics.js';
import { ECU_SIM_SIGNAL_MAP } from '../../src/sim/ecu-sim.js';
import { WsapiClient } from '../../src/wsapi/index.js';
import { startBroker } from '../helpers/broker.js';
import { ensureBuilt } from '../helpers/cli.js';
import { Collector, captureLogger, counter } from '../helpers/mqtt-helpers.js';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';
import { ptyPair } from '../helpers/pty.js';
import { agentConfig } from '../helpers/serial-config.js';
import { startSim as startSimProcess } from '../sim/ecu-sim-harness.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** The simulator as users run it: through bin/afb-edge (so the bundle the launcher picks is exercised too). */
function startSim(args: string[]) {
  ensureBuilt();
  return startSimProcess(cleanup, args, { launcher: true });
}

interface Case {
  label: string;
  link: Record<string, unknown>;
  sim: string[];
  /** Event of the counters, and how to read n from its data. */
  event: string;
  n: (data: Record<string, unknown>) => number;
  /** A command for the ECU (verb, args) and what the sim prints when it gets it. */
  command: [string, unknown, RegExp];
}

const COUNT = 300;
const cases: Case[] = [
  {
    label: 'slcan', event: 'Sequence',
    link: { protocol: 'slcan', messages: ECU_SIM_SIGNAL_MAP.messages },
    sim: ['--protocol', 'slcan'],
    n: (d) => (d.values as { counter: number }).counter,
    command: ['send', { id: 0x321, data: 'cafe' }, /"rx":\{"id":801,.*"data":"cafe"/],
  },
  {
    label: 'cobs crc32 json', event: 'counter',
    link: { protocol: 'cobs', cobs: { crc: 'crc32' } },
    sim: ['--protocol', 'cobs', '--crc', 'crc32'],
    n: (d) => d.n as number,
    command: ['set', { fan: 1 }, /"rx":\{"id":\d+,"verb":"set","args":\{"fan":1\}\}/],
  },
  {
    label: 'ndjson', event: 'counter',
    link: { protocol: 'ndjson' },
    sim: ['--protocol', 'ndjson'],
    n: (d) => d.n as number,
    command: ['echo', { hello: 'ecu' }, /"rx":\{"id":\d+,"verb":"echo","args":\{"hello":"ecu"\}\}/],
  },
];

describe('agent ↔ afb-edge ecu-sim, every protocol', () => {
  for (const c of cases) {
    for (const noise of [0, 7]) {
      it(`${c.label}${noise ? ', with a garbage burst every 7 frames' : ''}: ${COUNT} counters in order to MQTT and to the ecu API; a command reaches the ECU`, async () => {
        const b = await startBroker();
        cleanup.add(() => b.close());
        const dir = tempDir(cleanup, 'agent-ecu-sim');
        const pty = await ptyPair(cleanup, dir, 'ecu');
        const metrics = new AgentMetrics({ defaultMetrics: false });
        const apiSock = join(dir, 'ecu-api');
        const cfg = agentConfig({
          mqtt: { url: b.url, protocol_version: 4, topic_prefix: 'fleet', status_interval_s: 0 },
          outbox: { path: join(dir, 'outbox.db'), synchronous: 'normal' },
          serial: { links: [{ name: 'ecu0', device: pty.device, reopen: { initial_delay_ms: 50, max_delay_ms: 200 }, ...c.link }] },
          routes: [{ name: 'counters', match: [`ecu0/${c.event}`], payload: 'raw', qos: 1 }],
          ecu_api: { listen: [`unix:${apiSock}`] },
          commands: { enabled: true, allow: [{ binder: 'ecu0', verbs: ['*'] }] },
        });
        const collector = await Collector.connect(b, ['fleet/#'], 1);
        cleanup.add(() => collector.close());
        const agent = new Agent(cfg, { logger: captureLogger(), version: 'test', metrics });
        await agent.start();
        cleanup.add(() => agent.stop('test over'));
        // JSON links are open as soon as the port is; an slcan link waits for the adapter (the sim) to answer its setup.
        if (c.label !== 'slcan') await waitFor(() => agent.serialLink('ecu0')?.isOpen === true, 8000, 'link open', 20);

        const api = new WsapiClient(`unix:${apiSock}`, {});
        cleanup.add(() => api.close());
        await api.connect();
        const pushed: number[] = [];
        api.on('event', (_name: string, data: { event: string; data: Record<string, unknown> }) => {
          if (data.event === c.event) pushed.push(c.n(data.data));
        });
        expect((await api.call('subscribe', { link: 'ecu0' })).error).toBeNull();

        // The sim starts once the agent listens (an slcan adapter sends frames only after the agent's O).
        const sim = await startSim([...c.sim, '--device', pty.peer, '--rate', '1000', '--count', String(COUNT), ...(noise ? ['--noise', String(noise)] : [])]);
        await waitFor(() => agent.serialLink('ecu0')?.isOpen === true, 8000, 'link open', 20);
        const topic = `fleet/car-042/events/ecu0/${c.event}`;
        await collector.waitCount(topic, COUNT, 20_000);
        const ns = collector.on(topic).map((m) => c.n(JSON.parse(m.text) as Record<string, unknown>));
        expect(ns).toEqual(Array.from({ length: COUNT }, (_, i) => i));
        await waitFor(() => pushed.length === COUNT, 5000, 'api pushes', 20);
        expect(pushed).toEqual(ns);
        if (noise) {
          const rejected = (await metrics.serialRejected.get()).values.filter((v) => v.labels.link === 'ecu0').reduce((s, v) => s + v.value, 0);
          expect(rejected).toBeGreaterThan(0);
        }

        // A remote command through MQTT, relayed to the ECU.
        const [verb, args, printed] = c.command;
        await collector.client.publishAsync(`fleet/car-042/call/ecu0/${verb}`, JSON.stringify({ id: 'c1', args }), { qos: 1 });
        await waitFor(() => sim.stdout.some((l) => printed.test(JSON.stringify(l))), 5000, `the sim got ${verb}`, 20);
        await collector.waitFor((m) => m.some((x) => x.topic === `fleet/car-042/reply/ecu0/${verb}`), 5000, 'command reply');
        expect(JSON.parse(collector.on(`fleet/car-042/reply/ecu0/${verb}`)[0]!.text)).toMatchObject({ id: 'c1', error: null });
        expect(await counter(metrics.serialWrites, { link: 'ecu0', outcome: 'busy' })).toBe(0);
      }, 40_000);
    }
  }
});
