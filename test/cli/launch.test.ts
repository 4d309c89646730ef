/**
 * dist/src/cli/launch.cjs, what bin/afb-edge starts: the bundle through a V8
 * code cache for `run` when a cache directory is given. The cache is written
 * by a start and taken by the next. A stale or damaged cache is rejected,
 * reported and replaced, never fatal. The directory holds one file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, projectRoot } from '../helpers/cli.js';

const launcher = join(projectRoot, 'bin/afb-edge');
let dir: string;
let config: string;

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'afb-edge-launch-'));
  config = join(dir, 'agent.yaml');
  // No broker on port 9 and a serial device that does not exist: both are retried, the agent
  // still becomes ready. The serial link makes `run` load serialport's addon at start-up.
  writeFileSync(config, [
    'device: { id: launch-test }',
    'binders: []',
    'routes: []',
    'mqtt: { url: "mqtt://127.0.0.1:9" }',
    `outbox: { path: ${join(dir, 'outbox.db')} }`,
    'serial: { links: [ { name: ecu0, device: /nonexistent/afb-edge-launch-test, protocol: ndjson } ] }',
    '',
  ].join('\n'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `afb-edge run` until it logs readiness, then SIGTERM; resolves with its stderr and exit code. */
/** `direct`: node dist/src/cli/launch.cjs, without the launcher's flags (--verify-snapshot-checksum among them). */
function runUntilReady(cacheDir: string | undefined, direct = false, beforeStop?: () => Promise<void>): Promise<{ stderr: string; code: number | null }> {
  const env = { ...process.env };
  delete env.CACHE_DIRECTORY;
  delete env.NOTIFY_SOCKET;
  if (cacheDir !== undefined) env.AFB_EDGE_CODE_CACHE = cacheDir;
  else delete env.AFB_EDGE_CODE_CACHE;
  const args = ['run', '--config', config];
  const child = direct
    ? spawn(process.execPath, [join(projectRoot, 'dist/src/cli/launch.cjs'), ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(launcher, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let stopping = false;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`not ready in 20 s: ${stderr}`)); }, 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d;
      if (!stopping && /ready in \d+ ms/.test(stderr)) {
        stopping = true; // once: a second SIGTERM during the drain would kill it
        void (beforeStop ?? (() => Promise.resolve()))().finally(() => child.kill('SIGTERM'));
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); resolve({ stderr, code }); });
  });
}

const cacheFiles = (d: string) => readdirSync(d).filter((f) => f.endsWith('.v8cache')).sort();
/** The CLI bundle's cache file and the config loader's (src/config/loader-module.ts), by name. */
const MAIN_CACHE = new RegExp(`^afb-edge-${process.version}-${process.arch}-\\d+-\\d+-\\d+\\.v8cache$`);
const LOADER_CACHE = new RegExp(`^afb-edge-config-loader-${process.version}-${process.arch}-\\d+-\\d+-\\d+\\.v8cache$`);

