/**
 * RFC 6455 frame parsing as the reference does it (wsapi-v1.md "Transport",
 * wsapi-vectors/14-ws-level.txt and 15-too-large.txt): masked and unmasked
 * frames, all length forms, fragmentation, control frames, the close codes
 * for each kind of broken framing, and the per-frame size limit checked on
 * the header alone.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CloseCode, DEFAULT_MAX_FRAME_PAYLOAD, FrameReceiver, type FrameHandler, type FrameReceiverOptions } from '../../src/wsapi/index.js';
import { OP, closePayload, hex, wsFrame, fcSeed } from '../helpers/net-helpers.js';

fc.configureGlobal({ seed: fcSeed() });

type Ev =
  | ['message', string]
  | ['ping', string]
  | ['pong', string]
  | ['close', number | undefined, string]
  | ['error', number, string];

function recorder(options?: FrameReceiverOptions): { rx: FrameReceiver; events: Ev[] } {
  const events: Ev[] = [];
  const handler: FrameHandler = {
    onMessage: (p) => events.push(['message', hex(p)]),
    onPing: (p) => events.push(['ping', hex(p)]),
    onPong: (p) => events.push(['pong', hex(p)]),
    onClose: (code, reason) => events.push(['close', code, reason]),
    onProtocolError: (code, reason) => events.push(['error', code, reason]),
  };
  return { rx: new FrameReceiver(handler, options), events };
}

/** Feeds `bytes` whole, or one byte at a time, or cut at the given offsets. */
function feed(rx: FrameReceiver, bytes: Buffer, how: 'whole' | 'bytes' | number[] = 'whole'): void {
  if (how === 'whole') {
    rx.push(bytes);
  } else if (how === 'bytes') {
    for (let i = 0; i < bytes.length; i++) rx.push(bytes.subarray(i, i + 1));
  } else {
    let at = 0;
    for (const cut of [...how].sort((a, b) => a - b)) {
      if (cut <= at || cut >= bytes.length) continue;
      rx.push(bytes.subarray(at, cut));
      at = cut;
    }
    rx.push(bytes.subarray(at));
  }
}

function run(bytes: Buffer, how: 'whole' | 'bytes' | number[] = 'whole', options?: FrameReceiverOptions): Ev[] {
  const { rx, events } = recorder(options);
  feed(rx, bytes, how);
  return events;
}

/**
 * Like run(), but each piece goes through one buffer that is reused and
 * scribbled over after every push, as a socket read with onread does
 * (socket-reads.ts): what the receiver kept must have been copied.
 */
function runReused(bytes: Buffer, cuts: number[]): Ev[] {
  const { rx, events } = recorder({ reusedChunks: true });
  const shared = Buffer.alloc(Math.max(1, bytes.length));
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  let at = 0;
  for (const end of [...points, bytes.length]) {
    const n = bytes.copy(shared, 0, at, end);
    rx.push(shared.subarray(0, n));
    shared.fill(0xee);
    at = end;
  }
  return events;
}

const K = Buffer.from('4b01000500000070696e670000000000050000006e756c6c0000000000', 'hex'); // a K ping call

