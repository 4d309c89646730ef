/**
 * Checks a schema cannot express well: cross references, topic templates,
 * the broker URL, combinations of fields. They run even when the schema
 * found errors (so that one run reports everything), hence the defensive
 * reads: any part of `data` may have the wrong type here.
 */
import { isAbsolute, resolve } from 'node:path';
import { linkSignalMap, type DbcSource, type LinkSignalMap, type MessageSpec } from '../serial/can-signals.js';
import { DbcSyntaxError } from '../serial/dbc/errors.js';
import { loadDbcFile } from '../serial/dbc/load.js';
import { parseSpec } from '../wsapi/spec.js';
import { closest, showKey, someNames, type Issue, type Segments } from './errors.js';

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const obj = (x: unknown): Obj => (isObj(x) ? x : {});
const list = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);
const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);

export const ROUTE_TOPIC_VARS = ['prefix', 'device', 'source', 'api', 'event'] as const;
export const AGENT_TOPIC_VARS = ['prefix', 'device'] as const;
const DATA_VAR = /^data(\.[A-Za-z0-9_-]+)+$/;
const FIELD_PATH = /^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?$/;
const MQTT_SCHEMES = ['mqtt', 'mqtts', 'tcp', 'ssl'];
const TLS_SCHEMES = ['mqtts', 'ssl'];
const URL_HINT = 'mqtt://HOST:1883, or mqtts://HOST:8883 for TLS';

export interface SemanticOptions {
  /** Folder relative file names in the config (DBC files) are relative to: the config file's. Default: the working directory. */
  baseDir?: string;
}

/** A link's `dbc` entry as a path: relative ones are relative to the config file's folder. */
export function dbcPath(file: string, baseDir: string | undefined): string {
  return isAbsolute(file) ? file : resolve(baseDir ?? '.', file);
}

export function semanticIssues(data: unknown, options: SemanticOptions = {}): Issue[] {
  const out: Issue[] = [];
  const root = obj(data);
  const binderNames = checkBinders(root.binders, out);
  const links = checkLinks(obj(root.serial).links, binderNames, options.baseDir, out);
  const sources = { binders: binderNames, links: [...links.keys()], all: new Set([...binderNames, ...links.keys()]) };
  checkMqtt(obj(root.mqtt), out);
  checkRoutes(root.routes, sources, links, out);
  checkCommands(obj(root.commands), sources, out);
  checkEcuApi(obj(root.ecu_api), out);
  const health = obj(root.health);
  template(health.topic, ['health', 'topic'], AGENT_TOPIC_VARS, false, true, out);
  const listen = str(health.http_listen);
  if (listen !== undefined && !validListen(listen)) {
    out.push({ segments: ['health', 'http_listen'], message: `must be HOST:PORT, not '${showKey(listen)}'`, hint: "127.0.0.1:9100 for local scraping only, 0.0.0.0:9100 for every interface" });
  }
  return out;
}

function validListen(text: string): boolean {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(text);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}

/** First occurrence of each name; later ones are reported as duplicates. */
function unique(items: unknown[], key: string, base: string, out: Issue[]): Map<string, number> {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const name = str(obj(item)[key]);
    if (name === undefined) return;
    const first = seen.get(name);
    if (first !== undefined) {
      const what = base === 'binders' ? 'binder' : base === 'routes' ? 'route' : 'link';
      out.push({ segments: [base === 'links' ? 'serial' : base, ...(base === 'links' ? ['links'] : []), i, key], message: `duplicate ${what} name '${showKey(name)}'`, hint: `already used by ${base === 'links' ? 'serial.links' : base}[${first}]; names must be unique` });
    } else {
      seen.set(name, i);
    }
  });
  return seen;
}

function checkBinders(binders: unknown, out: Issue[]): string[] {
  const items = list(binders);
  const names = unique(items, 'name', 'binders', out);
  items.forEach((item, i) => {
    const b = obj(item);
    const spec = str(b.spec);
    if (spec !== undefined && spec !== '') {
      try {
        parseSpec(spec);
      } catch (err) {
        out.push({ segments: ['binders', i, 'spec'], message: (err as Error).message, hint: 'unix:/run/platform/apis/ws/NAME, unix:@NAME, tcp:HOST:PORT/NAME or sd:NAME' });
      }
    }
    backoff(b.reconnect, ['binders', i, 'reconnect'], out);
  });
  return [...names.keys()];
}

