/**
 * What the end-to-end benchmarks share: a mosquitto of their own on a free
 * loopback port (stopped and restarted to play broker outages), stopping a
 * child process, and readings of a child process (RSS) and of latency samples.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

export interface Mosquitto { port: number; proc: ChildProcess; stop(): Promise<void>; start(): Promise<void> }

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function startMosquitto(dir: string): Promise<Mosquitto> {
  if (spawnSync('sh', ['-c', 'command -v mosquitto || test -x /usr/sbin/mosquitto']).status !== 0) {
    throw new Error('mosquitto is not installed (apt-get install mosquitto)');
  }
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 0\n`);
  const m: Mosquitto = {
    port,
    proc: undefined as unknown as ChildProcess,
    async start() {
      const bin = spawnSync('sh', ['-c', 'command -v mosquitto || echo /usr/sbin/mosquitto'], { encoding: 'utf8' }).stdout.trim();
      m.proc = spawn(bin, ['-c', conf], { stdio: 'ignore' });
      for (let i = 0; i < 100; i++) {
        const ok = await new Promise<boolean>((r) => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); }); s.on('error', () => r(false)); });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('mosquitto did not start');
    },
    stop: () => stopProcess(m.proc),
  };
  await m.start();
  return m;
}

/**
 * Sends `signal` and waits for the exit, unless the process has exited
 * already (one that could not start): waiting for an 'exit' that has
 * fired hung the bench.
 */
export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const done = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  await done;
}

export function rssMb(pid: number, field = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Bytes a process has caused to be written to storage so far (/proc/PID/io write_bytes: page-cache writeback and fsyncs included). */
export function diskWriteBytes(pid: number): number {
  const m = /^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** CPU time (user + system) a process has used so far, in ms (/proc/PID/stat, clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the fields after the command name, which is in parentheses and may hold spaces
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

export function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

