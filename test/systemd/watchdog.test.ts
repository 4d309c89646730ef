/**
 * The watchdog rule: WATCHDOG=1 at half of WATCHDOG_USEC, to a real
 * datagram receiver, withheld while the event loop is blocked or the MQTT
 * pipeline is stuck (real AgentMetrics, as the sink updates them), resumed
 * when healthy again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AgentMetrics } from '../../src/health/metrics.js';
import { SystemdNotifier } from '../../src/systemd/notify.js';
import { pipelineCheck } from '../../src/systemd/service.js';
import { Watchdog, watchdogUsecFromEnv } from '../../src/systemd/watchdog.js';
import { createLogger } from '../../src/util/log.js';
import { Cleanup, uniqueName } from '../helpers/net-helpers.js';
import { NotifyListener } from './notify-listener.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setup(intervalUs: number, extra: { check?: () => string | undefined | Promise<string | undefined>; lagBoundMs?: number } = {}) {
  const l = await NotifyListener.start('@' + uniqueName('wd'));
  cleanup.add(() => l.close());
  const lines: string[] = [];
  const notifier = new SystemdNotifier({ env: { NOTIFY_SOCKET: l.address } });
  const wd = new Watchdog({ notifier, intervalUs, logger: createLogger('debug', (x) => lines.push(x)), ...extra });
  cleanup.add(() => wd.stop());
  return { l, wd, lines, pings: () => l.with('WATCHDOG', '1') };
}

describe('watchdogUsecFromEnv', () => {
  it('applies WATCHDOG_USEC when WATCHDOG_PID is ours or unset, and removes both from the environment', () => {
    const env: NodeJS.ProcessEnv = { WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid), KEEP: '1' };
    expect(watchdogUsecFromEnv(env)).toBe(30_000_000);
    expect(env).toEqual({ KEEP: '1' });
    expect(watchdogUsecFromEnv({ WATCHDOG_USEC: '500000' })).toBe(500_000);
  });

  it('ignores a watchdog meant for another process, or garbage', () => {
    expect(watchdogUsecFromEnv({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid + 1) })).toBeUndefined();
    for (const v of ['', '0', '-5', '1e6', '12abc', '99999999999999999999']) expect(watchdogUsecFromEnv({ WATCHDOG_USEC: v }), v).toBeUndefined();
    expect(watchdogUsecFromEnv({})).toBeUndefined();
    const env: NodeJS.ProcessEnv = { WATCHDOG_USEC: '1000', WATCHDOG_PID: '1' };
    watchdogUsecFromEnv(env, process.pid, false);
    expect(env.WATCHDOG_USEC).toBe('1000');
  });
});

describe('Watchdog', () => {
  it('pings at half the interval while healthy', async () => {
    const { l, wd, pings } = await setup(200_000, { lagBoundMs: 5000 }); // 200 ms: a ping every 100 ms (lag bound out of the way of a loaded host)
    wd.start();
    await sleep(1050);
    wd.stop();
    const n = pings().length;
    expect(n).toBeGreaterThanOrEqual(8); // ~11 with the first one at start
    expect(n).toBeLessThanOrEqual(13);
    expect(wd.pings).toBe(n);
    // spacing: half the interval (the median, so that one tick delayed by a loaded machine does not count)
    const ts = pings().map((m) => Number(m.t / 1_000_000n));
    const gaps = ts.slice(1).map((t, i) => t - ts[i]!).sort((x, y) => x - y);
    const median = gaps[Math.floor(gaps.length / 2)]!;
    expect(median).toBeGreaterThanOrEqual(95);
    expect(median).toBeLessThan(140);
    expect(l.messages.every((m) => m.pid === process.pid)).toBe(true);
    // stopped means stopped
    const before = l.messages.length;
    await sleep(250);
    expect(l.messages.length).toBe(before);
  });

  it('withholds the ping after the event loop was blocked past the bound, then resumes', async () => {
    const { wd, lines, pings } = await setup(400_000, { lagBoundMs: 100 }); // ping every 200 ms
    wd.start();
    await sleep(450);
    const before = pings().length;
    const busyUntil = performance.now() + 300;
    while (performance.now() < busyUntil) { /* a blocked event loop, for real */ }
    await sleep(100); // the late tick runs now and must not ping
    expect(wd.withheld).toBeGreaterThanOrEqual(1);
    expect(wd.unhealthy).toMatch(/^event loop blocked for \d+ ms \(bound 100 ms\)$/);
    expect(lines.some((x) => x.startsWith('<warn> systemd: watchdog ping withheld: event loop blocked'))).toBe(true);
    await sleep(500);
    expect(wd.unhealthy).toBeUndefined();
    expect(pings().length).toBeGreaterThan(before);
    expect(lines.some((x) => x.startsWith('<info> systemd: healthy again'))).toBe(true);
  });

  it('withholds pings while the check reports a reason (stuck pipeline), counting them', async () => {
    let reason: string | undefined = 'MQTT publishing stuck';
    // lag bound far above what a loaded host shows: this test is about the check's reason
    const { wd, pings } = await setup(100_000, { check: async () => reason, lagBoundMs: 5000 }); // every 50 ms
    wd.start();
    await sleep(300);
    expect(pings()).toHaveLength(0);
    expect(wd.withheld).toBeGreaterThanOrEqual(4);
    expect(wd.unhealthy).toBe('MQTT publishing stuck');
    reason = undefined;
    await sleep(200);
    expect(pings().length).toBeGreaterThanOrEqual(2);
  });

  it('a check that throws counts as unhealthy, not as a crash', async () => {
    const { wd, pings } = await setup(100_000, { check: () => { throw new Error('boom'); }, lagBoundMs: 5000 });
    wd.start();
    await sleep(150);
    expect(pings()).toHaveLength(0);
    expect(wd.unhealthy).toBe('health check failed: boom');
  });
});

describe('pipelineCheck (the MQTT side of the rule)', () => {
  it('is stuck only when connected, with messages waiting, and nothing acknowledged for the bound', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    let now = 1_000_000;
    const check = pipelineCheck(m, 60_000, () => now);
    // disconnected with a full outbox: retrying, not stuck, however long
    m.mqttConnected.set(0);
    m.outboxDepth.set(500);
    expect(await check()).toBeUndefined();
    now += 3_600_000;
    expect(await check()).toBeUndefined();
    // connected, empty outbox: idle, not stuck
    m.mqttConnected.set(1);
    m.outboxDepth.set(0);
    now += 3_600_000;
    expect(await check()).toBeUndefined();
    // connected, messages waiting, acks flowing: fine
    m.outboxDepth.set(10);
    m.published.inc({ qos: '1' });
    expect(await check()).toBeUndefined();
    now += 59_000;
    m.published.inc({ qos: '2' });
    expect(await check()).toBeUndefined();
    // QoS 0 traffic is no proof that the outbox drains
    now += 30_000;
    m.published.inc({ qos: '0' }, 100);
    expect(await check()).toBeUndefined();
    now += 30_001;
    expect(await check()).toMatch(/^MQTT publishing stuck: connected, 10 message\(s\) in the outbox, none delivered for 60 s$/);
    // one acknowledgement and it is healthy again
    m.published.inc({ qos: '1' });
    expect(await check()).toBeUndefined();
    // messages an MQTT 5 broker refuses leave the outbox too: that is progress, not a stuck queue
    now += 60_000;
    m.dropped.inc({ reason: 'broker_rejected' });
    expect(await check()).toBeUndefined();
    now += 60_000;
    m.dropped.inc({ reason: 'qos0_queue_full' });
    expect(await check()).toMatch(/^MQTT publishing stuck/);
  });
});
