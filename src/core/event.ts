/**
 * What flows through the agent: events from sources, and the messages the
 * router makes of them for sinks.
 */

/** An event as a source delivers it to the router. */
export interface AgentEvent {
  /** Name of the source that produced it (a binder's or a serial link's name). */
  source: string;
  /** API part of the name (`hello` in `hello/speed`). */
  api: string;
  /** Event part of the name (`speed` in `hello/speed`); may itself contain '/'. */
  event: string;
  /** Full name as on the wire, `api/event`. */
  name: string;
  data: unknown;
  /** Reception time, ms since the epoch. */
  timestamp: number;
  /**
   * The data's JSON text as the source received it, when it is known to be
   * valid JSON: messages carry it as it came instead of serialising `data`
   * again (a binder's JSON is parsed once, and not re-encoded per event).
   */
  json?: string;
}

/** Splits a wire event name `api/event` (an event name without '/' has an empty api). */
export function makeEvent(source: string, name: string, data: unknown, timestamp = Date.now(), json?: string): AgentEvent {
  const slash = name.indexOf('/');
  const api = slash >= 0 ? name.slice(0, slash) : '';
  const event = slash >= 0 ? name.slice(slash + 1) : name;
  return { source, api, event, name, data, timestamp, json };
}

/** A message for MQTT, as a route produced it. */
export interface OutboundMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** Route that produced it (metrics, logs). */
  route: string;
}

/** What a route that targets a serial link produced for one event. */
export interface LinkDelivery {
  /** Route that produced it (metrics, logs). */
  route: string;
  /** Target link (serial.links[].name). */
  link: string;
  /** Full event name, `api/event`. */
  event: string;
  data: unknown;
  /** slcan: message of the link's map to encode, with its signal values taken from the event. */
  message?: string;
  values?: Record<string, unknown>;
}
