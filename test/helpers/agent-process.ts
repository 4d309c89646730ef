/**
 * `afb-edge run` as a child process against a real broker, with a simulated
 * binder (API `vehicle`) in the test process and the remote side as a plain
 * mqtt.js client: what an attacker with publish rights on the command
 * topics sees. The agent's own view comes from its /metrics endpoint.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { SimulatedBinder } from '../../src/sim/simulated-binder.js';
import { startBroker, type Broker } from './broker.js';
import { cliMain, ensureBuilt } from './cli.js';
import { freePort, waitFor } from './net-helpers.js';

export interface Message { topic: string; text: string; payload: Buffer; correlation?: Buffer }

export interface AgentUnderTest {
  broker: Broker;
  child: ChildProcess;
  dir: string;
  stderr(): string;
  /** Everything the remote client received (it subscribes to '#'). */
  received: Message[];
  remote: MqttClient;
  /** A counter or gauge of the agent, summed over the series whose labels contain `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  alive(): boolean;
  /** Publishes and waits until a message arrives on `replyTopic` after it (resolves it, or undefined on timeout). */
  request(topic: string, payload: string | Buffer, replyTopic: string, opts?: IClientPublishOptions, ms?: number): Promise<Message | undefined>;
  close(): Promise<void>;
}

export interface AgentProcessOptions {
  /** YAML added to the config (commands, routes...). */
  extra: string;
  protocolVersion?: 4 | 5;
  device?: string;
}

/** Starts broker, binder and agent; resolves once a ping command is answered (the agent is subscribed). */
export async function startAgentProcess(options: AgentProcessOptions): Promise<AgentUnderTest> {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-hostile-'));
  const broker = await startBroker();
  const binder = new SimulatedBinder({ api: 'vehicle', periodMs: 0 });
  await binder.listen(`unix:${join(dir, 'vehicle')}`);
  const httpPort = await freePort();
  const v = broker.supportsV5 ? options.protocolVersion ?? 5 : 4;
  const device = options.device ?? 'car-042';
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, `
device: { id: ${device} }
mqtt: { url: "${broker.url}", protocol_version: ${v}, topic_prefix: fleet, status_interval_s: 0, keepalive_s: 5, reconnect: { initial_delay_ms: 50, max_delay_ms: 300 } }
outbox: { path: ${join(dir, 'outbox.db')} }
health: { http_listen: "127.0.0.1:${httpPort}" }
binders: [ { name: vehicle, spec: "unix:${join(dir, 'vehicle')}", reconnect: { initial_delay_ms: 50, max_delay_ms: 300 } } ]
routes: []
${options.extra}
`);
  const child = spawn(process.execPath, [cliMain, 'run', '--config', file, '--log-level', 'debug'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const received: Message[] = [];
  const remote = await mqtt.connectAsync(broker.url, { protocolVersion: v, clientId: `remote-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 100 });
  remote.on('message', (topic, payload, packet) => {
    received.push({ topic, text: payload.toString(), payload, correlation: packet.properties?.correlationData });
  });
  await remote.subscribeAsync('#', { qos: 1 });

  const alive = () => child.exitCode === null && child.signalCode === null;
  const request = async (topic: string, payload: string | Buffer, replyTopic: string, opts: IClientPublishOptions = {}, ms = 3000): Promise<Message | undefined> => {
    const from = received.length;
    await remote.publishAsync(topic, payload, { qos: 1, ...opts });
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const hit = received.slice(from).find((m) => m.topic === replyTopic);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 10));
    }
    return undefined;
  };
  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-z_]+)(\{[^}]*\})? ([-\d.e+]+|NaN)$/.exec(line);
      if (!m || m[1] !== name) continue;
      if (Object.entries(labels).every(([k, val]) => (m[2] ?? '').includes(`${k}="${val}"`))) sum += Number(m[3]);
    }
    return sum;
  };
  const close = async (): Promise<void> => {
    await remote.endAsync(true).catch(() => undefined);
    if (alive()) {
      child.kill('SIGKILL');
      await exited;
    }
    await binder.close();
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  };
  const agent: AgentUnderTest = { broker, child, dir, stderr: () => err, received, remote, metric, alive, request, close };
  try {
    const ping = `fleet/${device}/call/vehicle/ping`;
    await waitFor(async () => {
      if (!alive()) throw new Error(`the agent exited: ${err}`);
      return (await request(ping, '{"id":"up"}', `fleet/${device}/reply/vehicle/ping`, { qos: 1 }, 300)) !== undefined;
    }, 10_000, 'the agent answering commands', 50);
  } catch (e) {
    await close();
    throw e;
  }
  return agent;
}
