/**
 * The start-up cache of parsed YAML (src/config/parse-cache.ts): what it
 * keeps, when it is used, and that a config or board read through it is the
 * one the parser gives, errors and their lines included.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { ParseCache, jsonExact } from '../../src/config/parse-cache.js';
import { applyBoard, parseBoardText } from '../../src/config/board.js';
import { BASE, tempDir } from './helpers.js';

let tmp: { dir: string; remove: () => void };
beforeEach(() => { tmp = tempDir(); });
afterEach(() => tmp.remove());

const cacheFile = () => join(tmp.dir, 'afb-edge-parsed-config.json');
const stored = () => JSON.parse(readFileSync(cacheFile(), 'utf8')) as { format: number; stamp: string; entries: Array<{ schema: string; text: string; json: string }> };

describe('ParseCache', () => {
  it('gives back, in a later process, a fresh copy of what was remembered for the same text and schema', () => {
    const first = new ParseCache(tmp.dir, '1.0.0');
    expect(first.lookup('a: 1\n', 'core')).toBeUndefined();
    first.remember('a: 1\n', 'core', { a: 1, list: [true, null, 'x'] });
    first.save();
    expect(first.problems).toEqual([]);

    const next = new ParseCache(tmp.dir, '1.0.0');
    const got = next.lookup('a: 1\n', 'core') as { a: number };
    expect(got).toEqual({ a: 1, list: [true, null, 'x'] });
    got.a = 2; // the validator fills in defaults in what it is given
    expect(next.lookup('a: 1\n', 'core')).toEqual({ a: 1, list: [true, null, 'x'] });
    expect(next.lookup('a: 1\n', 'json')).toBeUndefined();
    expect(next.lookup('a: 1 \n', 'core')).toBeUndefined();
    expect(next.problems).toEqual([]);
  });

  it("ignores another version's file and replaces it at the next save", () => {
    const old = new ParseCache(tmp.dir, '1.0.0');
    old.remember('a: 1\n', 'core', { a: 1 });
    old.save();
    const next = new ParseCache(tmp.dir, '1.1.0');
    expect(next.lookup('a: 1\n', 'core')).toBeUndefined();
    expect(next.problems).toEqual([]);
    next.remember('a: 1\n', 'core', { a: 1 });
    next.save();
    expect(stored().stamp).toBe('1.1.0');
  });

  it('keeps only the texts this process used: an edited file does not leave its old text behind', () => {
    const a = new ParseCache(tmp.dir, 'v');
    a.remember('config v1', 'core', { v: 1 });
    a.remember('board', 'core', { b: true });
    a.save();
    const b = new ParseCache(tmp.dir, 'v');
    expect(b.lookup('board', 'core')).toEqual({ b: true });
    expect(b.lookup('config v2', 'core')).toBeUndefined();
    b.remember('config v2', 'core', { v: 2 });
    b.save();
    expect(stored().entries.map((e) => e.text).sort()).toEqual(['board', 'config v2']);
  });

  it('does not rewrite an unchanged file', () => {
    const a = new ParseCache(tmp.dir, 'v');
    a.remember('x', 'core', { x: 1 });
    a.save();
    writeFileSync(cacheFile(), readFileSync(cacheFile(), 'utf8') + ' '); // a mark a rewrite would remove
    const b = new ParseCache(tmp.dir, 'v');
    expect(b.lookup('x', 'core')).toEqual({ x: 1 });
    b.save();
    expect(readFileSync(cacheFile(), 'utf8').endsWith(' ')).toBe(true);
  });

  it('a damaged file (torn by a power cut) is reported, used as an empty cache and replaced', () => {
    const a = new ParseCache(tmp.dir, 'v');
    a.remember('x', 'core', { x: 1 });
    a.save();
    writeFileSync(cacheFile(), readFileSync(cacheFile(), 'utf8').slice(0, 30));
    const b = new ParseCache(tmp.dir, 'v');
    expect(b.problems).toEqual([expect.stringMatching(/^parse cache .*afb-edge-parsed-config\.json damaged \(.*\): parsing the files, and writing a new one$/)]);
    expect(b.lookup('x', 'core')).toBeUndefined();
    b.remember('x', 'core', { x: 1 });
    b.save();
    expect(stored().entries).toEqual([{ schema: 'core', text: 'x', json: '{"x":1}' }]);
  });

  it('a write that fails is reported, not thrown', () => {
    writeFileSync(join(tmp.dir, 'not-a-dir'), '');
    const c = new ParseCache(join(tmp.dir, 'not-a-dir'), 'v');
    expect(c.problems).toEqual([expect.stringMatching(/unreadable \(a component of the path is not a directory\)/)]);
    c.remember('x', 'core', { x: 1 });
    expect(() => c.save()).not.toThrow();
    expect(c.problems[1]).toMatch(/^cannot write the parse cache .*not-a-dir\/afb-edge-parsed-config\.json: ENOTDIR/);
  });

  it('a cache path that is a FIFO or too large is reported and not read (no wait, no memory blow-up)', () => {
    expect(spawnSync('mkfifo', [cacheFile()]).status).toBe(0);
    const fifo = new ParseCache(tmp.dir, 'v');
    expect(fifo.problems).toEqual([`parse cache ${cacheFile()} unreadable (${cacheFile()} is a FIFO, not a regular file): parsing the files`]);
    rmSync(cacheFile());
    writeFileSync(cacheFile(), '');
    truncateSync(cacheFile(), 200 * 1024 * 1024); // sparse: no disk used
    const big = new ParseCache(tmp.dir, 'v');
    expect(big.problems).toEqual([expect.stringMatching(/^parse cache .* too large \(the file is 209715200 bytes, more than \d+\): parsing the files, and writing a new one$/)]);
    big.remember('x', 'core', { x: 1 });
    big.save();
    expect(stored().entries).toEqual([{ schema: 'core', text: 'x', json: '{"x":1}' }]);
  });

  it('a cached entry deeper than a file may be is not used: the file is parsed instead', () => {
    // valid for the schema (subscribe args are free-form), but 100 levels deep
    const deep = JSON.parse(`${'{"a":'.repeat(100)}1${'}'.repeat(100)}`) as unknown;
    const data = {
      device: { id: 'car-1' }, mqtt: { url: 'mqtt://localhost:1883' }, routes: [{ name: 'speed', match: ['vehicle/speed'] }],
      binders: [{ name: 'vehicle', spec: 'unix:/run/platform/apis/ws/vehicle', subscribe: [{ verb: 's', args: deep }] }],
    };
    writeFileSync(cacheFile(), JSON.stringify({ format: 1, stamp: 'v', entries: [{ schema: 'core', text: BASE, json: JSON.stringify(data) }] }));
    const r = parseConfigText(BASE, 'f.yaml', { parseCache: new ParseCache(tmp.dir, 'v') });
    expect(r.errors).toEqual([]);
    expect(r.config!.binders[0]!.subscribe).toEqual([]); // what the file says, not the cache's entry
  });

  it('does not keep data JSON would not give back exactly', () => {
    const c = new ParseCache(tmp.dir, 'v');
    c.remember('x: .inf', 'core', { x: Infinity });
    c.save();
    expect(new ParseCache(tmp.dir, 'v').lookup('x: .inf', 'core')).toBeUndefined();
  });
});

describe('jsonExact', () => {
  it.each([
    [{ a: [1, 'b', null, false, { c: -1.5 }] }, true],
    [{ a: NaN }, false],
    [[Infinity], false],
    [-0, false],
    [{ d: new Date(0) }, false],
    [new Map(), false],
    [{ u: undefined }, false],
    [JSON.parse('{"__proto__": {"x": 1}}') as unknown, false],
    [Object.create(null) as unknown, true],
  ])('%o: %s', (x, exact) => expect(jsonExact(x)).toBe(exact));
});

describe('config and board through the cache', () => {
  it('a config read from the cache is the config the parser gives, defaults included', () => {
    const cache = new ParseCache(tmp.dir, 'v');
    const parsed = parseConfigText(BASE, 'afb-edge.yaml', { parseCache: cache });
    cache.save();
    const again = new ParseCache(tmp.dir, 'v');
    const cached = parseConfigText(BASE, 'afb-edge.yaml', { parseCache: again });
    expect(cached).toEqual(parsed);
    expect(cached.errors).toEqual([]);
    // stored before the defaults were filled in: what the parser gave, and nothing more
    expect(JSON.parse(stored().entries[0]!.json)).toEqual({
      device: { id: 'car-1' }, mqtt: { url: 'mqtt://localhost:1883' },
      binders: [{ name: 'vehicle', spec: 'unix:/run/platform/apis/ws/vehicle' }], routes: [{ name: 'speed', match: ['vehicle/speed'] }],
    });
  });

  it('the cache is what is used for the same text (not a parse that happens to agree)', () => {
    const cache = new ParseCache(tmp.dir, 'v');
    parseConfigText(BASE, 'afb-edge.yaml', { parseCache: cache });
    cache.save();
    const doc = stored();
    const data = JSON.parse(doc.entries[0]!.json) as { device: { id: string } };
    data.device.id = 'from-the-cache';
    doc.entries[0]!.json = JSON.stringify(data);
    writeFileSync(cacheFile(), JSON.stringify(doc));
    expect(parseConfigText(BASE, 'afb-edge.yaml', { parseCache: new ParseCache(tmp.dir, 'v') }).config!.device.id).toBe('from-the-cache');
    expect(parseConfigText(BASE + '\n', 'afb-edge.yaml', { parseCache: new ParseCache(tmp.dir, 'v') }).config!.device.id).toBe('car-1');
  });

  it('a cached config that fails a check is parsed again: its errors keep their lines', () => {
    const cache = new ParseCache(tmp.dir, 'v');
    parseConfigText(BASE, 'afb-edge.yaml', { parseCache: cache });
    cache.save();
    // A board overlay that breaks the config: the errors are placed in the file as without a cache.
    const transform = (d: Record<string, unknown>) => ({ ...d, binders: [{ name: 'vehicle', spec: 42 }] });
    const withCache = parseConfigText(BASE, 'afb-edge.yaml', { parseCache: new ParseCache(tmp.dir, 'v'), transform });
    const without = parseConfigText(BASE, 'afb-edge.yaml', { transform });
    expect(withCache.errors.length).toBeGreaterThan(0);
    expect(withCache).toEqual(without);
    expect(withCache.errors[0]!.line).toBe(7); // binders[0].spec
  });

  it('a YAML syntax error is never cached', () => {
    const cache = new ParseCache(tmp.dir, 'v');
    const bad = 'device:\n  id: [car-1\n';
    expect(parseConfigText(bad, 'afb-edge.yaml', { parseCache: cache }).errors[0]!.message).toMatch(/^YAML: /);
    cache.save();
    expect(new ParseCache(tmp.dir, 'v').lookup(bad, 'core')).toBeUndefined();
  });

  it('a .json config is cached under its own schema', () => {
    const json = JSON.stringify({ device: { id: 'j' }, mqtt: { url: 'mqtt://localhost' }, binders: [], routes: [] });
    const cache = new ParseCache(tmp.dir, 'v');
    parseConfigText(json, 'afb-edge.json', { parseCache: cache });
    cache.save();
    expect(stored().entries.map((e) => e.schema)).toEqual(['json']);
    expect(parseConfigText(json, 'afb-edge.json', { parseCache: new ParseCache(tmp.dir, 'v') }).config!.device.id).toBe('j');
  });

  it('a board read from the cache is the board the parser gives, and its overlay applies the same way', () => {
    const text = 'description: test board\nmemory_mb: 1024\nlimits: { max_old_space_mb: 128 }\noverlay:\n  mqtt: { qos0_max_queue: 77 }\n';
    const cache = new ParseCache(tmp.dir, 'v');
    const parsed = parseBoardText(text, 'tb', '/boards/tb.yaml', cache);
    expect(parsed.kind).toBe('ok');
    cache.save();
    const cached = parseBoardText(text, 'tb', '/boards/tb.yaml', new ParseCache(tmp.dir, 'v'));
    expect(cached).toEqual(parsed);
    if (cached.kind !== 'ok' || parsed.kind !== 'ok') throw new Error('unreachable');
    const config = parseConfigText(BASE, 'afb-edge.yaml', { transform: (d) => applyBoard(cached.board, d) }).config!;
    expect(config.mqtt.qos0_max_queue).toBe(77);
  });
});
