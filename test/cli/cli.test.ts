/**
 * The afb-edge command line, run as users run it: a child process on the
 * built output, against real servers on unix sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { WsapiServer } from '../../src/wsapi/index.js';
import { cliMain, ensureBuilt, projectRoot } from '../helpers/cli.js';

const root = projectRoot;
const main = cliMain;

interface Run { code: number | null; stdout: string; stderr: string }

function run(args: string[], timeoutMs = 15_000): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

let dir: string;
let sim: ChildProcess;
let simSpec: string;
let server: WsapiServer;
let serverSpec: string;

beforeAll(async () => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'afb-edge-cli-'));
  simSpec = `unix:${join(dir, 'vehicle')}`;
  sim = spawn(process.execPath, [main, 'simulate', '--ws-server', simSpec, '--period', '50'], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((ok, fail) => {
    let err = '';
    sim.stderr!.on('data', (d) => {
      err += d;
      if (err.includes('serving')) ok();
    });
    sim.once('exit', (c) => fail(new Error(`simulate exited ${c}: ${err}`)));
  });

  // An in-process server for what the simulator does not do (never replying, broadcasting on cue).
  server = new WsapiServer({ api: 'test' });
  const tick = server.event('tick');
  server.verb('hang', () => undefined);
  server.verb('sub', (req) => {
    req.subscribe(tick);
    req.reply(null);
    let n = 0;
    const t = setInterval(() => {
      n++;
      if (n % 2 === 0) server.broadcast('bc', { n });
      else tick.push({ n });
      if (n >= 6) clearInterval(t);
    }, 20);
  });
  serverSpec = `unix:${join(dir, 'test')}`;
  await server.listen(serverSpec);
});

afterAll(async () => {
  sim?.kill('SIGTERM');
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('afb-edge call', () => {
  it('prints the reply as one JSON line and exits 0 on success', async () => {
    const r = await run(['call', simSpec, 'ping', '{"a":[1,2]}']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const reply = JSON.parse(lines[0]!);
    expect(Object.keys(reply)).toEqual(['error', 'info', 'data']);
    expect(reply.error).toBeNull();
    expect(reply.data.pong).toEqual({ a: [1, 2] });
  });

  it('exits 1 when the reply carries an error', async () => {
    const r = await run(['call', simSpec, 'fail', '{"error":"denied","info":"nope"}']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'denied', info: 'nope', data: null });
    const u = await run(['call', simSpec, 'no-such-verb']);
    expect(u.code).toBe(1);
    expect(JSON.parse(u.stdout).error).toBe('unknown-verb');
  });

  it('passes session, token and on-behalf credentials', async () => {
    const r = await run(['call', simSpec, 'info', '--session', 'sess-1', '--token', 'tok-1', '--creds', '3e8:3e8:4d2-mylabel']);
    expect(r.code).toBe(0);
    const data = JSON.parse(r.stdout).data;
    expect(data.session).toBe('sess-1');
    expect(data.token).toBe('tok-1');
    // Forwarded creds are honoured from a peer of our own uid (the default policy).
    expect(data.creds).toEqual({ uid: 1000, gid: 1000, pid: 1234, label: 'mylabel' });
  });

  it('exits 1 with error timeout when no reply comes in time', async () => {
    const r = await run(['call', serverSpec, 'hang', '--timeout', '200']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toBe('timeout');
  });

  it('exits 2 with one line on stderr for connection and usage errors', async () => {
    for (const args of [
      ['call', `unix:${join(dir, 'absent')}`, 'ping'],
      ['call', simSpec, 'ping', '{not json'],
      ['call', 'bogus:spec', 'ping'],
      ['call', simSpec],
      ['call', simSpec, 'ping', '--bad-option'],
      ['nonsense'],
      [],
    ]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe(args.length === 0 ? r.stdout : '');
      if (args.length > 0) expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });
});

describe('bin/afb-edge launcher', () => {
  it('runs the CLI through a symlink (as npm and Yocto install it) with the small-heap flags', async () => {
    const link = join(dir, 'afb-edge');
    symlinkSync(join(root, 'bin/afb-edge'), link);
    const r = spawnSync(link, ['call', simSpec, 'ping', '1'], { encoding: 'utf8', env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` } });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).data.pong).toBe(1);
    const flags = spawnSync(link, ['call', simSpec, 'ping'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, AFB_EDGE_NODE_FLAGS: '--definitely-not-a-node-flag' },
    });
    // The variable replaces the flags: node refuses the bogus one, proving they are passed.
    expect(flags.status).not.toBe(0);
    expect(flags.stderr).toContain('definitely-not-a-node-flag');
  });

  it("sets glibc's malloc trim threshold and arena count unless the caller did", () => {
    // node -p prints the expression and runs no script: what node's environment holds.
    const probe = '-p [process.env.MALLOC_TRIM_THRESHOLD_,process.env.MALLOC_ARENA_MAX].join()';
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}`, AFB_EDGE_NODE_FLAGS: probe };
    delete env.MALLOC_TRIM_THRESHOLD_;
    delete env.MALLOC_ARENA_MAX;
    const defaults = spawnSync(join(root, 'bin/afb-edge'), [], { encoding: 'utf8', env });
    expect(defaults.stderr).toBe('');
    expect(defaults.stdout.trim()).toBe('131072,2');
    const own = spawnSync(join(root, 'bin/afb-edge'), [], { encoding: 'utf8', env: { ...env, MALLOC_TRIM_THRESHOLD_: '1048576', MALLOC_ARENA_MAX: '' } });
    // An empty variable counts as unset: glibc would read it as 0.
    expect(own.stdout.trim()).toBe('1048576,2');
  });
});

describe('afb-edge describe', () => {
  it('prints the description JSON', async () => {
    const r = await run(['describe', simSpec]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout);
    expect(d.openapi).toBe('3.0.0');
    expect(Object.keys(d.paths)).toContain('/ping');
  });
  it('prints null for an API without description', async () => {
    const r = await run(['describe', serverSpec]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('null');
  });
});

describe('afb-edge listen', () => {
  it('prints pushed events as JSON lines and stops after --count', async () => {
    const r = await run(['listen', simSpec, '--subscribe', 'subscribe', '{"event":"speed"}', '--count', '3']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      expect(l.event).toBe('vehicle/speed');
      expect(typeof l.data.value).toBe('number');
    }
  });
  it('prints broadcasts too', async () => {
    const r = await run(['listen', serverSpec, '--subscribe', 'sub', '--count', '4']);
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l).event);
    expect(events).toEqual(['test/tick', 'test/bc', 'test/tick', 'test/bc']);
  });
  it('exits 1 when a subscribing call fails', async () => {
    const r = await run(['listen', simSpec, '--subscribe', 'subscribe', '{"event":"nope"}']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid-args');
  });
  it('needs --subscribe', async () => {
    const r = await run(['listen', simSpec]);
    expect(r.code).toBe(2);
  });
});

describe('afb-edge simulate and demo', () => {
  it('refuses a bad spec with exit 2', async () => {
    const r = await run(['simulate', '--ws-server', 'unix:']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid socket spec');
  });
  it('demo runs a binder and a client and exits 0', async () => {
    const r = await run(['demo', '--wsapi', '--count', '3', '--period', '20']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('call vehicle/ping');
    expect(r.stdout).toMatch(/event vehicle\/speed/);
    expect(r.stdout).toContain('done: 3 events received');
  });
});
