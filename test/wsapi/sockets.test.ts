/**
 * Every transport of wsapi-v1.md "Transport", end to end: unix paths,
 * abstract names in both address forms (exact length, as redpesk and
 * systemd; NUL-padded to 108 bytes, as the AGL binder) checked against socat
 * and /proc/net/unix, TCP, and a socket inherited from systemd (sd:NAME) in
 * a child process.
 */
import net from 'node:net';
import fs from 'node:fs';
import { join, resolve } from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ConnectError, WsapiClient, WsapiServer, connectSpec, listenSpec, parseSpec, peerCredentials,
  writeVersionOffer,
} from '../../src/wsapi/index.js';
import { unixAddon } from '../../src/wsapi/native.js';
import {
  Cleanup, RawPeer, freePort, hex, listeningUnixPaths, procAbstract, socatOnce, socatPath, startSocat, tempDir, uniqueName,
  waitFor, withTimeout,
} from '../helpers/net-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const V = writeVersionOffer([1]);

beforeAll(() => {
  socatPath(); // fails the suite (does not skip it) when socat is missing
  expect(unixAddon(), 'the C addon build/Release/afb_edge_unix.node').not.toBe(null);
});

const distIndex = join(root, 'dist', 'src', 'wsapi', 'index.js');

/**
 * Child processes run the built output: builds dist/ when it is missing or
 * older than the sources (npm test builds first, so this is for direct vitest runs).
 */
function ensureDist(): void {
  const sources = ['src/wsapi', 'src/util'].flatMap((d) => fs.readdirSync(join(root, d)).filter((f) => f.endsWith('.ts')).map((f) => join(root, d, f)));
  const outOf = (src: string): string => join(root, 'dist', src.slice(root.length + 1)).replace(/\.ts$/, '.js');
  const stale = sources.some((src) => !fs.existsSync(outOf(src)) || fs.statSync(outOf(src)).mtimeMs < fs.statSync(src).mtimeMs);
  if (!stale) return;
  const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, encoding: 'utf8' });
  // tsc emits even when some unrelated file has type errors; what matters is fresh output.
  for (const src of sources) {
    expect(fs.existsSync(outOf(src)) && fs.statSync(outOf(src)).mtimeMs >= fs.statSync(src).mtimeMs, `build of ${outOf(src)}: ${r.stdout}${r.stderr}`).toBe(true);
  }
}

