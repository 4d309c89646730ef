/**
 * Stand-ins that load a module at its first use instead of when the bundle
 * starts (scripts/bundle.mjs): the source of a CommonJS module with the same
 * export names as the real one (read from it at build time), each of which
 * loads the real module when used. Two kinds, after how the importers use
 * the exports:
 *
 * - 'get': each export is a getter. For importers that read an export when
 *   they use it: esbuild's interop for `import { x } from`, and the
 *   `(0, m.x)(...)` calls of TypeScript's CommonJS output.
 * - 'call': each export is a function that calls (or constructs) the real
 *   one. For importers that copy an export when they load, as mqtt.js's
 *   get-timer.js does with worker-timers: a getter would load it there.
 *   Every export must then be a function.
 *
 * `__esModule` is copied as a value: esbuild's interop reads it at load.
 */
export function lazyModuleSource(name, real, kind) {
  const keys = Object.keys(real).filter((k) => k !== '__esModule');
  if (kind === 'call') {
    const bad = keys.filter((k) => typeof real[k] !== 'function');
    if (bad.length > 0) throw new Error(`lazy module ${name}: 'call' needs functions, ${bad.join(', ')} are not`);
  } else if (kind !== 'get') {
    throw new Error(`lazy module ${name}: unknown kind '${kind}'`);
  }
  const define = kind === 'get'
    ? 'Object.defineProperty(exports, key, { enumerable: true, get: () => load()[key] });'
    : 'exports[key] = function (...args) { return new.target ? Reflect.construct(load()[key], args) : load()[key].apply(this, args); };';
  return [
    `// Stands for ${JSON.stringify(name)} until its first use (scripts/bundle-shims/lazy-module.mjs).`,
    "'use strict';",
    'let real;',
    `const load = () => (real ??= require(${JSON.stringify(name)}));`,
    ...(real.__esModule === true ? ["Object.defineProperty(exports, '__esModule', { value: true });"] : []),
    `for (const key of ${JSON.stringify(keys)}) ${define}`,
    '',
  ].join('\n');
}
