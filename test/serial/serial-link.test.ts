/**
 * SerialLink on real ptys (socat): the test holds the ECU end and speaks
 * each protocol with the codecs; the link under test is the real one
 * (serialport's Linux binding, its reopen logic, its write queue).
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { SerialPortStream } from '@serialport/stream';
import { encodeFrame as cobsFrame, CobsDecoder } from '../../src/serial/cobs-codec.js';
import { LinkError } from '../../src/serial/link/link-protocol.js';
import { encodeLine, NdjsonDecoder } from '../../src/serial/ndjson-codec.js';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';
import { openPeer, ptyPair, recorder } from '../helpers/pty.js';
import { startSerialLink } from '../helpers/serial-link.js';
import { counter } from '../helpers/mqtt-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const startLink = (over: Parameters<typeof startSerialLink>[1]) => startSerialLink(cleanup, over);

/** Answers the slcan handshake like an adapter: CR for every command line, F with `flags` (hex). */
function slcanAdapter(port: SerialPortStream, refuse: string[] = []): { commands: string[]; flags: string } {
  const commands: string[] = [];
  const state = { commands, flags: '00' };
  let buf = '';
  port.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let i: number;
    while ((i = buf.indexOf('\r')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'F') {
        port.write(`F${state.flags}\r`);
        continue;
      }
      commands.push(line);
      if (/^[CSZOL]/.test(line)) port.write(refuse.includes(line) ? '\x07' : '\r');
      else if (/^[tTrR]/.test(line)) port.write(line[0] === 'T' || line[0] === 'R' ? 'Z\r' : 'z\r');
    }
  });
  return state;
}

