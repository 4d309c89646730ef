/**
 * wsapi client: imports one API exported by a binder (or any wsapi server).
 *
 * Follows the native client: V is sent first and nothing waits for v; calls
 * and describes share one 16-bit id counter; sessions and tokens are declared
 * with S/T once per connection, just before their first use; event ids map
 * to names through E/e; P for an unknown id is answered with U.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { DEFAULT_MAX_EVENT_TABLE_BYTES, MAX_PENDING, SUPPORTED_VERSIONS, WSAPI_VERSION_1, type LimitKind } from './constants.js';
import {
  decodeMessage, parseJsonText, toJsonText, writeCall, writeDescribe, writeEventUnexpected,
  writeSessionCreate, writeSessionRemove, writeTokenCreate, writeTokenRemove, writeVersionOffer,
  type EventBroadcast, type Message,
} from './codec.js';
import { WsapiConnection, type ConnectionOptions, newConnectionStats } from './connection.js';
import { framePayloadLength } from './frame-receiver.js';
import { CallTable, RecentSet } from './ids.js';
import { parseSpec, type SocketSpec } from './spec.js';
import { ConnectError, connectSpec } from './sockets.js';
import { SocketReads } from './socket-reads.js';
import { silentLogger, type Logger } from '../util/log.js';

export interface Reply {
  /** JSON value of the reply (null when none). */
  data: unknown;
  /** Error code: null on success. Match on presence, not text: binders differ. */
  error: string | null;
  info: string | null;
}

export interface CallOptions {
  /** Session uuid: declared once per connection with S, then referenced by id. */
  session?: string;
  /** Token: declared once per connection with T. */
  token?: string;
  /** On-behalf credentials "uid:gid:pid-label" (hex numbers). */
  creds?: string;
  /** Reply with error `timeout` after this many ms (the id stays reserved until the server answers). */
  timeout?: number;
}

export interface EventMeta {
  /**
   * The event's data as the JSON text received, when that text is valid
   * JSON (so `data` is JSON.parse of it): a relay can pass it on without
   * serialising `data` again. Absent when the text was not JSON (`data` is
   * then the text itself, as the reference delivers it).
   */
  json?: string;
  /** The call through which the subscription was made, for pushed events. */
  eventId?: number;
  /** Set for broadcasts: their uuid (hex) and the hop count this node holds. */
  broadcast?: { uuid: string; hop: number };
}

export interface ReconnectOptions {
  /** First delay, doubled at each failure up to maxDelayMs (default 250). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Fraction of random spread added to each delay (default 0.2). */
  jitter?: number;
}

export interface ClientOptions extends ConnectionOptions {
  /** Reconnect automatically after a hang-up, re-running the recorded subscriptions. */
  reconnect?: boolean | ReconnectOptions;
  connectTimeoutMs?: number;
  /** Largest number of pending calls and describes (default and maximum 4095). */
  maxPending?: number;
  /** Versions offered in V (default [1]). */
  versions?: number[];
  /**
   * Bytes of event names (E) remembered per connection (default 1 MiB). An E
   * beyond is ignored and counted; a P for its id is then answered U, after
   * which a binder stops sending it.
   */
  maxEventTableBytes?: number;
}

/** What a pending entry holds until its promise is made (nothing can answer it before). */
const unanswered = (): void => {};

interface PendingCall {
  kind: 'call';
  resolve: (r: Reply) => void;
  timer: NodeJS.Timeout | undefined;
  /** true once the caller got an answer (timeout); the id stays busy until the server replies. */
  settled: boolean;
  verb: string;
  /** Events X attached through this call (allocated on the first X only). */
  events: Set<number> | null;
}
interface PendingDescribe {
  kind: 'describe';
  resolve: (d: unknown) => void;
}

export interface Subscription {
  verb: string;
  args: unknown;
  options: CallOptions;
}

export interface ClientStats {
  calls: number;
  replies: number;
  busy: number;
  timeouts: number;
  disconnectedCalls: number;
  events: number;
  broadcasts: number;
  duplicateBroadcasts: number;
  unexpectedEvents: number;
  reconnects: number;
  strayReplies: number;
  /** Calls refused locally with `too-large`: their K (or S/T) would exceed the peer's frame limit. */
  tooLarge: number;
}

