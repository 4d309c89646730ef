/**
 * Checks beyond the schema: identities, cross references, socket specs,
 * topic templates, the broker URL and TLS, filter combinations.
 */
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { BASE, errorAt, errorsOf } from './helpers.js';

const withUrl = (url: string, extra = '') => BASE.replace('  url: mqtt://localhost:1883\n', `  url: "${url}"\n${extra}`);
const withBinders = (binders: string) => BASE.replace(/binders:\n[\s\S]*?routes:/, `binders:\n${binders}routes:`);

describe('identities', () => {
  it.each(['car/1', 'car+', 'car#', 'a b', ''])('device.id %j is refused', (id) => {
    const e = errorAt(BASE.replace('id: car-1', `id: "${id}"`), 'device.id');
    expect(e.line).toBe(2);
    expect(e.message).toMatch(id === '' ? /letters, digits/ : /may only contain letters, digits, '\.', '_' and '-'/);
  });

  it('binder names follow the same charset and are unique', () => {
    const text = withBinders('  - {name: vehicle, spec: "unix:@a"}\n  - {name: vehicle, spec: "unix:@b"}\n  - {name: "my/binder", spec: "unix:@c"}\n');
    const errors = errorsOf(text);
    expect(errors.map((e) => [e.path, e.line])).toEqual([['binders[1].name', 7], ['binders[2].name', 8]]);
    expect(errors[0]).toMatchObject({ message: "duplicate binder name 'vehicle'", hint: 'already used by binders[0]; names must be unique' });
  });

  it('route names are unique', () => {
    expect(errorAt(`${BASE}  - {name: speed, match: [x/y]}\n`, 'routes[1].name')).toMatchObject({ message: "duplicate route name 'speed'", line: 11 });
  });
});

describe('binder specs', () => {
  it('report the spec parser message', () => {
    const e = errorAt(BASE.replace('unix:/run/platform/apis/ws/vehicle', 'tcp:localhost/vehicle'), 'binders[0].spec');
    expect(e).toMatchObject({ message: "invalid socket spec 'tcp:localhost/vehicle': expected tcp:HOST:PORT/API", line: 7, column: 11 });
    expect(e.hint).toMatch(/unix:@NAME/);
  });

  it.each(['unix:@hello', 'tcp:localhost:1234/hello', 'sd:hello', 'unix:/x/y?as-api=z'])('accept %s', (spec) => {
    expect(parseConfigText(BASE.replace('unix:/run/platform/apis/ws/vehicle', `"${spec}"`), 'f.yaml').errors).toEqual([]);
  });

  it('reconnect delays must grow', () => {
    const text = BASE.replace('    spec: unix:/run/platform/apis/ws/vehicle\n', '    spec: unix:/run/platform/apis/ws/vehicle\n    reconnect: {initial_delay_ms: 1000, max_delay_ms: 100}\n');
    expect(errorAt(text, 'binders[0].reconnect.max_delay_ms').message).toBe('must be ≥ initial_delay_ms (1000)');
  });
});

describe('references to binders', () => {
  it('route sources must exist, with a suggestion', () => {
    const e = errorAt(`${BASE}    sources: [vehicle, vehicel]\n`, 'routes[0].sources[1]');
    expect(e).toMatchObject({ message: "unknown binder 'vehicel'", hint: "did you mean 'vehicle'?", line: 11, column: 24 });
  });

  it('command allow entries must name a binder', () => {
    const text = `${BASE}commands:\n  allow:\n    - {binder: zzz, verbs: [ping]}\n`;
    expect(errorAt(text, 'commands.allow[0].binder')).toMatchObject({ message: "unknown binder 'zzz'", hint: 'binders are: vehicle', line: 13 });
  });

  it('say when no binder exists at all', () => {
    const text = 'device: {id: d}\nmqtt: {url: "mqtt://b"}\nbinders: []\nroutes: [{name: r, match: [a/b], sources: [x]}]\n';
    expect(errorAt(text, 'routes[0].sources[0]').hint).toBe('no binder is configured');
  });
});

