/**
 * Instructions per wsapi call, counted by valgrind (cachegrind, user space
 * only): our client against the raw Node.js floor of bench/wsapi.ts, on the
 * same server. On a shared machine the calls/s of bench/wsapi.ts move by
 * ±20 % from one round to the next; these counts move by 1-3 %, so they
 * tell whether a change to the engine made a call cheaper.
 *
 *   npm run bench:wsapi-instructions -- --spec SPEC [--verb ping --args true --calls 10000 --inflight 1]
 *
 * Each side runs under valgrind twice, with 2 and with 4 rounds of N calls
 * (bench/wsapi.js --count-only): the difference, divided by 2N, is what one
 * steady call costs, start-up and the compiler's warm-up cancelled out. The
 * kernel's share (the socket writes and reads, the same on both sides) is
 * not counted. Needs valgrind (Debian: apt-get install valgrind); each run
 * takes ~50x its normal time.
 */
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    spec: { type: 'string' },
    verb: { type: 'string', default: 'ping' },
    args: { type: 'string', default: 'true' },
    calls: { type: 'string', default: '10000' },
    inflight: { type: 'string', default: '1' },
  },
});
if (values.spec === undefined) throw new Error('--spec SPEC is required (the server to call, e.g. a native binder)');
if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind not found (Debian: apt-get install valgrind)');

const script = join(dirname(fileURLToPath(import.meta.url)), 'wsapi.js');
const calls = Number(values.calls);

/** Instructions valgrind counted for one run of `rounds` x `calls` calls by `who`. */
function countRun(who: 'client' | 'floor', rounds: number): Promise<number> {
  const args = ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null',
    process.execPath, '--max-semi-space-size=2', script, '--spec', values.spec!, '--verb', values.verb!, '--args', values.args!,
    '--calls', String(calls), '--inflight', values.inflight!, '--count-only', who, '--rounds', String(rounds)];
  return new Promise((resolve, reject) => {
    const child = spawn('valgrind', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => {
      const m = /I\s+refs:\s+([\d,]+)/.exec(err);
      if (code !== 0 || m === null) reject(new Error(`valgrind ${who} ${rounds} rounds exited ${code}: ${err.slice(-500)}`));
      else resolve(Number(m[1]!.replace(/,/g, '')));
    });
  });
}

const perCall: Record<string, number> = {};
for (const who of ['client', 'floor'] as const) {
  const two = await countRun(who, 2);
  const four = await countRun(who, 4);
  perCall[who] = (four - two) / (2 * calls);
  console.log(`${who}: ${two} instructions for 2 x ${calls} calls, ${four} for 4 x ${calls}: ${Math.round(perCall[who]!)} per call`);
}
console.log(`${values.verb} ${values.args}, ${values.inflight} in flight, against ${values.spec}, node ${process.version}: `
  + `client ${Math.round(perCall.client!)} instructions per call, floor ${Math.round(perCall.floor!)}, ratio ${(perCall.client! / perCall.floor!).toFixed(2)}`);
