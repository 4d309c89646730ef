/**
 * wsapi server: exports one API (verbs, events, description) on one or more
 * socket specs, so native binders can import it with --ws-client.
 */
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import { unlinkSync } from 'node:fs';
import {
  BROADCAST_HOP_MAX, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_FRAME_PAYLOAD,
  DEFAULT_MAX_PENDING_CALL_BYTES, type LimitKind,
} from './constants.js';
import { writeEventBroadcast, writeEventPush } from './codec.js';
import { ByteBudget } from './byte-budget.js';
import { newConnectionStats, type ConnectionOptions } from './connection.js';
import { framePayloadLength } from './frame-receiver.js';
import { RecentSet } from './ids.js';
import type { Credentials, Request } from './request.js';
import { ServerConnection, type TableLimits } from './server-connection.js';
import { ServerEvent, type BroadcastOptions, type EventHost } from './server-event.js';
import { SessionStore } from './session.js';
import { parseSpec, type SocketSpec } from './spec.js';
import { listenSpec } from './sockets.js';
import { errorKind, OncePerKindLog, RateLimitedLog, silentLogger, type Logger } from '../util/log.js';
import { lazyRequire } from '../util/lazy-require.js';

// Broadcast ids only: the agent's start-up does not load crypto for them.
const crypto = lazyRequire<typeof import('node:crypto')>('node:crypto');

/** A verb handler: reply through `req`, or return a value (replied as data) / throw (replied as error). */
export type VerbHandler = (req: Request) => unknown;

export interface VerbInfo {
  description?: string;
}

/** Who may pass on-behalf credentials in K: the reference trusts only privileged peers. */
export type CredsTrust = 'always' | 'same-uid' | 'never';

export interface ServerOptions extends ConnectionOptions, TableLimits {
  api: string;
  /** Description answered to D: any JSON (OpenAPI-like), or a function giving it; null by default. */
  description?: unknown | (() => unknown);
  /** Default 'same-uid': forwarded creds are honoured from root or from our own uid. */
  trustForwardedCreds?: CredsTrust;
  /**
   * Stop pushing an event to a connection as soon as a verb unsubscribes it
   * (as redpesk does), instead of going on until the client answers U (as the
   * 2021 AGL binder does, the default). Both are valid for every client.
   */
  stopPushesOnUnsubscribe?: boolean;
  /** Connections served at once (default 64); one more is hung up at once and counted. */
  maxConnections?: number;
  /**
   * Bytes of unfinished received messages all connections may hold together
   * (default 16 MiB); the connection whose growth crosses it is closed (1009).
   */
  maxBufferedBytes?: number;
  /**
   * Bytes of args (and verb names) the calls in progress of all connections
   * may keep (default 16 MiB); a call beyond gets `busy` at once.
   */
  maxPendingCallBytes?: number;
}

export interface ServerStats {
  connections: number;
  connectionsTotal: number;
  calls: number;
  unknownVerbs: number;
  handlerErrors: number;
  eventsPushed: number;
  broadcasts: number;
  /** Connections hung up at once because maxConnections were open. */
  connectionsRefused: number;
}

/**
 * Events emitted: 'connection' (ServerConnection), 'disconnect' (ServerConnection, reason),
 * 'limit' (kind: LimitKind, detail: string) each time a bound refuses something (already counted
 * in stats / connectionStats and logged, rate-limited).
 */
export class WsapiServer extends EventEmitter implements EventHost {
  readonly api: string;
  readonly sessions = new SessionStore();
  readonly connectionStats = newConnectionStats();
  readonly stats: ServerStats = { connections: 0, connectionsTotal: 0, calls: 0, unknownVerbs: 0, handlerErrors: 0, eventsPushed: 0, broadcasts: 0, connectionsRefused: 0 };
  private readonly verbs = new Map<string, { handler: VerbHandler; info: VerbInfo }>();
  private readonly events = new Map<string, ServerEvent>();
  private readonly subscribers = new Map<number, Set<ServerConnection>>();
  private readonly connections = new Set<ServerConnection>();
  private readonly servers: Server[] = [];
  private readonly socketPaths: string[] = [];
  private readonly seenBroadcasts = new RecentSet(1024);
  private readonly log: Logger;
  private readonly verbErrors: OncePerKindLog;
  private nextEventId = 1;
  private deferred: Array<() => void> = [];
  private readonly budget: ByteBudget;
  /** Args kept by calls in progress, all connections (used by ServerConnection). */
  readonly pendingCallBytes: ByteBudget;
  private readonly maxConnections: number;
  private readonly peerMaxFramePayload: number;
  private readonly limitLog: RateLimitedLog;

