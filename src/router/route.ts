/**
 * One route, compiled from its config: everything route() needs is built
 * here, once, so that the hot path only tests, renders and counts.
 */
import type { DeviceConfig, PayloadShape, RouteConfig } from '../config/types.js';
import type { AgentMetrics } from '../health/metrics.js';
import { compileFieldPath } from './field-path.js';
import { FilterChain } from './filter-chain.js';
import { compileMatch } from './match.js';
import { TopicTemplate } from './topic-template.js';

export interface RouterContext {
  device: DeviceConfig;
  /** {prefix} of topic templates (mqtt.topic_prefix). */
  prefix: string;
  /** Where the router reports the events it drops (rate-limited there); none: counted only. */
  log?: (msg: string) => void;
}

/** A route's serial link target, compiled. */
export interface CompiledLinkTarget {
  name: string;
  message?: string;
  /** Signal name → getter of its value in the event data. */
  values: Array<[string, (data: unknown) => unknown]>;
}

export class CompiledRoute {
  readonly name: string;
  /** Set when the route delivers to a serial link instead of MQTT. */
  readonly link: CompiledLinkTarget | undefined;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  readonly shape: PayloadShape;
  readonly matches: (name: string) => boolean;
  readonly sources: ReadonlySet<string> | undefined;
  readonly topic: TopicTemplate;
  /** undefined when the route has no filter. */
  filters: FilterChain | undefined;
  /** Last envelope sequence number given. */
  seq = 0;
  readonly routed: { inc(): void };
  /** Equal keys: same topic, filters and context, so filter state may be carried over on reload. */
  readonly stateKey: string;

  /** Throws an Error that names the route and what is wrong. */
  constructor(cfg: RouteConfig, ctx: RouterContext, metrics: AgentMetrics, clock: () => number) {
    const fail = (msg: string): never => {
      throw new Error(`route "${cfg.name}": ${msg}`);
    };
    if (typeof cfg.name !== 'string' || cfg.name === '') fail('a route needs a name');
    if (!Array.isArray(cfg.match)) fail('match must be a list of globs');
    if (cfg.qos !== 0 && cfg.qos !== 1 && cfg.qos !== 2) fail(`qos must be 0, 1 or 2, not ${String(cfg.qos)}`);
    if (cfg.payload !== 'raw' && cfg.payload !== 'envelope') fail(`payload must be "raw" or "envelope", not ${String(cfg.payload)}`);
    checkFilters(cfg, fail);
    this.name = cfg.name;
    this.qos = cfg.qos;
    this.retain = cfg.retain === true;
    this.shape = cfg.payload;
    this.sources = cfg.sources ? new Set(cfg.sources) : undefined;
    try {
      this.matches = compileMatch(cfg.match);
      this.topic = new TopicTemplate(cfg.topic, { prefix: ctx.prefix, device: ctx.device.id });
    } catch (err) {
      throw fail((err as Error).message);
    }
    let chain: FilterChain;
    try {
      chain = new FilterChain(cfg.name, cfg.filters ?? {}, metrics, clock);
    } catch (err) {
      throw fail(`filters: ${(err as Error).message}`);
    }
    this.filters = chain.empty ? undefined : chain;
    if (cfg.link !== undefined) {
      const { name, message, values } = cfg.link;
      try {
        this.link = { name, values: Object.entries(values ?? {}).map(([sig, path]) => [sig, compileFieldPath(path)]) };
      } catch (err) {
        throw fail(`link.values: ${(err as Error).message}`);
      }
      if (message !== undefined) this.link.message = message;
    }
    this.routed = metrics.hot(metrics.eventsRouted, { route: cfg.name });
    this.stateKey = JSON.stringify([cfg.topic, cfg.filters, ctx.prefix, ctx.device.id, cfg.link]);
  }
}

/** The config schema checks these too; here so a bad value cannot silently disable a filter. */
function checkFilters(cfg: RouteConfig, fail: (msg: string) => never): void {
  const f = cfg.filters ?? {};
  const num = (v: unknown, what: string, min: number, strict = false): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (strict && v === min)) {
      fail(`filters.${what} must be a number ${strict ? '>' : '>='} ${min}, not ${String(v)}`);
    }
  };
  if (f.rate_limit) {
    num(f.rate_limit.per_second, 'rate_limit.per_second', 0, true);
    num(f.rate_limit.burst, 'rate_limit.burst', 1);
  }
  if (f.deadband) {
    if (f.deadband.absolute !== undefined) num(f.deadband.absolute, 'deadband.absolute', 0);
    if (f.deadband.percent !== undefined) num(f.deadband.percent, 'deadband.percent', 0);
  }
  if (f.sample) {
    if (f.sample.every === undefined && f.sample.interval_ms === undefined) fail('filters.sample needs every or interval_ms');
    if (f.sample.every !== undefined && !(Number.isInteger(f.sample.every) && f.sample.every >= 1)) fail(`filters.sample.every must be an integer >= 1, not ${String(f.sample.every)}`);
    if (f.sample.interval_ms !== undefined) num(f.sample.interval_ms, 'sample.interval_ms', 0);
  }
}
