/**
 * wsapi v1: a self-contained implementation of the protocol native AGL /
 * redpesk binders use to export APIs over sockets. Knows nothing of MQTT or
 * serial links.
 */
export * from './constants.js';
export * from './codec.js';
export { FrameReceiver, Opcode, closeFrame, framePayloadLength, type FrameHandler, type FrameReceiverOptions } from './frame-receiver.js';
export { WsapiConnection, type ConnectionOptions, type ConnectionStats, type ConnectionContext } from './connection.js';
export { ByteBudget } from './byte-budget.js';
export { WsapiClient, type Reply, type CallOptions, type ClientOptions, type EventMeta, type ReconnectOptions } from './client.js';
export { WsapiServer, type ServerOptions, type VerbHandler, type CredsTrust } from './server.js';
export { ServerConnection, type TableLimits } from './server-connection.js';
export { ServerEvent, type BroadcastOptions } from './server-event.js';
export { Request, parseCreds, formatCreds, type Credentials } from './request.js';
export { Session, SessionStore } from './session.js';
export { parseSpec, SpecError, type SocketSpec, type AbstractForm } from './spec.js';
export { connectSpec, listenSpec, peerCredentials, ConnectError } from './sockets.js';
