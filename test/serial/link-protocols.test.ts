/**
 * The link protocols without a port: whatever an ECU sends (random bytes,
 * valid frames mixed with noise, JSON of every shape), push() never throws,
 * every event it reports is well formed, and the bytes held stay bounded.
 * The ports themselves are tested on ptys (serial-link.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFrame as cobsFrame } from '../../src/serial/cobs-codec.js';
import { LinkError, type LinkIO } from '../../src/serial/link/link-protocol.js';
import { createProtocol } from '../../src/serial/link/serial-link.js';
import { canIdName } from '../../src/serial/link/slcan-protocol.js';
import { encodeLine } from '../../src/serial/ndjson-codec.js';
import { encodeFrame as canFrame } from '../../src/serial/slcan-codec.js';
import { splitAt } from '../helpers/chunks.js';
import { fcSeed } from '../helpers/net-helpers.js';
import { linkConfig } from '../helpers/serial-config.js';

function harness(over: Parameters<typeof linkConfig>[0]) {
  const events: Array<[string, unknown]> = [];
  const rejected: string[] = [];
  const written: Buffer[] = [];
  const reopens: string[] = [];
  const io: LinkIO = {
    write: (b) => { written.push(b); },
    event: (name, data) => events.push([name, data]),
    rejected: (reason) => rejected.push(reason),
    reopen: (reason) => reopens.push(reason),
  };
  return { protocol: createProtocol(linkConfig(over), io), events, rejected, written, reopens };
}

const noise = fc.uint8Array({ maxLength: 300 });
const chunking = fc.array(fc.nat(), { maxLength: 40 });

function feed(push: (b: Buffer) => void, bytes: Buffer, cuts: number[]): void {
  for (const part of splitAt(bytes, cuts)) push(part);
}

describe('link protocols: hostile input', () => {
  it('slcan: valid frames between random noise are never lost beyond the line the noise touched, and push never throws', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ id: fc.integer({ min: 0, max: 0x7ff }), data: fc.uint8Array({ maxLength: 8 }) }), { maxLength: 20 }),
      fc.array(noise, { maxLength: 20 }),
      chunking,
      (frames, noises, cuts) => {
        const h = harness({ device: '/dev/null', protocol: 'slcan', slcan: { timestamps: false } });
        const parts: Buffer[] = [];
        frames.forEach((f, i) => {
          // noise, then a CR and a BEL-free resync point, then the frame: at most the noise's own line is lost
          const n = Buffer.from(noises[i] ?? []).filter((b) => b !== 0x07);
          parts.push(Buffer.from(n), Buffer.from('\r'), canFrame({ id: f.id, data: f.data }));
        });
        feed((b) => h.protocol.push(b), Buffer.concat(parts), cuts);
        const got = h.events.map(([name, d]) => [name, (d as { data: string }).data]);
        for (const f of frames) expect(got).toContainEqual([canIdName(f.id, false), Buffer.from(f.data).toString('hex')]);
      },
    ), { seed: fcSeed(), numRuns: 200 });
  });

  for (const protocol of ['ndjson', 'cobs'] as const) {
    it(`${protocol}: random bytes and JSON of any shape never throw; only events and replies get through`, () => {
      fc.assert(fc.property(fc.array(fc.oneof(noise.map((b) => ({ raw: b })), fc.jsonValue().map((v) => ({ json: v }))), { maxLength: 30 }), chunking, (items, cuts) => {
        const h = harness({ device: '/dev/null', protocol, max_pending_requests: 4 });
        const bytes = Buffer.concat(items.map((it) => {
          if ('raw' in it) return Buffer.from(it.raw);
          return protocol === 'ndjson' ? encodeLine(it.json) : cobsFrame(Buffer.from(JSON.stringify(it.json)));
        }));
        feed((b) => h.protocol.push(b), bytes, cuts);
        for (const [name] of h.events) expect(typeof name === 'string' && name.length > 0).toBe(true);
      }), { seed: fcSeed(), numRuns: 200 });
    });
  }

  it('slcan: a BEL is a refusal only while a frame or poll waits for its answer; a stray one is unexpected-bell', async () => {
    const h = harness({ device: '/dev/null', protocol: 'slcan', slcan: { adapter: 'lawicel', timestamps: false } });
    const p = h.protocol;
    const setup = p.handshake(1000);
    for (let i = 0; i < 4; i++) { // C, S6, Z0, O, each awaited before the next is written
      await new Promise((r) => setImmediate(r));
      p.push(Buffer.from('\r'));
    }
    await setup;
    expect(Buffer.concat(h.written).toString('latin1')).toBe('C\rS6\rZ0\rO\r');
    p.push(Buffer.from('\x07\x07\x07')); // nothing sent yet: line noise
    expect(h.rejected).toEqual(['unexpected-bell', 'unexpected-bell', 'unexpected-bell']);
    p.sent!(p.encodeSend({ id: 0x100, data: '01' }));
    p.sent!(p.encodeSend({ id: 0x101, data: '02' }));
    p.push(Buffer.from('z\r\x07\x07')); // one ack, one refusal, one stray
    expect(h.rejected.slice(3)).toEqual(['tx-refused', 'unexpected-bell']);
    expect(p.stats()).toMatchObject({ tx_acks: 1, tx_refused: 1, unexpected_bells: 4 });
    // after a reset nothing is owed any more
    p.sent!(p.encodeSend({ id: 0x102 }));
    p.reset('port closed');
    p.push(Buffer.from('\x07'));
    expect(h.rejected.at(-1)).toBe('unexpected-bell');
  });

  it('slcan: an adapter without acknowledgements (CANable) never owes an answer: its setup is written at once, a BEL is unexpected, a CR unexpected-reply', async () => {
    const h = harness({ device: '/dev/null', protocol: 'slcan', slcan: { adapter: 'canable' } });
    const p = h.protocol;
    await p.handshake(1000); // resolves with nothing answered
    expect(Buffer.concat(h.written).toString('latin1')).toBe('C\rS6\rM0\rO\r');
    for (let i = 0; i < 3; i++) p.sent!(p.encodeSend({ id: 0x100, data: '01' }));
    p.push(Buffer.from('\x07z\r'));
    expect(h.rejected).toEqual(['unexpected-bell', 'unexpected-reply']);
    expect(p.stats()).toMatchObject({ adapter: 'canable', tx_acks: 0, tx_refused: 0, unexpected_bells: 1, unexpected_replies: 1 });
    expect(h.reopens).toEqual([]); // configured, not probed: the operator's choice stands
  });

  it('slcan auto: a probe that heard nothing chose no-ack; an acknowledgement afterwards reopens the link once, to probe again', async () => {
    const h = harness({ device: '/dev/null', protocol: 'slcan', slcan: { probe_timeout_ms: 50 } });
    const p = h.protocol;
    // Nothing answers: twice a failure (the link retries: the adapter may not be ready), then no-ack.
    await expect(p.handshake(1000)).rejects.toThrow(/silent probe 1 of 3/);
    await expect(p.handshake(1000)).rejects.toThrow(/silent probe 2 of 3/);
    await p.handshake(1000);
    expect(Buffer.concat(h.written).toString('latin1')).toBe('C\rV\rv\r'.repeat(3) + 'S6\rO\r');
    expect(p.stats()).toMatchObject({ adapter: 'no-ack' });
    p.push(Buffer.from('\r\r')); // the adapter was only late: it acknowledges S6 and O
    expect(h.reopens).toHaveLength(1);
    expect(h.reopens[0]).toMatch(/probing it again/);
  });

  it('encodeSend refuses malformed sends with invalid-request, naming the problem', () => {
    const slcan = harness({ device: '/dev/null', protocol: 'slcan' }).protocol;
    const json = harness({ device: '/dev/null', protocol: 'ndjson' }).protocol;
    const raw = harness({ device: '/dev/null', protocol: 'cobs', cobs: { payload: 'raw', max_frame: 4 } }).protocol;
    const cases: Array<[() => unknown, RegExp]> = [
      [() => slcan.encodeSend(null), /expected/],
      [() => slcan.encodeSend({ id: '1' }), /id must be a number/],
      [() => slcan.encodeSend({ id: 1, data: 'abc' }), /hex string/],
      [() => slcan.encodeSend({ id: 1, data: '00'.repeat(9) }), /at most 8/],
      [() => slcan.encodeSend({ id: 0x800 }), /out of range/],
      [() => slcan.encodeSend({ message: 'X', values: {} }), /no message map/],
      [() => json.encodeSend({ args: 1 }), /verb/],
      [() => json.encodeSend({ verb: 'x', args: { n: 1n } }), /BigInt/i],
      [() => raw.encodeSend({ data: '0011223344' }), /at most 4/],
    ];
    for (const [f, re] of cases) {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      expect(err, String(re)).toBeInstanceOf(LinkError);
      expect((err as LinkError).code).toBe('invalid-request');
      expect((err as Error).message).toMatch(re);
    }
  });
});
