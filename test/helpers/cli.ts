/**
 * Where the built CLI is, for tests that run `afb-edge` as a process; builds
 * it first when a plain `vitest run` finds no dist/ (npm test builds anyway).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const projectRoot = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..');
export const cliMain = join(projectRoot, 'dist/src/cli/main.js');

export function ensureBuilt(): void {
  if (existsSync(cliMain)) return;
  const b = spawnSync('npm', ['run', 'build'], { cwd: projectRoot, stdio: 'inherit' });
  if (b.status !== 0) throw new Error('build failed');
}
