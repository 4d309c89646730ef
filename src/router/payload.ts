/**
 * Message payloads, UTF-8 JSON:
 *
 *   raw       the event data as JSON (`null` when the event has none)
 *   envelope  {"event":"api/name","source":"binder","ts":"2024-05-01T12:00:00.000Z","seq":42,"data":…}
 *
 * In the envelope, keys always come in that order; `event` is the full wire
 * name, `source` the source's name in the config, `ts` the time the agent
 * received the event (ISO 8601, UTC, ms), `seq` the route's message number:
 * 1 for the route's first message since the agent started, +1 per message
 * the route produced (filtered events take none), so a gap seen by a
 * subscriber means a message lost after the router, never a filtered one.
 */
import type { PayloadShape } from '../config/types.js';
import type { AgentEvent } from '../core/event.js';
import { isoTime } from '../util/iso-time.js';

/** JSON text of the data; throws (BigInt, cycles, absurd nesting) only for data no JSON source makes. */
export function dataJson(data: unknown): string {
  return JSON.stringify(data) ?? 'null';
}

/** Characters JSON.stringify would escape in a string ('"', '\\', controls, surrogates to check). */
const NEEDS_JSON_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON string literal; names are nearly always plain, and quoting by hand is 4x faster. */
export function jsonString(s: string): string {
  return NEEDS_JSON_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

/** The envelope text around already serialized data (built by hand: one JSON.stringify less). */
export function envelopeJson(ev: AgentEvent, seq: number, json: string): string {
  return `{"event":${jsonString(ev.name)},"source":${jsonString(ev.source)},"ts":"${isoTime(ev.timestamp)}","seq":${seq},"data":${json}}`;
}

/** The payload bytes of one message. */
export function makePayload(shape: PayloadShape, ev: AgentEvent, seq: number, json: string): Buffer {
  return Buffer.from(shape === 'envelope' ? envelopeJson(ev, seq, json) : json, 'utf8');
}