describe('SerialLink slcan', () => {
  it('initialises the adapter (C, S6, Z1, O), then turns frames into events named by id or message map', async () => {
    const dir = tempDir(cleanup, 'serial');
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    const adapter = slcanAdapter(peer);
    const { link, events } = startLink({
      device: pty.device, protocol: 'slcan', slcan: { adapter: 'lawicel', bitrate: 500000 },
      messages: [{ id: 0x0cf00400, extended: true, name: 'EEC1', signals: [{ name: 'engine_speed', start_bit: 24, length: 16, scale: 0.125, unit: 'rpm' }] }],
    });
    await waitFor(() => link.isOpen, 5000, 'link open');
    expect(adapter.commands).toEqual(['C', 'S6', 'Z1', 'O']);

    peer.write('t1238112233445566778812AB\r');
    peer.write('T0CF004008FFFFFF201CFFFFFF0100\r');
    await waitFor(() => events.length === 2, 3000, 'two frames');
    expect(events[0]).toEqual(['123', { id: 0x123, extended: false, rtr: false, dlc: 8, data: '1122334455667788', timestamp: 0x12ab }]);
    expect(events[1]![0]).toBe('EEC1');
    expect(events[1]![1]).toMatchObject({ id: 0x0cf00400, extended: true, values: { engine_speed: 900 }, units: { engine_speed: 'rpm' } });
  });

  it('drops garbage and cut lines with a counted reason and keeps decoding', async () => {
    const dir = tempDir(cleanup, 'serial');
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    slcanAdapter(peer);
    const { link, events, metrics } = startLink({ device: pty.device, protocol: 'slcan', slcan: { adapter: 'lawicel', timestamps: false } });
    await waitFor(() => link.isOpen, 5000, 'link open');
    peer.write('t12Z\rxyz\rt1FF0\r\x00\xff\xfe\rt7FF1AA\r');
    await waitFor(() => events.length === 2, 3000, 'valid frames after garbage');
    expect(events.map((e) => e[0])).toEqual(['1FF', '7FF']);
    expect(await counter(metrics.serialRejected, { link: 'ecu0', reason: 'unknown' })).toBe(2);
    expect(await counter(metrics.serialRejected, { link: 'ecu0', reason: 'length-mismatch' })).toBe(1);
  });

  it('sends frames and map messages, answers a request with the frame carrying the response id', async () => {
    const dir = tempDir(cleanup, 'serial');
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    const adapter = slcanAdapter(peer);
    const { link } = startLink({
      device: pty.device, protocol: 'slcan', slcan: { adapter: 'lawicel', timestamps: false },
      messages: [{ id: 0x100, name: 'Speed', signals: [{ name: 'kmh', start_bit: 0, length: 16, scale: 0.01 }] }],
    });
    await waitFor(() => link.isOpen, 5000, 'link open');
    link.send({ id: 0x321, data: 'a1b2' });
    link.send({ message: 'Speed', values: { kmh: 50 } });
    await waitFor(() => adapter.commands.length === 6, 3000, 'two frames written');
    expect(adapter.commands.slice(4)).toEqual(['t3212A1B2', 't10028813']);

    const answer = link.request({ id: 0x7df, data: '02010d0000000000', response_id: 0x7e8 }, 2000);
    await waitFor(() => adapter.commands.length === 7, 3000, 'request written');
    expect(adapter.commands[6]).toBe('t7DF802010D0000000000');
    peer.write('t7E8803410D3200000000\r');
    await expect(answer).resolves.toMatchObject({ id: 0x7e8, data: '03410d3200000000' });

    await expect(link.request({ id: 0x7df, data: '02010c', response_id: 0x7e8 }, 100)).rejects.toMatchObject({ code: 'timeout' });
    expect(() => link.send({ id: 0x800, data: '' })).toThrow(/out of range/);
    expect(() => link.send({ message: 'Nope', values: {} })).toThrow(LinkError);
  });

  it('polls the status flags and reports each change as the event status (bus errors made visible)', async () => {
    const dir = tempDir(cleanup, 'serial');
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    const adapter = slcanAdapter(peer);
    const { link, events } = startLink({ device: pty.device, protocol: 'slcan', slcan: { adapter: 'lawicel', status_interval_ms: 30 } });
    await waitFor(() => link.isOpen, 5000, 'link open');
    await waitFor(() => events.length === 1, 3000, 'first status');
    await new Promise((r) => setTimeout(r, 150)); // several polls, same flags: no new event
    adapter.flags = 'A4'; // BUS_ERROR | ERROR_PASSIVE | ERROR_WARNING
    await waitFor(() => events.length === 2, 3000, 'changed status');
    adapter.flags = '00';
    await waitFor(() => events.length === 3, 3000, 'back to normal');
    expect(events).toEqual([
      ['status', { flags: 0, errors: [] }],
      ['status', { flags: 0xa4, errors: ['ERROR_WARNING', 'ERROR_PASSIVE', 'BUS_ERROR'] }],
      ['status', { flags: 0, errors: [] }],
    ]);
    // frames sent meanwhile are not confused with the polls' replies
    link.send({ id: 0x123, data: '01' });
    await waitFor(() => adapter.commands.includes('t123101'), 3000, 'frame written');
  });

  it('retries an adapter that refuses the bit rate, with backoff, and reports why', async () => {
    const dir = tempDir(cleanup, 'serial');
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    const adapter = slcanAdapter(peer, ['S8']);
    const { link, logger } = startLink({ device: pty.device, protocol: 'slcan', slcan: { adapter: 'lawicel', bitrate: 1000000 } });
    await waitFor(() => adapter.commands.filter((c) => c === 'S8').length >= 2, 5000, 'second attempt');
    expect(link.state).not.toBe('open');
    expect(link.info().reason).toMatch(/refused 'S8'/);
    expect(logger.matching(/<warn>.*refused 'S8'/).length).toBe(1); // logged once, not per retry
  });

  it('bounds the bytes waiting for the device: a burst past write_queue_bytes is refused as busy and counted', async () => {
    const dir = tempDir(cleanup, 'serial');
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    slcanAdapter(peer);
    const { link, metrics } = startLink({ device: pty.device, protocol: 'slcan', slcan: { adapter: 'lawicel' }, write_queue_bytes: 256 });
    await waitFor(() => link.isOpen, 5000, 'link open');
    let busy = 0;
    for (let i = 0; i < 40; i++) {
      try { link.send({ id: 0x100 + i, data: '0011223344556677' }); } catch (err) { expect((err as LinkError).code).toBe('busy'); busy++; }
    }
    // 22 bytes per frame: 11 fit in 256 bytes
    expect(busy).toBe(29);
    expect(await counter(metrics.serialWrites, { link: 'ecu0', outcome: 'busy' })).toBe(29);
  });
});

