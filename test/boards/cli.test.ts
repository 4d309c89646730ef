/**
 * --board on the command line, as users run it: the built CLI as a child
 * process (check-config and run), exit codes and messages.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliMain, ensureBuilt, projectRoot } from '../helpers/cli.js';

const example = join(projectRoot, 'config/afb-edge.example.yaml');
let dir: string;

function cli(args: string[], env: Record<string, string> = {}) {
  const base = { ...process.env };
  delete base.AFB_EDGE_BOARD;
  delete base.AFB_EDGE_BOARDS_DIR;
  const r = spawnSync(process.execPath, [cliMain, ...args], { env: { ...base, ...env }, encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'afb-edge-board-cli-'));
  writeFileSync(join(dir, 'broken.yaml'), 'description: broken\nmemory_mb: 512\nlimits:\n  max_old_space_mb: 64\noverlay:\n  outbox:\n    policy: keep-all\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('check-config --board', () => {
  it('checks the file with the board applied and says so', () => {
    const r = cli(['check-config', '--board', 'rcar-h3', example]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    // the summary in parentheses is check-config's own (test/config tests it)
    expect(r.stdout.startsWith(`${example}: ok with board rcar-h3 (`)).toBe(true);
    expect(r.stdout.endsWith(')\n')).toBe(true);
  });

  it('takes the board from AFB_EDGE_BOARD, as the systemd drop-in sets it', () => {
    const r = cli(['check-config', example], { AFB_EDGE_BOARD: 'qemux86-64' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok with board qemux86-64');
  });

  it('makes an unknown board a usage error (exit 2) listing the known ones', () => {
    const r = cli(['check-config', '--board', 'rpi3', example]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^afb-edge: unknown board 'rpi3': no .*rpi3\.yaml; known boards: qemuarm64, qemux86-64, rcar-h3, rcar-m3, rpi4, rpi5\n$/);
  });

  it('reports a broken board file with file:line like a config error (exit 1)', () => {
    const r = cli(['check-config', '--board', 'broken', example], { AFB_EDGE_BOARDS_DIR: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`${join(dir, 'broken.yaml')}:7:13: overlay.outbox.policy: must be 'drop-oldest' or 'reject-new', not "keep-all" (hint: when the outbox is full: 'drop-oldest' discards the oldest message, 'reject-new' the new one)\n`);
  });

  it('needs a value', () => {
    const r = cli(['check-config', example, '--board']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^afb-edge: .*--board/);
  });
});

describe('run --board', () => {
  it('refuses an unknown board before anything starts (exit 2)', () => {
    const r = cli(['run', '--config', example, '--board', 'nope']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown board 'nope'");
  });

  it('refuses a broken board file with its errors (exit 1, not starting)', () => {
    const r = cli(['run', '--config', example, '--board', 'broken'], { AFB_EDGE_BOARDS_DIR: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(dir, 'broken.yaml')}:7:13: overlay.outbox.policy`);
    expect(r.stderr).toContain('afb-edge: board file: 1 error(s), not starting\n');
  });

  it('starts with the board applied, warning when node runs without the heap flags the board sets', async () => {
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `device: { id: car-1 }\nmqtt: { url: "mqtt://127.0.0.1:9" }\nbinders: []\nroutes: []\noutbox: { path: ${JSON.stringify(join(dir, 'outbox.db'))} }\n`);
    const base = { ...process.env };
    delete base.AFB_EDGE_BOARD;
    delete base.AFB_EDGE_BOARDS_DIR;
    const start = (nodeFlags: string[]) =>
      new Promise<string>((done, fail) => {
        const child = spawn(process.execPath, [...nodeFlags, cliMain, 'run', '--config', config, '--log-level', 'info'], { env: { ...base, AFB_EDGE_BOARD: 'qemuarm64' }, stdio: ['ignore', 'ignore', 'pipe'] });
        let err = '';
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.stderr!.on('data', (d) => {
          err += d;
          if (err.includes('<info> board qemuarm64:') && /outbox|mqtt|agent/i.test(err.split('board qemuarm64')[1] ?? '')) child.kill('SIGTERM');
        });
        child.on('close', () => {
          clearTimeout(timer);
          err.includes('board qemuarm64') ? done(err) : fail(new Error(err));
        });
      });
    const bare = await start([]);
    expect(bare).toContain('<info> board qemuarm64: QEMU qemuarm64 (virt, 512 MB)');
    expect(bare).toContain('<warn> board qemuarm64 sizes the V8 heap for 512 MB but node was started without a heap limit: start it with AFB_EDGE_NODE_FLAGS="--max-old-space-size=96 --max-semi-space-size=1 --v8-pool-size=1 --heap-growing-percent=50 --expose-gc"');
    const flagged = await start(['--max-old-space-size=96']);
    expect(flagged).toContain('<info> board qemuarm64');
    expect(flagged).not.toContain('heap limit');
  });

  it('reports config errors of the merged config against the config file', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'device: { id: car-1 }\nmqtt: { url: "mqtt://localhost:1883", keepalive_s: -1 }\nbinders: []\nroutes: []\n');
    const r = cli(['run', '--config', bad, '--board', 'rpi4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad}:2:`);
    expect(r.stderr).toContain('mqtt.keepalive_s');
    expect(r.stderr).toContain('not starting');
  });
});
