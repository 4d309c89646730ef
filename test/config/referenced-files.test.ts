/**
 * The files a config names (MQTT password, TLS CA, certificate, key and its
 * passphrase) are read and checked as part of validation: each problem at
 * its config path and line, never with the content. As the agent (`run`, a
 * reload) every problem is an error; as `check-config`, run by another user
 * outside the service, what only the service can see is a warning.
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { encryptKey, makeCa, makeCert } from '../helpers/certs.js';
import { cliMain, ensureBuilt } from '../helpers/cli.js';
import { BASE, tempDir } from './helpers.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  t = tempDir();
  vi.stubEnv('CREDENTIALS_DIRECTORY', '');
});
afterEach(() => {
  vi.unstubAllEnvs();
  t.remove();
});

/** BASE with `mqtt` lines added after the url (line 5 on). */
function config(mqttLines: string, url = 'mqtt://localhost:1883'): string {
  const file = join(t.dir, 'agent.yaml');
  writeFileSync(file, BASE.replace('  url: mqtt://localhost:1883\n', `  url: ${url}\n  username: car\n${mqttLines}`));
  return file;
}

describe('mqtt.password_file', () => {
  it('a missing file, /dev/zero, a directory and an empty file are errors at the key, in check-config and for the agent', () => {
    const empty = join(t.dir, 'empty');
    writeFileSync(empty, '');
    const cases: Array<[string, string]> = [
      [join(t.dir, 'missing'), `cannot read ${join(t.dir, 'missing')}: no such file`],
      ['/dev/zero', '/dev/zero is a character device, not a regular file'],
      [t.dir, `${t.dir} is a directory, not a regular file`],
      [empty, `${empty} is empty`],
    ];
    for (const [ref, message] of cases) {
      const file = config(`  password_file: ${ref}\n`);
      for (const files of ['agent', 'check'] as const) {
        const r = loadConfigFile(file, { files });
        expect(r.config, `${ref} ${files}`).toBeUndefined();
        expect(r.errors).toEqual([{ path: 'mqtt.password_file', message, line: 6, column: 18 }]);
      }
    }
  });

  it('a readable file passes, and its content never appears in a message', () => {
    const pw = join(t.dir, 'pw');
    writeFileSync(pw, 'hunter2\n');
    expect(loadConfigFile(config(`  password_file: ${pw}\n`), { files: 'agent' })).toMatchObject({ errors: [], warnings: [] });
    writeFileSync(pw, '\n');
    const r = loadConfigFile(config(`  password_file: ${pw}\n`), { files: 'agent' });
    expect(r.errors).toEqual([{ path: 'mqtt.password_file', message: `${pw} holds only a newline`, line: 6, column: 18 }]);
    writeFileSync(pw, 'x'.repeat(2 * 1024 * 1024));
    const big = loadConfigFile(config(`  password_file: ${pw}\n`), { files: 'agent' });
    expect(big.errors[0]!.message).toBe(`${pw} is larger than 1048576 bytes: is it the right file?`);
    expect(JSON.stringify(big)).not.toContain('xxxx');
  });

  it('a relative path is checked from here, with a warning for check-config: the service reads it from its own directory', () => {
    const cwd = process.cwd();
    try {
      process.chdir(t.dir);
      writeFileSync(join(t.dir, 'pw'), 'pw\n');
      const file = config('  password_file: ./pw\n');
      const checked = loadConfigFile(file, { files: 'check' });
      expect(checked.errors).toEqual([]);
      expect(checked.warnings).toEqual([{ path: 'mqtt.password_file', message: "'./pw' is a relative path: checked from this directory, read by the agent from its own working directory", hint: 'the service runs in / (WorkingDirectory=): give an absolute path', line: 6, column: 18 }]);
      expect(loadConfigFile(file, { files: 'agent' })).toMatchObject({ errors: [], warnings: [] });
    } finally {
      process.chdir(cwd);
    }
  });

  it('without files: the config alone is checked (the default of the library call)', () => {
    expect(loadConfigFile(config('  password_file: /nonexistent/pw\n')).errors).toEqual([]);
  });
});

