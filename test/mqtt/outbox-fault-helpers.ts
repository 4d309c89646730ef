/**
 * Shared by the outbox fault tests: the writer child (test/mqtt/fixtures/
 * outbox-writer.mjs) killed with SIGKILL once it stored its messages, and
 * a sink that delivers what a (damaged) outbox file still holds.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentMetrics } from '../../src/health/metrics.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import type { Broker } from '../helpers/broker.js';
import { captureLogger, Collector, counter, device, mqttConfig, outboxConfig, type CapturedLogger } from '../helpers/mqtt-helpers.js';
import { ensureDistFresh } from '../helpers/cli.js';
import { withTimeout, type Cleanup } from '../helpers/net-helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const writer = path.join(root, 'test/mqtt/fixtures/outbox-writer.mjs');

/** The child runs the built classes: rebuild dist/ when a source file is newer. */
export function ensureBuilt(): void {
  ensureDistFresh('dist/src/sinks/mqtt/outbox.js', ['src/sinks/mqtt', 'src/health', 'src/util', 'src/config', 'src/core', 'src/serial']);
}

/** Payload of message i as the writer makes it. */
export const faultPayload = (i: number): string => JSON.stringify({ i, pad: 'p'.repeat(i % 97) });

/** Runs the writer until it stored `count` messages, then SIGKILLs it (its WAL is left as is). */
export async function writeAndKill(cleanup: Cleanup, dbPath: string, count: number, maxBytes = 64 << 20): Promise<void> {
  const proc = spawn(process.execPath, [writer, dbPath, String(count), String(maxBytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.add(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await withTimeout(new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(`done ${count}\n`)) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`writer exited (${code}): ${out} ${err}`)));
  }), 20_000, 'the writer');
  proc.kill('SIGKILL');
  await exited;
}

export interface Delivery {
  sink: MqttSink;
  metrics: AgentMetrics;
  logger: CapturedLogger;
  collector: Collector;
  /** Distinct message numbers delivered, each checked against what the writer wrote. */
  delivered(): Set<number>;
  /** Messages delivered that are not what the writer wrote (must stay empty). */
  garbled(): string[];
}

/** A sink on `dbPath` connected to `broker`; resolves once its outbox is empty (everything it held went out). */
export async function deliverAll(cleanup: Cleanup, broker: Broker, dbPath: string, topicRoot = 'fault'): Promise<Delivery> {
  const collector = await Collector.connect(broker, [`${topicRoot}/#`], 1);
  cleanup.add(() => collector.close());
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const logger = captureLogger();
  const sink = new MqttSink(mqttConfig(broker.url, { client_id: `fault-${Math.random().toString(16).slice(2)}` }), { ...outboxConfig(''), path: dbPath, max_messages: 1_000_000 },
    { device, metrics, logger });
  cleanup.add(() => sink.stop());
  await sink.start();
  const depth = async (): Promise<number> => (await metrics.outboxDepth.get()).values[0]?.value ?? NaN;
  const end = Date.now() + 20_000;
  while ((await depth()) !== 0 || !sink.connected) {
    if (Date.now() > end) throw new Error(`outbox not drained: depth ${await depth()}, log: ${logger.lines.slice(-5).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 100)); // the last PUBLISH reach the collector
  /** The message number when the message is exactly what the writer wrote (topic and payload), else undefined. */
  const valid = (m: { topic: string; text: string }): number | undefined => {
    let i: unknown;
    try {
      i = (JSON.parse(m.text) as { i?: unknown }).i;
    } catch {
      return undefined;
    }
    return typeof i === 'number' && m.text === faultPayload(i) && m.topic === `${topicRoot}/${i % 4}` ? i : undefined;
  };
  const ours = () => collector.messages.filter((m) => m.topic.startsWith(`${topicRoot}/`));
  return {
    sink, metrics, logger, collector,
    delivered: () => new Set(ours().map(valid).filter((i): i is number => i !== undefined)),
    garbled: () => ours().filter((m) => valid(m) === undefined).map((m) => `${m.topic}=${m.text.slice(0, 60)}`),
  };
}

/** Messages the sink reported lost: lost at open (WAL or file) plus rows found invalid later. */
export async function reportedLost(metrics: AgentMetrics): Promise<number> {
  return (await counter(metrics.dropped, { reason: 'outbox_lost' })) + (await counter(metrics.dropped, { reason: 'outbox_invalid' }));
}
