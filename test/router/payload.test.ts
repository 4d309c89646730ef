/**
 * Payload shapes: raw JSON data, and the envelope with its fixed key order,
 * ISO time of the event and per-route sequence number.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeEvent } from '../../src/core/event.js';
import { dataJson, envelopeJson, jsonString, makePayload } from '../../src/router/payload.js';
import { fcSeed } from '../helpers/net-helpers.js';

fc.configureGlobal({ seed: fcSeed() });

describe('raw', () => {
  it('is the JSON of the data, UTF-8', () => {
    const ev = makeEvent('b', 'api/e', { v: 'é', n: [1, null] });
    expect(makePayload('raw', ev, 1, dataJson(ev.data)).toString('utf8')).toBe('{"v":"é","n":[1,null]}');
    expect(dataJson(undefined)).toBe('null');
    expect(dataJson('x')).toBe('"x"');
  });

  it('throws for data no JSON source makes (the router counts it)', () => {
    expect(() => dataJson({ n: 1n })).toThrow();
  });
});

describe('envelope', () => {
  it('has event, source, ts, seq and data, in that order', () => {
    const ev = makeEvent('binder-1', 'hello/speed', { v: 42 }, Date.UTC(2024, 4, 1, 12, 0, 0, 7));
    const text = makePayload('envelope', ev, 3, dataJson(ev.data)).toString('utf8');
    expect(text).toBe('{"event":"hello/speed","source":"binder-1","ts":"2024-05-01T12:00:00.007Z","seq":3,"data":{"v":42}}');
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['event', 'source', 'ts', 'seq', 'data']);
  });

  it('stays valid JSON for any name and source', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), fc.string(), fc.jsonValue(), (name, source, data) => {
      const ev = makeEvent(source, name, data, 0);
      const parsed = JSON.parse(envelopeJson(ev, 9, dataJson(data))) as Record<string, unknown>;
      expect(parsed.event).toBe(name);
      expect(parsed.source).toBe(source);
      expect(parsed.seq).toBe(9);
      expect(parsed.data).toEqual(JSON.parse(dataJson(data)));
    }));
  });

  it('quotes strings exactly as JSON.stringify, lone surrogates included', () => {
    fc.assert(fc.property(fc.string({ unit: fc.oneof(fc.string({ unit: 'binary', maxLength: 1 }), fc.constantFrom('"', '\\', '\ud800', '\udc00', '\u2028')) }), (s) => {
      expect(jsonString(s)).toBe(JSON.stringify(s));
    }));
  });
});