  constructor(private readonly options: ServerOptions) {
    super();
    this.api = options.api;
    this.log = options.logger ?? silentLogger;
    this.verbErrors = new OncePerKindLog((m) => this.log.warn(m));
    this.budget = new ByteBudget(options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES);
    this.pendingCallBytes = new ByteBudget(options.maxPendingCallBytes ?? DEFAULT_MAX_PENDING_CALL_BYTES);
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.peerMaxFramePayload = options.peerMaxFramePayload ?? DEFAULT_MAX_FRAME_PAYLOAD;
    this.limitLog = new RateLimitedLog((m) => this.log.warn(`server ${this.api}: ${m}`));
  }

  /** Bytes of unfinished received messages held by all connections now. */
  get bufferedBytes(): number {
    return this.budget.used;
  }

  private readonly reportLimit = (kind: LimitKind, detail: string): void => {
    this.emit('limit', kind, detail);
  };

  /** Counts nothing: logs (rate-limited) and reports a server-level refusal. */
  private limit(kind: LimitKind, detail: string): void {
    this.limitLog.log(`limit ${kind}: ${detail}`);
    this.reportLimit(kind, detail);
  }

  /** Declares a verb. */
  verb(name: string, handler: VerbHandler, info: VerbInfo = {}): this {
    this.verbs.set(name, { handler, info });
    return this;
  }

  verbNames(): string[] {
    return [...this.verbs.keys()];
  }

  /** Listens on a spec (string or parsed); may be called for several specs. */
  async listen(spec: string | SocketSpec): Promise<void> {
    const s = typeof spec === 'string' ? parseSpec(spec) : spec;
    const servers = await listenSpec(s, (socket) => this.accept(socket));
    this.servers.push(...servers);
    if (s.kind === 'unix') this.socketPaths.push(s.path);
    this.log.info(`server ${this.api}: listening on ${s.text}`);
  }

  /**
   * Serves an already connected stream; beyond maxConnections the stream is
   * hung up at once (no frame: the server never speaks first) and undefined
   * is returned.
   */
  accept(socket: Socket): ServerConnection | undefined {
    if (this.connections.size >= this.maxConnections) {
      this.stats.connectionsRefused++;
      socket.destroy();
      this.limit('connections', `connection refused: ${this.connections.size} open (limit ${this.maxConnections})`);
      return undefined;
    }
    const c = new ServerConnection(this, socket, { ...this.options, label: this.options.label ?? `server ${this.api}` }, this.connectionStats,
      { receiveBudget: this.budget, onLimit: this.reportLimit });
    this.connections.add(c);
    this.stats.connections++;
    this.stats.connectionsTotal++;
    this.emit('connection', c);
    return c;
  }

