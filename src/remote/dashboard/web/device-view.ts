/**
 * One device, live: its state and why, since when, uptime, binder and link
 * states, a chart of chosen numeric fields, its messages, and the command
 * console.
 */
import type { DeviceRow, EventItem } from '../protocol.js';
import { ChartPanel } from './chart-panel.js';
import { ConsolePanel } from './console-panel.js';
import { clear, h, setText } from './dom.js';
import { age, bytes, count, dateTime, duration, recoveryText } from './format.js';
import { EventList } from './event-list.js';
import { clockOffset } from './probe.js';
import type { ClientMessage } from '../protocol.js';

export class DeviceView {
  readonly root: HTMLElement;
  readonly chart = new ChartPanel();
  readonly events: EventList;
  readonly console: ConsolePanel;
  device = '';
  private row: DeviceRow | null = null;
  private readonly title = h('h1', { class: 'device-name' });
  private readonly state = h('span', { class: 'state' });
  private readonly facts = h('dl', { class: 'facts' });
  private readonly links = h('div', { class: 'link-chips' });

  constructor(send: (msg: ClientMessage) => boolean, maxEvents: number) {
    this.events = new EventList(maxEvents);
    this.console = new ConsolePanel(send);
    this.root = h('section', { class: 'device' },
      h('div', { class: 'device-head' }, h('a', { href: '#/', class: 'back' }, '← fleet'), this.title, this.state),
      this.facts, this.links,
      this.chart.root,
      this.events.root, this.console.root);
  }

  open(device: string, commands: boolean): void {
    this.device = device;
    this.row = null;
    setText(this.title, device);
    this.events.reset();
    this.chart.reset();
    this.console.configure(commands, device);
    this.render();
  }

  setRow(row: DeviceRow | null): void {
    this.row = row;
    this.console.knownBinders(row ? Object.keys(row.binders) : []);
    this.render();
  }

  add(events: EventItem[], dropped: number): void {
    this.events.add(events, dropped);
    this.chart.add(events);
  }

  /** Once a second (ages). */
  tick(): void {
    this.render();
  }

  private render(): void {
    const r = this.row;
    const now = Date.now() + clockOffset;
    if (r === null) {
      setText(this.state, 'not seen yet');
      this.state.className = 'state unknown';
      clear(this.facts);
      clear(this.links);
      return;
    }
    const label = r.state === 'online' && r.silent ? 'silent' : r.state;
    setText(this.state, label);
    this.state.className = `state ${label}`;
    const facts: Array<[string, string, string?]> = [
      ['reason', r.reason ?? '–'],
      ['since', r.since !== undefined ? `${age(now - r.since)} (${dateTime(r.since)})` : '–', r.sinceFrom === 'agent' ? "the agent's time" : 'seen by the monitor'],
      ['last message', age(now - r.lastSeen)],
      ['uptime', r.uptimeS !== undefined ? duration(r.uptimeS + (r.state === 'online' && r.uptimeAt !== undefined ? Math.max(0, now - r.uptimeAt) / 1000 : 0)) : '–'],
      ['mqtt', r.mqtt ?? '–'],
      ['outbox', r.outbox.messages !== undefined ? `${count(r.outbox.messages)} msgs, ${bytes(r.outbox.bytes)}${r.outbox.oldestAgeS ? `, oldest ${age(r.outbox.oldestAgeS * 1000)}` : ''}` : '–'],
      ...(r.outbox.recovery !== undefined ? [['outbox recovery', recoveryText(r.outbox.recovery)] as [string, string]] : []),
      ['dropped', `${r.dropped.total}${Object.keys(r.dropped.byReason).length ? ` (${Object.entries(r.dropped.byReason).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`],
      ['rss', bytes(r.rssBytes)],
      ['events', `${r.events} seen, ${r.rate.toFixed(1)}/s`],
      ['version', r.version ?? '–'],
    ];
    const sig = JSON.stringify(facts);
    if (this.facts.dataset.sig !== sig) {
      this.facts.dataset.sig = sig;
      clear(this.facts);
      for (const [k, v, t] of facts) this.facts.append(h('div', { class: 'fact', title: t }, h('dt', {}, k), h('dd', {}, v)));
    }
    const chips: Array<[string, string, string]> = [
      ...Object.entries(r.binders).map(([n, s]): [string, string, string] => [`binder ${n}`, s, '']),
      ...Object.entries(r.links).map(([n, l]): [string, string, string] => [`link ${n}`, l.state, l.reason ?? '']),
    ];
    const csig = JSON.stringify(chips);
    if (this.links.dataset.sig !== csig) {
      this.links.dataset.sig = csig;
      clear(this.links);
      for (const [name, state, reason] of chips) {
        const ok = state === 'connected' || state === 'open';
        this.links.append(h('span', { class: `chip ${ok ? 'ok' : 'bad'}`, title: reason }, `${name}: ${state}${reason ? ` (${reason})` : ''}`));
      }
    }
  }
}
