/**
 * Board profiles (boards/NAME.yaml): what differs between the boards the
 * agent runs on — their UARTs, where their binders export APIs, how much
 * memory the agent may take — and a config overlay merged under the user's
 * configuration. `afb-edge run --board NAME` and `check-config --board NAME`
 * apply one; boards/README.md documents the format and the merge rules.
 *
 * A board file is checked like a config file: every error is reported with
 * its line and column. Its overlay is checked against the config schema
 * (as a partial config) when the board loads, so that a bad overlay is
 * blamed on the board file rather than on the user's config.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, ValidateFunction } from 'ajv';
// The board schema (board-schema.ts) and, for the overlay, the config's own schema, both
// compiled at development time (scripts/gen-config-validator.mjs): compiling them with Ajv
// at start-up cost ~90 ms of CPU on x86 and ~4 s in the emulated arm64 guest, on every
// installed image (each runs with a board).
import checkBoardUntyped from './generated/board-validator.js';
import checkOverlayUntyped from './generated/config-validator.js';
import { humanize } from './humanize.js';
import { formatConfigError, type ConfigError, type Issue } from './errors.js';
import { readConfigText } from './load.js';
import { dataShapeProblem, parseYaml } from './parse-yaml.js';
import { place, splitPointer } from './placement.js';
import type { ParseCache } from './parse-cache.js';

/** A board name is also a file name and a Yocto package suffix (afb-edge-board-NAME). */
export const BOARD_NAME = /^[a-z0-9][a-z0-9-]*$/;

export interface BoardLimits {
  /** V8 old generation, MB (--max-old-space-size). */
  max_old_space_mb: number;
  /** V8 semi-space, MB (--max-semi-space-size). */
  max_semi_space_mb: number;
  /** V8 helper threads (--v8-pool-size). */
  v8_pool_size: number;
  /** Old generation's growth between full collections, % (--heap-growing-percent; 0: V8's own, up to 300). */
  heap_growing_percent: number;
  /** Suggested systemd MemoryHigh= (reclaim pressure starts), MB. */
  memory_high_mb?: number;
  /** Suggested systemd MemoryMax= (hard limit, OOM kill), MB. */
  memory_max_mb?: number;
}

export interface Board {
  name: string;
  file: string;
  description: string;
  /** Yocto MACHINE (or MACHINEOVERRIDES) names this profile is the default for. */
  machines: string[];
  memory_mb: number;
  serial: { default_device?: string; devices: string[]; device_allow: string[] };
  sockets: { apis_dir?: string; ecu_api?: string };
  limits: BoardLimits;
  /** Partial agent config merged under the user's config. */
  overlay: Record<string, unknown>;
}

export type BoardLoad =
  | { kind: 'ok'; board: Board }
  | { kind: 'unknown'; name: string; dir: string; known: string[] }
  | { kind: 'invalid'; file: string; errors: ConfigError[] };

const checkBoard = checkBoardUntyped as ValidateFunction;
const checkOverlay = checkOverlayUntyped as ValidateFunction;

/**
 * Where boards are looked up: $AFB_EDGE_BOARDS_DIR when set (a device keeps
 * its own in /etc/afb-edge/boards), else the boards/ folder of this package
 * (found by walking up from this module: src/config in a checkout,
 * dist/src/config once built, both under the package root).
 */
export function boardsDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.AFB_EDGE_BOARDS_DIR;
  if (override !== undefined && override !== '') return resolve(override);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'boards'))) return join(dir, 'boards');
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'boards');
}

export function listBoards(dir: string = boardsDir()): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .filter((n) => BOARD_NAME.test(n))
    .sort();
}

export function loadBoard(name: string, dir: string = boardsDir(), parseCache?: ParseCache): BoardLoad {
  const file = join(dir, `${name}.yaml`);
  if (!BOARD_NAME.test(name) || !existsSync(file)) return { kind: 'unknown', name, dir, known: listBoards(dir) };
  // bounded and a regular file only, as a config file (../util/read-file.ts)
  const read = readConfigText(file);
  if ('error' in read) return { kind: 'invalid', file, errors: [read.error] };
  return parseBoardText(read.text, name, file, parseCache);
}

