/**
 * sd_notify for Node: tells the service manager (systemd, or anything that
 * speaks its notify protocol) what state the agent is in, by sending
 * "KEY=value\n" lines as one datagram to the AF_UNIX socket named in
 * $NOTIFY_SOCKET ("/path", or "@name" for an abstract socket).
 *
 * Node has no unix datagram sockets, so the datagram goes through the
 * project's C addon (native/unix_socket.c, sendDatagram): no extra
 * dependency, no Rust toolchain in Yocto, the same code on arm64, armv7 and
 * x86-64.
 *
 * Failures never throw: without NOTIFY_SOCKET every call is a no-op (run by
 * hand, in a container, in tests); an unreachable socket is counted in
 * `failures` and logged once per kind of error, because a service manager
 * that stopped listening must not take the agent down with it.
 */
import { unixAddon, unixAddonError } from '../wsapi/native.js';
import type { Logger } from '../util/log.js';

/** A notify message: ordered assignments, or ready-made "KEY=value" lines. */
export type NotifyState = Record<string, string | number | bigint> | string;

export interface NotifierOptions {
  /** Where NOTIFY_SOCKET is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Remove NOTIFY_SOCKET from `env` once read (default true), as
   * sd_notify(unset_environment=1) does: a child process must not send
   * READY=1 or WATCHDOG=1 on the agent's behalf (with NotifyAccess=all it
   * would be believed; with NotifyAccess=main it would be logged as noise).
   */
  unsetEnvironment?: boolean;
  logger?: Logger;
  /** EAGAIN/ENOBUFS (the receiver's queue is full) is retried this many times (default 3)... */
  retries?: number;
  /** ...after this delay, doubled each time (default 10 ms). */
  retryDelayMs?: number;
}

/** Errors that mean "busy, try again", as opposed to "nobody is there". */
const TRANSIENT = new Set(['EAGAIN', 'EWOULDBLOCK', 'ENOBUFS']);

export class SystemdNotifier {
  /** NOTIFY_SOCKET as it was found, undefined when unset or empty. */
  readonly address: string | undefined;
  /** Datagrams the kernel accepted. */
  sent = 0;
  /** Datagrams given up on (after retries, for transient errors). */
  failures = 0;
  /** The last failure, "CODE: message". */
  lastError: string | undefined;
  /** Called on each failure (the agent counts them in its metrics). */
  onFailure: ((code: string) => void) | undefined;

  private readonly log: Logger | undefined;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly loggedCodes = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(options: NotifierOptions = {}) {
    const env = options.env ?? process.env;
    const value = env.NOTIFY_SOCKET;
    this.address = value === undefined || value === '' ? undefined : value;
    if (options.unsetEnvironment !== false) delete env.NOTIFY_SOCKET;
    this.log = options.logger;
    this.retries = options.retries ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 10;
  }

  /** True when there is a service manager to tell anything to. */
  get enabled(): boolean {
    return this.address !== undefined;
  }

  /**
   * Sends one message. Returns true when the kernel took the datagram now,
   * false when it did not (or there is no NOTIFY_SOCKET); a transient error
   * is retried in the background and counted only if every retry fails.
   */
  send(state: NotifyState): boolean {
    if (this.address === undefined) return false;
    return this.attempt(Buffer.from(formatState(state)), 0);
  }

  /** Cancels pending retries (at exit, or in tests). */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private attempt(data: Buffer, tries: number): boolean {
    const addon = unixAddon();
    if (addon === null || typeof addon.sendDatagram !== 'function') {
      this.fail('ENOTSUP', addon === null ? unixAddonError() : 'the native addon predates sendDatagram: rebuild it (npm run install)');
      return false;
    }
    if (this.address!.startsWith('vsock:')) {
      // systemd >= 254 may hand a VM guest an AF_VSOCK address; unix sockets only here.
      this.fail('EAFNOSUPPORT', `${this.address}: only unix socket addresses are supported`);
      return false;
    }
    try {
      addon.sendDatagram(this.address!, data);
      this.sent++;
      return true;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const code = e.code ?? 'EIO';
      if (TRANSIENT.has(code) && tries < this.retries) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.attempt(data, tries + 1);
        }, this.retryDelayMs * 2 ** tries);
        timer.unref();
        this.timers.add(timer);
        return false;
      }
      this.fail(code, e.message);
      return false;
    }
  }

  private fail(code: string, message: string): void {
    this.failures++;
    this.lastError = `${code}: ${message}`;
    this.onFailure?.(code);
    // Once per kind of error: a manager that went away would otherwise log every watchdog ping.
    if (!this.loggedCodes.has(code)) {
      this.loggedCodes.add(code);
      this.log?.error(`systemd: cannot notify ${this.address}: ${message} (${code}); counted, further ${code} failures not logged`);
    }
  }
}

/**
 * "KEY=value" lines, one per assignment, newline-terminated. A newline
 * inside a value would start a new assignment (a STATUS= carrying an
 * untrusted name could then say READY=1 or STOPPING=1), so values are kept
 * on one line.
 */
export function formatState(state: NotifyState): string {
  if (typeof state === 'string') return state.endsWith('\n') ? state : state + '\n';
  let out = '';
  for (const [key, value] of Object.entries(state)) out += `${key}=${String(value).replace(/[\r\n]+/g, ' ')}\n`;
  return out;
}
