/**
 * Command-line parsing on node:util parseArgs (no dependency needed for this
 * small grammar), plus the value checks every command shares.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './usage.js';
import { parseSpec, type SocketSpec } from '../wsapi/index.js';
import { createLogger, type LogLevel, type Logger } from '../util/log.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export const COMMON_OPTIONS: Options = {
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export function parse(argv: string[], options: Options) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function specArg(text: string | undefined, what = 'SPEC'): SocketSpec {
  if (text === undefined) throw new UsageError(`missing ${what}`);
  try {
    return parseSpec(text);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function jsonArg(text: string | undefined, what: string): string {
  if (text === undefined) return 'null';
  try {
    JSON.parse(text);
  } catch {
    throw new UsageError(`${what} is not valid JSON: ${text} (quote strings: '"text"')`);
  }
  return text;
}

export function intArg(text: string | undefined, what: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${what} must be an integer ≥ ${min}, not '${text}'`);
  return n;
}

export function loggerArg(level: unknown): Logger {
  const l = (level ?? 'warn') as string;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(l)) throw new UsageError(`--log-level must be debug, info, warn, error or silent, not '${l}'`);
  return createLogger(l as LogLevel);
}
