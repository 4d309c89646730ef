/**
 * The agent's MQTT side: publishes routed messages (QoS >= 1 through the
 * durable outbox, QoS 0 directly or from a bounded queue), keeps the
 * retained online/offline status, reconnects with backoff, re-reads rotated
 * TLS files, and carries subscriptions (remote commands) across reconnects.
 *
 * Each connection attempt uses a NEW mqtt.js client with reconnectPeriod 0.
 * The outbox is then the only place unacknowledged messages live: a fresh
 * client has an empty outgoing store, so mqtt.js never resends anything by
 * itself on reconnect and a message cannot go out twice from two queues.
 * On disconnect the messages in flight go back to pending and are resent
 * in id order on the next connection (see README.md, delivery guarantees).
 */
import { EventEmitter } from 'node:events';
import type { IClientOptions, IConnackPacket } from 'mqtt';
import { ReasonCodes } from 'mqtt/lib/handlers/ack';
import type { DeviceConfig, MqttConfig, OutboxConfig } from '../../config/types.js';
import type { OutboundMessage } from '../../core/event.js';
import type { AgentMetrics } from '../../health/metrics.js';
import { OncePerKindLog, RateLimitedLog, type Logger } from '../../util/log.js';
import { Backoff } from '../../util/backoff.js';
import { IdTable } from '../../util/id-table.js';
import { brokerLabel, buildConnectOptions } from './connect-options.js';
import { connectMqtt, type MqttClient } from './mqtt-transport.js';
import { PacketIdAllocator } from './packet-ids.js';
import { describeError } from './describe-error.js';
import { Qos0Sender } from './qos0-sender.js';
import { Outbox, type EnqueueResult, type OutboxRecovery, type StoredMessage, type Synchronous } from './outbox.js';
import { TopicCheck, topicProblem } from './row-check.js';
import { publishPacket, writeBatched } from './publish-packet.js';
import { defaultSecretReader, type SecretReader } from './secrets-reader.js';
import { fillTemplate, statusPayload } from './status.js';
import { TlsFiles, type TlsMaterial } from './tls-files.js';
import { endClient, settleWithin } from './client-end.js';
import { Subscriptions, type MessageHandler } from './subscriptions.js';

export type { MessageHandler } from './subscriptions.js';

export interface PublishNowOptions {
  qos: 0 | 1 | 2;
  retain: boolean;
  /** MQTT 5 properties (response topic, correlation data...); ignored with 3.1.1. */
  properties?: Record<string, unknown>;
}

export interface MqttSinkOptions {
  /** Outbox durability, see outbox.ts (default 'full'). */
  synchronous?: Synchronous;
  /** How often the TLS files are checked for a rotation while connected (default 60 s). */
  tlsCheckIntervalMs?: number;
  /**
   * stop(): longest wait for the messages already in the outbox (the final
   * link states among them), the acks in flight and the offline status
   * (default 3 s; the outbox gets two thirds of it).
   */
  stopTimeoutMs?: number;
  /** CONNACK timeout of an attempt (default 10 s). */
  connectTimeoutMs?: number;
  /** A connection that lived this long resets the backoff (default 10 s). */
  stableAfterMs?: number;
  /** MQTT 5 session expiry when clean_session is false (default 1 day). */
  sessionExpiryS?: number;
  /** QoS 0 goes to the bounded queue while the socket holds more than this (default 4 MiB: a burst of small messages passes like with plain mqtt.js, memory stays bounded). */
  qos0HighWaterBytes?: number;
  /** Jitter source (tests). */
  random?: () => number;
}

export interface MqttSinkDeps {
  device: DeviceConfig;
  metrics: AgentMetrics;
  logger: Logger;
  secrets?: SecretReader;
  version?: string;
  options?: MqttSinkOptions;
  /** What an earlier sink's outbox recovered in this process (a reload): still reported when this one found nothing. */
  outboxRecovery?: OutboxRecovery;
}

