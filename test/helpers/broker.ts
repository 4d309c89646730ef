/**
 * A real MQTT broker for tests and benchmarks: mosquitto started with a
 * generated config on 127.0.0.1 and a free port, optionally with a password
 * file, TLS (server certificate for 127.0.0.1/localhost, client
 * certificates required: mTLS) and an ACL file. stop()/start() keep the
 * port (and, with persistence, the sessions), kill() is SIGKILL.
 *
 * Without a mosquitto binary it falls back to an in-process aedes broker and
 * says so on the console (aedes speaks MQTT 3.1.1 only: `supportsV5` is
 * false there). CI installs mosquitto, so CI runs against mosquitto.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { makeCa, makeCert, type Ca, type CertFiles } from './certs.js';
import { freePort } from './net-helpers.js';

export interface BrokerOptions {
  /** user -> password; anonymous clients are then refused. */
  users?: Record<string, string>;
  /** TLS listener with client certificates required (mTLS). */
  tls?: boolean;
  /** TLS: the client certificate's CN becomes the username (for the ACL). */
  useIdentityAsUsername?: boolean;
  /** mosquitto ACL file content (user/topic/pattern lines; %u = username). */
  acl?: string;
  /** Keep sessions and retained messages across stop()/start() (default true). */
  persistence?: boolean;
  /** Log every packet (default false: connections and errors only). */
  verbose?: boolean;
  port?: number;
}

export interface BrokerPki {
  ca: Ca;
  server: CertFiles;
  /** Client certificate for test subscribers (CN "watcher"). */
  watcher: CertFiles;
  /** Makes another client certificate signed by the same CA. */
  client(cn: string, base?: string): CertFiles;
}

export interface Broker {
  readonly kind: 'mosquitto' | 'aedes';
  readonly supportsV5: boolean;
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly pki?: BrokerPki;
  start(): Promise<void>;
  /** SIGTERM (mosquitto saves its persistence), resolves when it exited. */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** SIGKILL. */
  kill(): Promise<void>;
  /** The broker's log so far. */
  log(): string;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

let warned = false;

/** The mosquitto binary; AFB_EDGE_TEST_BROKER=aedes pretends there is none (to exercise the fallback). */
export function mosquittoPath(): string | undefined {
  if (process.env.AFB_EDGE_TEST_BROKER === 'aedes') return undefined;
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    const p = path.join(dir, 'mosquitto');
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'afb-edge-broker-'));
  const port = options.port ?? (await freePort());
  let pki: BrokerPki | undefined;
  if (options.tls) {
    const ca = makeCa(dir, 'broker-ca');
    pki = { ca, server: makeCert(ca, 'localhost', 'server'), watcher: makeCert(ca, 'watcher', 'client'), client: (cn, base) => makeCert(ca, cn, 'client', base) };
  }
  const bin = mosquittoPath();
  const broker = bin ? new Mosquitto(bin, dir, port, options, pki) : await makeAedes(dir, port, options, pki);
  if (!bin && !warned) {
    warned = true;
    console.warn('[broker] mosquitto not found (or AFB_EDGE_TEST_BROKER=aedes): tests run against an in-process aedes broker (MQTT 3.1.1 only; install mosquitto to test against it, as CI does)');
  }
  await broker.start();
  return broker;
}

/* ------------------------------------------------------------- mosquitto */

class Mosquitto implements Broker {
  readonly kind = 'mosquitto';
  readonly supportsV5 = true;
  readonly url: string;
  private child: ChildProcess | undefined;
  private readonly conf: string;
  private readonly logFile: string;

