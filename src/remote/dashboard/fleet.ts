/**
 * The fleet as the monitor sees it: one row per device, built from its
 * retained status, link states and health, plus activity (last message,
 * event count and rate). Bounded: at most `maxDevices` devices; messages of
 * further devices are refused (counted by the caller through onRefused).
 *
 * A device is flagged silent while it says it is online but nothing came
 * from it for longer than its threshold: `silentAfterMs` when given, else
 * three health intervals as observed (at least 10 s), else 120 s.
 */
import type { AgentHealth, AgentStatus, LinkStatus } from '../topics.js';
import type { DeviceRow } from './protocol.js';

const RATE_BUCKETS = 10; // one per second: the rate is over the last 10 s
const DEFAULT_SILENT_MS = 120_000;
const MIN_SILENT_MS = 10_000;

interface DeviceState {
  row: DeviceRow;
  buckets: number[];
  bucketSecond: number;
  lastHealthAt?: number;
  healthIntervalMs?: number;
}

export interface FleetOptions {
  maxDevices: number;
  silentAfterMs?: number;
  /** A row changed (status, links, health, silence): send it soon. */
  onRow(device: string): void;
  /** Only the activity of a row changed. */
  onActivity(device: string): void;
  /** A device was forgotten (its retained status was cleared). */
  onRemoved(device: string): void;
}

export class Fleet {
  private readonly devices = new Map<string, DeviceState>();

  constructor(private readonly options: FleetOptions) {}

  get size(): number {
    return this.devices.size;
  }

  has(device: string): boolean {
    return this.devices.has(device);
  }

  row(device: string): DeviceRow | undefined {
    return this.devices.get(device)?.row;
  }

  rows(): DeviceRow[] {
    return [...this.devices.values()].map((d) => d.row);
  }

  /** The device's state, created on first sight; undefined when the fleet is full. */
  private state(device: string, now: number): DeviceState | undefined {
    let s = this.devices.get(device);
    if (s !== undefined) return s;
    if (this.devices.size >= this.options.maxDevices) return undefined;
    s = {
      row: { device, state: 'unknown', lastSeen: now, silent: false, silentAfterMs: this.options.silentAfterMs ?? DEFAULT_SILENT_MS, binders: {}, links: {}, outbox: {}, dropped: { total: 0, byReason: {} }, events: 0, rate: 0 },
      buckets: new Array<number>(RATE_BUCKETS).fill(0),
      bucketSecond: Math.floor(now / 1000),
    };
    this.devices.set(device, s);
    return s;
  }

  /**
   * Forgets a device: its retained status was cleared (an empty retained
   * message), which is how an operator removes a decommissioned device from
   * every dashboard.
   */
  forget(device: string): void {
    if (this.devices.delete(device)) this.options.onRemoved(device);
  }

  /** Any message of the device: false when the device is refused (fleet full). */
  seen(device: string, now: number): boolean {
    const s = this.state(device, now);
    if (s === undefined) return false;
    s.row.lastSeen = now;
    if (s.row.silent) {
      s.row.silent = false;
      this.options.onRow(device);
    }
    return true;
  }

  status(device: string, st: AgentStatus, live: boolean, now: number): void {
    const s = this.state(device, now);
    if (s === undefined) return;
    const r = s.row;
    const changed = r.state !== st.state;
    r.state = st.state;
    r.reason = st.reason;
    // A live change is timed by its receipt: the will's ts is when the connection was made.
    if (st.since !== undefined && !(live && changed && st.state === 'offline')) {
      r.since = st.since;
      r.sinceFrom = 'agent';
    } else if (changed || r.since === undefined) {
      r.since = now;
      r.sinceFrom = 'monitor';
    }
    if (st.version !== undefined) r.version = st.version;
    if (st.labels !== undefined) r.labels = st.labels;
    if (st.outbox !== undefined) r.outbox = { ...r.outbox, ...definedOnly(st.outbox) };
    if (st.state !== 'online') r.silent = false;
    this.options.onRow(device);
  }

  link(device: string, name: string, link: LinkStatus, now: number): void {
    const s = this.state(device, now);
    if (s === undefined) return;
    s.row.links[name] = { state: link.state, reason: link.reason, since: link.since };
    this.options.onRow(device);
  }

  health(device: string, h: AgentHealth, live: boolean, now: number): void {
    const s = this.state(device, now);
    if (s === undefined) return;
    const r = s.row;
    if (live) {
      if (s.lastHealthAt !== undefined) s.healthIntervalMs = now - s.lastHealthAt;
      s.lastHealthAt = now;
    }
    r.healthAt = h.ts ?? now;
    r.uptimeS = h.uptimeS;
    r.uptimeAt = h.ts ?? now;
    r.mqtt = h.mqtt;
    r.binders = h.binders;
    // The health message names each link's state; the retained link topic has the reason: keep it when the state agrees.
    for (const [name, state] of Object.entries(h.links)) {
      const prev = r.links[name];
      r.links[name] = prev !== undefined && prev.state === state ? prev : { state };
    }
    r.outbox = { ...r.outbox, ...definedOnly(h.outbox) };
    r.dropped = h.dropped;
    r.rssBytes = h.rssBytes;
    r.silentAfterMs = this.silentAfter(s);
    this.options.onRow(device);
  }

  event(device: string, ts: number | undefined, now: number): void {
    const s = this.devices.get(device);
    if (s === undefined) return;
    s.row.events++;
    if (ts !== undefined) s.row.lastEventTs = ts;
    this.roll(s, now);
    s.buckets[s.bucketSecond % RATE_BUCKETS]!++;
    this.options.onActivity(device);
  }

  /** Once a second: rates roll on, silence is flagged. */
  tick(now: number): void {
    for (const [device, s] of this.devices) {
      this.roll(s, now);
      const rate = s.buckets.reduce((a, b) => a + b, 0) / RATE_BUCKETS;
      if (rate !== s.row.rate) {
        s.row.rate = rate;
        this.options.onActivity(device);
      }
      const silent = s.row.state === 'online' && now - s.row.lastSeen > s.row.silentAfterMs;
      if (silent !== s.row.silent) {
        s.row.silent = silent;
        this.options.onRow(device);
      }
    }
  }

  private silentAfter(s: DeviceState): number {
    if (this.options.silentAfterMs !== undefined) return this.options.silentAfterMs;
    return s.healthIntervalMs !== undefined ? Math.max(MIN_SILENT_MS, 3 * s.healthIntervalMs) : DEFAULT_SILENT_MS;
  }

  /** Moves the rate window to `now`'s second, clearing the seconds passed. */
  private roll(s: DeviceState, now: number): void {
    const second = Math.floor(now / 1000);
    if (second <= s.bucketSecond) return;
    for (let t = s.bucketSecond + 1; t <= Math.min(second, s.bucketSecond + RATE_BUCKETS); t++) s.buckets[t % RATE_BUCKETS] = 0;
    s.bucketSecond = second;
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
