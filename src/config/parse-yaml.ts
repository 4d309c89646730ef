/**
 * YAML (or JSON) text → data, for the config and board loaders, in time
 * and memory bounded whatever the text: the limits of ./limits.ts are
 * enforced before the parser builds its tree (items), while it does
 * (stack) and on what it gives (depth, alias expansion), each with a
 * message that says which limit and where.
 */
import { CST, isMap, isScalar, isSeq, Lexer, LineCounter, parseDocument, type Document, type Pair, type YAMLError } from 'yaml';
import { renderPath, type ConfigError, type Segments } from './errors.js';
import { MAX_DEPTH, MAX_YAML_ITEMS } from './limits.js';
import type { YamlSchema } from './parse-cache.js';
import { locate } from './placement.js';

export type At = (offset: number) => { line: number; column: number };

export type Parsed =
  | { ok: true; doc: Document; at: At; data: unknown }
  | { ok: false; errors: ConfigError[] };

const YAML_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'indent with spaces',
  DUPLICATE_KEY: 'a key may appear once per mapping',
  MULTIPLE_DOCS: "one document per file: remove the '---' separator",
  TAG_RESOLVE_FAILED: 'custom YAML tags are not supported',
};

const TOO_DEEP = `YAML: nested too deeply (a configuration is at most ${MAX_DEPTH} levels deep)`;

/**
 * Values the data may hold once YAML aliases are expanded: an alias shares
 * its anchor's data, so `[*a, *a, ...]` of a large anchor would make every
 * later pass over the data (schema, checks, JSON copies) as large as the
 * product. Twice the items a file may hold.
 */
const MAX_EXPANDED_VALUES = 2 * MAX_YAML_ITEMS;

export function parseYaml(source: string, schema: YamlSchema): Parsed {
  const text = source.replace(/^\uFEFF/, '');
  // each item is at least one character: a shorter text is within the limit, and is not lexed twice
  if (text.length >= MAX_YAML_ITEMS) {
    const over = offsetPastItemLimit(text);
    if (over !== undefined) {
      return { ok: false, errors: [{ path: '', message: `more than ${MAX_YAML_ITEMS} YAML items (keys, values, list entries, separators): not a configuration of this agent`, ...lineColumn(text, over) }] };
    }
  }
  const lines = new LineCounter();
  // uniqueKeys: false: the library compares each key with every earlier key of its mapping
  // (quadratic: 21 s for 64,000 keys); duplicateKeys() below does it with a Set.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true, schema, uniqueKeys: false });
  const at: At = (offset) => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const syntax = [...doc.errors, ...doc.warnings];
  const exhausted = syntax.find((e) => e.code === 'RESOURCE_EXHAUSTION');
  // the stack ran out while composing: the errors after it only echo it
  if (exhausted !== undefined) return { ok: false, errors: [{ path: '', message: TOO_DEEP, ...at(exhausted.pos[0]) }] };
  const errors = [...syntax.map((e) => yamlError(e, at)), ...duplicateKeys(doc, at)];
  if (errors.length > 0) return { ok: false, errors: errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0)) };

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    const message = err instanceof RangeError && /call stack/i.test(err.message) ? TOO_DEEP : `YAML: ${(err as Error).message}`;
    return { ok: false, errors: [{ path: '', message, line: 1, column: 1 }] };
  }
  const shape = dataShapeProblem(data);
  if (shape !== undefined) {
    const offset = locate(doc, shape.segments, false);
    return { ok: false, errors: [{ path: renderPath(shape.segments), message: shape.message, ...(offset !== undefined ? at(offset) : {}) }] };
  }
  return { ok: true, doc, at, data };
}

function yamlError(e: YAMLError, at: At): ConfigError {
  const hint = YAML_HINTS[e.code];
  return { path: '', message: `YAML: ${e.message}`, ...(hint !== undefined ? { hint } : {}), ...at(e.pos[0]) };
}

/**
 * Where the lexer finds the item past MAX_YAML_ITEMS, or undefined. The
 * lexer streams its tokens (no tree, memory flat); their texts are the
 * source's, apart from the one-character markers it inserts.
 */
function offsetPastItemLimit(text: string): number | undefined {
  let items = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    switch (CST.tokenType(token)) {
      case 'doc-mode': case 'flow-error-end': case 'scalar':
        continue; // markers the lexer adds: not in the text
      case 'space': case 'newline': case 'comment': case 'byte-order-mark': case 'doc-start': case 'doc-end': case 'directive-line':
        break;
      default:
        if (++items > MAX_YAML_ITEMS) return offset;
    }
    offset += token.length;
  }
  return undefined;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

/** Keys that repeat within a mapping, each at its second occurrence (as the library reports them). */
function duplicateKeys(doc: Document, at: At): ConfigError[] {
  const out: ConfigError[] = [];
  // iterative: a tree the composer built may still be deeper than a recursion could follow
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items as Pair[]) {
        if (isScalar(pair.key)) {
          // a Set compares as the library does (===): the string '1' and the number 1 are different keys
          if (seen.has(pair.key.value)) out.push(yamlError({ code: 'DUPLICATE_KEY', message: 'Map keys must be unique', pos: [pair.key.range![0], pair.key.range![1]] } as unknown as YAMLError, at));
          else seen.add(pair.key.value);
        }
        stack.push(pair.key, pair.value);
      }
    } else if (isSeq(node)) {
      stack.push(...(node.items as unknown[]));
    }
  }
  return out;
}

/**
 * The first place where the data is deeper than MAX_DEPTH, or where it has
 * expanded past MAX_EXPANDED_VALUES values; undefined when neither. An
 * explicit stack, not recursion: the data may be deeper than the stack.
 */
export function dataShapeProblem(data: unknown): { segments: Segments; message: string } | undefined {
  interface Frame { value: unknown; depth: number; parent: Frame | undefined; segment: string | number }
  const pathOf = (f: Frame): Segments => {
    const out: Array<string | number> = [];
    for (let c: Frame | undefined = f; c?.parent !== undefined; c = c.parent) out.push(c.segment);
    return out.reverse();
  };
  const stack: Frame[] = [{ value: data, depth: 1, parent: undefined, segment: '' }];
  let values = 0;
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (++values > MAX_EXPANDED_VALUES) return { segments: pathOf(f), message: `the data expands to more than ${MAX_EXPANDED_VALUES} values (through YAML aliases)` };
    if (typeof f.value !== 'object' || f.value === null) continue;
    if (f.depth > MAX_DEPTH) return { segments: pathOf(f), message: `nested more than ${MAX_DEPTH} levels deep` };
    const entries: Array<[string | number, unknown]> = Array.isArray(f.value) ? f.value.map((v, i) => [i, v]) : Object.entries(f.value);
    // reversed: the first child is visited first, so the first problem in file order is the one reported
    for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i]![1], depth: f.depth + 1, parent: f, segment: entries[i]![0] });
  }
  return undefined;
}