describe('FrameReceiver: data frames', () => {
  it('an unmasked binary frame', () => {
    expect(run(wsFrame(K))).toEqual([['message', hex(K)]]);
  });

  it('a masked binary frame (the capture of the real binder, key 11223344)', () => {
    const masked = Buffer.from('82a1112233445a23334111223334784c54441122334418223344334f52377a4757661122334411', 'hex');
    const events = run(masked);
    expect(events).toHaveLength(1);
    expect(Buffer.from(events[0]![1] as string, 'hex').toString('latin1')).toContain('"masked"');
    expect(run(wsFrame(K, { mask: Buffer.from('a1b2c3d4', 'hex') }))).toEqual([['message', hex(K)]]);
  });

  it('an empty binary frame, masked or not', () => {
    expect(run(wsFrame())).toEqual([['message', '']]);
    expect(run(wsFrame(Buffer.alloc(0), { mask: true }))).toEqual([['message', '']]);
  });

  it('7-bit, 16-bit and 64-bit lengths, at every boundary', () => {
    for (const n of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
      const p = Buffer.alloc(n, n & 0xff);
      const f = wsFrame(p);
      expect(f.length - n).toBe(n < 126 ? 2 : n < 65536 ? 4 : 10);
      expect(run(f)).toEqual([['message', hex(p)]]);
      const m = wsFrame(p, { mask: true });
      expect(run(m, [1, 2, 3, 5, 9, 11, 13, 200])).toEqual([['message', hex(p)]]);
    }
  });

  it('several frames in one chunk, and a header split across chunks', () => {
    const a = wsFrame(Buffer.from('4b03'));
    const b = wsFrame(Buffer.alloc(300, 1));
    const c = wsFrame(Buffer.from('4b05'), { mask: true });
    const all = Buffer.concat([a, b, c]);
    const expected: Ev[] = [['message', hex(Buffer.from('4b03'))], ['message', hex(Buffer.alloc(300, 1))], ['message', hex(Buffer.from('4b05'))]];
    expect(run(all)).toEqual(expected);
    // split inside b's 16-bit length, then inside c's mask key
    expect(run(all, [a.length + 1, a.length + 3, a.length + b.length + 4])).toEqual(expected);
    expect(run(all, 'bytes')).toEqual(expected);
  });

  it('a fragmented message (BINARY noFIN, CONT noFIN, CONT FIN) is reassembled, as capture 14', () => {
    const bytes = Buffer.from('02054b02000500' + '0007000070696e6700' + '8019000000000d00000022667261676d656e746564220000000000', 'hex');
    const whole = '4b02000500' + '000070696e6700' + '000000000d00000022667261676d656e746564220000000000';
    expect(run(bytes)).toEqual([['message', whole]]);
    expect(run(bytes, 'bytes')).toEqual([['message', whole]]);
  });

  it('control frames between fragments are handled at once, the message stays whole', () => {
    const bytes = Buffer.concat([
      wsFrame('4b01', { fin: false }),
      wsFrame('6869', { opcode: OP.PING }),
      wsFrame('02', { opcode: OP.CONT, fin: false, mask: true }),
      wsFrame('', { opcode: OP.PONG }),
      wsFrame('03', { opcode: OP.CONT }),
    ]);
    const expected: Ev[] = [['ping', '6869'], ['pong', ''], ['message', '4b010203']];
    expect(run(bytes)).toEqual(expected);
    expect(run(bytes, 'bytes')).toEqual(expected);
  });

  it('the size limit is per frame: a fragmented message larger than it is accepted', () => {
    const bytes = Buffer.concat([
      wsFrame(Buffer.alloc(100, 1), { fin: false }),
      wsFrame(Buffer.alloc(100, 2), { opcode: OP.CONT, fin: false }),
      wsFrame(Buffer.alloc(100, 3), { opcode: OP.CONT }),
    ]);
    const events = run(bytes, 'whole', { maxFramePayload: 100 });
    expect(events).toEqual([['message', hex(Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(100, 2), Buffer.alloc(100, 3)]))]]);
  });

  it('reused read buffer: a fragment that is a whole read buffer is copied before the buffer is reused', () => {
    const { rx, events } = recorder({ reusedChunks: true });
    const first = wsFrame('01020304', { fin: false });
    rx.push(Buffer.from(first.subarray(0, 2))); // the header alone
    const read = Buffer.alloc(4); // the payload fills a read buffer exactly
    first.copy(read, 0, 2);
    rx.push(read);
    read.fill(0xee);
    rx.push(wsFrame('05', { opcode: OP.CONT }));
    expect(events).toEqual([['message', '0102030405']]);
  });

  it('random streams of valid frames, cut anywhere, give the same events (property)', () => {
    const payload = fc.oneof(
      { weight: 8, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
      { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 126, max: 70_000 }), fc.integer({ min: 0, max: 255 })).map(([n, b]) => Buffer.alloc(n, b)) },
    );
    const item = fc.oneof(
      // a message in 1..4 fragments, each masked or not, with pings/pongs in between
      fc.record({
        kind: fc.constant('message' as const),
        payload,
        cuts: fc.array(fc.nat(), { maxLength: 3 }),
        masks: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
        ping: fc.option(fc.uint8Array({ maxLength: 125 }), { nil: undefined }),
      }),
      fc.record({ kind: fc.constant('ping' as const), payload: fc.uint8Array({ maxLength: 125 }), mask: fc.boolean() }),
      fc.record({ kind: fc.constant('pong' as const), payload: fc.uint8Array({ maxLength: 125 }), mask: fc.boolean() }),
    );
    fc.assert(fc.property(fc.array(item, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (items, cuts) => {
      const parts: Buffer[] = [];
      const expected: Ev[] = [];
      for (const it of items) {
        if (it.kind === 'message') {
          const points = [...new Set(it.cuts.map((c) => (it.payload.length === 0 ? 0 : c % it.payload.length)))].sort((a, b) => a - b);
          const pieces: Buffer[] = [];
          let at = 0;
          for (const p of points) { pieces.push(it.payload.subarray(at, p)); at = p; }
          pieces.push(it.payload.subarray(at));
          pieces.forEach((piece, i) => {
            parts.push(wsFrame(piece, { opcode: i === 0 ? OP.BINARY : OP.CONT, fin: i === pieces.length - 1, mask: it.masks[i % 4] }));
            if (i === 0 && pieces.length > 1 && it.ping !== undefined) {
              parts.push(wsFrame(it.ping, { opcode: OP.PING }));
              expected.push(['ping', hex(it.ping)]);
            }
          });
          expected.push(['message', hex(it.payload)]);
        } else {
          parts.push(wsFrame(it.payload, { opcode: it.kind === 'ping' ? OP.PING : OP.PONG, mask: it.mask }));
          expected.push([it.kind, hex(it.payload)]);
        }
      }
      const bytes = Buffer.concat(parts);
      const positions = cuts.map((c) => (bytes.length === 0 ? 0 : c % bytes.length));
      expect(run(bytes, positions)).toEqual(expected);
      expect(runReused(bytes, positions)).toEqual(expected);
      if (bytes.length < 3000) expect(run(bytes, 'bytes')).toEqual(expected);
    }), { numRuns: 150 });
  });
});

