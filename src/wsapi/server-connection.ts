/**
 * Server side of one wsapi connection: version negotiation, session and
 * token tables, per-connection event state, and dispatch of calls to the
 * exported API's verbs. Behaves as the 2021 AGL binder does (see
 * ../shared/wsapi-v1.md): K without V is served, a malformed K gets no reply,
 * unknown letters are ignored, U is answered with e.
 */
import type { Socket } from 'node:net';
import {
  DEFAULT_MAX_DECLARED_STRING, DEFAULT_MAX_PENDING_CALLS_PER_CONNECTION, DEFAULT_MAX_SESSIONS_PER_CONNECTION,
  DEFAULT_MAX_TOKENS_PER_CONNECTION,
  SUPPORTED_VERSIONS, WSAPI_IDENTIFIER,
} from './constants.js';
import {
  decodeMessage, parseJsonText, writeDescription, writeEventCreate, writeEventRemove, writeEventSubscribe,
  writeEventUnsubscribe, writeReply, writeVersionSet, type Call, type VersionOffer,
} from './codec.js';
import { WsapiConnection, type ConnectionContext, type ConnectionOptions, type ConnectionStats } from './connection.js';
import { framePayloadLength } from './frame-receiver.js';
import { Request, parseCreds, type Credentials, type RequestChannel } from './request.js';
import type { ServerEvent } from './server-event.js';
import type { Session } from './session.js';
import type { WsapiServer } from './server.js';
import { peerCredentials } from './sockets.js';
import { IdTable } from '../util/id-table.js';

/** Bounds of the tables S and T fill on one connection (a peer chooses what it declares). */
export interface TableLimits {
  /** Sessions declared with S at once (default 256); beyond, S is ignored and counted. */
  maxSessionsPerConnection?: number;
  /** Tokens declared with T at once (default 256). */
  maxTokensPerConnection?: number;
  /** Longest session uuid or token, in bytes (default 512; native uuids are 36). */
  maxDeclaredString?: number;
  /** Calls in progress at once on one connection (default 4095, a native client's own cap); beyond: `busy`. */
  maxPendingCallsPerConnection?: number;
}

export class ServerConnection implements RequestChannel {
  readonly conn: WsapiConnection;
  readonly peer: Credentials | undefined;
  /** Events announced with E on this connection (until e). */
  readonly knownEvents = new Set<number>();
  private readonly sessions = new Map<number, Session>();
  private readonly tokens = new Map<number, string>();
  private anonymous: Session | undefined;
  /**
   * Calls not replied yet, with the bytes of args each keeps (charged to the server's budget).
   * An IdTable, not a Map: one set and delete per call (ids.ts, CallTable, says why).
   */
  private readonly pendingCalls = new IdTable<number>(64);
  private readonly maxPendingCalls: number;
  private readonly maxSessions: number;
  private readonly maxTokens: number;
  private readonly maxDeclaredString: number;

  constructor(private readonly server: WsapiServer, socket: Socket, options: ConnectionOptions & TableLimits, stats: ConnectionStats, context: ConnectionContext) {
    const cred = peerCredentials(socket);
    this.peer = cred === undefined ? undefined : { ...cred, label: 'NoLabel' };
    this.maxSessions = options.maxSessionsPerConnection ?? DEFAULT_MAX_SESSIONS_PER_CONNECTION;
    this.maxTokens = options.maxTokensPerConnection ?? DEFAULT_MAX_TOKENS_PER_CONNECTION;
    this.maxDeclaredString = options.maxDeclaredString ?? DEFAULT_MAX_DECLARED_STRING;
    this.maxPendingCalls = options.maxPendingCallsPerConnection ?? DEFAULT_MAX_PENDING_CALLS_PER_CONNECTION;
    this.conn = new WsapiConnection(socket, options, stats, context);
    this.conn.onMessage = (payload) => this.onMessage(payload);
    this.conn.onClose = (reason) => this.onClosed(reason);
  }

  get isOpen(): boolean {
    return this.conn.isOpen;
  }

