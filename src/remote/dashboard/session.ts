/**
 * One browser on the dashboard's WebSocket: what it shows (the fleet, one
 * device, nothing), and what it has not been sent yet. Nothing is sent per
 * MQTT message: changes accumulate here and go out when the hub flushes,
 * `uiRate` times a second for rows and events and `activityRate` times for
 * the fleet's activity columns, so a flood on the bus costs the page a
 * bounded number of updates per second.
 *
 * Bounds (each counted in afb_edge_monitor_dropped_total): queued events
 * (`maxQueued`, oldest dropped: reason browser-queue), events per flush
 * (`maxPerFlush`, the rest wait: at most maxPerFlush × uiRate a second reach
 * the page), and the socket's unsent bytes (`maxBuffered`: above it nothing
 * is sent, the queue fills and drops, reason slow-browser; past 4 × the
 * browser is disconnected, 1013).
 */
import type WebSocket from 'ws';
import type { ActivityTuple, DeviceRow, ServerMessage } from './protocol.js';
import type { DashboardMetrics } from './metrics.js';

export interface SessionLimits {
  maxQueued: number;
  maxPerFlush: number;
  maxBuffered: number;
  /** Fleet rows per message (a big fleet is sent in several). */
  rowsPerMessage: number;
}

export interface FleetSource {
  row(device: string): DeviceRow | undefined;
  rows(): DeviceRow[];
  history(device: string): readonly string[];
}

type View = { kind: 'none' } | { kind: 'fleet' } | { kind: 'device'; device: string };

export class BrowserSession {
  view: View = { kind: 'none' };
  /** Remote commands of this browser awaiting their reply. */
  pendingCalls = 0;
  private readonly dirtyRows = new Set<string>();
  private readonly dirtyActivity = new Set<string>();
  private readonly removed = new Set<string>();
  private fullFleet = false;
  private deviceDirty = false;
  private queued: string[] = [];
  private dropped = 0;
  private history = false;

  constructor(
    private readonly ws: WebSocket,
    private readonly fleet: FleetSource,
    private readonly limits: SessionLimits,
    private readonly metrics: DashboardMetrics,
  ) {}

  show(view: View): void {
    this.view = view;
    this.dirtyRows.clear();
    this.dirtyActivity.clear();
    this.removed.clear();
    this.queued = [];
    this.dropped = 0;
    this.fullFleet = view.kind === 'fleet';
    this.deviceDirty = view.kind === 'device';
    // The device's recent history goes first, then what arrives from now on.
    this.history = view.kind === 'device';
  }

  rowChanged(device: string): void {
    if (this.view.kind === 'fleet') {
      this.dirtyRows.add(device);
      this.dirtyActivity.delete(device);
    } else if (this.view.kind === 'device' && this.view.device === device) {
      this.deviceDirty = true;
    }
  }

  rowRemoved(device: string): void {
    if (this.view.kind === 'fleet') {
      this.dirtyRows.delete(device);
      this.dirtyActivity.delete(device);
      this.removed.add(device);
    } else if (this.view.kind === 'device' && this.view.device === device) {
      this.deviceDirty = true;
    }
  }

  activityChanged(device: string): void {
    if (this.view.kind === 'fleet' && !this.dirtyRows.has(device)) this.dirtyActivity.add(device);
  }

  event(device: string, json: string): void {
    if (this.view.kind !== 'device' || this.view.device !== device || this.history) return;
    this.queued.push(json);
    if (this.queued.length > this.limits.maxQueued) {
      const over = this.queued.length - this.limits.maxQueued;
      this.queued.splice(0, over);
      this.dropped += over;
      this.metrics.dropped.inc({ reason: 'browser-queue' }, over);
    }
  }

  /** Rows, the device, and events, if the socket can take them. */
  flush(now: number): void {
    if (!this.writable()) return;
    if (this.view.kind === 'fleet') this.flushFleet(now);
    else if (this.view.kind === 'device') this.flushDevice(this.view.device, now);
  }

  /** The fleet's activity columns (event counts, rates, last seen). */
  flushActivity(now: number): void {
    if (this.view.kind !== 'fleet' || this.dirtyActivity.size === 0 || this.fullFleet || !this.writable()) return;
    const rows: ActivityTuple[] = [];
    for (const device of this.dirtyActivity) {
      const r = this.fleet.row(device);
      if (r !== undefined) rows.push([device, r.lastSeen, r.events, r.rate, r.lastEventTs ?? null, r.silent]);
    }
    this.dirtyActivity.clear();
    this.send({ t: 'activity', rows, now });
  }

  send(msg: ServerMessage): void {
    this.sendText(JSON.stringify(msg));
  }

  private sendText(text: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(text);
  }

  /** False while the browser has not read what it was sent (its updates then wait or drop). */
  private writable(): boolean {
    const buffered = this.ws.bufferedAmount;
    if (buffered > 4 * this.limits.maxBuffered) {
      this.metrics.dropped.inc({ reason: 'slow-browser' });
      this.ws.close(1013, 'too slow: updates not read');
      return false;
    }
    if (buffered <= this.limits.maxBuffered) return true;
    if (this.queued.length > 0) {
      this.metrics.dropped.inc({ reason: 'slow-browser' }, this.queued.length);
      this.dropped += this.queued.length;
      this.queued = [];
    }
    return false;
  }

  private flushFleet(now: number): void {
    if (this.fullFleet) {
      this.fullFleet = false;
      this.dirtyRows.clear();
      this.dirtyActivity.clear();
      this.removed.clear();
      const rows = this.fleet.rows();
      const n = this.limits.rowsPerMessage;
      this.send({ t: 'fleet', full: true, rows: rows.slice(0, n), now });
      for (let i = n; i < rows.length; i += n) this.send({ t: 'fleet', full: false, rows: rows.slice(i, i + n), now });
      return;
    }
    if (this.dirtyRows.size === 0 && this.removed.size === 0) return;
    const removed = [...this.removed];
    this.removed.clear();
    const rows: DeviceRow[] = [];
    for (const device of this.dirtyRows) {
      const r = this.fleet.row(device);
      if (r !== undefined) rows.push(r);
      this.dirtyRows.delete(device);
      if (rows.length >= this.limits.rowsPerMessage) break;
    }
    this.send({ t: 'fleet', full: false, rows, ...(removed.length > 0 ? { removed } : {}), now });
  }

  private flushDevice(device: string, now: number): void {
    if (this.deviceDirty) {
      this.deviceDirty = false;
      this.send({ t: 'device', device, row: this.fleet.row(device) ?? null, now });
    }
    let items: readonly string[];
    let history = false;
    if (this.history) {
      this.history = false;
      history = true;
      items = this.fleet.history(device);
    } else {
      if (this.queued.length === 0 && this.dropped === 0) return;
      items = this.queued.splice(0, this.limits.maxPerFlush);
    }
    const dropped = this.dropped;
    this.dropped = 0;
    // The items are JSON already (DeviceLog): joined, not parsed and serialised again.
    this.sendText(`{"t":"events","device":${JSON.stringify(device)},"history":${history},"dropped":${dropped},"now":${now},"events":[${items.join(',')}]}`);
  }
}
