/**
 * mqtt-packet's parser, one core, no I/O: its byte list being bl (what
 * mqtt.js uses by default, and the baseline) or PacketBytes (what the
 * agent's bundle gives it: src/sinks/mqtt/packet-bytes.ts), alternately in
 * the same process.
 *
 *   node dist/bench/mqtt-parse.js [--packets N] [--rounds R]
 *
 * Streams: the PUBACKs of a QoS 1 burst, as the broker sends them (4 bytes
 * each, in socket reads of 64 acks), and PUBLISH packets of ~100 bytes (the
 * commands and subscriptions' way in), in reads of 16 KiB. Prints, per
 * stream, the time per packet (GC included), best of R rounds, and the
 * ratio. Ends with one summary line.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import mqttPacket from 'mqtt-packet';
import { withPacketBytes, type ListHoldingParser } from '../src/sinks/mqtt/packet-bytes.js';

const { values } = parseArgs({ options: { packets: { type: 'string', default: '400000' }, rounds: { type: 'string', default: '5' } } });
const N = Number(values.packets);
const ROUNDS = Number(values.rounds);

function parser(lean: boolean) {
  const p = mqttPacket.parser({ protocolVersion: 4 }) as ReturnType<typeof mqttPacket.parser> & ListHoldingParser;
  return lean ? withPacketBytes(p) : p;
}

/** The stream cut into socket reads of `readBytes`, each read a Buffer of its own (as a socket gives them). */
function reads(packets: Buffer[], readBytes: number): Buffer[] {
  const all = Buffer.concat(packets);
  const out: Buffer[] = [];
  for (let at = 0; at < all.length; at += readBytes) out.push(Buffer.from(all.subarray(at, at + readBytes)));
  return out;
}

const acks = reads(Array.from({ length: N }, (_, i) => mqttPacket.generate({ cmd: 'puback', messageId: 1 + (i % 65535) })), 64 * 4);
const publishes = reads(Array.from({ length: N / 4 }, (_, i) => mqttPacket.generate({
  cmd: 'publish', topic: 'afb-edge/dev-1/commands/hello/ping', payload: Buffer.from(JSON.stringify({ id: i, args: { value: 42.5, unit: 'km/h' } })),
  qos: 1, messageId: 1 + (i % 65535), retain: false, dup: false,
})), 16 * 1024);

/** ns per packet for one pass over the stream. */
function pass(lean: boolean, chunks: Buffer[], packets: number): number {
  const p = parser(lean);
  let n = 0;
  p.on('packet', () => { n++; });
  const t0 = process.hrtime.bigint();
  for (const c of chunks) p.parse(c);
  const ns = Number(process.hrtime.bigint() - t0) / packets;
  if (n !== packets) throw new Error(`parsed ${n} packets of ${packets}`);
  return ns;
}

console.log(`mqtt-packet parser: bl vs PacketBytes, node ${process.version}, ${cpus()[0]?.model ?? 'cpu'}, ${N} PUBACKs and ${N / 4} PUBLISHes, best of ${ROUNDS}`);
const summary: string[] = [];
for (const [name, chunks, packets] of [['puback', acks, N], ['publish', publishes, N / 4]] as const) {
  let bestBl = Infinity;
  let bestLean = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    bestBl = Math.min(bestBl, pass(false, chunks, packets));
    bestLean = Math.min(bestLean, pass(true, chunks, packets));
  }
  console.log(`${name.padEnd(8)} bl ${bestBl.toFixed(0)} ns/packet, PacketBytes ${bestLean.toFixed(0)} ns/packet: ratio ${(bestBl / bestLean).toFixed(2)}x`);
  summary.push(`${name}_bl_ns=${bestBl.toFixed(0)}`, `${name}_lean_ns=${bestLean.toFixed(0)}`, `${name}_ratio=${(bestBl / bestLean).toFixed(2)}`);
}
console.log(summary.join(' '));
