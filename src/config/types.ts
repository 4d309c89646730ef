/**
 * The agent's configuration, as validated by ./schema.ts and loaded by
 * ./load.ts. Keys are snake_case in the file (YAML habit of the field) and
 * kept so here, so that an error path names exactly what the user wrote.
 * Defaults are applied by the loader: every field below without `?` is
 * present after loading.
 */
import type { MessageSpec } from '../serial/can-signals.js';

export interface AgentConfig {
  device: DeviceConfig;
  binders: BinderConfig[];
  mqtt: MqttConfig;
  routes: RouteConfig[];
  commands: CommandsConfig;
  outbox: OutboxConfig;
  logging: LoggingConfig;
  health: HealthConfig;
  serial: SerialConfig;
  ecu_api: EcuApiConfig;
}

export interface DeviceConfig {
  /** Identity in topics: letters, digits, '-', '_', '.' only (never MQTT wildcards). */
  id: string;
  /** Free labels published in the status message (fleet, model...). */
  labels: Record<string, string>;
}

export interface BackoffConfig {
  initial_delay_ms: number;
  max_delay_ms: number;
}

export interface BinderSubscribeCall {
  verb: string;
  args: unknown;
}

export interface BinderConfig {
  /** Name of this source in routes, metrics and logs. */
  name: string;
  /** wsapi socket spec (unix:/..., unix:@..., tcp:..., sd:...). */
  spec: string;
  /** Calls made after each (re)connection to subscribe to events. */
  subscribe: BinderSubscribeCall[];
  reconnect: BackoffConfig;
  /** Timeout of calls made for subscriptions and remote commands. */
  call_timeout_ms: number;
}

export interface TlsConfig {
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  /** Passphrase of the key, read from this file (or systemd credential). */
  key_passphrase_file?: string;
  reject_unauthorized: boolean;
  servername?: string;
}

export interface MqttConfig {
  /** mqtt://host:port or mqtts://host:port */
  url: string;
  /** Template: {device} allowed. */
  client_id: string;
  /** 4 = MQTT 3.1.1, 5 = MQTT 5 */
  protocol_version: 4 | 5;
  keepalive_s: number;
  /** false keeps the broker session (QoS 1/2 subscriptions survive reconnects). */
  clean_session: boolean;
  username?: string;
  /** Password read from this file; a bare name is looked up in $CREDENTIALS_DIRECTORY. */
  password_file?: string;
  tls?: TlsConfig;
  /** {prefix} in topic templates. */
  topic_prefix: string;
  /** Retained online/offline status topic (template). */
  status_topic: string;
  reconnect: BackoffConfig;
  /** QoS 0 messages kept in memory while offline (then dropped, counted). */
  qos0_max_queue: number;
  /** Seconds between periodic status/health publications (0 = only on change). */
  status_interval_s: number;
}

export type PayloadShape = 'raw' | 'envelope';

export interface RateLimitFilter {
  /** Token bucket: sustained rate and burst size. */
  per_second: number;
  burst: number;
}

export interface DeadbandFilter {
  /** Dot path of the numeric field in the event data ('' or absent: the data itself). */
  field?: string;
  /** Publish only when |new - last published| >= absolute (and/or >= percent of last). */
  absolute?: number;
  percent?: number;
}

export interface SampleFilter {
  /** Keep one event out of `every` ... */
  every?: number;
  /** ... or at most one per interval_ms. */
  interval_ms?: number;
}

export interface RouteFilters {
  rate_limit?: RateLimitFilter;
  /** Drop an event whose data equals the last published one (per topic). */
  change_only?: boolean;
  deadband?: DeadbandFilter;
  sample?: SampleFilter;
}

/** A route that sends what it selects to a serial link instead of MQTT. */
export interface RouteLinkTarget {
  /** Name of the link (serial.links[].name). */
  name: string;
  /** slcan: message of the link's map to encode; its signals take their values from `values`. */
  message?: string;
  /** slcan: signal name → dot path into the event data ('' = the data itself). */
  values?: Record<string, string>;
}

export interface RouteConfig {
  name: string;
  /** Globs on the full event name `api/event` ('*' does not cross '/'). */
  match: string[];
  /** Only events from these sources (binder names); all when absent. */
  sources?: string[];
  /** Topic template: {prefix} {device} {source} {api} {event} {data.path}. */
  topic: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  payload: PayloadShape;
  filters: RouteFilters;
  /** When set, the route delivers to this serial link (topic, qos, retain, payload unused). */
  link?: RouteLinkTarget;
}

export interface CommandAllow {
  /** Binder name (as in binders[].name). */
  binder: string;
  /** Verb globs allowed on that binder. */
  verbs: string[];
}