interface Flight {
  gen: number;
  msg: StoredMessage;
  packetId: number;
}

interface NowJob {
  topic: string;
  payload: Buffer;
  options: PublishNowOptions;
  resolve: (ok: boolean) => void;
}

/** Reason codes after which a message is dropped instead of retried: the broker will never take it. */
const QUOTA_EXCEEDED = 0x97;
const NOW_QUEUE_MAX = 1000;
const QUARANTINE_MAX = 1024;

export class MqttSink extends EventEmitter {
  private readonly log: Logger;
  private readonly metrics: AgentMetrics;
  private readonly secrets: SecretReader;
  private readonly opts: Required<Omit<MqttSinkOptions, 'random'>> & { random: () => number };
  private readonly statusTopic: string;
  private readonly version: string;
  private readonly label: string;
  private readonly backoff: Backoff;
  private readonly tlsFiles: TlsFiles | undefined;
  private readonly qos0: Qos0Sender;
  private readonly qos0TopicCheck = new TopicCheck();
  private readonly subs: Subscriptions;
  /** Outbox id -> its flight (IdTable: Maps churned by a message each cost CPU and garbage; see id-table.ts). */
  private readonly flights = new IdTable<Flight>();
  /** QoS 1 messages sent by the sink itself (publish-packet.ts): packet id -> outbox id, for the current client. */
  private readonly byPacketId = new IdTable<number>();
  private readonly nowQueue: NowJob[] = [];
  private readonly nowPending = new Map<number, { gen: number; resolve: (ok: boolean) => void }>();
  /** QoS 2 packet ids possibly still held by the broker's session (clean_session false). */
  private quarantine = new Set<number>();
  private readonly rejections: RateLimitedLog;
  /** Messages the sink itself drops (QoS 0 queue full, bad topics, publishNow refused...): one line per kind, rate-limited. */
  private readonly drops: RateLimitedLog;
  /** published{qos} children, resolved once (a labels lookup per message shows in profiles). */
  private readonly publishedBy: Array<{ inc(): void }>;

