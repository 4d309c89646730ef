/**
 * One linear, non-recursive pass over untrusted JSON text, before JSON.parse:
 * - the nesting depth, which JSON.parse does not bound (V8 parses a million
 *   nested arrays, then JSON.stringify of the result throws RangeError);
 * - for a top-level object, the exact text of the members asked for, so an
 *   `id` can be echoed byte for byte (a number past 2^53 must not come back
 *   rounded, and Node 20's JSON.parse has no source-text access).
 * It does not validate: JSON.parse runs afterwards and has the last word.
 * (No library: streaming JSON parsers build values or emit per-token
 * callbacks, far more work than counting brackets; this is ~60 lines.)
 */

export interface JsonScan {
  /** Deepest nesting of arrays and objects (0 for a scalar). */
  depth: number;
  /**
   * Text of the top-level object's members that were asked for, by name
   * (the last one wins, as with JSON.parse), trimmed of white space.
   * Empty when the text is not an object.
   */
  members: Map<string, string>;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Scans `text`; `wanted` names the top-level members whose text is kept. */
export function scanJson(text: string, wanted: readonly string[] = []): JsonScan {
  const members = new Map<string, string>();
  let depth = 0;
  let deepest = 0;
  let inString = false;
  let stringStart = 0;
  /** Top-level object: the key just read, and where its value began. */
  let key: string | null = null;
  let lastString: string | null = null;
  let valueStart = -1;
  const topObject = text.trimStart().startsWith('{');
  const endMember = (end: number): void => {
    if (key !== null && valueStart >= 0 && wanted.includes(key)) members.set(key, text.slice(valueStart, end).trim());
    key = null;
    valueStart = -1;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) {
        inString = false;
        if (topObject && depth === 1 && valueStart < 0) lastString = text.slice(stringStart, i + 1);
      }
      continue;
    }
    if (c === QUOTE) {
      inString = true;
      stringStart = i;
      continue;
    }
    if (topObject && depth === 1) {
      if (c === 0x3a /* : */ && valueStart < 0) {
        key = decodeKey(lastString);
        valueStart = i + 1;
        continue;
      }
      if (c === 0x2c /* , */) {
        endMember(i);
        lastString = null;
        continue;
      }
    }
    if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > deepest) deepest = depth;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      if (topObject && depth === 1 && c === 0x7d) endMember(i);
      depth--;
    }
  }
  return { depth: deepest, members };
}

/** A key's JSON string text, decoded ("\u0069d" is "id"); null when it is not one. */
function decodeKey(raw: string | null): string | null {
  if (raw === null) return null;
  if (!raw.includes('\\')) return raw.slice(1, -1);
  try {
    const k: unknown = JSON.parse(raw);
    return typeof k === 'string' ? k : null;
  } catch {
    return null;
  }
}
