/** The MQTT sink: durable outbox, status, reconnection, TLS rotation (see README.md here). */
export { MqttSink, type MqttSinkDeps, type MqttSinkOptions, type MessageHandler, type PublishNowOptions } from './mqtt-sink.js';
export { Outbox, OutboxError, type OutboxOptions, type StoredMessage, type EnqueueResult, type Synchronous } from './outbox.js';
export { Backoff } from '../../util/backoff.js';
export { BoundedQueue } from './bounded-queue.js';
export { topicMatches } from './topic-filter.js';
export { fillTemplate, statusPayload, type StatusMessage, type StatusState } from './status.js';
export { defaultSecretReader, type SecretReader } from './secrets-reader.js';
export { TlsFiles, type TlsMaterial } from './tls-files.js';
