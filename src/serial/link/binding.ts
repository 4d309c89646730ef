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

/**
 * The system binding as the agent's serial links use it: loaded when a link
 * first opens (or lists) a port, one turn of the event loop after the links
 * start. Start-up, and READY=1, do not wait for the driver of devices that
 * may not even be there (its addon and module code: ~0.15-0.3 s in the
 * emulated arm64 guest); a binding that cannot load is reported by each
 * link as a port that cannot open, and retried as one.
 */
export const deferredSystemBinding: BindingInterface = {
  list: async () => (await nextTurn(systemBinding)).list(),
  open: async (options) => (await nextTurn(systemBinding)).open(options),
};

function nextTurn<T>(f: () => Promise<T>): Promise<T> {
  return new Promise((resolve) => setImmediate(resolve)).then(f);
}