  /** Stops listening and hangs up every connection. */
  async close(): Promise<void> {
    // net.Server.close() stops accepting at once but calls back only when every
    // connection has ended: hang them up before waiting, or close() never resolves.
    const stopped = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const c of this.connections) c.conn.hangUp('server closing');
    await stopped;
    this.servers.length = 0;
    for (const p of this.socketPaths) {
      try { unlinkSync(p); } catch { /* already gone */ }
    }
  }

  /** Creates (or returns) the event `name`; its wire name is `api/name`. */
  event(name: string): ServerEvent {
    let e = this.events.get(name);
    if (e === undefined || e.removed) {
      const id = this.allocateEventId();
      e = new ServerEvent(this, id, `${this.api}/${name}`);
      this.events.set(name, e);
    }
    return e;
  }

  /** Broadcasts `api/name` to every connection. */
  broadcast(name: string, data: unknown = null, options?: BroadcastOptions): boolean {
    return this.broadcastEvent(`${this.api}/${name}`, JSON.stringify(data) ?? 'null', options);
  }

  private allocateEventId(): number {
    const used = new Set([...this.events.values()].filter((e) => !e.removed).map((e) => e.id));
    for (let i = 0; i < 0xffff; i++) {
      const id = this.nextEventId;
      this.nextEventId = id === 0xffff ? 1 : id + 1;
      if (!used.has(id)) return id;
    }
    throw new RangeError(`server ${this.api}: no free event id`);
  }

  /* ------------------------------------------------ used by connections */

  describeText(): string {
    const d = this.options.description;
    const value = typeof d === 'function' ? (d as () => unknown)() : d;
    return value === undefined ? 'null' : JSON.stringify(value) ?? 'null';
  }

  trustsForwardedCreds(peer: Credentials | undefined): boolean {
    const policy = this.options.trustForwardedCreds ?? 'same-uid';
    if (policy === 'always') return true;
    if (policy === 'never' || peer === undefined) return false;
    return peer.uid === 0 || peer.uid === process.getuid?.();
  }

  dispatch(req: Request): void {
    this.stats.calls++;
    const verb = this.verbs.get(req.verb);
    if (verb === undefined) {
      this.stats.unknownVerbs++;
      req.fail('unknown-verb', `verb ${req.verb} unknown within api ${this.api}`);
      return;
    }
    const failed = (err: unknown): void => {
      this.stats.handlerErrors++;
      const kind = errorKind(err);
      // a peer may call a failing verb in a loop: once per verb and kind
      this.verbErrors.log(`${req.verb}\u0000${kind}`, `server ${this.api}: verb ${req.verb} failed: ${kind}`);
      req.fail('internal-error', (err as Error)?.message ?? String(err));
    };
    try {
      const result = verb.handler(req);
      if (result instanceof Promise) {
        result.then((v) => { if (!req.replied) req.reply(v); }, failed);
      } else if (!req.replied && result !== undefined) {
        req.reply(result);
      }
    } catch (err) {
      if (!req.replied) failed(err);
    }
  }

  attachListener(eventId: number, c: ServerConnection): void {
    let set = this.subscribers.get(eventId);
    if (set === undefined) this.subscribers.set(eventId, (set = new Set()));
    set.add(c);
  }

  get stopsPushesOnUnsubscribe(): boolean {
    return this.options.stopPushesOnUnsubscribe === true;
  }

  dropListener(eventId: number, c: ServerConnection): void {
    this.subscribers.get(eventId)?.delete(c);
  }

  connectionClosed(c: ServerConnection, reason: string): void {
    this.connections.delete(c);
    this.stats.connections--;
    this.emit('disconnect', c, reason);
  }

  /**
   * Pushes, broadcasts and removals are delivered on the next tick, so that a
   * handler that pushes and then replies produces k before P, as the
   * reference (which runs pushes as jobs) does.
   */
  private defer(fn: () => void): void {
    if (this.deferred.length === 0) process.nextTick(this.flushDeferred);
    this.deferred.push(fn);
  }

  private readonly flushDeferred = (): void => {
    const jobs = this.deferred;
    this.deferred = [];
    for (const job of jobs) job();
  };

  /* EventHost */
  subscriberCount(event: ServerEvent): number {
    return this.subscribers.get(event.id)?.size ?? 0;
  }

  pushEvent(event: ServerEvent, dataJson: string): number {
    const set = this.subscribers.get(event.id);
    const count = set?.size ?? 0;
    if (count === 0) return 0;
    const frame = writeEventPush(event.id, dataJson);
    if (this.refusedForSize(frame, `push of ${event.name}`)) return 0;
    this.defer(() => {
      for (const c of set!) if (c.knownEvents.has(event.id)) c.conn.send(frame);
      this.stats.eventsPushed++;
    });
    return count;
  }

  /**
   * An event or broadcast frame larger than the peers accept is not sent at
   * all (a native peer would close the connection: 1009). Counted once in
   * connectionStats.tooLargeRefused, whatever the number of connections.
   */
  private refusedForSize(frame: Buffer, what: string): boolean {
    const size = framePayloadLength(frame);
    if (size <= this.peerMaxFramePayload) return false;
    this.connectionStats.tooLargeRefused++;
    this.limit('peer_frame', `${what}: ${size} bytes > the peers' frame limit of ${this.peerMaxFramePayload} bytes, not sent`);
    return true;
  }

  broadcastEvent(name: string, dataJson: string, options: BroadcastOptions = {}): boolean {
    const hop = options.hop ?? BROADCAST_HOP_MAX;
    const uuid = options.uuid ?? crypto().randomBytes(16);
    if (!this.seenBroadcasts.add(Buffer.from(uuid).toString('hex'))) return false; // loop: already relayed
    if (hop <= 0) return false;
    const frame = writeEventBroadcast(name, dataJson, uuid, hop - 1);
    if (this.refusedForSize(frame, `broadcast of ${name.slice(0, 64)}`)) return false;
    this.defer(() => {
      for (const c of this.connections) c.conn.send(frame);
      this.stats.broadcasts++;
    });
    return true;
  }

  removeEvent(event: ServerEvent): void {
    const short = event.name.slice(this.api.length + 1);
    if (this.events.get(short) === event) this.events.delete(short);
    const set = this.subscribers.get(event.id);
    this.subscribers.delete(event.id);
    // Immediate, unlike pushes: the reference sends e before the k of the removing call.
    for (const c of set ?? []) c.forgetEvent(event.id);
  }
}
