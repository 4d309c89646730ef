/**
 * Where the built CLI is, for tests that run `afb-edge` as a process; builds
 * it first when a plain `vitest run` finds no dist/ (npm test builds anyway).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const projectRoot = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..');
export const cliMain = join(projectRoot, 'dist/src/cli/main.js');

export function ensureBuilt(): void {
  if (existsSync(cliMain)) return;
  const b = spawnSync('npm', ['run', 'build'], { cwd: projectRoot, stdio: 'inherit' });
  if (b.status !== 0) throw new Error('build failed');
}

/**
 * For tests whose child processes import dist/ modules directly (not the CLI
 * bundle): runs tsc again when a source file in `srcDirs` (relative to the
 * project) is newer than `built`. Type errors elsewhere in the tree still
 * emit; only a missing output is fatal.
 */
export function ensureDistFresh(built: string, srcDirs: string[]): void {
  const out = join(projectRoot, built);
  const newest = Math.max(...srcDirs.flatMap((d) => readdirSync(join(projectRoot, d)).filter((f) => f.endsWith('.ts')).map((f) => statSync(join(projectRoot, d, f)).mtimeMs)));
  if (existsSync(out) && statSync(out).mtimeMs >= newest) return;
  try {
    execFileSync('npx', ['tsc', '-p', '.'], { cwd: projectRoot, stdio: 'pipe' });
  } catch (err) {
    if (!existsSync(out)) throw new Error(`tsc did not build ${out}: ${(err as { stdout?: Buffer }).stdout?.toString()}`);
  }
}
