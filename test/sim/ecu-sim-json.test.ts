/**
 * `afb-edge ecu-sim --protocol cobs|ndjson` on a real pty pair, the test
 * being the agent's side: JSON requests and replies, periodic events,
 * received messages on stdout, --noise, and cobs with raw payloads. Framing
 * and parsing on the test side are the project's codecs.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CobsDecoder, decodePayload, encodeFrame, type CrcKind } from '../../src/serial/cobs-codec.js';
import { NdjsonDecoder, encodeLine } from '../../src/serial/ndjson-codec.js';
import { ensureBuilt } from '../helpers/cli.js';
import { Cleanup, waitFor } from '../helpers/net-helpers.js';
import { Received, openPort, ptyPair, sleep, startSim, stopAndReadStats } from './ecu-sim-harness.js';

beforeAll(() => ensureBuilt());

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

type Json = Record<string, unknown>;

interface Variant {
  name: string;
  args: string[];
  /** A decoder for what the sim sends, plus its rejection counts. */
  decoder(): { decode(chunk: Buffer): Json[]; rejected(): Record<string, number> };
  encode(message: unknown): Buffer;
  /** Input the sim must reject (and count) without losing what follows. */
  corrupt: Buffer;
  corruptReason: string;
}

function cobsVariant(crc: CrcKind): Variant {
  return {
    name: `cobs ${crc}`,
    args: ['--protocol', 'cobs', '--crc', crc],
    decoder() {
      const d = new CobsDecoder({ crc });
      let badJson = 0;
      return {
        decode: (chunk) => d.push(chunk).flatMap((p) => {
          const r = decodePayload(p, 'json');
          if (!r.ok) badJson++;
          return r.ok ? [r.value as Json] : [];
        }),
        rejected: () => ({ ...d.stats.rejected, 'bad-json': badJson }),
      };
    },
    encode: (m) => encodeFrame(Buffer.from(JSON.stringify(m)), { crc }),
    // A good frame with its first payload byte changed after the CRC was computed ('{' → 'z';
    // byte 0 is the COBS code): still valid COBS, only the CRC fails.
    corrupt: (() => {
      const f = encodeFrame(Buffer.from('{"id":99,"verb":"ping"}'), { crc });
      f[1] = 0x7a;
      return f;
    })(),
    corruptReason: 'crc-mismatch',
  };
}

const ndjsonVariant: Variant = {
  name: 'ndjson',
  args: ['--protocol', 'ndjson'],
  decoder() {
    const d = new NdjsonDecoder();
    return { decode: (chunk) => d.push(chunk) as Json[], rejected: () => ({ ...d.stats.rejected }) };
  },
  encode: (m) => encodeLine(m),
  corrupt: Buffer.from('{"id":99,"verb":\n'),
  corruptReason: 'bad-json',
};

async function setup(v: Variant, extra: string[]) {
  const pair = await ptyPair(cleanup);
  const port = await openPort(cleanup, pair.peer);
  const decoder = v.decoder();
  const rx = new Received(port, (chunk) => decoder.decode(chunk));
  const sim = await startSim(cleanup, [...v.args, '--device', pair.device, ...extra]);
  return { port, rx, decoder, sim, send: (m: unknown) => port.write(v.encode(m)) };
}

const isEvent = (m: Json, name: string): boolean => m.event === name;

