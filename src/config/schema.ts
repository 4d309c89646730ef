/**
 * JSON Schema (draft-07, as ajv 8 runs it) of the config file. It checks the
 * shape and applies the defaults (ajv `useDefaults`); what a schema says
 * badly (cross references, templates, URLs) is checked in ./semantic.ts.
 *
 * Every object has `additionalProperties: false` so that a typo is an error,
 * not a silently ignored key. No oneOf/anyOf: their errors are unreadable.
 * A section the user may omit has `default: {}`, so the defaults of its
 * fields are applied too.
 */

/** Identity charset shared by device.id and binder names (safe in topics, metrics, logs). */
export const NAME_PATTERN = '^[A-Za-z0-9._-]+$';

const backoff = (initial: number, max: number) => ({
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    initial_delay_ms: { type: 'integer', minimum: 1, default: initial },
    max_delay_ms: { type: 'integer', minimum: 1, default: max },
  },
});

const str = { type: 'string', minLength: 1 };
const strList = { type: 'array', items: str };

const device = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    id: { type: 'string', pattern: NAME_PATTERN },
    labels: { type: 'object', default: {}, additionalProperties: { type: 'string' } },
  },
};

const binder = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'spec'],
  properties: {
    name: { type: 'string', pattern: NAME_PATTERN },
    spec: str,
    subscribe: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['verb'],
        properties: { verb: str, args: { default: null } },
      },
    },
    reconnect: backoff(250, 30_000),
    call_timeout_ms: { type: 'integer', minimum: 1, default: 10_000 },
  },
};

const tls = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ca_file: str,
    cert_file: str,
    key_file: str,
    key_passphrase_file: str,
    reject_unauthorized: { type: 'boolean', default: true },
    servername: str,
  },
};

const mqtt = {
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: str,
    client_id: { ...str, default: 'afb-edge-{device}' },
    protocol_version: { enum: [4, 5], default: 5 },
    keepalive_s: { type: 'integer', minimum: 0, maximum: 65535, default: 30 },
    clean_session: { type: 'boolean', default: false },
    username: str,
    password_file: str,
    tls,
    topic_prefix: { ...str, default: 'afb-edge' },
    status_topic: { ...str, default: '{prefix}/{device}/status' },
    reconnect: backoff(500, 30_000),
    qos0_max_queue: { type: 'integer', minimum: 0, default: 1000 },
    status_interval_s: { type: 'integer', minimum: 0, default: 60 },
  },
};

const filters = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    rate_limit: {
      type: 'object',
      additionalProperties: false,
      required: ['per_second'],
      properties: {
        per_second: { type: 'number', exclusiveMinimum: 0 },
        burst: { type: 'integer', minimum: 1, default: 1 },
      },
    },
    change_only: { type: 'boolean' },
    deadband: {
      type: 'object',
      additionalProperties: false,
      properties: {
        field: { type: 'string' },
        absolute: { type: 'number', exclusiveMinimum: 0 },
        percent: { type: 'number', exclusiveMinimum: 0 },
      },
    },
    sample: {
      type: 'object',
      additionalProperties: false,
      properties: {
        every: { type: 'integer', minimum: 1 },
        interval_ms: { type: 'integer', minimum: 1 },
      },
    },
  },
};

const route = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'match'],
  properties: {
    name: str,
    match: { ...strList, minItems: 1 },
    sources: strList,
    topic: { ...str, default: '{prefix}/{device}/events/{api}/{event}' },
    qos: { enum: [0, 1, 2], default: 1 },
    retain: { type: 'boolean', default: false },
    payload: { enum: ['raw', 'envelope'], default: 'envelope' },
    filters,
    link: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: str,
        message: str,
        values: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
  },
};

const commands = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false },
    topic: { ...str, default: '{prefix}/{device}/call' },
    reply_topic: { ...str, default: '{prefix}/{device}/reply' },
    allow: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['binder', 'verbs'],
        properties: { binder: str, verbs: { ...strList, minItems: 1 } },
      },
    },
    timeout_ms: { type: 'integer', minimum: 1, default: 5000 },
    max_concurrent: { type: 'integer', minimum: 1, default: 16 },
    max_queue: { type: 'integer', minimum: 0, default: 256 },
  },
};

const outbox = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    path: { ...str, default: '/var/lib/afb-edge/outbox.db' },
    max_messages: { type: 'integer', minimum: 1, default: 100_000 },
    max_bytes: { type: 'integer', minimum: 1, default: 64 * 1024 * 1024 },
    policy: { enum: ['drop-oldest', 'reject-new'], default: 'drop-oldest' },
    max_inflight: { type: 'integer', minimum: 1, default: 1000 },
    synchronous: { enum: ['full', 'normal'], default: 'full' },
    sync_interval_ms: { type: 'integer', minimum: 0, maximum: 1000, default: 10 },
    commit_delay_ms: { type: 'integer', minimum: 0, maximum: 1000, default: 0 },
  },
};

