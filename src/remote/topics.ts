/**
 * Everything the remote side knows of the agent's topics and payloads, in
 * one place: which topic is what, and what the status, link, health, event
 * and reply messages say. Nothing else under src/remote parses a payload.
 *
 * Tolerant by design: agents of other versions publish other shapes, and a
 * monitor must show what it can of them rather than nothing. Times are read
 * from a number (ms since the epoch; a number below 1e11 is taken as
 * seconds) or an ISO 8601 string; the status time is `since` when present,
 * else `ts`. A missing or wrongly typed field is left undefined, never
 * invented. The agent's formats: src/sinks/mqtt/status.ts (status),
 * src/agent/agent.ts (link state, health), src/router/payload.ts (event
 * envelopes), src/sources/mqtt-commands/README.md (calls and replies).
 *
 * Topic layout (the agent's defaults; a config that moves status_topic,
 * health.topic or the command topics elsewhere is not recognised here):
 *   {prefix}/{device}/status               retained status
 *   {prefix}/{device}/status/links/{link}  retained serial link state
 *   {prefix}/{device}/health               retained health
 *   {prefix}/{device}/call/{binder}/{verb} remote command requests
 *   {prefix}/{device}/reply/{binder}/{verb} their replies (3.1.1 default)
 *   {prefix}/{device}/anything else        an event (route topics)
 */

export type TopicInfo =
  | { kind: 'status'; device: string }
  | { kind: 'link'; device: string; link: string }
  | { kind: 'health'; device: string }
  | { kind: 'call'; device: string; binder: string; verb: string }
  | { kind: 'reply'; device: string; binder: string; verb: string }
  | { kind: 'event'; device: string; name: string };

/** What a topic is, or undefined when it is not below `{prefix}/{device}/`. */
export function classifyTopic(prefix: string, topic: string): TopicInfo | undefined {
  if (!topic.startsWith(prefix + '/')) return undefined;
  const levels = topic.slice(prefix.length + 1).split('/');
  const device = levels[0]!;
  if (device === '' || levels.length < 2) return undefined;
  const rest = levels.slice(1);
  const [first, second, third] = rest;
  if (rest.length === 1 && first === 'status') return { kind: 'status', device };
  if (rest.length === 1 && first === 'health') return { kind: 'health', device };
  if (rest.length === 3 && first === 'status' && second === 'links' && third !== '') return { kind: 'link', device, link: third! };
  if (rest.length === 3 && (first === 'call' || first === 'reply')) return { kind: first, device, binder: second!, verb: third! };
  // The default route topic is {prefix}/{device}/events/{api}/{event}: its name is api/event.
  const nameLevels = first === 'events' && rest.length >= 3 ? rest.slice(1) : rest;
  return { kind: 'event', device, name: nameLevels.map(decodeLevel).join('/') };
}

/** The agent percent-encodes '+', '#', controls and a leading '$' of event names in topics. */
function decodeLevel(level: string): string {
  if (!level.includes('%')) return level;
  try {
    return decodeURIComponent(level);
  } catch {
    return level;
  }
}

/** A time in ms since the epoch, from a number (ms, or s below 1e11) or an ISO 8601 string. */
export function parseTime(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) {
    // 1e11 ms is March 1973, 1e11 s is the year 5138: below it, a number is seconds.
    return value < 1e11 ? Math.round(value * 1000) : Math.round(value);
  }
  if (typeof value === 'string' && value.length <= 64) {
    const ms = Date.parse(value);
    return Number.isFinite(ms) ? ms : undefined;
  }
  return undefined;
}

