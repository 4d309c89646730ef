/**
 * The rules scripts/check-yocto.sh (CI) keeps for what only a real bitbake
 * run showed (issue 13): afb-edge and everything requiring it skipped under
 * one condition (else "bitbake world" fails on a build without
 * AFB_EDGE_GIT_URL), nodejs not listed twice, the license manifest covering
 * what the package ships (SQLite compiled in: PD), the README sections a
 * layer has; and the release-check script's own argument checks.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { check, edit, fixture, LAYER, LAYER_README, PACKAGEGROUP, RECIPE, root, SOURCE_CLASS } from './fixture.js';

describe('one skip condition for afb-edge and what requires it', () => {
  it('fails when the packagegroup no longer inherits afb-edge-source (left requiring a skipped recipe)', () => {
    const dir = fixture();
    edit(dir, PACKAGEGROUP, (t) => t.replace('inherit packagegroup afb-edge-source', 'inherit packagegroup'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${PACKAGEGROUP}: requires afb-edge but does not inherit afb-edge-source: it is not skipped with it, and "bitbake world" fails on a build without AFB_EDGE_GIT_URL`);
  });

  it('fails on a new recipe of the layer that requires a board package without the class', () => {
    const dir = fixture();
    const rel = `${LAYER}/recipes-afb-edge/packagegroups/packagegroup-afb-edge-product.bb`;
    writeFileSync(join(dir, rel), 'SUMMARY = "a product"\nLICENSE = "MIT"\ninherit packagegroup\nRDEPENDS:${PN} = "afb-edge-board-rpi4 mosquitto"\n');
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${rel}: requires afb-edge but does not inherit afb-edge-source`);
    edit(dir, rel, (t) => t.replace('inherit packagegroup', 'inherit packagegroup afb-edge-source'));
    expect(check(dir).stderr).toBe('');
  });

  it('fails when a recipe grows its own copy of the skip, or the class stops skipping', () => {
    const dir = fixture();
    edit(dir, RECIPE, (t) => t.replace("python __anonymous() {\n", "python __anonymous() {\n    if '.invalid/' in (d.getVar('AFB_EDGE_GIT_URL') or ''):\n        raise bb.parse.SkipRecipe('set AFB_EDGE_GIT_URL')\n"));
    edit(dir, SOURCE_CLASS, (t) => t.replace(/raise bb\.parse\.SkipRecipe\(/, 'bb.warn('));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${RECIPE}: __anonymous has its own AFB_EDGE_GIT_URL skip: the condition lives in afb-edge-source.bbclass only`);
    expect(r.stderr).toContain(`${SOURCE_CLASS}: does not skip the recipe while AFB_EDGE_GIT_URL is unset`);
  });

  it('fails when the class no longer requires systemd', () => {
    const dir = fixture();
    edit(dir, SOURCE_CLASS, (t) => t.replace('REQUIRED_DISTRO_FEATURES:append = " systemd"\n', ''));
    expect(check(dir).stderr).toContain('does not require the systemd distro feature');
  });
});

describe('the package', () => {
  it('fails when the recipe lists nodejs in RDEPENDS again (npm.bbclass adds it)', () => {
    const dir = fixture();
    edit(dir, RECIPE, (t) => t.replace('NPM_INSTALL_DEV = "0"\n', 'NPM_INSTALL_DEV = "0"\n\nRDEPENDS:${PN} += "nodejs"\n'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('RDEPENDS:${PN} names nodejs, which npm.bbclass already adds (the package would list it twice)');
  });

  it('fails when the recipe sets UNPACKDIR (scarthgap has none; wrynose refuses it = WORKDIR)', () => {
    const dir = fixture();
    edit(dir, RECIPE, (t) => t.replace('AFB_EDGE_UNPACKDIR = ', 'UNPACKDIR ??= "${WORKDIR}"\nAFB_EDGE_UNPACKDIR = '));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("sets UNPACKDIR: a recipe value wins over bitbake.conf's, and wrynose refuses UNPACKDIR = ${WORKDIR}");
  });

  it('has SQLite (compiled into better_sqlite3.node) as PD in LICENSE, with its header in LIC_FILES_CHKSUM', () => {
    const recipe = readFileSync(join(root, RECIPE), 'utf8');
    expect(recipe).toMatch(/^LICENSE = "[^"]*\bPD\b/m);
    // the md5 of lines 1-11 is the one poky's sqlite3 recipe has for sqlite3.h
    expect(recipe).toContain('file://node_modules/better-sqlite3/deps/sqlite3/sqlite3.h;beginline=1;endline=11;md5=786d3dc581eff03f4fd9e4a77ed00c66');
  });

  it("fails when SQLite's header no longer says what PD rests on, and --write does not paper over it", () => {
    const dir = fixture(['better-sqlite3']);
    edit(dir, 'node_modules/better-sqlite3/deps/sqlite3/sqlite3.h', (t) => t.replace('The author disclaims copyright to this source code.', 'Copyright (c) someone. All rights reserved.'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('node_modules/better-sqlite3/deps/sqlite3/sqlite3.h (the SQLite amalgamation, compiled into better_sqlite3.node) no longer says "The author disclaims copyright to this source code" in its first 11 lines: review its license');
    expect(r.stderr).toContain('LIC_FILES_CHKSUM: node_modules/better-sqlite3/deps/sqlite3/sqlite3.h;beginline=1;endline=11 has md5');
    const w = check(dir, '--write');
    expect(w.code).toBe(1);
    expect(w.stderr).toContain('review its license');
  });
});

describe("the layer's README", () => {
  it('fails without maintainers, patch submission, dependencies, the local.conf lines or the release check', () => {
    const dir = fixture();
    edit(dir, LAYER_README, (t) => t
      .replace(/## Maintainers\n[\s\S]*?(?=\n## )/, '')
      .replace(/## Patches\n[\s\S]*$/, '')
      .replace(/## Dependencies\n/, '## Layers\n')
      .replaceAll('INIT_MANAGER = "systemd"', 'DISTRO_FEATURES:append = " systemd"')
      .replaceAll('scripts/yocto-bitbake-check.sh', 'the release script'));
    const r = check(dir);
    expect(r.code).toBe(1);
    for (const m of ['no "## Maintainers" section', 'no section on sending patches', 'no "## Dependencies" section', 'does not show the local.conf line INIT_MANAGER = "systemd"', 'does not document the release check scripts/yocto-bitbake-check.sh']) {
      expect(r.stderr).toContain(`${LAYER_README}: ${m}`);
    }
  });

  it('fails when it mentions another README (yocto-check-layer would then skip its content checks), or names a maintainer without address', () => {
    const dir = fixture();
    edit(dir, LAYER_README, (t) => t.replace("(the project's\n`boards/`)", '(boards/README.md)').replace(/<[^>\n]+@[^>\n]+>/, '(ask around)'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('mentions a README: yocto-check-layer then skips its maintainer/patch/address checks');
    expect(r.stderr).toContain('the Maintainers section names no one as "Name <address>"');
  });

  it('fails when a series of LAYERSERIES_COMPAT is not among the Dependencies branches', () => {
    const dir = fixture();
    edit(dir, `${LAYER}/conf/layer.conf`, (t) => t.replace('LAYERSERIES_COMPAT_afb-edge = "scarthgap"', 'LAYERSERIES_COMPAT_afb-edge = "scarthgap walnascar"'));
    expect(check(dir).stderr).toContain('the Dependencies section does not name the branch walnascar (LAYERSERIES_COMPAT)');
  });
});

describe('scripts/yocto-bitbake-check.sh (the release check, not run in CI: no poky here)', () => {
  const script = join(root, 'scripts/yocto-bitbake-check.sh');
  it('is valid bash and prints its usage without its two directories', () => {
    expect(spawnSync('bash', ['-n', script]).status).toBe(0);
    const r = spawnSync(script, [], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('scripts/yocto-bitbake-check.sh [options] POKY_DIR META_OE_DIR');
  });

  it('says which file is missing when POKY_DIR is not a poky tree', () => {
    const dir = fixture();
    const r = spawnSync(script, ['--offline', dir, dir], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`yocto-bitbake-check: ${dir}/oe-init-build-env is missing`);
  });
});
