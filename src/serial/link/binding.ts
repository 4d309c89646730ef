/**
 * The serialport binding for real devices, loaded on first use: the agent
 * without serial links never loads the native addon (memory, start time).
 * Loaded with require, not import(): it is a CommonJS package, and the
 * bundle that dist/src/cli/launch.cjs runs through a V8 code cache must not
 * hold import() (Node cannot resolve one in code taken from the cache).
 */
import type { BindingInterface } from '@serialport/bindings-cpp';
import { lazyRequire } from '../../util/lazy-require.js';

const bindingsCpp = lazyRequire<typeof import('@serialport/bindings-cpp')>('@serialport/bindings-cpp');
let loaded: Promise<BindingInterface> | undefined;

export function systemBinding(): Promise<BindingInterface> {
  loaded ??= Promise.resolve().then(() => bindingsCpp().autoDetect() as BindingInterface);
  return loaded;
}