export function parseBoardText(text: string, name: string, file: string, parseCache?: ParseCache): BoardLoad {
  const cached = parseCache?.lookup(text, 'core');
  if (cached !== undefined && dataShapeProblem(cached) === undefined && boardIssues(cached).length === 0) return { kind: 'ok', board: { ...(cached as Omit<Board, 'name' | 'file'>), name, file } };
  const parsed = parseYaml(text, 'core');
  if (!parsed.ok) return { kind: 'invalid', file, errors: parsed.errors };
  const { doc, at, data } = parsed;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { kind: 'invalid', file, errors: [{ path: '', message: NOT_A_MAPPING, line: 1, column: 1 }] };
  }
  parseCache?.remember(text, 'core', data); // before the validator fills in defaults
  const issues = boardIssues(data);
  if (issues.length > 0) {
    const { errors, omitted } = place(doc, issues, at);
    return { kind: 'invalid', file, errors: omitted > 0 ? [...errors, { path: '', message: `${omitted} more error(s) not shown (the first ${errors.length} are)` }] : errors };
  }
  const b = data as Omit<Board, 'name' | 'file'>;
  return { kind: 'ok', board: { ...b, name, file } };
}

const NOT_A_MAPPING = 'a board file is a mapping with description, memory_mb, limits and overlay';

/** The board schema (with its defaults), the overlay as a partial config, and the limits' consistency. */
function boardIssues(data: unknown): Issue[] {
  if (!isObject(data)) return [{ segments: [], message: NOT_A_MAPPING }];
  const issues: Issue[] = [];
  checkBoard(data);
  for (const e of checkBoard.errors ?? []) issues.push(humanize(e, splitPointer(e, data)));
  if (isObject(data.overlay)) {
    // the overlay is checked on a copy: the validator fills in defaults, which the config
    // gets once, after the merge
    const overlay = structuredClone(data.overlay);
    checkOverlay(overlay);
    for (const e of checkOverlay.errors ?? []) {
      if (partialConfigAllows(e, overlay)) continue;
      const issue = humanize(e, splitPointer(e, overlay));
      issues.push({ ...issue, segments: ['overlay', ...issue.segments] });
    }
  }
  for (const issue of issues) {
    if (issue.message === 'must match ^/dev/') issue.message = 'must be a device path, /dev/...';
    if (issue.message === 'must match ^char-[A-Za-z0-9_-]+$') issue.message = "must be a character device class as systemd's DeviceAllow= takes it: char-NAME, NAME as in /proc/devices";
  }
  issues.push(...boardSemantics(data));
  return issues;
}

/**
 * An overlay is a partial config: a mapping may leave out required keys
 * (the user's config supplies them). Items of a list are taken whole, as
 * lists replace rather than merge, so those must be complete.
 */
