/**
 * Loads a config file: YAML (or JSON) → schema with defaults → semantic
 * checks. Every error is reported, not the first one, each placed at its
 * line and column in the source so that an operator can go straight there.
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import validateConfig from './generated/config-validator.js';
import { humanize } from './humanize.js';
import { dbcPath, semanticIssues } from './semantic.js';
import { type ConfigError, type Issue } from './errors.js';
import { place, splitPointer } from './placement.js';
import type { ParseCache } from './parse-cache.js';
import type { AgentConfig } from './types.js';

export { formatConfigError, type ConfigError } from './errors.js';

export interface LoadResult {
  /** Present only when `errors` is empty; every default applied. */
  config?: AgentConfig;
  errors: ConfigError[];
}

/**
 * The schema compiled at build time by Ajv (scripts/gen-config-validator.mjs):
 * no schema compilation at start-up, no Ajv compiler in memory. Generated
 * code is untyped: this is its type.
 */
const check = validateConfig as unknown as ValidateFunction;

const YAML_HINTS: Record<string, string> = {
  TAB_AS_INDENT: 'indent with spaces',
  DUPLICATE_KEY: 'a key may appear once per mapping',
  MULTIPLE_DOCS: "one document per file: remove the '---' separator",
  TAG_RESOLVE_FAILED: 'custom YAML tags are not supported',
};

export interface LoadOptions {
  /**
   * Applied to the file's data before the schema, its defaults and the
   * semantic checks: a board overlay (see ./board.ts). Errors are still
   * placed in this file; a value only the transform supplied is placed at
   * its nearest ancestor the file holds.
   */
  transform?: (data: Record<string, unknown>) => Record<string, unknown>;
  /** Reuses the data an identical text gave at an earlier start (`run`: ./parse-cache.ts). */
  parseCache?: ParseCache;
}

export function loadConfigFile(path: string, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    return { errors: [{ path: '', message: `cannot read the file: ${why}` }] };
  }
  return parseConfigText(text, path, options);
}

/** `fileName` only selects the dialect: a `.json` file is held to strict JSON scalars. */
/** `fileName` also gives the folder relative DBC paths are relative to. */
export function parseConfigText(text: string, fileName: string, options: LoadOptions = {}): LoadResult {
  const schema = extname(fileName).toLowerCase() === '.json' ? 'json' : 'core';
  const baseDir = dirname(resolve(fileName));
  const cached = options.parseCache?.lookup(text, schema);
  if (cached !== undefined) {
    const checked = checkData(cached, options, baseDir);
    if (checked.issues.length === 0) return { config: absoluteDbcPaths(checked.data as AgentConfig, baseDir), errors: [] };
    // a problem (with the board overlay, say): the full parse below places it in the file
  }
  const lines = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), {
    lineCounter: lines,
    prettyErrors: false,
    merge: true, // `<<: *defaults` lets routes share settings
    schema,
  });
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return { line, column: col };
  };
  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0) return { errors: syntax.map((e) => yamlError(e, at)) };

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    return { errors: [{ path: '', message: (err as Error).message, line: 1, column: 1 }] };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { errors: [{ path: '', message: NOT_A_MAPPING, ...at(doc.contents?.range[0] ?? 0) }] };
  }
  options.parseCache?.remember(text, schema, data); // before the board and the defaults change it
  const checked = checkData(data, options, baseDir);
  const errors = place(doc, checked.issues, at);
  return errors.length > 0 ? { errors } : { config: absoluteDbcPaths(checked.data as AgentConfig, baseDir), errors };
}

const NOT_A_MAPPING = 'the file must be a mapping with the keys device, mqtt, binders and routes';

/** The board overlay, the schema (which fills in the defaults) and the semantic checks. */
/** The links open their DBC files later, from whatever working directory: give them the paths the checks read. */
function absoluteDbcPaths(config: AgentConfig, baseDir: string): AgentConfig {
  for (const link of config.serial.links) link.dbc = link.dbc.map((f) => dbcPath(f, baseDir));
  return config;
}

function checkData(parsed: unknown, options: LoadOptions, baseDir: string): { data: unknown; issues: Issue[] } {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { data: parsed, issues: [{ segments: [], message: NOT_A_MAPPING }] };
  const data = options.transform !== undefined ? options.transform(parsed as Record<string, unknown>) : parsed;
  check(data);
  return { data, issues: [...(check.errors ?? []).map((e) => humanize(e, splitPointer(e, data))), ...semanticIssues(data, { baseDir })] };
}

function yamlError(e: YAMLError, at: (offset: number) => { line: number; column: number }): ConfigError {
  const hint = YAML_HINTS[e.code];
  return { path: '', message: `YAML: ${e.message}`, ...(hint !== undefined ? { hint } : {}), ...at(e.pos[0]) };
}

