/**
 * Pseudo-terminal pairs from socat, for serial tests on real ttys: two
 * symlinks in a directory, one per end. Killing the pair removes both
 * links and makes reads on a still-open end fail — what a USB adapter
 * being unplugged looks like to the agent; starting a new pair on the same
 * names is the replug.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { LinuxBinding } from '@serialport/bindings-cpp';
import { SerialPortStream } from '@serialport/stream';
import { startSocat, waitFor, type Cleanup } from './net-helpers.js';

export interface PtyPair {
  /** The agent's end (the device path in its config). */
  device: string;
  /** The test's end (the ECU side). */
  peer: string;
  proc: ChildProcess;
  /** Unplugs: kills socat, both links disappear. */
  unplug(): Promise<void>;
}

export async function ptyPair(cleanup: Cleanup, dir: string, name = 'ecu'): Promise<PtyPair> {
  const device = path.join(dir, `${name}-dev`);
  const peer = path.join(dir, `${name}-peer`);
  const proc = startSocat(cleanup, [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${peer}`]);
  await waitFor(() => fs.existsSync(device) && fs.existsSync(peer), 5000, `socat ptys ${device} and ${peer}`);
  return {
    device,
    peer,
    proc,
    async unplug() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await gone;
      await waitFor(() => !fs.existsSync(device), 5000, `${device} removed`);
    },
  };
}

/** Opens a pty end as a serial port (the test's ECU side), closed by `cleanup`. */
export async function openPeer(cleanup: Cleanup, ptyPath: string): Promise<SerialPortStream> {
  const port = new SerialPortStream({ binding: LinuxBinding, path: ptyPath, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.on('error', () => undefined); // the pty vanishes in unplug tests
  cleanup.add(() => new Promise<void>((resolve) => { if (port.isOpen) port.close(() => resolve()); else resolve(); }));
  return port;
}

/** Everything a port received, as one growing buffer. */
export function recorder(port: SerialPortStream): { bytes(): Buffer; text(): string; clear(): void } {
  let chunks: Buffer[] = [];
  port.on('data', (d: Buffer) => chunks.push(d));
  return {
    bytes: () => (chunks = [Buffer.concat(chunks)])[0]!,
    text: () => Buffer.concat(chunks).toString('latin1'),
    clear: () => { chunks = []; },
  };
}
