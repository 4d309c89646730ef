/**
 * The files a config names, read and checked as part of validating it: the
 * MQTT password, and the TLS CA, client certificate, key and passphrase
 * (which must also form a usable set). A config whose files are unusable
 * would start, or replace a running config, and then never connect: it is
 * refused instead, each problem at its key, never with the content.
 *
 * Two modes, after who checks:
 * - 'agent': the agent itself (`run`, a reload), which is the process that
 *   will read them: every problem is an error.
 * - 'check': `check-config`, usually run by an operator outside the
 *   service: a systemd credential name cannot be resolved without the
 *   service's $CREDENTIALS_DIRECTORY, and a file may be readable by the
 *   service's user only. Those are warnings (not checked), not errors.
 */
import { lazyRequire } from '../util/lazy-require.js';
import type { Issue, Segments } from './errors.js';
import { readSecret, readSecretBuffer, resolveSecretPath, SecretError } from './secrets.js';

export type FileCheckMode = 'agent' | 'check';

export interface FileIssues {
  errors: Issue[];
  warnings: Issue[];
}

// only configs with TLS load them (start-up time: src/util/lazy-require.ts)
const tls = lazyRequire<typeof import('node:tls')>('node:tls');
const crypto = lazyRequire<typeof import('node:crypto')>('node:crypto');

type Obj = Record<string, unknown>;
const obj = (x: unknown): Obj => (typeof x === 'object' && x !== null && !Array.isArray(x) ? x as Obj : {});

const TLS_FILES = [
  { key: 'ca_file', as: 'buffer' },
  { key: 'cert_file', as: 'buffer' },
  { key: 'key_file', as: 'buffer' },
  { key: 'key_passphrase_file', as: 'text' },
] as const;

/** Reads every file `data` (a config, possibly invalid elsewhere) names; `data` may have any shape. */
export function referencedFileIssues(data: unknown, mode: FileCheckMode): FileIssues {
  const out: FileIssues = { errors: [], warnings: [] };
  const mqtt = obj(obj(data).mqtt);
  read(mqtt.password_file, ['mqtt', 'password_file'], 'text', mode, out);
  if (typeof mqtt.tls === 'object' && mqtt.tls !== null) {
    const t = obj(mqtt.tls);
    const before = out.errors.length;
    const got: Partial<Record<(typeof TLS_FILES)[number]['key'], Buffer | string>> = {};
    let all = true;
    for (const { key, as } of TLS_FILES) {
      if (t[key] === undefined) continue;
      const value = read(t[key], ['mqtt', 'tls', key], as, mode, out);
      if (value === undefined) all = false;
      else got[key] = value;
    }
    if (got.ca_file !== undefined) caProblem(got.ca_file as Buffer, t.ca_file as string, out);
    if (all && out.errors.length === before) pairProblem(got, out);
  }
  return out;
}

/** The secret, or undefined with the problem recorded (a wrong type is the schema's to report). */
function read(ref: unknown, segments: Segments, as: 'text' | 'buffer', mode: FileCheckMode, out: FileIssues): Buffer | string | undefined {
  if (typeof ref !== 'string') return undefined;
  const field = segments.join('.');
  if (mode === 'check' && ref.includes('/') && !ref.startsWith('/')) {
    out.warnings.push({ segments, message: `'${ref}' is a relative path: checked from this directory, read by the agent from its own working directory`, hint: 'the service runs in / (WorkingDirectory=): give an absolute path' });
  }
  try {
    return as === 'text' ? readSecret(ref, field) : readSecretBuffer(ref, field);
  } catch (err) {
    if (!(err instanceof SecretError)) throw err;
    if (mode === 'check' && err.reason === 'no-credentials-directory') {
      out.warnings.push({
        segments,
        message: `'${ref}' is a systemd credential name: not checked, $CREDENTIALS_DIRECTORY is not set here`,
        hint: `the service reads $CREDENTIALS_DIRECTORY/${ref} (LoadCredential=${ref}:FILE in the unit); to check it, run check-config with CREDENTIALS_DIRECTORY=DIR`,
      });
    } else if (mode === 'check' && err.reason === 'permission') {
      out.warnings.push({ segments, message: `cannot read ${resolveSecretPath(ref, field)}: permission denied for this user: not checked`, hint: "the agent's user must be able to read it" });
    } else {
      out.errors.push({ segments, message: err.detail });
    }
    return undefined;
  }
}

/** Every certificate of a CA file parses (TLS itself silently skips what does not). */
function caProblem(content: Buffer, ref: string, out: FileIssues): void {
  const blocks = content.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  const segments = ['mqtt', 'tls', 'ca_file'];
  const path = resolveSecretPath(ref, 'mqtt.tls.ca_file');
  if (blocks === null) {
    try {
      new (crypto().X509Certificate)(content); // DER
    } catch {
      out.errors.push({ segments, message: `${path} holds no certificate (PEM or DER)` });
    }
    return;
  }
  for (const [i, block] of blocks.entries()) {
    try {
      new (crypto().X509Certificate)(block);
    } catch (err) {
      out.errors.push({ segments, message: `certificate ${i + 1} of ${path} cannot be parsed: ${openSslReason(err)}` });
      return;
    }
  }
}

/** The certificate, key and passphrase load together, as the MQTT connection will load them. */
function pairProblem(got: Partial<Record<string, Buffer | string>>, out: FileIssues): void {
  try {
    tls().createSecureContext({ ca: got.ca_file, cert: got.cert_file, key: got.key_file, passphrase: got.key_passphrase_file as string | undefined });
  } catch (err) {
    const which = ['cert_file', 'key_file', 'key_passphrase_file'].filter((k) => got[k] !== undefined).join(', ');
    out.errors.push({ segments: ['mqtt', 'tls'], message: `the TLS files do not form a usable set: ${openSslReason(err)} (${which})` });
  }
}

/** `error:05800074:x509 certificate routines::key values mismatch` → `key values mismatch`. */
function openSslReason(err: unknown): string {
  const message = (err as Error).message;
  const i = message.lastIndexOf('::');
  return i >= 0 ? message.slice(i + 2) : message;
}
