/**
 * Modules loaded on first use rather than at start-up, with require (the
 * agent's bundle holds no import() that Node resolves: see
 * src/cli/launch.cts).
 *
 * - Node built-ins: tls, http and crypto (with what they pull in) cost
 *   ~0.4 s of the agent's start-up in the emulated arm64 guest
 *   (docs/qemu.md), and a given configuration may need none of them: TLS
 *   only with mqtts://, HTTP only with health.http_listen, random ids only
 *   when serving an API. (perf_hooks, ~0.1 s there, is no longer loaded at
 *   all: src/health/event-loop-delay.ts.)
 * - binding-mock, a package for tests only (outside the bundle): loaded
 *   when a mock serial line is made. (serialport's own binding is bundled,
 *   and loaded through import(): src/serial/link/binding.ts.)
 */
import { createRequire } from 'node:module';

let load: NodeJS.Require | undefined;

export function lazyRequire<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= (load ??= createRequire(import.meta.url))(name) as T);
}
