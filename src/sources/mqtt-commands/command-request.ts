/**
 * A remote command's request, read from untrusted MQTT input, and its reply
 * text. Everything here is bounded before it is parsed or serialised, so no
 * request can make the agent throw (a 12 KB `id` of 6,000 nested arrays used
 * to kill it from JSON.stringify), and the reply goes where the caller asked
 * whenever that is a valid topic, even when the rest of the request is not.
 */
import { topicNameProblem } from '../../core/topic-name.js';
import type { Reply } from '../../wsapi/index.js';
import { scanJson } from './json-scan.js';
import type { ReplyTopicCheck } from './reply-topics.js';

export const COMMAND_LIMITS = {
  /**
   * Payload bytes. A call travels as one wsapi frame, and a native binder
   * refuses frames over 1,048,500 bytes of payload: a larger request could
   * never be delivered (the wsapi client also refuses a frame too large for
   * its peer, with `too-large`).
   */
  maxPayloadBytes: 1_048_576,
  /**
   * Nesting of `args`: native binders parse them with json-c, whose default
   * depth (JSON_TOKENER_DEFAULT_DEPTH) is 32; anything deeper could not be
   * read by the binder anyway. The 3.1.1 wrapper object adds one level.
   */
  maxArgsDepth: 32,
  /** An id is a correlation token (a uuid, a counter): its JSON text is echoed as it came, up to this many bytes. */
  maxIdBytes: 256,
} as const;

/** Where and how a reply is published. */
export interface ReplyAddress {
  topic: string;
  /** MQTT 5 form: no `id` in the body, the correlation data as a property. */
  v5: boolean;
  correlationData?: Buffer;
  /** 3.1.1: the request's `id`, as JSON text exactly as received (absent: `null`). */
  idText?: string;
}

export interface CommandRequest {
  reply: ReplyAddress;
  /** Why the request is refused with `invalid-request`, or null. */
  invalid: string | null;
  args: unknown;
  /** The args' JSON text as received (no re-serialisation: large integers reach the binder intact). */
  argsText: string;
  subscribe: boolean;
}

export interface RequestProperties {
  responseTopic?: string;
  correlationData?: Buffer;
  userProperties?: Record<string, string | string[]>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a request. `defaultReplyTopic` is used when the request names no
 * reply topic that `replyTopicProblem` accepts (the refusal then says why).
 */
export function parseCommandRequest(payload: Buffer, props: RequestProperties | undefined, defaultReplyTopic: string, replyTopicProblem: ReplyTopicCheck = topicNameProblem): CommandRequest {
  const v5 = props?.responseTopic !== undefined;
  const req: CommandRequest = { reply: { topic: defaultReplyTopic, v5 }, invalid: null, args: null, argsText: 'null', subscribe: false };
  const refuse = (why: string): CommandRequest => {
    req.invalid ??= why;
    return req;
  };
  if (v5) {
    // Read before the payload: a request with bad JSON is still answered where it asked (MQTT 5 §4.10).
    if (props!.correlationData !== undefined) req.reply.correlationData = props!.correlationData;
    const problem = replyTopicProblem(props!.responseTopic!);
    if (problem !== null) refuse(`response topic is not a valid topic name: ${problem}`);
    else req.reply.topic = props!.responseTopic!;
    const sub = props!.userProperties?.subscribe;
    req.subscribe = sub === 'true' || (Array.isArray(sub) && sub.includes('true'));
  }
  if (payload.length > COMMAND_LIMITS.maxPayloadBytes) {
    return refuse(`payload of ${payload.length} bytes is larger than ${COMMAND_LIMITS.maxPayloadBytes} bytes`);
  }
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return refuse('payload is not valid UTF-8');
  }
  if (text.trim() === '') return req; // no args (3.1.1: a request without id, reply_to or args)
  const scan = scanJson(text, v5 ? [] : ['id', 'reply_to', 'args']);
  if (!v5) {
    // The reply address first, so that every later refusal reaches the caller where it asked.
    const idText = scan.members.get('id');
    if (idText !== undefined) {
      if (Buffer.byteLength(idText) > COMMAND_LIMITS.maxIdBytes) refuse(`id is longer than ${COMMAND_LIMITS.maxIdBytes} bytes of JSON`);
      else if (isJson(idText)) req.reply.idText = idText;
    }
    const replyToText = scan.members.get('reply_to');
    if (replyToText !== undefined) {
      const replyTo = parseJsonOr(replyToText, undefined);
      const problem = typeof replyTo === 'string' ? replyTopicProblem(replyTo) : 'it is not a string';
      if (problem !== null) refuse(`reply_to is not a valid topic name: ${problem}`);
      else req.reply.topic = replyTo as string;
    }
  }
  const maxDepth = COMMAND_LIMITS.maxArgsDepth + (v5 ? 0 : 1);
  if (scan.depth > maxDepth) return refuse(`JSON nested deeper than ${maxDepth} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return refuse(`payload is not valid JSON: ${(err as Error).message}`);
  }
  if (req.invalid !== null) return req;
  if (v5) {
    req.args = value;
    req.argsText = text.trim();
    return req;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return refuse('the request must be a JSON object {"id", "reply_to", "args"}');
  const body = value as Record<string, unknown>;
  req.args = body.args ?? null;
  req.argsText = body.args === undefined || body.args === null ? 'null' : scan.members.get('args')!;
  req.subscribe = body.subscribe === true;
  return req;
}

/**
 * The reply's payload. Never throws: data that cannot be serialised (a
 * binder's reply nested past what JSON.stringify can walk) gives an
 * `invalid-request` reply saying so, at the same address.
 */
export function replyPayload(address: ReplyAddress, r: Reply): Buffer {
  const head = address.v5 ? '{' : `{"id":${address.idText ?? 'null'},`;
  let error = r.error;
  let info = r.info;
  let data: string;
  try {
    data = JSON.stringify(r.data) ?? 'null';
  } catch (err) {
    error = 'invalid-request';
    info = `the reply cannot be serialised as JSON (${(err as Error).message})`;
    data = 'null';
  }
  return Buffer.from(`${head}"error":${JSON.stringify(error)},"info":${JSON.stringify(info)},"data":${data}}`);
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function parseJsonOr<T>(text: string, fallback: T): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return fallback;
  }
}
