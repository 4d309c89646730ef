/**
 * The serialport binding for real devices, loaded on first use: the agent
 * without serial links never loads the native addon (memory, start time).
 * In the bundle (scripts/bundle.mjs) this import() is a call into the
 * bundled package, not an import() Node resolves: the bundle, which
 * dist/src/cli/launch.cjs runs through a V8 code cache, must not hold one
 * (Node cannot resolve an import() in code taken from the cache).
 */
import type { BindingInterface } from '@serialport/bindings-cpp';

let loaded: Promise<BindingInterface> | undefined;

export function systemBinding(): Promise<BindingInterface> {
  loaded ??= import('@serialport/bindings-cpp').then((m) => m.autoDetect() as BindingInterface);
  return loaded;
}