  private onMessage(payload: Buffer): void {
    const m = decodeMessage(payload);
    if (m.kind === 'malformed') {
      if (m.letter === 0x56) {
        // A V that does not parse is a bad offer: the reference hangs up.
        this.conn.hangUp(`malformed version offer (${m.reason})`, 'info');
        return;
      }
      this.conn.malformed(m.reason);
      return;
    }
    switch (m.kind) {
      case 'V': this.onVersionOffer(m); return;
      case 'K': this.onCall(m); return;
      case 'D': {
        let frame = writeDescription(m.descId, this.server.describeText());
        if (!this.conn.fits(framePayloadLength(frame))) {
          // null is the reference's "no description": a valid answer, where the real one would get us closed.
          this.conn.refuseTooLarge(`description for describe ${m.descId}`, framePayloadLength(frame));
          frame = writeDescription(m.descId, 'null');
        }
        this.conn.send(frame);
        return;
      }
      case 'S':
        if (this.sessions.has(m.sessionId)) {
          this.conn.malformed(`session id ${m.sessionId} declared twice (ignored, old mapping kept)`);
          return;
        }
        if (!this.tableAdmits('sessions', this.sessions.size, this.maxSessions, m.sessionId, m.uuid)) return;
        this.sessions.set(m.sessionId, this.server.sessions.acquire(m.uuid));
        return;
      case 's': {
        const s = this.sessions.get(m.sessionId);
        if (s === undefined) {
          this.conn.malformed(`drop of unknown session id ${m.sessionId}`);
          return;
        }
        this.sessions.delete(m.sessionId);
        this.server.sessions.release(s);
        return;
      }
      case 'T':
        if (this.tokens.has(m.tokenId)) {
          this.conn.malformed(`token id ${m.tokenId} declared twice (ignored)`);
          return;
        }
        if (!this.tableAdmits('tokens', this.tokens.size, this.maxTokens, m.tokenId, m.token)) return;
        this.tokens.set(m.tokenId, m.token);
        return;
      case 't':
        this.tokens.delete(m.tokenId);
        return;
      case 'U':
        if (this.knownEvents.delete(m.eventId)) {
          this.server.dropListener(m.eventId, this);
          this.conn.send(writeEventRemove(m.eventId));
        } else {
          this.conn.malformed(`U for event ${m.eventId} not announced here`);
        }
        return;
      default:
        this.conn.malformed(`server-side message '${m.kind}' received from a client`);
    }
  }

  /**
   * Whether one more S or T fits its table. When it does not, the declaration
   * is ignored (counted, logged): a call naming that session id then gets
   * `unknown-session`, one naming that token id runs without a token, as for
   * any undeclared id.
   */
  private tableAdmits(kind: 'sessions' | 'tokens', size: number, max: number, id: number, text: string): boolean {
    const bytes = Buffer.byteLength(text);
    if (size < max && bytes <= this.maxDeclaredString) return true;
    this.conn.stats.tableRefusals++;
    const what = kind === 'sessions' ? `session id ${id}` : `token id ${id}`;
    this.conn.limit(kind, size >= max
      ? `${what} refused: ${size} already declared on this connection (limit ${max})`
      : `${what} refused: ${bytes} bytes > limit ${this.maxDeclaredString}`);
    return false;
  }

  private onVersionOffer(m: VersionOffer): void {
    if (m.identifier !== WSAPI_IDENTIFIER) {
      this.conn.hangUp(`version offer with wrong identifier 0x${m.identifier.toString(16)}`, 'info');
      return;
    }
    // Highest common version; unknown values (the 0 padding of newer binders included) are ignored.
    let chosen = 0;
    for (const v of m.versions) if (SUPPORTED_VERSIONS.includes(v) && v > chosen) chosen = v;
    if (chosen === 0) {
      this.conn.hangUp(`no common version in offer [${m.versions.join(',')}]`, 'info');
      return;
    }
    this.conn.send(writeVersionSet(chosen));
  }

  private sessionFor(id: number): Session | undefined {
    if (id === 0) {
      if (this.anonymous === undefined || this.anonymous.closed) this.anonymous = this.server.sessions.acquire();
      return this.anonymous;
    }
    return this.sessions.get(id);
  }