/** JSON text of a payload, or undefined when it is not UTF-8 JSON. */
export function parseJson(payload: Buffer | string): unknown {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The payload as JSON when it is, else its text (for display). */
export function payloadValue(payload: Buffer | string): unknown {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  const p = parseJson(text);
  return p === undefined ? text : p;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A name → string map (binder and link states, labels); other values are dropped. */
function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** The agent's `outbox` field: it recovered from a damaged outbox at its last start (src/sinks/mqtt/README.md, "Damage"). */
export interface OutboxRecovery {
  /** corrupt (file moved aside), wal (accepted messages lost), missing (the file was gone). */
  reason: string;
  /** Accepted messages lost; null when the agent could not count them. */
  lost?: number | null;
  salvaged?: number;
  movedTo?: string;
  at?: number;
}

export interface OutboxSummary {
  messages?: number;
  bytes?: number;
  oldestAgeS?: number;
  recovery?: OutboxRecovery;
  /** The agent's own `outbox` object when it sent one (status or health), for the detail view. */
  detail?: Record<string, unknown>;
}

export interface AgentStatus {
  state: 'online' | 'offline' | 'unknown';
  reason?: string;
  /** Since when the agent says it is in that state (`since`, else `ts`). */
  since?: number;
  device?: string;
  labels?: Record<string, string>;
  version?: string;
  outbox?: OutboxSummary;
}

/** The retained status message; undefined when it is no JSON object. */
export function parseStatus(payload: Buffer | string): AgentStatus | undefined {
  const p = parseJson(payload);
  if (!isObject(p)) return undefined;
  const state = p.state === 'online' || p.state === 'offline' ? p.state : 'unknown';
  return {
    state,
    reason: str(p.reason),
    since: parseTime(p.since) ?? parseTime(p.ts),
    device: str(p.device),
    labels: stringMap(p.labels),
    version: str(p.version),
    outbox: parseOutboxField(p.outbox),
  };
}

export interface LinkStatus {
  state: string;
  reason?: string;
  protocol?: string;
  device?: string;
  since?: number;
}

/** A serial link's retained state ({status_topic}/links/{link}). */
export function parseLinkStatus(payload: Buffer | string): LinkStatus | undefined {
  const p = parseJson(payload);
  if (!isObject(p) || typeof p.state !== 'string') return undefined;
  return { state: p.state, reason: str(p.reason), protocol: str(p.protocol), device: str(p.device), since: parseTime(p.since) ?? parseTime(p.ts) };
}

export interface AgentHealth {
  ts?: number;
  uptimeS?: number;
  mqtt?: string;
  binders: Record<string, string>;
  links: Record<string, string>;
  rssBytes?: number;
  outbox: OutboxSummary;
  dropped: { total: number; byReason: Record<string, number> };
  eventLoopLagS?: number;
}

/** The periodic health message (agent.ts publishHealth); undefined when it is no JSON object. */
export function parseHealth(payload: Buffer | string): AgentHealth | undefined {
  const p = parseJson(payload);
  if (!isObject(p)) return undefined;
  const metrics = isObject(p.metrics) ? p.metrics : {};
  const fromMetrics: OutboxSummary = {
    messages: num(metrics.afb_edge_outbox_messages),
    bytes: num(metrics.afb_edge_outbox_bytes),
    oldestAgeS: num(metrics.afb_edge_outbox_oldest_age_seconds),
  };
  // A top-level `outbox` field (newer agents) wins over the metrics, field by field.
  const field = parseOutboxField(p.outbox);
  const outbox: OutboxSummary = {
    messages: field?.messages ?? fromMetrics.messages,
    bytes: field?.bytes ?? fromMetrics.bytes,
    oldestAgeS: field?.oldestAgeS ?? fromMetrics.oldestAgeS,
    ...(field?.recovery ? { recovery: field.recovery } : {}),
    ...(field?.detail ? { detail: field.detail } : {}),
  };
  return {
    ts: parseTime(p.ts),
    uptimeS: num(p.uptime_s),
    mqtt: str(p.mqtt),
    binders: stringMap(p.binders) ?? {},
    links: stringMap(p.links) ?? {},
    rssBytes: num(metrics.afb_edge_process_resident_memory_bytes),
    outbox,
    dropped: counterSum(metrics.afb_edge_dropped_total),
    eventLoopLagS: num(metrics.afb_edge_nodejs_eventloop_lag_p99_seconds),
  };
}

/** A metrics summary counter: one number, or {label values: number} (metrics.ts summary()). */
function counterSum(v: unknown): { total: number; byReason: Record<string, number> } {
  if (num(v) !== undefined) return { total: v as number, byReason: {} };
  const byReason: Record<string, number> = {};
  let total = 0;
  if (isObject(v)) {
    for (const [k, n] of Object.entries(v)) {
      if (num(n) === undefined) continue;
      byReason[k] = n as number;
      total += n as number;
    }
  }
  return { total, byReason };
}

/**
 * The `outbox` object of a status or health message: the agent's recovery
 * report `{"recovered","moved_to","salvaged","lost","at"}` (depth and age
 * come from the health metrics); other keys are kept for the detail view.
 */
function parseOutboxField(v: unknown): OutboxSummary | undefined {
  if (!isObject(v)) return undefined;
  const recovery: OutboxRecovery | undefined = typeof v.recovered === 'string'
    ? { reason: v.recovered, lost: v.lost === null ? null : num(v.lost), salvaged: num(v.salvaged), movedTo: str(v.moved_to), at: parseTime(v.at) }
    : undefined;
  return {
    messages: num(v.messages),
    bytes: num(v.bytes),
    oldestAgeS: num(v.oldest_age_s),
    ...(recovery !== undefined ? { recovery } : {}),
    detail: v,
  };
}

export interface AgentEvent {
  /** api/event: the envelope's `event`, else the name the topic gives. */
  name: string;
  /** When the agent received it (envelope `ts`), if the payload says. */
  ts?: number;
  seq?: number;
  source?: string;
  /** The event data: the envelope's `data`, the raw JSON payload, or the payload text. */
  data: unknown;
  /** 'envelope', 'json' (raw payload) or 'text' (not JSON). */
  shape: 'envelope' | 'json' | 'text';
}

/** An event message: an envelope {event, source, ts, seq, data}, or a raw payload named by its topic. */
export function parseEvent(topicName: string, payload: Buffer | string): AgentEvent {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  const p = parseJson(text);
  if (p === undefined) return { name: topicName, data: text, shape: 'text' };
  if (isObject(p) && typeof p.event === 'string' && 'data' in p && ('ts' in p || 'seq' in p)) {
    return { name: p.event, ts: parseTime(p.ts), seq: num(p.seq), source: str(p.source), data: p.data, shape: 'envelope' };
  }
  return { name: topicName, data: p, shape: 'json' };
}

export interface CommandReply {
  id?: unknown;
  error: string | null;
  info?: unknown;
  data?: unknown;
}

/** A command reply {id?, error, info, data}; undefined when it is not one. */
export function parseReply(payload: Buffer | string): CommandReply | undefined {
  const p = parseJson(payload);
  if (!isObject(p) || !('error' in p)) return undefined;
  return { id: p.id, error: typeof p.error === 'string' ? p.error : p.error === null ? null : JSON.stringify(p.error), info: p.info, data: p.data };
}

/** The topic of a remote command request, and its MQTT 3.1.1 form payload (README of src/sources/mqtt-commands). */
export function commandRequest(prefix: string, device: string, binder: string, verb: string, id: string, argsJson: string): { topic: string; payload: string } {
  return { topic: `${prefix}/${device}/call/${binder}/${verb}`, payload: `{"id":${JSON.stringify(id)},"args":${argsJson}}` };
}

/** The default reply topic of a request (no reply_to given). */
export function replyTopic(prefix: string, device: string, binder: string, verb: string): string {
  return `${prefix}/${device}/reply/${binder}/${verb}`;
}

/** The subscriptions that see every message of the given devices (all devices when none). */
export function deviceFilters(prefix: string, devices: readonly string[]): string[] {
  return devices.length === 0 ? [`${prefix}/+/#`] : devices.map((d) => `${prefix}/${d}/#`);
}
