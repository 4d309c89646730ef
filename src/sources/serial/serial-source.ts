/**
 * A serial link as a source of the agent: ECU events go to the router as
 * `{link}/{event}` with the link as source, and the link answers remote
 * commands (it is a command target, like a binder).
 *
 * Verbs of a link, for commands and the exported ecu API alike:
 * - `send`: a frame or message (shape per protocol, docs/ecu-protocols.md);
 * - `request`: the same, answered by the ECU (slcan: with `response_id`);
 * - `info`: the link's state and counters;
 * - any other verb on a JSON link (cobs json, ndjson): a request with that
 *   verb, `args` as given (`.../call/mcu0/get {"key":"fan"}`).
 */
import type { SerialLinkConfig } from '../../config/types.js';
import { makeEvent, type AgentEvent } from '../../core/event.js';
import type { AgentMetrics } from '../../health/metrics.js';
import { loadDbcFile } from '../../serial/dbc/load.js';
import { LinkError } from '../../serial/link/link-protocol.js';
import { SerialLink } from '../../serial/link/serial-link.js';
import type { Logger } from '../../util/log.js';
import type { Reply } from '../../wsapi/index.js';
import type { BindingInterface } from '@serialport/bindings-cpp';

export interface SerialSourceDeps {
  metrics: AgentMetrics;
  logger: Logger;
  binding: BindingInterface;
  onEvent: (ev: AgentEvent) => void;
}

export class SerialSource {
  readonly name: string;
  readonly link: SerialLink;

  constructor(readonly config: SerialLinkConfig, deps: SerialSourceDeps) {
    this.name = config.name;
    this.link = new SerialLink(config, { logger: deps.logger, metrics: deps.metrics, binding: deps.binding });
    logDbcFiles(config, deps.logger);
    const prefix = `${config.name}/`;
    const eventsIn = deps.metrics.hot(deps.metrics.eventsIn, { source: config.name });
    this.link.on('event', (name: string, data: unknown) => {
      eventsIn.inc();
      deps.onEvent(makeEvent(config.name, prefix + name, data));
    });
  }

  get connected(): boolean {
    return this.link.isOpen;
  }

  start(): void {
    this.link.start();
  }

  stop(): Promise<void> {
    return this.link.stop();
  }

  /** A remote command (CommandTarget). */
  call(verb: string, argsJson: string, timeoutMs?: number): Promise<Reply> {
    let args: unknown;
    try {
      args = JSON.parse(argsJson);
    } catch {
      return Promise.resolve({ data: null, error: 'invalid-request', info: 'arguments are not JSON' });
    }
    return callLink(this.link, verb, args, timeoutMs);
  }

  /** Links have no subscriptions to make: their events always flow (CommandTarget). */
  async subscribeOnDemand(): Promise<Reply> {
    return { data: null, error: 'not-supported', info: `serial link ${this.name}: every event of the link is already delivered` };
  }
}

/** Runs a verb on a link and turns the outcome into a wsapi-style reply. */
export async function callLink(link: SerialLink, verb: string, args: unknown, timeoutMs?: number): Promise<Reply> {
  try {
    switch (verb) {
      case 'send':
        link.send(args);
        return { data: null, error: null, info: 'queued' };
      case 'request':
        return { data: await link.request(args, timeoutMs), error: null, info: null };
      case 'info':
        return { data: link.info(), error: null, info: null };
      default:
        if (!link.namedVerbs) return { data: null, error: 'unknown-verb', info: `link ${link.name}: verbs are send, request, info` };
        return { data: await link.request({ verb, args }, timeoutMs), error: null, info: null };
    }
  } catch (err) {
    if (err instanceof LinkError) return { data: null, error: err.code, info: err.message };
    return { data: null, error: 'internal-error', info: (err as Error).message };
  }
}

/**
 * What each DBC file of the link gave (the config check loaded them: this
 * reads the cache): messages, statements skipped per keyword, warnings —
 * once at start, so that an operator sees what the agent made of the file.
 */
function logDbcFiles(config: SerialLinkConfig, logger: Logger): void {
  for (const file of config.dbc) {
    const dbc = loadDbcFile(file);
    const skipped = Object.entries(dbc.skipped).map(([k, n]) => `${k} ${n}`).join(', ');
    logger.info(`link ${config.name}: ${file}: ${dbc.messages.length} messages${skipped !== '' ? `; skipped: ${skipped}` : ''}`);
    for (const w of dbc.warnings) logger.warn(`link ${config.name}: ${w}`);
  }
}