describe('code cache', () => {
  it('the first start writes it once ready (not waiting for its exit), the next one takes it without a word', async () => {
    const cache = mkdtempSync(join(dir, 'cache-'));
    let whileRunning: string[] = [];
    const first = await runUntilReady(cache, false, async () => {
      for (let i = 0; i < 100 && cacheFiles(cache).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      whileRunning = cacheFiles(cache);
    });
    expect(whileRunning).toHaveLength(2);
    expect(first.code).toBe(0);
    expect(first.stderr).not.toMatch(/launch:|^afb-edge: /m);
    const files = cacheFiles(cache);
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(LOADER_CACHE);
    expect(files[1]).toMatch(MAIN_CACHE);
    const written = files.map((f) => statSync(join(cache, f)).mtimeMs);
    for (const f of files) expect(statSync(join(cache, f)).size).toBeGreaterThan(100_000);

    const second = await runUntilReady(cache);
    expect(second.code).toBe(0);
    // Accepted: no warning, and not rewritten (a rejected cache is replaced at exit).
    expect(second.stderr).not.toMatch(/launch:|^afb-edge: /m);
    expect(cacheFiles(cache)).toEqual(files);
    expect(files.map((f) => statSync(join(cache, f)).mtimeMs)).toEqual(written);
  });

  it.each([
    ['bin/afb-edge', false, MAIN_CACHE],
    ['node dist/src/cli/launch.cjs', true, MAIN_CACHE],
    ["bin/afb-edge, the config loader's", false, LOADER_CACHE],
  ] as const)('a damaged cache is reported, replaced, and the agent starts anyway (%s)', async (_how, direct, which) => {
    const cache = mkdtempSync(join(dir, 'cache-'));
    await runUntilReady(cache, direct);
    const file = cacheFiles(cache).find((f) => which.test(f));
    const good = readFileSync(join(cache, file!));
    const bad = Buffer.from(good);
    bad.fill(0x5a, 64, 4096); // V8's checksum no longer matches
    writeFileSync(join(cache, file!), bad);
    const r = await runUntilReady(cache, direct);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/<warn> launch: code cache .* rejected by V8, writing a new one/);
    expect(cacheFiles(cache).filter((f) => which.test(f))).toEqual([file]);
    expect(readFileSync(join(cache, file!)).equals(bad)).toBe(false);
  });

  it('files of other builds are removed when the cache is written; other files are left alone', async () => {
    const cache = mkdtempSync(join(dir, 'cache-'));
    writeFileSync(join(cache, 'afb-edge-v0.0.0-x64-1-2-3.v8cache'), 'old build');
    writeFileSync(join(cache, 'afb-edge-config-loader-v0.0.0-x64-1-2-3.v8cache'), 'old build');
    writeFileSync(join(cache, 'notes.txt'), 'not ours');
    await runUntilReady(cache);
    const files = cacheFiles(cache);
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(LOADER_CACHE);
    expect(files[1]).toMatch(MAIN_CACHE);
    expect(readdirSync(cache)).toContain('notes.txt');
  });

  it('an unwritable cache directory is reported and does not stop the agent', async () => {
    const r = await runUntilReady(join(dir, 'no-such-dir', 'cache'));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/<warn> launch: cannot write the code cache in .*no-such-dir/);
  });

  it('the other commands neither read nor write it', () => {
    const cache = mkdtempSync(join(dir, 'cache-'));
    const r = spawnSync(launcher, ['check-config', config], { encoding: 'utf8', env: { ...process.env, AFB_EDGE_CODE_CACHE: cache } });
    expect(r.status).toBe(0);
    expect(readdirSync(cache)).toEqual([]);
  });

  it('without a cache directory the agent runs the bundle as it is', async () => {
    const r = await runUntilReady(undefined);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/launch:/);
  });
});

describe('parse cache (src/config/parse-cache.ts) in the same directory', () => {
  const parsed = (d: string) => join(d, 'afb-edge-parsed-config.json');

  it('the first start writes it after READY=1, the next start takes the config from it', async () => {
    const cache = mkdtempSync(join(dir, 'cache-'));
    const first = await runUntilReady(cache);
    expect(first.code).toBe(0);
    const doc = JSON.parse(readFileSync(parsed(cache), 'utf8')) as { entries: Array<{ text: string; json: string }> };
    expect(doc.entries.map((e) => e.text)).toEqual([readFileSync(config, 'utf8')]);
    // What the next start reads is the cache's data, not a new parse of the file:
    const data = JSON.parse(doc.entries[0]!.json) as { device: { id: string } };
    data.device.id = 'taken-from-the-parse-cache';
    doc.entries[0]!.json = JSON.stringify(data);
    writeFileSync(parsed(cache), JSON.stringify(doc));
    const second = await runUntilReady(cache);
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/device taken-from-the-parse-cache started/);
    expect(second.stderr).not.toMatch(/parse cache|launch:/);
  });

  it('a damaged one is reported in the log, and the agent starts from the file', async () => {
    const cache = mkdtempSync(join(dir, 'cache-'));
    writeFileSync(parsed(cache), '{"format":1,"stamp":');
    const r = await runUntilReady(cache);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/<warn> parse cache .* damaged \(.*\): parsing the files, and writing a new one/);
    expect(r.stderr).toMatch(/device launch-test started/);
    expect(() => JSON.parse(readFileSync(parsed(cache), 'utf8')) as unknown).not.toThrow();
  });
});