describe('systemd credentials', () => {
  it('a credential name without $CREDENTIALS_DIRECTORY: a warning for check-config, an error for the agent', () => {
    const file = config('  password_file: mqtt-password\n');
    const checked = loadConfigFile(file, { files: 'check' });
    expect(checked.errors).toEqual([]);
    expect(checked.config).toBeDefined();
    expect(checked.warnings).toEqual([{
      path: 'mqtt.password_file',
      message: "'mqtt-password' is a systemd credential name: not checked, $CREDENTIALS_DIRECTORY is not set here",
      hint: 'the service reads $CREDENTIALS_DIRECTORY/mqtt-password (LoadCredential=mqtt-password:FILE in the unit); to check it, run check-config with CREDENTIALS_DIRECTORY=DIR',
      line: 6,
      column: 18,
    }]);
    const agent = loadConfigFile(file, { files: 'agent' });
    expect(agent.config).toBeUndefined();
    expect(agent.errors[0]).toMatchObject({ path: 'mqtt.password_file', line: 6 });
    expect(agent.errors[0]!.message).toMatch(/^'mqtt-password' is a systemd credential name but \$CREDENTIALS_DIRECTORY is not set/);
  });

  it('with $CREDENTIALS_DIRECTORY, the credential is read and checked', () => {
    const creds = join(t.dir, 'creds');
    mkdirSync(creds);
    vi.stubEnv('CREDENTIALS_DIRECTORY', creds);
    const file = config('  password_file: mqtt-password\n');
    expect(loadConfigFile(file, { files: 'check' }).errors).toEqual([{ path: 'mqtt.password_file', message: `cannot read ${join(creds, 'mqtt-password')}: no such file`, line: 6, column: 18 }]);
    writeFileSync(join(creds, 'mqtt-password'), 'pw');
    expect(loadConfigFile(file, { files: 'check' })).toMatchObject({ errors: [], warnings: [] });
  });
});

