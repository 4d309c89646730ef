/**
 * The full demo (npm start): a simulated binder, a simulated CAN adapter on a
 * serial line (demo-ecu.ts), an embedded MQTT broker (aedes) on a free local
 * port, the agent with a demo configuration, the monitor view of what
 * reaches the broker — events, CAN signals, status, remote commands — and
 * the web dashboard on it (its URL printed), commands allowed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { Agent } from '../../agent/agent.js';
import { formatConfigError } from '../../config/errors.js';
import { configLoader } from '../../config/loader-module.js';
import { ECU_SIM_SIGNAL_MAP } from '../../sim/ecu-sim.js';
import { SimulatedBinder } from '../../sim/simulated-binder.js';
import type { Logger } from '../../util/log.js';
import { startDemoEcu, type DemoEcu } from './demo-ecu.js';
import { LiveTable } from './monitor-table.js';
import { version } from '../version.js';
import type { WebListen } from '../../remote/dashboard/listen.js';

interface Broker { port: number; close(): Promise<void> }

/** aedes is a dev dependency: the demo is for trying the agent, not for boards. */
async function startEmbeddedBroker(): Promise<Broker> {
  let Aedes: { createBroker(): Promise<{ handle: (s: net.Socket) => void; close(cb: () => void): void }> };
  try {
    ({ Aedes } = (await import('aedes')) as unknown as { Aedes: typeof Aedes });
  } catch {
    throw new Error('the demo needs the aedes package (a dev dependency): run npm ci in the project');
  }
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () => new Promise<void>((r) => { server.close(); broker.close(() => r()); }),
  };
}

function demoConfig(dir: string, port: number, canDevice: string): string {
  return `
device: { id: demo-car, labels: { fleet: demo } }
binders:
  - name: vehicle
    spec: unix:${join(dir, 'vehicle')}
    subscribe:
      - { verb: subscribe, args: { event: speed } }
      - { verb: subscribe, args: { event: engine_rpm } }
      - { verb: subscribe, args: { event: alert } }
mqtt:
  url: mqtt://127.0.0.1:${port}
  protocol_version: 4   # aedes speaks MQTT 3.1.1
  status_interval_s: 5
routes:
  - name: speed
    match: ["vehicle/speed"]
    qos: 1
    filters: { deadband: { field: value, absolute: 1.0 } }
  - name: rpm
    match: ["vehicle/engine_rpm"]
    qos: 0
    payload: raw
    filters: { rate_limit: { per_second: 1, burst: 1 } }
  - name: alerts
    match: ["vehicle/alert"]
    qos: 2
  - name: can
    match: ["can0/VehicleSpeed", "can0/EEC1"]
    topic: "{prefix}/{device}/can/{event}"
    qos: 0
    payload: raw
    filters: { rate_limit: { per_second: 0.5, burst: 1 } }
serial:
  links:
    - name: can0
      device: ${canDevice}
      protocol: slcan
      slcan: { bitrate: 500000 }
      messages: ${JSON.stringify(ECU_SIM_SIGNAL_MAP.messages)}
      reopen: { initial_delay_ms: 200, max_delay_ms: 2000 }
commands:
  enabled: true
  allow: [ { binder: vehicle, verbs: [ping, info, push] }, { binder: can0, verbs: [request, info] } ]
outbox: { path: ${join(dir, 'outbox.db')} }
`;
}

/** The dashboard on the demo's broker; undefined (said on the console) when it cannot start. */
async function startDemoDashboard(port: number, listen: WebListen, logger: Logger, say: (s: string) => void): Promise<{ close(): Promise<void> } | undefined> {
  const { startDashboard } = await import('../../remote/dashboard/server.js');
  try {
    const d = await startDashboard({
      listen, broker: `mqtt://127.0.0.1:${port}`, mqtt: { clientId: 'afb-edge-demo-dashboard', protocolVersion: 4, reconnectPeriod: 500 },
      prefix: 'afb-edge', devices: [], allowCommands: true, version: version(), logger,
    });
    say(`dashboard on ${d.url} (open it in a browser; --duration 0 keeps the demo running)`);
    return d;
  } catch (err) {
    say(`no dashboard: ${(err as Error).message}`);
    return undefined;
  }
}

