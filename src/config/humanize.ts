/**
 * Turns ajv's errors into Issues a person can act on: which key is unknown
 * and the likely intended one, the allowed values, expected vs found type.
 */
import type { ErrorObject } from 'ajv';
import { NAME_PATTERN } from './schema.js';
import { closest, genericPath, orList, show, showKey, type Issue } from './errors.js';

/** Keys people write inline although secrets must come from files: the key to use instead. */
const SECRET_KEYS: Record<string, string> = {
  password: 'password_file',
  passwd: 'password_file',
  pass: 'password_file',
  key: 'key_file',
  private_key: 'key_file',
  passphrase: 'key_passphrase_file',
  key_passphrase: 'key_passphrase_file',
};
/**
 * Names that say they hold a secret (`api_key`, `auth_token`, `db_password`):
 * whole words only, so that `bogus_key`, `monkey` or `passenger` get the
 * ordinary hint.
 */
const SECRET_LIKE = /(^|[_-])(pass|passwd|password|passphrase|secret|token|credentials?|psk)([_-]|$)|(^|[_-])(private|api|access|secret)[_-]?key([_-]|$)/i;

/** Extra words on fields whose meaning is not obvious from the allowed values. */
const FIELD_HINTS: Record<string, string> = {
  'mqtt.protocol_version': '4 = MQTT 3.1.1, 5 = MQTT 5',
  'routes[].qos': '0 = at most once, 1 = at least once (durable outbox), 2 = exactly once (durable outbox)',
  'routes[].payload': "'raw': the event data as JSON; 'envelope': {event, source, timestamp, seq, data}",
  'outbox.policy': "when the outbox is full: 'drop-oldest' discards the oldest message, 'reject-new' the new one",
};

const REQUIRED_HINTS: Record<string, string> = {
  'device.id': 'the identity of this device in topics, e.g. id: car-0042',
  'mqtt.url': 'e.g. url: mqtts://broker.example.com:8883',
  binders: 'write binders: [] when there are none',
  routes: 'write routes: [] when there are none',
};

function typeName(t: string): string {
  return ({ object: 'a mapping', array: 'a list', string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false', null: 'null' } as Record<string, string>)[t] ?? t;
}

function describe(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : `a number with a fraction (${value})`;
  if (typeof value === 'boolean') return `${value}`;
  return `a ${typeof value}`;
}

/** Converts one ajv error; `segments` is its instancePath already split into keys and indexes. */
export function humanize(e: ErrorObject, segments: Array<string | number>): Issue {
  const field = genericPath(segments);
  switch (e.keyword) {
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty;
      const path = [...segments, key];
      return { segments: path, message: 'is required', hint: REQUIRED_HINTS[genericPath(path)] };
    }
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      return { segments: [...segments, key], message: `unknown key '${showKey(key)}'`, hint: () => unknownKeyHint(key, allowed), onKey: true };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      const quoted = typeof e.data === 'string' && allowed.some((a) => String(a) === e.data && typeof a !== 'string');
      const hint = quoted ? 'write the number without quotes' : FIELD_HINTS[field];
      return { segments, message: `must be ${orList(allowed)}, not ${show(e.data)}`, hint };
    }
    case 'type': {
      const expected = (e.params as { type: string }).type;
      return { segments, message: `expected ${typeName(expected)}, got ${describe(e.data)}`, hint: typeHint(expected, e.data) };
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const { comparison, limit } = e.params as { comparison: string; limit: number };
      return { segments, message: `must be ${comparison.replace('>=', '≥').replace('<=', '≤')} ${limit}, not ${show(e.data)}` };
    }
    case 'minItems':
      return { segments, message: 'must not be an empty list' };
    case 'minLength':
      return { segments, message: 'must not be empty' };
    case 'pattern':
      if ((e.params as { pattern: string }).pattern === NAME_PATTERN) {
        return { segments, message: `may only contain letters, digits, '.', '_' and '-', not ${show(e.data)}`, hint: "it is used in MQTT topics and metrics, where '/', '+', '#' or spaces would change their meaning" };
      }
      return { segments, message: `must match ${(e.params as { pattern: string }).pattern}` };
    default:
      return { segments, message: e.message ?? `fails ${e.keyword}` };
  }
}

/** A secret's own name first, then a typo of an allowed key, then a name that says "secret", then what is allowed. */
function unknownKeyHint(key: string, allowed: string[]): string | undefined {
  const instead = SECRET_KEYS[key.toLowerCase()];
  if (instead !== undefined && allowed.includes(instead)) {
    return `secrets are never written in the config: put it in a file readable only by the agent, or a systemd credential, and set ${instead}`;
  }
  const near = closest(key, allowed);
  if (near !== undefined) return `did you mean '${near}'?`;
  if (SECRET_LIKE.test(key)) {
    const files = allowed.filter((a) => a.endsWith('_file'));
    return `secrets are never written in the config; they are read from files${files.length > 0 ? ` (${files.join(', ')})` : ''}`;
  }
  return allowed.length > 0 ? `allowed here: ${allowed.join(', ')}` : undefined;
}

function typeHint(expected: string, value: unknown): string | undefined {
  if (typeof value === 'string') {
    if ((expected === 'integer' || expected === 'number') && value.trim() !== '' && !Number.isNaN(Number(value))) return 'write the number without quotes';
    if (expected === 'boolean' && /^(yes|no|on|off|y|n|true|false)$/i.test(value)) return "write true or false, unquoted (YAML 1.2 reads yes/no/on/off as strings)";
    if (expected === 'array') return 'write a list: [item, ...] or one "- item" per line';
  }
  if (value === null) return 'the key has no value: give one, or remove the key';
  if (expected === 'string' && (typeof value === 'number' || typeof value === 'boolean')) return 'quote it';
  return undefined;
}
