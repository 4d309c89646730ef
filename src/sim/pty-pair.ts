/**
 * A pair of connected pseudo-terminals from socat, as two symlinks: a serial
 * line on a machine without one (demo, benchmarks, tests). Closing the pair
 * kills socat, which removes both links and makes reads on an open end fail:
 * what an unplugged USB adapter looks like.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface PtyPair {
  /** One end (the agent's device path, by convention). */
  device: string;
  /** The other end (the ECU side). */
  peer: string;
  process: ChildProcess;
  /** Kills socat and waits until both links are gone. */
  close(): Promise<void>;
}

export function hasSocat(): boolean {
  return spawnSync('sh', ['-c', 'command -v socat'], { stdio: 'ignore' }).status === 0;
}

/** Starts socat and resolves once both links exist; rejects when socat is missing or fails. */
export async function startPtyPair(device: string, peer: string, timeoutMs = 5000): Promise<PtyPair> {
  const proc = spawn('socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${peer}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let failure: Error | undefined;
  proc.once('error', (err) => { failure = new Error(`socat: ${err.message} (apt-get install socat)`); });
  const end = Date.now() + timeoutMs;
  while (!(existsSync(device) && existsSync(peer))) {
    if (failure !== undefined) throw failure;
    if (proc.exitCode !== null) throw new Error(`socat exited with status ${proc.exitCode} before creating ${device} and ${peer}`);
    if (Date.now() > end) {
      proc.kill();
      throw new Error(`socat did not create ${device} and ${peer} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return {
    device,
    peer,
    process: proc,
    async close() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
      // socat removes its links on the way out; wait for it so that a new pair may take the names
      for (let i = 0; i < 500 && (existsSync(device) || existsSync(peer)); i++) await new Promise((r) => setTimeout(r, 10));
    },
  };
}
