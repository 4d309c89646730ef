/** Ending an mqtt.js client within a time bound, and a timeout that resolves instead of rejecting. */
import type { MqttClient } from 'mqtt';

/**
 * Disconnects `client`: with a DISCONNECT packet when nothing is in flight
 * (mqtt.js would otherwise wait for those acks without limit; a DISCONNECT
 * also tells the broker not to publish the will), else by closing the
 * socket. Bounded by `ms`, after which the socket is destroyed.
 */
export function endClient(client: MqttClient, clean: boolean, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      client.stream?.destroy();
      resolve();
    }, ms);
    client.end(!clean, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** `p`, or undefined after `ms`. */
export function settleWithin<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms); }),
  ]).finally(() => clearTimeout(timer));
}
