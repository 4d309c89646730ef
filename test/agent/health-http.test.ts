/**
 * The opt-in Prometheus endpoint, over real HTTP on loopback.
 */
import { describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { parseListen, startHealthHttp } from '../../src/health/http-server.js';

describe('health HTTP endpoint', () => {
  it('serves /metrics in Prometheus text format, /healthz as JSON, 404 elsewhere', async () => {
    const metrics = new AgentMetrics();
    metrics.eventsIn.inc({ source: 'vehicle' }, 3);
    metrics.dropped.inc({ reason: 'outbox_full' });
    const http = await startHealthHttp('127.0.0.1:0', metrics, () => ({ mqtt: 'connected' }));
    try {
      const base = `http://127.0.0.1:${http.address.port}`;
      const m = await fetch(`${base}/metrics`);
      expect(m.status).toBe(200);
      expect(m.headers.get('content-type')).toContain('text/plain');
      const text = await m.text();
      expect(text).toContain('afb_edge_events_in_total{source="vehicle"} 3');
      expect(text).toContain('afb_edge_dropped_total{reason="outbox_full"} 1');
      expect(text).toMatch(/afb_edge_process_resident_memory_bytes \d+/);
      expect(text).toMatch(/afb_edge_nodejs_eventloop_lag_seconds [\d.e-]+/);
      const h = await fetch(`${base}/healthz`);
      expect(await h.json()).toEqual({ mqtt: 'connected' });
      expect((await fetch(`${base}/nope`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await http.close();
    }
  });

  it('parses host:port and refuses the rest', () => {
    expect(parseListen('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListen('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(() => parseListen('9464')).toThrow(/host:port/);
    expect(() => parseListen('h:99999')).toThrow(/bad port/);
  });

  it('reports a port in use with the config key', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const a = await startHealthHttp('127.0.0.1:0', metrics, () => ({}));
    try {
      await expect(startHealthHttp(`127.0.0.1:${a.address.port}`, metrics, () => ({}))).rejects.toThrow(/health.http_listen .*EADDRINUSE/);
    } finally {
      await a.close();
    }
  });
});

describe('metrics summary (the health topic payload)', () => {
  it('keeps the agent counters and a few process figures, not every process metric', async () => {
    const metrics = new AgentMetrics();
    metrics.eventsIn.inc({ source: 'vehicle' }, 2);
    metrics.outboxDepth.set(5);
    const s = await metrics.summary();
    expect(s.afb_edge_events_in_total).toEqual({ vehicle: 2 });
    expect(s.afb_edge_outbox_messages).toBe(5);
    expect(typeof s.afb_edge_process_resident_memory_bytes).toBe('number');
    expect(Object.keys(s).some((k) => k.includes('gc_duration') || k.includes('heap_space'))).toBe(false);
    expect(JSON.stringify(s).length).toBeLessThan(4000);
  });
});
