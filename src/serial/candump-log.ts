/**
 * Frames from text, as CAN logs hold them, no I/O:
 * - candump log lines (`candump -l`, `candump -L`): `(1700000000.000000) can0 18FEF100#00C8FF`,
 *   optionally followed by candump's extra flags (` R`, ` T`);
 * - bare can-utils frames (`cansend` syntax, `candump -L` without the prefix): `123#1122`;
 * - JSON lines `{"id":256,"extended":false,"data":"1122"}` (`rtr` optional).
 *
 * The frame syntax is can-utils' (lib.c `parse_canframe`): 3 hex digits =
 * 11-bit id, 8 = 29-bit id (with the error flag 0x20000000 set: an error
 * frame, its id holding the error class); `#R[len]` = remote request;
 * `##<flags>` = CAN FD (flags: one hex digit, BRS 1, ESI 2) with up to 64
 * bytes; data is hex pairs with optional `.` between bytes; a classic
 * 8-byte frame may end with `_<raw DLC 9-F>`. CAN XL (5-digit prefix) is
 * not decoded. Anything else is refused with the reason.
 */

export interface LogFrame {
  kind: 'frame';
  id: number;
  extended: boolean;
  rtr: boolean;
  /** A CAN FD frame (`##`). */
  fd: boolean;
  data: Buffer;
  /** Seconds, from the `(…)` prefix. */
  timestamp?: number;
  iface?: string;
}

export interface LogErrorFrame {
  kind: 'error-frame';
  /** Error class bits (the id without the error flag). */
  id: number;
  data: Buffer;
  timestamp?: number;
  iface?: string;
}

export type LogLine = LogFrame | LogErrorFrame | { kind: 'blank' } | { kind: 'invalid'; reason: string };

const CAN_ERR_FLAG = 0x20000000;
const HEX = /^[0-9A-Fa-f]+$/;
const LOG_LINE = /^\((\d+(?:\.\d+)?)\)\s+(\S+)\s+(\S+)(?:\s+\S+)?\s*$/;

export function parseLogLine(text: string): LogLine {
  const line = text.trim();
  if (line === '' || line.startsWith('DROPCOUNT:')) return { kind: 'blank' };
  if (line.startsWith('{')) return parseJsonFrame(line);
  const m = LOG_LINE.exec(line);
  if (m !== null) {
    const f = parseCanFrame(m[3]!);
    if (f.kind === 'frame' || f.kind === 'error-frame') {
      f.timestamp = Number(m[1]);
      f.iface = m[2];
    }
    return f;
  }
  if (/\s/.test(line)) return { kind: 'invalid', reason: 'not a candump log line "(seconds) iface id#data", a frame "id#data" or a JSON object' };
  return parseCanFrame(line);
}

/** One frame in can-utils syntax (`123#11.22`, `1ABCDEF0##1AABB`, `123#R`). */
export function parseCanFrame(cs: string): LogFrame | LogErrorFrame | { kind: 'invalid'; reason: string } {
  const bad = (reason: string): { kind: 'invalid'; reason: string } => ({ kind: 'invalid', reason: `${reason}: '${cs.length > 80 ? cs.slice(0, 80) + '…' : cs}'` });
  const hash = cs.indexOf('#');
  if (hash !== 3 && hash !== 8) return bad(hash === 5 ? 'CAN XL frames are not decoded' : 'the id must be 3 (standard) or 8 (extended) hex digits before #');
  const idText = cs.slice(0, hash);
  if (!HEX.test(idText)) return bad('the id is not hex');
  let id = parseInt(idText, 16);
  let i = hash + 1;
  const error = hash === 8 && (id & CAN_ERR_FLAG) !== 0;
  const extended = hash === 8 && !error;
  if (error) id &= 0x1fffffff;
  else if (extended && id > 0x1fffffff) return bad('an extended id has 29 bits');
  if (cs[i] === 'R' || cs[i] === 'r') {
    const rest = cs.slice(i + 1);
    if (!/^(?:[0-8](?:_[9A-Fa-f])?)?$/.test(rest)) return bad('a remote request is #R with an optional length 0-8');
    return { kind: 'frame', id, extended, rtr: true, fd: false, data: Buffer.alloc(0) };
  }
  let fd = false;
  if (cs[i] === '#') {
    if (!/^[0-9A-Fa-f]$/.test(cs[i + 1] ?? '')) return bad('a CAN FD frame needs one hex digit of flags after ##');
    fd = true;
    i += 2;
  }
  let body = cs.slice(i);
  const dlc = /_[9A-Fa-f]$/.exec(body);
  if (dlc !== null && !fd) body = body.slice(0, -2);
  const hex = body.replaceAll('.', '');
  if (hex.length % 2 !== 0 || (hex !== '' && !HEX.test(hex))) return bad('the data must be pairs of hex digits');
  const max = fd ? 64 : 8;
  if (hex.length / 2 > max) return bad(`more than ${max} data bytes`);
  if (dlc !== null && (fd || hex.length !== 16)) return bad('a raw DLC (_9.._F) follows 8 data bytes of a classic frame only');
  const data = Buffer.from(hex, 'hex');
  return error ? { kind: 'error-frame', id, data } : { kind: 'frame', id, extended, rtr: false, fd, data };
}

function parseJsonFrame(line: string): LogLine {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    return { kind: 'invalid', reason: `invalid JSON: ${(err as Error).message}` };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { kind: 'invalid', reason: 'a JSON line must be an object {"id","extended","data"}' };
  const o = v as Record<string, unknown>;
  const extended = o.extended ?? false;
  if (typeof extended !== 'boolean') return { kind: 'invalid', reason: '"extended" must be true or false' };
  const max = extended ? 0x1fffffff : 0x7ff;
  if (typeof o.id !== 'number' || !Number.isInteger(o.id) || o.id < 0 || o.id > max) return { kind: 'invalid', reason: `"id" must be an integer 0..0x${max.toString(16).toUpperCase()} for ${extended ? 'an extended' : 'a standard'} frame` };
  const rtr = o.rtr ?? false;
  if (typeof rtr !== 'boolean') return { kind: 'invalid', reason: '"rtr" must be true or false' };
  const data = o.data ?? '';
  if (typeof data !== 'string' || data.length % 2 !== 0 || (data !== '' && !HEX.test(data))) return { kind: 'invalid', reason: '"data" must be a hex string of whole bytes' };
  if (data.length / 2 > 64) return { kind: 'invalid', reason: '"data" has more than 64 bytes' };
  return { kind: 'frame', id: o.id, extended, rtr, fd: data.length > 16, data: Buffer.from(data, 'hex') };
}
