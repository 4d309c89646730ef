/**
 * Loads a config file: YAML (or JSON) → schema with defaults → semantic
 * checks → (optionally) the files it names. Every error is reported, not
 * the first one (up to MAX_REPORTED_ERRORS, the rest counted), each placed
 * at its line and column in the source so that an operator can go straight
 * there. A hostile file costs bounded time and memory (./limits.ts).
 */
import { dirname, extname, resolve } from 'node:path';
import type { ValidateFunction } from 'ajv';
import validateConfig from './generated/config-validator.js';
import { humanize } from './humanize.js';
import { dbcPath, semanticIssues } from './semantic.js';
import { formatConfigError, type ConfigError, type Issue } from './errors.js';
import { MAX_CONFIG_BYTES, MAX_REPORTED_ERRORS } from './limits.js';
import { dataShapeProblem, parseYaml } from './parse-yaml.js';
import { place, splitPointer } from './placement.js';
import { FileReadError, readRegularFile } from '../util/read-file.js';
import { referencedFileIssues, type FileCheckMode } from './referenced-files.js';
import type { ParseCacheLike } from './parse-cache.js';
import type { AgentConfig } from './types.js';

export { errorCount, formatConfigError, formatLoadErrors, type ConfigError } from './errors.js';

export interface LoadResult {
  /** Present only when `errors` is empty; every default applied. */
  config?: AgentConfig;
  /** The first MAX_REPORTED_ERRORS errors, in file order. */
  errors: ConfigError[];
  /** How many errors there were beyond those. */
  moreErrors?: number;
  /** Problems that do not stop the config from loading (`files: 'check'`: what could not be checked). */
  warnings: ConfigError[];
}

/**
 * The schema compiled at build time by Ajv (scripts/gen-config-validator.mjs):
 * no schema compilation at start-up, no Ajv compiler in memory. Generated
 * code is untyped: this is its type.
 */
const check = validateConfig as unknown as ValidateFunction;

export interface LoadOptions {
  /**
   * Applied to the file's data before the schema, its defaults and the
   * semantic checks: a board overlay (see ./board.ts). Errors are still
   * placed in this file; a value only the transform supplied is placed at
   * its nearest ancestor the file holds.
   */
  transform?: (data: Record<string, unknown>) => Record<string, unknown>;
  /** Reuses the data an identical text gave at an earlier start (`run`: ./parse-cache.ts). */
  parseCache?: ParseCacheLike;
  /** Also reads and checks the files the config names (./referenced-files.ts); none when absent. */
  files?: FileCheckMode;
}

const LIMIT_TEXT = `${MAX_CONFIG_BYTES / 1024 / 1024} MiB (${MAX_CONFIG_BYTES} bytes)`;

/** The text of a config or board file, at most MAX_CONFIG_BYTES of a regular file; or the error to report. */
export function readConfigText(path: string): { text: string } | { error: ConfigError } {
  try {
    return { text: readRegularFile(path, MAX_CONFIG_BYTES).toString('utf8') };
  } catch (err) {
    const e = err as FileReadError;
    if (e.reason === 'too-large') return { error: { path: '', message: `${e.message}, more than the ${LIMIT_TEXT} a configuration may have` } };
    return { error: { path: '', message: `cannot read the file: ${e.message}` } };
  }
}

export function loadConfigFile(path: string, options: LoadOptions = {}): LoadResult {
  const read = readConfigText(path);
  if ('error' in read) return { errors: [read.error], warnings: [] };
  return parseConfigText(read.text, path, options);
}

/**
 * `fileName` selects the dialect (a `.json` file is held to strict JSON
 * scalars) and gives the folder relative DBC paths are relative to.
 */
export function parseConfigText(text: string, fileName: string, options: LoadOptions = {}): LoadResult {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_CONFIG_BYTES) return { errors: [{ path: '', message: `the file is ${bytes} bytes, more than the ${LIMIT_TEXT} a configuration may have` }], warnings: [] };
  const schema = extname(fileName).toLowerCase() === '.json' ? 'json' : 'core';
  const baseDir = dirname(resolve(fileName));
  const cached = options.parseCache?.lookup(text, schema);
  // the cache file is data on disk too: held to the same shape as what the parser gives
  if (cached !== undefined && dataShapeProblem(cached) === undefined) {
    const checked = checkData(cached, options, baseDir);
    if (checked.issues.length === 0 && checked.warnings.length === 0) return { config: absoluteDbcPaths(checked.data as AgentConfig, baseDir), errors: [], warnings: [] };
    // a problem (with the board overlay, say): the full parse below places it in the file
  }
  const parsed = parseYaml(text, schema);
  if (!parsed.ok) return capped(parsed.errors);
  const { doc, at, data } = parsed;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { errors: [{ path: '', message: NOT_A_MAPPING, ...at(doc.contents?.range?.[0] ?? 0) }], warnings: [] };
  }
  options.parseCache?.remember(text, schema, data); // before the board and the defaults change it
  const checked = checkData(data, options, baseDir);
  const { errors, omitted } = place(doc, checked.issues, at);
  const warnings = place(doc, checked.warnings, at).errors;
  if (errors.length > 0) return { errors, ...(omitted > 0 ? { moreErrors: omitted } : {}), warnings };
  return { config: absoluteDbcPaths(checked.data as AgentConfig, baseDir), errors, warnings };
}

function capped(errors: ConfigError[]): LoadResult {
  const more = errors.length - MAX_REPORTED_ERRORS;
  return more > 0 ? { errors: errors.slice(0, MAX_REPORTED_ERRORS), moreErrors: more, warnings: [] } : { errors, warnings: [] };
}

const NOT_A_MAPPING = 'the file must be a mapping with the keys device, mqtt, binders and routes';

/** The links open their DBC files later, from whatever working directory: give them the paths the checks read. */
function absoluteDbcPaths(config: AgentConfig, baseDir: string): AgentConfig {
  for (const link of config.serial.links) link.dbc = link.dbc.map((f) => dbcPath(f, baseDir));
  return config;
}

/** The board overlay, the schema (which fills in the defaults), the semantic checks, the files named. */
function checkData(parsed: unknown, options: LoadOptions, baseDir: string): { data: unknown; issues: Issue[]; warnings: Issue[] } {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { data: parsed, issues: [{ segments: [], message: NOT_A_MAPPING }], warnings: [] };
  const data = options.transform !== undefined ? options.transform(parsed as Record<string, unknown>) : parsed;
  check(data);
  const issues = [...(check.errors ?? []).map((e) => humanize(e, splitPointer(e, data))), ...semanticIssues(data, { baseDir })];
  if (options.files === undefined) return { data, issues, warnings: [] };
  const files = referencedFileIssues(data, options.files);
  return { data, issues: [...issues, ...files.errors], warnings: files.warnings };
}
