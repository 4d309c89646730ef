/**
 * Hostile and broken config files: bounded before parsing (size, what the
 * file is, YAML items), linear validation however many errors, deep
 * nesting reported as such, and every message safe to print (control
 * characters escaped, huge keys shortened) with a hint that fits.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadBoard } from '../../src/config/board.js';
import { formatConfigError, formatLoadErrors, loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { MAX_CONFIG_BYTES, MAX_DEPTH, MAX_REPORTED_ERRORS, MAX_YAML_ITEMS } from '../../src/config/limits.js';
import { BASE, errorsOf, tempDir } from './helpers.js';

let t: ReturnType<typeof tempDir>;
beforeEach(() => { t = tempDir(); });
afterEach(() => t.remove());

const HEAD = 'device: {id: a}\nmqtt: {url: "mqtt://h:1"}\nbinders: []\nroutes: []\n';

/** A flow list of `1`s filling `bytes`: the most YAML values per byte, the parser's worst case. */
function flowList(bytes: number): string {
  const head = `${HEAD}x: [`;
  const n = Math.floor((bytes - head.length - 2) / 2);
  return `${head}${'1,'.repeat(n - 1)}1]\n`;
}

function timed<T>(f: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = f();
  return { value, ms: performance.now() - t0 };
}

describe('what is refused before parsing', () => {
  it('a file over the size limit, with a message naming the limit', () => {
    expect(MAX_CONFIG_BYTES).toBe(1024 * 1024);
    const file = join(t.dir, 'big.yaml');
    const text = flowList(2 * MAX_CONFIG_BYTES); // parsing this takes seconds and hundreds of MB
    writeFileSync(file, text);
    const { value: r, ms } = timed(() => loadConfigFile(file));
    expect(r.errors).toEqual([{ path: '', message: `the file is ${text.length} bytes, more than the 1 MiB (1048576 bytes) a configuration may have` }]);
    expect(ms).toBeLessThan(1000);
  });

  it('what is not a regular file: a device, a FIFO, a directory', () => {
    expect(loadConfigFile('/dev/zero').errors).toEqual([{ path: '', message: 'cannot read the file: /dev/zero is a character device, not a regular file' }]);
    const fifo = join(t.dir, 'fifo.yaml');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // without a writer, reading a FIFO would wait forever
    expect(loadConfigFile(fifo).errors).toEqual([{ path: '', message: `cannot read the file: ${fifo} is a FIFO, not a regular file` }]);
    expect(loadConfigFile(t.dir).errors).toEqual([{ path: '', message: `cannot read the file: ${t.dir} is a directory, not a regular file` }]);
  });

  it('a file of more YAML items than the limit, quickly, with a message naming the limit', () => {
    const file = join(t.dir, 'many.yaml');
    writeFileSync(file, flowList(MAX_CONFIG_BYTES - 10));
    const { value: r, ms } = timed(() => loadConfigFile(file));
    // at the item past the limit: 25 items come before the list (whose first `1` is at column 5), then one per character
    expect(r.errors).toEqual([{ path: '', message: `more than ${MAX_YAML_ITEMS} YAML items (keys, values, list entries, separators): not a configuration of this agent`, line: 5, column: 5 + (MAX_YAML_ITEMS + 1 - 25) - 1 }]);
    expect(ms).toBeLessThan(5000);
  });
});

