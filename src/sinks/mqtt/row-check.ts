/**
 * What makes a stored message publishable, and the checksum that tells a
 * row read back from the outbox is the row that was written.
 *
 * A few flipped bytes in the database file pass SQLite's quick_check (it
 * checks the b-tree structure, not the values): a '#' or a control
 * character in a stored topic then makes the broker drop the connection at
 * every resend, forever (issue 11). Every row the outbox reads back from
 * disk is checked here; one that fails is dead-lettered, not sent.
 */
import { mqttTopicProblem } from '../../core/topic-name.js';
import { CRC32_START, crc32Final, crc32Update, crc32UpdateText } from '../../serial/crc.js';

/**
 * Why `topic` cannot be published, or undefined when it can: the MQTT
 * topic-name rules mosquitto enforces (src/core/topic-name.ts). The router
 * percent-encodes everything they forbid in what it builds
 * (src/router/topic-template.ts); a stored topic that breaks them can only
 * come from corruption, or from a topic made elsewhere.
 */
export function topicProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string') return `the topic is not text (${topic === null ? 'null' : typeof topic})`;
  return mqttTopicProblem(topic) ?? undefined;
}

/**
 * topicProblem() for a stream of messages: the router hands the same topic
 * string for the events of one name (its memo), so the last topic that
 * passed is not checked again.
 */
export class TopicCheck {
  private lastGood: string | undefined;

  problem(topic: string): string | undefined {
    if (topic === this.lastGood) return undefined;
    const bad = topicProblem(topic);
    if (bad === undefined) this.lastGood = topic;
    return bad;
  }
}

const head = Buffer.alloc(10);

/**
 * CRC-32 of what delivery depends on: the id (order), QoS, retain, the
 * topic and the payload. (Not the route name or the creation time: they
 * only label logs and gauges.)
 *
 * The CRC-32 of head, topic (UTF-8) and payload one after the other, as
 * zlib.crc32 computed it before (rows written then still check). In
 * JavaScript rather than with zlib.crc32: loading node:zlib for it kept
 * ~0.3 MB more RSS in the agent, and the table loop costs 0.40 µs where
 * zlib.crc32 took 0.33 (a 165-byte row of bench/bridge.ts, whose durable
 * messages cost ~20 µs of agent CPU each).
 */
export function rowChecksum(id: number, qos: number, retain: boolean, topic: string, payload: Buffer): number {
  head.writeDoubleLE(id, 0);
  head[8] = qos;
  head[9] = retain ? 1 : 0;
  return crc32Final(crc32Update(crc32UpdateText(crc32Update(CRC32_START, head), topic), payload));
}

/** A row as better-sqlite3 returns it: any column may hold any type once the file is damaged. */
export interface RawRow {
  id: unknown;
  topic: unknown;
  payload: unknown;
  qos: unknown;
  retain: unknown;
  route: unknown;
  created_ms: unknown;
  bytes: unknown;
  crc: unknown;
}

/**
 * Why a stored row cannot be the message that was written, or undefined
 * when it is sound. Rows of schema version 1 have no checksum (crc NULL):
 * only their structure and topic are checked.
 */
/**
 * A row read as an array, in the outbox table's column order (id, topic,
 * payload, qos, retain, route, created_ms, bytes[, crc]). The outbox reads
 * rows back that way: better-sqlite3 builds a row object property by
 * property through V8's API, ~0.9 µs of the ~3 µs a 9-column row cost
 * (100-row reads of 20,000 rows, objects against arrays); this literal
 * costs a few ns.
 */
export function rawRow(v: unknown[]): RawRow {
  return { id: v[0], topic: v[1], payload: v[2], qos: v[3], retain: v[4], route: v[5], created_ms: v[6], bytes: v[7], crc: v.length > 8 ? v[8] : null };
}

export function rowProblem(r: RawRow): string | undefined {
  if (typeof r.id !== 'number' || !Number.isSafeInteger(r.id) || r.id <= 0) return `bad id ${String(r.id)}`;
  const topic = topicProblem(r.topic);
  if (topic !== undefined) return topic;
  if (!Buffer.isBuffer(r.payload)) return `the payload is not a blob (${r.payload === null ? 'null' : typeof r.payload})`;
  if (r.qos !== 0 && r.qos !== 1 && r.qos !== 2) return `bad qos ${String(r.qos)}`;
  if (r.retain !== 0 && r.retain !== 1) return `bad retain flag ${String(r.retain)}`;
  if (typeof r.route !== 'string') return 'the route name is not text';
  if (typeof r.created_ms !== 'number') return 'the creation time is not a number';
  if (r.bytes !== Buffer.byteLength(r.topic as string) + r.payload.length) return `its size (${String(r.bytes)}) does not match its topic and payload (${Buffer.byteLength(r.topic as string) + r.payload.length})`;
  if (r.crc === null) return undefined;
  if (typeof r.crc !== 'number') return 'the checksum is not a number';
  const crc = rowChecksum(r.id, r.qos, r.retain === 1, r.topic as string, r.payload);
  if (crc !== r.crc) return `checksum mismatch (stored ${r.crc >>> 0}, computed ${crc})`;
  return undefined;
}
