/**
 * Does the agent work inside the sandbox afb-edge.service declares? systemd
 * is not PID 1 here (nor in CI), so the sandbox is rebuilt from the unit
 * file with the kernel features systemd itself uses:
 *  - a mount and pid namespace (unshare) with /proc mounted
 *    subset=pid,hidepid=invisible (ProcSubset=pid, ProtectProc=invisible)
 *    and the root remounted read-only except the state directory
 *    (ProtectSystem=strict, StateDirectory=);
 *  - an unprivileged uid without supplementary groups (DynamicUser=);
 *  - the unit's SystemCallFilter= / SystemCallErrorNumber= /
 *    RestrictAddressFamilies= as a seccomp filter (sandbox.py, libseccomp,
 *    with the sets expanded by systemd-analyze, i.e. systemd's own lists),
 *    no_new_privs set.
 * strace records every system call the agent makes in there, so that a call
 * the filter refused shows up by name even when Node shrugs it off.
 *
 * The agent starts (READY=1), takes events from a binder into its on-disk
 * outbox and out to mosquitto, reloads, and stops cleanly.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { WsapiServer } from '../../src/wsapi/index.js';
import { startBroker } from '../helpers/broker.js';
import { ensureBuilt, projectRoot } from '../helpers/cli.js';
import { Cleanup, freePort, tempDir, uniqueName, waitFor } from '../helpers/net-helpers.js';
import { NotifyListener } from './notify-listener.js';

const cleanup = new Cleanup();
beforeAll(ensureBuilt);
afterEach(() => cleanup.run());

const NOBODY = 65534;

function need(cmd: string, pkg: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`]);
  if (r.status !== 0) throw new Error(`${cmd} not found: apt-get install ${pkg} (.ci/run installs it)`);
}

async function metric(port: number, name: string): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = new RegExp(`^${name.replace(/[{}]/g, '\\$&')} ([\\d.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** System calls per name from an `strace -f` log, only those made after node was exec'd. */
function syscallsAfterNodeExec(trace: string): { names: Set<string>; families: Set<string>; lines: string[] } {
  const lines = trace.split('\n');
  const start = lines.findIndex((l) => /execve\("[^"]*\/node", .*= 0$/.test(l));
  if (start < 0) throw new Error('node was never exec\'d in the sandbox');
  const names = new Set<string>();
  const families = new Set<string>();
  for (const l of lines.slice(start + 1)) {
    const m = /^\d+ +(?:<\.\.\. )?([a-z0-9_]+)[( ]/.exec(l);
    if (m && !l.includes('--- SIG') && !l.includes('+++ ')) names.add(m[1]!);
    const s = /socket\((AF_[A-Z0-9]+)/.exec(l);
    if (s) families.add(s[1]!);
  }
  return { names, families, lines: lines.slice(start + 1) };
}

describe('afb-edge.service sandbox, rebuilt without systemd', () => {
  it('the agent runs in it: READY=1, events to the broker through the outbox, reload, clean stop; no system call refused', async () => {
    expect(process.getuid?.(), 'namespaces and setuid need root (CI runs as root)').toBe(0);
    need('unshare', 'util-linux');
    need('strace', 'strace');
    need('systemd-analyze', 'systemd');
    const seccomp = spawnSync('/usr/bin/python3', ['-c', 'import seccomp']);
    if (seccomp.status !== 0) throw new Error('python3 seccomp module missing: apt-get install python3-seccomp (.ci/run installs it)');

    const dir = tempDir(cleanup, 'sandbox');
    fs.chmodSync(dir, 0o755);
    // The project is bind-mounted on a path the unprivileged user can walk to, wherever CI cloned it.
    const app = path.join(dir, 'app');
    fs.mkdirSync(app, { mode: 0o755 });
    // The bind mount keeps the mode of the project's own directory: a checkout made in a
    // `mktemp -d` directory is 0700, which the service's user cannot enter (an installed
    // package is 0755). Opened to it for the test, and put back.
    const rootMode = fs.statSync(projectRoot).mode & 0o7777;
    if ((rootMode & 0o001) === 0) {
      fs.chmodSync(projectRoot, rootMode | 0o001);
      cleanup.add(() => fs.chmodSync(projectRoot, rootMode));
    }
    const state = path.join(dir, 'state');
    fs.mkdirSync(state, { mode: 0o700 });
    fs.chownSync(state, NOBODY, NOBODY);

    const broker = await startBroker();
    cleanup.add(() => broker.close());
    const binder = new WsapiServer({ api: 'veh' });
    const speed = binder.event('speed');
    binder.verb('sub', (req) => { req.subscribe(speed); req.reply(null); });
    const sock = path.join(dir, 'veh');
    await binder.listen(`unix:${sock}`);
    fs.chmodSync(sock, 0o666); // AGL's API sockets are world-connectable (access control is SMACK's)
    cleanup.add(() => binder.close());
    const pusher = setInterval(() => speed.push({ kmh: 42 }), 20);
    cleanup.add(() => clearInterval(pusher));

    const port = await freePort();
    const config = path.join(dir, 'agent.yaml');
    fs.writeFileSync(config, `
device: { id: car-sandbox }
mqtt: { url: "${broker.url}", status_interval_s: 0, reconnect: { initial_delay_ms: 50, max_delay_ms: 200 } }
outbox: { path: ${path.join(state, 'outbox.db')} }
health: { http_listen: "127.0.0.1:${port}" }
binders: [ { name: veh, spec: "unix:${sock}", subscribe: [ { verb: sub } ], reconnect: { initial_delay_ms: 50, max_delay_ms: 200 } } ]
routes: [ { name: speed, match: ["veh/speed"], qos: 1 } ]
`, { mode: 0o644 });
    const l = await NotifyListener.start('@' + uniqueName('sandbox'));
    cleanup.add(() => l.close());

    const trace = path.join(state, 'strace.log');
    const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    const script = [
      'set -e',
      `mount --bind ${q(projectRoot)} ${q(app)}`,
      'mount -t proc -o subset=pid,hidepid=invisible proc /proc',
      `mount --bind ${q(state)} ${q(state)}`,
      'mount -o remount,bind,ro /',
      `exec strace -f -qq -o ${q(trace)} /usr/bin/python3 ${q(app)}/test/systemd/sandbox.py ${q(app)}/systemd/afb-edge.service ${NOBODY} ${NOBODY} -- ${q(app)}/bin/afb-edge run --config ${q(config)}`,
    ].join('\n');
    // PATH entries inside the project (CI's Node 22) are reached through the bind mount too.
    const PATH = (process.env.PATH ?? '').split(':').map((p) => p.startsWith(projectRoot + '/') ? app + p.slice(projectRoot.length) : p).join(':');
    const child = spawn('unshare', ['--mount', '--pid', '--fork', '--kill-child', 'sh', '-c', script], {
      env: { PATH, NOTIFY_SOCKET: l.address, WATCHDOG_USEC: '2000000', AFB_EDGE_STOP_TIMEOUT_S: '10' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    cleanup.add(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; } });

    const ready = await l.next((m) => m.fields.READY === '1', 20_000).catch((e: Error) => { throw new Error(`${e.message}\n${stderr}`); });
    const agentPid = ready.pid!; // node, as the host sees it (it is pid 1 of its own namespace)
    await waitFor(async () => (await metric(port, 'afb_edge_published_total{qos="1"}')) >= 20, 15_000, `QoS 1 events through the sandboxed outbox\n${stderr}`);
    await l.next((m) => m.fields.WATCHDOG === '1');

    const from = l.messages.length;
    process.kill(agentPid, 'SIGHUP');
    const reloading = await l.next((m) => m.fields.RELOADING === '1', 5000, from);
    await l.next((m) => m.fields.READY === '1', 5000, l.messages.indexOf(reloading) + 1);
    process.kill(agentPid, 'SIGTERM');
    await l.next((m) => m.fields.STOPPING === '1', 5000, from);
    expect(await exited, stderr).toBe(0);
    expect(stderr).toContain('agent: stopped (shutdown (SIGTERM))');
    expect(stderr).not.toMatch(/EPERM|EACCES|EROFS|<error>/);
    expect(fs.statSync(path.join(state, 'outbox.db')).uid).toBe(NOBODY);

    const allowed = JSON.parse(spawnSync('/usr/bin/python3', [path.join(projectRoot, 'test/systemd/sandbox.py'), '--list', path.join(projectRoot, 'systemd/afb-edge.service')], { encoding: 'utf8' }).stdout) as { syscalls: string[]; families: string[] };
    const used = syscallsAfterNodeExec(fs.readFileSync(trace, 'utf8'));
    const refused = [...used.names].filter((n) => !allowed.syscalls.includes(n));
    expect(refused, used.lines.filter((x) => refused.some((r) => x.includes(` ${r}(`))).slice(0, 10).join('\n')).toEqual([]);
    expect([...used.families].filter((f) => !allowed.families.includes(f))).toEqual([]);
    expect(used.names.size).toBeGreaterThan(30); // the trace really covers the agent
  });
});
