/**
 * The unit files in systemd/ as shipped: `systemd-analyze verify` (clean,
 * not a warning), `systemd-analyze security --offline` (exposure <= 2.0),
 * the settings the agent relies on, and socket activation of the exported
 * API with the socket unit's own FileDescriptorName=.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ensureBuilt, projectRoot } from '../helpers/cli.js';
import { Cleanup, tempDir, uniqueName, waitFor } from '../helpers/net-helpers.js';
import { NotifyListener } from './notify-listener.js';

const unitsDir = path.join(projectRoot, 'systemd');
const serviceFile = path.join(unitsDir, 'afb-edge.service');
const socketFile = path.join(unitsDir, 'afb-edge-ecu.socket');
const launcher = path.join(projectRoot, 'bin', 'afb-edge');
const cleanup = new Cleanup();
beforeAll(ensureBuilt);
afterEach(() => cleanup.run());

/** Section -> key -> values (a key may repeat), comments and blank lines skipped. */
function readUnit(file: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) { section = s[1]!; out[section] ??= {}; continue; }
    const eq = line.indexOf('=');
    (out[section]![line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return out;
}

function analyze(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`systemd-analyze: ${r.error.message} (Debian package systemd; .ci/run installs it)`);
  return { status: r.status, out: (r.stdout + r.stderr).trim() };
}

/**
 * A scratch root laid out like a board: the host's unit directory (for the
 * targets the units depend on), our units where the Yocto recipe installs
 * them, the launcher as /usr/bin/afb-edge and kill for ExecReload. verify
 * checks that ExecStart's binary exists and is executable; /usr/bin/afb-edge
 * only exists on a board, so the unit text is verified unmodified in this
 * root rather than edited to point elsewhere.
 */
function boardRoot(withLauncher = true): string {
  const root = tempDir(cleanup, 'sdroot');
  const unitDir = path.join(root, 'usr/lib/systemd/system');
  fs.mkdirSync(path.dirname(unitDir), { recursive: true });
  fs.cpSync('/usr/lib/systemd/system', unitDir, { recursive: true, verbatimSymlinks: true });
  fs.copyFileSync(serviceFile, path.join(unitDir, 'afb-edge.service'));
  fs.copyFileSync(socketFile, path.join(unitDir, 'afb-edge-ecu.socket'));
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  fs.symlinkSync('usr/bin', path.join(root, 'bin'));
  if (withLauncher) fs.copyFileSync(launcher, path.join(root, 'usr/bin/afb-edge'));
  const kill = ['/usr/bin/kill', '/bin/kill'].find((p) => fs.existsSync(p))!;
  fs.copyFileSync(kill, path.join(root, 'usr/bin/kill'));
  for (const f of ['usr/bin/afb-edge', 'usr/bin/kill']) if (fs.existsSync(path.join(root, f))) fs.chmodSync(path.join(root, f), 0o755);
  return root;
}

