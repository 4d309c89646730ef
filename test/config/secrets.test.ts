/**
 * Secrets from files and systemd credentials: content as written (one
 * trailing newline off), errors naming the field and the path but never the
 * content, rotation fingerprints.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fileFingerprint, readSecret, readSecretBuffer, resolveSecretPath } from '../../src/config/secrets.js';
import { tempDir } from './helpers.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => { t = tempDir(); });
afterEach(() => {
  vi.unstubAllEnvs();
  t.remove();
});

/** Catches the error a call throws, failing the test when it does not throw. */
function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an exception');
}

describe('files', () => {
  it('strip exactly one trailing newline (LF or CRLF)', () => {
    writeFileSync(join(t.dir, 'a'), 'pw\n\n');
    writeFileSync(join(t.dir, 'b'), 'pw\r\n');
    writeFileSync(join(t.dir, 'c'), ' pw ');
    expect(readSecret(join(t.dir, 'a'), 'mqtt.password_file')).toBe('pw\n');
    expect(readSecret(join(t.dir, 'b'), 'mqtt.password_file')).toBe('pw');
    expect(readSecret(join(t.dir, 'c'), 'mqtt.password_file')).toBe(' pw ');
  });

  it('keep key files byte for byte', () => {
    const pem = '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n';
    writeFileSync(join(t.dir, 'key.pem'), pem);
    expect(readSecretBuffer(join(t.dir, 'key.pem'), 'mqtt.tls.key_file').toString()).toBe(pem);
  });

  it('a missing file names the field and the path', () => {
    const path = join(t.dir, 'nope');
    expect(thrown(() => readSecret(path, 'mqtt.password_file')).message).toBe(`mqtt.password_file: cannot read ${path}: no such file`);
  });

  it('a directory, an empty file or a bare newline are refused', () => {
    mkdirSync(join(t.dir, 'd'));
    writeFileSync(join(t.dir, 'empty'), '');
    writeFileSync(join(t.dir, 'nl'), '\n');
    expect(thrown(() => readSecret(join(t.dir, 'd'), 'x')).message).toBe(`x: ${join(t.dir, 'd')} is a directory, not a regular file`);
    expect(thrown(() => readSecret('/dev/zero', 'x')).message).toBe('x: /dev/zero is a character device, not a regular file');
    expect(thrown(() => readSecret(join(t.dir, 'empty'), 'x')).message).toBe(`x: ${join(t.dir, 'empty')} is empty`);
    expect(thrown(() => readSecret(join(t.dir, 'nl'), 'x')).message).toBe(`x: ${join(t.dir, 'nl')} holds only a newline`);
  });

  it('a file too large to be a secret is refused without showing its content', () => {
    writeFileSync(join(t.dir, 'big'), 'TOPSECRET'.repeat(200_000));
    const err = thrown(() => readSecretBuffer(join(t.dir, 'big'), 'mqtt.tls.key_file'));
    expect(err.message).toMatch(/^mqtt\.tls\.key_file: .*big is larger than 1048576 bytes/);
    expect(err.message).not.toContain('TOPSECRET');
  });
});

describe('systemd credentials', () => {
  it('a bare name is read from $CREDENTIALS_DIRECTORY', () => {
    writeFileSync(join(t.dir, 'mqtt-password'), 's3cr3t\n');
    vi.stubEnv('CREDENTIALS_DIRECTORY', t.dir);
    expect(readSecret('mqtt-password', 'mqtt.password_file')).toBe('s3cr3t');
    expect(resolveSecretPath('mqtt-password', 'x')).toBe(join(t.dir, 'mqtt-password'));
  });

  it('a name containing a slash is a path even when credentials are set', () => {
    vi.stubEnv('CREDENTIALS_DIRECTORY', t.dir);
    expect(resolveSecretPath('./mqtt-password', 'x')).toBe('./mqtt-password');
  });

  it('without $CREDENTIALS_DIRECTORY the error says so', () => {
    vi.stubEnv('CREDENTIALS_DIRECTORY', undefined);
    const msg = thrown(() => readSecret('mqtt-password', 'mqtt.password_file')).message;
    expect(msg).toMatch(/^mqtt\.password_file: 'mqtt-password' is a systemd credential name but \$CREDENTIALS_DIRECTORY is not set/);
    expect(msg).toContain('LoadCredential=mqtt-password:');
  });

  it('a missing credential names the field and the path', () => {
    vi.stubEnv('CREDENTIALS_DIRECTORY', t.dir);
    expect(thrown(() => readSecretBuffer('client-key', 'mqtt.tls.key_file')).message).toBe(`mqtt.tls.key_file: cannot read ${join(t.dir, 'client-key')}: no such file`);
  });

  it.each(['', '.', '..'])('%j is not a credential name', (ref) => {
    vi.stubEnv('CREDENTIALS_DIRECTORY', t.dir);
    expect(thrown(() => readSecret(ref, 'x')).message).toBe(`x: '${ref}' is neither a file path nor a credential name`);
  });
});

describe('fileFingerprint', () => {
  it('changes when the file is replaced, not when it is only read', () => {
    const path = join(t.dir, 'cert.pem');
    writeFileSync(path, 'one');
    const a = fileFingerprint(path);
    readSecretBuffer(path, 'x');
    expect(fileFingerprint(path)).toBe(a);
    writeFileSync(join(t.dir, 'new.pem'), 'second version');
    // rotation as tools do it: write aside, rename over
    renameSync(join(t.dir, 'new.pem'), path);
    expect(fileFingerprint(path)).not.toBe(a);
    expect(a).toMatch(/^\d+:3:\d+$/);
  });

  it('is null for a missing file, and resolves credential names', () => {
    expect(fileFingerprint(join(t.dir, 'nope'))).toBeNull();
    writeFileSync(join(t.dir, 'ca'), 'x');
    vi.stubEnv('CREDENTIALS_DIRECTORY', t.dir);
    expect(fileFingerprint('ca')).toMatch(/^\d+:1:\d+$/);
  });
});
