/**
 * DBC decoding throughput and DBC load cost, one core, no I/O.
 *
 *   npm run bench:dbc -- [--dbc FILE] [--frames FILE] [--count N] [--rounds R]
 *
 * Throughput: the frames of a JSON-lines file ({"id","extended","data"}, by
 * default ../shared/can-vectors/vehicle.frames.jsonl: ~20,000 real frames of
 * 217 messages) decoded over and over, N in all, by the compiled DBC decoder
 * and by the YAML-map decoder (src/serial/can-signals.ts) given the same
 * messages converted from the DBC (no value tables: it has none). Best of R
 * rounds.
 *
 * Load: the largest DBC (default: the largest .dbc beside the frames file)
 * read, parsed and compiled in a fresh process started with the agent's
 * node flags (bin/afb-edge: --max-semi-space-size=2 --v8-pool-size=1), as
 * the agent loads its files once at start: wall and CPU time (the CPU time
 * is the figure to trust on a shared machine), RSS and heap growth after a GC.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileSignalMap, type MessageSpec } from '../src/serial/can-signals.js';
import { compileDbc } from '../src/serial/dbc/codec.js';
import { decodeCp1252 } from '../src/serial/dbc/cp1252.js';
import { loadDbcFile } from '../src/serial/dbc/load.js';
import { parseDbc } from '../src/serial/dbc/parser.js';
import type { CanFrame } from '../src/serial/slcan-codec.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const VECTORS = resolve(HERE, '..', '..', '..', 'shared', 'can-vectors');
const { values } = parseArgs({
  options: {
    dbc: { type: 'string', default: join(VECTORS, 'vehicle.dbc') },
    frames: { type: 'string', default: join(VECTORS, 'vehicle.frames.jsonl') },
    count: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '5' },
    'load-only': { type: 'string' },
  },
});

if (values['load-only'] !== undefined) {
  // The child: one first load, as at the agent's start.
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  const before = process.memoryUsage();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const dbc = loadDbcFile(values['load-only']);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  gc();
  const after = process.memoryUsage();
  process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, rssMB: (after.rss - before.rss) / 2 ** 20, heapMB: (after.heapUsed - before.heapUsed) / 2 ** 20, messages: dbc.messages.length }) + '\n');
  process.exit(0);
}

const N = Number(values.count);
const ROUNDS = Number(values.rounds);

function best(fn: () => number): { perSecond: number; check: number } {
  let bestS = Infinity;
  let check = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    check = fn();
    bestS = Math.min(bestS, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return { perSecond: N / bestS, check };
}

const frames: CanFrame[] = readFileSync(values.frames, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
  const f = JSON.parse(l) as { id: number; extended: boolean; data: string };
  const data = Buffer.from(f.data, 'hex');
  return { id: f.id, extended: f.extended, rtr: false, dlc: data.length, data };
});

const db = parseDbc(decodeCp1252(readFileSync(values.dbc)), values.dbc);
const dbc = compileDbc(db);
// The same messages as a YAML map (what a user had to write by hand before): classic frames, non-multiplexed signals.
const yamlMessages: MessageSpec[] = db.messages.filter((m) => m.length <= 8).map((m) => ({
  id: m.id,
  extended: m.extended,
  name: m.name,
  dlc: m.length,
  signals: m.signals.filter((s) => s.multiplexer === undefined && !s.isMultiplexer && s.valueType === 'integer').map((s) => ({
    name: s.name, start_bit: s.startBit, length: s.length, byte_order: s.byteOrder, signed: s.signed, scale: s.scale, offset: s.offset,
  })),
}));
const yaml = compileSignalMap({ messages: yamlMessages });

function run(decode: (f: CanFrame) => { values: Record<string, number | string> } | undefined): number {
  let n = 0;
  for (let i = 0, k = 0; i < N; i++, k = k + 1 === frames.length ? 0 : k + 1) {
    const d = decode(frames[k]!);
    if (d !== undefined) n++;
  }
  return n;
}

// Warm-up: both decoders JIT-compiled before timing.
run((f) => dbc.decode(f));
run((f) => yaml.decode(f));
const dbcRate = best(() => run((f) => dbc.decode(f)));
const yamlRate = best(() => run((f) => yaml.decode(f)));

const dir = dirname(values.dbc);
const largest = readdirSync(dir).filter((f) => f.endsWith('.dbc')).map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
const load = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=2', '--v8-pool-size=1', fileURLToPath(import.meta.url), '--load-only', largest], { encoding: 'utf8' })) as { ms: number; cpuMs: number; rssMB: number; heapMB: number; messages: number };

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
console.log(`machine: ${cpus()[0]?.model ?? '?'} (${cpus().length} cpus), node ${process.version}`);
console.log(`frames: ${frames.length.toLocaleString('en-US')} from ${values.frames}, ${N.toLocaleString('en-US')} decoded per round, best of ${ROUNDS}`);
console.log(`DBC decoder (${db.messages.length} messages of ${values.dbc}): ${fmt(dbcRate.perSecond)} frames/s (${dbcRate.check} decoded)`);
console.log(`YAML-map decoder, same messages:     ${fmt(yamlRate.perSecond)} frames/s (${yamlRate.check} decoded)`);
console.log(`load ${largest} (${statSync(largest).size.toLocaleString('en-US')} bytes, ${load.messages} messages), first load in a fresh process: ${load.ms.toFixed(1)} ms (CPU ${load.cpuMs.toFixed(1)} ms), RSS +${load.rssMB.toFixed(1)} MB, heap +${load.heapMB.toFixed(1)} MB`);
