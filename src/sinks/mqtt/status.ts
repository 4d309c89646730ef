/**
 * The retained status message: one JSON document on the status topic that
 * says whether the device is online. The broker publishes the "offline"
 * version itself (last will) when the connection dies without a DISCONNECT,
 * so a fleet dashboard always shows the truth, even after a power cut.
 *
 * Times are ISO 8601 strings (UTC, ms), as everywhere the agent publishes
 * one (envelopes, health, link states). The will has none: it is made when
 * the connection is opened and published by the broker at some later,
 * unknown time, so any time in it would be wrong; the receipt time is the
 * best a subscriber has.
 */
import type { DeviceConfig, MqttConfig } from '../../config/types.js';
import { isoTime } from '../../util/iso-time.js';
import type { OutboxRecovery } from './outbox-recovery.js';

export type StatusState = 'online' | 'offline';

export interface StatusMessage {
  state: StatusState;
  reason: string;
  /** When the message was made (ISO 8601); absent in the last will. */
  ts?: string;
  device: string;
  labels: Record<string, string>;
  version: string;
  /** What the outbox recovered or lost at this start (absent when nothing). */
  outbox?: OutboxRecovery;
}

/** Fills `{prefix}` and `{device}` in a topic template. */
export function fillTemplate(template: string, config: Pick<MqttConfig, 'topic_prefix'>, device: DeviceConfig): string {
  return template.replaceAll('{prefix}', config.topic_prefix).replaceAll('{device}', device.id);
}

export interface StatusExtras {
  /** Time of the message (ms); `null` for the last will (no time). Default: now. */
  ts?: number | null;
  outbox?: OutboxRecovery;
}

export function statusPayload(state: StatusState, reason: string, device: DeviceConfig, version: string, extras: StatusExtras = {}): Buffer {
  const ts = extras.ts === null ? undefined : isoTime(extras.ts ?? Date.now());
  const msg: StatusMessage = { state, reason, ts, device: device.id, labels: device.labels, version, outbox: extras.outbox };
  return Buffer.from(JSON.stringify(msg)); // undefined fields are left out
}