/** Runs a module script in a child node; kills it (and fails) if it does not end in `ms`. */
function runChildScript(cleanup: Cleanup, source: string, ms: number): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const dir = tempDir(cleanup, 'child');
  const script = join(dir, 'child.mjs');
  fs.writeFileSync(script, source);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [script, pathToFileURL(distIndex).href], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not finish within ${ms} ms (event loop blocked?); stdout: ${stdout} stderr: ${stderr}`));
    }, ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ stdout, stderr, code });
    });
  });
}

/** A server exporting `hello` with a `ping` verb that tells who served it. */
function helloServer(tag = 'main'): WsapiServer {
  const s = new WsapiServer({ api: 'hello' });
  s.verb('ping', (req) => ({ tag, args: req.args, peer: req.peer ?? null }));
  cleanup.add(() => s.close());
  return s;
}

async function pathServer(tag = 'main'): Promise<{ server: WsapiServer; path: string }> {
  const path = join(tempDir(cleanup, 'sock'), 'hello');
  const server = helloServer(tag);
  await server.listen(`unix:${path}`);
  return { server, path };
}

async function callThrough(spec: string, args: unknown = 1): Promise<unknown> {
  const c = new WsapiClient(spec, { connectTimeoutMs: 2000 });
  try {
    await c.connect();
    const r = await c.call('ping', args);
    expect(r.error).toBe(null);
    return r.data;
  } finally {
    c.close();
  }
}

function waitListening(name: string, form: 'exact' | 'padded'): Promise<void> {
  return waitFor(() => listeningUnixPaths().includes(procAbstract(name, form)), 3000, `${form} abstract listener @${name} in /proc/net/unix`);
}

describe('unix path sockets', () => {
  it('listen creates the directories, a client calls through it', async () => {
    const dir = tempDir(cleanup, 'sock');
    const path = join(dir, 'run', 'platform', 'apis', 'ws', 'hello');
    const server = helloServer();
    await server.listen(`unix:${path}`);
    expect(fs.statSync(path).isSocket()).toBe(true);
    expect(await callThrough(`unix:${path}`, 'x')).toMatchObject({ tag: 'main', args: 'x' });
  });

  it('a stale socket file left by a dead process is replaced; a live one or a regular file is refused', async () => {
    const dir = tempDir(cleanup, 'sock');
    const stale = join(dir, 'stale');
    const socat = startSocat(cleanup, [`UNIX-LISTEN:${stale}`, 'STDOUT']);
    await waitFor(() => fs.existsSync(stale), 3000, 'socat bound the path');
    socat.kill('SIGKILL'); // dies without unlinking
    await new Promise((r) => socat.once('exit', r));
    expect(fs.statSync(stale).isSocket()).toBe(true);
    const s1 = helloServer('s1');
    await s1.listen(`unix:${stale}`);
    expect(await callThrough(`unix:${stale}`)).toMatchObject({ tag: 's1' });

    const s2 = helloServer('s2');
    await expect(s2.listen(`unix:${stale}`)).rejects.toThrow(`cannot listen on unix:${stale}: another process is serving ${stale}`);
    expect(await callThrough(`unix:${stale}`)).toMatchObject({ tag: 's1' });

    const file = join(dir, 'file');
    fs.writeFileSync(file, 'keep me');
    await expect(helloServer().listen(`unix:${file}`)).rejects.toThrow(`${file} exists and is not a socket`);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('connecting to a missing path fails with ENOENT', async () => {
    const path = join(tempDir(cleanup, 'sock'), 'nobody');
    const err = await connectSpec(parseSpec(`unix:${path}`)).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect(err).toMatchObject({ code: 'ENOENT', spec: `unix:${path}` });
  });
});

describe('abstract sockets: our client against socat listeners', () => {
  /** socat listening on @name in one form, relaying to our path server (tagged by form). */
  async function socatListener(form: 'exact' | 'padded'): Promise<string> {
    const { path } = await pathServer(form);
    const name = uniqueName(form);
    const opts = form === 'exact' ? 'fork' : 'unix-tightsocklen=0,fork';
    startSocat(cleanup, [`ABSTRACT-LISTEN:${name},${opts}`, `UNIX-CONNECT:${path}`]);
    await waitListening(name, form);
    // socat listens on that form only
    expect(listeningUnixPaths()).not.toContain(procAbstract(name, form === 'exact' ? 'padded' : 'exact'));
    return name;
  }

  it('reaches an exact-length listener with unix:@name (auto) and ?abstract=exact, not with ?abstract=padded', async () => {
    const name = await socatListener('exact');
    expect(await callThrough(`unix:@${name}`)).toMatchObject({ tag: 'exact' });
    expect(await callThrough(`unix:@${name}?abstract=exact`)).toMatchObject({ tag: 'exact' });
    expect(await callThrough(`unix:@${name}?abstract=auto`)).toMatchObject({ tag: 'exact' });
    const err = await connectSpec(parseSpec(`unix:@${name}?abstract=padded`)).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe('ECONNREFUSED');
  });

  it('reaches a padded (108-byte) listener with unix:@name (auto) and ?abstract=padded, not with ?abstract=exact', async () => {
    const name = await socatListener('padded');
    expect(await callThrough(`unix:@${name}`)).toMatchObject({ tag: 'padded' });
    expect(await callThrough(`unix:@${name}?abstract=padded`)).toMatchObject({ tag: 'padded' });
    const err = await connectSpec(parseSpec(`unix:@${name}?abstract=exact`)).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe('ECONNREFUSED');
  });

  it('auto prefers the exact form when both are served', async () => {
    const { path: exactPath } = await pathServer('exact');
    const { path: paddedPath } = await pathServer('padded');
    const name = uniqueName('both');
    startSocat(cleanup, [`ABSTRACT-LISTEN:${name},fork`, `UNIX-CONNECT:${exactPath}`]);
    startSocat(cleanup, [`ABSTRACT-LISTEN:${name},unix-tightsocklen=0,fork`, `UNIX-CONNECT:${paddedPath}`]);
    await waitListening(name, 'exact');
    await waitListening(name, 'padded');
    expect(await callThrough(`unix:@${name}`)).toMatchObject({ tag: 'exact' });
    expect(await callThrough(`unix:@${name}?abstract=padded`)).toMatchObject({ tag: 'padded' });
  });

  it('nobody on either form: ECONNREFUSED', async () => {
    const name = uniqueName('nobody');
    for (const q of ['', '?abstract=exact', '?abstract=padded']) {
      const err = await connectSpec(parseSpec(`unix:@${name}${q}`)).then(() => null, (e: unknown) => e);
      expect(err, q).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe('ECONNREFUSED');
      expect((err as Error).message).toBe(`cannot connect to unix:@${name}${q}: ECONNREFUSED`);
    }
  });
});

describe('abstract sockets: our server against socat clients', () => {
  const exactConnect = (name: string) => ['-t', '2', '-', `ABSTRACT-CONNECT:${name}`];
  const paddedConnect = (name: string) => ['-t', '2', '-', `ABSTRACT-CONNECT:${name},unix-tightsocklen=0`];

  it('auto listens on both forms (/proc/net/unix) and answers V from socat clients of both forms', async () => {
    const name = uniqueName('srv');
    const server = helloServer();
    await server.listen(`unix:@${name}`);
    const paths = listeningUnixPaths();
    expect(paths).toContain(procAbstract(name, 'exact'));
    expect(paths).toContain(procAbstract(name, 'padded'));
    for (const args of [exactConnect(name), paddedConnect(name)]) {
      const r = await socatOnce(args, V);
      expect(hex(r.stdout), `${args.join(' ')}: ${r.stderr}`).toBe('82027601');
      expect(r.code).toBe(0);
    }
    expect(server.stats.connectionsTotal).toBe(2);
    // and our own client, each form
    expect(await callThrough(`unix:@${name}?abstract=exact`)).toMatchObject({ tag: 'main' });
    expect(await callThrough(`unix:@${name}?abstract=padded`)).toMatchObject({ tag: 'main' });
  });

  it('listenSpec with auto returns one listening server per form', async () => {
    const name = uniqueName('ls');
    const accepted: net.Socket[] = [];
    const servers = await listenSpec(parseSpec(`unix:@${name}`), (s) => accepted.push(s));
    cleanup.add(async () => {
      for (const s of accepted) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    });
    expect(servers).toHaveLength(2);
    expect(listeningUnixPaths()).toEqual(expect.arrayContaining([procAbstract(name, 'exact'), procAbstract(name, 'padded')]));
    const a = await socatOnce(['-t', '0.2', '-', `ABSTRACT-CONNECT:${name}`], Buffer.from('x'));
    const b = await socatOnce(['-t', '0.2', '-', `ABSTRACT-CONNECT:${name},unix-tightsocklen=0`], Buffer.from('y'));
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(accepted).toHaveLength(2);
  });

  for (const form of ['exact', 'padded'] as const) {
    it(`?abstract=${form} listens on the ${form} form only`, async () => {
      const name = uniqueName(`only-${form}`);
      const server = helloServer();
      await server.listen(`unix:@${name}?abstract=${form}`);
      const other = form === 'exact' ? 'padded' : 'exact';
      expect(listeningUnixPaths()).toContain(procAbstract(name, form));
      expect(listeningUnixPaths()).not.toContain(procAbstract(name, other));
      const good = await socatOnce(form === 'exact' ? exactConnect(name) : paddedConnect(name), V);
      expect(hex(good.stdout)).toBe('82027601');
      const bad = await socatOnce(form === 'exact' ? paddedConnect(name) : exactConnect(name), V);
      expect(bad.stdout.length).toBe(0);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/Connection refused/);
    });
  }

  it('the listening sockets go away on close()', async () => {
    const name = uniqueName('gone');
    const server = new WsapiServer({ api: 'hello' });
    await server.listen(`unix:@${name}`);
    await server.close();
    const paths = listeningUnixPaths();
    expect(paths).not.toContain(procAbstract(name, 'exact'));
    expect(paths).not.toContain(procAbstract(name, 'padded'));
  });

  it('the same name cannot be served twice (EADDRINUSE is reported)', async () => {
    const name = uniqueName('twice');
    const a = helloServer();
    await a.listen(`unix:@${name}?abstract=exact`);
    await expect(helloServer().listen(`unix:@${name}?abstract=exact`)).rejects.toThrow(/EADDRINUSE/);
    const b = helloServer();
    await b.listen(`unix:@${name}?abstract=padded`); // the other form is another address
    expect(listeningUnixPaths()).toContain(procAbstract(name, 'padded'));
  });
});

describe('tcp', () => {
  it('listenSpec on 127.0.0.1 port 0, a client on the chosen port', async () => {
    const server = helloServer();
    const servers = await listenSpec({ kind: 'tcp', host: '127.0.0.1', port: 0, api: 'hello', text: 'tcp:127.0.0.1:0/hello' }, (s) => server.accept(s));
    cleanup.add(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));
    const port = (servers[0]!.address() as net.AddressInfo).port;
    expect(port).toBeGreaterThan(0);
    // no peer credentials over TCP
    expect(await callThrough(`tcp:127.0.0.1:${port}/hello`, 't')).toEqual({ tag: 'main', args: 't', peer: null });
  });

  it('WsapiServer.listen on a free port; localhost resolves', async () => {
    const server = helloServer();
    const port = await freePort();
    await server.listen(`tcp:127.0.0.1:${port}/hello`);
    expect(await callThrough(`tcp:127.0.0.1:${port}/hello`)).toMatchObject({ tag: 'main' });
    expect(await callThrough(`tcp:localhost:${port}/hello?as-api=other`)).toMatchObject({ tag: 'main' });
  });

  it('a refused TCP connection is a ConnectError', async () => {
    const port = await freePort();
    const err = await connectSpec(parseSpec(`tcp:127.0.0.1:${port}/x`)).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe('ECONNREFUSED');
  });
});

describe('peer credentials (SO_PEERCRED)', () => {
  it('a unix peer is this very process; a TCP peer has none', async () => {
    const path = join(tempDir(cleanup, 'cred'), 's');
    const accepted: net.Socket[] = [];
    const srv = net.createServer((s) => accepted.push(s));
    await new Promise<void>((r) => srv.listen(path, () => r()));
    cleanup.add(() => new Promise((r) => srv.close(r)));
    const c = await RawPeer.connect({ path });
    cleanup.add(() => c.destroy());
    await waitFor(() => accepted.length === 1);
    cleanup.add(() => accepted[0]!.destroy());
    expect(peerCredentials(accepted[0]!)).toEqual({ uid: process.getuid!(), gid: process.getgid!(), pid: process.pid });
    expect(peerCredentials(c.socket)).toEqual({ uid: process.getuid!(), gid: process.getgid!(), pid: process.pid });

    const tcpAccepted: net.Socket[] = [];
    const tcp = net.createServer((s) => tcpAccepted.push(s));
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    cleanup.add(() => new Promise((r) => tcp.close(r)));
    const t = await RawPeer.connect({ host: '127.0.0.1', port: (tcp.address() as net.AddressInfo).port });
    cleanup.add(() => t.destroy());
    await waitFor(() => tcpAccepted.length === 1);
    cleanup.add(() => tcpAccepted[0]!.destroy());
    expect(peerCredentials(tcpAccepted[0]!)).toBeUndefined();
    expect(peerCredentials(t.socket)).toBeUndefined();
  });

  it('through an exact abstract socket (addon-made on Node 20) as well', async () => {
    const name = uniqueName('cred');
    const server = helloServer();
    await server.listen(`unix:@${name}?abstract=exact`);
    expect(await callThrough(`unix:@${name}?abstract=exact`)).toMatchObject({ peer: { uid: process.getuid!(), pid: process.pid, label: 'NoLabel' } });
    const padded = uniqueName('cred');
    await server.listen(`unix:@${padded}?abstract=padded`);
    expect(await callThrough(`unix:@${padded}?abstract=padded`)).toMatchObject({ peer: { uid: process.getuid!(), pid: process.pid } });
  });
});

describe('abstract connect never blocks the event loop', () => {
  beforeAll(ensureDist, 60_000);

  it('to a listener whose accept queue is full: fails at once with EAGAIN, in both forms', async () => {
    // In a child process: a blocking connect would freeze its event loop for good, and the test runner with it.
    const script = `
