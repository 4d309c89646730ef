/**
 * A call received by a WsapiServer, handed to the verb's handler.
 */
import type { Session } from './session.js';
import type { ServerEvent } from './server-event.js';

export interface Credentials {
  uid: number;
  gid: number;
  pid: number;
  /** Security label (SMACK or other); `NoLabel` when the peer has none. */
  label: string;
}

/**
 * Parses on-behalf credentials as the native client writes them:
 * "%x:%x:%x-%s" = hex uid:gid:pid, then '-' and the label.
 */
export function parseCreds(text: string): Credentials | null {
  const m = /^([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+)-(.*)$/s.exec(text);
  if (m === null) return null;
  return { uid: parseInt(m[1]!, 16), gid: parseInt(m[2]!, 16), pid: parseInt(m[3]!, 16), label: m[4]! };
}

export function formatCreds(c: Credentials): string {
  return `${c.uid.toString(16)}:${c.gid.toString(16)}:${c.pid.toString(16)}-${c.label}`;
}

/** What the server side of a connection offers to a request (kept narrow on purpose). */
export interface RequestChannel {
  sendReply(callId: number, error: string | null, info: string | null, data: string): void;
  subscribe(callId: number, event: ServerEvent): boolean;
  unsubscribe(callId: number, event: ServerEvent): boolean;
  readonly isOpen: boolean;
}

export class Request {
  private done = false;

  constructor(
    private readonly channel: RequestChannel,
    readonly callId: number,
    readonly api: string,
    readonly verb: string,
    /** Parsed args (text that is not JSON arrives as a string, as in the reference). */
    readonly args: unknown,
    /** Args exactly as received. */
    readonly argsText: string,
    readonly session: Session,
    /** Token declared with T, or null. */
    readonly token: string | null,
    /** Credentials of the socket peer (SO_PEERCRED), when known. */
    readonly peer: Credentials | undefined,
    /** On-behalf credentials sent in K, when valid. */
    readonly forwardedCreds: Credentials | null,
    /** The credentials to act upon: forwarded ones from a trusted peer, else the peer's. */
    readonly creds: Credentials | undefined,
  ) {}

  get replied(): boolean {
    return this.done;
  }

  /** Replies success with `data` (and optional info). Later replies are ignored. */
  reply(data: unknown = null, info: string | null = null): void {
    this.send(null, info, data);
  }

  /** Replies with an error code (e.g. `failed`, `invalid-args`) and optional info. */
  fail(error: string, info: string | null = null, data: unknown = null): void {
    this.send(error, info, data);
  }

  /** Replies with already-serialised JSON data (relays). */
  replyText(error: string | null, info: string | null, dataJson: string): boolean {
    if (this.done) return false;
    this.done = true;
    this.channel.sendReply(this.callId, error, info, dataJson);
    return true;
  }

  private send(error: string | null, info: string | null, data: unknown): void {
    const text = data === undefined ? 'null' : JSON.stringify(data) ?? 'null';
    this.replyText(error, info, text);
  }

  /** Subscribes the caller to `event`; only while the request is not replied. */
  subscribe(event: ServerEvent): boolean {
    if (this.done) return false;
    return this.channel.subscribe(this.callId, event);
  }

  unsubscribe(event: ServerEvent): boolean {
    if (this.done) return false;
    return this.channel.unsubscribe(this.callId, event);
  }
}
