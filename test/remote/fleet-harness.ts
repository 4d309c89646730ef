/**
 * A small real fleet for the dashboard tests: mosquitto, simulated binders
 * (in this process), `afb-edge run` agents as child processes (one with a
 * serial CAN link to `afb-edge ecu-sim` on a socat pty pair), and
 * `afb-edge monitor --web` as a child process — everything as an operator
 * runs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ECU_SIM_SIGNAL_MAP } from '../../src/sim/ecu-sim.js';
import { SimulatedBinder } from '../../src/sim/simulated-binder.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { cliMain, ensureBuilt } from '../helpers/cli.js';
import { type Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';
import { ptyPair } from '../helpers/pty.js';

export interface Proc {
  child: ChildProcess;
  out(): string;
  err(): string;
  alive(): boolean;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function startCli(cleanup: Cleanup, args: string[]): Proc {
  ensureBuilt();
  const child = spawn(process.execPath, [cliMain, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const alive = () => child.exitCode === null && child.signalCode === null;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!alive()) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await gone;
  };
  cleanup.add(() => stop('SIGKILL'));
  return { child, out: () => out, err: () => err, alive, stop };
}

export interface AgentOptions {
  device: string;
  withEcu?: boolean;
}

export interface Fleet {
  broker: Broker;
  dir: string;
  agents: Map<string, Proc>;
  binders: Map<string, SimulatedBinder>;
  binderSpec(device: string): string;
}

/** Broker and agents; resolves when every agent's retained status says online. */
export async function startFleet(cleanup: Cleanup, devices: AgentOptions[]): Promise<Fleet> {
  const dir = tempDir(cleanup, 'dashboard');
  const broker = await startBroker();
  cleanup.add(() => broker.close());
  const agents = new Map<string, Proc>();
  const binders = new Map<string, SimulatedBinder>();
  const binderSpec = (device: string) => `unix:${join(dir, `vehicle-${device}`)}`;
  for (const a of devices) {
    const binder = new SimulatedBinder({ api: 'vehicle', periodMs: 100 });
    await binder.listen(binderSpec(a.device));
    cleanup.add(() => binder.close());
    binders.set(a.device, binder);
    let serial = '';
    let canRoute = '';
    if (a.withEcu) {
      const pair = await ptyPair(cleanup, dir, `can-${a.device}`);
      startCli(cleanup, ['ecu-sim', '--protocol', 'slcan', '--device', pair.peer, '--rate', '20']);
      serial = `serial: { links: [ { name: can0, device: "${pair.device}", protocol: slcan, messages: ${JSON.stringify(ECU_SIM_SIGNAL_MAP.messages)}, reopen: { initial_delay_ms: 100, max_delay_ms: 500 } } ] }`;
      canRoute = `  - { name: can, match: ["can0/*"], topic: "{prefix}/{device}/can/{event}", qos: 0, payload: raw }`;
    }
    const file = join(dir, `${a.device}.yaml`);
    writeFileSync(file, `
device: { id: ${a.device}, labels: { fleet: dashboard-test } }
mqtt: { url: "${broker.url}", protocol_version: ${broker.supportsV5 ? 5 : 4}, keepalive_s: 2, status_interval_s: 1, reconnect: { initial_delay_ms: 100, max_delay_ms: 500 } }
outbox: { path: ${join(dir, `outbox-${a.device}.db`)}, synchronous: normal }
binders: [ { name: vehicle, spec: "${binderSpec(a.device)}", subscribe: [ { verb: subscribe } ], reconnect: { initial_delay_ms: 50, max_delay_ms: 300 } } ]
routes:
  - { name: vehicle, match: ["vehicle/*"], qos: 0 }
${canRoute}
commands: { enabled: true, allow: [ { binder: vehicle, verbs: [ping] } ] }
${serial}
`);
    agents.set(a.device, startCli(cleanup, ['run', '--config', file]));
  }
  return { broker, dir, agents, binders, binderSpec };
}

export interface Monitor extends Proc {
  url: string;
}

/** `afb-edge monitor --web …`; resolves with its URL once it printed it. */
export async function startMonitor(cleanup: Cleanup, args: string[]): Promise<Monitor> {
  const p = startCli(cleanup, ['monitor', ...args]);
  let url = '';
  await waitFor(() => {
    if (!p.alive()) throw new Error(`the monitor exited: ${p.err()}`);
    url = /dashboard: (http:\/\/\S+)/.exec(p.out())?.[1] ?? '';
    return url !== '';
  }, 15_000, 'the monitor printing its URL', 20);
  return { ...p, url };
}
