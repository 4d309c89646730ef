/**
 * mqtt.js's outgoing store, for the sink: keeps nothing. mqtt.js copies
 * every QoS 1/2 PUBLISH (payload included) into its store, to send it again
 * when the same client reconnects. The sink never reconnects a client: each
 * connection is a new one (reconnectPeriod 0), and what was not acknowledged
 * is sent again from the outbox, which is the one copy that counts. The
 * default store kept every in-flight copy (up to max_inflight) alive until
 * its PUBACK, long enough to be promoted out of V8's young generation in a
 * burst.
 *
 * What mqtt.js needs of it: put() answers at once; del() at the PUBACK
 * gives back a packet (an error there would fail the publish callback);
 * createStream() at connect yields nothing to resend.
 */
import type { IStore } from 'mqtt';
// From its own file, as mqtt-transport.ts takes the client: mqtt's index loads every transport.
import { MqttStore } from './mqtt-transport.js';

type Packet = Parameters<IStore['put']>[0];
type PacketCallback = Parameters<IStore['del']>[1];

/** Extends mqtt.js's Store for its createStream() and close(): with nothing put, there is nothing to resend. */
export class UnkeptStore extends MqttStore {
  override put(_packet: Packet, cb: (error?: Error) => void): this {
    cb?.();
    return this;
  }

  override del(packet: Pick<Packet, 'messageId'>, cb: PacketCallback): this {
    cb(undefined, packet as Packet);
    return this;
  }

  override get(_packet: Pick<Packet, 'messageId'>, cb: PacketCallback): this {
    cb(new Error('missing packet'));
    return this;
  }
}
