/**
 * Server side of one wsapi connection: version negotiation, session and
 * token tables, per-connection event state, and dispatch of calls to the
 * exported API's verbs. Behaves as the 2021 AGL binder does (see
 * ../shared/wsapi-v1.md): K without V is served, a malformed K gets no reply,
 * unknown letters are ignored, U is answered with e.
 */
import type { Socket } from 'node:net';
import { SUPPORTED_VERSIONS, WSAPI_IDENTIFIER } from './constants.js';
import {
  decodeMessage, parseJsonText, writeDescription, writeEventCreate, writeEventRemove, writeEventSubscribe,
  writeEventUnsubscribe, writeReply, writeVersionSet, type Call, type VersionOffer,
} from './codec.js';
import { WsapiConnection, type ConnectionOptions, type ConnectionStats } from './connection.js';
import { Request, parseCreds, type Credentials, type RequestChannel } from './request.js';
import type { ServerEvent } from './server-event.js';
import type { Session } from './session.js';
import type { WsapiServer } from './server.js';
import { peerCredentials } from './sockets.js';

export class ServerConnection implements RequestChannel {
  readonly conn: WsapiConnection;
  readonly peer: Credentials | undefined;
  /** Events announced with E on this connection (until e). */
  readonly knownEvents = new Set<number>();
  private readonly sessions = new Map<number, Session>();
  private readonly tokens = new Map<number, string>();
  private anonymous: Session | undefined;
  private readonly pendingCalls = new Set<number>();

  constructor(private readonly server: WsapiServer, socket: Socket, options: ConnectionOptions, stats: ConnectionStats) {
    const cred = peerCredentials(socket);
    this.peer = cred === undefined ? undefined : { ...cred, label: 'NoLabel' };
    this.conn = new WsapiConnection(socket, options, stats);
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
      case 'D':
        this.conn.send(writeDescription(m.descId, this.server.describeText()));
        return;
      case 'S':
        if (this.sessions.has(m.sessionId)) {
          this.conn.malformed(`session id ${m.sessionId} declared twice (ignored, old mapping kept)`);
          return;
        }
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
    this.pendingCalls.add(m.callId);
    const req = new Request(this, m.callId, this.server.api, m.verb, parseJsonText(m.args), m.args, session,
      this.tokens.get(m.tokenId) ?? null, this.peer, forwarded, creds);
    this.server.dispatch(req);
  }

  /* RequestChannel */
  sendReply(callId: number, error: string | null, info: string | null, data: string): void {
    this.pendingCalls.delete(callId);
    this.conn.send(writeReply(callId, error, info, data));
  }

  subscribe(callId: number, event: ServerEvent): boolean {
    if (event.removed || !this.pendingCalls.has(callId) || !this.conn.isOpen) return false;
    if (!this.knownEvents.has(event.id)) {
      this.knownEvents.add(event.id);
      this.conn.send(writeEventCreate(event.id, event.name));
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
    this.pendingCalls.clear();
    this.server.connectionClosed(this, reason);
  }
}
