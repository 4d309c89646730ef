/**
 * QoS 0 delivery: written at once to a connected socket that is not backed
 * up (the packet encoded by publish-packet.ts); otherwise kept in a bounded
 * queue (oldest dropped, counted) and written when the connection is up and
 * the socket drained. mqtt.js's own offline QoS 0 queue, which has no bound,
 * is off (queueQoSZero: false).
 */
import type { MqttClient } from 'mqtt';
import { BoundedQueue } from './bounded-queue.js';
import { publishPacket, writeBatched } from './publish-packet.js';

interface Item {
  topic: string;
  payload: Buffer;
  retain: boolean;
}

export class Qos0Sender {
  private readonly queue: BoundedQueue<Item>;
  private client: MqttClient | undefined;
  /** A 'drain' listener is waiting to resume the queue (one at most). */
  private drainArmed = false;

  constructor(
    capacity: number,
    /** The socket's buffered bytes above which messages wait in the queue instead. */
    private readonly highWaterBytes: number,
    private readonly onSent: () => void,
    private readonly onDropped: () => void,
    /** MQTT 5 packets carry a property list (empty here). */
    private readonly protocolVersion: number,
  ) {
    this.queue = new BoundedQueue(capacity);
  }

  /** The connected client, or undefined when the connection is down. */
  setClient(client: MqttClient | undefined): void {
    this.client = client;
    this.drainArmed = false;
    this.flush();
  }

  /** 'rejected' only when the message itself could not be kept (capacity 0 while offline). */
  publish(item: Item): 'accepted' | 'rejected' {
    if (this.client && this.queue.length === 0 && !this.backedUp()) {
      this.write(item);
      return 'accepted';
    }
    const evicted = this.queue.push(item);
    if (evicted) this.onDropped();
    this.flush();
    return evicted === item ? 'rejected' : 'accepted';
  }

  private backedUp(): boolean {
    const stream = this.client?.stream as { writableLength?: number } | undefined;
    return (stream?.writableLength ?? 0) > this.highWaterBytes;
  }

  private write(item: Item): void {
    const client = this.client!;
    const packet = publishPacket(item.topic, item.payload, item.retain, this.protocolVersion);
    if (packet === undefined) {
      // Larger than MQTT allows: mqtt.js's publish() says so (its 'error'), as it always did.
      client.publish(item.topic, item.payload, { qos: 0, retain: item.retain });
      return;
    }
    // Whole packets on the client's own socket, between mqtt.js's (which writes each of its
    // packets at once too). Written to the connected socket = published.
    writeBatched(client.stream, packet);
    this.onSent();
  }

  private flush(): void {
    while (this.client && this.queue.length > 0) {
      if (this.backedUp()) {
        if (this.drainArmed) return;
        this.drainArmed = true;
        const client = this.client;
        client.stream.once('drain', () => {
          if (this.client !== client) return;
          this.drainArmed = false;
          this.flush();
        });
        return;
      }
      this.write(this.queue.shift()!);
    }
  }
}
