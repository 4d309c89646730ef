/**
 * Property tests: whatever strings binders send as api, event, source or
 * data fields, the topic keeps the template's structure. No '+', '#', NUL or
 * other control character, no level starting with '$', exactly the
 * template's levels plus one per '/' of the event, and every value level
 * decodes back to the value.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/core/event.js';
import { TopicTemplate, topicLevelEscape, topicLevelUnescape } from '../../src/router/topic-template.js';
import { fcSeed } from '../helpers/net-helpers.js';

fc.configureGlobal({ seed: fcSeed(), numRuns: 2000 });

/** Characters that matter to MQTT or to the escaping, mixed with any code point. */
const tricky = fc.constantFrom('+', '#', '/', '$', '%', '_', '\u0000', '\u0001', '\t', '\n', '\u007f', '\u0085', '\u009f', '\ufffe', '\uffff', '\ufdd0', '\u{10ffff}', '%2B', '%', 'a', 'é', '😀', ' ');
const unit = fc.oneof({ weight: 3, arbitrary: tricky }, { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) });
const value = fc.string({ unit, maxLength: 24 });
const scalar = fc.oneof(value, fc.double(), fc.integer(), fc.boolean());

const PREFIX = 'fleet/v1';
const template = new TopicTemplate('{prefix}/{device}/{source}/{api}/{event}/{data.f}', { prefix: PREFIX, device: 'car-1' });
const VALUE_LEVELS = 2; // prefix levels + device: where the values start

function event(source: string, api: string, ev: string, f: unknown): AgentEvent {
  return { source, api, event: ev, name: `${api}/${ev}`, data: { f }, timestamp: 0 };
}

/** Noncharacters and controls must never reach the broker (brokers may drop the connection). */
function hasForbiddenCodePoint(topic: string): boolean {
  for (const ch of topic) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return true;
    if (cp >= 0xd800 && cp <= 0xdfff) return true; // lone surrogate: iteration yields it alone
  }
  return false;
}

describe('topic injection is impossible', () => {
  it('keeps the structure and decodes back to the values', () => {
    fc.assert(fc.property(value, value, value, scalar, (source, api, ev, f) => {
      const topic = template.render(event(source, api, ev, f));
      expect(typeof topic).toBe('string');
      const t = topic as string;
      expect(t).not.toMatch(/[+#\u0000]/);
      expect(hasForbiddenCodePoint(t)).toBe(false);
      expect(Buffer.from(t, 'utf8').toString('utf8')).toBe(t);
      const levels = t.split('/');
      expect(levels.some((l) => l.startsWith('$'))).toBe(false);
      expect(levels.some((l) => l === '')).toBe(false);
      const eventSlashes = ev.split('/').length - 1;
      expect(levels.length).toBe(template.levels + eventSlashes);
      const decode = (l: string): string | undefined => topicLevelUnescape(l);
      expect(levels.slice(0, VALUE_LEVELS + 1).join('/')).toBe(`${PREFIX}/car-1`);
      expect(decode(levels[VALUE_LEVELS + 1]!)).toBe(source);
      expect(decode(levels[VALUE_LEVELS + 2]!)).toBe(api);
      const eventLevels = levels.slice(VALUE_LEVELS + 3, VALUE_LEVELS + 4 + eventSlashes);
      expect(eventLevels.map(decode).join('/')).toBe(ev);
      expect(decode(levels[levels.length - 1]!)).toBe(String(f));
    }));
  });

  it('sanitizes lone surrogates to U+FFFD and nothing else changes', () => {
    const withSurrogates = fc.string({ unit: fc.oneof(unit, fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff')), maxLength: 16 });
    fc.assert(fc.property(withSurrogates, (ev) => {
      const t = template.render(event('s', 'a', ev, 1)) as string;
      expect(hasForbiddenCodePoint(t)).toBe(false);
      const sanitized = ev.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
      const levels = t.split('/');
      expect(levels.length).toBe(template.levels + sanitized.split('/').length - 1);
      expect(levels.slice(VALUE_LEVELS + 3, -1).map((l) => topicLevelUnescape(l)).join('/')).toBe(sanitized);
    }));
  });

  it('topicLevelEscape makes one safe level that decodes back', () => {
    fc.assert(fc.property(value, (v) => {
      const level = topicLevelEscape(v);
      expect(level).not.toMatch(/[/+#\u0000]|^\$|^$/);
      expect(hasForbiddenCodePoint(level)).toBe(false);
      expect(topicLevelUnescape(level)).toBe(v);
    }));
  });

  it('never throws and never makes an empty or wildcard level, for values next to text or each other', () => {
    const tpl = new TopicTemplate('x{api}{event}y/{source}{data.f}/$t', { prefix: '', device: 'd' });
    fc.assert(fc.property(value, value, value, scalar, (source, api, ev, f) => {
      const t = tpl.render(event(source, api, ev, f)) as string;
      expect(t).not.toMatch(/[+#\u0000]|\/\/|^\/|\/$/);
      expect(t.endsWith('/$t')).toBe(true); // operator text is the operator's
      expect(t.split('/').slice(1, -1).some((l) => l.startsWith('$'))).toBe(false);
    }));
  });
});
