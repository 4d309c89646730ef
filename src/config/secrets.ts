/**
 * Secrets (MQTT password, TLS key and its passphrase) come from files, never
 * from the config text. A reference without '/' is a systemd credential
 * name, looked up in $CREDENTIALS_DIRECTORY (LoadCredential= in the unit);
 * anything else is a file path. Errors name the config field and the path,
 * never the content.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { FileReadError, readRegularFile, type ReadFailure } from '../util/read-file.js';

/** Larger than any password or PEM chain: a bigger "secret" is a wrong path (a log, /dev/zero...). */
const MAX_SECRET_BYTES = 1024 * 1024;

/** Why a secret could not be had: a read failure, or one of the secret's own. */
export type SecretFailure = ReadFailure | 'no-credentials-directory' | 'bad-reference' | 'empty';

/** `message` is `FIELD: DETAIL`; config checks report `detail` at the field's path. */
export class SecretError extends Error {
  constructor(readonly field: string, readonly detail: string, readonly reason: SecretFailure) {
    super(`${field}: ${detail}`);
    this.name = 'SecretError';
  }
}

/** The file a reference designates. `what` names the config field, for the error message. */
export function resolveSecretPath(ref: string, what: string): string {
  if (ref.includes('/')) return ref;
  if (ref === '' || ref === '.' || ref === '..') throw new SecretError(what, `'${ref}' is neither a file path nor a credential name`, 'bad-reference');
  const dir = process.env.CREDENTIALS_DIRECTORY;
  if (dir === undefined || dir === '') {
    throw new SecretError(
      what,
      `'${ref}' is a systemd credential name but $CREDENTIALS_DIRECTORY is not set ` +
        `(add LoadCredential=${ref}:/path/to/file to the service, or give a path containing '/', e.g. ./${ref})`,
      'no-credentials-directory',
    );
  }
  return join(dir, ref);
}

/** Raw bytes of a secret (TLS keys and certificates, PEM or DER). */
export function readSecretBuffer(ref: string, what: string): Buffer {
  const path = resolveSecretPath(ref, what);
  let content: Buffer;
  try {
    content = readRegularFile(path, MAX_SECRET_BYTES);
  } catch (err) {
    const e = err as FileReadError;
    if (e.reason === 'too-large') throw new SecretError(what, `${path} is larger than ${MAX_SECRET_BYTES} bytes: is it the right file?`, e.reason);
    if (e.message.startsWith(`${path} is `)) throw new SecretError(what, e.message, e.reason); // not a regular file
    throw new SecretError(what, `cannot read ${path}: ${reason(e)}`, e.reason);
  }
  if (content.length === 0) throw new SecretError(what, `${path} is empty`, 'empty');
  return content;
}

/** A secret as text, without the one trailing newline editors and `echo` add. */
export function readSecret(ref: string, what: string): string {
  const text = readSecretBuffer(ref, what).toString('utf8').replace(/\r?\n$/, '');
  if (text === '') throw new SecretError(what, `${resolveSecretPath(ref, what)} holds only a newline`, 'empty');
  return text;
}

/**
 * Identity of a file's current version (inode, size, mtime), to notice a
 * rotated certificate or key without re-reading it; null when it cannot be
 * stat'ed (e.g. between the unlink and rename of a rotation: try again later).
 */
export function fileFingerprint(ref: string): string | null {
  try {
    const st = statSync(resolveSecretPath(ref, 'file'), { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}`;
  } catch {
    return null;
  }
}

/** Messages of our own, not the system's: they are stable and carry no content. */
function reason(e: FileReadError): string {
  return e.reason === 'permission' ? 'permission denied (the agent user must be able to read it)' : e.message;
}