describe('topic templates', () => {
  const route = (topic: string) => `${BASE}    topic: "${topic}"\n`;

  it('accept the known placeholders and data fields', () => {
    const r = parseConfigText(route('{prefix}/{device}/{source}/{api}/{event}/{data.unit}/{data.a.b_c}'), 'f.yaml');
    expect(r.errors).toEqual([]);
  });

  it('refuse an unknown placeholder, with a suggestion', () => {
    const e = errorAt(route('{prefix}/{devise}/x'), 'routes[0].topic');
    expect(e).toMatchObject({ message: "unknown placeholder '{devise}'", line: 11, column: 12 });
    expect(e.hint).toMatch(/^did you mean \{device\}\? known here: \{prefix\} \{device\} \{source\} \{api\} \{event\} \{data\.FIELD\}$/);
    expect(errorAt(route('a/{data}'), 'routes[0].topic').hint).toBe('name a field: {data.speed}');
  });

  it.each([['a/+/b', "'+'"], ['a/#', "'#'"], ['{api}+x', "'+'"]])('refuse wildcards: %s', (topic, what) => {
    expect(errorAt(route(topic), 'routes[0].topic').message).toBe(`must not contain ${what}`);
  });

  it("refuse a leading '$' and unbalanced braces", () => {
    expect(errorAt(route('$SYS/x'), 'routes[0].topic').message).toBe("must not start with '$'");
    expect(errorAt(route('a/{event'), 'routes[0].topic').message).toBe("has an unbalanced '{' or '}'");
  });

  it('allow only {prefix} and {device} in agent topics', () => {
    const text = `${BASE}commands:\n  topic: "{prefix}/{device}/call/{api}"\n  reply_topic: "{prefix}/{event}"\nhealth: {topic: "{source}/h"}\n`;
    const errors = errorsOf(text);
    expect(errors.map((e) => [e.path, e.message])).toEqual([
      ['commands.topic', "unknown placeholder '{api}'"],
      ['commands.reply_topic', "unknown placeholder '{event}'"],
      ['health.topic', "unknown placeholder '{source}'"],
    ]);
    expect(errors[0]!.hint).toBe('known here: {prefix} {device}');
  });

  it('check the status topic, the client id and the prefix', () => {
    const text = withUrl('mqtt://b', '  status_topic: "{prefix}/#"\n  client_id: "edge-{api}"\n  topic_prefix: "$fleet"\n');
    expect(errorsOf(text).map((e) => [e.path, e.message])).toEqual([
      ['mqtt.status_topic', "must not contain '#'"],
      ['mqtt.client_id', "unknown placeholder '{api}'"],
      ['mqtt.topic_prefix', "must not start with '$'"],
    ]);
    expect(errorAt(withUrl('mqtt://b', '  topic_prefix: "a/+"\n'), 'mqtt.topic_prefix').message).toBe("must not contain '+'");
  });
});

