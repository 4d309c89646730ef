/**
 * Topic templates: compiled once per route, rendered per event.
 *
 * The template text and {prefix} come from the operator's config and are
 * written as they are (validated: no wildcard, no control character, no empty
 * level). Every other placeholder is an untrusted value (event names come
 * from binders and ECUs) and is escaped so it can never change the topic's
 * structure. The escaping rules are in ./README.md ("Escaping"); in short:
 * percent-encoding (UTF-8 bytes, %XX upper-case) of '%', '+', '#', control
 * characters (C0, DEL, C1) and Unicode noncharacters; '/' is encoded except
 * in {event}, where it separates levels; a level starting with '$' gets it
 * encoded; a level made only of values that comes out empty is written '_',
 * and one that comes out as exactly '_' is written '%5F', so that both
 * decode unambiguously (see topicLevelUnescape).
 */
import type { AgentEvent } from '../core/event.js';
import { isTopicUnit, MAX_TOPIC_BYTES, topicCharProblem } from '../core/topic-name.js';
import { compileFieldPath } from './field-path.js';

export { MAX_TOPIC_BYTES } from '../core/topic-name.js';

/** Why a template could not give a topic for an event (also the `dropped` reason). */
export interface TopicFailure {
  readonly reason: 'topic_field_missing' | 'topic_too_long';
}
export const TOPIC_FIELD_MISSING: TopicFailure = Object.freeze({ reason: 'topic_field_missing' });
export const TOPIC_TOO_LONG: TopicFailure = Object.freeze({ reason: 'topic_too_long' });

export interface TopicContext {
  /** {prefix}: operator text, inserted as written ('/' separates levels). */
  prefix: string;
  /** {device}: the device id (escaped like any value, although config validation restricts it). */
  device: string;
}

// ASCII characters written as they are in a value ('$' is handled apart: only a level start encodes it).
const PLAIN_ASCII = new Uint8Array(128);
for (let c = 0x20; c < 0x7f; c++) PLAIN_ASCII[c] = 1;
for (const ch of '%+#/$') PLAIN_ASCII[ch.charCodeAt(0)] = 0;

function isPlain(c: number): boolean {
  // Above ASCII: C1 controls, surrogates (checked in pairs by the caller) and noncharacters are not.
  return c < 0x80 ? PLAIN_ASCII[c] === 1 : isTopicUnit(c);
}

/**
 * The topic being written. `start` is where the current level begins; `lit`
 * says whether operator text is part of it (the '_' rules only apply to
 * levels made of values alone).
 */
class TopicBuilder {
  out = '';
  start = 0;
  lit = false;

  reset(): void {
    this.out = '';
    this.start = 0;
    this.lit = false;
  }

  endLevel(): void {
    if (this.lit) return;
    const len = this.out.length - this.start;
    if (len === 0) this.out += '_';
    else if (len === 1 && this.out.charCodeAt(this.start) === 0x5f) this.out = this.out.slice(0, this.start) + '%5F';
  }

  newLevel(): void {
    this.endLevel();
    this.out += '/';
    this.start = this.out.length;
    this.lit = false;
  }

  literal(text: string): void {
    this.out += text;
    this.lit = true;
  }

  /** Appends an untrusted value; with `levels`, its '/' separate levels (only {event}). */
  value(v: string, levels: boolean): void {
    const n = v.length;
    let run = 0;
    let i = 0;
    while (i < n) {
      const c = v.charCodeAt(i);
      if (isPlain(c)) {
        i++;
        continue;
      }
      if (i > run) this.out += v.slice(run, i);
      if (c === 0x2f && levels) {
        this.newLevel();
        i++;
      } else if (c === 0x24) {
        this.out += this.out.length === this.start ? '%24' : '$';
        i++;
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < n ? v.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          const pair = v.slice(i, i + 2);
          this.out += (cp & 0xfffe) === 0xfffe ? encodeURIComponent(pair) : pair;
          i += 2;
        } else {
          // A lone surrogate has no UTF-8 form: written as U+FFFD, the one lossy case.
          this.out += '\ufffd';
          i++;
        }
      } else {
        // '%', '+', '#', '/', controls, noncharacters: encodeURIComponent encodes them all.
        this.out += encodeURIComponent(v[i]!);
        i++;
      }
      run = i;
    }
    if (n > run) this.out += run === 0 ? v : v.slice(run);
  }
}