export interface CommandsConfig {
  enabled: boolean;
  /** Topic filter base: requests arrive on {topic}/{binder}/{verb}. Template. */
  topic: string;
  /** 3.1.1 fallback: replies go to the request's `reply_to`, else to {reply_topic}. */
  reply_topic: string;
  allow: CommandAllow[];
  timeout_ms: number;
  /** Requests handled at once; more wait (bounded by max_queue), beyond that: "busy". */
  max_concurrent: number;
  max_queue: number;
}

export type OutboxPolicy = 'drop-oldest' | 'reject-new';

export interface OutboxConfig {
  /** SQLite database file (its directory is created). */
  path: string;
  max_messages: number;
  max_bytes: number;
  policy: OutboxPolicy;
  /** Messages handed to the MQTT client at once (in flight, awaiting PUBACK). */
  max_inflight: number;
  /**
   * 'full': accepted messages are fsynced (survive power loss); 'normal': they
   * survive a crash or kill -9, a power cut may lose the last ones (less flash wear).
   */
  synchronous?: 'full' | 'normal';
  /**
   * 'full': two fsyncs start at least this far apart (ms; 0: each commit that
   * adds messages has its own). 'accepted' may come that much later; a power
   * cut may take the unacknowledged messages of the last interval.
   */
  sync_interval_ms: number;
  /**
   * The first message of a commit waits this long (ms) for others to share
   * it (fewer pages written per message on storage that wears, for that much
   * latency); 0: each event-loop turn commits what it enqueued.
   */
  commit_delay_ms: number;
}

export interface LoggingConfig {
  level: 'debug' | 'info' | 'warn' | 'error';
}

export interface HealthConfig {
  /** host:port of the Prometheus endpoint (GET /metrics); absent = off. */
  http_listen?: string;
  /** Topic template of the periodic health message. */
  topic: string;
}

export type SerialProtocol = 'slcan' | 'cobs' | 'ndjson';

export interface SlcanLinkOptions {
  /**
   * The adapter's slcan dialect (src/serial/link/slcan-dialects.ts): `auto`
   * probes it each time the port opens; a name skips the probe.
   */
  adapter: 'auto' | 'lawicel' | 'canable' | 'usbtin' | 'no-ack';
  /** `auto`: how long the probe waits for answers before deciding (bounded). */
  probe_timeout_ms: number;
  /** CAN bit rate set with S0..S8 when the link opens (which S it is depends on the dialect). */
  bitrate: number;
  /** Open listen-only (L; CANable: M1) — no ACKs, nothing sent on the bus. */
  listen_only: boolean;
  /** Z1: the adapter appends a ms timestamp (0-60000) to each frame; dialects without Z have none. */
  timestamps: boolean;
  /** Period of the F (status flags) poll while open, 0 = never; a change becomes the event {link}/status. Dialects without F are never polled. */
  status_interval_ms: number;
}

export interface CobsLinkOptions {
  crc: 'crc16' | 'crc32';
  payload: 'json' | 'raw';
  /** Largest payload accepted, CRC excluded. */
  max_frame: number;
}

export interface NdjsonLinkOptions {
  /** Longest line accepted, in bytes. */
  max_line: number;
}

export interface SerialLinkConfig {
  /** Name in event names ({link}/...), routes, commands, metrics and logs. */
  name: string;
  /** Device path, e.g. /dev/ttyACM0 or /dev/serial/by-id/usb-... */
  device: string;
  baud_rate: number;
  data_bits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd';
  stop_bits: 1 | 2;
  /** RTS/CTS hardware flow control. */
  rtscts: boolean;
  protocol: SerialProtocol;
  slcan: SlcanLinkOptions;
  cobs: CobsLinkOptions;
  ndjson: NdjsonLinkOptions;
  /** slcan: DBC-like message map (names CAN ids, decodes and encodes signals). */
  messages: MessageSpec[];
  /**
   * slcan: DBC files, merged with `messages` (an id or a message name in two
   * places is an error). Relative paths are relative to the config file's
   * folder; loading the config makes them absolute.
   */
  dbc: string[];
  /** Delay between attempts to (re)open a missing or failed device. */
  reopen: BackoffConfig;
  /** Bytes waiting to be written to the device, at most; beyond, a send is refused as busy. */
  write_queue_bytes: number;
  request_timeout_ms: number;
  /** Requests awaiting their reply, at most; beyond, a request is refused as busy. */
  max_pending_requests: number;
}

export interface SerialConfig {
  links: SerialLinkConfig[];
}

export interface EcuApiConfig {
  /** wsapi specs to serve the API on (unix:/run/platform/apis/ws/ecu, sd:ecu...); none = not exported. */
  listen: string[];
  /** API name; default: the name the first spec gives (its last path part). */
  api?: string;
  /** Connections served at once; one more is hung up and counted. */
  max_connections: number;
  /** Bytes of unfinished received messages all connections may hold together. */
  max_buffered_bytes: number;
  /** Bytes a peer may leave unread before it is disconnected. */
  max_backlog_bytes: number;
  /** A half frame or half message older than this closes its connection (1008). */
  partial_message_timeout_ms: number;
}