describe.each([cobsVariant('crc16'), cobsVariant('crc32'), ndjsonVariant])('ecu-sim $name', (v) => {
  it('answers ping, echo, get, set and unknown verbs; one-way commands get no reply; prints what it receives', async () => {
    const { rx, sim, send, port } = await setup(v, ['--rate', '20']);
    const sent: unknown[] = [
      { id: 1, verb: 'ping' },
      { id: 2, verb: 'echo', args: { a: [1, 'é', null], b: { c: true } } },
      { id: 3, verb: 'get', args: { key: 'fan' } },
      { verb: 'set', args: { fan: 5 } }, // one-way: done, not answered
      { id: 4, verb: 'get', args: { key: 'fan' } },
      { id: 5, verb: 'set', args: { mode: 'eco', level: 2 } },
      { id: 6, verb: 'get', args: { key: 'level' } },
      { id: 7, verb: 'get', args: { key: 'nope' } },
      { id: 8, verb: 'reboot', args: {} },
      { event: 'hello/speed', data: 42 }, // an event forwarded by the agent: printed, not answered
    ];
    for (const m of sent.slice(0, 5)) send(m);
    port.write(v.corrupt); // rejected and counted by the sim; what follows still gets through
    for (const m of sent.slice(5)) send(m);

    const replies = (): Json[] => rx.values.filter((m) => 'id' in m);
    await rx.until(() => replies().length >= 8, 3000, 'eight replies');
    await sleep(100); // no reply may follow (the one-way set, the forwarded event)
    expect(replies()).toEqual([
      { id: 1, result: 'pong' },
      { id: 2, result: { a: [1, 'é', null], b: { c: true } } },
      { id: 3, result: { fan: 3 } },
      { id: 4, result: { fan: 5 } },
      { id: 5, result: { mode: 'eco', level: 2 } },
      { id: 6, result: { level: 2 } },
      { id: 7, error: "unknown key 'nope'" },
      { id: 8, error: "unknown verb 'reboot'" },
    ]);

    await waitFor(() => sim.stdout.length >= sent.length, 3000, 'every received message on stdout');
    expect(sim.stdout).toEqual(sent.map((m) => ({ rx: m })));
    // Events kept flowing meanwhile.
    expect(rx.values.some((m) => isEvent(m, 'counter'))).toBe(true);

    const { code, stats } = await stopAndReadStats(sim);
    expect(code).toBe(0);
    expect(stats.received).toBe(sent.length);
    expect(stats.rejected[v.corruptReason]).toBe(1);
  });

  it('sends --count counter events 0..N-1 in order with temperatures between; --noise bursts are rejected and counted, no event lost', async () => {
    const { rx, decoder } = await setup(v, ['--rate', '1000', '--count', '200', '--noise', '5']);
    await rx.until(() => rx.items.length >= 399, 5000, '399 events');
    await sleep(150); // nothing may follow the last counter
    const events = rx.values;
    expect(events).toHaveLength(399);
    expect(events.filter((m) => isEvent(m, 'counter')).map((m) => m.data)).toEqual(Array.from({ length: 200 }, (_, n) => ({ n })));
    const temps = events.filter((m) => isEvent(m, 'temperature'));
    expect(temps).toHaveLength(199);
    for (const t of temps) {
      expect(Object.keys(t).sort()).toEqual(['data', 'event']);
      expect((t.data as { celsius: number }).celsius).toSatisfy((c: number) => c >= 20 && c <= 90);
    }
    expect(events[0]).toEqual({ event: 'counter', data: { n: 0 } });
    expect(events[1]!.event).toBe('temperature');

    // 399 frames, a burst after every 5th: 79 bursts, each exactly one rejection.
    const rejected = decoder.rejected();
    expect(Object.values(rejected).reduce((a, b) => a + b, 0)).toBe(79);
    if (v.name.startsWith('cobs')) {
      expect(rejected['cobs-invalid']).toBeGreaterThan(0);
      expect(rejected['crc-mismatch']).toBeGreaterThan(0);
    } else {
      expect(rejected['bad-json']).toBe(79);
    }
  });
});

describe('ecu-sim cobs: the CRC is the one asked for', () => {
  it('a receiver expecting the other CRC rejects every frame', async () => {
    const pair = await ptyPair(cleanup);
    const port = await openPort(cleanup, pair.peer);
    // The sim on crc16, the wrong receiver on crc32: a chance match is 2^-32 per frame (the other way round, 2^-16).
    const right = new CobsDecoder({ crc: 'crc16' });
    const wrong = new CobsDecoder({ crc: 'crc32' });
    const rx = new Received(port, (chunk) => { wrong.push(chunk); return right.push(chunk); });
    await startSim(cleanup, ['--protocol', 'cobs', '--crc', 'crc16', '--device', pair.device, '--rate', '1000', '--count', '50']);
    await rx.until(() => rx.items.length >= 99, 5000, '99 frames');
    expect(wrong.stats.frames).toBe(0);
    expect(wrong.stats.rejected['crc-mismatch']).toBe(99);
  });
});

describe('ecu-sim cobs --payload raw', () => {
  it('sends typed raw payloads (counter, temperature) and prints received payloads as hex', async () => {
    const pair = await ptyPair(cleanup);
    const port = await openPort(cleanup, pair.peer);
    const decoder = new CobsDecoder({ crc: 'crc16' });
    const rx = new Received(port, (chunk) => decoder.push(chunk));
    const sim = await startSim(cleanup, ['--protocol', 'cobs', '--payload', 'raw', '--device', pair.device, '--rate', '1000', '--count', '100']);
    await rx.until(() => rx.items.length >= 199, 5000, '199 payloads');

    const counters = rx.values.filter((p) => p[0] === 0x01);
    expect(counters.every((p) => p.length === 5)).toBe(true);
    expect(counters.map((p) => p.readUInt32LE(1))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const temps = rx.values.filter((p) => p[0] === 0x02);
    expect(temps).toHaveLength(99);
    for (const t of temps) expect(t.readInt16LE(1) / 100).toSatisfy((c: number) => c >= 20 && c <= 90);

    // Zero bytes and a JSON-looking payload are just bytes here: printed as hex, never answered.
    port.write(encodeFrame(Buffer.from([0x00, 0x01, 0xff, 0x00])));
    port.write(encodeFrame(Buffer.from('{"id":1,"verb":"ping"}')));
    await waitFor(() => sim.stdout.length >= 2, 3000, 'two rx lines');
    expect(sim.stdout).toEqual([
      { rx: { data: '0001ff00' } },
      { rx: { data: Buffer.from('{"id":1,"verb":"ping"}').toString('hex') } },
    ]);
    await sleep(100);
    expect(rx.items).toHaveLength(199);
  });
});
