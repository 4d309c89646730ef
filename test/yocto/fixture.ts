/**
 * A throw-away copy of what scripts/check-yocto.mjs reads, to break in one
 * way per test; node_modules and src are the repository's (read only), except
 * the packages a test asks to copy (to edit them).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, expect } from 'vitest';

export const root = resolve(import.meta.dirname, '../..');
export const LAYER = 'yocto/meta-afb-edge';
export const RECIPE = `${LAYER}/recipes-afb-edge/afb-edge/afb-edge_git.bb`;
export const SHRINKWRAP = `${LAYER}/recipes-afb-edge/afb-edge/afb-edge/npm-shrinkwrap.json`;
export const PACKAGEGROUP = `${LAYER}/recipes-afb-edge/packagegroups/packagegroup-afb-edge.bb`;
export const LAYER_CONF = `${LAYER}/conf/layer.conf`;
export const LAYER_README = `${LAYER}/README.md`;
export const SOURCE_CLASS = `${LAYER}/classes-recipe/afb-edge-source.bbclass`;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A copy of the project's layer and what it is checked against; `copyPackages`: node_modules entries copied, not linked. */
export function fixture(copyPackages: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-yocto-'));
  dirs.push(dir);
  for (const f of ['package.json', 'package-lock.json', 'README.md', 'binding.gyp', 'tsconfig.json']) copyFileSync(join(root, f), join(dir, f));
  for (const d of ['yocto', 'boards', 'config', 'systemd', 'bin', 'docs', 'scripts', 'native']) cpSync(join(root, d), join(dir, d), { recursive: true });
  if (copyPackages.length === 0) symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  else {
    mkdirSync(join(dir, 'node_modules'));
    for (const name of readdirSync(join(root, 'node_modules'))) {
      if (copyPackages.includes(name)) cpSync(join(root, 'node_modules', name), join(dir, 'node_modules', name), { recursive: true });
      else symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name));
    }
  }
  symlinkSync(join(root, 'src'), join(dir, 'src'));
  return dir;
}

/** Runs scripts/check-yocto.mjs on a fixture. */
export function check(dir: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'scripts/check-yocto.mjs'), '--root', dir, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Changes one file of a fixture; the change must change something. */
export function edit(dir: string, rel: string, change: (text: string) => string): void {
  const file = join(dir, rel);
  const before = readFileSync(file, 'utf8');
  const after = change(before);
  expect(after, `the edit of ${rel} changed nothing`).not.toBe(before);
  writeFileSync(file, after);
}
