/**
 * The router: turns each event into the messages of the routes that select it.
 *
 * For every route, in config order: source filter, glob on the full name,
 * topic, filters, payload. Every route that selects the event may yield a
 * message (an event may go to several routes); an event no route selected
 * counts in eventsUnrouted (one a route selected and then dropped does not:
 * its drop is counted under its reason). route() is the agent's hot path:
 * everything is compiled in the constructor.
 */
import type { RouteConfig } from '../config/types.js';
import type { AgentEvent, LinkDelivery, OutboundMessage } from '../core/event.js';
import type { AgentMetrics } from '../health/metrics.js';
import { dataJson, envelopeJson } from './payload.js';
import { CompiledRoute, type RouterContext } from './route.js';
import { TOPIC_FIELD_MISSING } from './topic-template.js';
import { RateLimitedLog } from '../util/log.js';
import { monotonicMs } from '../util/monotonic.js';

export type { RouterContext } from './route.js';

/**
 * Names whose glob results are remembered. Vehicles have tens to hundreds
 * of event names; untrusted names could be endless, so the memo is bounded
 * (cleared when full: no per-hit bookkeeping, and a flood only costs the
 * globs it would have cost anyway).
 */
const MATCH_MEMO_SIZE = 4096;
/** Longer names are not remembered: 4096 names of up to 1 MB each would be 4 GB. */
const MATCH_MEMO_NAME = 256;

export class EventRouter {
  private readonly routes: CompiledRoute[];
  private readonly memo = new Map<string, CompiledRoute[]>();
  private readonly unrouted: { inc(): void };
  private readonly fieldMissing: { inc(): void };
  private readonly tooLong: { inc(): void };
  private readonly unserializable: { inc(): void };
  private readonly noLinkSink: { inc(): void };
  /** Topic failures and unserializable data: counted always, logged (10 per 10 s) when the context has a log. */
  private readonly dropLog: RateLimitedLog | undefined;

  /**
   * Throws an Error naming the route when one cannot be compiled. `clock`
   * (ms) times the filters; the default is monotonic, so that a wall clock
   * set at boot cannot stall a rate limit or a sampler.
   */
  constructor(routes: RouteConfig[], ctx: RouterContext, metrics: AgentMetrics, clock: () => number = monotonicMs) {
    const names = new Set<string>();
    this.routes = routes.map((cfg) => {
      // Route names label metrics and key sequence numbers: they must be unique.
      if (names.has(cfg.name)) throw new Error(`route "${cfg.name}": two routes have this name`);
      names.add(cfg.name);
      return new CompiledRoute(cfg, ctx, metrics, clock);
    });
    this.unrouted = metrics.eventsUnrouted;
    this.fieldMissing = metrics.dropped.labels('topic_field_missing');
    this.tooLong = metrics.dropped.labels('topic_too_long');
    this.unserializable = metrics.dropped.labels('payload_unserializable');
    this.noLinkSink = metrics.dropped.labels('no_link_sink');
    this.dropLog = ctx.log ? new RateLimitedLog(ctx.log) : undefined;
  }

  /**
   * Takes over what must survive a config reload from the router this one
   * replaces: each route's sequence number (same route name), and its filter
   * state when its topic, filters and context are unchanged (that state is
   * moved, not copied: `previous` must not route anything afterwards).
   */
  carryOver(previous: EventRouter): void {
    const old = new Map(previous.routes.map((r) => [r.name, r]));
    for (const r of this.routes) {
      const o = old.get(r.name);
      if (!o) continue;
      r.seq = o.seq;
      if (o.stateKey === r.stateKey) r.filters = o.filters;
    }
  }

