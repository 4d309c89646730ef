/**
 * Remote commands from a hostile sender, against `afb-edge run` as a process
 * and a real mosquitto: no request may end the process, knock the agent
 * off the broker (a malformed PUBLISH from the agent makes mosquitto drop
 * it, and the last will says `offline`), or get its reply lost.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentUnderTest, type Message } from '../helpers/agent-process.js';

// One agent per test: a test that crashes or disconnects it must not take the others along.
let agent: AgentUnderTest;
beforeEach(async () => {
  agent = await startAgentProcess({ extra: 'commands: { enabled: true, allow: [ { binder: vehicle, verbs: [ping, info] } ] }' });
}, 30_000);
afterEach(async () => agent?.close());

const CALL = 'fleet/car-042/call/vehicle';
const REPLY = 'fleet/car-042/reply/vehicle';
const body = (m: Message | undefined): Record<string, unknown> => {
  expect(m, 'a reply').toBeDefined();
  return JSON.parse(m!.text) as Record<string, unknown>;
};

/** The agent is still up, still on its first broker session, and still answers. */
async function stillServing(): Promise<void> {
  expect(agent.alive(), `agent exited: ${agent.stderr().slice(-2000)}`).toBe(true);
  const reply = await agent.request(`${CALL}/ping`, JSON.stringify({ id: 'check', args: { ok: 1 } }), `${REPLY}/ping`);
  expect(body(reply)).toMatchObject({ id: 'check', error: null, data: { pong: { ok: 1 } } });
  expect(await agent.metric('afb_edge_reconnects_total', { kind: 'mqtt' })).toBe(0);
  const offline = agent.received.filter((m) => m.topic === 'fleet/car-042/status' && m.text.includes('"offline"'));
  expect(offline.map((m) => m.text)).toEqual([]);
}

const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);

