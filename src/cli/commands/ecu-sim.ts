/**
 * afb-edge ecu-sim --protocol slcan|cobs|ndjson [--adapter lawicel|canable|usbtin] --device PATH … : a simulated
 * ECU on a serial device (src/sim/ecu-sim.ts). Received messages go to
 * stdout as JSON lines {"rx":…}; the ready line, logs and errors to stderr.
 *
 * Exit status: 0 after SIGINT/SIGTERM, 1 when the device cannot be opened
 * or disappears (the sim is a test tool: reopening is the agent's job), 2 on
 * usage errors.
 */
import { realpathSync } from 'node:fs';
import { ECU_PROTOCOLS, EcuSimulator, SIM_ADAPTERS, type EcuProtocol, type EcuSimOptions, type SimAdapter } from '../../sim/ecu-sim.js';
import { SerialOpenError, openSerialPort, type OpenedPort } from '../../sim/ecu/serial-port.js';
import type { Logger } from '../../util/log.js';
import { intArg, loggerArg, parse } from '../args.js';
import { EXIT_OK, UsageError } from '../usage.js';

const EXIT_DEVICE = 1;
const MAX_RATE = 1_000_000;

interface SimArgs {
  device: string;
  baudRate: number;
  sim: EcuSimOptions;
  logger: Logger;
}

export async function ecuSimCommand(argv: string[]): Promise<number> {
  const args = parseEcuSimArgs(argv);
  const { device, baudRate, logger } = args;
  let port: OpenedPort;
  try {
    port = await openSerialPort({ path: device, baudRate });
  } catch (err) {
    if (!(err instanceof SerialOpenError)) throw err;
    process.stderr.write(`afb-edge: ecu-sim: ${err.message}\n`);
    return EXIT_DEVICE;
  }

  process.stdout.on('error', () => {}); // a closed stdout (head, a dead pipe) must not kill the sim
  const sim = new EcuSimulator(port, {
    ...args.sim,
    logger,
    onReceive: (message) => { process.stdout.write(JSON.stringify({ rx: message }) + '\n'); },
  });

  let onClose: (err?: Error | null) => void = () => {};
  /** The port's last error: a close that follows a failed write (EIO) comes without one of its own. */
  let lastError: Error | undefined;
  const ended = new Promise<'signal' | 'disconnected'>((resolve) => {
    process.once('SIGINT', () => resolve('signal'));
    process.once('SIGTERM', () => resolve('signal'));
    // A pty whose socat died, an unplugged adapter: the binding closes the port, with a
    // DisconnectedError when a read saw it first, after an EIO when a write did.
    onClose = (err) => {
      const why = err ?? lastError;
      process.stderr.write(`afb-edge: ecu-sim: device ${device} disconnected${why ? `: ${why.message}` : ''}\n`);
      resolve('disconnected');
    };
    port.once('close', onClose);
  });
  // Write errors also end in 'close'; logged here for their context.
  port.on('error', (err: Error) => {
    lastError = err;
    logger.error(`ecu-sim: ${device}: ${err.message}`);
  });

  sim.start();
  process.stderr.write(`afb-edge: ecu-sim ${describe(args)}\n`);

  const why = await ended;
  sim.stop();
  logger.info(`ecu-sim: ${JSON.stringify(sim.stats)}`);
  if (why === 'disconnected') return EXIT_DEVICE;
  port.off('close', onClose); // closed on purpose from here on
  await closePort(port, logger);
  return EXIT_OK;
}

function describe(args: SimArgs): string {
  const s = args.sim;
  let resolved = args.device;
  try {
    resolved = realpathSync(args.device);
  } catch { /* shown as given */ }
  const where = resolved === args.device ? args.device : `${args.device} (${resolved})`;
  const framing = s.protocol === 'cobs' ? `, ${s.crc ?? 'crc16'}, payload ${s.payload ?? 'json'}`
    : s.protocol === 'slcan' ? `, adapter ${s.adapter ?? 'lawicel'}` : '';
  const count = s.count ? `${s.count} counters` : 'no end';
  const noise = s.noise ? `, noise every ${s.noise} frames` : '';
  return `${s.protocol} on ${where}: ${args.baudRate} baud${framing}, ${s.rate} frames/s, ${count}${noise}` +
    (s.protocol === 'slcan' ? ' (frames once the host sends O or L)' : '');
}

