/**
 * Start-up cache of parsed YAML: the data the config file and the board file
 * gave at the last start, kept in the service's cache directory
 * (CacheDirectory=afb-edge, or $AFB_EDGE_CODE_CACHE) and reused while the
 * file's text is the same, character for character.
 *
 * Why: the `yaml` package takes ~0.4 s of the agent's start-up in the
 * emulated arm64 guest (docs/qemu.md) for a 20-line file, running its
 * lexer, parser and composer for the first time in the process; JSON.parse
 * of the same data takes a millisecond. Only the parse is skipped: the data
 * is validated and checked at every start as if it had just been parsed, and
 * when a check fails the file is parsed again so that each error gets its
 * line and column.
 *
 * The cache holds data JSON gives back exactly (no NaN, Infinity or -0;
 * other data is simply not cached), one entry per text it was given in this
 * process, tagged with the agent's version (a new version may parse
 * differently). A missing, unreadable or foreign file is an empty cache; a
 * file torn by a power cut fails JSON.parse and is one too, which is why the
 * write is not fsync'ed.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_CONFIG_BYTES } from './limits.js';
import { FileReadError, readRegularFile } from '../util/read-file.js';

export type YamlSchema = 'core' | 'json';

const FILE = 'afb-edge-parsed-config.json';
const FORMAT = 1;
/** A config file and a board file; more only if a reload brings new texts. */
const MAX_ENTRIES = 8;
/** An entry's data as JSON: a few times its text at most (a bigger one is not kept). */
const MAX_JSON_CHARS = 4 * MAX_CONFIG_BYTES;
/** The file: MAX_ENTRIES texts and their JSON, with room for JSON's escapes. A bigger file is not read. */
const MAX_FILE_BYTES = MAX_ENTRIES * (MAX_CONFIG_BYTES + MAX_JSON_CHARS) * 2;

/** What is kept for a text: made by cacheEntry() (here, or in the reload worker: src/config/check-worker.ts). */
export interface CacheEntry { schema: YamlSchema; text: string; json: string }
type Entry = CacheEntry;

/** What the loaders use of a cache (src/config/load.ts, board.ts). */
export interface ParseCacheLike {
  lookup(text: string, schema: YamlSchema): unknown;
  remember(text: string, schema: YamlSchema, data: unknown): void;
}

/** The entry for `data` parsed from `text`, or undefined when it cannot be kept (not exact as JSON, too large). */
export function cacheEntry(text: string, schema: YamlSchema, data: unknown): CacheEntry | undefined {
  if (text.length > MAX_CONFIG_BYTES || !jsonExact(data)) return undefined;
  const json = JSON.stringify(data);
  return json.length > MAX_JSON_CHARS ? undefined : { schema, text, json };
}

export class ParseCache implements ParseCacheLike {
  readonly file: string;
  /** Why the cache file could not be used or written, for the agent's log. */
  readonly problems: string[] = [];
  private readonly stored: Entry[] = [];
  private readonly used: Entry[] = [];
  private changed = false;

  constructor(dir: string, private readonly stamp: string) {
    this.file = join(dir, FILE);
    let raw: string;
    try {
      // bounded, and a regular file only (./read-file.ts): a FIFO or /dev/zero put there would hang or fill memory
      raw = readRegularFile(this.file, MAX_FILE_BYTES).toString('utf8');
    } catch (err) {
      const e = err as FileReadError;
      if (e.reason === 'not-found') return;
      this.problems.push(e.reason === 'too-large'
        ? `parse cache ${this.file} too large (${e.message}, more than ${MAX_FILE_BYTES}): parsing the files, and writing a new one`
        : `parse cache ${this.file} unreadable (${e.message}): parsing the files`);
      this.changed = e.reason === 'too-large';
      return;
    }
    try {
      const doc = JSON.parse(raw) as { format?: unknown; stamp?: unknown; entries?: unknown };
      if (doc.format !== FORMAT || doc.stamp !== stamp) return; // another version's: replaced at the next save
      if (!Array.isArray(doc.entries)) throw new Error('no entries');
      for (const e of doc.entries as Entry[]) {
        if ((e.schema === 'core' || e.schema === 'json') && typeof e.text === 'string' && typeof e.json === 'string' && e.json.length <= MAX_JSON_CHARS) this.stored.push(e);
      }
    } catch (err) {
      this.problems.push(`parse cache ${this.file} damaged (${(err as Error).message}): parsing the files, and writing a new one`);
      this.changed = true;
    }
  }

  /** The data `text` gave when it was last parsed with `schema`: a fresh copy, the caller may change it. */
  lookup(text: string, schema: YamlSchema): unknown {
    const entry = this.stored.find((e) => e.schema === schema && e.text === text);
    if (entry === undefined) return undefined;
    this.keep(entry);
    return JSON.parse(entry.json) as unknown;
  }

  /** Records what the parser gave for `text`; call before anything changes `data`. */
  remember(text: string, schema: YamlSchema, data: unknown): void {
    const entry = cacheEntry(text, schema, data);
    if (entry !== undefined) this.adopt(entry);
  }

  /** Records an entry made elsewhere (by the reload worker, from the data it parsed). */
  adopt(entry: CacheEntry): void {
    this.keep(entry);
    if (!this.stored.some((e) => e.schema === entry.schema && e.text === entry.text && e.json === entry.json)) this.changed = true;
  }

  /**
   * Writes the entries this process used, when they differ from the file's
   * (the texts of earlier versions of the files go). Atomic: another process
   * reads the old file or the new one.
   */
  save(): void {
    if (!this.changed && this.used.length === this.stored.length) return;
    const tmp = `${this.file}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, JSON.stringify({ format: FORMAT, stamp: this.stamp, entries: this.used.slice(-MAX_ENTRIES) }), { mode: 0o600 });
      renameSync(tmp, this.file);
      this.stored.splice(0, this.stored.length, ...this.used.slice(-MAX_ENTRIES));
      this.changed = false;
    } catch (err) {
      try {
        rmSync(tmp, { force: true }); // a full disk must not keep half a file
      } catch {
        // the directory itself is unusable: the problem below says which
      }
      this.problems.push(`cannot write the parse cache ${this.file}: ${(err as Error).message}`);
    }
  }

  private keep(entry: Entry): void {
    const i = this.used.findIndex((e) => e.schema === entry.schema && e.text === entry.text);
    if (i >= 0) this.used.splice(i, 1);
    this.used.push(entry);
  }
}

/** True when JSON.parse(JSON.stringify(x)) gives x back exactly. */
export function jsonExact(x: unknown): boolean {
  if (x === null || typeof x === 'string' || typeof x === 'boolean') return true;
  if (typeof x === 'number') return Number.isFinite(x) && !Object.is(x, -0);
  if (Array.isArray(x)) return x.every(jsonExact);
  if (typeof x !== 'object') return false;
  const proto = Object.getPrototypeOf(x) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  if (Object.getOwnPropertySymbols(x).length > 0) return false;
  return Object.entries(x).every(([k, v]) => k !== '__proto__' && jsonExact(v));
}