/**
 * Events emitted:
 *  - 'event' (name: string, data: unknown, meta: EventMeta)
 *  - 'subscribe' / 'unsubscribe' (name: string, callId: number, verb: string)
 *  - 'connect', 'disconnect' (reason: string), 'reconnecting' (delayMs: number, attempt: number),
 *    'connect_error' (err: Error, from start() and reconnects), 'resubscribed'
 *  - 'limit' (kind: LimitKind, detail: string): a bound refused something (counted in stats or
 *    connectionStats, logged rate-limited): `peer_frame` for a call refused with `too-large`,
 *    `frame_in` when the server sent more than we accept (close 1009), `backlog`...
 */
export class WsapiClient extends EventEmitter {
  readonly spec: SocketSpec;
  readonly api: string;
  readonly stats: ClientStats = {
    calls: 0, replies: 0, busy: 0, timeouts: 0, disconnectedCalls: 0, events: 0, broadcasts: 0,
    duplicateBroadcasts: 0, unexpectedEvents: 0, reconnects: 0, strayReplies: 0, tooLarge: 0,
  };
  readonly connectionStats = newConnectionStats();

  private conn: WsapiConnection | null = null;
  private readonly pending: CallTable<PendingCall | PendingDescribe>;
  private readonly eventTable = new Map<number, string>();
  private eventTableBytes = 0;
  private readonly sessions = new Map<string, number>();
  private readonly tokens = new Map<string, number>();
  private readonly declaredSessions = new Set<number>();
  private readonly declaredTokens = new Set<number>();
  private readonly seenBroadcasts = new RecentSet(1024);
  private readonly subscriptions: Subscription[] = [];
  private readonly log: Logger;
  private serverVersion: number | null = null;
  private closedByUser = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private connecting: Promise<void> | null = null;

  constructor(spec: string | SocketSpec, private readonly options: ClientOptions = {}) {
    super();
    this.spec = typeof spec === 'string' ? parseSpec(spec) : spec;
    this.api = this.spec.api;
    this.log = options.logger ?? silentLogger;
    this.pending = new CallTable(Math.min(options.maxPending ?? MAX_PENDING, MAX_PENDING));
  }

  get connected(): boolean {
    return this.conn !== null && this.conn.isOpen;
  }

