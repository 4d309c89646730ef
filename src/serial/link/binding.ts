/**
 * The serialport binding for real devices, loaded on first use: the agent
 * without serial links never loads the native addon (memory, start time).
 */
import type { BindingInterface } from '@serialport/bindings-cpp';

let loaded: Promise<BindingInterface> | undefined;

export function systemBinding(): Promise<BindingInterface> {
  loaded ??= import('@serialport/bindings-cpp').then((m) => m.autoDetect() as BindingInterface);
  return loaded;
}
