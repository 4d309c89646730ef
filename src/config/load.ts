/**
 * Loads a config file: YAML (or JSON) → schema with defaults → semantic
 * checks. Every error is reported, not the first one, each placed at its
 * line and column in the source so that an operator can go straight there.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
import validateConfig from './generated/config-validator.js';
import { humanize } from './humanize.js';
import { semanticIssues } from './semantic.js';
import { type ConfigError, type Issue } from './errors.js';
import { place, splitPointer } from './placement.js';
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
export function parseConfigText(text: string, fileName: string, options: LoadOptions = {}): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), {
    lineCounter: lines,
    prettyErrors: false,
    merge: true, // `<<: *defaults` lets routes share settings
    schema: extname(fileName).toLowerCase() === '.json' ? 'json' : 'core',
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
    return { errors: [{ path: '', message: 'the file must be a mapping with the keys device, mqtt, binders and routes', ...at(doc.contents?.range[0] ?? 0) }] };
  }

  if (options.transform !== undefined) data = options.transform(data as Record<string, unknown>);

  check(data);
  const issues = [...(check.errors ?? []).map((e) => humanize(e, splitPointer(e, data))), ...semanticIssues(data)];
  const errors = place(doc, issues, at);
  return errors.length > 0 ? { errors } : { config: data as AgentConfig, errors };
}

function yamlError(e: YAMLError, at: (offset: number) => { line: number; column: number }): ConfigError {
  const hint = YAML_HINTS[e.code];
  return { path: '', message: `YAML: ${e.message}`, ...(hint !== undefined ? { hint } : {}), ...at(e.pos[0]) };
}

