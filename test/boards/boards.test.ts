/**
 * Board profiles (boards/*.yaml, src/config/board.ts): every shipped file
 * loads, its overlay merges under config/afb-edge.example.yaml as
 * boards/README.md says, a broken board file is reported with lines.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import {
  applyBoard,
  BOARD_NAME,
  boardLoadOptions,
  boardsDir,
  heapWarning,
  listBoards,
  loadBoard,
  mergeUnder,
  nodeFlags,
  parseBoardText,
  selectBoard,
  systemdDropIn,
  type Board,
} from '../../src/config/board.js';
import { loadConfigFile, parseConfigText } from '../../src/config/load.js';

const root = resolve(import.meta.dirname, '../..');
const example = join(root, 'config/afb-edge.example.yaml');
const exampleRaw = parseDocument(readFileSync(example, 'utf8')).toJS() as Record<string, unknown>;
const shipped = readdirSync(join(root, 'boards')).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -5)).sort();

function board(name: string): Board {
  const loaded = loadBoard(name, join(root, 'boards'));
  if (loaded.kind !== 'ok') throw new Error(`${name}: ${JSON.stringify(loaded)}`);
  return loaded.board;
}

/** Every leaf of a mapping, as [path, value]; lists are leaves (they replace). */
function leaves(x: unknown, path: string[] = []): Array<[string[], unknown]> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return [[path, x]];
  return Object.entries(x).flatMap(([k, v]) => leaves(v, [...path, k]));
}
const get = (x: unknown, path: string[]): unknown => path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], x);
const has = (x: unknown, path: string[]): boolean => {
  let o = x;
  for (const k of path) {
    if (typeof o !== 'object' || o === null || !(k in o)) return false;
    o = (o as Record<string, unknown>)[k];
  }
  return true;
};

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'afb-edge-boards-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

describe('shipped board files', () => {
  it('are the six boards of the issue, found by boardsDir() from the sources', () => {
    expect(shipped).toEqual(['qemuarm64', 'qemux86-64', 'rcar-h3', 'rcar-m3', 'rpi4', 'rpi5']);
    expect(boardsDir({})).toBe(join(root, 'boards'));
    expect(listBoards(join(root, 'boards'))).toEqual(shipped);
  });

  it.each(shipped)('%s loads without error and is coherent', (name) => {
    expect(name).toMatch(BOARD_NAME);
    const b = board(name);
    expect(b.description.length).toBeGreaterThan(10);
    expect(b.machines.length).toBeGreaterThan(0);
    expect(b.memory_mb).toBeGreaterThanOrEqual(512);
    expect(b.serial.devices).toContain(b.serial.default_device);
    expect(b.serial.device_allow.length).toBeGreaterThan(0);
    expect(b.sockets.apis_dir).toBe('/run/platform/apis/ws');
    const l = b.limits;
    expect(l.max_old_space_mb).toBeLessThan(l.memory_high_mb!);
    expect(l.memory_high_mb!).toBeLessThanOrEqual(l.memory_max_mb!);
    // a 512 MB board must leave most of its memory to the rest of the system
    expect(l.memory_max_mb! * 2).toBeLessThanOrEqual(b.memory_mb);
  });

  it('give each machine to one board only', () => {
    const seen = new Map<string, string>();
    for (const name of shipped) for (const m of board(name).machines) {
      expect(seen.get(m), `${m} in ${name} and ${seen.get(m)}`).toBeUndefined();
      seen.set(m, name);
    }
  });

  it.each(shipped)('%s: its overlay merges under the example config, the example winning', (name) => {
    const b = board(name);
    const loaded = loadConfigFile(example, boardLoadOptions(b));
    expect(loaded.errors).toEqual([]);
    const config = loaded.config as unknown as Record<string, unknown>;
    const overlayLeaves = leaves(b.overlay);
    expect(overlayLeaves.length).toBeGreaterThan(0);
    for (const [path, value] of overlayLeaves) {
      const expected = has(exampleRaw, path) ? get(exampleRaw, path) : value;
      expect(get(config, path), path.join('.')).toEqual(expected);
    }
    // what the example says is untouched
    // (lists hold items the schema completed with defaults: compared as subsets)
    for (const [path, value] of leaves(exampleRaw)) {
      if (Array.isArray(value)) expect(get(config, path), path.join('.')).toMatchObject(value);
      else expect(get(config, path), path.join('.')).toEqual(value);
    }
  });

  it('has at least one overlay value that the example does not set, so a board changes something', () => {
    for (const name of shipped) {
      expect(leaves(board(name).overlay).some(([path]) => !has(exampleRaw, path)), name).toBe(true);
    }
  });
});

