/**
 * Stands in for the `debug` package inside the agent's bundle
 * (scripts/bundle.mjs): mqtt, mqtt-packet and @serialport/stream each create
 * their debug loggers when they load, and loading `debug` (with the `tty`
 * module and its colour probing) costs ~60-100 ms of start-up in the
 * emulated arm64 guest, for loggers that print nothing unless $DEBUG names
 * them. Here the real package loads only when $DEBUG is set at start, or
 * when enable() is called; until then every logger is a no-op whose
 * `enabled` is false. Same API as far as these packages use it (a factory,
 * the loggers' call, enabled, namespace, extend, destroy, and the
 * factory's enable, disable, enabled).
 */
'use strict';

let real = null; // the real `debug`, once something enables logging
const load = () => (real ??= require('debug'));

function createDebug(namespace) {
  let logger = null;
  const resolve = () => (logger ??= load()(namespace));
  function debug(...args) {
    if (real !== null) resolve()(...args);
  }
  Object.defineProperty(debug, 'enabled', { get: () => real !== null && resolve().enabled, enumerable: true });
  debug.namespace = namespace;
  debug.extend = (sub, delimiter = ':') => createDebug(namespace + delimiter + sub);
  debug.destroy = () => false;
  return debug;
}
createDebug.enable = (namespaces) => load().enable(namespaces);
createDebug.disable = () => (real === null ? '' : real.disable());
createDebug.enabled = (name) => real !== null && real.enabled(name);

if (process.env.DEBUG) {
  module.exports = load();
} else {
  module.exports = createDebug;
  module.exports.default = createDebug;
}
