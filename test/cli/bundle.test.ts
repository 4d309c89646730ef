/**
 * The one-file bundle bin/afb-edge prefers (scripts/bundle.mjs) behaves as
 * the compiled modules do: same answers, the native addon and the boards
 * found from its location.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { cliMain, ensureBuilt, projectRoot } from '../helpers/cli.js';

const bundle = join(projectRoot, 'dist/src/cli/afb-edge.bundle.cjs');
const example = join(projectRoot, 'config/afb-edge.example.yaml');
const run = (entry: string, args: string[]) => spawnSync(process.execPath, [entry, ...args], { encoding: 'utf8' });

beforeAll(() => ensureBuilt());

it('the build made the bundle, and it answers as main.js does', () => {
  expect(existsSync(bundle)).toBe(true);
  for (const args of [['--version'], ['check-config', example], ['check-config', example, '--board', 'rcar-h3'], ['call'], ['call', 'unix:@afb-edge-bundle-test-nobody-listens', 'ping'],
    ['ecu-sim', '--protocol', 'ndjson', '--device', '/nonexistent/afb-edge-bundle-test']]) {
    const a = run(cliMain, args);
    const b = run(bundle, args);
    expect({ status: b.status, stdout: b.stdout, stderr: b.stderr }, args.join(' ')).toEqual({ status: a.status, stdout: a.stdout, stderr: a.stderr });
  }
});

it('bin/afb-edge runs the bundle (through dist/src/cli/launch.cjs)', () => {
  // A preload that lists, at exit, the CommonJS files the process loaded.
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-bundle-test-'));
  try {
    const preload = join(dir, 'loaded.cjs');
    writeFileSync(preload, "process.on('exit', () => process.stdout.write('\\nLOADED ' + Object.keys(require.cache).join(' ')));\n");
    const r = spawnSync(join(projectRoot, 'bin/afb-edge'), ['--version'], { encoding: 'utf8', env: { ...process.env, AFB_EDGE_NODE_FLAGS: `--require ${preload}` } });
    expect(r.status).toBe(0);
    const loaded = /LOADED (.*)/.exec(r.stdout)?.[1]?.split(' ') ?? [];
    expect(loaded.some((f) => f.endsWith('dist/src/cli/launch.cjs'))).toBe(true);
    expect(loaded.some((f) => f.endsWith('dist/src/cli/afb-edge.bundle.cjs'))).toBe(true);
    expect(loaded.some((f) => f.endsWith('dist/src/cli/main.js'))).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
