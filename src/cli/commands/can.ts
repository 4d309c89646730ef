/**
 * afb-edge can decode --dbc FILE [--dbc FILE]…   frames on stdin → one JSON line per frame
 * afb-edge can encode --dbc FILE MESSAGE 'JSON'  → the payload as hex
 *
 * For engineers checking their databases and logs with the agent's own
 * decoder: `candump -L can0 | afb-edge can decode --dbc vehicle.dbc`.
 * Input lines that are not frames are reported on stderr with their line
 * number and counted (a summary at the end), never fatal.
 */
import { linkSignalMap, type DbcSource } from '../../serial/can-signals.js';
import { parseLogLine } from '../../serial/candump-log.js';
import { DbcEncodeError } from '../../serial/dbc/codec.js';
import { DbcSyntaxError } from '../../serial/dbc/errors.js';
import { DbcFileError, loadDbcFile } from '../../serial/dbc/load.js';
import { RateLimitedLog } from '../../util/log.js';
import { parse } from '../args.js';
import { EXIT_OK, EXIT_REPLY_ERROR, UsageError } from '../usage.js';

/** Longest input line (bytes): a CAN FD candump line is under 200; longer lines are skipped and counted. */
const MAX_LINE = 64 * 1024;

export async function canCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'decode') return decodeCommand(rest);
  if (sub === 'encode') return encodeCommand(rest);
  throw new UsageError(sub === undefined ? 'missing decode or encode after can' : `unknown can command '${sub}' (decode or encode)`);
}

/** The DBC files, merged as a link merges them (an id in two files is an error). null: reported, exit 1. */
function loadDbcs(files: string[], describe: boolean): ReturnType<typeof linkSignalMap> | null {
  if (files.length === 0) throw new UsageError('missing --dbc FILE');
  const sources: DbcSource[] = [];
  try {
    for (const file of files) {
      const dbc = loadDbcFile(file);
      if (describe) {
        const skipped = Object.entries(dbc.skipped).map(([k, n]) => `${k} ${n}`).join(', ');
        process.stderr.write(`afb-edge: ${file}: ${dbc.messages.length} messages${skipped !== '' ? `; skipped: ${skipped}` : ''}\n`);
      }
      for (const w of dbc.warnings) process.stderr.write(`afb-edge: warning: ${w}\n`);
      sources.push({ file, dbc });
    }
    return linkSignalMap([], sources);
  } catch (err) {
    if (err instanceof DbcSyntaxError || err instanceof DbcFileError) process.stderr.write(`afb-edge: ${err.message}\n`);
    else process.stderr.write(`afb-edge: ${(err as Error).message}\n`);
    return null;
  }
}

/** JSON of a value: −0.0 keeps its sign (JSON.stringify writes 0), as cantools and the vectors write it. */
const num = (v: number | string): string => (Object.is(v, -0) ? '-0.0' : JSON.stringify(v));

function record(o: Record<string, number | string>): string {
  let s = '{';
  for (const k in o) s += (s.length > 1 ? ',' : '') + JSON.stringify(k) + ':' + num(o[k]!);
  return s + '}';
}

