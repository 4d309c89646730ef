/**
 * kill -9: a child process holding an outbox (broker unreachable) is
 * SIGKILLed, mid-write or with its outbox full; a new sink on the same
 * database delivers everything the child had been told was accepted, in
 * order per topic.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { MqttSink } from '../../src/sinks/mqtt/mqtt-sink.js';
import { startBroker, type Broker } from '../helpers/broker.js';
import { ensureDistFresh } from '../helpers/cli.js';
import { Cleanup, freePort, tempDir, withTimeout } from '../helpers/net-helpers.js';
import { captureLogger, Collector, device, mqttConfig, outboxConfig } from '../helpers/mqtt-helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const child = path.join(root, 'test/mqtt/fixtures/outbox-child.mjs');

/** The child runs the built classes: rebuild dist/ when a source file is newer. */
function ensureBuilt(): void {
  ensureDistFresh('dist/src/sinks/mqtt/mqtt-sink.js', ['src/sinks/mqtt', 'src/health', 'src/util', 'src/config', 'src/core']);
}

let broker: Broker;
beforeAll(async () => {
  ensureBuilt();
  broker = await startBroker({ persistence: false });
}, 120_000);
afterAll(() => broker?.close());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Runs the child until `until(line)` is true, then SIGKILLs it; returns the lines it printed. */
async function runAndKill(dbPath: string, maxMessages: number, policy: string, until: (line: string) => boolean): Promise<string[]> {
  const deadPort = await freePort(); // nothing listens there: the broker is "down" for the child
  const proc = spawn(process.execPath, [child, `mqtt://127.0.0.1:${deadPort}`, dbPath, String(maxMessages), policy], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.add(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  const lines: string[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_code, sig) => resolve(sig)));
  await withTimeout(new Promise<void>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (until(line)) {
          proc.kill('SIGKILL');
          resolve();
          return;
        }
      }
    });
    proc.once('exit', () => reject(new Error(`child exited early: ${stderr}`)));
  }), 15_000, 'the child to fill its outbox');
  expect(await exited).toBe('SIGKILL');
  return lines;
}

async function deliverRest(dbPath: string, c: Collector): Promise<MqttSink> {
  const sink = new MqttSink(mqttConfig(broker.url, { client_id: 'kill-restart' }), { ...outboxConfig(''), path: dbPath, max_messages: 100_000 },
    { device, metrics: new AgentMetrics({ defaultMetrics: false }), logger: captureLogger() });
  cleanup.add(() => sink.stop());
  await sink.start();
  return sink;
}

/** Checks that the distinct sequence numbers delivered are exactly 0..n-1, each topic in order. */
function expectPrefixInOrder(c: Collector, n: number): void {
  const seen = new Set<number>();
  const lastPerTopic = new Map<string, number>();
  for (const m of c.messages) {
    const { i } = JSON.parse(m.text) as { i: number };
    if (seen.has(i)) continue; // a duplicate (allowed, documented)
    seen.add(i);
    expect(i, `order on ${m.topic}`).toBeGreaterThan(lastPerTopic.get(m.topic) ?? -1);
    lastPerTopic.set(m.topic, i);
  }
  expect(seen.size).toBe(n);
  expect(Math.max(...seen)).toBe(n - 1);
}

describe('outbox across kill -9', () => {
  it('killed while enqueueing: every message reported accepted is delivered by the next sink', async () => {
    const dbPath = path.join(tempDir(cleanup, 'kill'), 'outbox.db');
    const c = await Collector.connect(broker, ['kill/#']);
    cleanup.add(() => c.close());
    const lines = await runAndKill(dbPath, 100_000, 'reject-new', (l) => l.startsWith('accepted ') && Number(l.slice(9)) >= 1500);
    const lastReported = Number(lines.filter((l) => l.startsWith('accepted ')).at(-1)!.slice(9));
    await deliverRest(dbPath, c);
    // what was committed after the last report may be there too, but never a hole
    await c.waitFor((m) => new Set(m.map((x) => x.text)).size > lastReported, 10_000, `messages 0..${lastReported}`);
    await new Promise((r) => setTimeout(r, 300));
    const n = new Set(c.messages.map((m) => (JSON.parse(m.text) as { i: number }).i)).size;
    expect(n).toBeGreaterThanOrEqual(lastReported + 1);
    expectPrefixInOrder(c, n);
  });

  it('killed with a full outbox (reject-new): the next sink delivers exactly what it held', async () => {
    const dbPath = path.join(tempDir(cleanup, 'kill'), 'outbox.db');
    const c = await Collector.connect(broker, ['kill/#']);
    cleanup.add(() => c.close());
    const lines = await runAndKill(dbPath, 1234, 'reject-new', (l) => l === 'full');
    expect(lines.at(-2)).toBe('accepted 1233');
    await deliverRest(dbPath, c);
    await c.waitFor((m) => new Set(m.map((x) => x.text)).size >= 1234, 10_000, '1234 messages');
    await new Promise((r) => setTimeout(r, 300));
    expectPrefixInOrder(c, 1234);
  });
});
