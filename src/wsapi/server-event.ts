/**
 * An event of an exported API. Its id comes from one server-wide counter (as
 * the native binder's daemon-wide one); connections learn it through E, sent
 * lazily just before the first X that names it on that connection.
 */
export interface EventHost {
  pushEvent(event: ServerEvent, dataJson: string): number;
  broadcastEvent(name: string, dataJson: string, options?: BroadcastOptions): boolean;
  removeEvent(event: ServerEvent): void;
  subscriberCount(event: ServerEvent): number;
}

export interface BroadcastOptions {
  /** 16-byte uuid identifying this broadcast (fresh by default). */
  uuid?: Uint8Array;
  /** Hops this node holds: the wire carries hop - 1; 0 means do not send (default 10). */
  hop?: number;
}

export class ServerEvent {
  removed = false;
  constructor(private readonly host: EventHost, readonly id: number, readonly name: string) {}

  /** Connections subscribed now: lets a producer skip serialising data nobody reads. */
  get subscribers(): number {
    return this.removed ? 0 : this.host.subscriberCount(this);
  }

  /** Pushes to every connection subscribed to it; returns how many were reached. */
  push(data: unknown = null): number {
    return this.pushText(data === undefined ? 'null' : JSON.stringify(data) ?? 'null');
  }

  pushText(dataJson: string): number {
    if (this.removed) return 0;
    return this.host.pushEvent(this, dataJson);
  }

  /** Broadcasts this event's name to every connection, subscribed or not. */
  broadcast(data: unknown = null, options?: BroadcastOptions): boolean {
    return this.host.broadcastEvent(this.name, JSON.stringify(data) ?? 'null', options);
  }

  /** Retires the event: connections that know it get e. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    this.host.removeEvent(this);
  }
}