const base = process.argv[2];
const { connectSpec, parseSpec } = await import(base);
const { unixAddon } = await import(new URL('./native.js', base).href);
const out = {};
for (const form of ['exact', 'padded']) {
  const name = 'afb-edge-test-full-' + process.pid + '-' + form;
  unixAddon().listenAbstract(name, form === 'padded', 1); // never accepted: the queue fills up
  const results = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    try {
      await connectSpec(parseSpec('unix:@' + name + '?abstract=' + form), { timeoutMs: 1000 });
      results.push(['connected', Date.now() - t0]);
    } catch (err) {
      results.push([err.code, Date.now() - t0]);
    }
  }
  out[form] = results;
}
process.stdout.write(JSON.stringify(out));
process.exit(0);
`;
    const r = await runChildScript(cleanup, script, 8000);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, Array<[string, number]>>;
    for (const form of ['exact', 'padded']) {
      const results = out[form]!;
      const connected = results.filter(([what]) => what === 'connected').length;
      expect(connected, `${form}: ${JSON.stringify(results)}`).toBeGreaterThanOrEqual(1);
      expect(connected).toBeLessThanOrEqual(3);
      for (const [what, ms] of results.slice(connected)) {
        expect(what, `${form}: ${JSON.stringify(results)}`).toBe('EAGAIN'); // not a timeout, not a hang
        expect(ms).toBeLessThan(500);
      }
    }
  });
});

describe('sd: sockets inherited from systemd', () => {
  beforeAll(ensureDist, 60_000);

  /** The child: serves `hello` on the given sd: specs, prints "ready" or "error <message>". */
  const childScript = `
