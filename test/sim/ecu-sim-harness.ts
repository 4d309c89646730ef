/**
 * Harness for the `afb-edge ecu-sim` tests: a socat pty pair per test, the
 * built CLI on one end as a child process, the test on the other end
 * through @serialport/stream + the project's codecs, and everything (sim,
 * socat, port, temp dir) undone by a Cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { SerialPortStream } from '@serialport/stream';
import { cliMain, projectRoot } from '../helpers/cli.js';
import { tempDir, waitFor, withTimeout, type Cleanup } from '../helpers/net-helpers.js';
import { openPeer, ptyPair as ptyPairIn } from '../helpers/pty.js';

/** A fresh pty pair in a temp dir (test/helpers/pty.ts); `device` is the simulator's end, `peer` the test's. */
export async function ptyPair(cleanup: Cleanup): Promise<{ device: string; peer: string; socat: ChildProcess }> {
  const pair = await ptyPairIn(cleanup, tempDir(cleanup, 'ecu-sim'));
  return { device: pair.device, peer: pair.peer, socat: pair.process };
}

/**
 * Opens the test's end. Open it before starting the simulator: opening a
 * pty flushes what it holds, so earlier bytes would be lost.
 */
export const openPort = openPeer;

export interface Arrival<T> {
  value: T;
  /** performance.now() when the chunk carrying it arrived. */
  at: number;
}

/** Everything a decoder made of what a port received, in order, with arrival times. */
export class Received<T> {
  readonly items: Array<Arrival<T>> = [];
  private readonly watchers = new Set<() => void>();

  constructor(port: SerialPortStream, decode: (chunk: Buffer) => T[]) {
    port.on('data', (chunk: Buffer) => {
      const at = performance.now();
      for (const value of decode(chunk)) this.items.push({ value, at });
      for (const w of [...this.watchers]) w();
    });
  }

  get values(): T[] {
    return this.items.map((i) => i.value);
  }

  /** Waits until `cond` holds, re-checked on every chunk. */
  until(cond: () => boolean, ms: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    let check = (): void => {};
    const met = new Promise<void>((resolve) => {
      check = () => { if (cond()) resolve(); };
      this.watchers.add(check);
    });
    return withTimeout(met, ms, `${what} (${this.items.length} items so far)`).finally(() => this.watchers.delete(check));
  }
}

export interface SimProcess {
  child: ChildProcess;
  /** stdout lines parsed as JSON. */
  readonly stdout: unknown[];
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `afb-edge ecu-sim ARGS` and waits for its ready line; stopped (SIGTERM, then SIGKILL) by `cleanup`.
 * `launcher`: through bin/afb-edge, as users run it (the bundle the launcher picks is exercised too),
 * instead of node on the built modules. DEBUG_SIM=1 prints its stderr at cleanup.
 */
export async function startSim(cleanup: Cleanup, args: string[], options: { launcher?: boolean } = {}): Promise<SimProcess> {
  const child = options.launcher
    ? spawn(join(projectRoot, 'bin/afb-edge'), ['ecu-sim', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, [cliMain, 'ecu-sim', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: unknown[] = [];
  let err = '';
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l !== '') stdout.push(JSON.parse(l));
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  cleanup.add(async () => {
    if (process.env.DEBUG_SIM) console.log(err);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  });
  const sim: SimProcess = { child, stdout, stderr: () => err, exited };
  await withTimeout(Promise.race([
    waitFor(() => err.includes('afb-edge: ecu-sim '), 10_000, 'the ready line', 10),
    exited.then(({ code }) => { throw new Error(`ecu-sim exited (${code}) before it was ready: ${err}`); }),
  ]), 10_000, `ecu-sim ${args.join(' ')} to be ready; stderr: ${err}`);
  return sim;
}

/** Runs `afb-edge ARGS` to completion (for usage errors). */
export function runCli(args: string[], ms = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return withTimeout(new Promise((resolve) => {
    const child = spawn(process.execPath, [cliMain, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  }), ms, `afb-edge ${args.join(' ')}`);
}

/** SIGTERM, then the stats line the sim logs at exit (info level), parsed. */
export async function stopAndReadStats(sim: SimProcess): Promise<{ code: number | null; stats: { rejected: Record<string, number>; received: number } }> {
  sim.child.kill('SIGTERM');
  const { code } = await withTimeout(sim.exited, 5000, 'ecu-sim to exit after SIGTERM');
  const line = sim.stderr().split('\n').find((l) => l.startsWith('<info> ecu-sim: {'));
  if (line === undefined) throw new Error(`no stats line in the sim's stderr: ${sim.stderr()}`);
  return { code, stats: JSON.parse(line.slice('<info> ecu-sim: '.length)) };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
