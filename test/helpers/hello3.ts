/**
 * An emulation of the native AGL "hello3" sample binding (API `hello`), built
 * on our WsapiServer, so that the captures of the real afb-daemon serving
 * hello3 (../shared/wsapi-vectors) can be replayed against our server.
 *
 * Behaviour is inferred from the captures; each verb says which capture shows
 * it. Verbs that no capture exercises are declared (the API description lists
 * every verb of the sample) but answer `not-emulated`, rather than guessing.
 *
 * The `info` text of the ping family embeds the query as json-c prints it
 * (`json_object_to_json_string`, i.e. JSON_C_TO_STRING_SPACED: `{ "a": [ 1, 2 ] }`,
 * '/' escaped as '\/'); jsoncSpaced() reproduces that from the args text.
 */
import { WsapiServer, type Request, type ServerEvent, type ServerOptions } from '../../src/wsapi/index.js';

/* ================================================== json-c text emulation */

/** A string as json-c writes it: '"', '\\' and '/' escaped, \b \f \n \r \t, other controls as \u00xx. */
export function jsoncString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"': out += '\\"'; break;
      case '\\': out += '\\\\'; break;
      case '/': out += '\\/'; break;
      case '\b': out += '\\b'; break;
      case '\f': out += '\\f'; break;
      case '\n': out += '\\n'; break;
      case '\r': out += '\\r'; break;
      case '\t': out += '\\t'; break;
      default:
        out += c < 0x20 ? `\\u00${c.toString(16).padStart(2, '0')}` : ch;
    }
  }
  return out + '"';
}

class JsonTextError extends Error {}

/**
 * Re-prints JSON text as json-c's JSON_C_TO_STRING_SPACED does. Works on the
 * text (not on a JS value) because json-c keeps the literal of a parsed
 * double ("1.50" stays "1.50") while integers are re-printed as int64.
 */
export function jsoncSpaced(text: string): string {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw new JsonTextError(`not JSON at ${i}`);
  };
  const str = (): string => {
    if (text[i] !== '"') fail();
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail();
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): string => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const members = new Map<string, string>(); // json-c keeps the first position of a repeated key, with the last value
      ws();
      if (text[i] === '}') {
        i++;
        return '{ }';
      }
      for (;;) {
        ws();
        const k = str();
        ws();
        if (text[i++] !== ':') fail();
        members.set(k, value());
        ws();
        const sep = text[i++];
        if (sep === '}') break;
        if (sep !== ',') fail();
      }
      return '{ ' + [...members].map(([k, v]) => `${jsoncString(k)}: ${v}`).join(', ') + ' }';
    }
    if (c === '[') {
      i++;
      const items: string[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return '[ ]';
      }
      for (;;) {
        items.push(value());
        ws();
        const sep = text[i++];
        if (sep === ']') break;
        if (sep !== ',') fail();
      }
      return '[ ' + items.join(', ') + ' ]';
    }
    if (c === '"') return jsoncString(str());
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return lit;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (m === null) fail();
    i += m![0].length;
    if (m![1] === undefined && m![2] === undefined) {
      const n = BigInt(m![0]);
      if (n >= -(2n ** 63n) && n < 2n ** 63n) return n.toString();
    }
    return m![0];
  };
  try {
    const out = value();
    ws();
    if (i !== text.length) fail();
    return out;
  } catch (err) {
    if (!(err instanceof JsonTextError) && !(err instanceof SyntaxError)) throw err;
    // As the binder does, text that is not JSON is taken as a JSON string holding it.
    return jsoncString(text);
  }
}

/* ============================================================ the verbs */

