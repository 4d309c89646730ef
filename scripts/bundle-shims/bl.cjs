/**
 * Stands in for `bl` inside the agent's bundle (scripts/bundle.mjs), where
 * only mqtt-packet's parser requires it, to hold the bytes it has not parsed
 * yet: `bl()` there gives src/sinks/mqtt/packet-bytes.ts's list, which reads
 * without copying (why, and what was measured: that file).
 */
'use strict';

// dist/src/sinks/mqtt/packet-bytes.js of the package being bundled (scripts/bundle.mjs resolves it)
const { PacketBytes } = require('afb-edge:packet-bytes');

module.exports = function packetBytes() {
  return new PacketBytes();
};