  private outbox: Outbox | undefined;
  private client: MqttClient | undefined;
  private gen = 0;
  private isConnected = false;
  private everConnected = false;
  private connectedAt = 0;
  private limit = 1;
  private nowInflight = 0;
  private nowSeq = 0;
  private started = false;
  private stopping = false;
  /** stop() is sending what the outbox holds (the pump hands out outbox messages while stopping only then). */
  private draining = false;
  private stopped = false;
  private rotating = false;
  private reconnectImmediately = false;
  private failKey: string | undefined;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private tlsTimer: NodeJS.Timeout | undefined;
  private pumpScheduled = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly config: MqttConfig,
    private readonly outboxConfig: OutboxConfig,
    private readonly deps: MqttSinkDeps,
  ) {
    super();
    this.log = deps.logger;
    this.metrics = deps.metrics;
    this.secrets = deps.secrets ?? defaultSecretReader;
    const o = deps.options ?? {};
    this.opts = {
      synchronous: o.synchronous ?? 'full',
      tlsCheckIntervalMs: o.tlsCheckIntervalMs ?? 60_000,
      stopTimeoutMs: o.stopTimeoutMs ?? 3000,
      connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
      stableAfterMs: o.stableAfterMs ?? 10_000,
      sessionExpiryS: o.sessionExpiryS ?? 86_400,
      qos0HighWaterBytes: o.qos0HighWaterBytes ?? 4 << 20,
      random: o.random ?? Math.random,
    };
    this.statusTopic = fillTemplate(config.status_topic, config, deps.device);
    this.version = deps.version ?? 'unknown';
    this.label = brokerLabel(config.url);
    this.backoff = new Backoff(config.reconnect.initial_delay_ms, config.reconnect.max_delay_ms, this.opts.random);
    this.rejections = new RateLimitedLog((m) => this.log.warn(m));
    this.drops = new RateLimitedLog((m) => this.log.warn(m));
    const handlerErrors = new OncePerKindLog((m) => this.log.error(m));
    this.subs = new Subscriptions((m) => this.error('mqtt', m), (kind, m) => {
      this.metrics.errors.inc({ component: 'handler' });
      handlerErrors.log(kind, m);
    });
    this.publishedBy = ['0', '1', '2'].map((qos) => this.metrics.hot(this.metrics.published, { qos }));
    this.qos0 = new Qos0Sender(config.qos0_max_queue, this.opts.qos0HighWaterBytes, () => this.publishedBy[0]!.inc(),
      () => this.drop('qos0_queue_full', `the QoS 0 queue is full (qos0_max_queue ${config.qos0_max_queue}): the oldest waiting QoS 0 message dropped`),
      config.protocol_version);
    if (config.tls && /^mqtts:|^wss:/.test(config.url)) this.tlsFiles = new TlsFiles(config.tls, this.secrets);
    else if (config.tls) this.log.warn(`mqtt: a tls section is set but the url ${this.label} is not mqtts://: TLS is not used`);
  }

  /** Diagnostics: the current in-flight window (max_inflight, capped by an MQTT 5 broker's Receive Maximum) and the peak seen. */
  readonly stats = { inflightLimit: 0, inflightPeak: 0 };

  get connected(): boolean {
    return this.isConnected;
  }

  /** The resolved status topic (retained online/offline JSON). */
  get statusTopicName(): string {
    return this.statusTopic;
  }

  /** What the outbox recovered or found lost when it opened (also in the status message), if anything. */
  get outboxRecovery(): OutboxRecovery | undefined {
    return this.outbox?.recovery ?? this.deps.outboxRecovery;
  }

  /**
   * Opens the outbox and starts connecting, without waiting for the broker.
   * A damaged outbox is recovered (moved aside, a fresh one started: see
   * outbox-open.ts); throws OutboxError only when the file is locked by
   * another agent, written by a newer afb-edge, not an outbox, or cannot
   * be opened at all.
   */
  async start(): Promise<void> {
    if (this.started) return;
    // The outbox counts and logs (rate-limited) its failed commits and drops itself.
    this.outbox = new Outbox(this.outboxConfig, {
      synchronous: this.opts.synchronous,
      metrics: this.metrics,
      logger: this.log,
      onCommit: () => this.pump(), // already out of the publishers' call stack (setImmediate)
    });
    this.started = true;
    this.metrics.mqttConnected.set(0);
    if (this.outbox.depth > 0) this.log.info(`mqtt: outbox ${this.outbox.path} holds ${this.outbox.depth} undelivered message(s) from before`);
    if (this.tlsFiles) {
      this.tlsTimer = setInterval(() => this.checkRotation(), this.opts.tlsCheckIntervalMs);
      this.tlsTimer.unref();
    }
    this.connect();
  }

  /**
   * Publishes a routed message. QoS >= 1: 'accepted' once it is on disk (then
   * delivered at least once), 'rejected' when the outbox bounds refuse it.
   * QoS 0: sent now when connected, else queued in memory (bounded).
   */
  publish(msg: OutboundMessage): Promise<EnqueueResult> {
    return new Promise((resolve) => this.submit(msg, resolve));
  }

  /**
   * publish() without a promise, for the agent's data path, where nothing
   * waits for the result (refusals are counted and logged here): `done`,
   * when given, is told what publish() would resolve.
   */
  submit(msg: OutboundMessage, done?: (r: EnqueueResult) => void): void {
    if (!this.started || this.stopped) {
      this.drop('sink_stopped', `route ${msg.route}: a message on ${msg.topic} arrived while the MQTT sink is stopped`);
      return done?.('rejected');
    }
    if (msg.qos > 0) return this.outbox!.add(msg, done); // checks the topic too, before it reaches the disk
    const bad = this.qos0TopicCheck.problem(msg.topic);
    if (bad !== undefined) {
      this.drop('topic_invalid', `route ${msg.route}: ${bad}: ${JSON.stringify(msg.topic).slice(0, 200)} (the broker would drop the connection)`);
      return done?.('rejected');
    }
    const r = this.qos0.publish({ topic: msg.topic, payload: msg.payload, retain: msg.retain });
    done?.(r);
  }

  /**
   * Publishes an ephemeral message (command reply, health) without the
   * outbox. Resolves true once written (QoS 0) or acknowledged (QoS >= 1),
   * false when not connected or the connection was lost first. Never rejects.
   * Not counted in `published` (that counts routed messages only).
   */
  publishNow(topic: string, payload: Buffer, options: PublishNowOptions): Promise<boolean> {
    if (!this.isConnected || this.stopped) return Promise.resolve(false);
    // A reply topic comes from the remote client (reply_to, MQTT 5 response topic): one with a
    // wildcard or a control character would make the broker drop the agent's connection.
    const bad = topicProblem(topic);
    if (bad !== undefined) {
      this.drop('topic_invalid', `not published: ${bad}: ${JSON.stringify(topic).slice(0, 200)} (the broker would drop the connection)`);
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      if (options.qos === 0) {
        this.client!.publish(topic, payload, this.publishOpts(options), (err) => resolve(!err));
        return;
      }
      if (this.nowQueue.length >= NOW_QUEUE_MAX) {
        this.drop('publish_now_busy', `${NOW_QUEUE_MAX} messages already wait for an in-flight slot: ${topic} not published`);
        resolve(false);
        return;
      }
      this.nowQueue.push({ topic, payload, options, resolve });
      this.pump();
    });
  }

  /**
   * Subscribes now if connected and again after every reconnection. Resolves
   * true when the broker granted it (or, offline, once registered), false
   * when it refused it (logged). Never rejects.
   */
  async subscribe(filter: string, qos: 0 | 1 | 2, handler: MessageHandler): Promise<boolean> {
    this.subs.add(filter, qos, handler);
    if (!this.isConnected) return true;
    const client = this.client!;
    return this.subs.send(client, [filter], () => client === this.client && this.isConnected);
  }

  /** Removes `handler` (all handlers when absent) of `filter`; unsubscribes when none is left. */
  async unsubscribe(filter: string, handler?: MessageHandler): Promise<void> {
    if (this.subs.remove(filter, handler) && this.isConnected) await this.client!.unsubscribeAsync(filter).catch(() => undefined);
  }

  /**
   * Ends the sink: sends (bounded) what the outbox holds — the final
   * retained states published just before stop(), such as the serial
   * links' `stopped`, are the last messages in it — and waits for the acks
   * in flight, publishes the retained offline status with `reason`,
   * disconnects cleanly (so the broker does not publish the will) and
   * closes the outbox. What is not acknowledged by then stays in the outbox
   * for the next start (in order: the outbox is one FIFO, so the final
   * states cannot overtake older messages of their topic).
   */
  async stop(reason = 'shutdown'): Promise<void> {
    if (!this.started || this.stopped || this.stopping) return;
    this.stopping = true;
    const deadline = Date.now() + this.opts.stopTimeoutMs;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.tlsTimer);
    const client = this.client;
    if (client && this.isConnected) {
      // Two thirds of the time for the outbox, the rest for the offline status and the DISCONNECT.
      await this.drainOutbox(Date.now() + (this.opts.stopTimeoutMs * 2) / 3);
      await this.waitDrained(deadline - Date.now());
      const payload = statusPayload('offline', reason, this.deps.device, this.version, { outbox: this.outboxRecovery });
      const job = new Promise<boolean>((resolve) => {
        this.nowQueue.push({ topic: this.statusTopic, payload, options: { qos: 1, retain: true }, resolve });
        this.pump();
      });
      await settleWithin(job, Math.max(1, deadline - Date.now()));
      await endClient(client, this.flights.size === 0 && this.nowInflight === 0, Math.max(1, deadline - Date.now()));
    } else {
      client?.end(true);
    }
    this.gen++; // late callbacks of the old client are ignored from now on
    this.releaseAll();
    this.setDisconnected();
    this.stopped = true;
    this.outbox?.close();
    this.log.info(`mqtt: stopped (${reason})`);
  }

  /* ----------------------------------------------------------- connection */

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.stopping) return;
    let options: IClientOptions;
    try {
      options = buildConnectOptions({
        config: this.config,
        device: this.deps.device,
        secrets: this.secrets,
        tls: this.tlsMaterial(),
        will: { topic: this.statusTopic, payload: statusPayload('offline', 'connection lost', this.deps.device, this.version, { ts: null, outbox: this.outboxRecovery }) },
        connectTimeoutMs: this.opts.connectTimeoutMs,
        sessionExpiryS: this.opts.sessionExpiryS,
      });
    } catch (err) {
      // Unreadable password or TLS files: same path as a refused connection (logged once, retried).
      this.onClosed(false, err);
      return;
    }
    if (!this.config.clean_session) options.messageIdProvider = new PacketIdAllocator();
    const gen = ++this.gen;
    const client = connectMqtt(this.config.url, options);
    this.client = client;
    // No Nagle: QoS 0 gets no PUBACK to carry TCP ACKs back, so a lone small message would wait for
    // the broker's delayed ACK (~40 ms). Packets of one event-loop turn are still written together (cork).
    (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
    let lastError: unknown;
    let connected = false;
    client.on('error', (err) => {
      lastError = err;
      // Once connected, an error is a malformed packet from the broker (mqtt-packet's parser) or a
      // protocol error: MQTT 3.1.1 §4.8 and 5 §4.13 say to close the connection, mqtt.js only emits
      // the error and reads on. Closed, it is logged as the reason the connection was lost, counted,
      // and the next connection parses from a clean state.
      if (connected && gen === this.gen) client.stream?.destroy();
    });
    client.on('disconnect', (packet) => {
      // MQTT 5: the server says why it closes (session taken over, shutting down...)
      const rc = packet.reasonCode ?? 0;
      lastError = Object.assign(new Error(`server sent DISCONNECT: ${ReasonCodes[rc as keyof typeof ReasonCodes] ?? 'unknown'}`), { code: rc });
    });
    client.on('connect', (connack) => {
      if (gen !== this.gen) return;
      connected = true;
      this.onConnected(client, connack);
    });
    client.on('message', (topic, payload, packet) => this.subs.dispatch(topic, payload, packet));
    // The PUBACKs of the QoS 1 messages the sink wrote itself; mqtt.js, which has no callback for
    // them, logs them as "sent in error" and ignores them.
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'puback' && gen === this.gen) this.onPuback(client, gen, packet.messageId, packet.reasonCode);
    });
    client.on('close', () => {
      if (gen !== this.gen) return;
      client.removeAllListeners('message');
      this.onClosed(connected, lastError); // releases what was in flight first...
      client.end(true); // ...so the "Connection closed" callbacks mqtt.js fires here find nothing to do
    });
  }

  private onConnected(client: MqttClient, connack: IConnackPacket): void {
    const reconnect = this.everConnected;
    this.isConnected = true;
    this.everConnected = true;
    this.connectedAt = Date.now();
    this.metrics.mqttConnected.set(1);
    if (reconnect) this.metrics.reconnects.inc({ kind: 'mqtt', name: 'broker' });
    const receiveMax = connack.properties?.receiveMaximum ?? Infinity;
    // MQTT 5 brokers announce how many QoS>0 messages they take at once (mosquitto: 20); more is a protocol error.
    this.limit = Math.max(1, Math.min(this.outboxConfig.max_inflight, receiveMax));
    this.stats.inflightLimit = this.limit;
    if (!connack.sessionPresent) this.quarantine.clear();
    else for (const id of this.quarantine) client.messageIdProvider.register(id);
    const after = this.failures > 0 ? ` after ${this.failures} failed attempt(s)` : '';
    this.log.info(`mqtt: connected to ${this.label} (MQTT ${this.config.protocol_version === 5 ? '5' : '3.1.1'}, session present: ${connack.sessionPresent})${after}`);
    this.failKey = undefined;
    this.failures = 0;
    const payload = statusPayload('online', reconnect ? 'reconnected' : 'started', this.deps.device, this.version, { outbox: this.outboxRecovery });
    this.nowQueue.unshift({ topic: this.statusTopic, payload, options: { qos: 1, retain: true }, resolve: () => undefined });
    if (this.subs.size > 0) {
      void this.subs.send(client, this.subs.filters(), () => client === this.client && this.isConnected).then((ok) => this.emit('resubscribed', { ok }));
    }
    this.emit('connected', { sessionPresent: connack.sessionPresent, reconnect });
    this.pump();
    this.qos0.setClient(client);
  }

  private onClosed(wasConnected: boolean, err: unknown): void {
    const lived = wasConnected ? Date.now() - this.connectedAt : 0;
    this.releaseAll();
    this.setDisconnected();
    if (this.stopping) return;
    const { key, text } = describeError(err);
    if (lived >= this.opts.stableAfterMs) this.backoff.reset();
    const delay = this.reconnectImmediately ? 0 : this.backoff.next();
    const rotation = this.reconnectImmediately;
    this.reconnectImmediately = false;
    this.rotating = false;
    if (wasConnected) {
      if (!rotation) {
        this.log.warn(`mqtt: connection to ${this.label} lost: ${text}; reconnecting in ${delay} ms`);
        this.metrics.errors.inc({ component: 'mqtt' });
      }
      this.failKey = rotation ? undefined : key;
      this.emit('disconnected', { reason: rotation ? 'tls rotation' : text });
    } else {
      this.failures++;
      // Once per kind of failure, not once per retry: a broker down for an hour is one line.
      if (key !== this.failKey) {
        // Refusals (credentials, authorization) and TLS failures need a human; an unreachable broker may come back.
        const level = key.startsWith('rc:') || key.startsWith('tls:') || err instanceof Error && err.name === 'SecretError' ? 'error' : 'warn';
        this.metrics.errors.inc({ component: 'mqtt' });
        this.log[level](`mqtt: cannot connect to ${this.label}: ${text}; retrying with backoff (up to ${this.config.reconnect.max_delay_ms} ms)`);
        this.failKey = key;
      } else {
        this.log.debug(`mqtt: attempt ${this.failures} to ${this.label} failed: ${text}; next in ${delay} ms`);
      }
      this.emit('connect-failed', { reason: text, attempt: this.failures, retryInMs: delay });
    }
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private setDisconnected(): void {
    this.isConnected = false;
    this.qos0.setClient(undefined);
    this.metrics.mqttConnected.set(0);
    this.nowInflight = 0;
    for (const p of this.nowPending.values()) p.resolve(false);
    this.nowPending.clear();
    for (const j of this.nowQueue.splice(0)) j.resolve(false);
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Everything in flight goes back to pending, to be resent in id order. */
  private releaseAll(): void {
    this.flights.forEach((f) => {
      if (f.msg.qos === 2 && !this.config.clean_session) this.quarantineId(f.packetId);
    });
    this.flights.clear();
    this.byPacketId.clear();
    this.outbox?.releaseAll();
  }

  private quarantineId(id: number): void {
    this.quarantine.add(id);
    if (this.quarantine.size > QUARANTINE_MAX) this.quarantine.delete(this.quarantine.values().next().value!);
  }

  private tlsMaterial(): TlsMaterial | undefined {
    return this.tlsFiles?.current((err) => this.error('mqtt', `mqtt: new TLS files are not usable, keeping the previous ones: ${err.message}`));
  }

  /** Periodic: when the certificate, key or CA files changed, reconnect to use them. */
  private checkRotation(): void {
    if (!this.tlsFiles || !this.isConnected || this.rotating || this.stopping) return;
    if (!this.tlsFiles.rotated((err) => this.error('mqtt', `mqtt: new TLS files are not usable, keeping the previous ones: ${err.message}`))) return;
    this.log.info('mqtt: TLS files changed (certificate rotation): reconnecting to use them');
    this.emit('tls-rotated');
    this.rotating = true;
    const client = this.client!;
    // Let what is in flight be acknowledged first (bounded), so the rotation causes no duplicates.
    void this.waitDrained(this.opts.stopTimeoutMs).then(() => {
      if (this.client !== client || !this.isConnected) return;
      this.reconnectImmediately = true;
      void endClient(client, this.flights.size === 0 && this.nowInflight === 0, this.opts.stopTimeoutMs);
    });
  }

  /* ------------------------------------------------------------- delivery */

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Hands messages to mqtt.js up to the in-flight limit: ephemeral ones first, then the outbox in id order. */
  private pump(): void {
    if (!this.isConnected) return;
    const client = this.client!;
    const gen = this.gen;
    while (this.nowQueue.length > 0 && this.flights.size + this.nowInflight < this.limit) {
      const job = this.nowQueue.shift()!;
      const key = ++this.nowSeq;
      this.nowInflight++;
      this.nowPending.set(key, { gen, resolve: job.resolve });
      client.publish(job.topic, job.payload, this.publishOpts(job.options), (err) => {
        const p = this.nowPending.get(key);
        if (!p || p.gen !== this.gen) return;
        this.nowPending.delete(key);
        this.nowInflight--;
        p.resolve(!err);
        this.afterAck();
      });
    }
    if (this.rotating || (this.stopping && !this.draining) || !this.outbox) return;
    const free = this.limit - this.flights.size - this.nowInflight;
    // Refill at every ack (no waiting for a batch of free slots: with Nagle on the broker's side and
    // delayed ACKs on ours, a client that stops writing while waiting for PUBACKs stalls ~40 ms).
    if (free <= 0) return;
    for (const msg of this.outbox.next(free)) {
      if (msg.qos === 1 && this.sendQos1(client, gen, msg)) continue;
      client.publish(msg.topic, msg.payload, { qos: msg.qos, retain: msg.retain }, (err) => this.onPublished(gen, msg, err));
      const flight: Flight = { gen, msg, packetId: client.getLastMessageId() };
      this.flights.set(msg.id, flight);
    }
    const inflight = this.flights.size + this.nowInflight;
    if (inflight > this.stats.inflightPeak) this.stats.inflightPeak = inflight;
  }

  private onPublished(gen: number, msg: StoredMessage, err: Error | undefined): void {
    const f = this.flights.get(msg.id);
    if (!f || f.gen !== gen || gen !== this.gen) return; // released already (connection lost)
    this.flights.delete(msg.id);
    const code = (err as { code?: unknown } | undefined)?.code;
    if (!err) {
      this.outbox!.ack(msg.id);
      this.publishedBy[msg.qos]!.inc();
    } else if (typeof code === 'number' && code >= 0x80 && code !== QUOTA_EXCEEDED) {
      // MQTT 5 PUBACK/PUBREC with an error reason (not authorized, topic invalid...): retrying
      // would block the queue forever; the message is dropped and counted.
      this.outbox!.ack(msg.id);
      this.metrics.dropped.inc({ reason: 'broker_rejected' });
      this.metrics.errors.inc({ component: 'mqtt' });
      this.rejections.log(`mqtt: broker refused a message on ${msg.topic} (route ${msg.route}): ${err.message}; dropped`);
    } else {
      // quota exceeded or a local error: try again later (this one may then overtake others)
      this.outbox!.release(msg.id);
      setTimeout(() => this.schedulePump(), 1000).unref();
      return this.afterAck();
    }
    this.afterAck();
  }

  /**
   * A QoS 1 message written by the sink itself (publish-packet.ts), its packet
   * id taken from mqtt.js's provider (shared with mqtt.js's own packets: the
   * status, command replies, subscriptions). False when mqtt.js should send
   * it instead: no id free, or larger than an MQTT packet.
   */
  private sendQos1(client: MqttClient, gen: number, msg: StoredMessage): boolean {
    const packetId = client.messageIdProvider.allocate();
    if (packetId === null) return false;
    const packet = publishPacket(msg.topic, msg.payload, msg.retain, this.config.protocol_version, packetId);
    if (packet === undefined) {
      client.messageIdProvider.deallocate(packetId);
      return false;
    }
    this.flights.set(msg.id, { gen, msg, packetId });
    this.byPacketId.set(packetId, msg.id);
    writeBatched(client.stream, packet);
    return true;
  }

  /** A PUBACK for a packet the sink wrote: as mqtt.js would, a reason code above 0 (but 16, no subscribers) is an error. */
  private onPuback(client: MqttClient, gen: number, packetId: number | undefined, reasonCode: number | undefined): void {
    if (packetId === undefined) return;
    const id = this.byPacketId.get(packetId);
    if (id === undefined) return;
    this.byPacketId.delete(packetId);
    client.messageIdProvider.deallocate(packetId);
    const flight = this.flights.get(id);
    if (flight === undefined) return;
    const rc = reasonCode ?? 0;
    const err = rc > 0 && rc !== 16
      ? Object.assign(new Error(`Publish error: ${ReasonCodes[rc as keyof typeof ReasonCodes] ?? 'unknown'}`), { code: rc })
      : undefined;
    this.onPublished(gen, flight.msg, err);
  }

  private afterAck(): void {
    if (this.flights.size === 0 && this.nowInflight === 0) for (const w of this.idleWaiters.splice(0)) w();
    this.schedulePump();
  }

  /**
   * stop(): commits what publishers just enqueued, then lets the pump send
   * the outbox until it is empty, the connection is gone, or `until`.
   */
  private async drainOutbox(until: number): Promise<void> {
    const outbox = this.outbox;
    if (!outbox) return;
    this.draining = true;
    try {
      outbox.flush(); // enqueues of this turn (the link states of a stop) are committed now, not at setImmediate
      this.pump();
      while (this.isConnected && (outbox.depth > 0 || this.flights.size > 0) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 5));
        outbox.flush();
      }
    } finally {
      this.draining = false;
    }
  }

  /** Resolves when nothing is in flight, the connection is gone, or after `ms`. */
  private waitDrained(ms: number): Promise<void> {
    if (this.flights.size === 0 && this.nowInflight === 0) return Promise.resolve();
    return settleWithin(new Promise<void>((resolve) => this.idleWaiters.push(resolve)), Math.max(1, ms));
  }

  private publishOpts(o: PublishNowOptions): { qos: 0 | 1 | 2; retain: boolean; properties?: Record<string, unknown> } {
    return this.config.protocol_version === 5 && o.properties ? { qos: o.qos, retain: o.retain, properties: o.properties } : { qos: o.qos, retain: o.retain };
  }

  /** A message the sink itself refuses: counted by reason and logged (rate-limited). */
  private drop(reason: string, detail: string): void {
    this.metrics.dropped.inc({ reason });
    this.drops.log(`mqtt: message dropped (${reason}): ${detail}`);
  }

  private error(component: string, msg: string): void {
    this.metrics.errors.inc({ component });
    this.log.error(msg);
  }
}