/** Every verb of the sample, in its declaration order, with the permissions its description shows. */
export const HELLO3_VERBS: ReadonlyArray<{ name: string; permissions?: unknown }> = [
  { name: 'ping' }, { name: 'pingfail' }, { name: 'pingnull' }, { name: 'pingbug' }, { name: 'pingJson' },
  { name: 'pingevent' }, { name: 'subcall' }, { name: 'subcallreq' }, { name: 'subcallsync' }, { name: 'eventadd' },
  { name: 'eventdel' }, { name: 'eventsub' }, { name: 'eventunsub' }, { name: 'eventpush' }, { name: 'call' },
  { name: 'callsync' }, { name: 'verbose' }, { name: 'broadcast' }, { name: 'hasperm' }, { name: 'appid' },
  { name: 'uid' }, { name: 'exit' },
  { name: 'close', permissions: { session: 'close' } },
  {
    name: 'set-loa',
    permissions: {
      anyOf: [
        { allOf: [true, { LOA: 0 }, { anyOf: [false, { not: true }] }] },
        {
          allOf: [
            { anyOf: [{ session: 'check' }, { not: { allOf: [{ anyOf: [{ permission: 'permission' }, { not: { permission: 'permission' } }] }, true] } }] },
            { anyOf: [{ permission: 'permission' }, { not: { permission: 'permission' } }] },
            true,
          ],
        },
      ],
    },
  },
  { name: 'has-loa-1', permissions: { LOA: 1 } },
  { name: 'has-loa-2', permissions: { LOA: 2 } },
  { name: 'has-loa-3', permissions: { LOA: 3 } },
  { name: 'setctx' }, { name: 'setctxif' }, { name: 'getctx' },
  { name: 'checktok', permissions: { session: 'check' } },
  { name: 'reftok', permissions: { allOf: [{ session: 'check' }, { token: 'refresh' }] } },
  { name: 'info' }, { name: 'eventloop' }, { name: 'dbus' }, { name: 'reply-count' }, { name: 'get' }, { name: 'ref' },
  { name: 'rootdir' }, { name: 'locale' }, { name: 'api' }, { name: 'mute' }, { name: 'mutebug' }, { name: 'queue' },
  { name: 'settings' }, { name: 'after' },
];

/** The OpenAPI skeleton the AGL binder generates for hello3 (04-describe, 10-daemon-as-client). */
export function hello3Description(api = 'hello'): unknown {
  const paths: Record<string, unknown> = {};
  for (const v of HELLO3_VERBS) {
    const get: Record<string, unknown> = {};
    if (v.permissions !== undefined) get['x-permissions'] = v.permissions;
    get.responses = { 200: { description: v.name } };
    paths[`/${v.name}`] = { get };
  }
  return { openapi: '3.0.0', info: { title: api, version: '0.0.0', description: '' }, paths };
}

const CONTEXT_KEY = 'hello3';

function field(args: unknown, name: string): unknown {
  return args !== null && typeof args === 'object' && !Array.isArray(args) ? (args as Record<string, unknown>)[name] : undefined;
}

export class Hello3 {
  readonly server: WsapiServer;
  /** The sample's static `pingcount`, shared by ping, pingnull, pingJson and pingevent. */
  pingCount = 0;
  private readonly events = new Map<string, ServerEvent>();

