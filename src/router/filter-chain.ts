/**
 * A route's filters, in their fixed order, with the per-topic state they keep.
 *
 * Order: value-based first (deadband, change_only: they judge the data),
 * then sample, then rate_limit (they judge the flow of what is left), so a
 * rate limit is spent only on events that would otherwise be published.
 *
 * The state is keyed by the rendered topic and bounded, LRU, both in topics
 * (maxTopics) and in size (maxChars: the topics' length plus, for
 * change_only, the length of the JSON of the data kept): event names and data
 * are untrusted and could otherwise make it grow without end (10,000 topics
 * of 64 KiB would be 640 MB). An evicted topic starts afresh (its next event
 * passes as a first one); each eviction is counted in
 * dropped{reason="filter_state_evicted"}.
 */
import type { RouteFilters } from '../config/types.js';
import type { AgentMetrics } from '../health/metrics.js';
import { ChangeOnly, Deadband, Sampler, TokenBucket, TopicState, type TopicFilter } from './filters.js';

export const DEFAULT_MAX_TOPICS = 10_000;
/** 4 Mi characters of topics and kept JSON per route: a few MB of heap at most. */
export const DEFAULT_MAX_CHARS = 4 * 1024 * 1024;

export interface FilterChainLimits {
  maxTopics?: number;
  maxChars?: number;
}

export class FilterChain {
  private readonly filters: TopicFilter[];
  private readonly drops: Array<{ inc(): void }>;
  private readonly evicted: { inc(): void };
  private readonly states = new Map<string, TopicState>();
  private readonly keepsData: boolean;
  private readonly maxTopics: number;
  private readonly maxChars: number;
  /** Sum of the states' `chars`. */
  private chars = 0;
  /** Most recently used key: a repeated topic skips the Map reordering. */
  private newest: string | undefined;
  private now = 0;

  constructor(
    route: string,
    cfg: RouteFilters,
    metrics: AgentMetrics,
    private readonly clock: () => number,
    limits: FilterChainLimits = {},
  ) {
    this.maxTopics = Math.max(1, limits.maxTopics ?? DEFAULT_MAX_TOPICS);
    this.maxChars = limits.maxChars ?? DEFAULT_MAX_CHARS;
    this.keepsData = cfg.change_only === true;
    const notNumeric = metrics.errors.labels('router_deadband');
    const f: TopicFilter[] = [];
    if (cfg.deadband) f.push(new Deadband(cfg.deadband, () => notNumeric.inc()));
    if (cfg.change_only) f.push(new ChangeOnly());
    if (cfg.sample) f.push(new Sampler(cfg.sample));
    if (cfg.rate_limit) f.push(new TokenBucket(cfg.rate_limit));
    this.filters = f;
    this.drops = f.map((x) => metrics.eventsFiltered.labels(route, x.name));
    this.evicted = metrics.dropped.labels('filter_state_evicted');
  }

  /** True when the route has no filter: no state, nothing to do. */
  get empty(): boolean {
    return this.filters.length === 0;
  }

  /** Topics with state. */
  get size(): number {
    return this.states.size;
  }

  /**
   * Decides whether the event passes; a drop is counted. Returns the state to
   * hand to commit() once the message is really made, or undefined.
   */
  admit(topic: string, data: unknown): TopicState | undefined {
    const now = (this.now = this.clock());
    const s = this.state(topic, now);
    const f = this.filters;
    for (let i = 0; i < f.length; i++) {
      if (!f[i]!.admit(s, data, now)) {
        this.drops[i]!.inc();
        return undefined;
      }
    }
    return s;
  }

  /** Records the event as published for its topic; `json` is the data's JSON (its length is what change_only keeps). */
  commit(s: TopicState, data: unknown, json: string): void {
    for (const f of this.filters) f.commit(s, data, this.now);
    if (this.keepsData) {
      const chars = s.topic.length + json.length;
      this.chars += chars - s.chars;
      s.chars = chars;
      this.evict();
    }
  }

  /** Characters accounted (topics and kept JSON). */
  get accounted(): number {
    return this.chars;
  }

  private state(topic: string, now: number): TopicState {
    let s = this.states.get(topic);
    if (s !== undefined) {
      if (topic !== this.newest) {
        this.states.delete(topic);
        this.states.set(topic, s);
        this.newest = topic;
      }
      return s;
    }
    s = new TopicState(topic);
    for (const f of this.filters) f.init(s, now);
    this.states.set(topic, s);
    this.chars += s.chars;
    this.newest = topic;
    this.evict();
    return s;
  }

  /** Drops the least recently used states while over a bound; the newest one always stays. */
  private evict(): void {
    while (this.states.size > 1 && (this.states.size > this.maxTopics || this.chars > this.maxChars)) {
      const [oldest, s] = this.states.entries().next().value!;
      this.states.delete(oldest);
      this.chars -= s.chars;
      this.evicted.inc();
    }
  }
}