function closePort(port: OpenedPort, logger: Logger): Promise<void> {
  if (!port.isOpen) return Promise.resolve();
  return new Promise((resolve) => {
    // Bounded: a port whose writes hang (nobody reading a pty) must not keep the process alive.
    const timer = setTimeout(resolve, 2000);
    port.close((err) => {
      clearTimeout(timer);
      if (err) logger.warn(`ecu-sim: closing ${port.path}: ${err.message}`);
      resolve();
    });
  });
}

export function parseEcuSimArgs(argv: string[]): SimArgs {
  const { values, positionals } = parse(argv, {
    protocol: { type: 'string' },
    adapter: { type: 'string' },
    device: { type: 'string' },
    baud: { type: 'string' },
    rate: { type: 'string' },
    count: { type: 'string' },
    crc: { type: 'string' },
    payload: { type: 'string' },
    noise: { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const protocol = values.protocol as string | undefined;
  if (protocol === undefined) throw new UsageError(`ecu-sim needs --protocol ${ECU_PROTOCOLS.join('|')}`);
  if (!(ECU_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new UsageError(`--protocol must be ${ECU_PROTOCOLS.join(', ')}, not '${protocol}'`);
  }
  const device = values.device as string | undefined;
  if (device === undefined || device === '') throw new UsageError('ecu-sim needs --device PATH (e.g. a pty made by socat)');

  const adapter = values.adapter as string | undefined;
  if (adapter !== undefined) {
    if (protocol !== 'slcan') throw new UsageError(`--adapter applies to --protocol slcan only, not ${protocol}`);
    if (!(SIM_ADAPTERS as readonly string[]).includes(adapter)) throw new UsageError(`--adapter must be ${SIM_ADAPTERS.join(', ')}, not '${adapter}'`);
  }
  const crc = values.crc as string | undefined;
  const payload = values.payload as string | undefined;
  if (crc !== undefined && crc !== 'crc16' && crc !== 'crc32') throw new UsageError(`--crc must be crc16 or crc32, not '${crc}'`);
  if (payload !== undefined && payload !== 'json' && payload !== 'raw') throw new UsageError(`--payload must be json or raw, not '${payload}'`);
  if (protocol !== 'cobs') {
    if (crc !== undefined) throw new UsageError(`--crc applies to --protocol cobs only, not ${protocol}`);
    if (payload === 'raw' || (payload !== undefined && protocol === 'slcan')) {
      throw new UsageError(`--payload ${payload} does not apply to --protocol ${protocol}` + (protocol === 'ndjson' ? ' (ndjson carries JSON only)' : ''));
    }
  }

  return {
    device,
    baudRate: intArg(values.baud as string | undefined, '--baud', 1) ?? 115_200,
    logger: loggerArg(values['log-level'] ?? 'info'),
    sim: {
      protocol: protocol as EcuProtocol,
      ...(adapter !== undefined ? { adapter: adapter as SimAdapter } : {}),
      rate: rateArg(values.rate as string | undefined),
      count: intArg(values.count as string | undefined, '--count', 0) ?? 0,
      crc: crc as 'crc16' | 'crc32' | undefined,
      payload: payload as 'json' | 'raw' | undefined,
      noise: intArg(values.noise as string | undefined, '--noise', 0) ?? 0,
    },
  };
}

function rateArg(text: string | undefined): number {
  if (text === undefined) return 10;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > MAX_RATE) {
    throw new UsageError(`--rate must be a number of frames per second in 0..${MAX_RATE} (0 = none), not '${text}'`);
  }
  return n;
}