const logging = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: { level: { enum: ['debug', 'info', 'warn', 'error'], default: 'info' } },
};

const health = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    http_listen: str,
    topic: { ...str, default: '{prefix}/{device}/health' },
  },
};

const signal = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'start_bit', 'length'],
  properties: {
    name: str,
    start_bit: { type: 'integer', minimum: 0, maximum: 63 },
    length: { type: 'integer', minimum: 1, maximum: 64 },
    byte_order: { enum: ['little_endian', 'big_endian'], default: 'little_endian' },
    signed: { type: 'boolean', default: false },
    scale: { type: 'number', default: 1 },
    offset: { type: 'number', default: 0 },
    unit: { type: 'string' },
    min: { type: 'number' },
    max: { type: 'number' },
  },
};

const canMessage = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: {
    id: { type: 'integer', minimum: 0, maximum: 0x1fffffff },
    extended: { type: 'boolean', default: false },
    name: { type: 'string', pattern: NAME_PATTERN },
    dlc: { type: 'integer', minimum: 0, maximum: 8 },
    signals: { type: 'array', default: [], items: signal },
  },
};

const serialLink = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'device', 'protocol'],
  properties: {
    name: { type: 'string', pattern: NAME_PATTERN },
    device: str,
    baud_rate: { type: 'integer', minimum: 50, maximum: 4_000_000, default: 115_200 },
    data_bits: { enum: [5, 6, 7, 8], default: 8 },
    parity: { enum: ['none', 'even', 'odd'], default: 'none' },
    stop_bits: { enum: [1, 2], default: 1 },
    rtscts: { type: 'boolean', default: false },
    protocol: { enum: ['slcan', 'cobs', 'ndjson'] },
    slcan: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        adapter: { enum: ['auto', 'lawicel', 'canable', 'usbtin', 'no-ack'], default: 'auto' },
        probe_timeout_ms: { type: 'integer', minimum: 50, maximum: 60_000, default: 1000 },
        bitrate: { enum: [10_000, 20_000, 50_000, 100_000, 125_000, 250_000, 500_000, 750_000, 800_000, 1_000_000], default: 500_000 },
        listen_only: { type: 'boolean', default: false },
        timestamps: { type: 'boolean', default: true },
        status_interval_ms: { type: 'integer', minimum: 0, default: 1000 },
      },
    },
    cobs: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        crc: { enum: ['crc16', 'crc32'], default: 'crc16' },
        payload: { enum: ['json', 'raw'], default: 'json' },
        max_frame: { type: 'integer', minimum: 1, maximum: 65_536, default: 1024 },
      },
    },
    ndjson: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { max_line: { type: 'integer', minimum: 16, maximum: 1_048_576, default: 65_536 } },
    },
    messages: { type: 'array', default: [], items: canMessage },
    dbc: { type: 'array', default: [], maxItems: 16, items: { type: 'string', minLength: 1 } },
    reopen: backoff(500, 10_000),
    write_queue_bytes: { type: 'integer', minimum: 64, default: 65_536 },
    request_timeout_ms: { type: 'integer', minimum: 1, default: 1000 },
    max_pending_requests: { type: 'integer', minimum: 1, maximum: 4096, default: 64 },
  },
};

const serial = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: { links: { type: 'array', default: [], items: serialLink } },
};

const ecuApi = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    listen: { type: 'array', default: [], items: str },
    api: { type: 'string', pattern: NAME_PATTERN },
    // Defaults sized for the smallest board (qemuarm64, MemoryMax 224 MB): docs/wsapi.md, "Memory".
    max_connections: { type: 'integer', minimum: 1, maximum: 1024, default: 16 },
    // At least one largest message (1,048,500 bytes): a smaller total would refuse legitimate calls.
    max_buffered_bytes: { type: 'integer', minimum: 1_048_576, maximum: 268_435_456, default: 4_194_304 },
    max_backlog_bytes: { type: 'integer', minimum: 1_048_576, maximum: 268_435_456, default: 1_048_576 },
    partial_message_timeout_ms: { type: 'integer', minimum: 100, maximum: 600_000, default: 10_000 },
  },
};

export const CONFIG_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://afb-edge/config.schema.json',
  title: 'afb-edge agent configuration',
  type: 'object',
  additionalProperties: false,
  required: ['device', 'mqtt', 'binders', 'routes'],
  properties: {
    device,
    binders: { type: 'array', items: binder },
    mqtt,
    routes: { type: 'array', items: route },
    commands,
    outbox,
    logging,
    health,
    serial,
    ecu_api: ecuApi,
  },
} as const;
