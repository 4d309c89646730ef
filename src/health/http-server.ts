/**
 * Opt-in local HTTP endpoint: GET /metrics (Prometheus text format) and
 * GET /healthz. node:http is enough for two routes; no framework.
 */
import { lazyRequire } from '../util/lazy-require.js';
import type { AgentMetrics } from './metrics.js';

const http = lazyRequire<typeof import('node:http')>('node:http');

export interface HealthHttp {
  close(): Promise<void>;
  /** The bound address (port resolved when 0 was asked). */
  address: { host: string; port: number };
}

/** Parses host:port ([v6]:port accepted). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (m === null) throw new Error(`health.http_listen: expected host:port, got '${text}'`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`health.http_listen: bad port ${port}`);
  return { host: m[1] ?? m[2]!, port };
}

export async function startHealthHttp(listen: string, metrics: AgentMetrics, healthy: () => Record<string, unknown>): Promise<HealthHttp> {
  const { host, port } = parseListen(listen);
  const server = http().createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/metrics') {
      metrics.text().then(
        (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
      );
    } else if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(healthy()) + '\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`health.http_listen ${listen}: ${err.code ?? err.message}`)));
    server.listen(port, host, resolve);
  });
  const addr = server.address() as { address: string; port: number };
  return {
    address: { host: addr.address, port: addr.port },
    close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections?.(); }),
  };
}
