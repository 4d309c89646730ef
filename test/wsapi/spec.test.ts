/**
 * Socket specs as binders write them (--ws-client / --ws-server), see
 * wsapi-v1.md "Transport": unix paths, unix:@abstract, tcp:host:port/api,
 * sd:NAME, ?as-api=NAME, plus this project's ?abstract=exact|padded|auto.
 */
import { describe, expect, it } from 'vitest';
import { parseSpec, SpecError } from '../../src/wsapi/index.js';
import { MAX_ABSTRACT_NAME } from '../../src/wsapi/spec.js';

describe('parseSpec: accepted specs', () => {
  it('unix path: the API name is the last path component', () => {
    expect(parseSpec('unix:/run/platform/apis/ws/hello')).toEqual({
      kind: 'unix', path: '/run/platform/apis/ws/hello', api: 'hello', text: 'unix:/run/platform/apis/ws/hello',
    });
    expect(parseSpec('unix:/run/user/1000/apis/ws/hello').api).toBe('hello');
    expect(parseSpec('unix:relative/dir/sock')).toMatchObject({ kind: 'unix', path: 'relative/dir/sock', api: 'sock' });
    expect(parseSpec('unix:hello')).toMatchObject({ kind: 'unix', path: 'hello', api: 'hello' });
  });

  it('unix:@name is an abstract socket, auto form by default', () => {
    expect(parseSpec('unix:@hello')).toEqual({ kind: 'abstract', name: 'hello', form: 'auto', api: 'hello', text: 'unix:@hello' });
    // The API is the last component of the abstract name too.
    expect(parseSpec('unix:@afb/apis/hello')).toMatchObject({ kind: 'abstract', name: 'afb/apis/hello', api: 'hello' });
  });

  it('?abstract=exact|padded|auto picks the address form', () => {
    expect(parseSpec('unix:@hello?abstract=exact')).toMatchObject({ kind: 'abstract', name: 'hello', form: 'exact', api: 'hello' });
    expect(parseSpec('unix:@hello?abstract=padded')).toMatchObject({ form: 'padded' });
    expect(parseSpec('unix:@hello?abstract=auto')).toMatchObject({ form: 'auto' });
  });

  it('abstract names up to 107 bytes (sun_path minus the leading NUL)', () => {
    const name = 'n'.repeat(MAX_ABSTRACT_NAME);
    expect(MAX_ABSTRACT_NAME).toBe(107);
    expect(parseSpec(`unix:@${name}`)).toMatchObject({ kind: 'abstract', name });
  });

  it('tcp:host:port/api', () => {
    expect(parseSpec('tcp:localhost:1234/hello')).toEqual({
      kind: 'tcp', host: 'localhost', port: 1234, api: 'hello', text: 'tcp:localhost:1234/hello',
    });
    expect(parseSpec('tcp:127.0.0.1:65535/x')).toMatchObject({ host: '127.0.0.1', port: 65535, api: 'x' });
    expect(parseSpec('tcp:127.0.0.1:1/x')).toMatchObject({ port: 1 });
    expect(parseSpec('tcp:host:99/some/path/api')).toMatchObject({ host: 'host', port: 99, api: 'api' });
  });

  it('tcp with a bracketed IPv6 address', () => {
    expect(parseSpec('tcp:[::1]:1234/hello')).toMatchObject({ kind: 'tcp', host: '::1', port: 1234, api: 'hello' });
    expect(parseSpec('tcp:[fe80::1:2]:80/a')).toMatchObject({ host: 'fe80::1:2', port: 80, api: 'a' });
  });

  it('sd:NAME names a socket inherited from systemd', () => {
    expect(parseSpec('sd:hello')).toEqual({ kind: 'sd', name: 'hello', api: 'hello', text: 'sd:hello' });
  });

  it('?as-api=NAME renames the API for every kind', () => {
    expect(parseSpec('unix:/run/platform/apis/ws/hello?as-api=other')).toMatchObject({ kind: 'unix', path: '/run/platform/apis/ws/hello', api: 'other' });
    expect(parseSpec('unix:@hello?as-api=other')).toMatchObject({ kind: 'abstract', name: 'hello', api: 'other' });
    expect(parseSpec('tcp:localhost:1234/hello?as-api=other')).toMatchObject({ kind: 'tcp', api: 'other' });
    expect(parseSpec('sd:hello?as-api=other')).toMatchObject({ kind: 'sd', name: 'hello', api: 'other' });
    // as-api supplies the name a spec would otherwise lack
    expect(parseSpec('tcp:localhost:1234?as-api=named')).toMatchObject({ kind: 'tcp', port: 1234, api: 'named' });
    expect(parseSpec('unix:@hello?abstract=padded&as-api=x')).toMatchObject({ form: 'padded', api: 'x' });
    expect(parseSpec('unix:@hello?as-api=x&abstract=exact')).toMatchObject({ form: 'exact', api: 'x' });
  });

  it('keeps the original text', () => {
    const t = 'unix:@hello?abstract=exact&as-api=h2';
    expect(parseSpec(t).text).toBe(t);
  });
});

describe('parseSpec: refused specs, each with a clear message', () => {
  const cases: Array<[string, RegExp]> = [
    ['/run/platform/apis/ws/hello', /expected unix:, tcp: or sd: prefix/],
    ['hello', /expected unix:, tcp: or sd: prefix/],
    ['', /expected unix:, tcp: or sd: prefix/],
    ['ws:/x/y', /unknown scheme 'ws'/],
    ['unix:', /empty path/],
    ['unix:@', /empty abstract name/],
    [`unix:@${'n'.repeat(108)}`, /abstract name longer than 107 bytes/],
    [`unix:@${'é'.repeat(54)}`, /abstract name longer than 107 bytes/], // 108 bytes in UTF-8
    [`unix:/${'p'.repeat(107)}`, /path longer than 107 bytes/],
    ['unix:/', /no API name/],
    ['tcp:localhost/hello', /expected tcp:HOST:PORT\/API/],
    ['tcp::1234/hello', /empty host/],
    ['tcp:localhost:0/hello', /bad port '0'/],
    ['tcp:localhost:65536/hello', /bad port '65536'/],
    ['tcp:localhost:http/hello', /bad port 'http'/],
    ['tcp:localhost:/hello', /bad port ''/],
    ['tcp:localhost:-1/hello', /bad port '-1'/],
    ['tcp:localhost:12 34/hello', /bad port '12 34'/],
    ['tcp:localhost:1234', /no API name: end the spec with \/NAME or add \?as-api=NAME/],
    ['tcp:localhost:1234/', /no API name/],
    ['sd:', /empty systemd socket name/],
    ['unix:/x/hello?as-api=', /as-api needs a name/],
    ['unix:/x/hello?as-api=a/b', /API name 'a\/b' contains '\/'/],
    ['unix:@hello?abstract=tight', /abstract must be exact, padded or auto, not 'tight'/],
    ['unix:@hello?abstract=', /abstract must be exact, padded or auto, not ''/],
    ['unix:/x/hello?bogus=1', /unknown parameter 'bogus' \(known: as-api, abstract\)/],
  ];
  for (const [text, why] of cases) {
    it(`refuses ${JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text)}`, () => {
      let caught: unknown;
      try {
        parseSpec(text);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SpecError);
      const e = caught as SpecError;
      expect(e.name).toBe('SpecError');
      // The message names the spec and says why.
      expect(e.message.startsWith(`invalid socket spec '${text}': `)).toBe(true);
      expect(e.message).toMatch(why);
    });
  }
});
