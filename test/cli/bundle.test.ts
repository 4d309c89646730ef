/**
 * The one-file bundle bin/afb-edge prefers (scripts/bundle.mjs) behaves as
 * the compiled modules do: same answers, the native addon and the boards
 * found from its location.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { cliMain, ensureBuilt, projectRoot } from '../helpers/cli.js';

const bundle = join(projectRoot, 'dist/src/cli/afb-edge.bundle.mjs');
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

it('bin/afb-edge runs the bundle', () => {
  // -p prints what node was asked to run: the launcher's entry point
  const r = spawnSync(join(projectRoot, 'bin/afb-edge'), [], { encoding: 'utf8', env: { ...process.env, AFB_EDGE_NODE_FLAGS: '-p process.argv[1]' } });
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toMatch(/dist\/src\/cli\/afb-edge\.bundle\.mjs$/);
});
