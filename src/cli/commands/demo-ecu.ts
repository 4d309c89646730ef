/**
 * The demo's serial ECU: the simulated slcan adapter (EcuSimulator) on the
 * far end of a socat pty pair when socat is installed — the agent then opens
 * a real tty, as on a board — else on a pretend line of
 * @serialport/binding-mock, said on the console.
 */
import { join } from 'node:path';
import type { BindingInterface } from '@serialport/bindings-cpp';
import type { Duplex } from 'node:stream';
import { EcuSimulator } from '../../sim/ecu-sim.js';
import { openSerialPort } from '../../sim/ecu/serial-port.js';
import { mockSerialPair } from '../../sim/mock-serial-pair.js';
import { hasSocat, startPtyPair, type PtyPair } from '../../sim/pty-pair.js';
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

export async function startDemoEcu(dir: string, logger: Logger, rate = 4): Promise<DemoEcu> {
  let pair: PtyPair | undefined;
  let port: Duplex & { close?: (cb: () => void) => void };
  let device: string;
  let binding: BindingInterface | undefined;
  let how: string;
  if (hasSocat()) {
    pair = await startPtyPair(join(dir, 'can0'), join(dir, 'ecu'));
    device = pair.device;
    port = await openSerialPort({ path: pair.peer, baudRate: 115200 });
    how = `a pty pair from socat (${device})`;
  } else {
    const mock = mockSerialPair('/dev/afb-edge-demo-can0');
    device = mock.path;
    binding = mock.binding;
    port = mock.ecuSide;
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
      await pair?.close();
    },
  };
}