describe('mergeUnder', () => {
  it('merges mappings recursively, the top winning, lists and null replacing', () => {
    const base = { a: { x: 1, y: [1, 2], z: { deep: true } }, b: 'base', keep: 1 };
    const top = { a: { x: 2, y: [3], z: null }, b: 'top', extra: { n: 1 } };
    const before = JSON.stringify([base, top]);
    expect(mergeUnder(base, top)).toEqual({ a: { x: 2, y: [3], z: null }, b: 'top', keep: 1, extra: { n: 1 } });
    expect(JSON.stringify([base, top])).toBe(before);
  });

  it('copies: the result shares nothing with its inputs', () => {
    const base = { a: { list: [1] } };
    const out = mergeUnder(base, {}) as typeof base;
    out.a.list.push(2);
    expect(base.a.list).toEqual([1]);
  });
});

describe('applyBoard', () => {
  const b = (): Board => ({ ...board('rcar-h3'), overlay: { outbox: { max_bytes: 1234 } } });

  it('gives serial links without a device the board default, and leaves the others', () => {
    const data = { serial: { links: [{ name: 'a', protocol: 'slcan' }, { name: 'b', device: '/dev/ttyUSB3', protocol: 'cobs' }] } };
    const out = applyBoard(b(), data) as { serial: { links: Array<{ device?: string }> }; outbox: unknown };
    expect(out.serial.links.map((l) => l.device)).toEqual(['/dev/ttySC1', '/dev/ttyUSB3']);
    expect(out.outbox).toEqual({ max_bytes: 1234 });
    expect((data.serial.links[0] as { device?: string }).device).toBeUndefined();
  });

  it('is applied before the schema defaults: an overlay value survives an outbox section without it', () => {
    const text = readFileSync(example, 'utf8').replace(/^outbox:\n(  .*\n|\n)*/m, 'outbox:\n  policy: reject-new\n\n');
    const r = parseConfigText(text, 'afb-edge.yaml', boardLoadOptions(b()));
    expect(r.errors).toEqual([]);
    expect(r.config!.outbox).toMatchObject({ policy: 'reject-new', max_bytes: 1234, max_messages: 100_000 });
  });

  it('leaves errors of the user file at their line in that file', () => {
    const text = readFileSync(example, 'utf8').replace('  max_bytes: 67108864   # 64 MiB', '  max_bytes: -5');
    const line = text.split('\n').findIndex((l) => l.includes('max_bytes: -5')) + 1;
    const r = parseConfigText(text, 'afb-edge.yaml', boardLoadOptions(b()));
    expect(r.errors).toMatchObject([{ path: 'outbox.max_bytes', line }]);
  });
});

describe('board files with errors', () => {
  const bad = `description: broken
memory_mb: 512
limits:
  max_old_space_mb: 300
  memory_high_mb: 200
  memry_max_mb: 100
serial:
  default_device: ttyS1
overlay:
  outbox:
    max_bytes: -1
  mqtt:
    keepalive_s: 10
  binders:
    - name: x
`;

  it('reports every error with its line, the overlay ones too; a partial mapping is allowed', () => {
    const r = parseBoardText(bad, 'broken', '/x/broken.yaml');
    expect(r.kind).toBe('invalid');
    if (r.kind !== 'invalid') return;
    expect(r.errors.map((e) => [e.line, e.path])).toEqual([
      [5, 'limits.memory_high_mb'],
      [6, 'limits.memry_max_mb'],
      [8, 'serial.default_device'],
      [11, 'overlay.outbox.max_bytes'],
      [15, 'overlay.binders[0].spec'],
    ]);
    expect(r.errors[1]!.hint).toBe("did you mean 'memory_max_mb'?");
    expect(r.errors[2]!.message).toBe('must be a device path, /dev/...');
    // mqtt without url: fine in an overlay, the user's file has it
    expect(r.errors.some((e) => e.path.startsWith('overlay.mqtt'))).toBe(false);
  });

  it('reports YAML syntax errors with their position', () => {
    const r = parseBoardText('description: x\n\tmemory_mb: 1\n', 'x', 'x.yaml');
    expect(r.kind).toBe('invalid');
    if (r.kind === 'invalid') expect(r.errors[0]).toMatchObject({ line: 2 });
  });
});

