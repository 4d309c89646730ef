/**
 * Where a config problem is in its file: ajv's JSON pointers as path
 * segments, and the segments as a line and column of the YAML source (or of
 * the nearest ancestor the file holds). Shared by the config loader and the
 * board profiles loader.
 */
import type { ErrorObject } from 'ajv';
import { isMap, isScalar, isSeq, type Document } from 'yaml';
import { renderPath, type ConfigError, type Issue, type Segments } from './errors.js';

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

/** Renders, de-duplicates and positions the issues, sorted by position in the file. */
export function place(doc: Document, issues: Issue[], at: (offset: number) => { line: number; column: number }): ConfigError[] {
  const seen = new Set<string>();
  const out: ConfigError[] = [];
  for (const issue of issues) {
    const path = renderPath(issue.segments);
    const key = `${path}\0${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const offset = locate(doc, issue.segments, issue.onKey === true);
    out.push({ path, message: issue.message, ...(issue.hint !== undefined ? { hint: issue.hint } : {}), ...(offset !== undefined ? at(offset) : {}) });
  }
  // Array.prototype.sort is stable: issues on one line keep their order
  const line = (e: ConfigError) => e.line ?? Number.MAX_SAFE_INTEGER;
  return out.sort((a, b) => line(a) - line(b) || (a.column ?? 0) - (b.column ?? 0));
}

/**
 * Source offset of a path: its value (or its key when `onKey`, or when the
 * value is empty); a path the file does not hold (a default, a missing key,
 * a merged key) falls back to its nearest ancestor that it does hold.
 */
export function locate(doc: Document, segments: Segments, onKey: boolean): number | undefined {
  let node: unknown = doc.contents;
  let offset = (node as { range?: [number, number, number] } | null)?.range?.[0];
  for (const [i, seg] of segments.entries()) {
    const last = i === segments.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
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
