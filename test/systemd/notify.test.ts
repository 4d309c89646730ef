/**
 * sd_notify through the C addon, against a real datagram receiver
 * (python3, bound as systemd binds its notify socket): both address forms,
 * the exact length of abstract addresses, no NOTIFY_SOCKET, unreachable and
 * stalled receivers (counted and logged, never thrown, never blocking).
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { unixAddon } from '../../src/wsapi/native.js';
import { SystemdNotifier, formatState } from '../../src/systemd/notify.js';
import { createLogger } from '../../src/util/log.js';
import { Cleanup, tempDir, uniqueName } from '../helpers/net-helpers.js';
import { NotifyListener } from './notify-listener.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function listen(address: string, mode: 'read' | 'stall' | 'padded' = 'read'): Promise<NotifyListener> {
  const l = await NotifyListener.start(address, mode);
  cleanup.add(() => l.close());
  return l;
}

function capture() {
  const lines: string[] = [];
  return { lines, logger: createLogger('debug', (l) => lines.push(l)) };
}

const addon = unixAddon();

describe('sendDatagram (C addon)', () => {
  it('is built into the addon', () => {
    expect(addon, 'native addon not built').not.toBeNull();
    expect(typeof addon!.sendDatagram).toBe('function');
  });

  it('delivers one datagram to a socket file, bytes intact, with our pid as credentials', async () => {
    const dir = tempDir(cleanup, 'notify');
    const l = await listen(path.join(dir, 'notify'));
    const payload = Buffer.from('READY=1\nSTATUS=caf\u00e9 \u2713\n');
    expect(addon!.sendDatagram!(l.address, payload)).toBe(payload.length);
    const m = await l.next(() => true);
    expect(m.data).toBe(payload.toString());
    expect(m.pid).toBe(process.pid);
  });

  it('delivers to an abstract name ("@...") bound with its exact length, as systemd binds it', async () => {
    const l = await listen('@' + uniqueName('notify'));
    expect(addon!.sendDatagram!(l.address, Buffer.from('WATCHDOG=1\n'))).toBe(11);
    expect((await l.next(() => true)).data).toBe('WATCHDOG=1\n');
  });

  it('does not reach the NUL-padded form of the same name: the address length is exact', async () => {
    const l = await listen('@' + uniqueName('padded'), 'padded');
    expect(() => addon!.sendDatagram!(l.address, Buffer.from('READY=1\n'))).toThrow(expect.objectContaining({ code: 'ECONNREFUSED' }));
    await new Promise((r) => setTimeout(r, 100));
    expect(l.messages).toEqual([]);
  });

  it('reaches a path of exactly 108 bytes (no room for the NUL: the kernel accepts it)', async () => {
    const dir = tempDir(cleanup, 'notify');
    let sub = dir;
    while (sub.length < 108 - 12) sub = path.join(sub, 'd'.repeat(Math.min(20, 108 - 12 - sub.length)));
    fs.mkdirSync(sub, { recursive: true });
    const file = path.join(sub, 'n'.repeat(108 - sub.length - 1));
    expect(Buffer.byteLength(file)).toBe(108);
    const l = await listen(file);
    addon!.sendDatagram!(file, Buffer.from('READY=1\n'));
    expect((await l.next(() => true)).data).toBe('READY=1\n');
    expect(() => addon!.sendDatagram!(file + 'x', Buffer.from('x'))).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });

  it('refuses what NOTIFY_SOCKET cannot mean, with errno names as codes', async () => {
    const dir = tempDir(cleanup, 'notify');
    const send = (a: string) => () => addon!.sendDatagram!(a, Buffer.from('x'));
    expect(send('relative/path')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(send('@')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(send('@a\u0000b')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(send('@' + 'a'.repeat(108))).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
    // too long in bytes, multibyte: refused, not cut at a character boundary into another name
    expect(send('@a' + '\u20ac'.repeat(40))).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
    expect(send(path.join(dir, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    // a stream socket at that path: the wrong kind of peer
    const stream = net.createServer();
    await new Promise<void>((r) => stream.listen(path.join(dir, 'stream'), r));
    cleanup.add(() => new Promise<void>((r) => stream.close(() => r())));
    expect(send(path.join(dir, 'stream'))).toThrow(expect.objectContaining({ code: 'EPROTOTYPE' }));
    expect(() => addon!.sendDatagram!('/x', 'text' as unknown as Buffer)).toThrow(TypeError);
  });
});

describe('SystemdNotifier', () => {
  it('without NOTIFY_SOCKET does nothing, counts nothing, throws nothing', () => {
    const { lines, logger } = capture();
    const n = new SystemdNotifier({ env: {}, logger });
    expect(n.enabled).toBe(false);
    expect(n.send({ READY: 1 })).toBe(false);
    expect(n.send('STATUS=x')).toBe(false);
    expect([n.sent, n.failures, lines]).toEqual([0, 0, []]);
  });

  it('reads NOTIFY_SOCKET once and removes it from the environment, so children cannot notify for us', async () => {
    const l = await listen('@' + uniqueName('env'));
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: l.address, OTHER: 'kept' };
    const n = new SystemdNotifier({ env });
    expect(env).toEqual({ OTHER: 'kept' });
    expect(n.send({ READY: 1, STATUS: 'mqtt connected, 2/2 binders, outbox 0' })).toBe(true);
    const m = await l.next(() => true);
    expect(m.data).toBe('READY=1\nSTATUS=mqtt connected, 2/2 binders, outbox 0\n');
    expect(n.sent).toBe(1);
    const kept: NodeJS.ProcessEnv = { NOTIFY_SOCKET: l.address };
    new SystemdNotifier({ env: kept, unsetEnvironment: false });
    expect(kept.NOTIFY_SOCKET).toBe(l.address);
  });

  it('works with a socket-file NOTIFY_SOCKET too', async () => {
    const l = await listen(path.join(tempDir(cleanup, 'notify'), 'notify'));
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: l.address } });
    n.send({ STOPPING: 1 });
    expect((await l.next(() => true)).fields).toEqual({ STOPPING: '1' });
  });

  it('an unreachable NOTIFY_SOCKET is a counted error, logged once per kind, never thrown', () => {
    for (const address of [path.join('/nonexistent', uniqueName('x')), '@' + uniqueName('nobody')]) {
      const { lines, logger } = capture();
      const codes: string[] = [];
      const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: address }, logger });
      n.onFailure = (c) => codes.push(c);
      expect(n.send({ READY: 1 })).toBe(false);
      expect(n.send({ WATCHDOG: 1 })).toBe(false);
      expect(n.send({ WATCHDOG: 1 })).toBe(false);
      const code = address.startsWith('@') ? 'ECONNREFUSED' : 'ENOENT';
      expect(n.failures).toBe(3);
      expect(codes).toEqual([code, code, code]);
      expect(n.lastError).toMatch(new RegExp(`^${code}: `));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`<error> systemd: cannot notify ${address}`);
      expect(lines[0]).toContain(code);
    }
  });

  it('an unsupported address kind (vsock:, systemd >= 254 in VMs) is reported, not thrown', () => {
    const { lines, logger } = capture();
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: 'vsock:2:9999' }, logger });
    expect(n.send({ READY: 1 })).toBe(false);
    expect(n.failures).toBe(1);
    expect(lines[0]).toContain('EAFNOSUPPORT');
  });

  it('a receiver that stopped reading never blocks the event loop: EAGAIN, retried, then counted', async () => {
    const l = await listen('@' + uniqueName('stall'), 'stall');
    const { lines, logger } = capture();
    const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: l.address }, logger, retries: 2, retryDelayMs: 5 });
    const t0 = performance.now();
    let refused = 0;
    // the receiver's queue holds net.unix.max_dgram_qlen datagrams (10 by default): send well past it
    for (let i = 0; i < 64; i++) if (!n.send({ STATUS: `n=${i}` })) refused++;
    expect(performance.now() - t0).toBeLessThan(500);
    expect(refused).toBeGreaterThan(0);
    expect(n.sent + refused).toBe(64);
    // the retries (5 then 10 ms) fail too, then each refused datagram counts once
    await new Promise((r) => setTimeout(r, 200));
    expect(n.failures).toBe(refused);
    expect(lines.filter((x) => x.includes('EAGAIN'))).toHaveLength(1);
    n.close();
  });

  it('keeps each value on one line: a newline cannot inject another assignment', () => {
    expect(formatState({ STATUS: 'binder evil\nREADY=1', X: 2 })).toBe('STATUS=binder evil READY=1\nX=2\n');
    expect(formatState('READY=1')).toBe('READY=1\n');
    expect(formatState({ MONOTONIC_USEC: 123n })).toBe('MONOTONIC_USEC=123\n');
  });
});
