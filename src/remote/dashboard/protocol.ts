/**
 * The dashboard's WebSocket messages, JSON text both ways. Types only: the
 * browser code (web/) and the server share this file, nothing else.
 *
 * Server → browser: hello once, then fleet / activity (fleet view), device /
 * events (device view), reply (command console), broker (its connection), notice. Browser → server:
 * view (what it shows), call (a remote command). Times are ms since the
 * epoch on the monitor's clock; `now` lets the page correct for its own.
 */

export interface LinkInfo {
  state: string;
  reason?: string;
  since?: number;
}

export interface OutboxInfo {
  messages?: number;
  bytes?: number;
  oldestAgeS?: number;
  /** The agent recovered from a damaged outbox at its last start (topics.ts OutboxRecovery). */
  recovery?: { reason: string; lost?: number | null; salvaged?: number; movedTo?: string; at?: number };
  detail?: Record<string, unknown>;
}

/** One device of the fleet, as the monitor knows it from its retained status, links and health. */
export interface DeviceRow {
  device: string;
  state: 'online' | 'offline' | 'unknown';
  reason?: string;
  /** Since when in that state; `sinceFrom` says whose clock: the agent's message or the monitor's receipt. */
  since?: number;
  sinceFrom?: 'agent' | 'monitor';
  version?: string;
  labels?: Record<string, string>;
  /** Last message of any kind from the device (monitor's clock). */
  lastSeen: number;
  /** No message for longer than the silence threshold while online. */
  silent: boolean;
  silentAfterMs: number;
  uptimeS?: number;
  /** When uptimeS was true (health ts, else receipt). */
  uptimeAt?: number;
  healthAt?: number;
  mqtt?: string;
  binders: Record<string, string>;
  links: Record<string, LinkInfo>;
  outbox: OutboxInfo;
  dropped: { total: number; byReason: Record<string, number> };
  rssBytes?: number;
  /** Events seen by the monitor, and their rate over the last 10 s. */
  events: number;
  rate: number;
  /** The agent's time of the latest event (envelope ts), when it said one. */
  lastEventTs?: number;
}

/** One message seen on a device's topics, as the device view lists it. */
export interface EventItem {
  /** The monitor's sequence number (unique per monitor run). */
  i: number;
  /** Receipt time (monitor's clock). */
  at: number;
  topic: string;
  /** api/event (envelope), else the topic below the device. */
  name: string;
  kind: 'event' | 'status' | 'link' | 'health' | 'call' | 'reply';
  ts?: number;
  seq?: number;
  shape: 'envelope' | 'json' | 'text';
  data: unknown;
  retained?: boolean;
  /** Payload bytes when the data was cut (only a text preview is kept). */
  truncated?: number;
}

/** Activity of fleet rows (sent less often than row changes): [device, lastSeen, events, rate, lastEventTs|null, silent]. */
export type ActivityTuple = [string, number, number, number, number | null, boolean];

export type ServerMessage =
  | { t: 'hello'; version: string; prefix: string; devices: string[]; commands: boolean; uiRate: number; maxEvents: number; now: number; broker: boolean }
  | { t: 'fleet'; full: boolean; rows: DeviceRow[]; removed?: string[]; now: number }
  | { t: 'activity'; rows: ActivityTuple[]; now: number }
  | { t: 'device'; device: string; row: DeviceRow | null; now: number }
  | { t: 'events'; device: string; events: EventItem[]; dropped: number; history: boolean; now: number }
  | { t: 'reply'; id: string; error: string | null; info?: unknown; data?: unknown; latencyMs: number }
  | { t: 'broker'; up: boolean; text: string }
  | { t: 'notice'; level: 'info' | 'warn' | 'error'; text: string };

export type ClientMessage =
  | { t: 'view'; view: 'fleet' }
  | { t: 'view'; view: 'device'; device: string }
  | { t: 'view'; view: 'none' }
  | { t: 'call'; id: string; device: string; binder: string; verb: string; args: string };
