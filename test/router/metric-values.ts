/** Reads one value of a prom-client metric in router tests (0 when the label set was never counted). */
import type { Counter } from 'prom-client';
import { AgentMetrics } from '../../src/health/metrics.js';

export async function valueOf(metric: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x) && Object.keys(v.labels).length === Object.keys(labels).length);
  return hit?.value ?? 0;
}

export function testMetrics(): AgentMetrics {
  return new AgentMetrics({ defaultMetrics: false });
}