describe('selectBoard', () => {
  it('takes --board, else AFB_EDGE_BOARD, else none', () => {
    expect(selectBoard(undefined, {})).toEqual({});
    expect(selectBoard(undefined, { AFB_EDGE_BOARD: '' })).toEqual({});
    expect(selectBoard(undefined, { AFB_EDGE_BOARD: 'rpi5' }).board?.name).toBe('rpi5');
    expect(selectBoard('rpi4', { AFB_EDGE_BOARD: 'rpi5' }).board?.name).toBe('rpi4');
  });

  it('makes an unknown name a usage error listing the known boards', () => {
    const s = selectBoard('rpi3', {});
    expect(s.usage).toMatch(/^unknown board 'rpi3': no .*boards\/rpi3\.yaml; known boards: qemuarm64, qemux86-64, rcar-h3, rcar-m3, rpi4, rpi5$/);
    expect(selectBoard('../etc/passwd', {}).usage).toMatch(/^unknown board/);
    expect(selectBoard(undefined, { AFB_EDGE_BOARD: 'nope' }).usage).toMatch(/\(from AFB_EDGE_BOARD\)/);
  });

  it('looks in AFB_EDGE_BOARDS_DIR instead of the package when set, and formats board errors as file:line:col', () => {
    writeFileSync(join(tmp, 'mine.yaml'), 'description: mine\nmemory_mb: 512\nlimits: { max_old_space_mb: 64 }\n');
    writeFileSync(join(tmp, 'broken.yaml'), 'description: broken\nmemory_mb: 512\nlimits:\n  max_old_space_mb: "64"\n');
    const env = { AFB_EDGE_BOARDS_DIR: tmp };
    expect(selectBoard('mine', env).board).toMatchObject({ name: 'mine', limits: { max_old_space_mb: 64, max_semi_space_mb: 1, v8_pool_size: 1, heap_growing_percent: 50 }, overlay: {} });
    expect(selectBoard('rpi4', env).usage).toContain('known boards: broken, mine');
    expect(selectBoard('broken', env).errors).toEqual([
      `${join(tmp, 'broken.yaml')}:4:21: limits.max_old_space_mb: expected an integer, got a string (hint: write the number without quotes)`,
    ]);
  });
});

describe('heap flags and the systemd drop-in', () => {
  it('renders the node flags and the drop-in the launcher and systemd take', () => {
    const b = board('rpi4');
    expect(nodeFlags(b)).toBe('--max-old-space-size=192 --max-semi-space-size=1 --v8-pool-size=1 --heap-growing-percent=50 --expose-gc');
    const text = systemdDropIn(b);
    expect(text).toContain('[Service]\nEnvironment=AFB_EDGE_BOARD=rpi4\n');
    expect(text).toContain('Environment="AFB_EDGE_NODE_FLAGS=--max-old-space-size=192 --max-semi-space-size=1 --v8-pool-size=1 --heap-growing-percent=50 --expose-gc"\n');
    expect(text).toContain('MemoryHigh=288M\nMemoryMax=384M\n');
    expect(text).toContain('DeviceAllow=char-ttyAMA rw\n');
    expect(systemdDropIn(board('rcar-h3'))).toContain('DeviceAllow=char-ttySC rw\n');
  });

  it('warns only when node was started without any old-space limit', () => {
    const b = board('qemuarm64');
    expect(heapWarning(b, [], '')).toContain('AFB_EDGE_NODE_FLAGS="--max-old-space-size=96 --max-semi-space-size=1 --v8-pool-size=1 --heap-growing-percent=50 --expose-gc"');
    expect(heapWarning(b, ['--max-old-space-size=96'], '')).toBeUndefined();
    expect(heapWarning(b, ['--max-old-space-size=500'], '')).toBeUndefined();
    expect(heapWarning(b, [], '--max_old_space_size=80')).toBeUndefined();
  });
});
