/**
 * `--web [HOST:]PORT` and `--token-file FILE`: where the dashboard listens,
 * and the rule that only loopback may go without a token.
 */
import { readFileSync } from 'node:fs';
import { isLoopbackHost, MIN_TOKEN_LENGTH } from './access.js';

export interface WebListen {
  host: string;
  port: number;
}

/** "8080", "0.0.0.0:8080", "[::1]:8080", "localhost:8080"; the default host is 127.0.0.1. */
export function parseWebListen(text: string): WebListen {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]+)):)?(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 0 && port <= 65535)) throw new Error(`--web must be [HOST:]PORT (e.g. 8080, 127.0.0.1:8080, [::1]:8080), not '${text}'`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

/** The token of --token-file: its first line, at least MIN_TOKEN_LENGTH characters. */
export function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`--token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const token = text.split(/\r?\n/)[0]!.trim();
  if (token.length < MIN_TOKEN_LENGTH) throw new Error(`--token-file ${file}: the token must be at least ${MIN_TOKEN_LENGTH} characters on the first line (e.g. openssl rand -hex 24 > ${file})`);
  if (!/^[\x21-\x7e]+$/.test(token)) throw new Error(`--token-file ${file}: the token must be printable ASCII without spaces`);
  return token;
}

/** Throws unless the address is loopback or a token protects it. */
export function checkExposure(listen: WebListen, token: string | undefined): void {
  if (token === undefined && !isLoopbackHost(listen.host)) {
    throw new Error(`--web ${listen.host}:${listen.port}: listening on a non-loopback address needs --token-file (a bearer token for the page and the WebSocket); without one the dashboard only binds 127.0.0.1, ::1 or localhost`);
  }
}
