/**
 * Opens a serial device for the simulator with @serialport/stream on the
 * platform binding of @serialport/bindings-cpp (LinuxBinding on Linux): a
 * real UART, a USB adapter, or a pty (socat pty,raw,echo=0,link=…).
 *
 * Notes on ptys, measured with bindings-cpp 13 on Linux: any baud rate is
 * accepted (115200, 1000000 and custom ones like 12345 alike; the rate has
 * no effect on a pty's throughput); opening flushes whatever the pty held
 * (tcflush in the binding), so bytes written before this end is open are
 * lost; and the binding takes an exclusive flock, so a second opener of the
 * same device fails with "Cannot lock port".
 */
import { SerialPortStream } from '@serialport/stream';
import { systemBinding } from '../../serial/link/binding.js';

export interface SerialOpenOptions {
  path: string;
  baudRate: number;
}

export type OpenedPort = SerialPortStream;

export class SerialOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SerialOpenError';
  }
}

/** Opens `path` 8N1 without flow control; rejects with a SerialOpenError saying what failed and where. */
export async function openSerialPort(options: SerialOpenOptions): Promise<OpenedPort> {
  const { path, baudRate } = options;
  // The native addon is loaded on use (few commands need it), as the agent's links load it.
  const binding = await systemBinding();
  return new Promise((resolve, reject) => {
    const port = new SerialPortStream({
      binding, path, baudRate, autoOpen: false,
      dataBits: 8, parity: 'none', stopBits: 1, rtscts: false,
    });
    port.open((err) => {
      if (!err) return resolve(port);
      reject(new SerialOpenError(describeOpenError(path, baudRate, err.message)));
    });
  });
}

function describeOpenError(path: string, baudRate: number, message: string): string {
  // The binding reports ENOTTY from its termios calls as a baud rate failure: say what it means.
  if (/Inappropriate ioctl/i.test(message)) {
    return `cannot open ${path}: not a serial device (a tty was expected): ${message}`;
  }
  if (/baud/i.test(message)) {
    return `cannot set ${baudRate} baud on ${path}: ${message} (ptys take any rate; a UART may support standard rates only)`;
  }
  if (/lock/i.test(message)) {
    return `cannot open ${path}: ${message} (another process has it open)`;
  }
  return `cannot open ${path} at ${baudRate} baud: ${message}`;
}
