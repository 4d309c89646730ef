/**
 * Config errors: the reported form, their one-line rendering, and the small
 * helpers the schema and semantic checks share to word them. Keys and
 * values come from the file, which may be hostile: whatever of them a
 * message shows is escaped (no control or bidirectional characters reach a
 * terminal or the journal) and shortened.
 */
import { MAX_SHOWN_CHARS } from './limits.js';

/** One problem in a config file. `path` is in user notation: `routes[0].filters.rate_limit.per_second`. */
export interface ConfigError {
  path: string;
  message: string;
  hint?: string;
  /** 1-based position in the file, when the path (or an ancestor) is found there. */
  line?: number;
  column?: number;
}

/** Path as segments: strings are keys, numbers list indexes. */
export type Segments = ReadonlyArray<string | number>;

/**
 * An error before it is placed in the file. `onKey`: point at the key
 * itself (unknown keys), not its value. A hint that costs a search (the
 * closest name among many) is a function: only the errors reported (the
 * first MAX_REPORTED_ERRORS) compute theirs.
 */
export interface Issue {
  segments: Segments;
  message: string;
  hint?: string | (() => string | undefined);
  onKey?: boolean;
}

/** `file:12:5: routes[0].qos: must be 0, 1 or 2 (hint: ...)`; `warning: ` before the message of a warning. */
export function formatConfigError(e: ConfigError, fileName: string, warning = false): string {
  const where = e.line !== undefined ? `${fileName}:${e.line}:${e.column ?? 1}` : fileName;
  const path = e.path === '' ? '' : `${e.path}: `;
  const hint = e.hint !== undefined ? ` (hint: ${e.hint})` : '';
  // the last line of defence: messages of libraries (YAML, the CAN map compiler) may quote the file
  return safeText(`${where}: ${path}${warning ? 'warning: ' : ''}${e.message}${hint}`, MAX_LINE_CHARS);
}

/** A message line's bound: the longest real one (a hint listing the keys allowed) is ~250. */
const MAX_LINE_CHARS = 1000;

/** C0 and C1 controls, DEL, line and paragraph separators, bidirectional overrides and isolates. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every character that could act on a terminal or a log escaped as \uXXXX, and at most `max` characters. */
export function safeText(text: string, max = Infinity): string {
  const escaped = text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return escaped.length > max ? `${escaped.slice(0, max - 3)}...` : escaped;
}

/** A key from the file, for a message: escaped, and shortened with its length when long. */
export function showKey(key: string): string {
  return safeText(shorten(key));
}

function shorten(key: string): string {
  return key.length > MAX_SHOWN_CHARS ? `${key.slice(0, MAX_SHOWN_CHARS - 3)}... (${key.length} characters)` : key;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function renderPath(segments: Segments): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (PLAIN_KEY.test(s) && s.length <= MAX_SHOWN_CHARS) out += out === '' ? s : `.${s}`;
    else out += `[${safeText(JSON.stringify(shorten(s)))}]`; // keys with dots or spaces (labels) stay unambiguous
  }
  return out;
}

/** The path with every index replaced by `[]`, to key per-field hints: `routes[].qos`. */
export function genericPath(segments: Segments): string {
  return renderPath(segments).replace(/\[\d+\]/g, '[]');
}

/** A short, quoted rendering of a user value for messages (never used on secret fields). */
export function show(value: unknown): string {
  const text = safeText(JSON.stringify(value) ?? String(value));
  return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS - 3)}...` : text;
}

export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The closest candidate, if close enough to be a plausible typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  if (word.length > MAX_SHOWN_CHARS) return undefined; // not a typo of a name: no O(length²) distance
  const w = word.toLowerCase();
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    if (Math.abs(c.length - w.length) > limit) continue; // the distance is at least the difference
    const d = editDistance(w, c);
    if (d < bestD) { best = c; bestD = d; }
  }
  if (bestD <= limit) return best;
  // a prefix counts as close too (`keepalive` -> `keepalive_s`, `timeout` -> `timeout_ms`)
  return w.length >= 3 ? candidates.find((c) => c.startsWith(w) || w.startsWith(c)) : undefined;
}

/** Names listed in a hint: the first ten, then how many more (a file may declare thousands). */
export function someNames(names: readonly string[], max = 10): string {
  const shown = names.slice(0, max).map(showKey).join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

/** `a, b or c` */
export function orList(items: readonly unknown[]): string {
  const parts = items.map((i) => (typeof i === 'string' ? `'${i}'` : String(i)));
  return parts.length <= 1 ? parts.join('') : `${parts.slice(0, -1).join(', ')} or ${parts[parts.length - 1]}`;
}

/** One line per error (formatConfigError), and one saying how many more there were. */
export function formatLoadErrors(r: { errors: ConfigError[]; moreErrors?: number }, fileName: string): string[] {
  const lines = r.errors.map((e) => formatConfigError(e, fileName));
  if (r.moreErrors !== undefined && r.moreErrors > 0) lines.push(`${fileName}: ${r.moreErrors} more error(s) not shown (the first ${r.errors.length} are)`);
  return lines;
}

/** Every error the result stands for, shown or not. */
export function errorCount(r: { errors: ConfigError[]; moreErrors?: number }): number {
  return r.errors.length + (r.moreErrors ?? 0);
}