async function decodeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { dbc: { type: 'string', multiple: true } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (frames are read from stdin)`);
  const map = loadDbcs((values.dbc as string[] | undefined) ?? [], true);
  if (map === null) return EXIT_REPLY_ERROR;
  const counts = { frames: 0, decoded: 0, unknown: 0, errorFrames: 0, invalid: 0 };
  const warn = new RateLimitedLog((m) => process.stderr.write(`afb-edge: ${m}\n`), 20, 10_000);
  let lineNo = 0;

  const onLine = (text: string): string => {
    lineNo++;
    const f = parseLogLine(text);
    if (f.kind === 'blank') return '';
    if (f.kind === 'invalid') {
      counts.invalid++;
      warn.log(`stdin:${lineNo}: ${f.reason}`);
      return '';
    }
    const extra = (f.timestamp !== undefined ? `,"timestamp":${f.timestamp}` : '') + (f.iface !== undefined ? `,"interface":${JSON.stringify(f.iface)}` : '');
    if (f.kind === 'error-frame') {
      counts.errorFrames++;
      return `{"id":${f.id},"extended":false,"error":true,"data":"${f.data.toString('hex')}"${extra},"message":null,"values":{},"raw":{}}\n`;
    }
    counts.frames++;
    const head = `{"id":${f.id},"extended":${f.extended}${f.rtr ? ',"rtr":true' : ''}${f.fd ? ',"fd":true' : ''}${extra}`;
    const d = map.decode({ id: f.id, extended: f.extended, rtr: f.rtr, dlc: f.data.length, data: f.data });
    if (d === undefined) {
      const name = map.nameOf(f.id, f.extended);
      if (name === undefined) counts.unknown++;
      return `${head},"message":${name === undefined ? 'null' : JSON.stringify(name)},"values":{},"raw":{}}\n`;
    }
    counts.decoded++;
    return `${head},"message":${JSON.stringify(d.name)},"values":${record(d.values)},"raw":${record(d.raw ?? {})}}\n`;
  };

  await new Promise<void>((resolve, reject) => {
    let pending = Buffer.alloc(0);
    let skipping = false;
    const stdin = process.stdin;
    stdin.on('data', (chunk: Buffer) => {
      let buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      let out = '';
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10)) {
        if (skipping) skipping = false;
        else out += onLine(buf.toString('latin1', 0, nl));
        buf = buf.subarray(nl + 1);
      }
      if (buf.length > MAX_LINE) {
        // A line with no end in sight: dropped up to its newline, counted once.
        if (!skipping) {
          lineNo++;
          counts.invalid++;
          warn.log(`stdin:${lineNo}: line longer than ${MAX_LINE} bytes: skipped`);
        }
        skipping = true;
        buf = Buffer.alloc(0);
      }
      pending = Buffer.from(buf);
      if (out !== '' && !process.stdout.write(out)) {
        stdin.pause();
        process.stdout.once('drain', () => stdin.resume());
      }
    });
    stdin.on('end', () => {
      if (pending.length > 0 && !skipping) process.stdout.write(onLine(pending.toString('latin1')));
      resolve();
    });
    stdin.on('error', reject);
  });
  const summary = `${counts.frames} frames: ${counts.decoded} decoded, ${counts.unknown} with an id the DBC does not describe; ${counts.errorFrames} error frames; ${counts.invalid} lines not understood`;
  process.stderr.write(`afb-edge: ${summary}\n`);
  return EXIT_OK;
}

async function encodeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { dbc: { type: 'string', multiple: true } });
  const [message, json, more] = positionals;
  if (message === undefined) throw new UsageError('missing MESSAGE (a message name of the DBC)');
  if (more !== undefined) throw new UsageError(`unexpected argument '${more}'`);
  let signals: unknown = {};
  if (json !== undefined) {
    try {
      signals = JSON.parse(json);
    } catch {
      throw new UsageError(`the signal values are not valid JSON: ${json} (e.g. '{"Gear":"Neutral","OilTemp":20}')`);
    }
    if (typeof signals !== 'object' || signals === null || Array.isArray(signals)) throw new UsageError('the signal values must be a JSON object {"signal": number or label}');
  }
  const map = loadDbcs((values.dbc as string[] | undefined) ?? [], false);
  if (map === null) return EXIT_REPLY_ERROR;
  try {
    const frame = map.encode(message, signals as Record<string, unknown>);
    process.stdout.write(frame.data.toString('hex') + '\n');
    return EXIT_OK;
  } catch (err) {
    const why = err instanceof DbcEncodeError ? err.message : (err as Error).message;
    process.stderr.write(`afb-edge: ${why}\n`);
    return EXIT_REPLY_ERROR;
  }
}
