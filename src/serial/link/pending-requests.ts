/**
 * Requests awaiting an ECU's reply: bounded, each with its timeout, all
 * failed at once when the link goes down.
 *
 * Ids go round 1..65535 rather than reusing the lowest free one: a reply
 * arriving after its request timed out then finds no request (counted as
 * late) instead of answering a newer request that took the same id, unless
 * 65,535 requests went by in between.
 */
import { LinkError } from './link-protocol.js';

interface Pending<K> {
  key: K;
  resolve: (value: unknown) => void;
  reject: (err: LinkError) => void;
  timer: NodeJS.Timeout;
}

export class PendingRequests<K = number> {
  private readonly pending = new Map<K, Pending<K>>();
  private nextId = 1;
  /** Replies with no request waiting (late after a timeout, or unsolicited). */
  late = 0;

  constructor(private readonly max: number, private readonly label: string) {}

  get size(): number {
    return this.pending.size;
  }

  /** A free numeric id, 1..65535 (only for numeric keys). */
  allocateId(): number {
    for (let i = 0; i < 0xffff; i++) {
      const id = this.nextId;
      this.nextId = id === 0xffff ? 1 : id + 1;
      if (!this.pending.has(id as K)) return id;
    }
    throw new LinkError('busy', `${this.label}: no free request id`);
  }

  has(key: K): boolean {
    return this.pending.has(key);
  }

  /**
   * Registers a request under `key` (throws LinkError 'busy' past the bound)
   * and returns the promise of its reply; `send` runs after registration so
   * that a reply cannot arrive before the request is known.
   */
  add(key: K, timeoutMs: number, send: () => void): Promise<unknown> {
    if (this.pending.size >= this.max) {
      throw new LinkError('busy', `${this.label}: ${this.max} requests already await a reply`);
    }
    if (this.pending.has(key)) throw new LinkError('busy', `${this.label}: a request for ${String(key)} already awaits its reply`);
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new LinkError('timeout', `${this.label}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(key, { key, resolve, reject, timer });
      try {
        send();
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(key);
        reject(err);
      }
    });
  }

  /** Settles the request `key`; returns false (and counts it late) when none waits. */
  settle(key: K, outcome: { value: unknown } | { error: LinkError }): boolean {
    const p = this.pending.get(key);
    if (p === undefined) {
      this.late++;
      return false;
    }
    clearTimeout(p.timer);
    this.pending.delete(key);
    if ('error' in outcome) p.reject(outcome.error);
    else p.resolve(outcome.value);
    return true;
  }

  /** Fails every pending request (link closed). */
  failAll(reason: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(new LinkError('disconnected', `${this.label}: ${reason}`));
    }
  }
}