describe('FrameReceiver: control frames', () => {
  it('ping goes to the handler with its payload, pong too', () => {
    expect(run(Buffer.from('89026869', 'hex'))).toEqual([['ping', '6869']]);
    expect(run(wsFrame('', { opcode: OP.PING, mask: true }))).toEqual([['ping', '']]);
    expect(run(Buffer.from('8a00', 'hex'))).toEqual([['pong', '']]);
    // exactly 125 bytes is still a valid control frame
    expect(run(wsFrame(Buffer.alloc(125, 0x78), { opcode: OP.PING }))).toEqual([['ping', '78'.repeat(125)]]);
  });

  it('close with a code and reason, then nothing more is parsed', () => {
    const { rx, events } = recorder();
    feed(rx, Buffer.concat([Buffer.from('880503e8627965', 'hex'), wsFrame(K)]));
    expect(events).toEqual([['close', 1000, 'bye']]);
    expect(rx.dead).toBe(true);
    rx.push(wsFrame(K));
    expect(events).toHaveLength(1);
  });

  it('close without a payload has no code; a masked close with a code', () => {
    expect(run(Buffer.from('8800', 'hex'))).toEqual([['close', undefined, '']]);
    expect(run(wsFrame(closePayload(1001), { opcode: OP.CLOSE, mask: true }))).toEqual([['close', 1001, '']]);
    expect(run(wsFrame(closePayload(4000, 'été'), { opcode: OP.CLOSE }), 'bytes')).toEqual([['close', 4000, 'été']]);
  });
});

