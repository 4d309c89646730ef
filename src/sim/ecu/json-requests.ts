/**
 * The verbs of the simulated JSON ECU (docs/ecu-protocols.md, "JSON
 * messages"): a request {"id":n,"verb":…,"args":…} gets {"id":n,"result":…}
 * or {"id":n,"error":…}; without "id" it is a one-way command (done, no reply).
 *
 *   ping                  → "pong"
 *   echo  ARGS            → ARGS (null when absent)
 *   get   {"key":K}       → {K: value}, or error "unknown key 'K'"
 *   set   {K: V, …}       → stores each pair; result: the pairs stored
 *   other                 → error "unknown verb 'other'"
 */
export type JsonReply = { id: unknown; result: unknown } | { id: unknown; error: string };

/** Initial contents of the key-value store (the "fan" of the protocol document's example). */
export const INITIAL_STORE: Readonly<Record<string, unknown>> = { fan: 3, mode: 'auto' };

export class JsonRequestHandler {
  private readonly store = new Map<string, unknown>(Object.entries(INITIAL_STORE));

  /**
   * Handles one received message; returns the reply to send, or undefined
   * (a one-way command, an event forwarded by the agent, anything else).
   */
  handle(message: unknown): JsonReply | undefined {
    if (!isObject(message) || !('verb' in message)) return undefined;
    const hasId = 'id' in message;
    const outcome = this.run(message.verb, message.args);
    if (!hasId) return undefined;
    return 'error' in outcome ? { id: message.id, error: outcome.error } : { id: message.id, result: outcome.result };
  }

  private run(verb: unknown, args: unknown): { result: unknown } | { error: string } {
    if (typeof verb !== 'string') return { error: `bad request: verb must be a string, not ${JSON.stringify(verb)}` };
    switch (verb) {
      case 'ping':
        return { result: 'pong' };
      case 'echo':
        return { result: args ?? null };
      case 'get': {
        if (!isObject(args) || typeof args.key !== 'string') return { error: 'bad args: get needs {"key": NAME}' };
        if (!this.store.has(args.key)) return { error: `unknown key '${args.key}'` };
        return { result: { [args.key]: this.store.get(args.key) } };
      }
      case 'set': {
        if (!isObject(args) || Object.keys(args).length === 0) return { error: 'bad args: set needs {NAME: VALUE, …}' };
        for (const [k, v] of Object.entries(args)) this.store.set(k, v);
        return { result: args };
      }
      default:
        return { error: `unknown verb '${verb}'` };
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
