/**
 * wsapi v1 constants: message letters, protocol identifier, limits.
 * Values are those of the native afb-proto-ws.c (see ../shared/wsapi-v1.md).
 */

/** First u32 of a `V` message (0o2723012011). */
export const WSAPI_IDENTIFIER = 0x174c1409;

/** The only protocol version this implementation (and every known binder) speaks. */
export const WSAPI_VERSION_1 = 1;
export const SUPPORTED_VERSIONS: readonly number[] = [WSAPI_VERSION_1];

/** Message letters, as the native implementation names them. */
export const Letter = {
  /* client → server */
  VERSION_OFFER: 0x56, // 'V'
  CALL: 0x4b, // 'K'
  DESCRIBE: 0x44, // 'D'
  EVENT_UNEXPECTED: 0x55, // 'U'
  SESSION_CREATE: 0x53, // 'S'
  SESSION_REMOVE: 0x73, // 's'
  TOKEN_CREATE: 0x54, // 'T'
  TOKEN_REMOVE: 0x74, // 't'
  /* server → client */
  VERSION_SET: 0x76, // 'v'
  REPLY: 0x6b, // 'k'
  DESCRIPTION: 0x64, // 'd'
  EVENT_CREATE: 0x45, // 'E'
  EVENT_REMOVE: 0x65, // 'e'
  EVENT_SUBSCRIBE: 0x58, // 'X'
  EVENT_UNSUBSCRIBE: 0x78, // 'x'
  EVENT_PUSH: 0x50, // 'P'
  EVENT_BROADCAST: 0x42, // 'B'
} as const;

/** Broadcasts originate with this many hops (EVENT_BROADCAST_HOP_MAX). */
export const BROADCAST_HOP_MAX = 10;
export const BROADCAST_UUID_LENGTH = 16;

/**
 * Largest accepted payload of one received frame (WEBSOCKET_DEFAULT_MAXLENGTH).
 * Also what we assume a peer accepts: the limit is not negotiated, and a frame
 * above it makes a native peer close with 1009 (15-too-large, 16 f-too-large).
 */
export const DEFAULT_MAX_FRAME_PAYLOAD = 1_048_500;

/**
 * Largest reassembled message a connection accepts by default. Native binders
 * never fragment: every message goes out as one frame (wsapi-v1.md; redpesk
 * binders even stall on a fragmented message), and a native receiver refuses
 * a frame above 1,048,500 bytes. So no message above that size can travel
 * between two native peers, and a fragmented one larger than a single frame
 * can come only from a non-native tool: the same bound, not a guess.
 * (The reference's parser itself has no message bound: the 1.5 MB fragmented
 * call of 15-too-large was served. WsapiConnection bounds it; the bare
 * FrameReceiver keeps the reference's permissive default.)
 */
export const DEFAULT_MAX_MESSAGE_SIZE = DEFAULT_MAX_FRAME_PAYLOAD;

/**
 * Most frames one fragmented message may arrive in, per connection: native
 * peers send none, the scripted captures 2 or 3; each piece costs an object.
 */
export const DEFAULT_MAX_FRAGMENTS = 1024;

/**
 * A frame or fragmented message must be complete this long after its first
 * byte arrived: a peer holding half a message holds our memory. A whole
 * 1 MB frame needs milliseconds on a unix socket, seconds on a slow TCP link.
 */
export const DEFAULT_PARTIAL_MESSAGE_TIMEOUT_MS = 10_000;

/** Server defaults: connections served at once, bytes of unfinished messages held by all of them. */
export const DEFAULT_MAX_CONNECTIONS = 64;
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/**
 * Server defaults for the per-connection tables S and T fill. A native
 * session uuid is 36 characters (afb-session refuses 37 and more); tokens are
 * as short. A native importer declares one id per session it relays and drops
 * it with s/t when the session ends.
 */
export const DEFAULT_MAX_SESSIONS_PER_CONNECTION = 256;
export const DEFAULT_MAX_TOKENS_PER_CONNECTION = 256;
export const DEFAULT_MAX_DECLARED_STRING = 512;

/**
 * Server default: calls of one connection in progress at once. A native
 * client never has more than 4095 pending (MAX_PENDING), so no native peer
 * meets it. Server default for the args text those calls keep, all
 * connections together: a verb that answers later keeps its request.
 */
export const DEFAULT_MAX_PENDING_CALLS_PER_CONNECTION = 4095;
export const DEFAULT_MAX_PENDING_CALL_BYTES = 16 * 1024 * 1024;

/** Client default: bytes of event names (E) one connection remembers; ids are 16-bit. */
export const DEFAULT_MAX_EVENT_TABLE_BYTES = 1024 * 1024;

/** At most this many calls and describes may be pending on one client connection. */
export const MAX_PENDING = 4095;

/** WebSocket close codes used by the reference. */
export const CloseCode = {
  NORMAL: 1000,
  PROTOCOL_ERROR: 1002,
  CANT_ACCEPT: 1003,
  /** Ours only (no native binder sends it): a half message held past the timeout. */
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_LARGE: 1009,
} as const;

/** Default bound on bytes queued to a peer that does not read. */
export const DEFAULT_MAX_BACKLOG = 16 * 1024 * 1024;

/**
 * Names of the bounds a connection, client or server enforces, as reported
 * through the 'limit' event (and used as metric labels by the agent).
 */
export type LimitKind =
  /** An outbound message larger than the peer accepts: refused, not sent. */
  | 'peer_frame'
  /** A received frame or message above our limit: close 1009. */
  | 'frame_in'
  /** A half frame or half message held past the timeout: close 1008. */
  | 'partial_timeout'
  /** Unfinished messages of all connections above the total: close 1009. */
  | 'buffered_bytes'
  /** A connection beyond the server's maximum: hung up. */
  | 'connections'
  /** A peer not reading: disconnected. */
  | 'backlog'
  /** An S or T beyond the per-connection table bounds: ignored. */
  | 'sessions'
  | 'tokens'
  /** A call beyond the calls in progress (count per connection, args bytes per server): replied `busy`. */
  | 'pending_calls'
  /** An E beyond the client's event table bound: ignored (a P for it is answered U). */
  | 'events';