function backoff(value: unknown, segments: Segments, out: Issue[]): void {
  const b = obj(value);
  if (typeof b.initial_delay_ms === 'number' && typeof b.max_delay_ms === 'number' && b.max_delay_ms < b.initial_delay_ms) {
    out.push({ segments: [...segments, 'max_delay_ms'], message: `must be ≥ initial_delay_ms (${b.initial_delay_ms})`, hint: 'the delay doubles from initial_delay_ms up to max_delay_ms' });
  }
}

function checkMqtt(mqtt: Obj, out: Issue[]): void {
  const url = str(mqtt.url);
  let scheme: string | undefined;
  if (url !== undefined && url !== '') {
    // The URL is never echoed: it might carry credentials.
    let u: URL | undefined;
    try { u = new URL(url); } catch { out.push({ segments: ['mqtt', 'url'], message: 'is not a URL', hint: URL_HINT }); }
    if (u !== undefined) {
      scheme = u.protocol.replace(/:$/, '');
      if (!MQTT_SCHEMES.includes(scheme)) {
        out.push({ segments: ['mqtt', 'url'], message: `unsupported scheme '${scheme}:'`, hint: `${URL_HINT} (tcp:// and ssl:// are accepted as aliases)` });
        scheme = undefined;
      } else if (u.hostname === '') {
        out.push({ segments: ['mqtt', 'url'], message: 'has no host', hint: URL_HINT });
      }
      if (u.username !== '' || u.password !== '') {
        out.push({ segments: ['mqtt', 'url'], message: 'must not contain credentials', hint: 'set mqtt.username, and mqtt.password_file to a file or systemd credential holding the password' });
      }
    }
  }
  const tls = mqtt.tls;
  if (isObj(tls)) {
    if (scheme !== undefined && !TLS_SCHEMES.includes(scheme)) {
      out.push({ segments: ['mqtt', 'tls'], message: `TLS settings need an mqtts:// url, not ${scheme}://`, hint: 'change the url to mqtts://HOST:8883, or remove the tls section' });
    }
    if ((tls.cert_file === undefined) !== (tls.key_file === undefined)) {
      const missing = tls.cert_file === undefined ? 'cert_file' : 'key_file';
      out.push({ segments: ['mqtt', 'tls'], message: `client authentication (mTLS) needs both cert_file and key_file; ${missing} is missing` });
    }
    if (tls.key_passphrase_file !== undefined && tls.key_file === undefined) {
      out.push({ segments: ['mqtt', 'tls', 'key_passphrase_file'], message: 'is given without key_file' });
    }
    for (const f of ['ca_file', 'cert_file', 'key_file', 'key_passphrase_file']) secretRef(tls[f], ['mqtt', 'tls', f], out);
  }
  secretRef(mqtt.password_file, ['mqtt', 'password_file'], out);
  if (mqtt.protocol_version === 4 && mqtt.password_file !== undefined && mqtt.username === undefined) {
    out.push({ segments: ['mqtt', 'password_file'], message: 'MQTT 3.1.1 sends a password only with a username', hint: 'set mqtt.username, or use protocol_version: 5' });
  }
  const prefix = str(mqtt.topic_prefix);
  if (prefix !== undefined) {
    const bad = /[{}+#\0]/.exec(prefix);
    if (bad !== null) out.push({ segments: ['mqtt', 'topic_prefix'], message: `must not contain '${bad[0] === '\0' ? 'NUL' : bad[0]}'`, hint: 'a literal topic part such as fleet/afb-edge' });
    else if (prefix.startsWith('$')) out.push({ segments: ['mqtt', 'topic_prefix'], message: "must not start with '$'", hint: "topics starting with '$' are reserved to the broker ($SYS...)" });
  }
  template(mqtt.status_topic, ['mqtt', 'status_topic'], AGENT_TOPIC_VARS, false, true, out);
  template(mqtt.client_id, ['mqtt', 'client_id'], AGENT_TOPIC_VARS, false, false, out);
  backoff(mqtt.reconnect, ['mqtt', 'reconnect'], out);
}

/** A *_file value must name a file or credential: catch the secret itself pasted in. Never echoed. */
function secretRef(value: unknown, segments: Segments, out: Issue[]): void {
  const ref = str(value);
  if (ref !== undefined && (/[\n\r]/.test(ref) || ref.startsWith('-----BEGIN'))) {
    out.push({ segments, message: 'must be a file path or a systemd credential name, not the secret itself', hint: 'put the secret in a file readable only by the agent, or in a systemd credential (LoadCredential=)' });
  }
}

interface SourceNames { binders: string[]; links: string[]; all: Set<string> }

/** A link as the route checks see it: its config, and its merged signal map when that loaded. */
interface LinkInfo {
  config: Obj;
  map: LinkSignalMap | undefined;
}

function checkRoutes(routes: unknown, sources: SourceNames, links: Map<string, LinkInfo>, out: Issue[]): void {
  const items = list(routes);
  unique(items, 'name', 'routes', out);
  items.forEach((item, i) => {
    const r = obj(item);
    list(r.sources).forEach((s, j) => {
      if (typeof s === 'string' && !isSource(s, sources)) out.push(unknownBinder(s, ['routes', i, 'sources', j], sources));
    });
    if (isObj(r.link)) checkRouteLink(r.link, ['routes', i, 'link'], links, out);
    template(r.topic, ['routes', i, 'topic'], ROUTE_TOPIC_VARS, true, true, out);
    const f = obj(r.filters);
    if (isObj(f.deadband)) {
      const d = f.deadband;
      if (d.absolute === undefined && d.percent === undefined) {
        out.push({ segments: ['routes', i, 'filters', 'deadband'], message: 'needs absolute or percent', hint: 'e.g. deadband: { field: value, absolute: 0.5 }' });
      }
      if (typeof d.field === 'string' && !FIELD_PATH.test(d.field)) {
        out.push({ segments: ['routes', i, 'filters', 'deadband', 'field'], message: `is not a dot path: '${showKey(d.field)}'`, hint: "e.g. 'value' or 'speed.kmh'; empty for the data itself" });
      }
    }
    if (isObj(f.sample)) {
      const s = f.sample;
      if (s.every === undefined && s.interval_ms === undefined) {
        out.push({ segments: ['routes', i, 'filters', 'sample'], message: 'needs every or interval_ms', hint: 'every: N keeps one event out of N; interval_ms: T keeps at most one per T ms' });
      } else if (s.every !== undefined && s.interval_ms !== undefined) {
        out.push({ segments: ['routes', i, 'filters', 'sample'], message: 'takes every or interval_ms, not both', hint: 'use two routes, or a rate_limit, to combine them' });
      }
    }
  });
}

function checkCommands(cmd: Obj, sources: SourceNames, out: Issue[]): void {
  template(cmd.topic, ['commands', 'topic'], AGENT_TOPIC_VARS, false, true, out);
  template(cmd.reply_topic, ['commands', 'reply_topic'], AGENT_TOPIC_VARS, false, true, out);
  list(cmd.allow).forEach((a, i) => {
    const b = str(obj(a).binder);
    if (b !== undefined && !isSource(b, sources)) out.push(unknownBinder(b, ['commands', 'allow', i, 'binder'], sources));
  });
}

const isSource = (name: string, s: SourceNames): boolean => s.all.has(name);

/** Binders and serial links share one namespace (routes' sources, commands' targets). */
function unknownBinder(name: string, segments: Segments, sources: SourceNames): Issue {
  const hint = () => {
    const near = closest(name, [...sources.all]);
    const listed = [
      ...(sources.binders.length > 0 ? [`binders are: ${someNames(sources.binders)}`] : []),
      ...(sources.links.length > 0 ? [`serial links are: ${someNames(sources.links)}`] : []),
    ].join('; ');
    return near !== undefined ? `did you mean '${showKey(near)}'?` : listed !== '' ? listed : 'no binder is configured';
  };
  return { segments, message: `unknown ${sources.links.length > 0 ? 'binder or serial link' : 'binder'} '${showKey(name)}'`, hint };
}

/** Returns the links by name (first of each name), with their signal maps. */
function checkLinks(value: unknown, binderList: string[], baseDir: string | undefined, out: Issue[]): Map<string, LinkInfo> {
  const binders = new Set(binderList);
  const items = list(value);
  const names = unique(items, 'name', 'links', out);
  const byName = new Map<string, LinkInfo>();
  items.forEach((item, i) => {
    const l = obj(item);
    const at = (...rest: Array<string | number>): Segments => ['serial', 'links', i, ...rest];
    const name = str(l.name);
    if (name !== undefined && binders.has(name)) {
      out.push({ segments: at('name'), message: `'${showKey(name)}' is already a binder name`, hint: 'binders and serial links share one namespace (route sources, command targets): rename one' });
    }
    const device = str(l.device);
    if (device !== undefined && device !== '' && !device.startsWith('/')) {
      out.push({ segments: at('device'), message: `must be an absolute device path, not '${showKey(device)}'`, hint: 'e.g. /dev/ttyACM0, or a stable /dev/serial/by-id/... name' });
    }
    const map = checkSignalMap(l, at, baseDir, out);
    if (name !== undefined && names.get(name) === i) byName.set(name, { config: l, map });
    backoff(l.reopen, at('reopen'), out);
  });
  return byName;
}

/** The link's YAML messages and DBC files: each file read and compiled, then merged (an id in two places is an error). */
function checkSignalMap(l: Obj, at: (...rest: Array<string | number>) => Segments, baseDir: string | undefined, out: Issue[]): LinkSignalMap | undefined {
  const messages = list(l.messages);
  const dbcs = list(l.dbc);
  if (messages.length + dbcs.length === 0) return undefined;
  // slcan, or a JSON link whose MCU gateways CAN frames as `can` events; not raw COBS payloads.
  if (l.protocol === 'cobs' && obj(l.cobs).payload === 'raw') {
    out.push({ segments: at(messages.length > 0 ? 'messages' : 'dbc'), message: 'a CAN message map needs protocol slcan, or a JSON link (ndjson, cobs with payload json) carrying "can" events; not cobs payload raw' });
    return undefined;
  }
  const sources: DbcSource[] = [];
  let failed = false;
  dbcs.forEach((f, j) => {
    if (typeof f !== 'string' || f === '') return;
    try {
      sources.push({ file: f, dbc: loadDbcFile(dbcPath(f, baseDir)) });
    } catch (err) {
      failed = true;
      const hint = err instanceof DbcSyntaxError ? 'fix the DBC file (cantools or CANdb++ name the same place)' : 'a path relative to the config file\'s folder, or an absolute one';
      out.push({ segments: at('dbc', j), message: (err as Error).message, hint });
    }
  });
  try {
    const map = linkSignalMap(messages as MessageSpec[], sources);
    return failed ? undefined : map;
  } catch (err) {
    out.push({ segments: at(sources.length > 0 && messages.length > 0 ? 'dbc' : messages.length > 0 ? 'messages' : 'dbc'), message: (err as Error).message });
    return undefined;
  }
}

function checkRouteLink(target: Obj, segments: Segments, links: Map<string, LinkInfo>, out: Issue[]): void {
  const name = str(target.name);
  if (name === undefined) return;
  const info = links.get(name);
  if (info === undefined) {
    const hint = () => {
      const near = closest(name, [...links.keys()]);
      return near !== undefined ? `did you mean '${showKey(near)}'?` : links.size > 0 ? `serial links are: ${someNames([...links.keys()])}` : 'no serial link is configured (serial.links)';
    };
    out.push({ segments: [...segments, 'name'], message: `unknown serial link '${showKey(name)}'`, hint });
    return;
  }
  const link = info.config;
  const message = str(target.message);
  if (message === undefined) {
    if (isObj(target.values)) out.push({ segments: [...segments, 'values'], message: 'needs message: values are signals of a message of the link\'s map' });
    return;
  }
  if (link.protocol !== 'slcan' && list(link.messages).length === 0 && list(link.dbc).length === 0) {
    out.push({ segments: [...segments, 'message'], message: `only links with a CAN message map encode messages; '${showKey(name)}' is ${showKey(String(link.protocol))} without messages or dbc`, hint: 'a JSON link receives {"event","data"}: remove message and values, or give the link the messages (dbc) of its CAN gateway' });
    return;
  }
  // A map that did not load was reported at the link: nothing more to say here.
  if (info.map === undefined && (list(link.messages).length > 0 || list(link.dbc).length > 0)) return;
  const signalList = info.map?.signalsOf(message);
  if (signalList === undefined) {
    const hint = () => {
      const near = closest(message, info.map?.messageNames ?? []);
      return near !== undefined ? `did you mean '${showKey(near)}'?` : 'declare it in the link\'s messages or dbc files';
    };
    out.push({ segments: [...segments, 'message'], message: `link '${showKey(name)}' has no message '${showKey(message)}'`, hint });
    return;
  }
  const signals = new Set(signalList);
  for (const [sig, path] of Object.entries(obj(target.values))) {
    if (!signals.has(sig)) {
      const hint = () => {
        const names = signalList;
        const near = closest(sig, names);
        return near !== undefined ? `did you mean '${showKey(near)}'?` : `signals are: ${someNames(names)}`;
      };
      out.push({ segments: [...segments, 'values', sig], message: `message '${showKey(message)}' has no signal '${showKey(sig)}'`, hint });
    } else if (typeof path === 'string' && !FIELD_PATH.test(path)) {
      out.push({ segments: [...segments, 'values', sig], message: `is not a dot path: '${showKey(path)}'`, hint: "e.g. 'value' or 'speed.kmh'; empty for the data itself" });
    }
  }
}

function checkEcuApi(api: Obj, out: Issue[]): void {
  list(api.listen).forEach((spec, i) => {
    if (typeof spec !== 'string' || spec === '') return;
    try {
      parseSpec(spec);
    } catch (err) {
      out.push({ segments: ['ecu_api', 'listen', i], message: (err as Error).message, hint: 'unix:/run/platform/apis/ws/ecu or sd:ecu (socket activation)' });
    }
  });
}

/**
 * Checks a template's placeholders and, for topics, its literal parts: no
 * wildcard, no NUL, no leading '$' (values substituted at run time are the
 * router's job to escape; the literal text is the user's).
 */
function template(value: unknown, segments: Segments, vars: readonly string[], dataVars: boolean, topic: boolean, out: Issue[]): void {
  const text = str(value);
  if (text === undefined) return;
  const known = [...vars.map((v) => `{${v}}`), ...(dataVars ? ['{data.FIELD}'] : [])].join(' ');
  for (const m of text.matchAll(/\{([^{}]*)\}/g)) {
    const name = m[1]!;
    if (vars.includes(name) || (dataVars && DATA_VAR.test(name))) continue;
    const hint = () => {
      const near = closest(name, vars);
      return name === 'data' && dataVars ? 'name a field: {data.speed}' : `${near !== undefined ? `did you mean {${near}}? ` : ''}known here: ${known}`;
    };
    out.push({ segments, message: `unknown placeholder '{${showKey(name)}}'`, hint });
  }
  const literal = text.replace(/\{[^{}]*\}/g, '');
  if (/[{}]/.test(literal)) out.push({ segments, message: "has an unbalanced '{' or '}'", hint: `placeholders: ${known}` });
  if (!topic) return;
  const wild = /[+#\0]/.exec(literal);
  if (wild !== null) {
    out.push({ segments, message: `must not contain '${wild[0] === '\0' ? 'NUL' : wild[0]}'`, hint: "'+' and '#' are MQTT wildcards: a topic to publish on cannot contain them" });
  }
  if (text.startsWith('$')) out.push({ segments, message: "must not start with '$'", hint: "topics starting with '$' are reserved to the broker ($SYS...)" });
}