describe('FrameReceiver: protocol errors (close code, then nothing more)', () => {
  const cases: Array<[string, Buffer, number]> = [
    ['a text frame → 1003', Buffer.from('810568656c6c6f', 'hex'), CloseCode.CANT_ACCEPT],
    ['reserved opcode 3 → 1002', Buffer.from('83027878', 'hex'), CloseCode.PROTOCOL_ERROR],
    ['reserved control opcode 0xB → 1002', Buffer.from('8b00', 'hex'), CloseCode.PROTOCOL_ERROR],
    ['reserved opcode 7 → 1002', Buffer.from('8700', 'hex'), CloseCode.PROTOCOL_ERROR],
    ['RSV1 on a binary frame → 1002', Buffer.from('c21d4b01000500000070696e670000000000050000006e756c6c0000000000', 'hex'), CloseCode.PROTOCOL_ERROR],
    ['RSV2 → 1002', wsFrame(K, { rsv: 2 }), CloseCode.PROTOCOL_ERROR],
    ['RSV3 on a ping → 1002', wsFrame('', { opcode: OP.PING, rsv: 1 }), CloseCode.PROTOCOL_ERROR],
    ['continuation without a started message → 1002', Buffer.from('8003616263', 'hex'), CloseCode.PROTOCOL_ERROR],
    ['continuation (noFIN) without a started message → 1002', wsFrame('61', { opcode: OP.CONT, fin: false }), CloseCode.PROTOCOL_ERROR],
    ['a new BINARY while a fragmented one is pending → 1002', Buffer.from('02024b01' + '82024b02', 'hex'), CloseCode.PROTOCOL_ERROR],
    ['a new BINARY noFIN while a fragmented one is pending → 1002', Buffer.concat([wsFrame('4b', { fin: false }), wsFrame('4b', { fin: false })]), CloseCode.PROTOCOL_ERROR],
    ['a TEXT while a fragmented BINARY is pending → 1003', Buffer.concat([wsFrame('4b', { fin: false }), wsFrame('61', { opcode: OP.TEXT })]), CloseCode.CANT_ACCEPT],
    ['a ping of 126 bytes → 1002', wsFrame(Buffer.alloc(126, 0x78), { opcode: OP.PING }), CloseCode.PROTOCOL_ERROR],
    ['a close of 200 bytes → 1002', wsFrame(Buffer.alloc(200), { opcode: OP.CLOSE }), CloseCode.PROTOCOL_ERROR],
    ['a fragmented ping → 1002', wsFrame('6869', { opcode: OP.PING, fin: false }), CloseCode.PROTOCOL_ERROR],
    ['a fragmented close → 1002', wsFrame('03e8', { opcode: OP.CLOSE, fin: false }), CloseCode.PROTOCOL_ERROR],
    ['a fragmented pong → 1002', wsFrame('', { opcode: OP.PONG, fin: false }), CloseCode.PROTOCOL_ERROR],
  ];
  for (const [what, bytes, code] of cases) {
    it(what, () => {
      for (const how of ['whole', 'bytes'] as const) {
        const { rx, events } = recorder();
        // a good message first: it is delivered, the error comes after it
        feed(rx, Buffer.concat([wsFrame(K), bytes, wsFrame(K)]), how);
        expect(events.length).toBe(2);
        expect(events[0]).toEqual(['message', hex(K)]);
        expect(events[1]![0]).toBe('error');
        expect(events[1]![1]).toBe(code);
        expect(rx.dead).toBe(true);
        rx.push(wsFrame(K));
        rx.push(Buffer.from('810161', 'hex'));
        expect(events.length).toBe(2); // reported once, then silent
      }
    });
  }

  it('the error is reported from the first two header bytes, before the rest of the frame', () => {
    const { rx, events } = recorder();
    rx.push(Buffer.from('81', 'hex'));
    expect(events).toEqual([]);
    rx.push(Buffer.from('ff', 'hex')); // text, masked, 64-bit length: nothing else needed
    expect(events).toEqual([['error', 1003, 'text frame']]);
  });
});

