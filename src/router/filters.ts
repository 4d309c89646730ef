/**
 * The four route filters. Each one is the rule only: the state it reads is
 * the per-topic TopicState that ./filter-chain.ts keeps (a route may produce
 * many topics, each with its own history).
 *
 * admit() decides and may do bookkeeping that is not "what was published"
 * (token refill, the sampler's count of events seen); commit() runs only once
 * the event is really published, so that an event dropped by a later filter
 * leaves no trace as "last published". Times are ms from the chain's clock.
 */
import type { DeadbandFilter, RateLimitFilter, SampleFilter } from '../config/types.js';
import { compileFieldPath } from './field-path.js';
import { jsonEqual } from './json-equal.js';

export type FilterName = 'deadband' | 'change_only' | 'sample' | 'rate_limit';

/** Per-topic state of every filter of a route (one object, not one per filter: one map lookup). */
export class TopicState {
  /** Characters this state accounts for in its chain's bound (topic, kept JSON). */
  chars: number;

  constructor(readonly topic: string) {
    this.chars = topic.length;
  }

  /** deadband: last published number. */
  value = 0;
  hasValue = false;
  /** change_only: last published data. */
  data: unknown = undefined;
  hasData = false;
  /** sample: events that reached the sampler since the last published one; time of that one. */
  seen = 0;
  sampledAt = 0;
  hasSampled = false;
  /** rate_limit: tokens left and when they were last refilled. */
  tokens = 0;
  refilledAt = 0;
}

export interface TopicFilter {
  readonly name: FilterName;
  init(s: TopicState, now: number): void;
  admit(s: TopicState, data: unknown, now: number): boolean;
  commit(s: TopicState, data: unknown, now: number): void;
}

/** Token bucket: `burst` tokens at first, refilled at `per_second`, one per published event. */
export class TokenBucket implements TopicFilter {
  readonly name = 'rate_limit';
  private readonly perMs: number;
  private readonly burst: number;

  constructor(cfg: RateLimitFilter) {
    this.perMs = cfg.per_second / 1000;
    // A bucket that can never hold a token would silence the route for good: at least 1.
    this.burst = Math.max(1, cfg.burst);
  }

  init(s: TopicState, now: number): void {
    s.tokens = this.burst;
    s.refilledAt = now;
  }

  admit(s: TopicState, _data: unknown, now: number): boolean {
    // A clock that went back (a wall clock set by NTP at boot) refills nothing and re-anchors.
    const elapsed = now - s.refilledAt;
    if (elapsed > 0) s.tokens = Math.min(this.burst, s.tokens + elapsed * this.perMs);
    s.refilledAt = now;
    return s.tokens >= 1;
  }

  commit(s: TopicState): void {
    s.tokens -= 1;
  }
}

/** Drops an event whose data deep-equals the last published data of its topic. */
export class ChangeOnly implements TopicFilter {
  readonly name = 'change_only';

  init(): void {}

  admit(s: TopicState, data: unknown): boolean {
    return !s.hasData || !jsonEqual(s.data, data);
  }

  commit(s: TopicState, data: unknown): void {
    // Kept by reference: sources hand over freshly parsed data and never mutate it afterwards.
    s.data = data;
    s.hasData = true;
  }
}

/** Relative tolerance, so that 0.3 - 0.1 counts as the 0.2 change it is meant to be. */
const TOLERANCE = 1 - 1e-9;

/**
 * Numeric deadband: the first value passes, then a value passes when it moved
 * from the last published one by >= absolute, or by >= percent % of |last|
 * (either threshold suffices; with neither, any change). A change of 0 never
 * passes. A value that is not a finite number passes and is reported through
 * `onNotNumeric` (the data does not match the route's config: let it be seen).
 */
export class Deadband implements TopicFilter {
  readonly name = 'deadband';
  private readonly field: (data: unknown) => unknown;
  private readonly absolute: number | undefined;
  private readonly ratio: number | undefined;

  constructor(cfg: DeadbandFilter, private readonly onNotNumeric: () => void = () => {}) {
    this.field = compileFieldPath(cfg.field ?? '');
    this.absolute = cfg.absolute;
    this.ratio = cfg.percent === undefined ? undefined : cfg.percent / 100;
  }

  init(): void {}

  admit(s: TopicState, data: unknown): boolean {
    const v = this.field(data);
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.onNotNumeric();
      return true;
    }
    if (!s.hasValue) return true;
    const delta = Math.abs(v - s.value);
    if (delta === 0) return false;
    if (this.absolute === undefined && this.ratio === undefined) return true;
    if (this.absolute !== undefined && delta >= this.absolute * TOLERANCE) return true;
    return this.ratio !== undefined && delta >= this.ratio * Math.abs(s.value) * TOLERANCE;
  }

  commit(s: TopicState, data: unknown): void {
    const v = this.field(data);
    if (typeof v === 'number' && Number.isFinite(v)) {
      s.value = v;
      s.hasValue = true;
    }
  }
}

/**
 * Sampling: one event out of `every` (the first, then every `every`-th), and/or
 * at most one per `interval_ms`; with both, an event must satisfy both. When
 * the chosen event is dropped by the rate limit after it, the next one is chosen.
 */
export class Sampler implements TopicFilter {
  readonly name = 'sample';
  private readonly every: number;
  private readonly intervalMs: number;

  constructor(cfg: SampleFilter) {
    this.every = Math.max(1, Math.floor(cfg.every ?? 1));
    this.intervalMs = cfg.interval_ms ?? 0;
  }

  init(s: TopicState): void {
    s.seen = this.every - 1;
  }

  admit(s: TopicState, _data: unknown, now: number): boolean {
    s.seen++;
    if (s.seen < this.every) return false;
    // A clock that went back lets one through and re-anchors (commit), rather than stall.
    return !s.hasSampled || now - s.sampledAt >= this.intervalMs || now < s.sampledAt;
  }

  commit(s: TopicState, _data: unknown, now: number): void {
    s.seen = 0;
    s.sampledAt = now;
    s.hasSampled = true;
  }
}
