/**
 * The remote command's request reader and reply writer, on their own: the
 * bounds (size, depth, id), the reply address rules, and properties that
 * hold for any input (fast-check): never a throw, a reply text that is
 * always valid JSON, an id echoed byte for byte.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMMAND_LIMITS, parseCommandRequest, replyPayload } from '../../src/sources/mqtt-commands/command-request.js';
import { scanJson } from '../../src/sources/mqtt-commands/json-scan.js';
import { topicNameProblem } from '../../src/core/topic-name.js';
import { fcSeed } from '../helpers/net-helpers.js';

fc.configureGlobal({ seed: fcSeed() });

const DEFAULT = 'p/d/reply/vehicle/ping';
const v311 = (text: string) => parseCommandRequest(Buffer.from(text), undefined, DEFAULT);
const v5 = (text: string | Buffer, responseTopic = 'ops/r', correlationData?: Buffer) =>
  parseCommandRequest(Buffer.isBuffer(text) ? text : Buffer.from(text), { responseTopic, correlationData }, DEFAULT);

describe('scanJson', () => {
  it('measures depth without recursion and keeps the text of the members asked for', () => {
    expect(scanJson('1').depth).toBe(0);
    expect(scanJson('[[{"a":[1]}]]').depth).toBe(4);
    expect(scanJson('['.repeat(1_000_000)).depth).toBe(1_000_000);
    const s = scanJson('{ "id" : [1, {"x": "a,}b"}] , "args":{"k":"v"}, "other": 3 }', ['id', 'args']);
    expect(s.members.get('id')).toBe('[1, {"x": "a,}b"}]');
    expect(s.members.get('args')).toBe('{"k":"v"}');
    expect(s.members.has('other')).toBe(false);
  });

  it('decodes escaped keys and keeps the last of duplicate members, as JSON.parse does', () => {
    const s = scanJson('{"\\u0069d": 1, "id": "two", "x\\"id": 3}', ['id']);
    expect(s.members.get('id')).toBe('"two"');
    expect(scanJson('[{"id":1}]', ['id']).members.size).toBe(0); // not a top-level member
  });
});

describe('parseCommandRequest', () => {
  it('reads a 3.1.1 request: id as text, reply_to, args as received', () => {
    const r = v311('{"id": 12345678901234567890, "reply_to": "ops/1", "args": {"n": 9007199254740993}, "subscribe": true}');
    expect(r).toMatchObject({ invalid: null, subscribe: true, argsText: '{"n": 9007199254740993}', reply: { topic: 'ops/1', v5: false, idText: '12345678901234567890' } });
    expect(v311('')).toMatchObject({ invalid: null, argsText: 'null', reply: { topic: DEFAULT } });
  });

  it('bounds id size and nesting, and still answers where the request asked', () => {
    const deepArgs = v311(`{"id":"a","reply_to":"ops/x","args":${'['.repeat(40)}${']'.repeat(40)}}`);
    expect(deepArgs).toMatchObject({ invalid: `JSON nested deeper than ${COMMAND_LIMITS.maxArgsDepth + 1} levels`, reply: { topic: 'ops/x', idText: '"a"' } });
    const longId = v311(`{"id":"${'x'.repeat(300)}"}`);
    expect(longId.invalid).toMatch(/id is longer than 256 bytes/);
    expect(longId.reply.idText).toBeUndefined();
    // an id that is not JSON on its own (the request is truncated) is not echoed
    expect(v311('{"id": 12ab').reply.idText).toBeUndefined();
  });

  it('MQTT 5: the response topic is read before the payload, so bad JSON is answered there', () => {
    const r = v5('{oops', 'ops/r', Buffer.from('c'));
    expect(r.invalid).toMatch(/^payload is not valid JSON/);
    expect(r.reply).toEqual({ topic: 'ops/r', v5: true, correlationData: Buffer.from('c') });
    expect(v5(Buffer.from([0xc3, 0x28])).invalid).toBe('payload is not valid UTF-8');
    const bad = v5('{}', 'ops/\u0085');
    expect(bad.invalid).toMatch(/^response topic is not a valid topic name: character U\+0085/);
    expect(bad.reply.topic).toBe(DEFAULT);
    expect(v5(' [1, 2] ')).toMatchObject({ invalid: null, args: [1, 2], argsText: '[1, 2]' });
  });

  it('refuses a payload over the size bound without reading it', () => {
    const r = v5(Buffer.alloc(COMMAND_LIMITS.maxPayloadBytes + 1, 0x20));
    expect(r.invalid).toBe(`payload of ${COMMAND_LIMITS.maxPayloadBytes + 1} bytes is larger than ${COMMAND_LIMITS.maxPayloadBytes} bytes`);
  });
});

describe('replyPayload', () => {
  it('writes the id text as received and never throws on data JSON cannot carry', () => {
    const deep: unknown[] = [];
    let cur = deep;
    for (let i = 0; i < 100_000; i++) { const next: unknown[] = []; cur.push(next); cur = next; }
    const text = replyPayload({ topic: 't', v5: false, idText: '1e400' }, { data: deep, error: null, info: null }).toString();
    expect(text.startsWith('{"id":1e400,"error":"invalid-request","info":"the reply cannot be serialised as JSON')).toBe(true);
    expect(() => JSON.parse(text)).not.toThrow();
    expect(JSON.parse(replyPayload({ topic: 't', v5: true }, { data: { a: 1 }, error: 'e\u0000', info: '\ud800' }).toString())).toEqual({ error: 'e\u0000', info: '\ud800', data: { a: 1 } });
  });
});

describe('properties over any input', () => {
  const anyText = fc.oneof(
    fc.json({ depthSize: 'large' }),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.record({ id: fc.jsonValue({ depthSize: 'large' }), reply_to: fc.string({ unit: 'binary', maxLength: 40 }), args: fc.jsonValue({ depthSize: 'large' }) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
    fc.integer({ min: 1, max: 5000 }).map((n) => `{"id":${'['.repeat(n)}${']'.repeat(n)}}`),
  );

  it('never throws; every reply is valid JSON with the id echoed unchanged; every reply topic is publishable', () => {
    fc.assert(fc.property(anyText, fc.boolean(), fc.string({ unit: 'binary', maxLength: 30 }), (text, asV5, rt) => {
      const req = asV5 ? v5(text, rt) : v311(text);
      if (req.invalid === null) expect(() => JSON.parse(req.argsText)).not.toThrow();
      const out = replyPayload(req.reply, { data: req.args, error: req.invalid === null ? null : 'invalid-request', info: req.invalid }).toString();
      const parsed = JSON.parse(out) as Record<string, unknown>;
      if (!asV5 && req.reply.idText !== undefined) expect(out.startsWith(`{"id":${req.reply.idText},`)).toBe(true);
      if (!asV5) expect('id' in parsed).toBe(true);
      expect(topicNameProblem(req.reply.topic)).toBeNull();
    }), { numRuns: 500 });
  });
});
