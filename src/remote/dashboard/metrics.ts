/**
 * The monitor's own counters, served on the dashboard's GET /metrics
 * (Prometheus text; behind the token when there is one). Every bound of the
 * dashboard has a counter here that shows when it fired.
 */
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import Registry from 'prom-client/lib/registry.js';

export class DashboardMetrics {
  readonly registry = new Registry();
  readonly messages = new Counter({ name: 'afb_edge_monitor_messages_total', help: 'MQTT messages received, per kind (status, link, health, event, call, reply, other)', labelNames: ['kind'], registers: [this.registry] });
  readonly malformed = new Counter({ name: 'afb_edge_monitor_malformed_total', help: 'Messages whose payload is not what their topic promises, per kind (shown as far as possible)', labelNames: ['kind'], registers: [this.registry] });
  readonly dropped = new Counter({ name: 'afb_edge_monitor_dropped_total', help: 'Updates not delivered, per reason (max-devices, slow-browser, browser-queue, payload-truncated)', labelNames: ['reason'], registers: [this.registry] });
  readonly refused = new Counter({ name: 'afb_edge_monitor_refused_total', help: 'HTTP requests and WebSocket upgrades refused, per reason (token, host, origin, path, max-clients, message)', labelNames: ['reason'], registers: [this.registry] });
  readonly commands = new Counter({ name: 'afb_edge_monitor_commands_total', help: 'Remote commands sent from the console, per outcome (ok, error, timeout, refused)', labelNames: ['outcome'], registers: [this.registry] });
  readonly clients = new Gauge({ name: 'afb_edge_monitor_clients', help: 'Browsers connected', registers: [this.registry] });
  readonly devices = new Gauge({ name: 'afb_edge_monitor_devices', help: 'Devices known to the monitor', registers: [this.registry] });
  readonly historyBytes = new Gauge({ name: 'afb_edge_monitor_history_bytes', help: 'Bytes of per-device message history kept for device views', registers: [this.registry] });
}