/** Escapes one whole topic level (e.g. a verb in a command reply topic): '/' is encoded. */
export function topicLevelEscape(value: string): string {
  const b = new TopicBuilder();
  b.value(value, false);
  b.endLevel();
  return b.out;
}

/**
 * Gives back the value of a level written by topicLevelEscape (or of one level
 * of a rendered template made of a single value); undefined when it is not a
 * valid encoding.
 */
export function topicLevelUnescape(level: string): string | undefined {
  if (level === '_') return '';
  try {
    return decodeURIComponent(level);
  } catch {
    return undefined;
  }
}

type Op =
  | { kind: 'lit'; text: string }
  | { kind: 'sep' }
  | { kind: 'val'; get: (ev: AgentEvent) => string | undefined; levels: boolean; data?: true };

const PLACEHOLDER = /\{([^{}]*)\}/y;

/** Bounds of a template's memo of rendered topics: entries in all, UTF-16 units of a name or source kept. */
const MEMO_ENTRIES = 1024;
const MEMO_NAME_UNITS = 128;

/** A template compiled for one route. */
export class TopicTemplate {
  /** Levels of the template once {prefix} is expanded ({event} adds one per '/' it holds). */
  readonly levels: number;
  private readonly ops: Op[];
  private readonly b = new TopicBuilder();
  /** The template has no {data…} placeholder: topics are kept per source and event name. */
  private readonly memoizable: boolean;
  private readonly memo = new Map<string, Map<string, { api: string; event: string; topic: string | TopicFailure }>>();
  private memoEntries = 0;

  /** Throws an Error saying what is wrong with the template. */
  constructor(readonly template: string, ctx: TopicContext) {
    this.ops = compile(template, ctx);
    this.levels = 1 + this.ops.filter((o) => o.kind === 'sep').length;
    this.memoizable = !this.ops.some((o) => o.kind === 'val' && o.data === true);
  }

  /** The topic for this event, or why there is none. */
  render(ev: AgentEvent): string | TopicFailure {
    // Without {data…} the topic depends on the source and the event name only: rendered once per
    // pair (escaping each value was a twentieth of a QoS 1 burst's allocations, bench/bridge.ts).
    // Event names come from binders and ECUs: only short ones are kept, and the memo starts again
    // when full, so a peer inventing names costs at most MEMO_ENTRIES entries of bounded size.
    if (!this.memoizable || ev.name.length > MEMO_NAME_UNITS || ev.source.length > MEMO_NAME_UNITS) return this.build(ev);
    let bySource = this.memo.get(ev.source);
    const hit = bySource?.get(ev.name);
    if (hit !== undefined && hit.api === ev.api && hit.event === ev.event) return hit.topic;
    if (this.memoEntries >= MEMO_ENTRIES) {
      this.memo.clear();
      this.memoEntries = 0;
      bySource = undefined;
    }
    if (bySource === undefined) this.memo.set(ev.source, bySource = new Map());
    const topic = this.build(ev);
    if (!bySource.has(ev.name)) this.memoEntries++;
    bySource.set(ev.name, { api: ev.api, event: ev.event, topic });
    return topic;
  }

