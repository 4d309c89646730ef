/**
 * Server-side sessions. As in the native binder, a session is identified by
 * its uuid and shared by every connection that declares it; sessions declared
 * with S close when the last reference goes (autoclose), so re-joining the
 * same uuid later gives a fresh one.
 */
import { lazyRequire } from '../util/lazy-require.js';

const crypto = lazyRequire<typeof import('node:crypto')>('node:crypto');

export class Session {
  /** Per-session storage for verb handlers (the binder's "context"). */
  readonly context = new Map<string, unknown>();
  /** Level of assurance, as binders keep it per session. */
  loa = 0;
  closed = false;
  refs = 0;
  constructor(readonly uuid: string) {}

  /** Closes the session now (like afb_req_session_close): its context is dropped. */
  close(): void {
    this.closed = true;
    this.context.clear();
  }
}

export class SessionStore {
  private readonly byUuid = new Map<string, Session>();

  /** Takes a reference on the session `uuid`, creating it if needed. */
  acquire(uuid: string = crypto().randomUUID()): Session {
    let s = this.byUuid.get(uuid);
    if (s === undefined || s.closed) {
      s = new Session(uuid);
      this.byUuid.set(uuid, s);
    }
    s.refs++;
    return s;
  }

  release(s: Session): void {
    s.refs--;
    if (s.refs <= 0) {
      s.close();
      if (this.byUuid.get(s.uuid) === s) this.byUuid.delete(s.uuid);
    }
  }

  get size(): number {
    return this.byUuid.size;
  }
}
