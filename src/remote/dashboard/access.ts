/**
 * Who may open the dashboard. Three checks, each with its reason:
 *
 * - token (when the monitor has one: required off loopback): the page takes
 *   it once as `?token=…` and answers with a cookie holding its SHA-256
 *   (HttpOnly, SameSite=Strict), so the token itself leaves the address bar
 *   and is not kept by the browser; later requests and the WebSocket upgrade
 *   carry that cookie, or `Authorization: Bearer <token>` (scripts, curl).
 *   Compared in constant time.
 * - host (without a token, i.e. on loopback): the Host header must name a
 *   loopback address, so that a web page whose name was re-pointed at
 *   127.0.0.1 (DNS rebinding) cannot read the dashboard.
 * - origin (WebSocket upgrade): the Origin header must be the page's own
 *   (same host and port as the Host header): another site's script cannot
 *   open the socket with the browser's cookie.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export const COOKIE_NAME = 'afb_edge_dashboard';
export const MIN_TOKEN_LENGTH = 16;

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A loopback host name or address: localhost, 127.0.0.0/8, ::1 (with or without brackets). */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./i.test(h);
  return false;
}

/** The host part of a Host header value ("name:port", "[v6]:port"). */
function hostOnly(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const colon = hostHeader.lastIndexOf(':');
  return colon >= 0 ? hostHeader.slice(0, colon) : hostHeader;
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

export type Refusal = 'token' | 'host' | 'origin';

export class AccessCheck {
  private readonly tokenHash: Buffer | undefined;

  constructor(token: string | undefined) {
    this.tokenHash = token === undefined ? undefined : sha256(token);
  }

  get needsToken(): boolean {
    return this.tokenHash !== undefined;
  }

  /** The cookie value that stands for the token. */
  cookieValue(): string {
    return this.tokenHash?.toString('hex') ?? '';
  }

  /** The Set-Cookie header granting access. */
  setCookie(): string {
    return `${COOKIE_NAME}=${this.cookieValue()}; HttpOnly; SameSite=Strict; Path=/`;
  }

  /** Whether `candidate` is the token (constant time). */
  tokenMatches(candidate: string): boolean {
    return this.tokenHash !== undefined && timingSafeEqual(sha256(candidate), this.tokenHash);
  }

  /** Why the request may not see the dashboard, or undefined when it may. */
  refuse(req: IncomingMessage): Refusal | undefined {
    if (this.tokenHash === undefined) {
      return isLoopbackHost(hostOnly(req.headers.host ?? '')) ? undefined : 'host';
    }
    const auth = req.headers.authorization;
    if (auth !== undefined && /^Bearer /i.test(auth) && this.tokenMatches(auth.slice(7).trim())) return undefined;
    const cookie = parseCookies(req.headers.cookie).get(COOKIE_NAME);
    if (cookie !== undefined && /^[0-9a-f]{64}$/.test(cookie) && timingSafeEqual(Buffer.from(cookie, 'hex'), this.tokenHash)) return undefined;
    return 'token';
  }

  /** For the WebSocket upgrade: the token or host check, then the Origin. */
  refuseUpgrade(req: IncomingMessage): Refusal | undefined {
    const denied = this.refuse(req);
    if (denied !== undefined) return denied;
    const origin = req.headers.origin;
    if (origin === undefined) return 'origin';
    try {
      return new URL(origin).host === (req.headers.host ?? '').toLowerCase() ? undefined : 'origin';
    } catch {
      return 'origin';
    }
  }
}
