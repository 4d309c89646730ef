/**
 * Pseudo-terminal pairs from socat, for serial tests on real ttys: two
 * symlinks in a directory, one per end. Killing the pair removes both
 * links and makes reads on a still-open end fail — what a USB adapter
 * being unplugged looks like to the agent; starting a new pair on the same
 * names is the replug.
 */
import path from 'node:path';
import { LinuxBinding } from '@serialport/bindings-cpp';
import { SerialPortStream } from '@serialport/stream';
import { startPtyPair, type PtyPair } from '../../src/sim/pty-pair.js';
import type { Cleanup } from './net-helpers.js';

export interface TestPtyPair extends PtyPair {
  /** Unplugs: kills socat, both links disappear. */
  unplug(): Promise<void>;
}

/** A pty pair named `{name}-dev` (the agent's end) and `{name}-peer` in `dir`, closed by `cleanup`. */
export async function ptyPair(cleanup: Cleanup, dir: string, name = 'ecu'): Promise<TestPtyPair> {
  const pair = await startPtyPair(path.join(dir, `${name}-dev`), path.join(dir, `${name}-peer`));
  cleanup.add(() => pair.close());
  return { ...pair, unplug: () => pair.close() };
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
