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

/** Largest accepted payload of one received frame (WEBSOCKET_DEFAULT_MAXLENGTH). */
export const DEFAULT_MAX_FRAME_PAYLOAD = 1_048_500;

/** At most this many calls and describes may be pending on one client connection. */
export const MAX_PENDING = 4095;

/** WebSocket close codes used by the reference. */
export const CloseCode = {
  NORMAL: 1000,
  PROTOCOL_ERROR: 1002,
  CANT_ACCEPT: 1003,
  MESSAGE_TOO_LARGE: 1009,
} as const;

/** Default bound on bytes queued to a peer that does not read. */
export const DEFAULT_MAX_BACKLOG = 16 * 1024 * 1024;