describe('SerialLink unplug and replug', () => {
  it('detects the device vanishing, fails pending requests, retries without a busy loop, and reopens when it is back', async () => {
    const dir = tempDir(cleanup, 'serial');
    let pty = await ptyPair(cleanup, dir);
    let peer = await openPeer(cleanup, pty.peer);
    const { link, states, events, metrics } = startLink({ device: pty.device, protocol: 'ndjson', reopen: { initial_delay_ms: 50, max_delay_ms: 200 } });
    await waitFor(() => link.isOpen, 5000, 'link open');
    const pending = link.request({ verb: 'get', args: {} }, 10_000).catch((e: unknown) => e);
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;

    await pty.unplug();
    expect(await pending).toMatchObject({ code: 'disconnected' });
    await waitFor(() => link.state === 'waiting', 3000, 'link waiting');
    expect(() => link.send({ verb: 'x' })).toThrow(/disconnected|waiting/);
    const before = await counter(metrics.reconnects, { kind: 'serial', name: 'ecu0' });
    await new Promise((r) => setTimeout(r, 1000));
    const attempts = (await counter(metrics.reconnects, { kind: 'serial', name: 'ecu0' })) - before;
    // backoff capped at 200 ms (drawn in 100..200): at most ~10 attempts a second, never a spin
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThanOrEqual(12);

    // the test's own end of the old pair is released too, so descriptors can be compared
    await new Promise<void>((r) => (peer.isOpen ? peer.close(() => r()) : r()));
    pty = await ptyPair(cleanup, dir);
    peer = await openPeer(cleanup, pty.peer);
    await waitFor(() => link.isOpen, 5000, 'link reopened');
    peer.write(encodeLine({ event: 'back', data: 1 }));
    await waitFor(() => events.some((e) => e[0] === 'back'), 3000, 'event after replug');
    expect(states).toContain('waiting');
    expect(states.at(-1)).toBe('open');
    expect(link.info().opens).toBe(2);
    // the lost port's descriptor was released (the new one replaces it)
    expect(fs.readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(fdsBefore);
  });
});

describe('SerialLink JSON protocols', () => {
  it('ndjson: events, requests with correlated replies (out of order), ECU errors, late replies counted', async () => {
    const dir = tempDir(cleanup, 'serial');
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    const got = recorder(peer);
    const { link, events, metrics } = startLink({ device: pty.device, protocol: 'ndjson' });
    await waitFor(() => link.isOpen, 5000, 'link open');
    const a = link.request({ verb: 'get', args: { key: 'fan' } }, 3000);
    const b = link.request({ verb: 'set', args: { fan: 2 } }, 3000).catch((e: unknown) => e);
    await waitFor(() => got.text().split('\n').length === 3, 3000, 'two requests');
    const reqs = new NdjsonDecoder().push(got.bytes()) as Array<{ id: number; verb: string }>;
    expect(reqs.map((r) => r.verb)).toEqual(['get', 'set']);
    peer.write(encodeLine({ id: reqs[1]!.id, error: 'read-only' }));
    peer.write(encodeLine({ id: reqs[0]!.id, result: { fan: 3 } }));
    peer.write(encodeLine({ id: 999, result: 'late' }));
    peer.write('{"event":"temperature","data":{"celsius":21.5}}\r\n["not","a","message"]\n{bad json\n');
    await expect(a).resolves.toEqual({ fan: 3 });
    expect(await b).toMatchObject({ code: 'ecu-error', message: 'read-only' });
    await waitFor(() => events.length === 1, 3000, 'event');
    expect(events[0]).toEqual(['temperature', { celsius: 21.5 }]);
    await waitFor(async () => (await counter(metrics.serialRejected, { link: 'ecu0', reason: 'bad-json' })) === 1, 3000, 'bad json counted');
    expect(await counter(metrics.serialRejected, { link: 'ecu0', reason: 'unexpected-message' })).toBe(1);
    expect(await counter(metrics.serialRejected, { link: 'ecu0', reason: 'late-reply' })).toBe(1);
    link.sendRouted({ event: 'hello/speed', data: 42 });
    link.send({ verb: 'reset', args: null });
    await waitFor(() => got.text().includes('reset'), 3000, 'one-way command');
    expect(got.text()).toContain('{"event":"hello/speed","data":42}\n{"verb":"reset","args":null}\n');
  });

  it('cobs crc32 json: frames with a bad CRC are dropped and counted; requests bounded by max_pending_requests', async () => {
    const dir = tempDir(cleanup, 'serial');
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    const got = recorder(peer);
    const { link, events, metrics } = startLink({ device: pty.device, protocol: 'cobs', cobs: { crc: 'crc32' }, max_pending_requests: 2 });
    await waitFor(() => link.isOpen, 5000, 'link open');
    const good = cobsFrame(Buffer.from('{"event":"counter","data":{"n":1}}'), { crc: 'crc32' });
    const bad = Buffer.from(good);
    bad[3] = bad[3]! ^ 0x01;
    // garbage ended by a 0x00 (a resync point), as after line noise
    peer.write(Buffer.concat([bad, Buffer.from([0x41, 0x42, 0x00]), good]));
    await waitFor(() => events.length === 1, 3000, 'good frame');
    expect(events[0]).toEqual(['counter', { n: 1 }]);
    expect(await counter(metrics.serialRejected, { link: 'ecu0', reason: 'crc-mismatch' })).toBeGreaterThanOrEqual(1);

    const r1 = link.request({ verb: 'a' }, 2000);
    const r2 = link.request({ verb: 'b' }, 2000).catch((e: unknown) => e);
    await expect(link.request({ verb: 'c' }, 2000)).rejects.toThrow(/2 requests already await/);
    await waitFor(() => new CobsDecoder({ crc: 'crc32' }).push(got.bytes()).length === 2, 3000, 'two framed requests');
    const [q1] = new CobsDecoder({ crc: 'crc32' }).push(got.bytes()).map((p) => JSON.parse(p.toString()) as { id: number });
    peer.write(cobsFrame(Buffer.from(JSON.stringify({ id: q1!.id, result: 'ok' })), { crc: 'crc32' }));
    await expect(r1).resolves.toBe('ok');
    expect(await r2).toMatchObject({ code: 'timeout' });
  });

  it('cobs raw: payloads as hex frames, sends from hex, requests not supported', async () => {
    const dir = tempDir(cleanup, 'serial');
    const pty = await ptyPair(cleanup, dir);
    const peer = await openPeer(cleanup, pty.peer);
    const got = recorder(peer);
    const { link, events } = startLink({ device: pty.device, protocol: 'cobs', cobs: { payload: 'raw' } });
    await waitFor(() => link.isOpen, 5000, 'link open');
    peer.write(cobsFrame(Buffer.from([0, 1, 2, 0xff])));
    await waitFor(() => events.length === 1, 3000, 'raw frame');
    expect(events[0]).toEqual(['frame', { data: '000102ff' }]);
    link.send({ data: '00ff' });
    await waitFor(() => got.bytes().length > 0, 3000, 'raw send');
    expect(new CobsDecoder().push(got.bytes()).map((p) => Buffer.from(p).toString('hex'))).toEqual(['00ff']);
    await expect(link.request({ data: '00' })).rejects.toMatchObject({ code: 'not-supported' });
  });
});
