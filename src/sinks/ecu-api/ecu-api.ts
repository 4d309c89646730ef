/**
 * The agent's own wsapi API (default name `ecu`), for native binders that
 * import it with `--ws-client=unix:/run/platform/apis/ws/ecu` (or through
 * systemd socket activation, `sd:ecu`): the serial links, their state, and
 * their ECUs' events.
 *
 * Verbs (args are JSON objects):
 * - `links`                  → [{name, device, protocol, state, reason, since, opens, stats}]
 * - `info {link}`            → one link's entry
 * - `send {link, ...}`       → queues a frame/message (shape per protocol, docs/ecu-protocols.md)
 * - `request {link, ...}`    → the ECU's answer (slcan: `response_id`; JSON links: `verb`, `args`)
 * - `subscribe {link}`       → the caller receives the event `ecu/{link}` for every ECU event of
 *                              that link, data `{"event": name, "data": ...}`; `{link: "*"}`: all links
 * - `unsubscribe {link}`
 * Errors: `invalid-request`, `unknown-link`, and the link's (`disconnected`, `busy`, `timeout`,
 * `ecu-error`, `not-supported`).
 *
 * One wsapi event per link, not per ECU event name: the set of events stays
 * as small and fixed as the set of links, whatever ids a bus carries.
 *
 * Local peers are untrusted for memory: connections, bytes of unfinished
 * messages, unread backlog and half-message age are bounded by the `ecu_api`
 * config (docs/wsapi.md, "Memory"), every refusal counted in
 * afb_edge_wsapi_limited_total{endpoint="ecu_api NAME",limit}.
 */
import type { EcuApiConfig } from '../../config/types.js';
import type { AgentMetrics } from '../../health/metrics.js';
import type { SerialLink } from '../../serial/link/serial-link.js';
import { callLink } from '../../sources/serial/serial-source.js';
import type { Logger } from '../../util/log.js';
import { parseSpec, WsapiServer, type Request, type ServerEvent } from '../../wsapi/index.js';

export interface EcuApiDeps {
  logger: Logger;
  /** The agent's serial sources by name: the live map, which reloads change. */
  links: ReadonlyMap<string, { readonly link: SerialLink }>;
  /** Where the API's limits and connections are counted (none: only in server.stats). */
  metrics?: AgentMetrics;
}

const DESCRIPTION = {
  openapi: '3.0.0',
  info: { title: 'afb-edge serial ECU links', description: 'Serial links of the agent: state, frames to send, requests, and events of the ECUs' },
  paths: Object.fromEntries(['links', 'info', 'send', 'request', 'subscribe', 'unsubscribe'].map((v) => [`/${v}`, { description: v }])),
};

export class EcuApi {
  readonly server: WsapiServer;
  private readonly events = new Map<string, ServerEvent>();

  constructor(private readonly config: EcuApiConfig, private readonly deps: EcuApiDeps) {
    const api = config.api ?? parseSpec(config.listen[0] ?? 'sd:ecu').api;
    this.server = new WsapiServer({
      api, logger: deps.logger, description: DESCRIPTION, label: `ecu api ${api}`, stopPushesOnUnsubscribe: true,
      maxConnections: config.max_connections,
      maxBufferedBytes: config.max_buffered_bytes,
      // Args kept by calls in progress (a request waits for its ECU): the same budget again.
      maxPendingCallBytes: config.max_buffered_bytes,
      maxBacklog: config.max_backlog_bytes,
      partialMessageTimeoutMs: config.partial_message_timeout_ms,
    });
    const metrics = deps.metrics;
    if (metrics !== undefined) {
      const endpoint = `ecu_api ${api}`;
      metrics.wsapiConnections.set({ endpoint }, 0);
      this.server.on('limit', (limit: string) => metrics.wsapiLimited.inc({ endpoint, limit }));
      const count = (): void => { metrics.wsapiConnections.set({ endpoint }, this.server.stats.connections); };
      this.server.on('connection', count).on('disconnect', count);
    }
    this.server
      .verb('links', () => [...deps.links.values()].map((s) => s.link.info()))
      .verb('info', (req) => {
        const link = this.link(req);
        return link === undefined ? undefined : link.info();
      })
      .verb('send', (req) => this.relay(req, 'send'))
      .verb('request', (req) => this.relay(req, 'request'))
      .verb('subscribe', (req) => this.subscription(req, true))
      .verb('unsubscribe', (req) => this.subscription(req, false));
  }

  get api(): string {
    return this.server.api;
  }

  async listen(): Promise<void> {
    for (const spec of this.config.listen) await this.server.listen(spec);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** An ECU event of `link`, pushed to the connections subscribed to that link (serialised only then). */
  publish(link: string, event: string, data: unknown): void {
    const e = this.events.get(link);
    if (e === undefined || e.subscribers === 0) return;
    e.push({ event, data });
  }

  private event(link: string): ServerEvent {
    let e = this.events.get(link);
    if (e === undefined) this.events.set(link, (e = this.server.event(link)));
    return e;
  }

  private link(req: Request): SerialLink | undefined {
    const args = req.args;
    const name = typeof args === 'object' && args !== null ? (args as Record<string, unknown>).link : undefined;
    if (typeof name !== 'string') {
      req.fail('invalid-request', 'args must be an object with "link": the name of a serial link');
      return undefined;
    }
    const link = this.deps.links.get(name)?.link;
    if (link === undefined) req.fail('unknown-link', `no serial link '${name}' (links: ${[...this.deps.links.keys()].join(', ') || 'none'})`);
    return link;
  }

  private async relay(req: Request, verb: 'send' | 'request'): Promise<void> {
    const link = this.link(req);
    if (link === undefined) return;
    const { link: _name, ...args } = req.args as Record<string, unknown>;
    const reply = await callLink(link, verb, args);
    if (reply.error !== null) req.fail(reply.error, reply.info, reply.data);
    else req.reply(reply.data, reply.info);
  }

  private subscription(req: Request, on: boolean): void {
    const args = req.args as Record<string, unknown> | null;
    const names = typeof args === 'object' && args !== null && args.link === '*' ? [...this.deps.links.keys()] : undefined;
    const targets = names ?? (() => { const l = this.link(req); return l === undefined ? [] : [l.name]; })();
    if (req.replied) return;
    for (const name of targets) {
      const e = this.event(name);
      if (on) req.subscribe(e);
      else req.unsubscribe(e);
    }
    req.reply({ links: targets });
  }
}
