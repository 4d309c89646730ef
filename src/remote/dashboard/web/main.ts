/**
 * The dashboard page: a header (broker and monitor connection), the fleet
 * view (#/) or a device view (#/device/ID, with chart series as
 * ?s=NAME|FIELD&s=…), fed by one WebSocket to the monitor.
 */
import 'uplot/dist/uPlot.min.css';
import './app.css';
import type { ServerMessage } from '../protocol.js';
import { Connection } from './connection.js';
import { DeviceView } from './device-view.js';
import { clear, h, setText } from './dom.js';
import { FleetView } from './fleet-view.js';
import { installProbe } from './probe.js';

const brokerBadge = h('span', { class: 'badge', title: "the monitor's broker connection" }, 'broker …');
const linkBadge = h('span', { class: 'badge', title: 'this page’s connection to the monitor' }, 'monitor …');
const notice = h('div', { class: 'notice', role: 'status' });
const main = h('main');
let hello: Extract<ServerMessage, { t: 'hello' }> | undefined;
const fleet = new FleetView();
const connection = new Connection(onMessage, (state, detail) => {
  setText(linkBadge, state === 'open' ? 'monitor connected' : state === 'connecting' ? 'connecting…' : `monitor ${detail}`);
  linkBadge.className = `badge ${state === 'open' ? 'ok' : 'bad'}`;
});
let device: DeviceView | undefined;

function onMessage(msg: ServerMessage): void {
  switch (msg.t) {
    case 'hello':
      hello = msg;
      setBroker(msg.broker, msg.broker ? 'broker connected' : 'broker not connected');
      if (device === undefined) device = new DeviceView((m) => connection.send(m), msg.maxEvents);
      route();
      break;
    case 'broker':
      setBroker(msg.up, msg.text);
      break;
    case 'fleet':
      fleet.update(msg.rows, msg.full, msg.removed);
      break;
    case 'activity':
      fleet.activity(msg.rows);
      break;
    case 'device':
      if (device?.device === msg.device) device.setRow(msg.row);
      break;
    case 'events':
      if (device?.device === msg.device) device.add(msg.events, msg.dropped);
      break;
    case 'reply':
      device?.console.reply(msg);
      break;
    case 'notice':
      setText(notice, msg.text);
      notice.className = `notice ${msg.level}`;
      break;
  }
}

function setBroker(up: boolean, text: string): void {
  setText(brokerBadge, up ? 'broker connected' : 'broker down');
  brokerBadge.title = text;
  brokerBadge.className = `badge ${up ? 'ok' : 'bad'}`;
}

/** Shows what the address names: #/ (fleet) or #/device/ID?s=NAME|FIELD. */
function route(): void {
  if (hello === undefined || device === undefined) return;
  const m = /^#\/device\/([^?]+)(?:\?(.*))?$/.exec(location.hash);
  clear(main);
  if (m === null) {
    document.title = 'afb-edge fleet';
    main.append(fleet.root);
    connection.show({ t: 'view', view: 'fleet' });
    return;
  }
  let id: string;
  try {
    id = decodeURIComponent(m[1]!);
  } catch {
    id = m[1]!;
  }
  document.title = `${id} — afb-edge`;
  device.open(id, hello.commands);
  for (const s of new URLSearchParams(m[2] ?? '').getAll('s')) {
    const bar = s.lastIndexOf('|');
    if (bar > 0) device.chart.addSeries(s.slice(0, bar), s.slice(bar + 1));
  }
  main.append(device.root);
  connection.show({ t: 'view', view: 'device', device: id });
}

function boot(): void {
  document.body.append(
    h('header', {}, h('a', { href: '#/', class: 'brand' }, 'afb-edge'), h('span', { class: 'subtitle' }, 'fleet dashboard'), h('span', { class: 'spacer' }), brokerBadge, linkBadge),
    notice, main);
  window.addEventListener('hashchange', route);
  setInterval(() => {
    if (fleet.root.isConnected) fleet.tick();
    if (device?.root.isConnected) device.tick();
  }, 1000);
  installProbe({
    chart: () => device?.chart.describe() ?? null,
    counts: () => ({ eventRows: document.querySelectorAll('.event-table tbody tr').length, fleetRows: document.querySelectorAll('.fleet-table tbody tr[data-device]').length, devices: fleet.size }),
  });
  connection.start();
}

boot();