  /**
   * The messages for this event, in route order. Messages of one event may
   * share their payload Buffer (raw shape): payloads are read-only. What
   * routes targeting serial links produce goes to `toLinks` (dropped and
   * counted as `no_link_sink` when the caller passes none).
   */
  route(ev: AgentEvent, toLinks?: LinkDelivery[]): OutboundMessage[] {
    const out: OutboundMessage[] = [];
    let selected = false;
    // The data's JSON and raw payload, made once for all the routes that publish the event.
    let json: string | null | undefined; // null: cannot be serialized
    let raw: Buffer | undefined;
    const routes = this.globbed(ev.name);
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (r.sources !== undefined && !r.sources.has(ev.source)) continue;
      selected = true;
      if (r.link !== undefined) {
        this.toLink(r, ev, toLinks);
        continue;
      }
      const topic = r.topic.render(ev);
      if (typeof topic !== 'string') {
        const missing = topic === TOPIC_FIELD_MISSING;
        (missing ? this.fieldMissing : this.tooLong).inc();
        this.dropLog?.log(`route ${r.name}: event ${eventLabel(ev.name)} from ${ev.source} dropped (${topic.reason}): ${missing ? 'a field its topic template uses is missing from the data' : 'its topic would be longer than 65535 bytes'}`);
        continue;
      }
      const state = r.filters?.admit(topic, ev.data);
      if (r.filters !== undefined && state === undefined) continue;
      if (json === undefined) {
        try {
          json = ev.json ?? dataJson(ev.data);
        } catch {
          json = null;
        }
      }
      if (json === null) {
        this.unserializable.inc();
        this.dropLog?.log(`route ${r.name}: event ${eventLabel(ev.name)} from ${ev.source} dropped (payload_unserializable): its data cannot be written as JSON`);
        continue;
      }
      let payload: Buffer;
      if (r.shape === 'raw') payload = raw ??= Buffer.from(json, 'utf8');
      else payload = Buffer.from(envelopeJson(ev, r.seq + 1, json), 'utf8');
      r.seq++;
      if (state !== undefined) r.filters!.commit(state, ev.data, json);
      r.routed.inc();
      out.push({ topic, payload, qos: r.qos, retain: r.retain, route: r.name });
    }
    if (!selected) this.unrouted.inc();
    return out;
  }

  /**
   * A link route: filters keyed by link and event name (there is no topic),
   * the event as is, and for slcan message maps each signal's value read
   * from the data (a signal whose field is missing is left out: encoded as 0).
   */
  private toLink(r: CompiledRoute, ev: AgentEvent, out: LinkDelivery[] | undefined): void {
    const link = r.link!;
    const key = `${link.name}\u0000${ev.name}`;
    const state = r.filters?.admit(key, ev.data);
    if (r.filters !== undefined && state === undefined) return;
    if (out === undefined) {
      this.noLinkSink.inc();
      return;
    }
    const d: LinkDelivery = { route: r.name, link: link.name, event: ev.name, data: ev.data };
    if (link.message !== undefined) {
      d.message = link.message;
      const values: Record<string, unknown> = {};
      for (const [sig, get] of link.values) {
        const v = get(ev.data);
        if (v !== undefined) values[sig] = v;
      }
      d.values = values;
    }
    r.seq++;
    // commit() bounds the memory of change_only by the data's JSON length.
    if (state !== undefined) r.filters!.commit(state, ev.data, ev.json ?? safeJson(ev.data));
    r.routed.inc();
    out.push(d);
  }

  /** The routes whose globs select this name, in config order. */
  private globbed(name: string): CompiledRoute[] {
    let hit = this.memo.get(name);
    if (hit === undefined) {
      hit = this.routes.filter((r) => r.matches(name));
      if (name.length <= MATCH_MEMO_NAME) {
        if (this.memo.size >= MATCH_MEMO_SIZE) this.memo.clear();
        this.memo.set(name, hit);
      }
    }
    return hit;
  }
}

function safeJson(data: unknown): string {
  try {
    return JSON.stringify(data) ?? '';
  } catch {
    return '';
  }
}

/** An untrusted event name for a log line: quoted, cut to 120 characters. */
function eventLabel(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);
}
