/**
 * `afb-edge check-config FILE`, called as main.ts will call it: exit codes,
 * one line per error on stderr, the summary on stdout, the files the config
 * names read and checked (warnings for what only the service can see).
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { checkConfigCommand } from '../../src/cli/commands/check-config.js';
import { UsageError } from '../../src/cli/usage.js';
import { BASE, tempDir } from './helpers.js';

const example = resolve(import.meta.dirname, '../../config/afb-edge.example.yaml');

let out: string;
let err: string;
let t: ReturnType<typeof tempDir>;
beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => { out += String(chunk); return true; });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => { err += String(chunk); return true; });
  t = tempDir();
});
afterEach(() => {
  vi.restoreAllMocks();
  t.remove();
});

describe('check-config', () => {
  it('exits 0 on the example and sums it up on stdout', async () => {
    expect(await checkConfigCommand([example])).toBe(0);
    expect(out).toBe(`${example}: ok (1 binder, 2 serial links, 5 routes, commands on, ecu api exported)\n`);
    expect(err).toBe('');
  });

  it('counts in plural and shows commands off', async () => {
    const file = join(t.dir, 'a.yaml');
    writeFileSync(file, BASE.replace('routes:\n', '  - {name: b, spec: "unix:@b"}\nroutes:\n'));
    expect(await checkConfigCommand([file])).toBe(0);
    expect(out).toBe(`${file}: ok (2 binders, 0 serial links, 1 route, commands off)\n`);
  });

  it('exits 1 with one line per error on stderr', async () => {
    const file = join(t.dir, 'bad.yaml');
    writeFileSync(file, `${BASE}    qos: 5\n    topik: x\n`);
    expect(await checkConfigCommand([file])).toBe(1);
    expect(out).toBe('');
    expect(err.split('\n')).toEqual([
      `${file}:11:10: routes[0].qos: must be 0, 1 or 2, not 5 (hint: 0 = at most once, 1 = at least once (durable outbox), 2 = exactly once (durable outbox))`,
      `${file}:12:5: routes[0].topik: unknown key 'topik' (hint: did you mean 'topic'?)`,
      '',
    ]);
  });

  it('exits 1 when the file cannot be read', async () => {
    const file = join(t.dir, 'missing.yaml');
    expect(await checkConfigCommand([file])).toBe(1);
    expect(err).toBe(`${file}: cannot read the file: no such file\n`);
  });

  it.each([[[], /missing FILE/], [['a', 'b'], /unexpected argument 'b'/], [['--bogus', 'a'], /bogus/]])('usage error for %j', async (argv, message) => {
    await expect(checkConfigCommand(argv as string[])).rejects.toThrow(UsageError);
    await expect(checkConfigCommand(argv as string[])).rejects.toThrow(message);
    expect(out + err).toBe('');
  });

  it('exits 1 when the password file is missing or not a regular file, at its key and line', async () => {
    for (const [ref, why] of [['/dev/zero', '/dev/zero is a character device, not a regular file'], [join(t.dir, 'nope'), `cannot read ${join(t.dir, 'nope')}: no such file`]]) {
      err = '';
      const file = join(t.dir, 'pw.yaml');
      writeFileSync(file, BASE.replace('  url: mqtt://localhost:1883\n', `  url: mqtt://localhost:1883\n  username: u\n  password_file: ${ref}\n`));
      expect(await checkConfigCommand([file])).toBe(1);
      expect(out).toBe('');
      expect(err).toBe(`${file}:6:18: mqtt.password_file: ${why}\n`);
    }
  });

  it('exits 0 with a warning for a systemd credential it cannot see', async () => {
    vi.stubEnv('CREDENTIALS_DIRECTORY', '');
    try {
      const file = join(t.dir, 'cred.yaml');
      writeFileSync(file, BASE.replace('  url: mqtt://localhost:1883\n', '  url: mqtt://localhost:1883\n  username: u\n  password_file: mqtt-password\n'));
      expect(await checkConfigCommand([file])).toBe(0);
      expect(err).toBe(`${file}:6:18: mqtt.password_file: warning: 'mqtt-password' is a systemd credential name: not checked, $CREDENTIALS_DIRECTORY is not set here (hint: the service reads $CREDENTIALS_DIRECTORY/mqtt-password (LoadCredential=mqtt-password:FILE in the unit); to check it, run check-config with CREDENTIALS_DIRECTORY=DIR)\n`);
      expect(out).toBe(`${file}: ok, 1 warning (1 binder, 0 serial links, 1 route, commands off)\n`);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('exits 1 for a file over 1 MiB, naming the limit', async () => {
    const file = join(t.dir, 'big.yaml');
    writeFileSync(file, `${BASE}# ${'x'.repeat(1024 * 1024)}\n`);
    expect(await checkConfigCommand([file])).toBe(1);
    expect(err).toBe(`${file}: the file is ${BASE.length + 1024 * 1024 + 3} bytes, more than the 1 MiB (1048576 bytes) a configuration may have\n`);
  });
});
