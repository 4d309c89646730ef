/**
 * Exceptions in handlers, on both sides of a real unix socket: a verb that
 * throws answers `internal-error` every time, a client event listener that
 * throws loses nothing else; each bug is counted every time and logged once
 * per kind (a peer calling a failing verb in a loop must not flood the journal).
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WsapiClient, WsapiServer } from '../../src/wsapi/index.js';
import { createLogger } from '../../src/util/log.js';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('handler exceptions', () => {
  it('a throwing verb: internal-error to each call, one log line per kind, every one counted', async () => {
    const lines: string[] = [];
    const server = new WsapiServer({ api: 'hello', logger: createLogger('debug', (l) => lines.push(l)) });
    server.verb('boom', () => { throw new TypeError('cannot read x of undefined'); });
    server.verb('boom2', () => Promise.reject(new Error('other')));
    const path = join(tempDir(cleanup, 'herr'), 'hello');
    await server.listen(`unix:${path}`);
    cleanup.add(() => server.close());
    const client = new WsapiClient(`unix:${path}`);
    await client.connect();
    cleanup.add(() => client.close());
    for (let i = 0; i < 50; i++) expect(await client.call('boom')).toMatchObject({ error: 'internal-error', info: 'cannot read x of undefined' });
    for (let i = 0; i < 5; i++) expect((await client.call('boom2')).error).toBe('internal-error');
    expect(server.stats.handlerErrors).toBe(55);
    expect(lines.filter((l) => l.includes('verb boom failed'))).toEqual(['<warn> server hello: verb boom failed: TypeError: cannot read x of undefined (logged once; later ones of this kind are only counted)']);
    expect(lines.filter((l) => l.includes('verb boom2 failed'))).toHaveLength(1);
  });

  it('a throwing event listener: the other events still arrive, one log record with the stack', async () => {
    const server = new WsapiServer({ api: 'hello' });
    const tick = server.event('tick');
    server.verb('sub', (req) => { req.subscribe(tick); return null; });
    const path = join(tempDir(cleanup, 'herr'), 'hello');
    await server.listen(`unix:${path}`);
    cleanup.add(() => server.close());
    const lines: string[] = [];
    const client = new WsapiClient(`unix:${path}`, { logger: createLogger('debug', (l) => lines.push(l)) });
    await client.connect();
    cleanup.add(() => client.close());
    const got: number[] = [];
    client.on('event', (_name: string, data: { n: number }) => {
      got.push(data.n);
      if (data.n % 2 === 0) throw new RangeError('listener bug');
    });
    await client.call('sub');
    for (let n = 0; n < 40; n++) tick.push({ n });
    await waitFor(() => got.length === 40, 3000, '40 events');
    expect(got).toEqual([...Array(40).keys()]);
    expect(client.connectionStats.handlerErrors).toBe(20);
    const logged = lines.filter((l) => l.includes('message handler failed'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(/RangeError: listener bug\n\s+at /);
  });
});
