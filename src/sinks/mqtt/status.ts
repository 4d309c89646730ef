/**
 * The retained status message: one JSON document on the status topic that
 * says whether the device is online. The broker publishes the "offline"
 * version itself (last will) when the connection dies without a DISCONNECT,
 * so a fleet dashboard always shows the truth, even after a power cut.
 */
import type { DeviceConfig, MqttConfig } from '../../config/types.js';

export type StatusState = 'online' | 'offline';

export interface StatusMessage {
  state: StatusState;
  reason: string;
  /** ms since the epoch when the message was made (for the will: when the connection was made). */
  ts: number;
  device: string;
  labels: Record<string, string>;
  version: string;
}

/** Fills `{prefix}` and `{device}` in a topic template. */
export function fillTemplate(template: string, config: Pick<MqttConfig, 'topic_prefix'>, device: DeviceConfig): string {
  return template.replaceAll('{prefix}', config.topic_prefix).replaceAll('{device}', device.id);
}

export function statusPayload(state: StatusState, reason: string, device: DeviceConfig, version: string, ts = Date.now()): Buffer {
  const msg: StatusMessage = { state, reason, ts, device: device.id, labels: device.labels, version };
  return Buffer.from(JSON.stringify(msg));
}