  private build(ev: AgentEvent): string | TopicFailure {
    const b = this.b;
    b.reset();
    for (const op of this.ops) {
      if (op.kind === 'lit') b.literal(op.text);
      else if (op.kind === 'sep') b.newLevel();
      else {
        const v = op.get(ev);
        if (v === undefined) return TOPIC_FIELD_MISSING;
        b.value(v, op.levels);
      }
    }
    b.endLevel();
    const topic = b.out;
    b.out = ''; // do not keep the last topic alive
    // A UTF-16 unit is at most 3 bytes of UTF-8: only long strings need counting.
    if (topic.length * 3 > MAX_TOPIC_BYTES && Buffer.byteLength(topic) > MAX_TOPIC_BYTES) return TOPIC_TOO_LONG;
    return topic;
  }
}

/** Text from the config: anything a topic name may hold, except wildcards. */
function checkOperatorText(text: string, what: string): void {
  for (let i = 0; i < text.length;) {
    const { problem, units } = topicCharProblem(text, i);
    if (problem !== null) throw new Error(`${what}: ${problem}`);
    i += units;
  }
}

function scalarText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function compile(template: string, ctx: TopicContext): Op[] {
  if (template.length === 0) throw new Error('topic template is empty');
  checkOperatorText(ctx.prefix, `topic prefix "${ctx.prefix}"`);
  const ops: Op[] = [];
  const text = (t: string): void => {
    t.split('/').forEach((part, k) => {
      if (k > 0) ops.push({ kind: 'sep' });
      if (part.length > 0) ops.push({ kind: 'lit', text: part });
    });
  };
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{', i);
    const close = template.indexOf('}', i);
    if (close >= 0 && (open < 0 || close < open)) throw new Error(`topic template "${template}": '}' without '{' at ${close}`);
    if (open < 0) {
      text(template.slice(i));
      break;
    }
    if (open > i) text(template.slice(i, open));
    PLACEHOLDER.lastIndex = open;
    const m = PLACEHOLDER.exec(template);
    if (!m) throw new Error(`topic template "${template}": '{' at ${open} is not closed`);
    const name = m[1]!;
    i = open + m[0].length;
    if (name === 'prefix') {
      // An empty prefix takes the '/' after it along, so '{prefix}/x' gives 'x', not '/x'.
      if (ctx.prefix === '' && template[i] === '/') i++;
      text(ctx.prefix);
    } else if (name === 'device') {
      const escaped = topicLevelEscape(ctx.device);
      // A plain id is operator text in effect; otherwise it gets the value rules where it lands.
      if (escaped === ctx.device && ctx.device !== '') text(ctx.device);
      else ops.push({ kind: 'val', get: () => ctx.device, levels: false });
    } else if (name === 'source') ops.push({ kind: 'val', get: (ev) => ev.source, levels: false });
    else if (name === 'api') ops.push({ kind: 'val', get: (ev) => ev.api, levels: false });
    else if (name === 'event') ops.push({ kind: 'val', get: (ev) => ev.event, levels: true });
    else if (name === 'data' || name.startsWith('data.')) {
      let field: (data: unknown) => unknown;
      try {
        if (name === 'data.') throw new Error('empty field name');
        field = compileFieldPath(name === 'data' ? '' : name.slice(5));
      } catch (err) {
        throw new Error(`topic template "${template}": {${name}}: ${(err as Error).message}`);
      }
      ops.push({ kind: 'val', get: (ev) => scalarText(field(ev.data)), levels: false, data: true });
    } else {
      throw new Error(`topic template "${template}": unknown placeholder {${name}} (known: {prefix} {device} {source} {api} {event} {data} {data.field.path})`);
    }
  }
  for (const op of ops) if (op.kind === 'lit') checkOperatorText(op.text, `topic template "${template}"`);
  // Every level must hold something: a '//' or a leading or trailing '/' is a typo, not a wish.
  let filled = false;
  for (const op of [...ops, { kind: 'sep' } as Op]) {
    if (op.kind !== 'sep') filled = true;
    else if (!filled) throw new Error(`topic template "${template}" (prefix "${ctx.prefix}"): empty level`);
    else filled = false;
  }
  return ops;
}
