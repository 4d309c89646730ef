/**
 * scripts/check-yocto.sh: passes on the repository, and fails — saying
 * why — on copies of it broken the ways a layer goes stale: a license line
 * missing, the shrinkwrap drifting from package-lock.json, a file the recipe
 * installs gone, a prebuilt binary let through. --write repairs what it
 * generates. Also runs the recipe's TypeScript step as the recipe writes it.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
// scripts/check-yocto.mjs: a plain ES module (scripts/ is not compiled), exporting its helpers
import { expectedShrinkwrap, licenseTerms, oeLicense, parseBitbake, productionPackages, registryUrl, value } from '../../scripts/check-yocto.mjs';
import { check, edit, fixture, LAYER_CONF, PACKAGEGROUP, RECIPE, root, SHRINKWRAP } from './fixture.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('on the repository', () => {
  it('passes (scripts/check-yocto.sh, as CI runs it)', () => {
    const r = spawnSync('sh', [join(root, 'scripts/check-yocto.sh')], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/check-yocto: ok\n$/);
    expect(r.status).toBe(0);
  });

  it('has a shrinkwrap equal to what --write generates from package-lock.json', () => {
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
    const sw = readFileSync(join(root, SHRINKWRAP), 'utf8');
    expect(sw).toBe(JSON.stringify(expectedShrinkwrap(lock), null, 2) + '\n');
    const parsed = JSON.parse(sw);
    expect(parsed.lockfileVersion).toBeGreaterThanOrEqual(2);
    expect(Object.keys(parsed.packages).length - 1).toBe(productionPackages(lock).size);
    expect(Object.values(parsed.packages).filter((p) => (p as { dev?: boolean }).dev)).toEqual([]);
  });

  it('is not fooled: --write on an intact copy changes nothing', () => {
    const dir = fixture();
    const before = [RECIPE, SHRINKWRAP, PACKAGEGROUP].map((f) => readFileSync(join(dir, f), 'utf8'));
    expect(check(dir, '--write').code).toBe(0);
    expect([RECIPE, SHRINKWRAP, PACKAGEGROUP].map((f) => readFileSync(join(dir, f), 'utf8'))).toEqual(before);
  });
});

describe('on broken copies', () => {
  it('fails when the package is licensed as the project alone, or per-dependency packages are named (as devtool writes them), and --write repairs it', () => {
    const dir = fixture();
    edit(dir, RECIPE, (t) => t.replace('LICENSE:${PN} = "${LICENSE}"\n', 'LICENSE:${PN} = "Apache-2.0"\nLICENSE:${PN}-ajv = "MIT"\n'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('LICENSE:${PN} is "Apache-2.0": the package ships all of node_modules, its license is all of LICENSE ("${LICENSE}")');
    expect(r.stderr).toContain('LICENSE:${PN}-ajv names a package the recipe does not create (npm.bbclass puts every dependency in ${PN}');
    expect(check(dir, '--write').code).toBe(0);
    const fixed = readFileSync(join(dir, RECIPE), 'utf8');
    expect(fixed).toContain('LICENSE:${PN} = "${LICENSE}"\n');
    expect(fixed).not.toContain('LICENSE:${PN}-ajv');
  });

  it('fails when a license is wrong, a license file md5 is stale, or LICENSE lacks one', () => {
    const dir = fixture();
    edit(dir, RECIPE, (t) => t
      .replace('LICENSE:${PN}-board-rpi4 = "Apache-2.0"', 'LICENSE:${PN}-board-rpi4 = "MIT"')
      .replace(/(file:\/\/node_modules\/ajv\/LICENSE;md5=)[0-9a-f]{32}/, '$100000000000000000000000000000000')
      .replace('LICENSE = "0BSD & ', 'LICENSE = "'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`LICENSE:\${PN}-board-rpi4 is "MIT", the drop-in is made from the project's boards/ (Apache-2.0)`);
    expect(r.stderr).toContain('LIC_FILES_CHKSUM: node_modules/ajv/LICENSE has md5');
    expect(r.stderr).toContain('LICENSE lacks 0BSD');
  });

  it('fails when the shrinkwrap drifts from package-lock.json (version, missing package, extra package)', () => {
    const dir = fixture();
    edit(dir, SHRINKWRAP, (t) => {
      const sw = JSON.parse(t);
      sw.packages['node_modules/yaml'].version = '2.9.0';
      delete sw.packages['node_modules/ws'];
      sw.packages['node_modules/left-pad'] = { version: '1.3.0', resolved: 'https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz', integrity: 'sha512-x', license: 'WTFPL' };
      return JSON.stringify(sw, null, 2) + '\n';
    });
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('node_modules/yaml: version "2.9.0", package-lock.json has "2.9.1"');
    expect(r.stderr).toContain('node_modules/ws 8.23.0 (production, in package-lock.json) is missing');
    expect(r.stderr).toContain('node_modules/left-pad is not a production package of package-lock.json');
  });

  it('fails when package-lock.json moves on without the shrinkwrap (a dependency updated)', () => {
    const dir = fixture();
    edit(dir, 'package-lock.json', (t) => {
      const lock = JSON.parse(t);
      lock.packages['node_modules/picomatch'].integrity = 'sha512-' + Buffer.alloc(64, 1).toString('base64');
      return JSON.stringify(lock, null, 2) + '\n';
    });
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('node_modules/picomatch: integrity');
  });

  it('fails when a file the recipe installs or uses is gone', () => {
    const dir = fixture();
    rmSync(join(dir, 'systemd/afb-edge-ecu.socket'));
    rmSync(join(dir, 'config/afb-edge.example.yaml'));
    rmSync(join(dir, 'scripts/board-dropin.mjs'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SYSTEMD_SERVICE:${PN} names afb-edge-ecu.socket, but systemd/afb-edge-ecu.socket does not exist');
    expect(r.stderr).toContain('uses ${S}/config/afb-edge.example.yaml, which the project does not have');
    expect(r.stderr).toContain('uses ${S}/scripts/board-dropin.mjs, which the project does not have');
  });

  it('fails when the prebuilt serialport binaries would be let through, or a QA check skipped', () => {
    const dir = fixture();
    edit(dir, RECIPE, (t) => t.replace('AFB_EDGE_FOREIGN_BINARIES = "node_modules/@serialport/bindings-cpp/prebuilds"', 'AFB_EDGE_FOREIGN_BINARIES = ""\nINSANE_SKIP:${PN} += "arch"'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/node_modules\/@serialport\/bindings-cpp\/prebuilds\/linux-arm64\/[^ ]+ is a prebuilt binary shipped by node_modules\/@serialport\/bindings-cpp/);
    expect(r.stderr).toContain('INSANE_SKIP:${PN}: QA checks are not skipped here');
  });

  it('fails on a board added without regenerating, on a machine claimed twice, and on a release that does not exist', () => {
    const dir = fixture();
    writeFileSync(join(dir, 'boards/imx8.yaml'), 'description: i.MX 8\nmachines: [imx8mq-evk, qemuarm64]\nmemory_mb: 2048\nlimits: { max_old_space_mb: 128 }\n');
    edit(dir, LAYER_CONF, (t) => t.replace('LAYERSERIES_COMPAT_afb-edge = "scarthgap', 'LAYERSERIES_COMPAT_afb-edge = "whinlatch scarthgap'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('AFB_EDGE_BOARDS is "qemuarm64 qemux86-64 rcar-h3 rcar-m3 rpi4 rpi5", boards/ has imx8 qemuarm64');
    expect(r.stderr).toContain('machine qemuarm64 is also claimed by imx8');
    expect(r.stderr).toContain("LAYERSERIES_COMPAT names 'whinlatch', not a Yocto release");
    expect(r.stderr).toContain('AFB_EDGE_BOARD_MAP is');
  });

  it('fails when the recipe stops keeping something package.json ships', () => {
    const dir = fixture();
    edit(dir, RECIPE, (t) => t.replace('AFB_EDGE_PACKAGE_FILES = "bin dist boards', 'AFB_EDGE_PACKAGE_FILES = "bin boards'));
    const r = check(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`AFB_EDGE_PACKAGE_FILES does not keep 'dist' (in package.json "files")`);
  });
});

describe('helpers', () => {
  it('turn SPDX expressions into Yocto LICENSE values and split them', () => {
    expect(oeLicense('MIT')).toBe('MIT');
    expect(oeLicense('(MIT OR WTFPL)')).toBe('MIT | WTFPL');
    expect(oeLicense('(BSD-2-Clause OR MIT OR Apache-2.0)')).toBe('BSD-2-Clause | MIT | Apache-2.0');
    expect(oeLicense('MIT AND (Apache-2.0 OR ISC)')).toBe('MIT & (Apache-2.0 | ISC)');
    expect(oeLicense(undefined)).toBeUndefined();
    expect(licenseTerms('0BSD & MIT & (MIT | WTFPL)')).toEqual(['0BSD', 'MIT', '(MIT | WTFPL)']);
    expect(licenseTerms('MIT | WTFPL')).toEqual(['(MIT | WTFPL)']);
  });

  it('give the registry URL npm resolves to', () => {
    expect(registryUrl('node_modules/ajv', '8.20.0')).toBe('https://registry.npmjs.org/ajv/-/ajv-8.20.0.tgz');
    expect(registryUrl('node_modules/a/node_modules/@types/node', '20.19.43')).toBe('https://registry.npmjs.org/@types/node/-/node-20.19.43.tgz');
  });

  it('parse the recipe as BitBake would split it', () => {
    const parsed = parseBitbake(readFileSync(join(root, RECIPE), 'utf8'), RECIPE);
    expect(parsed.errors).toEqual([]);
    expect(parsed.inherits).toEqual(['afb-edge-source', 'npm', 'systemd']);
    expect(value(parsed, 'SRCREV')).toBe('${AUTOREV}');
    expect(value(parsed, 'RDEPENDS:${PN}')).toBeUndefined(); // npm.bbclass adds nodejs
    expect([...parsed.funcs.keys()]).toEqual(['__anonymous', 'do_afb_edge_check_sources', 'do_afb_edge_prepare', 'do_install:append']);
    const p = parseBitbake('A = "1"\nA += "2"\nB ??= "w"\nC ?= "x"\nC ?= "y"\nD = "a \\\n  b"\n', 'x.bb');
    expect([value(p, 'A'), value(p, 'B'), value(p, 'C'), value(p, 'D')]).toEqual(['1 2', 'w', 'x', 'a    b']);
  });
});

describe("the recipe's TypeScript step", () => {
  it('compiles dist/ with nothing but the typescript package, into a working CLI', () => {
    const recipe = readFileSync(join(root, RECIPE), 'utf8');
    const heredoc = /cat > \$\{WORKDIR\}\/afb-edge-tsconfig\.json <<EOF\n([\s\S]*?)\nEOF\n/.exec(recipe);
    expect(heredoc).not.toBeNull();
    const work = mkdtempSync(join(tmpdir(), 'afb-edge-tsc-'));
    dirs.push(work);
    const s = join(work, 'afb-edge-0.1.0+git');
    mkdirSync(s);
    cpSync(join(root, 'src'), join(s, 'src'), { recursive: true });
    for (const f of ['tsconfig.json', 'package.json']) copyFileSync(join(root, f), join(s, f));
    writeFileSync(join(work, 'afb-edge-tsconfig.json'), heredoc![1]!.replaceAll('${S}', s));
    // no node_modules in S while compiling: no @types, no dependency typings
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(work, 'afb-edge-tsconfig.json')], { encoding: 'utf8', timeout: 120_000 });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
    expect(readdirSync(join(s, 'dist'))).toEqual(['src']);
    const all = readdirSync(join(s, 'dist'), { recursive: true }) as string[];
    expect(all.filter((f) => f.endsWith('.d.ts') || f.endsWith('.map'))).toEqual([]);
    expect(existsSync(join(s, 'dist/src/cli/main.js'))).toBe(true);
    // the output runs: with the dependencies and the boards in place, as in the package
    symlinkSync(join(root, 'node_modules'), join(s, 'node_modules'));
    cpSync(join(root, 'boards'), join(s, 'boards'), { recursive: true });
    const run = spawnSync(process.execPath, [join(s, 'dist/src/cli/main.js'), 'check-config', '--board', 'qemuarm64', join(root, 'config/afb-edge.example.yaml')], { encoding: 'utf8', timeout: 15_000 });
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('ok with board qemuarm64');
  }, 120_000);
});