export async function runAgentDemo(options: { durationS: number; logger: Logger; json: boolean; web: WebListen }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-demo-'));
  const say = (s: string) => process.stderr.write(`demo: ${s}\n`);
  const binder = new SimulatedBinder({ api: 'vehicle', periodMs: 300, logger: options.logger });
  let broker: Broker | undefined;
  let ecu: DemoEcu | undefined;
  let agent: Agent | undefined;
  let monitor: mqtt.MqttClient | undefined;
  let table: LiveTable | undefined;
  let redraw: NodeJS.Timeout | undefined;
  let dashboard: { close(): Promise<void> } | undefined;
  try {
    await binder.listen(`unix:${join(dir, 'vehicle')}`);
    broker = await startEmbeddedBroker();
    say(`simulated binder 'vehicle' on unix:${join(dir, 'vehicle')}; embedded broker on mqtt://127.0.0.1:${broker.port}`);
    ecu = await startDemoEcu(dir, options.logger);
    say(`simulated CAN adapter (slcan) on ${ecu.how}`);
    const loaded = (await configLoader()).parseConfigText(demoConfig(dir, broker.port, ecu.device), 'demo.yaml');
    if (loaded.config === undefined) throw new Error(loaded.errors.map((e) => formatConfigError(e, 'demo.yaml')).join('\n'));
    agent = new Agent(loaded.config, { logger: options.logger, version: version(), ...(ecu.binding ? { serialBinding: ecu.binding } : {}) });
    await agent.start();
    say('agent started; monitor subscribed to afb-edge/demo-car/# (Ctrl-C to stop)');
    dashboard = await startDemoDashboard(broker.port, options.web, options.logger, say);

    monitor = mqtt.connect(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'afb-edge-demo-monitor' });
    const live = !options.json && process.stdout.isTTY === true;
    table = live ? new LiveTable('afb-edge', (s) => process.stdout.write(s)) : undefined;
    monitor.on('message', (topic, payload, packet) => {
      let body: unknown = payload.toString();
      try { body = JSON.parse(body as string); } catch { /* text */ }
      const line = { ts: new Date().toISOString(), topic, retained: packet.retain, payload: body };
      if (table) table.add(line);
      else process.stdout.write(JSON.stringify(line) + '\n');
    });
    await monitor.subscribeAsync('afb-edge/demo-car/#', { qos: 1 });
    if (table) redraw = setInterval(() => table!.render(), 500);

    // A remote command, as a fleet operator would send it (MQTT 3.1.1 form).
    setTimeout(() => {
      monitor?.publish('afb-edge/demo-car/call/vehicle/push', JSON.stringify({ id: 'demo-1', args: { event: 'alert', data: { level: 'warning', text: 'tyre pressure low' } } }), { qos: 1 });
      monitor?.publish('afb-edge/demo-car/call/vehicle/fail', JSON.stringify({ id: 'demo-2', args: {} }), { qos: 1 });
      // OBD-II "vehicle speed" asked of the CAN bus: request on 0x7DF, answer on 0x7E8.
      monitor?.publish('afb-edge/demo-car/call/can0/request', JSON.stringify({ id: 'demo-3', args: { id: 0x7df, data: '02010d0000000000', response_id: 0x7e8 } }), { qos: 1 });
    }, 1500);

    await new Promise<void>((resolve) => {
      const t = options.durationS > 0 ? setTimeout(resolve, options.durationS * 1000) : undefined;
      const stop = () => { clearTimeout(t); resolve(); };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    say(`done; agent health ${JSON.stringify(agent.health())}`);
  } finally {
    clearInterval(redraw);
    table?.render();
    await monitor?.endAsync();
    await dashboard?.close();
    await agent?.stop('demo over');
    await ecu?.close();
    await broker?.close();
    await binder.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
