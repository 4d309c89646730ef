/**
 * Loading: the example file, defaults, schema errors made human (path,
 * message, hint, line:column), YAML syntax errors, JSON files.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatConfigError, loadConfigFile, parseConfigText } from '../../src/config/load.js';
import { CONFIG_SCHEMA } from '../../src/config/schema.js';
import { BASE, errorAt, errorsOf, tempDir } from './helpers.js';

const root = resolve(import.meta.dirname, '../..');

describe('valid files', () => {
  it('the example config validates', () => {
    const r = loadConfigFile(join(root, 'config/afb-edge.example.yaml'));
    expect(r.errors).toEqual([]);
    expect(r.config!.binders.map((b) => b.name)).toEqual(['vehicle']);
    expect(r.config!.binders[0]!.subscribe[0]).toEqual({ verb: 'subscribe', args: { event: 'speed' } });
    expect(r.config!.routes.map((x) => [x.name, x.qos, x.payload])).toEqual([['speed', 1, 'envelope'], ['rpm', 0, 'envelope'], ['alerts', 2, 'raw'], ['can', 1, 'raw'], ['speed-to-dash', 1, 'envelope']]);
    expect(r.config!.routes[4]!.link).toEqual({ name: 'can0', message: 'DashSpeed', values: { kmh: 'value' } });
    expect(r.config!.serial.links.map((l) => [l.name, l.protocol, l.messages.length])).toEqual([['can0', 'slcan', 2], ['mcu0', 'ndjson', 0]]);
    expect(r.config!.ecu_api.listen).toEqual(['unix:/run/platform/apis/ws/ecu']);
    expect(r.config!.routes[0]!.filters).toEqual({ deadband: { field: 'value', absolute: 0.5 }, rate_limit: { per_second: 2, burst: 4 } });
    expect(r.config!.commands.enabled).toBe(true);
  });

  it('applies every default', () => {
    const r = parseConfigText(BASE, 'afb-edge.yaml');
    expect(r.errors).toEqual([]);
    expect(r.config).toEqual({
      device: { id: 'car-1', labels: {} },
      binders: [{
        name: 'vehicle', spec: 'unix:/run/platform/apis/ws/vehicle', subscribe: [],
        reconnect: { initial_delay_ms: 250, max_delay_ms: 30000 }, call_timeout_ms: 10000,
      }],
      mqtt: {
        url: 'mqtt://localhost:1883', client_id: 'afb-edge-{device}', protocol_version: 5, keepalive_s: 30,
        clean_session: false, topic_prefix: 'afb-edge', status_topic: '{prefix}/{device}/status',
        reconnect: { initial_delay_ms: 500, max_delay_ms: 30000 }, qos0_max_queue: 1000, status_interval_s: 60,
      },
      routes: [{
        name: 'speed', match: ['vehicle/speed'], topic: '{prefix}/{device}/events/{api}/{event}',
        qos: 1, retain: false, payload: 'envelope', filters: {},
      }],
      commands: {
        enabled: false, topic: '{prefix}/{device}/call', reply_topic: '{prefix}/{device}/reply',
        allow: [], timeout_ms: 5000, max_concurrent: 16, max_queue: 256,
      },
      outbox: { path: '/var/lib/afb-edge/outbox.db', max_messages: 100000, max_bytes: 67108864, policy: 'drop-oldest', max_inflight: 1000, synchronous: 'full', sync_interval_ms: 10, commit_delay_ms: 0 },
      logging: { level: 'info' },
      health: { topic: '{prefix}/{device}/health' },
      serial: { links: [] },
      ecu_api: { listen: [], max_connections: 16, max_buffered_bytes: 4194304, max_backlog_bytes: 1048576, partial_message_timeout_ms: 10000 },
    });
  });

  it('fills defaults inside partly given sections and list items', () => {
    const r = parseConfigText(`${BASE}    filters: {rate_limit: {per_second: 5}}\ncommands: {enabled: true}\n`, 'f.yaml');
    expect(r.errors).toEqual([]);
    expect(r.config!.routes[0]!.filters.rate_limit).toEqual({ per_second: 5, burst: 1 });
    expect(r.config!.commands).toMatchObject({ enabled: true, allow: [], timeout_ms: 5000 });
  });

  it('gives subscribe calls null args by default, and TLS reject_unauthorized true', () => {
    const text = BASE.replace('    spec: unix:/run/platform/apis/ws/vehicle\n', '    spec: unix:/run/platform/apis/ws/vehicle\n    subscribe: [{verb: subscribe}]\n')
      .replace('mqtt://localhost:1883', 'mqtts://localhost:8883\n  tls: {ca_file: /etc/ca.pem}');
    const r = parseConfigText(text, 'f.yaml');
    expect(r.errors).toEqual([]);
    expect(r.config!.binders[0]!.subscribe).toEqual([{ verb: 'subscribe', args: null }]);
    expect(r.config!.mqtt.tls).toEqual({ ca_file: '/etc/ca.pem', reject_unauthorized: true });
  });

  it('accepts empty binder and route lists', () => {
    const r = parseConfigText('device: {id: d}\nmqtt: {url: "mqtt://b"}\nbinders: []\nroutes: []\n', 'f.yaml');
    expect(r.errors).toEqual([]);
    expect(r.config!.routes).toEqual([]);
  });

  it('supports YAML anchors and merge keys to share route settings', () => {
    const text = `${BASE}    <<: &common {qos: 0, retain: true}
  - {name: rpm, match: [vehicle/engine_rpm], <<: *common}
`;
    const r = parseConfigText(text, 'f.yaml');
    expect(r.errors).toEqual([]);
    expect(r.config!.routes.map((x) => [x.qos, x.retain])).toEqual([[0, true], [0, true]]);
  });
});

describe('schema errors', () => {
  it('names the unknown key, suggests the closest one, and points at the key', () => {
    const e = errorAt(`${BASE}logging:\n  levle: debug\n`, 'logging.levle');
    expect(e).toEqual({ path: 'logging.levle', message: "unknown key 'levle'", hint: "did you mean 'level'?", line: 12, column: 3 });
  });

  it('lists the allowed keys when nothing is close', () => {
    const e = errorAt(`${BASE}logging:\n  colour: red\n`, 'logging.colour');
    expect(e.hint).toBe('allowed here: level');
  });

  it('counts a prefix as close: timeout -> timeout_ms', () => {
    expect(errorAt(`${BASE}commands: {timeout: 100}\n`, 'commands.timeout').hint).toBe("did you mean 'timeout_ms'?");
  });

  it('reports enum violations with the allowed values and a field hint', () => {
    const e = errorAt(`${BASE}    qos: 3\n`, 'routes[0].qos');
    expect(e.message).toBe('must be 0, 1 or 2, not 3');
    expect(e.hint).toMatch(/at least once/);
    expect([e.line, e.column]).toEqual([11, 10]);
    expect(formatConfigError(e, 'afb-edge.yaml')).toMatch(/^afb-edge\.yaml:11:10: routes\[0\]\.qos: must be 0, 1 or 2, not 3 \(hint: 0 = at most once/);
  });

  it('suggests removing quotes from a quoted number', () => {
    const e = errorAt(BASE.replace('  url: mqtt://localhost:1883\n', '  url: mqtt://localhost:1883\n  protocol_version: "4"\n'), 'mqtt.protocol_version');
    expect(e).toMatchObject({ message: 'must be 4 or 5, not "4"', hint: 'write the number without quotes', line: 5, column: 21 });
    const t = errorAt(BASE.replace('  url: mqtt://localhost:1883\n', '  url: mqtt://localhost:1883\n  keepalive_s: "30"\n'), 'mqtt.keepalive_s');
    expect(t).toMatchObject({ message: 'expected an integer, got a string', hint: 'write the number without quotes' });
  });

  it('says what type was expected and what was found', () => {
    expect(errorAt(BASE.replace('[vehicle/speed]', 'vehicle/speed'), 'routes[0].match')).toMatchObject({
      message: 'expected a list, got a string', line: 10, column: 12,
    });
    expect(errorAt(`${BASE}    retain: yes\n`, 'routes[0].retain')).toMatchObject({
      message: 'expected true or false, got a string', hint: expect.stringMatching(/YAML 1\.2/),
    });
    expect(errorAt(`${BASE}outbox:\n  max_bytes: 1.5\n`, 'outbox.max_bytes').message).toBe('expected an integer, got a number with a fraction (1.5)');
    expect(errorAt(`${BASE}health: 5\n`, 'health').message).toBe('expected a mapping, got an integer');
  });

  it('renders label keys with dots unambiguously and locates them', () => {
    const text = BASE.replace('  id: car-1\n', '  id: car-1\n  labels:\n    fleet.name: 42\n');
    expect(errorAt(text, 'device.labels["fleet.name"]')).toMatchObject({ message: 'expected a string, got an integer', hint: 'quote it', line: 4, column: 17 });
  });

  it('reports missing required keys at their parent, with a hint', () => {
    const text = 'device:\n  labels: {}\nmqtt:\n  keepalive_s: 10\n';
    const errors = errorsOf(text);
    expect(errors.map((e) => [e.path, e.message, e.line, e.column])).toEqual([
      ['binders', 'is required', 1, 1],
      ['routes', 'is required', 1, 1],
      ['device.id', 'is required', 2, 3],
      ['mqtt.url', 'is required', 4, 3],
    ]);
    expect(errors[0]!.hint).toBe('write binders: [] when there are none');
    expect(errors[2]!.hint).toMatch(/id: car-0042/);
  });

  it('points at the key of a key without a value', () => {
    expect(errorAt(BASE.replace('  id: car-1\n', '  id: car-1\n  labels:\n'), 'device.labels')).toMatchObject({
      message: 'expected a mapping, got an empty value', line: 3, column: 3,
    });
  });

  it('reports bounds', () => {
    const text = `${BASE}    filters:\n      rate_limit: {per_second: 0, burst: 0}\noutbox: {max_messages: 0, max_bytes: -1, max_inflight: 0}\n`;
    const errors = errorsOf(text);
    expect(errors.map((e) => `${e.line}:${e.column} ${e.path}: ${e.message}`)).toEqual([
      '12:32 routes[0].filters.rate_limit.per_second: must be > 0, not 0',
      '12:42 routes[0].filters.rate_limit.burst: must be ≥ 1, not 0',
      '13:24 outbox.max_messages: must be ≥ 1, not 0',
      '13:38 outbox.max_bytes: must be ≥ 1, not -1',
      '13:56 outbox.max_inflight: must be ≥ 1, not 0',
    ]);
  });

  it('reports the bounds of the outbox timings (0 to 1000 ms, integers)', () => {
    const text = `${BASE}outbox: {sync_interval_ms: -1, commit_delay_ms: 1001}\n`;
    expect(errorsOf(text).map((e) => `${e.path}: ${e.message}`)).toEqual([
      'outbox.sync_interval_ms: must be ≥ 0, not -1',
      'outbox.commit_delay_ms: must be ≤ 1000, not 1001',
    ]);
    expect(errorsOf(`${BASE}outbox: {sync_interval_ms: 2.5, commit_delay_ms: "20"}\n`).map((e) => e.path)).toEqual(['outbox.sync_interval_ms', 'outbox.commit_delay_ms']);
  });

  it('reports every error of a file at once, in file order', () => {
    const text = `device:
  id: car-1
  lables: {}
mqtt:
  url: mqtt://localhost:1883
  protocol_version: 3
binders: []
routes:
  - name: speed
    match: []
    payload: json
logging: {level: verbose}
`;
    const errors = errorsOf(text);
    expect(errors.map((e) => `${e.line} ${e.path}`)).toEqual([
      '3 device.lables', '6 mqtt.protocol_version', '10 routes[0].match', '11 routes[0].payload', '12 logging.level',
    ]);
    expect(errors[1]!.hint).toBe('4 = MQTT 3.1.1, 5 = MQTT 5');
    expect(errors[4]!.message).toBe("must be 'debug', 'info', 'warn' or 'error', not \"verbose\"");
  });

  it('rejects a file that is empty or not a mapping', () => {
    expect(errorsOf('')).toEqual([{ path: '', message: 'the file must be a mapping with the keys device, mqtt, binders and routes', line: 1, column: 1 }]);
    expect(errorsOf('# comment\n- a\n')[0]).toMatchObject({ line: 2, column: 1 });
  });
});

describe('secrets in the config text', () => {
  it('rejects an inline password, hinting at password_file, without echoing it', () => {
    const text = BASE.replace('  url: mqtt://localhost:1883\n', '  url: mqtt://localhost:1883\n  password: hunter2\n');
    const e = errorAt(text, 'mqtt.password');
    expect(e).toMatchObject({ message: "unknown key 'password'", line: 5, column: 3 });
    expect(e.hint).toMatch(/never written in the config.*password_file/);
    expect(JSON.stringify(errorsOf(text))).not.toContain('hunter2');
  });

  it('rejects inline TLS keys and passphrases, hinting at the *_file keys', () => {
    const text = BASE.replace('mqtt://localhost:1883', 'mqtts://b:8883\n  tls:\n    key: "-----BEGIN PRIVATE KEY----- s3cr3t"\n    passphrase: s3cr3t\n    api_token: s3cr3t');
    const errors = errorsOf(text);
    expect(errors.find((e) => e.path === 'mqtt.tls.key')!.hint).toMatch(/set key_file$/);
    expect(errors.find((e) => e.path === 'mqtt.tls.passphrase')!.hint).toMatch(/set key_passphrase_file$/);
    expect(errors.find((e) => e.path === 'mqtt.tls.api_token')!.hint).toMatch(/read from files \(ca_file, cert_file, key_file, key_passphrase_file\)/);
    expect(JSON.stringify(errors)).not.toContain('s3cr3t');
  });
});

describe('YAML syntax errors', () => {
  it('are reported with line and column, and no schema errors on top', () => {
    const errors = errorsOf('device:\n  id: a\nmqtt: {url: "mqtt://b"\nbinders: []\n');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/^YAML: /);
    expect(errors[0]!.path).toBe('');
    expect(errors[0]!.line).toBeGreaterThanOrEqual(3);
  });

  it('reports tabs, duplicate keys and several documents with hints', () => {
    expect(errorsOf('device:\n\tid: a\n')[0]).toMatchObject({ line: 2, column: 1, hint: 'indent with spaces' });
    expect(errorsOf(`${BASE}device: {id: b}\n`)[0]).toMatchObject({ message: 'YAML: Map keys must be unique', line: 11, column: 1 });
    expect(errorsOf(`${BASE}---\n${BASE}`)[0]!.hint).toMatch(/one document per file/);
  });

  it('formats a position-only error without a path', () => {
    const e = errorsOf('a: [\n')[0]!;
    expect(formatConfigError(e, 'x.yaml')).toMatch(/^x\.yaml:\d+:\d+: YAML: /);
  });
});

describe('JSON files', () => {
  const json = JSON.stringify({
    device: { id: 'car-1' }, mqtt: { url: 'mqtt://b' }, binders: [{ name: 'v', spec: 'unix:@v' }], routes: [{ name: 'r', match: ['v/*'] }],
  }, null, '\t');

  it('are accepted, tabs included, with defaults applied', () => {
    const t = tempDir();
    try {
      writeFileSync(join(t.dir, 'agent.json'), json);
      const r = loadConfigFile(join(t.dir, 'agent.json'));
      expect(r.errors).toEqual([]);
      expect(r.config!.routes[0]!.qos).toBe(1);
    } finally {
      t.remove();
    }
  });

  it('are held to JSON scalars and located by line', () => {
    const text = json.replace('"mqtt://b"', 'yes');
    const e = errorsOf(text, 'agent.json')[0]!;
    expect(e).toMatchObject({ message: 'YAML: Unresolved plain scalar "yes"', line: 6, column: 10 });
  });

  it('place schema errors by line too', () => {
    expect(errorAt(json.replace('"r"', '"r", "qos": 7'), 'routes[0].qos')).toMatchObject({ line: 16, column: 24 }); // three tabs count as three columns
  });
});

describe('files', () => {
  it('a missing file is an error, not an exception', () => {
    expect(loadConfigFile('/nonexistent/afb-edge.yaml').errors).toEqual([{ path: '', message: 'cannot read the file: no such file' }]);
  });

  it('formatConfigError without line or hint', () => {
    expect(formatConfigError({ path: '', message: 'cannot read the file: no such file' }, 'a.yaml')).toBe('a.yaml: cannot read the file: no such file');
    expect(formatConfigError({ path: 'x', message: 'm', line: 2, column: 3 }, 'a.yaml')).toBe('a.yaml:2:3: x: m');
  });
});

describe('documentation', () => {
  /** Every key of the schema, as `section[].key`. */
  function keys(schema: unknown, path: string): string[] {
    const s = schema as { properties?: Record<string, unknown>; items?: unknown };
    if (s.items !== undefined) return keys(s.items, `${path}[]`);
    return Object.entries(s.properties ?? {}).flatMap(([k, sub]) => {
      const p = path === '' ? k : `${path}.${k}`;
      return [p, ...keys(sub, p)];
    });
  }

  it('docs/config.md names every key of the schema', () => {
    const doc = readFileSync(join(root, 'docs/config.md'), 'utf8');
    const all = keys(CONFIG_SCHEMA, '');
    expect(all.length).toBeGreaterThan(60);
    const undocumented = all.filter((k) => !new RegExp(`\\b${k.split('.').pop()!.replace('[]', '')}\\b`).test(doc));
    expect(undocumented).toEqual([]);
  });
});