const [indexUrl, mode, ...specs] = process.argv.slice(2);
const { WsapiServer } = await import(indexUrl);
if (mode === 'own-pid') process.env.LISTEN_PID = String(process.pid); // as systemd sets it
const s = new WsapiServer({ api: 'hello' });
s.verb('ping', (req) => ({ pid: process.pid, peer: req.peer ?? null, args: req.args }));
try {
  for (const spec of specs) await s.listen(spec);
  process.stdout.write('ready\\n');
} catch (err) {
  process.stdout.write('error ' + err.message + '\\n');
  process.exit(3);
}
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

  function startChild(fds: number[], env: Record<string, string | undefined>, mode: string, specs: string[]): { child: ChildProcess; line: Promise<string> } {
    const dir = tempDir(cleanup, 'sd');
    const script = join(dir, 'child.mjs');
    fs.writeFileSync(script, childScript);
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    delete childEnv.LISTEN_PID;
    delete childEnv.LISTEN_FDS;
    delete childEnv.LISTEN_FDNAMES;
    for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
    const child = spawn(process.execPath, [script, pathToFileURL(distIndex).href, mode, ...specs], {
      stdio: ['pipe', 'pipe', 'pipe', ...fds],
      env: childEnv,
    });
    cleanup.add(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.stdin!.end();
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await gone;
        clearTimeout(timer);
      }
    });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const line = withTimeout(new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const nl = out.indexOf('\n');
        if (nl >= 0) resolve(out.slice(0, nl));
      });
      child.once('exit', (code) => { if (!out.includes('\n')) reject(new Error(`child exited ${code}: ${err}`)); });
    }), 10_000, 'the child to start');
    return { child, line };
  }

  it('serves through inherited listening sockets picked by LISTEN_FDNAMES (fd 3: tcp, fd 4: exact abstract)', async () => {
    // fd 3: a TCP listening socket from net (the parent stops listening on it once the child has it)
    const tcp = net.createServer();
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    const port = (tcp.address() as net.AddressInfo).port;
    const tcpFd = (tcp as unknown as { _handle: { fd: number } })._handle.fd;
    // fd 4: an exact abstract listening socket from the addon (never polled by this process)
    const name = uniqueName('sd');
    const abstractFd = unixAddon()!.listenAbstract(name, false, 16);
    let child: ChildProcess;
    let line: Promise<string>;
    try {
      ({ child, line } = startChild([tcpFd, abstractFd], { LISTEN_FDS: '2', LISTEN_FDNAMES: 'web:hello' }, 'own-pid', ['sd:hello', 'sd:web?as-api=hello']));
    } finally {
      await new Promise((r) => tcp.close(r));
      fs.closeSync(abstractFd);
    }
    expect(await line).toBe('ready');
    const viaAbstract = await callThrough(`unix:@${name}?abstract=exact`, 'a') as { pid: number; peer: unknown; args: unknown };
    expect(viaAbstract.pid).toBe(child.pid);
    expect(viaAbstract.args).toBe('a');
    // SO_PEERCRED in the child names this process
    expect(viaAbstract.peer).toEqual({ uid: process.getuid!(), gid: process.getgid!(), pid: process.pid, label: 'NoLabel' });
    const viaTcp = await callThrough(`tcp:127.0.0.1:${port}/hello`, 't') as { pid: number; peer: unknown };
    expect(viaTcp).toEqual({ pid: child.pid, peer: null, args: 't' });
  });

  it('with LISTEN_PID unset, the inherited socket is used too', async () => {
    const name = uniqueName('sd-nopid');
    const fd = unixAddon()!.listenAbstract(name, false, 16);
    let started;
    try {
      started = startChild([fd], { LISTEN_FDS: '1', LISTEN_FDNAMES: 'hello' }, 'as-is', ['sd:hello']);
    } finally {
      fs.closeSync(fd);
    }
    expect(await started.line).toBe('ready');
    expect(await callThrough(`unix:@${name}?abstract=exact`)).toMatchObject({ pid: started.child.pid });
  });

  it('refuses sockets meant for another process (LISTEN_PID) or under another name, with a clear message', async () => {
    const name = uniqueName('sd-other');
    const fd = unixAddon()!.listenAbstract(name, false, 16);
    let a;
    let b;
    try {
      a = startChild([fd], { LISTEN_FDS: '1', LISTEN_FDNAMES: 'hello', LISTEN_PID: '1' }, 'as-is', ['sd:hello']);
      b = startChild([fd], { LISTEN_FDS: '1', LISTEN_FDNAMES: 'other' }, 'as-is', ['sd:hello']);
    } finally {
      fs.closeSync(fd);
    }
    expect(await a.line).toBe("error cannot listen on sd:hello: no socket named 'hello' in LISTEN_FDNAMES (LISTEN_FDS=1)");
    expect(await b.line).toBe("error cannot listen on sd:hello: no socket named 'hello' in LISTEN_FDNAMES (LISTEN_FDS=1)");
  });

  it('in this process, without LISTEN_FDS, sd: specs fail clearly on both sides', async () => {
    expect(process.env.LISTEN_FDS).toBeUndefined();
    const err = await connectSpec(parseSpec('sd:hello')).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as Error).message).toBe("cannot connect to sd:hello: no socket named 'hello' in LISTEN_FDNAMES");
    await expect(listenSpec(parseSpec('sd:hello'), () => {})).rejects.toThrow("cannot listen on sd:hello: no socket named 'hello' in LISTEN_FDNAMES (LISTEN_FDS=unset)");
  });
});