describe('TLS files', () => {
  it('a valid CA, certificate, encrypted key and passphrase pass', () => {
    const ca = makeCa(t.dir);
    const client = makeCert(ca, 'car', 'client');
    const key = encryptKey(client.key, 's3cr3t', join(t.dir, 'enc.key'));
    const pass = join(t.dir, 'pass');
    writeFileSync(pass, 's3cr3t\n');
    const file = config(`  tls: {ca_file: ${ca.cert}, cert_file: ${client.cert}, key_file: ${key}, key_passphrase_file: ${pass}}\n`, 'mqtts://localhost:8883');
    expect(loadConfigFile(file, { files: 'agent' })).toMatchObject({ errors: [], warnings: [] });
  });

  it('a key that does not match the certificate, or a wrong passphrase, is an error at mqtt.tls', () => {
    const ca = makeCa(t.dir);
    const a = makeCert(ca, 'a', 'client');
    const b = makeCert(ca, 'b', 'client');
    const key = encryptKey(a.key, 'right', join(t.dir, 'enc.key'));
    const wrong = join(t.dir, 'wrong');
    writeFileSync(wrong, 'wrong\n');
    const cases: Array<[string, RegExp]> = [
      [`{cert_file: ${a.cert}, key_file: ${b.key}}`, /^the TLS files do not form a usable set: key values mismatch \(cert_file, key_file\)$/],
      [`{cert_file: ${a.cert}, key_file: ${key}, key_passphrase_file: ${wrong}}`, /^the TLS files do not form a usable set: .* \(cert_file, key_file, key_passphrase_file\)$/],
    ];
    for (const [tls, message] of cases) {
      const r = loadConfigFile(config(`  tls: ${tls}\n`, 'mqtts://localhost:8883'), { files: 'agent' });
      expect(r.config, tls).toBeUndefined();
      expect(r.errors, tls).toHaveLength(1);
      expect(r.errors[0]).toMatchObject({ path: 'mqtt.tls', line: 6, column: 8 });
      expect(r.errors[0]!.message).toMatch(message);
    }
  });

  it('a CA file without a certificate, or with a broken one, is an error at mqtt.tls.ca_file (TLS would skip it silently)', () => {
    const garbage = join(t.dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    const broken = join(t.dir, 'broken.pem');
    writeFileSync(broken, `${readFileSync(makeCa(t.dir).cert, 'utf8')}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
    expect(loadConfigFile(config(`  tls: {ca_file: ${garbage}}\n`, 'mqtts://localhost:8883'), { files: 'agent' }).errors).toEqual([
      { path: 'mqtt.tls.ca_file', message: `${garbage} holds no certificate (PEM or DER)`, line: 6, column: 18 },
    ]);
    const r = loadConfigFile(config(`  tls: {ca_file: ${broken}}\n`, 'mqtts://localhost:8883'), { files: 'agent' });
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ path: 'mqtt.tls.ca_file', line: 6 });
    expect(r.errors[0]!.message).toMatch(new RegExp(`^certificate 2 of ${broken} cannot be parsed: `));
  });

  it('each unreadable TLS file is reported at its own key', () => {
    const file = config(`  tls:\n    ca_file: ${join(t.dir, 'no-ca')}\n    cert_file: /dev/null\n    key_file: ${join(t.dir, 'no-key')}\n`, 'mqtts://localhost:8883');
    expect(loadConfigFile(file, { files: 'agent' }).errors).toEqual([
      { path: 'mqtt.tls.ca_file', message: `cannot read ${join(t.dir, 'no-ca')}: no such file`, line: 7, column: 14 },
      { path: 'mqtt.tls.cert_file', message: '/dev/null is a character device, not a regular file', line: 8, column: 16 },
      { path: 'mqtt.tls.key_file', message: `cannot read ${join(t.dir, 'no-key')}: no such file`, line: 9, column: 15 },
    ]);
  });
});

describe('permissions', () => {
  /**
   * As a user who may not read the file: root reads every file whatever its mode, so as root
   * the file belongs to nobody (mode 0600) and the CLI (the built one: ensureBuilt) runs without
   * the capabilities that bypass file permissions (setpriv drops CAP_DAC_OVERRIDE and
   * CAP_DAC_READ_SEARCH), still as root, so that it can read the clone wherever it lies (a
   * 0700 temporary directory in CI: running as nobody could not). Otherwise as this user, in process.
   */
  it('a file the checking user may not read is a warning for check-config (the service user may), an error for the agent', () => {
    chmodSync(t.dir, 0o755);
    const pw = join(t.dir, 'pw');
    writeFileSync(pw, 'pw');
    chmodSync(pw, 0o600);
    const file = config(`  password_file: ${pw}\n`);
    chmodSync(file, 0o644);
    const asRoot = process.getuid?.() === 0;
    if (!asRoot) {
      chmodSync(pw, 0);
      const checked = loadConfigFile(file, { files: 'check' });
      expect(checked.errors).toEqual([]);
      expect(checked.warnings[0]).toMatchObject({ path: 'mqtt.password_file', message: `cannot read ${pw}: permission denied for this user: not checked` });
      expect(loadConfigFile(file, { files: 'agent' }).errors[0]).toMatchObject({ path: 'mqtt.password_file', message: `cannot read ${pw}: permission denied (the agent user must be able to read it)` });
      return;
    }
    ensureBuilt();
    chownSync(pw, 65534, 65534);
    const cli = (...args: string[]) => spawnSync('setpriv', ['--bounding-set', '-dac_override,-dac_read_search', process.execPath, cliMain, ...args],
      { encoding: 'utf8', timeout: 20_000, env: { ...process.env, CREDENTIALS_DIRECTORY: '' } });
    const checked = cli('check-config', file);
    expect(checked.stderr).toBe(`${file}:6:18: mqtt.password_file: warning: cannot read ${pw}: permission denied for this user: not checked (hint: the agent's user must be able to read it)\n`);
    expect(checked.stdout).toMatch(/: ok, 1 warning \(/);
    expect(checked.status).toBe(0);
    const run = cli('run', '--config', file);
    expect(run.stderr).toContain(`${file}:6:18: mqtt.password_file: cannot read ${pw}: permission denied (the agent user must be able to read it)\n`);
    expect(run.status).toBe(1);
  });
});
