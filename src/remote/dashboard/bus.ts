/**
 * What the dashboard hears on the broker: every message below the watched
 * devices goes through src/remote/topics.ts (the only parser of agent
 * payloads) into the fleet (rows), the device log (history) and the hub
 * (browsers), and replies to the console's calls to the console.
 *
 * A payload that is not what its topic promises (a status that is no JSON
 * object...) is counted (afb_edge_monitor_malformed_total{kind}), logged
 * rate-limited with its topic, and still listed in the device's messages as
 * text. An empty status (the retained status cleared) removes the device;
 * an empty health or link message (cleared too) is ignored.
 * A payload larger than MAX_SHOWN_BYTES is listed as a text preview
 * (its size in `truncated`; afb_edge_monitor_dropped_total{reason="payload-truncated"}).
 */
import { classifyTopic, parseEvent, parseHealth, parseLinkStatus, parseReply, parseStatus, payloadValue, type TopicInfo } from '../topics.js';
import { RateLimitedLog, type Logger } from '../../util/log.js';
import type { CommandConsole } from './commands.js';
import type { DeviceLog } from './device-log.js';
import type { Fleet } from './fleet.js';
import type { Hub } from './hub.js';
import type { DashboardMetrics } from './metrics.js';
import type { EventItem } from './protocol.js';

export const MAX_SHOWN_BYTES = 16 * 1024;
const PREVIEW_CHARS = 2048;

export class BusIngest {
  private seq = 0;
  private readonly malformedLog: RateLimitedLog;
  private readonly refusedLog: RateLimitedLog;

  constructor(
    private readonly prefix: string,
    private readonly parts: { fleet: Fleet; log: DeviceLog; hub: Hub; commands: CommandConsole; metrics: DashboardMetrics; logger: Logger },
  ) {
    this.malformedLog = new RateLimitedLog((m) => parts.logger.warn(m));
    this.refusedLog = new RateLimitedLog((m) => parts.logger.warn(m));
  }

  message(topic: string, payload: Buffer, retained: boolean, now = Date.now()): void {
    const { fleet, metrics } = this.parts;
    const info = classifyTopic(this.prefix, topic);
    if (info === undefined) {
      metrics.messages.inc({ kind: 'other' });
      return;
    }
    metrics.messages.inc({ kind: info.kind });
    const device = info.device;
    if (payload.length === 0 && (info.kind === 'status' || info.kind === 'health' || info.kind === 'link')) {
      // A retained message cleared; a cleared status removes the device.
      if (info.kind === 'status') {
        fleet.forget(device);
        this.parts.log.forget(device);
      }
      return;
    }
    if (!fleet.seen(device, now)) {
      metrics.dropped.inc({ reason: 'max-devices' });
      this.refusedLog.log(`monitor: ${topic}: device ${device} not shown: the monitor already follows its maximum of devices (--max-devices)`);
      return;
    }
    const live = !retained;
    const item = (kind: EventItem['kind'], name: string, data: unknown, shape: EventItem['shape'], extra: Partial<EventItem> = {}): EventItem =>
      ({ i: ++this.seq, at: now, topic, name, kind, shape, data, ...(retained ? { retained } : {}), ...extra });
    let ev: EventItem;
    switch (info.kind) {
      case 'status': {
        const st = parseStatus(payload);
        if (st === undefined) ev = this.malformed(info, topic, payload, item);
        else {
          fleet.status(device, st, live, now);
          ev = item('status', 'status', payloadValue(payload), 'json');
        }
        break;
      }
      case 'link': {
        const st = parseLinkStatus(payload);
        if (st === undefined) ev = this.malformed(info, topic, payload, item);
        else {
          fleet.link(device, info.link, st, now);
          ev = item('link', `status/links/${info.link}`, payloadValue(payload), 'json');
        }
        break;
      }
      case 'health': {
        const h = parseHealth(payload);
        if (h === undefined) ev = this.malformed(info, topic, payload, item);
        else {
          fleet.health(device, h, live, now);
          ev = item('health', 'health', payloadValue(payload), 'json', h.ts !== undefined ? { ts: h.ts } : {});
        }
        break;
      }
      case 'reply': {
        const r = parseReply(payload);
        if (r !== undefined) this.parts.commands.reply(r);
        ev = item('reply', `reply/${info.binder}/${info.verb}`, payloadValue(payload), 'json');
        break;
      }
      case 'call':
        ev = item('call', `call/${info.binder}/${info.verb}`, payloadValue(payload), 'json');
        break;
      case 'event': {
        if (payload.length > MAX_SHOWN_BYTES) {
          ev = this.truncated(item('event', info.name, '', 'text'), payload);
          fleet.event(device, undefined, now);
          break;
        }
        const e = parseEvent(info.name, payload);
        fleet.event(device, e.ts, now);
        ev = item('event', e.name, e.data, e.shape, { ...(e.ts !== undefined ? { ts: e.ts } : {}), ...(e.seq !== undefined ? { seq: e.seq } : {}) });
        break;
      }
    }
    if (payload.length > MAX_SHOWN_BYTES && ev.truncated === undefined) ev = this.truncated(ev, payload);
    const json = JSON.stringify(ev);
    this.parts.log.add(device, json);
    this.parts.hub.event(device, json);
  }

  private malformed(info: TopicInfo, topic: string, payload: Buffer, item: (kind: EventItem['kind'], name: string, data: unknown, shape: EventItem['shape']) => EventItem): EventItem {
    this.parts.metrics.malformed.inc({ kind: info.kind });
    this.malformedLog.log(`monitor: ${topic}: ${info.kind} payload is not a JSON object${info.kind === 'link' ? ' with a state' : ''}: ${JSON.stringify(payload.subarray(0, 80).toString('utf8'))}`);
    return item(info.kind === 'link' ? 'link' : info.kind === 'health' ? 'health' : 'status', topic.slice(this.prefix.length + info.device.length + 2), payload.toString('utf8'), 'text');
  }

  private truncated(ev: EventItem, payload: Buffer): EventItem {
    this.parts.metrics.dropped.inc({ reason: 'payload-truncated' });
    return { ...ev, shape: 'text', data: payload.subarray(0, PREVIEW_CHARS).toString('utf8'), truncated: payload.length };
  }
}