  constructor(options: Partial<ServerOptions> = {}) {
    const api = options.api ?? 'hello';
    this.server = new WsapiServer({
      description: () => hello3Description(api),
      // The 2021 binder puts no bound on what it sends (15: 1.2 and 1.5 MB replies) nor on a reassembled
      // message (15: a 1.5 MB call in two fragments): the emulation does the same. Our own defaults refuse
      // both (docs/wsapi.md, "Limits"), since a native receiver closes on the first and no native sender
      // produces the second.
      peerMaxFramePayload: Number.MAX_SAFE_INTEGER,
      maxMessageSize: Number.MAX_SAFE_INTEGER,
      ...options,
      api,
    });
    const implemented: Record<string, (req: Request) => void> = {
      /* 02, 13, 14, 15: "Some String", info with the query as json-c prints it */
      ping: (req) => req.reply('Some String', this.pingInfo('pingSample', req)),
      /* 03: error "failed", info "Ping Binder Daemon fails"; does not count (06's count follows 02's) */
      pingfail: (req) => req.fail('failed', 'Ping Binder Daemon fails'),
      /* 02: no data */
      pingnull: (req) => req.reply(null, this.pingInfo('pingNull', req)),
      /* 02 */
      pingJson: (req) => req.reply(
        { myString: 'Some String', myInt: 1234, eobj: { subObjString: 'Some String', subObjInt: 5678 } },
        this.pingInfo('pingJson', req),
      ),
      /* 07: replies the query and broadcasts it as hello/event (B after the k) */
      pingevent: (req) => {
        const info = this.pingInfo('event', req);
        this.server.broadcast('event', req.args);
        req.reply(req.args, info);
      },
      /* 05, 06, 07: events by tag; creating one sends nothing on the wire */
      eventadd: (req) => {
        const tag = field(req.args, 'tag');
        const name = field(req.args, 'name');
        if (typeof tag !== 'string' || typeof name !== 'string') return req.fail('failed', 'bad arguments');
        if (this.events.has(tag)) return req.fail('failed', 'creation error');
        this.events.set(tag, this.server.event(name));
        req.reply(null);
      },
      /* 05, 06: e goes to subscribers before the k */
      eventdel: (req) => {
        const ev = this.tagged(req);
        if (ev === undefined) return req.fail('failed', 'deletion error');
        this.events.delete(field(req.args, 'tag') as string);
        ev.remove();
        req.reply(null);
      },
      /* 05: E (first time on this connection), X, then k */
      eventsub: (req) => {
        const ev = this.tagged(req);
        if (ev === undefined || !req.subscribe(ev)) return req.fail('failed', 'subscription error');
        req.reply(null);
      },
      /* 05: x then k; pushes go on (AGL 2021) */
      eventunsub: (req) => {
        const ev = this.tagged(req);
        if (ev === undefined || !req.unsubscribe(ev)) return req.fail('failed', 'unsubscription error');
        req.reply(null);
      },
      /* 05, 06: P after the k; an event deleted before → "failed"/"push error" */
      eventpush: (req) => {
        const ev = this.tagged(req);
        if (ev === undefined) return req.fail('failed', 'push error');
        ev.push(field(req.args, 'data') ?? null);
        req.reply(null);
      },
      /* 07: by name (hello/NAME) or by tag; B after the k */
      broadcast: (req) => {
        const data = field(req.args, 'data') ?? null;
        const tag = field(req.args, 'tag');
        const name = field(req.args, 'name');
        if (typeof tag === 'string') {
          const ev = this.events.get(tag);
          if (ev === undefined) return req.fail('failed', 'broadcast error');
          ev.broadcast(data);
        } else if (typeof name === 'string') {
          this.server.broadcast(name, data);
        } else {
          return req.fail('failed', 'broadcast error');
        }
        req.reply(null);
      },
      /* 08, 09: per-session context */
      setctx: (req) => {
        req.session.context.set(CONTEXT_KEY, req.args);
        req.reply(req.args, 'context set');
      },
      getctx: (req) => req.reply(req.session.context.get(CONTEXT_KEY) ?? null, 'returning the context'),
      /* 08 (n07b): closes the session; a later getctx on it finds no context */
      close: (req) => {
        req.session.close();
        req.reply(null, 'session closed');
      },
      /* 08: the framework checks the token; without cynara every token (even none, 09) passes */
      checktok: (req) => req.reply(null),
      /* 08 */
      'set-loa': (req) => {
        const loa = Number(req.args);
        req.session.loa = Number.isInteger(loa) ? loa : 0;
        req.reply(null, `LOA set to ${req.session.loa}`);
      },
      /* 09, 13: how the server sees the caller: credentials (forwarded ones when honoured), session, LOA */
      info: (req) => {
        const data: Record<string, unknown> = {};
        const c = req.creds;
        if (c !== undefined) Object.assign(data, { uid: c.uid, gid: c.gid, pid: c.pid, user: String(c.uid), label: c.label, id: c.label });
        data.uuid = req.session.uuid;
        data.LOA = req.session.loa;
        req.reply(data);
      },
    };
    /* 03, 08: the framework refuses a verb whose LOA the session lacks */
    for (const n of [1, 2, 3]) {
      implemented[`has-loa-${n}`] = (req) => (req.session.loa >= n ? req.reply(null) : req.fail('insufficient-scope', 'invalid LOA'));
    }
    for (const v of HELLO3_VERBS) {
      const handler = implemented[v.name] ?? ((req: Request) =>
        req.fail('not-emulated', `verb ${v.name} of the native hello3 sample is not emulated (no capture shows it)`));
      this.server.verb(v.name, handler);
    }
  }

  private pingInfo(tag: string, req: Request): string {
    this.pingCount++;
    return `Ping Binder Daemon tag=${tag} count=${this.pingCount} query=${jsoncSpaced(req.argsText)}`;
  }

  private tagged(req: Request): ServerEvent | undefined {
    const tag = field(req.args, 'tag');
    return typeof tag === 'string' ? this.events.get(tag) : undefined;
  }
}