describe('hostile remote commands (afb-edge run, mosquitto)', () => {
  it('an id of 6,000 nested arrays gets invalid-request, to an allowed and to a forbidden verb, and the process stays up', async () => {
    for (const verb of ['ping', 'push']) {
      const reply = await agent.request(`${CALL}/${verb}`, `{"id":${deep(6000)},"args":{}}`, `${REPLY}/${verb}`);
      const b = body(reply);
      expect(b).toMatchObject({ id: null, error: 'invalid-request' });
      expect(String(b.info)).toMatch(/id is longer than 256 bytes/);
    }
    // nesting in args: the reply still carries the id and goes where it was asked
    const reply = await agent.request(`${CALL}/ping`, `{"id":"deep-args","reply_to":"ops/deep","args":${deep(6000)}}`, 'ops/deep');
    expect(body(reply)).toMatchObject({ id: 'deep-args', error: 'invalid-request', info: 'JSON nested deeper than 33 levels' });
    // 32 levels of args are what a native binder (json-c) reads: accepted
    const ok = await agent.request(`${CALL}/ping`, `{"id":"d32","args":${deep(32)}}`, `${REPLY}/ping`);
    expect(body(ok)).toMatchObject({ id: 'd32', error: null });
    await stillServing();
  });

  it('reply_to with control characters, noncharacters, lone surrogates or wildcards is refused without a broker disconnection', async () => {
    const bad = ['ops/\u0001', 'ops/a\u001fb', 'ops/\u007f', 'ops/\u0085', 'ops/\u009f', 'ops/\ufffe', 'ops/\uffff', 'ops/\ufdd0', 'ops/\ud83f\udffe', 'ops/\ud800', 'ops/\udc00x', 'ops/#', 'ops/+/x', '$SYS/x', ''];
    for (const [i, replyTo] of bad.entries()) {
      const reply = await agent.request(`${CALL}/ping`, JSON.stringify({ id: i, reply_to: replyTo }), `${REPLY}/ping`);
      const b = body(reply);
      expect(b, JSON.stringify(replyTo)).toMatchObject({ id: i, error: 'invalid-request' });
      expect(String(b.info)).toMatch(/^reply_to is not a valid topic name: /);
    }
    await stillServing();
    expect(agent.broker.log()).not.toMatch(/malformed packet|disconnected due to protocol error/i);
  });

  it("refuses reply topics among the agent's own (status, health, commands: no forged telemetry, no reply fed back as a command)", async () => {
    for (const replyTo of ['fleet/car-042/status', 'fleet/car-042/status/links/can0', 'fleet/car-042/health', 'fleet/car-042/call/vehicle/ping']) {
      const reply = await agent.request(`${CALL}/ping`, JSON.stringify({ id: replyTo, reply_to: replyTo }), `${REPLY}/ping`);
      expect(body(reply)).toMatchObject({ id: replyTo, error: 'invalid-request' });
      expect(String(body(reply).info)).toMatch(/is one of the agent's own topics/);
    }
    const mine = await agent.request(`${CALL}/ping`, '{"id":"sub","reply_to":"fleet/car-042/reply/mine/1"}', 'fleet/car-042/reply/mine/1');
    expect(body(mine)).toMatchObject({ id: 'sub', error: null });
    const elsewhere = await agent.request(`${CALL}/ping`, '{"id":"else","reply_to":"fleet/car-042/statusx"}', 'fleet/car-042/statusx');
    expect(body(elsewhere)).toMatchObject({ id: 'else', error: null });
    await stillServing();
  });

  it('MQTT 5: an invalid response topic is refused on the default reply topic; bad JSON is answered on the response topic with the correlation data', async (ctx) => {
    if (!agent.broker.supportsV5) ctx.skip(); // the aedes fallback speaks 3.1.1 only; CI runs mosquitto
    // (mosquitto itself refuses control characters in a Response Topic: '$' is what passes it)
    const refused = await agent.request(`${CALL}/ping`, '{}', `${REPLY}/ping`, { properties: { responseTopic: '$ops/x', correlationData: Buffer.from('c1') } });
    expect(body(refused)).toMatchObject({ error: 'invalid-request' });
    expect(refused!.correlation?.toString()).toBe('c1');
    for (const payload of ['{not json', '\u0000', '[1,', 'null x']) {
      const reply = await agent.request(`${CALL}/ping`, payload, 'ops/v5-bad', { properties: { responseTopic: 'ops/v5-bad', correlationData: Buffer.from('c2') } });
      expect(body(reply)).toMatchObject({ error: 'invalid-request' });
      expect(String(body(reply).info)).toMatch(/^payload is not valid JSON/);
      expect(body(reply).id).toBeUndefined();
      expect(reply!.correlation?.toString()).toBe('c2');
    }
    const utf8 = await agent.request(`${CALL}/ping`, Buffer.from([0x7b, 0xff, 0x7d]), 'ops/v5-bad', { properties: { responseTopic: 'ops/v5-bad', correlationData: Buffer.from('c3') } });
    expect(body(utf8)).toMatchObject({ error: 'invalid-request', info: 'payload is not valid UTF-8' });
    await stillServing();
  });

  it('echoes the id as JSON text, unchanged (numbers past 2^53, exponents, strings with escapes)', async () => {
    for (const id of ['123456789012345678901234567890', '-0.000000000000000000001e-400', '1E+400', '"a\\u0000\\"b"', '{"k": [1, 2.50]}', 'true']) {
      const reply = await agent.request(`${CALL}/ping`, `{"id": ${id} , "args": 1}`, `${REPLY}/ping`);
      expect(reply!.text.startsWith(`{"id":${id},"error":null,`), reply!.text).toBe(true);
    }
  });

  it('args too large for the binder\'s frame limit get too-large locally; the binder connection stays up', async () => {
    // under the 1 MiB payload bound, over the native binder's 1,048,500-byte frame: the wsapi client refuses it
    const reply = await agent.request(`${CALL}/ping`, `{"id":"near","args":"${'y'.repeat(1_048_520)}"}`, `${REPLY}/ping`, {}, 10_000);
    expect(body(reply)).toMatchObject({ id: 'near', error: 'too-large', data: null });
    expect(await agent.metric('afb_edge_reconnects_total', { kind: 'binder' })).toBe(0);
    expect(await agent.metric('afb_edge_wsapi_limited_total', { limit: 'peer_frame' })).toBe(1);
    await stillServing();
  });

  it('refuses a payload larger than 1 MiB before parsing it', async () => {
    const reply = await agent.request(`${CALL}/ping`, `{"id":"big","args":"${'x'.repeat(1_048_600)}"}`, `${REPLY}/ping`, {}, 10_000);
    expect(body(reply)).toMatchObject({ id: null, error: 'invalid-request' });
    expect(String(body(reply).info)).toMatch(/larger than 1048576 bytes/);
    await stillServing();
  });
});
