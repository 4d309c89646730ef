/**
 * The agent's counters and gauges, in one prom-client registry so they can
 * be served in Prometheus text format and published as a status message.
 * Every bound in the agent has a counter here that shows when it fired.
 */
// prom-client's modules one by one, not its index: the index also loads the
// Pushgateway (http, https, url) and every process collector, ~0.6 s of the
// agent's start-up in the emulated arm64 guest (docs/qemu.md).
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import Registry from 'prom-client/lib/registry.js';
import { HotCounter } from './hot-counter.js';

const PROCESS_METRICS_DETAIL = /^afb_edge_(process|nodejs)_/;
const PROCESS_METRICS_SUMMARY = new Set([
  'afb_edge_process_resident_memory_bytes',
  'afb_edge_process_cpu_seconds_total',
  'afb_edge_nodejs_eventloop_lag_p99_seconds',
  'afb_edge_nodejs_heap_size_used_bytes',
]);

export interface OutboxGauges {
  depth: number;
  bytes: number;
  oldestAgeS: number;
  /** Since this outbox opened: transactions committed, WAL fsyncs done. */
  commits: number;
  syncs: number;
}

export class AgentMetrics {
  readonly registry = new Registry();
  /** The per-event counters' children (hot()), by counter and label values; flushed when a counter is read. */
  private readonly hotCounters = new Map<Counter<string>, Map<string, HotCounter>>();
  private readonly flushHot = (): void => {
    for (const children of this.hotCounters.values()) for (const c of children.values()) c.flush();
  };
  /** The running outbox's state, read when its gauges are (watchOutbox). */
  private outboxState: (() => OutboxGauges) | undefined;
  /** The followed outbox's commits and syncs already counted (each outbox counts from 0). */
  private outboxCounted = { commits: 0, syncs: 0 };
  private readonly collectOutbox = (): void => {
    if (this.outboxState) this.setOutboxGauges(this.outboxState());
  };

