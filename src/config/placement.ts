/**
 * Where a config problem is in its file: ajv's JSON pointers as path
 * segments, and the segments as a line and column of the YAML source (or of
 * the nearest ancestor the file holds). Shared by the config loader and the
 * board profiles loader.
 */
import type { ErrorObject } from 'ajv';
import { isMap, isScalar, isSeq, type Document, type Pair, type YAMLMap } from 'yaml';
import { renderPath, type ConfigError, type Issue, type Segments } from './errors.js';
import { MAX_REPORTED_ERRORS } from './limits.js';

/** ajv's JSON pointer as keys and indexes (an index is a number only where the data is a list). */
export function splitPointer(e: ErrorObject, data: unknown): Array<string | number> {
  const out: Array<string | number> = [];
  let cur: unknown = data;
  for (const raw of e.instancePath.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      out.push(Number(seg));
      cur = cur[Number(seg)];
    } else {
      out.push(seg);
      cur = (cur as Record<string, unknown> | undefined)?.[seg];
    }
  }
  return out;
}

export interface Placed {
  /** The first MAX_REPORTED_ERRORS, in file order. */
  errors: ConfigError[];
  /** How many more there were. */
  omitted: number;
}

/**
 * De-duplicates, positions and sorts the issues (by position in the file),
 * keeps the first `max` and renders those (their hints included).
 */
export function place(doc: Document | undefined, issues: Issue[], at: (offset: number) => { line: number; column: number }, max = MAX_REPORTED_ERRORS): Placed {
  const seen = new Set<string>();
  const unique: Array<{ issue: Issue; offset: number | undefined }> = [];
  const maps = new MapIndex();
  for (const issue of issues) {
    const key = `${JSON.stringify(issue.segments)}\0${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push({ issue, offset: doc === undefined ? undefined : locate(doc, issue.segments, issue.onKey === true, maps) });
  }
  // Array.prototype.sort is stable: issues at one place keep their order
  const pos = (o: number | undefined) => o ?? Number.MAX_SAFE_INTEGER;
  unique.sort((a, b) => pos(a.offset) - pos(b.offset));
  const errors = unique.slice(0, max).map(({ issue, offset }): ConfigError => {
    const hint = typeof issue.hint === 'function' ? issue.hint() : issue.hint;
    return { path: renderPath(issue.segments), message: issue.message, ...(hint !== undefined ? { hint } : {}), ...(offset !== undefined ? at(offset) : {}) };
  });
  return { errors, omitted: unique.length - errors.length };
}

/**
 * A mapping's pairs by key, built on first lookup: finding each of N
 * errors' keys by scanning a mapping of N keys made placing quadratic
 * (minutes for a file of 30,000 unknown keys).
 */
class MapIndex {
  private readonly byMap = new WeakMap<YAMLMap, Map<string, Pair>>();

  pair(map: YAMLMap, key: string): Pair | undefined {
    let index = this.byMap.get(map);
    if (index === undefined) {
      index = new Map();
      for (const p of map.items as Pair[]) {
        const k = isScalar(p.key) ? String(p.key.value) : undefined;
        if (k !== undefined && !index.has(k)) index.set(k, p);
      }
      this.byMap.set(map, index);
    }
    return index.get(key);
  }
}

/**
 * Source offset of a path: its value (or its key when `onKey`, or when the
 * value is empty); a path the file does not hold (a default, a missing key,
 * a merged key) falls back to its nearest ancestor that it does hold.
 */
export function locate(doc: Document, segments: Segments, onKey: boolean, maps = new MapIndex()): number | undefined {
  let node: unknown = doc.contents;
  let offset = (node as { range?: [number, number, number] } | null)?.range?.[0];
  for (const [i, seg] of segments.entries()) {
    const last = i === segments.length - 1;
    if (isMap(node)) {
      const pair = maps.pair(node as YAMLMap, String(seg));
      if (pair === undefined) return offset;
      const keyAt = (pair.key as { range?: [number, number, number] }).range?.[0];
      const value = pair.value as { range?: [number, number, number] } | null;
      const empty = value === null || (isScalar(value) && value.value === null && value.range?.[0] === value.range?.[1]);
      if ((last && onKey) || empty) return keyAt ?? offset;
      node = value;
      offset = value?.range?.[0] ?? keyAt ?? offset;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as { range?: [number, number, number] } | undefined;
      if (item === undefined) return offset;
      node = item;
      offset = item.range?.[0] ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}
