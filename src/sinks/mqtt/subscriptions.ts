/**
 * The sink's subscriptions, kept across reconnections: each connection is a
 * new mqtt.js client, so the filters are subscribed again on every connect,
 * and received messages are dispatched to the handlers whose filter matches.
 */
import type { IPublishPacket, MqttClient } from 'mqtt';
import { errorKind } from '../../util/log.js';
import { topicMatches } from './topic-filter.js';

export type MessageHandler = (topic: string, payload: Buffer, packet: IPublishPacket) => void;

export class Subscriptions {
  private readonly subs = new Map<string, { qos: 0 | 1 | 2; handlers: Set<MessageHandler> }>();

  /**
   * `onError`: subscription failures (logged each time); `onHandlerError`:
   * an exception from a handler, with its kind (errorKind) for once-per-kind logging.
   */
  constructor(private readonly onError: (msg: string) => void, private readonly onHandlerError: (kind: string, msg: string) => void = (_k, m) => onError(m)) {}

  get size(): number {
    return this.subs.size;
  }

  filters(): string[] {
    return [...this.subs.keys()];
  }

  add(filter: string, qos: 0 | 1 | 2, handler: MessageHandler): void {
    let sub = this.subs.get(filter);
    if (!sub) {
      sub = { qos, handlers: new Set() };
      this.subs.set(filter, sub);
    }
    sub.qos = Math.max(sub.qos, qos) as 0 | 1 | 2;
    sub.handlers.add(handler);
  }

  /** Removes `handler` (all when absent); true when the filter has no handler left (and was removed). */
  remove(filter: string, handler?: MessageHandler): boolean {
    const sub = this.subs.get(filter);
    if (!sub) return false;
    if (handler) sub.handlers.delete(handler);
    else sub.handlers.clear();
    if (sub.handlers.size > 0) return false;
    this.subs.delete(filter);
    return true;
  }

  /** SUBSCRIBE for `filters` on `client`; false (logged) when the broker refused one or the request failed. */
  async send(client: MqttClient, filters: string[], live: () => boolean): Promise<boolean> {
    const request: Record<string, { qos: 0 | 1 | 2 }> = {};
    for (const f of filters) request[f] = { qos: this.subs.get(f)?.qos ?? 0 };
    try {
      let ok = true;
      for (const g of await client.subscribeAsync(request)) {
        if (g.qos >= 0x80) {
          ok = false;
          this.onError(`mqtt: the broker refused the subscription to ${g.topic} (reason code ${g.qos})`);
        }
      }
      return ok;
    } catch (err) {
      if (live()) this.onError(`mqtt: subscribe ${filters.join(', ')} failed: ${(err as Error).message}`);
      return false;
    }
  }

  /** Calls every handler whose filter matches; a throwing handler is reported, never fatal. */
  dispatch(topic: string, payload: Buffer, packet: IPublishPacket): void {
    for (const [filter, sub] of this.subs) {
      if (!topicMatches(filter, topic)) continue;
      for (const h of sub.handlers) {
        try {
          h(topic, payload, packet);
        } catch (err) {
          const kind = errorKind(err);
          this.onHandlerError(kind, `mqtt: the handler of ${filter} failed on a message on ${topic.slice(0, 200)}: ${kind}`);
        }
      }
    }
  }
}
