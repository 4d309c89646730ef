/**
 * The demo's serial ECU: the simulated slcan adapter (EcuSimulator) on the
 * far end of a socat pty pair when socat is installed — the agent then opens
 * a real tty, as on a board — else on a pretend line of
 * @serialport/binding-mock, said on the console.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BindingInterface } from '@serialport/bindings-cpp';
import type { Duplex } from 'node:stream';
import { EcuSimulator } from '../../sim/ecu-sim.js';
import { openSerialPort } from '../../sim/ecu/serial-port.js';
import { mockSerialPair } from '../../sim/mock-serial-pair.js';
import type { Logger } from '../../util/log.js';

export interface DemoEcu {
  /** Device path the agent's link opens. */
  device: string;
  /** Binding for the agent (the mock one without socat; undefined: the system's). */
  binding: BindingInterface | undefined;
  /** How the line is made, for the console. */
  how: string;
  close(): Promise<void>;
}

const hasSocat = (): boolean => spawnSync('sh', ['-c', 'command -v socat'], { stdio: 'ignore' }).status === 0;

export async function startDemoEcu(dir: string, logger: Logger, rate = 4): Promise<DemoEcu> {
  let socat: ChildProcess | undefined;
  let port: Duplex & { close?: (cb: () => void) => void };
  let device: string;
  let binding: BindingInterface | undefined;
  let how: string;
  if (hasSocat()) {
    device = join(dir, 'can0');
    const ecuEnd = join(dir, 'ecu');
    socat = spawn('socat', [`pty,raw,echo=0,link=${device}`, `pty,raw,echo=0,link=${ecuEnd}`], { stdio: 'ignore' });
    for (let i = 0; !(existsSync(device) && existsSync(ecuEnd)); i++) {
      if (i > 200) throw new Error('socat did not create the demo ptys');
      await new Promise((r) => setTimeout(r, 10));
    }
    port = await openSerialPort({ path: ecuEnd, baudRate: 115200 });
    how = `a pty pair from socat (${device})`;
  } else {
    const pair = mockSerialPair('/dev/afb-edge-demo-can0');
    device = pair.path;
    binding = pair.binding;
    port = pair.ecuSide;
    how = 'a pretend line of @serialport/binding-mock (install socat for a real pty)';
  }
  port.on('error', (err: Error) => logger.debug(`demo ecu: ${err.message}`));
  const sim = new EcuSimulator(port, { protocol: 'slcan', rate, logger });
  sim.start();
  return {
    device,
    binding,
    how,
    async close() {
      sim.stop();
      if (port.close !== undefined) await new Promise<void>((r) => port.close!(() => r()));
      else port.destroy();
      socat?.kill();
    },
  };
}