describe('validation is linear', () => {
  it('a file just under the limits, with an error on every key, is checked in seconds and its errors are bounded', () => {
    // each `bogus_N: 1` is 3 items (key, ':' and value)
    const keys = Math.floor((MAX_YAML_ITEMS - 100) / 3);
    const text = `${HEAD}mqtt2: 0\n`.replace('mqtt: {url: "mqtt://h:1"}\n', `mqtt:\n  url: "mqtt://h:1"\n${Array.from({ length: keys }, (_, i) => `  bogus_${i}: 1\n`).join('')}`);
    expect(text.length).toBeLessThan(MAX_CONFIG_BYTES);
    const { value: r, ms } = timed(() => parseConfigText(text, 'f.yaml'));
    expect(ms).toBeLessThan(5000);
    expect(r.errors).toHaveLength(MAX_REPORTED_ERRORS);
    expect(r.moreErrors).toBe(keys + 1 - MAX_REPORTED_ERRORS);
    expect(r.errors[0]).toMatchObject({ path: 'mqtt.bogus_0', message: "unknown key 'bogus_0'", line: 4, column: 3 });
    const lines = formatLoadErrors(r, 'f.yaml');
    expect(lines).toHaveLength(MAX_REPORTED_ERRORS + 1);
    expect(lines[MAX_REPORTED_ERRORS]).toBe(`f.yaml: ${keys + 1 - MAX_REPORTED_ERRORS} more error(s) not shown (the first ${MAX_REPORTED_ERRORS} are)`);
  });

  it('a valid file of many keys (labels) is parsed in linear time', () => {
    const n = Math.floor((MAX_YAML_ITEMS - 100) / 3);
    const text = BASE.replace('  id: car-1\n', `  id: car-1\n  labels:\n${Array.from({ length: n }, (_, i) => `    l${i}: v\n`).join('')}`);
    const { value: r, ms } = timed(() => parseConfigText(text, 'f.yaml'));
    expect(r.errors).toEqual([]);
    expect(Object.keys(r.config!.device.labels)).toHaveLength(n);
    expect(ms).toBeLessThan(3000);
  });

  it('still finds duplicate keys, in block and flow mappings, with the hint', () => {
    expect(errorsOf(`${BASE}device: {id: b}\n`)[0]).toMatchObject({ message: 'YAML: Map keys must be unique', hint: 'a key may appear once per mapping', line: 11, column: 1 });
    const flow = 'ecu_api: {listen: [], listen: []}';
    expect(errorsOf(`${BASE}${flow}\n`)[0]).toMatchObject({ message: 'YAML: Map keys must be unique', line: 11, column: flow.lastIndexOf('listen') + 1 });
    const labels = '  labels: {a: x, b: y, a: z}';
    expect(errorsOf(BASE.replace('  id: car-1\n', `  id: car-1\n${labels}\n`))).toMatchObject([{ message: 'YAML: Map keys must be unique', line: 3, column: labels.lastIndexOf('a:') + 1 }]);
    // as for the YAML library: a string and a number are different keys
    expect(errorsOf(BASE.replace('  id: car-1\n', '  id: car-1\n  labels: {"1": a, 1: b}\n'))).toEqual([]);
  });

  it('many unknown sources among many binders are checked in linear time, with bounded hints', () => {
    const n = 3000; // 29 YAML items per binder and route: under the limit
    const binders = Array.from({ length: n }, (_, i) => `  - {name: b${i}, spec: "unix:@b${i}"}\n`).join('');
    const routes = Array.from({ length: n }, (_, i) => `  - {name: r${i}, match: [x], sources: [nope${i}]}\n`).join('');
    const text = `device: {id: a}\nmqtt: {url: "mqtt://h:1"}\nbinders:\n${binders}routes:\n${routes}`;
    const { value: r, ms } = timed(() => parseConfigText(text, 'f.yaml'));
    expect(ms).toBeLessThan(5000);
    expect(r.errors[0]).toMatchObject({ path: 'routes[0].sources[0]', message: "unknown binder 'nope0'" });
    expect(r.errors[0]!.hint!.length).toBeLessThan(300);
    expect(r.errors[0]!.hint).toMatch(/^binders are: b0, b1, .*, b9 and 2990 more$/);
  });
});

