/**
 * Socket specs, as native binders write them in --ws-client / --ws-server:
 *   unix:/run/platform/apis/ws/hello      path socket, API "hello"
 *   unix:@hello                           Linux abstract socket, API "hello"
 *   tcp:localhost:1234/hello              TCP, API "hello"
 *   sd:hello                              socket inherited from systemd (LISTEN_FDNAMES)
 * followed by an optional query: `?as-api=NAME` renames the API; this project
 * adds `abstract=exact|padded|auto` to pick the abstract address form.
 */

/** How an abstract name is laid in sun_path: AGL binders pad it to 108 bytes, redpesk/systemd use its exact length. */
export type AbstractForm = 'exact' | 'padded' | 'auto';

export type SocketSpec =
  | { kind: 'unix'; path: string; api: string; text: string }
  | { kind: 'abstract'; name: string; form: AbstractForm; api: string; text: string }
  | { kind: 'tcp'; host: string; port: number; api: string; text: string }
  | { kind: 'sd'; name: string; api: string; text: string };

export class SpecError extends Error {
  constructor(spec: string, why: string) {
    super(`invalid socket spec '${spec}': ${why}`);
    this.name = 'SpecError';
  }
}

/** Largest abstract name: sun_path is 108 bytes, one of which is the leading NUL. */
export const MAX_ABSTRACT_NAME = 107;
const MAX_UNIX_PATH = 107;

function lastComponent(path: string): string {
  const parts = path.split('/').filter((p) => p.length > 0);
  return parts.length > 0 ? parts[parts.length - 1]! : '';
}

export function parseSpec(text: string): SocketSpec {
  const q = text.indexOf('?');
  const base = q >= 0 ? text.slice(0, q) : text;
  const params = new URLSearchParams(q >= 0 ? text.slice(q + 1) : '');
  let asApi: string | undefined;
  let form: AbstractForm = 'auto';
  for (const [key, value] of params) {
    if (key === 'as-api') {
      if (value === '') throw new SpecError(text, 'as-api needs a name');
      asApi = value;
    } else if (key === 'abstract') {
      if (value !== 'exact' && value !== 'padded' && value !== 'auto') {
        throw new SpecError(text, `abstract must be exact, padded or auto, not '${value}'`);
      }
      form = value;
    } else {
      throw new SpecError(text, `unknown parameter '${key}' (known: as-api, abstract)`);
    }
  }
  const colon = base.indexOf(':');
  if (colon < 0) throw new SpecError(text, 'expected unix:, tcp: or sd: prefix');
  const scheme = base.slice(0, colon);
  const rest = base.slice(colon + 1);
  const named = (api: string): string => {
    const name = asApi ?? api;
    if (name === '') throw new SpecError(text, 'no API name: end the spec with /NAME or add ?as-api=NAME');
    if (name.includes('/')) throw new SpecError(text, `API name '${name}' contains '/'`);
    return name;
  };

  switch (scheme) {
    case 'unix': {
      if (rest.startsWith('@')) {
        const name = rest.slice(1);
        if (name === '') throw new SpecError(text, 'empty abstract name');
        if (Buffer.byteLength(name) > MAX_ABSTRACT_NAME) throw new SpecError(text, `abstract name longer than ${MAX_ABSTRACT_NAME} bytes`);
        return { kind: 'abstract', name, form, api: named(lastComponent(name)), text };
      }
      if (rest === '') throw new SpecError(text, 'empty path');
      if (Buffer.byteLength(rest) > MAX_UNIX_PATH) throw new SpecError(text, `path longer than ${MAX_UNIX_PATH} bytes`);
      return { kind: 'unix', path: rest, api: named(lastComponent(rest)), text };
    }
    case 'tcp': {
      const slash = rest.indexOf('/');
      const hostPort = slash >= 0 ? rest.slice(0, slash) : rest;
      const apiPath = slash >= 0 ? rest.slice(slash + 1) : '';
      const pc = hostPort.lastIndexOf(':');
      if (pc < 0) throw new SpecError(text, 'expected tcp:HOST:PORT/API');
      let host = hostPort.slice(0, pc);
      if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
      const portText = hostPort.slice(pc + 1);
      const port = Number(portText);
      if (host === '') throw new SpecError(text, 'empty host');
      if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw new SpecError(text, `bad port '${portText}'`);
      return { kind: 'tcp', host, port, api: named(lastComponent(apiPath)), text };
    }
    case 'sd': {
      if (rest === '') throw new SpecError(text, 'empty systemd socket name');
      return { kind: 'sd', name: rest, api: named(lastComponent(rest)), text };
    }
    default:
      throw new SpecError(text, `unknown scheme '${scheme}' (expected unix, tcp or sd)`);
  }
}
