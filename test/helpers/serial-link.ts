/** A SerialLink under test on a real device (a socat pty), with what it emits recorded. */
import { LinuxBinding } from '@serialport/bindings-cpp';
import { AgentMetrics } from '../../src/health/metrics.js';
import { SerialLink } from '../../src/serial/link/serial-link.js';
import { captureLogger } from './mqtt-helpers.js';
import type { Cleanup } from './net-helpers.js';
import { linkConfig } from './serial-config.js';

/** Starts the link (serialport's Linux binding); its events and states are kept in order; stopped at cleanup. */
export function startSerialLink(cleanup: Cleanup, over: Parameters<typeof linkConfig>[0]) {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const logger = captureLogger();
  const link = new SerialLink(linkConfig(over), { logger, metrics, binding: LinuxBinding });
  const events: Array<[string, Record<string, unknown>]> = [];
  link.on('event', (name: string, data: Record<string, unknown>) => events.push([name, data]));
  const states: string[] = [];
  link.on('state', (s: string) => states.push(s));
  cleanup.add(() => link.stop());
  link.start();
  return { link, events, states, metrics, logger };
}
