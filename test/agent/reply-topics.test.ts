/** Which reply topics a command may name (src/sources/mqtt-commands/reply-topics.ts). */
import { describe, expect, it } from 'vitest';
import { literalTopicPrefix, replyTopicCheck } from '../../src/sources/mqtt-commands/reply-topics.js';

describe('reply topics', () => {
  const check = replyTopicCheck(['p/d/call', 'p/d/status', 'p/d/health', 'p/d/events', ''], 'p/d/reply');

  it('refuses the agent\'s own topics and what is below them, not their look-alikes', () => {
    for (const t of ['p/d/status', 'p/d/status/links/x', 'p/d/health', 'p/d/events/vehicle/speed', 'p/d/call/b/v']) {
      expect(check(t), t).toMatch(/is one of the agent's own topics/);
    }
    for (const t of ['p/d/statusx', 'p/d', 'p/d/reply', 'p/d/reply/anything/x', 'ops/r/1', 'p/d/eventsx/1']) expect(check(t), t).toBeNull();
  });

  it('still applies the topic name rules first', () => {
    expect(check('ops/\u0001')).toMatch(/control character/);
    expect(check('ops/#')).toMatch(/wildcard/);
  });

  it('takes the literal levels of a template, with {prefix} and {device} filled in', () => {
    expect(literalTopicPrefix('fleet/car-1/events/{api}/{event}')).toBe('fleet/car-1/events');
    expect(literalTopicPrefix('fleet/car-1/x{api}')).toBe('fleet/car-1');
    expect(literalTopicPrefix('{api}/{event}')).toBe('');
    expect(literalTopicPrefix('fleet/fixed')).toBe('fleet/fixed');
  });
});
