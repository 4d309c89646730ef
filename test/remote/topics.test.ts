/**
 * src/remote/topics.ts reads what the agent writes: its status, link, health
 * and envelope payloads as the agent's own functions make them, and the
 * shapes announced for later agents (ISO or epoch `ts`, `since`, an `outbox`
 * field, fields missing).
 */
import { describe, expect, it } from 'vitest';
import { envelopeJson } from '../../src/router/payload.js';
import { statusPayload, type StatusExtras } from '../../src/sinks/mqtt/status.js';
import { classifyTopic, commandRequest, deviceFilters, parseEvent, parseHealth, parseLinkStatus, parseReply, parseStatus, parseTime } from '../../src/remote/topics.js';

describe('topics', () => {
  it('classifies the agent topic layout below a prefix, event names decoded', () => {
    expect(classifyTopic('afb-edge', 'afb-edge/car-1/status')).toEqual({ kind: 'status', device: 'car-1' });
    expect(classifyTopic('afb-edge', 'afb-edge/car-1/status/links/can0')).toEqual({ kind: 'link', device: 'car-1', link: 'can0' });
    expect(classifyTopic('afb-edge', 'afb-edge/car-1/health')).toEqual({ kind: 'health', device: 'car-1' });
    expect(classifyTopic('afb-edge', 'afb-edge/car-1/call/vehicle/ping')).toEqual({ kind: 'call', device: 'car-1', binder: 'vehicle', verb: 'ping' });
    expect(classifyTopic('afb-edge', 'afb-edge/car-1/reply/vehicle/ping')).toEqual({ kind: 'reply', device: 'car-1', binder: 'vehicle', verb: 'ping' });
    expect(classifyTopic('afb-edge', 'afb-edge/car-1/events/vehicle/speed')).toEqual({ kind: 'event', device: 'car-1', name: 'vehicle/speed' });
    expect(classifyTopic('afb-edge', 'afb-edge/car-1/events/vehicle/a%2Bb%23')).toEqual({ kind: 'event', device: 'car-1', name: 'vehicle/a+b#' });
    expect(classifyTopic('afb-edge', 'afb-edge/car-1/can/VehicleSpeed')).toEqual({ kind: 'event', device: 'car-1', name: 'can/VehicleSpeed' });
    expect(classifyTopic('fleet/eu', 'fleet/eu/car-1/status')).toEqual({ kind: 'status', device: 'car-1' });
    expect(classifyTopic('afb-edge', 'other/car-1/status')).toBeUndefined();
    expect(classifyTopic('afb-edge', 'afb-edge/car-1')).toBeUndefined();
    expect(deviceFilters('afb-edge', [])).toEqual(['afb-edge/+/#']);
    expect(deviceFilters('p', ['a', 'b'])).toEqual(['p/a/#', 'p/b/#']);
  });

  it("reads the agent's status as statusPayload makes it, and the later shapes (since, ISO ts, outbox)", () => {
    const ts = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
    const now = parseStatus(statusPayload('online', 'started', { id: 'car-1', labels: { fleet: 'a' } }, '1.2.3', { ts }));
    expect(now).toEqual({ state: 'online', reason: 'started', since: ts, device: 'car-1', labels: { fleet: 'a' }, version: '1.2.3', outbox: undefined });
    // the agent's outbox recovery report (src/sinks/mqtt/README.md, "Damage")
    const recovered = { recovered: 'corrupt', moved_to: '/var/lib/afb-edge/outbox.db.corrupt-20250102T030405Z', salvaged: 10, lost: 3, at: '2025-01-02T03:04:05.678Z' };
    const withRecovery = parseStatus(statusPayload('online', 'started', { id: 'car-1', labels: {} }, '1.2.3', { ts, outbox: recovered as unknown as StatusExtras['outbox'] }));
    expect(withRecovery?.outbox?.recovery).toEqual({ reason: 'corrupt', lost: 3, salvaged: 10, movedTo: recovered.moved_to, at: ts });
    expect(parseStatus(JSON.stringify({ state: 'online', outbox: { recovered: 'wal', lost: null } }))?.outbox?.recovery).toMatchObject({ reason: 'wal', lost: null });
    expect(parseStatus(JSON.stringify({ state: 'offline', reason: 'connection lost', since: '2025-01-02T03:04:05.678Z', ts: 1 }))?.since).toBe(ts);
    expect(parseStatus(JSON.stringify({ state: 'offline', ts: '2025-01-02T03:04:05.678Z' }))?.since).toBe(ts);
    expect(parseStatus(JSON.stringify({ state: 'offline', reason: 'connection lost' }))).toMatchObject({ state: 'offline', since: undefined });
    expect(parseStatus(JSON.stringify({ state: 'online', outbox: { messages: 12, oldest_age_s: 3.5 } }))?.outbox).toEqual({ messages: 12, bytes: undefined, oldestAgeS: 3.5, detail: { messages: 12, oldest_age_s: 3.5 } });
    expect(parseStatus(JSON.stringify({ state: 'rebooting' }))?.state).toBe('unknown');
    expect(parseStatus('not json')).toBeUndefined();
    expect(parseStatus('[1]')).toBeUndefined();
  });

  it('reads times as epoch ms, epoch s or ISO 8601, and nothing else', () => {
    expect(parseTime(1_700_000_000_000)).toBe(1_700_000_000_000);
    expect(parseTime(1_700_000_000.5)).toBe(1_700_000_000_500);
    expect(parseTime('2025-01-02T03:04:05.678Z')).toBe(Date.UTC(2025, 0, 2, 3, 4, 5, 678));
    for (const bad of ['yesterday', '', null, {}, -5, Number.NaN, 'x'.repeat(100)]) expect(parseTime(bad)).toBeUndefined();
  });

  it("reads the health message as publishHealth makes it (metrics summary) and its outbox recovery report", () => {
    const health = {
      device: 'car-1', uptime_s: 42, mqtt: 'connected', binders: { vehicle: 'connected' }, links: { can0: 'open' }, ts: '2025-01-02T03:04:05.678Z',
      metrics: {
        afb_edge_outbox_messages: 7, afb_edge_outbox_bytes: 700, afb_edge_outbox_oldest_age_seconds: 1.5,
        afb_edge_dropped_total: { qos0_queue_full: 3, topic_invalid: 1 }, afb_edge_process_resident_memory_bytes: 50_000_000,
        afb_edge_nodejs_eventloop_lag_p99_seconds: 0.01,
      },
    };
    expect(parseHealth(JSON.stringify(health))).toEqual({
      ts: Date.UTC(2025, 0, 2, 3, 4, 5, 678), uptimeS: 42, mqtt: 'connected', binders: { vehicle: 'connected' }, links: { can0: 'open' },
      rssBytes: 50_000_000, outbox: { messages: 7, bytes: 700, oldestAgeS: 1.5 }, dropped: { total: 4, byReason: { qos0_queue_full: 3, topic_invalid: 1 } }, eventLoopLagS: 0.01,
    });
    // the agent's recovery report rides along; depth and age still come from the metrics
    const later = parseHealth(JSON.stringify({ ...health, ts: 1_735_787_045_678, outbox: { recovered: 'wal', lost: 1581, at: '2025-01-02T03:04:05.678Z' } }))!;
    expect(later.ts).toBe(1_735_787_045_678);
    expect(later.outbox).toMatchObject({ messages: 7, bytes: 700, oldestAgeS: 1.5, recovery: { reason: 'wal', lost: 1581, at: Date.UTC(2025, 0, 2, 3, 4, 5, 678) } });
    expect(parseHealth('{}')).toEqual({ ts: undefined, uptimeS: undefined, mqtt: undefined, binders: {}, links: {}, rssBytes: undefined, outbox: { messages: undefined, bytes: undefined, oldestAgeS: undefined }, dropped: { total: 0, byReason: {} }, eventLoopLagS: undefined });
    expect(parseHealth(JSON.stringify({ metrics: { afb_edge_dropped_total: 5 } }))?.dropped).toEqual({ total: 5, byReason: {} });
  });

  it('reads link states as the agent publishes them', () => {
    expect(parseLinkStatus(JSON.stringify({ link: 'can0', state: 'closed', reason: 'ENOENT', device: '/dev/ttyACM0', protocol: 'slcan', ts: 1_700_000_000_000 })))
      .toEqual({ state: 'closed', reason: 'ENOENT', protocol: 'slcan', device: '/dev/ttyACM0', since: 1_700_000_000_000 });
    expect(parseLinkStatus('{"link":"x"}')).toBeUndefined();
  });

  it('reads envelopes as envelopeJson makes them, raw JSON and text payloads by their topic name', () => {
    const ts = Date.UTC(2025, 0, 2, 3, 4, 5, 678);
    const env = envelopeJson({ name: 'vehicle/speed', source: 'vehicle', timestamp: ts, data: null } as never, 42, '{"value":88.5}');
    expect(parseEvent('vehicle/speed', env)).toEqual({ name: 'vehicle/speed', ts, seq: 42, source: 'vehicle', data: { value: 88.5 }, shape: 'envelope' });
    expect(parseEvent('can/VehicleSpeed', '{"id":256,"values":{"speed":12}}')).toEqual({ name: 'can/VehicleSpeed', data: { id: 256, values: { speed: 12 } }, shape: 'json' });
    expect(parseEvent('x/y', 'plain text')).toEqual({ name: 'x/y', data: 'plain text', shape: 'text' });
    // An object with an `event` field but no ts/seq is raw data, not an envelope.
    expect(parseEvent('x/y', '{"event":"a","data":1}').shape).toBe('json');
  });

  it('reads replies and builds 3.1.1 requests', () => {
    expect(parseReply('{"id":"m-1","error":null,"info":"ok","data":{"a":1}}')).toEqual({ id: 'm-1', error: null, info: 'ok', data: { a: 1 } });
    expect(parseReply('{"id":"m-2","error":"forbidden","info":"no"}')).toMatchObject({ error: 'forbidden' });
    expect(parseReply('{"data":1}')).toBeUndefined();
    expect(commandRequest('afb-edge', 'car-1', 'vehicle', 'ping', 'm-1', '{"a":1}')).toEqual({ topic: 'afb-edge/car-1/call/vehicle/ping', payload: '{"id":"m-1","args":{"a":1}}' });
  });
});