  private onCall(m: Call): void {
    if (this.pendingCalls.has(m.callId)) {
      this.conn.malformed(`call id ${m.callId} reused while pending`);
      return;
    }
    const session = this.sessionFor(m.sessionId);
    if (session === undefined) {
      this.conn.send(writeReply(m.callId, 'unknown-session', null, 'null'));
      return;
    }
    let forwarded: Credentials | null = null;
    if (m.creds !== null) {
      forwarded = parseCreds(m.creds);
      if (forwarded === null) this.conn.malformed(`invalid on-behalf credentials '${m.creds}' (ignored)`);
    }
    const creds = forwarded !== null && this.server.trustsForwardedCreds(this.peer) ? forwarded : this.peer;
    // A verb answering later keeps its request (args included): bounded in number per connection and in
    // bytes for the whole server, else a peer could pile up 65,535 calls of 1 MB each.
    const argsBytes = m.args.length + m.verb.length;
    if (this.pendingCalls.size >= this.maxPendingCalls || !this.server.pendingCallBytes.resize(0, argsBytes)) {
      const why = this.pendingCalls.size >= this.maxPendingCalls
        ? `${this.pendingCalls.size} calls in progress on this connection (limit ${this.maxPendingCalls})`
        : `calls in progress keep ${this.server.pendingCallBytes.used} bytes of args (limit ${this.server.pendingCallBytes.limit})`;
      this.conn.stats.busyRefusals++;
      this.conn.limit('pending_calls', `call ${m.callId} (${m.verb}) refused: ${why}`);
      this.conn.send(writeReply(m.callId, 'busy', why, 'null'));
      return;
    }
    this.pendingCalls.set(m.callId, argsBytes);
    const req = new Request(this, m.callId, this.server.api, m.verb, parseJsonText(m.args), m.args, session,
      this.tokens.get(m.tokenId) ?? null, this.peer, forwarded, creds);
    this.server.dispatch(req);
  }

  /* RequestChannel */
  sendReply(callId: number, error: string | null, info: string | null, data: string): void {
    this.releaseCall(callId);
    let frame = writeReply(callId, error, info, data);
    const size = framePayloadLength(frame);
    if (!this.conn.fits(size)) {
      // The native binder sends it anyway and its native peer hangs up (16 f-too-large): every call and
      // event of the connection lost. An error reply for this call alone keeps the rest.
      this.conn.refuseTooLarge(`reply to call ${callId}`, size);
      frame = writeReply(callId, 'too-large', `reply of ${size} bytes exceeds the peer's frame limit of ${this.conn.peerMaxFramePayload} bytes`, 'null');
    }
    this.conn.send(frame);
  }

  subscribe(callId: number, event: ServerEvent): boolean {
    if (event.removed || !this.pendingCalls.has(callId) || !this.conn.isOpen) return false;
    if (!this.knownEvents.has(event.id)) {
      const create = writeEventCreate(event.id, event.name);
      if (!this.conn.fits(framePayloadLength(create))) {
        this.conn.refuseTooLarge(`event create of ${event.name.slice(0, 64)}`, framePayloadLength(create));
        return false;
      }
      this.knownEvents.add(event.id);
      this.conn.send(create);
    }
    this.server.attachListener(event.id, this);
    this.conn.send(writeEventSubscribe(callId, event.id));
    return true;
  }

  /** Sends x; like the 2021 binder, pushes go on until the client answers U (unless the server stops them at once). */
  unsubscribe(callId: number, event: ServerEvent): boolean {
    if (!this.pendingCalls.has(callId) || !this.knownEvents.has(event.id)) return false;
    this.conn.send(writeEventUnsubscribe(callId, event.id));
    if (this.server.stopsPushesOnUnsubscribe) this.server.dropListener(event.id, this);
    return true;
  }

  private releaseCall(callId: number): void {
    const bytes = this.pendingCalls.get(callId);
    if (bytes === undefined) return;
    this.pendingCalls.delete(callId);
    this.server.pendingCallBytes.resize(bytes, 0);
  }

  /** The event was retired: tell this connection if it knew it. */
  forgetEvent(eventId: number): void {
    if (this.knownEvents.delete(eventId)) this.conn.send(writeEventRemove(eventId));
  }

  private onClosed(reason: string): void {
    for (const id of this.knownEvents) this.server.dropListener(id, this);
    this.knownEvents.clear();
    for (const s of this.sessions.values()) this.server.sessions.release(s);
    this.sessions.clear();
    if (this.anonymous !== undefined) this.server.sessions.release(this.anonymous);
    this.anonymous = undefined;
    const ids: number[] = [];
    this.pendingCalls.forEach((_, id) => ids.push(id));
    for (const id of ids) this.releaseCall(id);
    this.server.connectionClosed(this, reason);
  }
}
