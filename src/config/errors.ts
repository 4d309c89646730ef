/**
 * Config errors: the reported form, their one-line rendering, and the small
 * helpers the schema and semantic checks share to word them.
 */

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

/** An error before it is placed in the file. `onKey`: point at the key itself (unknown keys), not its value. */
export interface Issue {
  segments: Segments;
  message: string;
  hint?: string;
  onKey?: boolean;
}

/** `file:12:5: routes[0].qos: must be 0, 1 or 2 (hint: ...)` */
export function formatConfigError(e: ConfigError, fileName: string): string {
  const where = e.line !== undefined ? `${fileName}:${e.line}:${e.column ?? 1}` : fileName;
  const path = e.path === '' ? '' : `${e.path}: `;
  const hint = e.hint !== undefined ? ` (hint: ${e.hint})` : '';
  return `${where}: ${path}${e.message}${hint}`;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function renderPath(segments: Segments): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (PLAIN_KEY.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`; // keys with dots or spaces (labels) stay unambiguous
  }
  return out;
}

/** The path with every index replaced by `[]`, to key per-field hints: `routes[].qos`. */
export function genericPath(segments: Segments): string {
  return renderPath(segments).replace(/\[\d+\]/g, '[]');
}

/** A short, quoted rendering of a user value for messages (never used on secret fields). */
export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
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
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestD) { best = c; bestD = d; }
  }
  if (bestD <= Math.max(2, Math.floor(word.length / 3))) return best;
  // a prefix counts as close too (`keepalive` -> `keepalive_s`, `timeout` -> `timeout_ms`)
  const w = word.toLowerCase();
  return w.length >= 3 ? candidates.find((c) => c.startsWith(w) || w.startsWith(c)) : undefined;
}

/** `a, b or c` */
export function orList(items: readonly unknown[]): string {
  const parts = items.map((i) => (typeof i === 'string' ? `'${i}'` : String(i)));
  return parts.length <= 1 ? parts.join('') : `${parts.slice(0, -1).join(', ')} or ${parts[parts.length - 1]}`;
}
