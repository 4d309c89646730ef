/**
 * The bundle as the Yocto recipe makes it (do_install): scripts/bundle.mjs
 * run on an installed copy of the package — dist/ and the production
 * dependencies only — with esbuild-wasm instead of the native esbuild. The
 * result must answer as the compiled modules do.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliMain, ensureBuilt, projectRoot } from '../helpers/cli.js';

let pkg: string;

beforeAll(() => {
  ensureBuilt();
  pkg = join(mkdtempSync(join(tmpdir(), 'afb-edge-wasm-bundle-')), 'afb-edge');
  cpSync(join(projectRoot, 'dist'), join(pkg, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.bundle.cjs') });
  cpSync(join(projectRoot, 'package.json'), join(pkg, 'package.json'));
  cpSync(join(projectRoot, 'boards'), join(pkg, 'boards'), { recursive: true });
  // The package's own addon, which npm's install script builds on the board.
  cpSync(join(projectRoot, 'build/Release/afb_edge_unix.node'), join(pkg, 'build/Release/afb_edge_unix.node'));
  // What `npm install` of the package puts in node_modules: the lockfile's production packages.
  const lock = JSON.parse(readFileSync(join(projectRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (!key.startsWith('node_modules/') || entry.dev === true || key.slice(13).includes('/node_modules/')) continue;
    cpSync(join(projectRoot, key), join(pkg, key), { recursive: true });
  }
});
afterAll(() => rmSync(join(pkg, '..'), { recursive: true, force: true }));

it('esbuild-wasm bundles the installed package, and the bundle answers as main.js does', { timeout: 120_000 }, () => {
  expect(existsSync(join(pkg, 'node_modules/esbuild'))).toBe(false); // dev-only: not installed on a board
  const b = spawnSync(process.execPath, [join(projectRoot, 'scripts/bundle.mjs'), '--root', pkg, '--esbuild', join(projectRoot, 'node_modules/esbuild-wasm/lib/main.js')], { encoding: 'utf8' });
  expect(b.stderr).toBe('');
  expect(b.status).toBe(0);
  expect(b.stdout).toMatch(/^bundle: dist\/src\/cli\/afb-edge\.bundle\.cjs, \d+ modules/);
  const bundle = join(pkg, 'dist/src/cli/afb-edge.bundle.cjs');
  expect(existsSync(bundle)).toBe(true);
  // the reload worker's bundle, which the recipe checks for too (src/config/load-in-worker.ts)
  expect(existsSync(join(pkg, 'dist/src/cli/config-check-worker.bundle.cjs'))).toBe(true);
  // and the config loader's, which the recipe checks for too (src/config/loader-module.ts)
  expect(existsSync(join(pkg, 'dist/src/cli/config-loader.bundle.cjs'))).toBe(true);

  const example = join(projectRoot, 'config/afb-edge.example.yaml');
  for (const args of [['--version'], ['check-config', example], ['check-config', example, '--board', 'rpi4'], ['call', 'unix:@afb-edge-wasm-test-nobody-listens', 'ping']]) {
    const want = spawnSync(process.execPath, [cliMain, ...args], { encoding: 'utf8' });
    const got = spawnSync(process.execPath, [join(pkg, 'dist/src/cli/launch.cjs'), ...args], { encoding: 'utf8' });
    expect({ status: got.status, stdout: got.stdout, stderr: got.stderr }, args.join(' ')).toEqual({ status: want.status, stdout: want.stdout, stderr: want.stderr });
  }
});