  readonly eventsIn = new Counter({ name: 'afb_edge_events_in_total', help: 'Events received, per source', labelNames: ['source'], registers: [this.registry], collect: this.flushHot });
  readonly eventsRouted = new Counter({ name: 'afb_edge_events_routed_total', help: 'Messages produced by routes', labelNames: ['route'], registers: [this.registry], collect: this.flushHot });
  readonly eventsFiltered = new Counter({ name: 'afb_edge_events_filtered_total', help: 'Events dropped by a route filter, per route and filter', labelNames: ['route', 'filter'], registers: [this.registry] });
  readonly eventsUnrouted = new Counter({ name: 'afb_edge_events_unrouted_total', help: 'Events no route selected', registers: [this.registry] });
  readonly published = new Counter({ name: 'afb_edge_published_total', help: 'Messages acknowledged by the broker (QoS>0) or written (QoS 0)', labelNames: ['qos'], registers: [this.registry], collect: this.flushHot });
  readonly dropped = new Counter({ name: 'afb_edge_dropped_total', help: 'Messages dropped, per reason', labelNames: ['reason'], registers: [this.registry] });
  readonly outboxDepth = new Gauge({ name: 'afb_edge_outbox_messages', help: 'Messages waiting in the durable outbox', registers: [this.registry], collect: this.collectOutbox });
  readonly outboxBytes = new Gauge({ name: 'afb_edge_outbox_bytes', help: 'Payload bytes waiting in the durable outbox', registers: [this.registry], collect: this.collectOutbox });
  readonly outboxOldestAge = new Gauge({ name: 'afb_edge_outbox_oldest_age_seconds', help: 'Age of the oldest message in the outbox', registers: [this.registry], collect: this.collectOutbox });
  readonly outboxCommits = new Counter({ name: 'afb_edge_outbox_commits_total', help: 'Transactions the durable outbox committed (pages written; commit_delay_ms groups more messages into each)', registers: [this.registry], collect: this.collectOutbox });
  readonly outboxSyncs = new Counter({ name: 'afb_edge_outbox_syncs_total', help: 'fsyncs of the outbox WAL (synchronous: full; sync_interval_ms spaces them)', registers: [this.registry], collect: this.collectOutbox });
  readonly outboxRecovered = new Counter({ name: 'afb_edge_outbox_recovered_total', help: 'Outbox damage found at start-up, per reason (corrupt: file moved aside; wal: messages missing after a damaged WAL; missing: database file gone)', labelNames: ['reason'], registers: [this.registry] });
  readonly mqttConnected = new Gauge({ name: 'afb_edge_mqtt_connected', help: '1 when connected to the broker', registers: [this.registry] });
  readonly reconnects = new Counter({ name: 'afb_edge_reconnects_total', help: 'Reconnections, per peer kind and name', labelNames: ['kind', 'name'], registers: [this.registry] });
  readonly binderConnected = new Gauge({ name: 'afb_edge_binder_connected', help: '1 when the binder connection is up', labelNames: ['binder'], registers: [this.registry] });
  readonly commands = new Counter({ name: 'afb_edge_commands_total', help: 'Remote commands, per outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly configReloads = new Counter({ name: 'afb_edge_config_reloads_total', help: 'Configuration reloads, per outcome', labelNames: ['outcome'], registers: [this.registry] });
  readonly serialUp = new Gauge({ name: 'afb_edge_serial_link_up', help: '1 when the serial link is open and initialised', labelNames: ['link'], registers: [this.registry] });
  readonly serialFrames = new Counter({ name: 'afb_edge_serial_frames_in_total', help: 'Frames or messages decoded from a serial link', labelNames: ['link'], registers: [this.registry] });
  readonly serialRejected = new Counter({ name: 'afb_edge_serial_rejected_total', help: 'Input dropped by a serial link decoder, per reason', labelNames: ['link', 'reason'], registers: [this.registry] });
  readonly serialWrites = new Counter({ name: 'afb_edge_serial_writes_total', help: 'Writes to a serial link, per outcome (ok, busy: queue bound hit, down: link not open, invalid)', labelNames: ['link', 'outcome'], registers: [this.registry] });
  readonly serialRequests = new Counter({ name: 'afb_edge_serial_requests_total', help: 'Requests to an ECU, per outcome', labelNames: ['link', 'outcome'], registers: [this.registry] });
  readonly errors = new Counter({ name: 'afb_edge_errors_total', help: 'Errors logged, per component', labelNames: ['component'], registers: [this.registry] });
  readonly wsapiLimited = new Counter({ name: 'afb_edge_wsapi_limited_total', help: 'wsapi messages or connections refused by a bound, per endpoint and limit (docs/wsapi.md)', labelNames: ['endpoint', 'limit'], registers: [this.registry] });
  readonly wsapiConnections = new Gauge({ name: 'afb_edge_wsapi_connections', help: 'Connections open to an exported wsapi API', labelNames: ['endpoint'], registers: [this.registry] });

  private readonly withProcessMetrics: boolean;
  private processMetrics: Promise<void> | undefined;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.withProcessMetrics = options.defaultMetrics !== false;
  }

  /**
   * The outbox gauges follow `state`, read whenever they are (/metrics, the
   * status summary, the watchdog): the outbox commits up to hundreds of
   * times a second, and setting three gauges at each commit was ~5 % of the
   * agent's allocations at 1,000 events/s (bench/bridge.ts heap profile).
   */
  watchOutbox(state: () => OutboxGauges): void {
    if (this.outboxState) this.unwatchOutbox(this.outboxState); // counts what the previous one did since the last read
    this.outboxState = state;
    this.outboxCounted = { commits: 0, syncs: 0 };
  }

  /** Stops following `state` if it is the one followed; the gauges keep its last values. */
  unwatchOutbox(state: () => OutboxGauges): void {
    if (this.outboxState !== state) return;
    this.setOutboxGauges(state());
    this.outboxState = undefined;
  }

  private setOutboxGauges(g: OutboxGauges): void {
    this.outboxDepth.set(g.depth);
    this.outboxBytes.set(g.bytes);
    this.outboxOldestAge.set(g.oldestAgeS);
    const counted = this.outboxCounted;
    if (g.commits > counted.commits) this.outboxCommits.inc(g.commits - counted.commits);
    if (g.syncs > counted.syncs) this.outboxSyncs.inc(g.syncs - counted.syncs);
    counted.commits = g.commits;
    counted.syncs = g.syncs;
  }

  /**
   * A child of eventsIn, eventsRouted or published for the per-event path
   * (hot-counter.ts); the same child for the same labels, so that a config
   * reload rebuilding the routes does not add children.
   */
  hot(counter: Counter<string>, labels: Record<string, string>): HotCounter {
    let children = this.hotCounters.get(counter);
    if (children === undefined) this.hotCounters.set(counter, (children = new Map()));
    const key = Object.values(labels).join('\u0000');
    let c = children.get(key);
    if (c === undefined) children.set(key, (c = new HotCounter(counter, labels)));
    return c;
  }

  /**
   * Starts the process metrics (RSS, CPU, heap, event-loop lag: prom-client
   * measures them). `run` calls it right after READY=1 because their modules
   * are not needed to get there; the first text() or summary() calls it too.
   * Idempotent.
   */
  collectProcessMetrics(): Promise<void> {
    if (!this.withProcessMetrics) return Promise.resolve();
    this.processMetrics ??= import('./process-metrics.js').then(({ registerProcessMetrics }) => registerProcessMetrics(this.registry, 'afb_edge_'));
    return this.processMetrics;
  }

  /** Prometheus text exposition. */
  async text(): Promise<string> {
    await this.collectProcessMetrics();
    return this.registry.metrics();
  }

  /** A compact JSON summary for the status topic. */
  async summary(): Promise<Record<string, unknown>> {
    await this.collectProcessMetrics();
    const out: Record<string, unknown> = {};
    for (const m of await this.registry.getMetricsAsJSON()) {
      // Of the process metrics, only those an operator looks at first: the status message stays small.
      if (PROCESS_METRICS_DETAIL.test(m.name) && !PROCESS_METRICS_SUMMARY.has(m.name)) continue;
      const values = m.values as Array<{ labels: Record<string, string | number>; value: number }>;
      if (values.length === 1 && Object.keys(values[0]!.labels).length === 0) out[m.name] = values[0]!.value;
      else if (values.length > 0) {
        out[m.name] = Object.fromEntries(values.map((v) => [Object.values(v.labels).join(',') || '_', v.value]));
      }
    }
    return out;
  }
}