describe('systemd-analyze', () => {
  it('verify: both units load cleanly (no error, no warning)', () => {
    const root = boardRoot();
    const r = analyze(['verify', '--man=no', `--root=${root}`, 'afb-edge.service', 'afb-edge-ecu.socket']);
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('verify is a real check: without the binary in the root it fails, and an unknown key is reported', () => {
    const root = boardRoot(false);
    const r = analyze(['verify', '--man=no', `--root=${root}`, 'afb-edge.service']);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('Command /usr/bin/afb-edge is not executable');
    // an unknown key is only a warning (exit status 0): hence the test above wants no output at all
    const typoRoot = boardRoot();
    fs.writeFileSync(path.join(typoRoot, 'usr/lib/systemd/system/afb-edge.service'), fs.readFileSync(serviceFile, 'utf8').replace('RestartSec=2s', 'RestartSecs=2s'));
    const typo = analyze(['verify', '--man=no', `--root=${typoRoot}`, 'afb-edge.service']);
    expect(typo.out).toContain("Unknown key 'RestartSecs'");
    expect(typo.status).toBe(0);
  });

  it('security --offline: overall exposure at most 2.0 ("OK" or better)', () => {
    const r = analyze(['security', '--offline=true', '--no-pager', serviceFile]);
    expect(r.status).toBe(0);
    const m = /Overall exposure level for afb-edge\.service: (\d+\.\d) (\w+)/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    const score = Number(m![1]);
    console.log(`systemd-analyze security afb-edge.service: ${score} ${m![2]}`);
    expect(score).toBeLessThanOrEqual(2.0);
    expect(['OK', 'SAFE', 'PERFECT']).toContain(m![2]);
  });
});

describe('afb-edge.service', () => {
  const unit = readUnit(serviceFile);
  const svc = unit.Service!;
  const one = (k: string) => {
    expect(svc[k], k).toHaveLength(1);
    return svc[k]![0]!;
  };

  it('is a notify service whose main process alone may notify, with a watchdog and reload', () => {
    expect(one('Type')).toBe('notify');
    expect(one('NotifyAccess')).toBe('main');
    expect(one('ExecStart')).toBe('/usr/bin/afb-edge run --config /etc/afb-edge/afb-edge.yaml');
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    expect(one('WatchdogSec')).toMatch(/^\d+s$/);
    expect(one('Restart')).toBe('on-failure');
    // Node exits 1 on an uncaught exception too: that exit status must stay restartable
    expect(svc.RestartPreventExitStatus).toBeUndefined();
    expect(Number(unit.Unit!.StartLimitBurst![0])).toBeGreaterThan(0);
    expect(unit.Install!.WantedBy).toEqual(['multi-user.target']);
  });

  it('lets the agent drain by itself before systemd would SIGKILL it', () => {
    const env = Object.fromEntries(svc.Environment!.map((e) => e.split('=') as [string, string]));
    const drain = Number(env.AFB_EDGE_STOP_TIMEOUT_S);
    const timeout = Number(/^(\d+)s$/.exec(one('TimeoutStopSec'))![1]);
    expect(drain).toBeGreaterThan(0);
    expect(timeout - drain).toBeGreaterThanOrEqual(3);
  });

  it('keeps its state where the example config puts the outbox, and runs unprivileged', () => {
    expect(one('StateDirectory')).toBe('afb-edge');
    const example = parseYaml(fs.readFileSync(path.join(projectRoot, 'config/afb-edge.example.yaml'), 'utf8')) as { outbox: { path: string } };
    expect(path.dirname(example.outbox.path)).toBe('/var/lib/afb-edge');
    expect(one('DynamicUser')).toBe('yes');
    expect(one('SupplementaryGroups')).toBe('dialout');
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('RestrictAddressFamilies').split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
    expect(svc.SystemCallFilter![0]).toBe('@system-service');
    // without it a refused call kills Node (SIGSYS); libuv and V8 probe optional calls
    expect(one('SystemCallErrorNumber')).toBe('EPERM');
    // V8's JIT needs writable then executable memory
    expect(svc.MemoryDenyWriteExecute).toBeUndefined();
  });
});

describe('afb-edge-ecu.socket', () => {
  const unit = readUnit(socketFile);
  const sock = unit.Socket!;

  it('has the shape of the AGL framework\'s API sockets: /run/platform/apis/ws/NAME, fd named NAME', () => {
    expect(sock.ListenStream).toEqual(['/run/platform/apis/ws/ecu']);
    expect(sock.FileDescriptorName).toEqual([path.basename(sock.ListenStream![0]!)]);
    expect(sock.Service).toEqual(['afb-edge.service']);
    expect(unit.Install!.WantedBy).toEqual(['sockets.target']);
  });

  it('activates the agent on the first connection, which then serves the API on the inherited fd (sd:NAME)', async () => {
    const dir = tempDir(cleanup, 'sdsock');
    const name = sock.FileDescriptorName![0]!;
    const socketPath = path.join(dir, name); // ListenStream, moved under a temp dir
    const l = await NotifyListener.start('@' + uniqueName('notify'));
    cleanup.add(() => l.close());
    const config = path.join(dir, 'agent.yaml');
    fs.writeFileSync(config, `
device: { id: car-sock }
mqtt: { url: "mqtt://127.0.0.1:1" }
outbox: { path: ${path.join(dir, 'outbox.db')} }
binders: []
routes: []
ecu_api: { listen: [ "sd:${name}" ] }
`);
    // systemd-socket-activate (package systemd) passes the listening socket the way PID 1 does:
    // fd 3, LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES=--fdname, and starts the service on the
    // first connection.
    const activator = spawn('systemd-socket-activate', ['-l', socketPath, `--fdname=${name}`, '-E', 'PATH', '-E', `NOTIFY_SOCKET=${l.address}`,
      launcher, 'run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    activator.stderr!.on('data', (d) => { log += d; });
    const exited = new Promise<number | null>((r) => activator.once('close', (c) => r(c)));
    cleanup.add(async () => { if (activator.exitCode === null && activator.signalCode === null) { activator.kill('SIGKILL'); await exited; } });
    await waitFor(() => fs.existsSync(socketPath), 5000, 'the activation socket');
    expect(l.messages).toEqual([]); // nothing runs before a client comes

    const call = spawnSync(launcher, ['call', `unix:${socketPath}`, 'links'], { encoding: 'utf8', timeout: 15_000 });
    expect(call.stderr).toBe('');
    expect(JSON.parse(call.stdout)).toEqual({ error: null, info: null, data: [] });
    const ready = await l.next((m) => m.fields.READY === '1');
    expect(ready.pid).toBe(activator.pid); // systemd-socket-activate execs the service in place
    await waitFor(() => log.includes(`listening on sd:${name}`), 2000, 'the agent serving the inherited socket');
    activator.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