function partialConfigAllows(e: ErrorObject, overlay: unknown): boolean {
  if (e.keyword !== 'required') return false;
  let cur: unknown = overlay;
  for (const seg of e.instancePath.split('/').slice(1)) {
    if (Array.isArray(cur)) return false;
    cur = (cur as Record<string, unknown> | undefined)?.[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return true;
}

function boardSemantics(b: Record<string, unknown>): Issue[] {
  const out: Issue[] = [];
  const limits = isObject(b.limits) ? b.limits : {};
  const num = (x: unknown) => (typeof x === 'number' ? x : undefined);
  const old = num(limits.max_old_space_mb);
  const high = num(limits.memory_high_mb);
  const max = num(limits.memory_max_mb);
  const mem = num(b.memory_mb);
  if (high !== undefined && old !== undefined && high <= old) {
    out.push({ segments: ['limits', 'memory_high_mb'], message: `must be above max_old_space_mb (${old})`, hint: 'the process also needs the young generation, code, native memory (SQLite, buffers) beyond the V8 old space' });
  }
  if (max !== undefined && high !== undefined && max < high) {
    out.push({ segments: ['limits', 'memory_max_mb'], message: `must be at least memory_high_mb (${high})` });
  }
  if (max !== undefined && mem !== undefined && max > mem) {
    out.push({ segments: ['limits', 'memory_max_mb'], message: `must not exceed the board's memory_mb (${mem})` });
  }
  const serial = isObject(b.serial) ? b.serial : {};
  const devices = Array.isArray(serial.devices) ? serial.devices : [];
  if (typeof serial.default_device === 'string' && devices.length > 0 && !devices.includes(serial.default_device)) {
    out.push({ segments: ['serial', 'default_device'], message: `must be one of serial.devices (${devices.join(', ')})` });
  }
  return out;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

export interface BoardSelection {
  board?: Board;
  /** Set for an unknown name: a usage error, listing the known boards. */
  usage?: string;
  /** Set for a board file with errors: one formatted line each (file:line:col: path: message). */
  errors?: string[];
}

/**
 * The board the CLI applies: --board NAME, else $AFB_EDGE_BOARD (what the
 * board's systemd drop-in sets), else none.
 */
export function selectBoard(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, parseCache?: ParseCache): BoardSelection {
  const name = flag ?? (env.AFB_EDGE_BOARD !== '' ? env.AFB_EDGE_BOARD : undefined);
  if (name === undefined) return {};
  const dir = boardsDir(env);
  const loaded = loadBoard(name, dir, parseCache);
  if (loaded.kind === 'ok') return { board: loaded.board };
  if (loaded.kind === 'unknown') {
    const from = flag !== undefined ? '' : ' (from AFB_EDGE_BOARD)';
    const known = loaded.known.length > 0 ? `known boards: ${loaded.known.join(', ')}` : 'no board files there';
    return { usage: `unknown board '${name}'${from}: no ${join(loaded.dir, `${name}.yaml`)}; ${known}` };
  }
  return { errors: loaded.errors.map((e) => formatConfigError(e, loaded.file)) };
}

/** LoadOptions that apply the board, or none. */
export function boardLoadOptions(board: Board | undefined): { transform?: (data: Record<string, unknown>) => Record<string, unknown> } {
  return board === undefined ? {} : { transform: (data) => applyBoard(board, data) };
}

/**
 * `top` merged over `base`: mappings merge key by key, recursively; any
 * other value of `top` (a list, a scalar, null) replaces the one of `base`.
 * Neither argument is modified.
 */
export function mergeUnder(base: unknown, top: unknown): unknown {
  if (top === undefined) return structuredClone(base);
  if (!isObject(base) || !isObject(top)) return structuredClone(top);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [key, value] of Object.entries(top)) out[key] = key in base ? mergeUnder(base[key], value) : structuredClone(value);
  return out;
}

/**
 * What --board does to a config file's data, before the schema and its
 * defaults: the overlay goes under it, then serial links that name no
 * device get the board's serial.default_device.
 */
export function applyBoard(board: Board, data: Record<string, unknown>): Record<string, unknown> {
  const merged = mergeUnder(board.overlay, data) as Record<string, unknown>;
  const device = board.serial.default_device;
  const serial = merged.serial;
  if (device !== undefined && isObject(serial) && Array.isArray(serial.links)) {
    for (const link of serial.links) if (isObject(link) && !('device' in link)) link.device = device;
  }
  return merged;
}

/** The node flags the board's limits stand for, as bin/afb-edge takes them in AFB_EDGE_NODE_FLAGS. */
export function nodeFlags(board: Board): string {
  const l = board.limits;
  return `--max-old-space-size=${l.max_old_space_mb} --max-semi-space-size=${l.max_semi_space_mb} --v8-pool-size=${l.v8_pool_size} --heap-growing-percent=${l.heap_growing_percent} --expose-gc`;
}

/**
 * Heap flags act only when node starts (bin/afb-edge passes
 * AFB_EDGE_NODE_FLAGS; the board's systemd drop-in sets it). A process
 * started without any old-space limit gets V8's default, sized for the
 * machine rather than for the board: say so. One started with another
 * value is the operator's choice and is left alone.
 */
export function heapWarning(board: Board, execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string | undefined {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--max[-_]old[-_]space[-_]size(=|$)/.test(a));
  if (given) return undefined;
  return `board ${board.name} sizes the V8 heap for ${board.memory_mb} MB but node was started without a heap limit: start it with AFB_EDGE_NODE_FLAGS="${nodeFlags(board)}" (the board's systemd drop-in does)`;
}

/** The systemd drop-in that applies a board to afb-edge.service (see scripts/board-dropin.mjs). */
export function systemdDropIn(board: Board): string {
  const l = board.limits;
  const lines = [
    `# afb-edge board profile '${board.name}': ${board.description}`,
    `# Generated from boards/${board.name}.yaml by scripts/board-dropin.mjs; edit the board file, not this.`,
    '[Service]',
    `Environment=AFB_EDGE_BOARD=${board.name}`,
    `Environment="AFB_EDGE_NODE_FLAGS=${nodeFlags(board)}"`,
  ];
  if (l.memory_high_mb !== undefined) lines.push(`MemoryHigh=${l.memory_high_mb}M`);
  if (l.memory_max_mb !== undefined) lines.push(`MemoryMax=${l.memory_max_mb}M`);
  for (const dev of board.serial.device_allow) lines.push(`DeviceAllow=${dev} rw`);
  return lines.join('\n') + '\n';
}
