/**
 * Node built-in modules loaded on first use rather than at start-up. tls,
 * http and crypto (with what they pull in) cost ~0.4 s of the agent's
 * start-up in the emulated arm64 guest (docs/qemu.md), and a given
 * configuration may need none of them: TLS only with mqtts://, HTTP only
 * with health.http_listen, random ids only when serving an API.
 */
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

export function lazyBuiltin<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= load(name) as T);
}