describe('FrameReceiver: size limits', () => {
  it('the default limit is 1,048,500 bytes per frame; exactly at the limit is accepted', () => {
    expect(DEFAULT_MAX_FRAME_PAYLOAD).toBe(1_048_500);
    const p = Buffer.alloc(DEFAULT_MAX_FRAME_PAYLOAD, 0x7a);
    const { rx, events } = recorder();
    rx.push(wsFrame(p, { mask: true }));
    expect(events).toHaveLength(1);
    expect(events[0]![0]).toBe('message');
    expect((events[0]![1] as string).length).toBe(2 * DEFAULT_MAX_FRAME_PAYLOAD);
  });

  it('one byte over the default limit → 1009 as soon as the 64-bit length is there (capture 16: 827f00000000000fffb5)', () => {
    const { rx, events } = recorder();
    const header = Buffer.from('827f00000000000fffb5', 'hex'); // 1,048,501
    rx.push(header.subarray(0, 9));
    expect(events).toEqual([]);
    rx.push(header.subarray(9));
    expect(events).toEqual([['error', 1009, 'frame payload 1048501 > limit 1048500']]);
    expect(rx.dead).toBe(true);
  });

  it('16-bit length over a configured limit → 1009 from the 4 header bytes, before mask and payload', () => {
    const { rx, events } = recorder({ maxFramePayload: 1000 });
    rx.push(Buffer.from('82fe03', 'hex')); // masked, 16-bit length, first length byte
    expect(events).toEqual([]);
    rx.push(Buffer.from('e9', 'hex')); // 1001; no mask key, no payload yet
    expect(events).toEqual([['error', 1009, 'frame payload 1001 > limit 1000']]);
  });

  it('64-bit length over the limit with the mask bit set → 1009 before the mask key', () => {
    const { rx, events } = recorder({ maxFramePayload: 1000 });
    const f = wsFrame(Buffer.alloc(0), { mask: true, announce: 70_000 });
    feed(rx, f.subarray(0, 10), 'bytes');
    expect(events).toEqual([['error', 1009, 'frame payload 70000 > limit 1000']]);
  });

  it('exactly at a configured limit is accepted (7-, 16- and 64-bit forms)', () => {
    for (const limit of [125, 1000, 70_000]) {
      const p = Buffer.alloc(limit, 1);
      expect(run(wsFrame(p), [1, 3, 7], { maxFramePayload: limit })).toEqual([['message', hex(p)]]);
      expect(run(wsFrame(Buffer.alloc(limit + 1)), 'whole', { maxFramePayload: limit })[0]).toEqual(['error', 1009, `frame payload ${limit + 1} > limit ${limit}`]);
    }
  });

  it('a length beyond 2^53 → 1009', () => {
    expect(run(Buffer.from('827f7fffffffffffffff', 'hex'))).toEqual([['error', 1009, 'frame length beyond 2^53']]);
    expect(run(Buffer.from('827f0040000000000000', 'hex'))).toEqual([['error', 1009, 'frame length beyond 2^53']]);
  });

  it('maxMessageSize bounds a reassembled message: reported at the fragment header that crosses it', () => {
    const opts = { maxFramePayload: 100, maxMessageSize: 250 };
    // 100 + 100 + 50 = 250: accepted
    const ok = Buffer.concat([
      wsFrame(Buffer.alloc(100, 1), { fin: false }),
      wsFrame(Buffer.alloc(100, 2), { opcode: OP.CONT, fin: false }),
      wsFrame(Buffer.alloc(50, 3), { opcode: OP.CONT }),
    ]);
    const okEvents = run(ok, 'whole', opts);
    expect(okEvents).toHaveLength(1);
    expect((okEvents[0]![1] as string).length).toBe(500);
    // 100 + 100 + 51: the third header is refused before its payload arrives
    const { rx, events } = recorder(opts);
    rx.push(Buffer.concat([wsFrame(Buffer.alloc(100, 1), { fin: false }), wsFrame(Buffer.alloc(100, 2), { opcode: OP.CONT, fin: false })]));
    expect(events).toEqual([]);
    rx.push(Buffer.from([0x80, 51]));
    expect(events).toEqual([['error', 1009, 'fragmented message > limit 250']]);
  });

  it('maxMessageSize counts the first fragment too', () => {
    const events = run(Buffer.concat([wsFrame(Buffer.alloc(60), { fin: false })]), 'whole', { maxFramePayload: 100, maxMessageSize: 50 });
    expect(events).toEqual([['error', 1009, 'fragmented message > limit 50']]);
    // an unfragmented frame is bound by maxFramePayload only
    expect(run(wsFrame(Buffer.alloc(60)), 'whole', { maxFramePayload: 100, maxMessageSize: 50 })).toHaveLength(1);
  });

  it('empty fragments are bounded in number too (65,536 pieces at most)', () => {
    const { rx, events } = recorder({});
    const empty = wsFrame(Buffer.alloc(0), { opcode: OP.CONT, fin: false });
    rx.push(wsFrame(Buffer.alloc(0), { fin: false }));
    rx.push(Buffer.concat(Array(65_535).fill(empty)));
    expect(events).toEqual([]);
    rx.push(empty);
    expect(events).toHaveLength(1);
    expect(events[0]!.slice(0, 2)).toEqual(['error', 1009]);
  });
});