describe('mqtt url and tls', () => {
  it.each(['mqtt://broker', 'mqtts://broker:8883', 'tcp://10.0.0.1:1883', 'ssl://[::1]:8883'])('accept %s', (url) => {
    expect(parseConfigText(withUrl(url), 'f.yaml').errors).toEqual([]);
  });

  it.each([
    ['http://broker', "unsupported scheme 'http:'"],
    ['broker:1883', "unsupported scheme 'broker:'"],
    ['mqtt:broker', 'has no host'],
    ['not a url', 'is not a URL'],
  ])('refuse %s', (url, message) => {
    const e = errorAt(withUrl(url), 'mqtt.url');
    expect(e).toMatchObject({ message, line: 4 });
    expect(e.hint).toMatch(/mqtts:\/\/HOST:8883/);
  });

  it('refuse credentials in the url without echoing them', () => {
    const errors = errorsOf(withUrl('mqtts://me:hunter2@broker'));
    expect(errors.map((e) => [e.path, e.message])).toEqual([['mqtt.url', 'must not contain credentials']]);
    expect(JSON.stringify(errors)).not.toContain('hunter2');
  });

  it('refuse tls settings on a plain url, and half of mTLS', () => {
    const text = withUrl('mqtt://b', '  tls:\n    cert_file: /etc/c.pem\n');
    expect(errorsOf(text).map((e) => [e.path, e.message, e.line])).toEqual([
      ['mqtt.tls', 'TLS settings need an mqtts:// url, not mqtt://', 6],
      ['mqtt.tls', 'client authentication (mTLS) needs both cert_file and key_file; key_file is missing', 6],
    ]);
    expect(errorAt(withUrl('mqtts://b', '  tls: {key_passphrase_file: pp}\n'), 'mqtt.tls.key_passphrase_file').message).toBe('is given without key_file');
  });

  it('refuse a secret pasted into a *_file key, without echoing it', () => {
    const text = withUrl('mqtts://b', '  tls:\n    cert_file: c.pem\n    key_file: "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\n"\n');
    const e = errorAt(text, 'mqtt.tls.key_file');
    expect(e.message).toBe('must be a file path or a systemd credential name, not the secret itself');
    expect(JSON.stringify(e)).not.toContain('MIIEvQ');
  });

  it('MQTT 3.1.1 needs a username with a password', () => {
    const text = withUrl('mqtt://b', '  protocol_version: 4\n  password_file: mqtt-password\n');
    expect(errorAt(text, 'mqtt.password_file').message).toBe('MQTT 3.1.1 sends a password only with a username');
    expect(parseConfigText(withUrl('mqtt://b', '  password_file: mqtt-password\n'), 'f.yaml').errors).toEqual([]);
  });
});

describe('filters and misc', () => {
  const filters = (f: string) => `${BASE}    filters: ${f}\n`;

  it('deadband needs absolute or percent, and a dot-path field', () => {
    expect(errorAt(filters('{deadband: {field: value}}'), 'routes[0].filters.deadband')).toMatchObject({ message: 'needs absolute or percent', line: 11, column: 25 });
    expect(errorAt(filters('{deadband: {field: "a..b", percent: 5}}'), 'routes[0].filters.deadband.field').message).toBe("is not a dot path: 'a..b'");
    expect(parseConfigText(filters('{deadband: {percent: 5}, change_only: true}'), 'f.yaml').errors).toEqual([]);
  });

  it('sample needs exactly one of every and interval_ms', () => {
    expect(errorAt(filters('{sample: {}}'), 'routes[0].filters.sample').message).toBe('needs every or interval_ms');
    expect(errorAt(filters('{sample: {every: 2, interval_ms: 100}}'), 'routes[0].filters.sample').message).toBe('takes every or interval_ms, not both');
  });

  it('rate_limit needs per_second', () => {
    expect(errorAt(filters('{rate_limit: {burst: 3}}'), 'routes[0].filters.rate_limit.per_second').message).toBe('is required');
  });

  it.each(['9100', 'localhost:99999', ':9100'])('health.http_listen %j is refused', (listen) => {
    expect(errorAt(`${BASE}health: {http_listen: "${listen}"}\n`, 'health.http_listen').message).toBe(`must be HOST:PORT, not '${listen}'`);
  });

  it.each(['127.0.0.1:9100', '[::1]:9100', 'localhost:1'])('health.http_listen %j is accepted', (listen) => {
    expect(parseConfigText(`${BASE}health: {http_listen: "${listen}"}\n`, 'f.yaml').errors).toEqual([]);
  });

  it('run even when the schema found errors, so one pass reports everything', () => {
    const text = `${BASE}    qos: 9\n    sources: [nope]\n`;
    expect(errorsOf(text).map((e) => e.path)).toEqual(['routes[0].qos', 'routes[0].sources[0]']);
  });

  it('survive sections of the wrong type', () => {
    const text = 'device: []\nmqtt: "x"\nbinders: {a: 1}\nroutes: [1, "two", null]\ncommands: {allow: 3}\nhealth: []\n';
    const paths = errorsOf(text).map((e) => e.path);
    expect(paths).toEqual(['device', 'mqtt', 'binders', 'routes[0]', 'routes[1]', 'routes[2]', 'commands.allow', 'health']);
  });
});