  /** Version the server announced with v (null if it sent none, which is allowed). */
  get version(): number | null {
    return this.serverVersion;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Connects (once); rejects with a ConnectError when the spec cannot be reached. */
  connect(): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.connecting) return this.connecting;
    this.closedByUser = false;
    const reads = new SocketReads();
    this.connecting = connectSpec(this.spec, { timeoutMs: this.options.connectTimeoutMs, reads })
      .then((socket) => {
        // close() was called while connecting: stay closed, do not attach.
        if (this.closedByUser) {
          socket.destroy();
          throw new ConnectError(this.spec.text, 'ECANCELED', 'closed by the client while connecting');
        }
        this.attachConnection(socket, reads);
      })
      .finally(() => { this.connecting = null; });
    return this.connecting;
  }

  /**
   * Connects in the background and, with `reconnect`, keeps trying until it
   * succeeds and after every hang-up: for long-running agents. Failures are
   * emitted as 'connect_error' (err).
   */
  start(): void {
    this.closedByUser = false;
    this.connect().catch((err: Error) => {
      this.emit('connect_error', err);
      this.scheduleReconnect();
    });
  }

  /** Uses an already connected stream (a socketpair, an inherited fd...). */
  attach(socket: Socket): void {
    this.attachConnection(socket, undefined);
  }

  private attachConnection(socket: Socket, reads: SocketReads | undefined): void {
    const conn = new WsapiConnection(socket, { ...this.options, label: this.options.label ?? `client ${this.spec.text}` }, this.connectionStats,
      { onLimit: (kind: LimitKind, detail: string) => this.emit('limit', kind, detail), reads });
    this.conn = conn;
    this.serverVersion = null;
    conn.onMessage = (payload) => this.onMessage(conn, payload);
    conn.onClose = (reason) => this.onHangUp(conn, reason);
    conn.send(writeVersionOffer(this.options.versions ?? SUPPORTED_VERSIONS));
    this.reconnectAttempt = 0;
    this.emit('connect');
  }

  /** Closes the connection for good (no reconnect); pending calls complete with `disconnected`. */
  close(): void {
    this.closedByUser = true;
    clearTimeout(this.reconnectTimer);
    this.conn?.hangUp('closed by client');
  }

  /** Calls `verb`; always resolves, with `error` set on failure (busy, timeout, disconnected, or the server's). */
  call(verb: string, args: unknown = null, options: CallOptions = {}): Promise<Reply> {
    return this.callText(verb, toJsonText(args), options);
  }

  /**
   * Like call(), with the args already as JSON text (relays, CLI).
   *
   * A call whose K frame (or the S/T declaring its session or token) would be
   * larger than the peer accepts (`peerMaxFramePayload`, by default the native
   * 1,048,500 bytes) resolves at once with error `too-large` and is not sent:
   * a native binder would close the connection with 1009, failing every
   * pending call and stopping every subscription on it.
   */
  callText(verb: string, argsJson: string, options: CallOptions = {}): Promise<Reply> {
    const conn = this.conn;
    if (conn === null || !conn.isOpen) {
      this.stats.disconnectedCalls++;
      return Promise.resolve({ data: null, error: 'disconnected', info: 'not connected' });
    }
    const tooLarge = this.tooLargeFor(conn, verb, argsJson, options);
    if (tooLarge !== null) return Promise.resolve(tooLarge);
    const pending: PendingCall = { kind: 'call', resolve: unanswered, timer: undefined, settled: false, verb, events: null };
    const callId = this.pending.add(pending);
    if (callId === 0) {
      this.stats.busy++;
      return Promise.resolve({ data: null, error: 'busy', info: `too many pending calls (${this.pending.limit})` });
    }
    let sessionId = 0;
    let tokenId = 0;
    try {
      if (options.session !== undefined) sessionId = this.declareSession(conn, options.session);
      if (options.token !== undefined) tokenId = this.declareToken(conn, options.token);
    } catch (err) {
      this.pending.delete(callId); // nothing was sent under this id
      throw err;
    }
    this.stats.calls++;
    return new Promise<Reply>((resolve) => {
      pending.resolve = resolve;
      if (options.timeout !== undefined && options.timeout > 0) {
        pending.timer = setTimeout(() => {
          pending.settled = true;
          this.stats.timeouts++;
          resolve({ data: null, error: 'timeout', info: `no reply to ${this.api}/${verb} within ${options.timeout} ms` });
        }, options.timeout);
      }
      conn.send(writeCall(callId, verb, sessionId, tokenId, argsJson, options.creds ?? null));
    });
  }

  /** Asks for the API description; resolves null when there is none or on hang-up. */
  describe(): Promise<unknown> {
    const conn = this.conn;
    if (conn === null || !conn.isOpen) return Promise.resolve(null);
    const pending: PendingDescribe = { kind: 'describe', resolve: unanswered };
    const descId = this.pending.add(pending);
    if (descId === 0) {
      this.stats.busy++;
      return Promise.reject(new Error(`busy: too many pending calls (${this.pending.limit})`));
    }
    return new Promise((resolve) => {
      pending.resolve = resolve;
      conn.send(writeDescribe(descId));
    });
  }

  /**
   * Makes a subscribing call and records it, so that it is made again after
   * each automatic reconnect.
   */
  async subscribe(verb: string, args: unknown = null, options: CallOptions = {}): Promise<Reply> {
    const sub: Subscription = { verb, args, options };
    const reply = await this.call(verb, args, options);
    if (reply.error === null) this.subscriptions.push(sub);
    return reply;
  }

  /** Forgets recorded subscriptions made with `verb` (and these args, if given). */
  forgetSubscription(verb: string, args?: unknown): void {
    const argsText = args === undefined ? undefined : toJsonText(args);
    for (let i = this.subscriptions.length - 1; i >= 0; i--) {
      const s = this.subscriptions[i]!;
      if (s.verb === verb && (argsText === undefined || toJsonText(s.args) === argsText)) this.subscriptions.splice(i, 1);
    }
  }

  /** Drops a session: sends `s` if it was declared on this connection. */
  releaseSession(uuid: string): void {
    const id = this.sessions.get(uuid);
    if (id === undefined) return;
    this.sessions.delete(uuid);
    if (this.declaredSessions.delete(id)) this.conn?.send(writeSessionRemove(id));
  }

  /** Drops a token: sends `t` if it was declared on this connection. */
  releaseToken(token: string): void {
    const id = this.tokens.get(token);
    if (id === undefined) return;
    this.tokens.delete(token);
    if (this.declaredTokens.delete(id)) this.conn?.send(writeTokenRemove(id));
  }

  /** Names of the events currently known (E received, no e yet). */
  knownEvents(): string[] {
    return [...this.eventTable.values()];
  }

  /* ---------------------------------------------------------- internals */

  /** The `too-large` reply for a call the peer would refuse for its size, or null when it fits. */
  private tooLargeFor(conn: WsapiConnection, verb: string, argsJson: string, options: CallOptions): Reply | null {
    // Nearly every call is far below the limit: an upper bound of the K payload (7 fixed bytes, three
    // strings of at most 5 + 3 bytes per UTF-16 unit) settles it without encoding anything. Building
    // the frame here to measure it was a tenth of a sequential call's CPU (bench/wsapi.ts profile).
    if (options.session === undefined && options.token === undefined
      && conn.fits(22 + 3 * (verb.length + argsJson.length + (options.creds?.length ?? 0)))) return null;
    // Ids do not change sizes: 0 stands for the ones not allocated yet.
    const parts: Array<[string, Buffer | null]> = [
      ['session uuid', options.session !== undefined && !this.sessions.has(options.session) ? writeSessionCreate(0, options.session) : null],
      ['token', options.token !== undefined && !this.tokens.has(options.token) ? writeTokenCreate(0, options.token) : null],
      [`call ${this.api}/${verb}`, writeCall(0, verb, 0, 0, argsJson, options.creds ?? null)],
    ];
    for (const [what, frame] of parts) {
      if (frame === null) continue;
      const size = framePayloadLength(frame);
      if (conn.fits(size)) continue;
      this.stats.tooLarge++;
      const info = `${what}: message of ${size} bytes exceeds the peer's frame limit of ${conn.peerMaxFramePayload} bytes (not sent)`;
      conn.limit('peer_frame', info);
      return { data: null, error: 'too-large', info };
    }
    return null;
  }

  private static smallestFree(used: Iterable<number>): number {
    const taken = new Set(used);
    let id = 1;
    while (taken.has(id)) id++;
    return id;
  }

  private declareSession(conn: WsapiConnection, uuid: string): number {
    let id = this.sessions.get(uuid);
    if (id === undefined) {
      id = WsapiClient.smallestFree(this.sessions.values());
      if (id > 0xffff) throw new RangeError('too many sessions');
      this.sessions.set(uuid, id);
    }
    if (!this.declaredSessions.has(id)) {
      this.declaredSessions.add(id);
      conn.send(writeSessionCreate(id, uuid));
    }
    return id;
  }

  private declareToken(conn: WsapiConnection, token: string): number {
    let id = this.tokens.get(token);
    if (id === undefined) {
      id = WsapiClient.smallestFree(this.tokens.values());
      if (id > 0xffff) throw new RangeError('too many tokens');
      this.tokens.set(token, id);
    }
    if (!this.declaredTokens.has(id)) {
      this.declaredTokens.add(id);
      conn.send(writeTokenCreate(id, token));
    }
    return id;
  }

  private onMessage(conn: WsapiConnection, payload: Buffer): void {
    const m = decodeMessage(payload);
    if (m.kind === 'malformed') {
      conn.malformed(m.reason);
      return;
    }
    this.dispatch(conn, m);
  }

  private dispatch(conn: WsapiConnection, m: Message): void {
    switch (m.kind) {
      case 'k': {
        const p = this.pending.get(m.callId);
        if (p === undefined || p.kind !== 'call') {
          this.stats.strayReplies++;
          conn.malformed(`reply for unknown call id ${m.callId}`);
          return;
        }
        this.pending.delete(m.callId);
        this.stats.replies++;
        if (p.settled) return; // the caller already got `timeout`
        clearTimeout(p.timer);
        p.resolve({ data: parseJsonText(m.data), error: m.error, info: m.info });
        return;
      }
      case 'd': {
        const p = this.pending.get(m.descId);
        if (p === undefined || p.kind !== 'describe') {
          conn.malformed(`description for unknown id ${m.descId}`);
          return;
        }
        this.pending.delete(m.descId);
        p.resolve(parseJsonText(m.description));
        return;
      }
      case 'v':
        if (!SUPPORTED_VERSIONS.includes(m.version)) {
          conn.hangUp(`server chose unsupported version ${m.version}`, 'warn');
          return;
        }
        this.serverVersion = m.version;
        return;
      case 'E': {
        const limit = this.options.maxEventTableBytes ?? DEFAULT_MAX_EVENT_TABLE_BYTES;
        const old = this.eventTable.get(m.eventId);
        const next = this.eventTableBytes - (old?.length ?? 0) + m.name.length;
        if (next > limit) {
          conn.stats.eventTableRefusals++;
          conn.limit('events', `event ${m.eventId} (${m.name.slice(0, 64)}) ignored: the event table would hold ${next} bytes of names > limit ${limit}`);
          return;
        }
        this.eventTable.set(m.eventId, m.name);
        this.eventTableBytes = next;
        return;
      }
      case 'e': {
        const old = this.eventTable.get(m.eventId);
        if (old !== undefined) this.eventTableBytes -= old.length;
        this.eventTable.delete(m.eventId);
        return;
      }
      case 'X':
      case 'x': {
        const p = this.pending.get(m.callId);
        const name = this.eventTable.get(m.eventId);
        if (p === undefined || p.kind !== 'call' || name === undefined) {
          conn.malformed(`${m.kind} for call ${m.callId} / event ${m.eventId} not known`);
          return;
        }
        if (m.kind === 'X') (p.events ??= new Set()).add(m.eventId);
        else p.events?.delete(m.eventId);
        this.emit(m.kind === 'X' ? 'subscribe' : 'unsubscribe', name, m.callId, p.verb);
        return;
      }
      case 'P': {
        const name = this.eventTable.get(m.eventId);
        if (name === undefined) {
          this.stats.unexpectedEvents++;
          conn.send(writeEventUnexpected(m.eventId));
          return;
        }
        this.stats.events++;
        const data = parseJsonText(m.data);
        this.emit('event', name, data, (data === m.data ? { eventId: m.eventId } : { json: m.data, eventId: m.eventId }) satisfies EventMeta);
        return;
      }
      case 'B':
        this.onBroadcast(m);
        return;
      default:
        conn.malformed(`client-side message '${m.kind}' received from the server`);
    }
  }

  private onBroadcast(m: EventBroadcast): void {
    const uuid = m.uuid.toString('hex');
    if (!this.seenBroadcasts.add(uuid)) {
      this.stats.duplicateBroadcasts++;
      return;
    }
    this.stats.broadcasts++;
    const data = parseJsonText(m.data);
    this.emit('event', m.name, data, (data === m.data ? { broadcast: { uuid, hop: m.hop } } : { json: m.data, broadcast: { uuid, hop: m.hop } }) satisfies EventMeta);
  }

  private onHangUp(conn: WsapiConnection, reason: string): void {
    if (this.conn !== conn) return;
    this.conn = null;
    this.serverVersion = null;
    const pending = this.pending.drain();
    this.eventTable.clear();
    this.eventTableBytes = 0;
    this.declaredSessions.clear();
    this.declaredTokens.clear();
    for (const p of pending) {
      if (p.kind === 'describe') {
        p.resolve(null);
      } else if (!p.settled) {
        clearTimeout(p.timer);
        this.stats.disconnectedCalls++;
        p.resolve({ data: null, error: 'disconnected', info: 'server hung up' });
      }
    }
    this.log.info(`client ${this.spec.text}: disconnected (${reason})`);
    this.emit('disconnect', reason);
    this.scheduleReconnect();
  }

  private reconnectSettings(): Required<ReconnectOptions> | null {
    const r = this.options.reconnect;
    if (r === undefined || r === false) return null;
    const o = r === true ? {} : r;
    return { initialDelayMs: o.initialDelayMs ?? 250, maxDelayMs: o.maxDelayMs ?? 30_000, jitter: o.jitter ?? 0.2 };
  }

  private scheduleReconnect(): void {
    const r = this.reconnectSettings();
    if (r === null || this.closedByUser) return;
    const base = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** Math.min(this.reconnectAttempt, 30));
    const delay = Math.round(base * (1 + r.jitter * Math.random()));
    this.reconnectAttempt++;
    this.emit('reconnecting', delay, this.reconnectAttempt);
    this.reconnectTimer = setTimeout(() => {
      if (this.closedByUser) return;
      this.connect().then(
        () => {
          this.stats.reconnects++;
          void this.resubscribe();
        },
        (err: Error) => {
          this.log.debug(`client ${this.spec.text}: reconnect failed: ${err.message}`);
          this.emit('connect_error', err);
          this.scheduleReconnect();
        },
      );
    }, delay);
  }

  private async resubscribe(): Promise<void> {
    for (const s of [...this.subscriptions]) {
      const reply = await this.call(s.verb, s.args, s.options);
      if (reply.error !== null) {
        this.log.warn(`client ${this.spec.text}: re-subscription ${s.verb} failed: ${reply.error} ${reply.info ?? ''}`);
      }
    }
    this.emit('resubscribed');
  }
}

export { WSAPI_VERSION_1 };