  constructor(private readonly bin: string, readonly dir: string, readonly port: number, options: BrokerOptions, readonly pki?: BrokerPki) {
    this.url = `${pki ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`;
    this.logFile = path.join(dir, 'mosquitto.log');
    this.conf = path.join(dir, 'mosquitto.conf');
    const lines = [
      `listener ${port} 127.0.0.1`,
      // as root, mosquitto drops to user "mosquitto", who could not read our temp dir
      `user ${os.userInfo().username}`,
      `log_dest file ${this.logFile}`,
      options.verbose ? 'log_type all' : 'log_type error\nlog_type warning\nlog_type notice\nlog_type information',
      'max_queued_messages 100000',
    ];
    if (options.persistence !== false) lines.push('persistence true', `persistence_location ${dir}/`, 'autosave_interval 0');
    if (options.users) {
      const pw = path.join(dir, 'passwd');
      fs.writeFileSync(pw, '', { mode: 0o600 });
      for (const [u, p] of Object.entries(options.users)) {
        const r = spawnSync('mosquitto_passwd', ['-b', pw, u, p], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`mosquitto_passwd failed: ${r.stderr || r.error?.message}`);
      }
      lines.push(`password_file ${pw}`, 'allow_anonymous false');
    } else if (!options.useIdentityAsUsername) {
      lines.push('allow_anonymous true');
    }
    if (pki) {
      lines.push(`cafile ${pki.ca.cert}`, `certfile ${pki.server.cert}`, `keyfile ${pki.server.key}`, 'require_certificate true');
      if (options.useIdentityAsUsername) lines.push('use_identity_as_username true');
    }
    if (options.acl !== undefined) {
      const acl = path.join(dir, 'acl');
      fs.writeFileSync(acl, options.acl);
      lines.push(`acl_file ${acl}`);
    }
    fs.writeFileSync(this.conf, lines.join('\n') + '\n');
  }

  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(this.bin, ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    this.child = child;
    child.once('exit', () => { if (this.child === child) this.child = undefined; });
    const end = Date.now() + 5000;
    while (!(await canConnect(this.port))) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}): ${stderr}${this.log()}`);
      if (Date.now() > end) throw new Error(`mosquitto did not listen on ${this.port} within 5 s: ${stderr}${this.log()}`);
      await sleep(20);
    }
  }

  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  async close(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill(sig);
    await gone;
    this.child = undefined;
  }
}

/* ----------------------------------------------------------------- aedes */

async function makeAedes(dir: string, port: number, options: BrokerOptions, pki?: BrokerPki): Promise<Broker> {
  const { Aedes } = await import('aedes');
  type AedesClient = { conn: unknown; id: string };
  const users = new Map<AedesClient, string | undefined>();
  const acl = options.acl !== undefined ? parseAcl(options.acl) : undefined;
  const logLines: string[] = [];
  const aedes = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      let user = username;
      if (options.useIdentityAsUsername) {
        const cert = (client.conn as tls.TLSSocket).getPeerCertificate?.();
        user = typeof cert?.subject?.CN === 'string' ? cert.subject.CN : undefined;
      }
      users.set(client as unknown as AedesClient, user);
      logLines.push(`New client connected as ${client.id} (u'${user ?? ''}')`);
      if (options.users && (username === undefined || options.users[username] !== password?.toString())) {
        const err = Object.assign(new Error('bad credentials'), { returnCode: 4 as const });
        done(err, false);
        return;
      }
      done(null, true);
    },
    authorizePublish: (client, packet, cb) => {
      if (!client || !acl || acl(users.get(client as unknown as AedesClient), packet.topic, 'write')) cb(null);
      else cb(new Error('denied'));
    },
  });
  let server: net.Server | undefined;
  const sockets = new Set<net.Socket>();
  const url = `${pki ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`;
  const listen = async (): Promise<void> => {
    const srv = pki
      ? tls.createServer({ ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key), requestCert: true, rejectUnauthorized: true })
      : net.createServer();
    srv.on(pki ? 'secureConnection' : 'connection', (s: net.Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      aedes.handle(s);
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve());
    });
    server = srv;
  };
  const down = async (): Promise<void> => {
    const srv = server;
    server = undefined;
    if (!srv) return;
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  };
  return {
    kind: 'aedes', supportsV5: false, port, url, dir, pki,
    start: listen,
    stop: down,
    kill: down,
    restart: async () => { await down(); await listen(); },
    log: () => logLines.join('\n'),
    close: async () => {
      await down();
      await new Promise<void>((r) => aedes.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The subset of mosquitto's ACL syntax the tests use: user, topic and pattern lines (%u). */
function parseAcl(text: string): (user: string | undefined, topic: string, access: 'read' | 'write') => boolean {
  const rules: Array<{ user: string | null | undefined; pattern: boolean; access: string; filter: string }> = [];
  let current: string | null = null;
  for (const line of text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))) {
    const [kw, a, b] = line.split(/\s+/);
    if (kw === 'user') current = a ?? null;
    else if (kw === 'topic' || kw === 'pattern') {
      const [access, filter] = b === undefined ? ['readwrite', a!] : [a!, b];
      rules.push({ user: kw === 'pattern' ? undefined : current, pattern: kw === 'pattern', access, filter });
    }
  }
  return (user, topic, access) => rules.some((r) => {
    if (!r.access.includes(access)) return false;
    if (!r.pattern && r.user !== (user ?? null)) return false;
    const filter = r.pattern ? r.filter.replaceAll('%u', user ?? '\u0000') : r.filter;
    return matches(filter, topic);
  });
}

function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/* ------------------------------------------------------------------ util */

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