describe('deep nesting', () => {
  it('deeper than the parser can go is reported as too deep, not as a stack overflow', () => {
    for (const text of [`${HEAD}x: ${'['.repeat(20000)}${']'.repeat(20000)}\n`, `${HEAD}x:\n  ${'- '.repeat(20000)}1\n`]) {
      const errors = errorsOf(text);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message).toBe(`YAML: nested too deeply (a configuration is at most ${MAX_DEPTH} levels deep)`);
      expect(JSON.stringify(errors)).not.toMatch(/call stack/i);
    }
  });

  it('deeper than the limit, in a free-form value, is refused at its path', () => {
    const args = `${'{a: '.repeat(MAX_DEPTH)}1${'}'.repeat(MAX_DEPTH)}`;
    const text = BASE.replace('    spec: unix:/run/platform/apis/ws/vehicle\n', `    spec: unix:/run/platform/apis/ws/vehicle\n    subscribe: [{verb: s, args: ${args}}]\n`);
    const errors = errorsOf(text);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ message: `nested more than ${MAX_DEPTH} levels deep`, line: 8 });
    expect(errors[0]!.path).toMatch(/^binders\[0\]\.subscribe\[0\]\.args\.a\.a/);
    const ok = BASE.replace('    spec: unix:/run/platform/apis/ws/vehicle\n', `    spec: unix:/run/platform/apis/ws/vehicle\n    subscribe: [{verb: s, args: {a: {b: [1, {c: 2}]}}}]\n`);
    expect(errorsOf(ok)).toEqual([]);
  });
});

describe('messages about hostile keys', () => {
  it('escape control characters and shorten huge keys', () => {
    const huge = 'k'.repeat(200_000);
    const text = `device: {id: a}\nmqtt: {url: "mqtt://h:1", "\\e[31mred\\e[0m\\x9b2J\\u202e": 1, ${huge}: 1}\nbinders: []\nroutes: []\n`;
    const lines = errorsOf(text).map((e) => formatConfigError(e, 'f.yaml'));
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
      expect(line.length).toBeLessThan(600);
    }
    expect(lines[0]).toContain("unknown key '\\u001b[31mred\\u001b[0m\\u009b2J\\u202e'");
    expect(lines[1]).toMatch(/unknown key 'k{20,60}\.\.\. \(200000 characters\)'/);
  });

  it('give a hint that fits the key: secrets only for secret-like names', () => {
    const text = (key: string) => BASE.replace('  url: mqtt://localhost:1883\n', `  url: mqtt://localhost:1883\n  ${key}: x\n`);
    expect(errorsOf(text('bogus_key'))[0]!.hint).toMatch(/^allowed here: url, /);
    expect(errorsOf(text('monkey'))[0]!.hint).toMatch(/^allowed here: url, /);
    expect(errorsOf(text('password_fle'))[0]!.hint).toBe("did you mean 'password_file'?");
    expect(errorsOf(text('api_key'))[0]!.hint).toMatch(/^secrets are never written in the config/);
    expect(errorsOf(text('auth_token'))[0]!.hint).toMatch(/^secrets are never written in the config/);
    expect(errorsOf(text('password'))[0]!.hint).toMatch(/^secrets are never written in the config.*set password_file$/);
  });
});

describe('board files, under the same bounds', () => {
  const boards = join(import.meta.dirname, '../../boards');

  it('a board file that is a FIFO, too large or too deep is refused with its reason', () => {
    expect(spawnSync('mkfifo', [join(t.dir, 'fifo.yaml')]).status).toBe(0);
    expect(loadBoard('fifo', t.dir)).toEqual({ kind: 'invalid', file: join(t.dir, 'fifo.yaml'), errors: [{ path: '', message: `cannot read the file: ${join(t.dir, 'fifo.yaml')} is a FIFO, not a regular file` }] });
    const real = readFileSync(join(boards, 'rpi4.yaml'), 'utf8');
    writeFileSync(join(t.dir, 'big.yaml'), `${real}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    expect(loadBoard('big', t.dir)).toMatchObject({ kind: 'invalid', errors: [{ path: '', message: expect.stringMatching(/^the file is \d+ bytes, more than the 1 MiB \(1048576 bytes\) a configuration may have$/) }] });
    writeFileSync(join(t.dir, 'deep.yaml'), `${real}x: ${'['.repeat(20000)}${']'.repeat(20000)}\n`);
    expect(loadBoard('deep', t.dir)).toMatchObject({ kind: 'invalid', errors: [{ path: '', message: `YAML: nested too deeply (a configuration is at most ${MAX_DEPTH} levels deep)` }] });
    writeFileSync(join(t.dir, 'ok.yaml'), real);
    expect(loadBoard('ok', t.dir).kind).toBe('ok');
  });
});

