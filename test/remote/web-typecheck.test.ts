/**
 * The dashboard's browser code type-checks against the DOM (its own
 * tsconfig: the main one excludes it and has no DOM types), and the build
 * made its bundle: one script and one style sheet, no source map, no
 * remote URL (it must work on a plant network without Internet).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { ensureBuilt, projectRoot } from '../helpers/cli.js';

beforeAll(() => ensureBuilt());

it('src/remote/dashboard/web type-checks with its tsconfig (lib dom)', () => {
  const r = spawnSync(process.execPath, [join(projectRoot, 'node_modules/typescript/bin/tsc'), '-p', join(projectRoot, 'src/remote/dashboard/web/tsconfig.json')], { encoding: 'utf8', timeout: 120_000 });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
}, 120_000);

it('dist/web holds the bundle, which loads nothing from elsewhere', () => {
  const js = readFileSync(join(projectRoot, 'dist/web/app.js'), 'utf8');
  const css = readFileSync(join(projectRoot, 'dist/web/app.css'), 'utf8');
  expect(js.length).toBeGreaterThan(50_000); // uPlot is in it
  expect(js).toContain('u-over'); // uPlot's overlay class: the chart library is in it
  for (const text of [js, css]) {
    expect(text).not.toMatch(/https?:\/\/(?!www\.w3\.org\/)[a-z0-9.-]+\.[a-z]{2,}\/[^\s"')]*\.(js|css|woff2?)/i);
    expect(text).not.toMatch(/sourceMappingURL/);
  }
  expect(css).toContain('.uplot');
});
