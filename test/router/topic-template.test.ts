/**
 * Topic templates: placeholders, operator text, the escaping of untrusted
 * values (README "Escaping"), missing data fields and the length bound.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent } from '../../src/core/event.js';
import {
  MAX_TOPIC_BYTES, TOPIC_FIELD_MISSING, TOPIC_TOO_LONG, TopicTemplate, topicLevelEscape, topicLevelUnescape,
} from '../../src/router/topic-template.js';

const ctx = { prefix: 'fleet', device: 'car-042' };
const render = (tpl: string, name: string, data: unknown = null, source = 'vehicle', c = ctx): unknown =>
  new TopicTemplate(tpl, c).render(makeEvent(source, name, data));

describe('placeholders', () => {
  it('fills prefix, device, source, api and event', () => {
    expect(render('{prefix}/{device}/{source}/{api}/{event}', 'hello/speed', null, 'b1')).toBe('fleet/car-042/b1/hello/speed');
  });

  it('keeps the levels of a multi-level prefix and of the template text', () => {
    const t = new TopicTemplate('{prefix}/v1/{device}/ev/{event}', { prefix: 'acme/fleet', device: 'd' });
    expect(t.levels).toBe(6);
    expect(t.render(makeEvent('s', 'api/x', null))).toBe('acme/fleet/v1/d/ev/x');
  });

  it('drops the separator after an empty prefix instead of starting the topic with /', () => {
    expect(render('{prefix}/{device}/{event}', 'a/b', null, 's', { prefix: '', device: 'd' })).toBe('d/b');
  });

  it('mixes text and values in one level', () => {
    expect(render('{prefix}/sig-{event}.v{data.v}', 'a/speed', { v: 2 })).toBe('fleet/sig-speed.v2');
  });

  it('reads data fields by dot path: strings, numbers, booleans, array indexes, the data itself', () => {
    const data = { a: { b: 'x', n: 1.5, t: true, list: ['p', 'q'] } };
    expect(render('{data.a.b}/{data.a.n}/{data.a.t}/{data.a.list.1}', 'a/e', data)).toBe('x/1.5/true/q');
    expect(render('t/{data}', 'a/e', 42)).toBe('t/42');
  });

  it('cannot publish when a data field is missing, null or not a scalar', () => {
    for (const data of [null, 7, {}, { a: null }, { a: { b: 1 } }, { a: [1] }, { b: 1 }]) {
      expect(render('t/{data.a}', 'a/e', data)).toBe(TOPIC_FIELD_MISSING);
    }
    expect(render('t/{data}', 'a/e', { x: 1 })).toBe(TOPIC_FIELD_MISSING);
  });

  it('never reads a field from the prototype of the data', () => {
    expect(render('t/{data.constructor.name}', 'a/e', {})).toBe(TOPIC_FIELD_MISSING);
    expect(render('t/{data.toString}', 'a/e', {})).toBe(TOPIC_FIELD_MISSING);
    expect(render('t/{data.__proto__}', 'a/e', JSON.parse('{"__proto__":"own"}'))).toBe('t/own');
  });
});

describe('escaping of values', () => {
  const ev = (event: string): unknown => render('p/{event}', `api/${event}`);
  const api = (a: string): unknown => render('p/{api}/x', `${a}/e`);

  it('percent-encodes wildcards, % and control characters', () => {
    expect(ev('a+b')).toBe('p/a%2Bb');
    expect(ev('#')).toBe('p/%23');
    expect(ev('100%')).toBe('p/100%25');
    expect(ev('a\u0000b\tc\u007f\u0085')).toBe('p/a%00b%09c%7F%C2%85');
    expect(ev('x\ufffey\u{1fffe}z\ufdd0')).toBe('p/x%EF%BF%BEy%F0%9F%BF%BEz%EF%B7%90');
  });

  it('keeps ordinary Unicode, spaces and symbols as they are', () => {
    expect(ev('vitesse é 速度 😀 a-b_c.d:e@f!')).toBe('p/vitesse é 速度 😀 a-b_c.d:e@f!');
  });

  it("makes '/' a level separator in {event} only", () => {
    expect(ev('door/front/left')).toBe('p/door/front/left');
    // makeEvent never puts '/' in api, but a source building events itself might.
    const t = new TopicTemplate('p/{api}/x', ctx);
    expect(t.render({ source: 's', api: 'x/y', event: 'e', name: 'x/y/e', data: null, timestamp: 0 })).toBe('p/x%2Fy/x');
    expect(api('a%b')).toBe('p/a%25b/x');
    expect(render('p/{source}/{data.k}', 'a/e', { k: 'u/v' }, 's/t')).toBe('p/s%2Ft/u%2Fv');
  });

  it("encodes a '$' that would start a level, and only that one", () => {
    expect(ev('$SYS/broker')).toBe('p/%24SYS/broker');
    expect(ev('a/$b/c$d')).toBe('p/a/%24b/c$d');
    expect(render('{event}', '$x')).toBe('%24x');
    expect(render('s{event}', 'a/$x')).toBe('s$x');
  });

  it("writes an empty value level as '_' and a value level '_' as '%5F'", () => {
    expect(render('p/{event}', 'api/')).toBe('p/_');
    expect(ev('a//b/')).toBe('p/a/_/b/_');
    expect(ev('/a')).toBe('p/_/a');
    expect(ev('_')).toBe('p/%5F');
    expect(ev('a/_/__')).toBe('p/a/%5F/__');
    expect(render('p/{data.k}', 'a/e', { k: '' })).toBe('p/_');
    // With operator text in the level, the value is written as is.
    expect(render('p/x{event}', 'api/')).toBe('p/x');
    expect(render('p/{event}_', 'api/')).toBe('p/_');
  });

  it('writes a lone surrogate as U+FFFD (it has no UTF-8 form)', () => {
    expect(ev('a\ud800b\udc00')).toBe('p/a\ufffdb\ufffd');
  });

  it('escapes the device id like a value when it is not plain', () => {
    expect(render('{device}/{event}', 'a/e', null, 's', { prefix: '', device: '$d/+' })).toBe('%24d%2F%2B/e');
  });
});

describe('topicLevelEscape / topicLevelUnescape', () => {
  it('escapes a whole level and gives it back', () => {
    for (const v of ['', '_', 'a/b', '$x', '+#%', 'ok', 'é\u0000']) {
      const level = topicLevelEscape(v);
      expect(level).not.toMatch(/[/+#\u0000]|^\$|^$/);
      expect(topicLevelUnescape(level)).toBe(v);
    }
    expect(topicLevelEscape('a/b')).toBe('a%2Fb');
  });

  it('rejects an invalid encoding', () => {
    expect(topicLevelUnescape('%E0%A4%A')).toBeUndefined();
  });
});

describe('length', () => {
  it('refuses a topic longer than 65535 bytes of UTF-8, counting multi-byte characters', () => {
    const t = new TopicTemplate('p/{event}', ctx);
    expect(t.render(makeEvent('s', 'a/' + 'x'.repeat(MAX_TOPIC_BYTES - 2), null))).toBe('p/' + 'x'.repeat(MAX_TOPIC_BYTES - 2));
    expect(t.render(makeEvent('s', 'a/' + 'x'.repeat(MAX_TOPIC_BYTES - 1), null))).toBe(TOPIC_TOO_LONG);
    // 'é' is 2 bytes: 32767 of them + 'p/' = 65536 bytes.
    expect(t.render(makeEvent('s', 'a/' + 'é'.repeat(32767), null))).toBe(TOPIC_TOO_LONG);
    // escaping counts: 21845 '+' become 65535 bytes of %2B
    expect(t.render(makeEvent('s', 'a/' + '+'.repeat(21845), null))).toBe(TOPIC_TOO_LONG);
  });
});

describe('template errors', () => {
  it.each([
    ['', /empty/],
    ['a/+/b', /wildcard/],
    ['a/#', /wildcard/],
    ['a/\u0000', /U\+0000/],
    ['a/{nope}', /unknown placeholder \{nope\}/],
    ['a/{event', /not closed/],
    ['a/event}', /without '\{'/],
    ['a/{data.}', /empty field name/],
    ['a/{data.x..y}', /empty name/],
    ['a//{event}', /empty level/],
    ['/a/{event}', /empty level/],
    ['a/{event}/', /empty level/],
  ])('%j is refused', (tpl, msg) => {
    expect(() => new TopicTemplate(tpl, ctx)).toThrow(msg);
  });

  it('refuses a prefix with a wildcard or that makes an empty level', () => {
    expect(() => new TopicTemplate('{prefix}/x', { prefix: 'a/+', device: 'd' })).toThrow(/prefix.*wildcard/);
    expect(() => new TopicTemplate('{prefix}/x', { prefix: 'a/', device: 'd' })).toThrow(/empty level/);
  });

  it("accepts operator text starting with '$' (e.g. AWS IoT '$aws/things/...')", () => {
    expect(render('$aws/things/{device}/shadow/update', 'a/e')).toBe('$aws/things/car-042/shadow/update');
  });
});

describe('rendered topics kept per source and event name', () => {
  it('a template without {data…} gives the same topic object again, equal to a fresh rendering, across more names and sources than it keeps', () => {
    const tpl = new TopicTemplate('{prefix}/{device}/{source}/{api}/{event}', ctx);
    const names = Array.from({ length: 3000 }, (_, i) => `api${i % 7}/ev+${i}/x#`);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < names.length; i++) {
        const ev = makeEvent(`src${i % 70}`, names[i]!, null);
        expect(tpl.render(ev)).toBe(new TopicTemplate('{prefix}/{device}/{source}/{api}/{event}', ctx).render(ev));
      }
    }
    const a = tpl.render(makeEvent('b1', 'hello/speed', 1));
    expect(tpl.render(makeEvent('b1', 'hello/speed', 2))).toBe(a);
  });

  it('long names are rendered each time and not kept', () => {
    const tpl = new TopicTemplate('{source}/{event}', ctx);
    const long = `api/${'n'.repeat(300)}`;
    expect(tpl.render(makeEvent('b1', long, null))).toBe(`b1/${'n'.repeat(300)}`);
    expect(tpl.render(makeEvent('s'.repeat(200), 'a/b', null))).toBe(`${'s'.repeat(200)}/b`);
  });

  it('an event whose api and event parts differ from another of the same name is rendered for itself', () => {
    const tpl = new TopicTemplate('{api}/{event}', ctx);
    expect(tpl.render(makeEvent('b1', 'hello/speed', null))).toBe('hello/speed');
    expect(tpl.render({ ...makeEvent('b1', 'hello/speed', null), api: 'other', event: 'thing' })).toBe('other/thing');
  });

  it('a template with {data…} is rendered for each event', () => {
    const tpl = new TopicTemplate('{event}/{data.zone}', ctx);
    expect(tpl.render(makeEvent('b1', 'hvac/temp', { zone: 'front' }))).toBe('temp/front');
    expect(tpl.render(makeEvent('b1', 'hvac/temp', { zone: 'rear' }))).toBe('temp/rear');
    expect(tpl.render(makeEvent('b1', 'hvac/temp', {}))).toBe(TOPIC_FIELD_MISSING);
  });
});
