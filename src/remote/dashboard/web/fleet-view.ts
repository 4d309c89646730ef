/**
 * The fleet view: one row per device (state and why, since when, last
 * message, uptime, binders and serial links, outbox depth and oldest age,
 * drops, RSS, event rate), sortable by any column, filterable by name;
 * devices gone silent are flagged. Rows are updated in place: a message
 * changes text nodes, never rebuilds the table; ages tick once a second.
 * Only the rows on screen (and a few around) are in the DOM (render()), so
 * 500 devices cost the page what the 30-odd visible ones do.
 */
import type { ActivityTuple, DeviceRow } from '../protocol.js';
import { append, clear, h, setClass, setText, setTitle } from './dom.js';
import { age, ageCoarse, bytes, count, dateTime, duration, recoveryText } from './format.js';
import { clockOffset, shown } from './probe.js';

interface Column {
  key: string;
  title: string;
  help: string;
  cls?: string;
  sort(r: DeviceRow, now: number): number | string;
  render(td: HTMLTableCellElement, r: DeviceRow, now: number): void;
}

const stateRank = (r: DeviceRow) => (r.state === 'offline' ? 0 : r.silent ? 1 : r.state === 'unknown' ? 2 : 3);
const worst = (states: string[]) => (states.some((s) => s !== 'connected' && s !== 'open') ? 1 : 0);

/** Name: state chips (binders, links); the text of each is from the bus, set as text. */
function chips(td: HTMLElement, entries: Array<[string, string, string | undefined]>): void {
  const sig = JSON.stringify(entries);
  if (td.dataset.sig === sig) return;
  td.dataset.sig = sig;
  clear(td);
  if (entries.length === 0) td.append('–');
  for (const [name, state, reason] of entries) {
    const ok = state === 'connected' || state === 'open';
    td.append(h('span', { class: `chip ${ok ? 'ok' : 'bad'}`, title: `${name}: ${state}${reason ? ` (${reason})` : ''}` }, name));
  }
}

const COLUMNS: Column[] = [
  { key: 'device', title: 'Device', help: 'device id (click for its live view)', sort: (r) => r.device, render: (td, r) => {
    if (td.firstChild === null) td.append(h('a', { href: `#/device/${encodeURIComponent(r.device)}` }, r.device));
  } },
  { key: 'state', title: 'State', help: 'retained status; silent: online but nothing heard for longer than its threshold', sort: stateRank, render: (td, r) => {
    const label = r.state === 'online' && r.silent ? 'silent' : r.state;
    setText(td, label);
    setClass(td, `state ${label}`);
    setTitle(td, r.silent ? `online, but nothing heard for more than ${age(r.silentAfterMs)}` : r.state);
  } },
  { key: 'reason', title: 'Reason', help: 'the reason the status gives', cls: 'reason', sort: (r) => r.reason ?? '', render: (td, r) => setText(td, r.reason ?? '') },
  { key: 'since', title: 'Since', help: 'time in this state', sort: (r) => r.since ?? 0, render: (td, r, now) => {
    setText(td, ageCoarse(r.since === undefined ? undefined : now - r.since));
    setTitle(td, r.since === undefined ? '' : `${dateTime(r.since)} (${r.sinceFrom === 'agent' ? "the agent's time" : 'seen by the monitor'})`);
  } },
  { key: 'last', title: 'Last msg', help: 'age of the last message of any kind', sort: (r) => -r.lastSeen, render: (td, r, now) => setText(td, ageCoarse(now - r.lastSeen)) },
  { key: 'uptime', title: 'Uptime', help: "the agent's uptime (health)", sort: (r, now) => (r.uptimeS === undefined ? -1 : r.uptimeS + (r.state === 'online' && r.uptimeAt ? (now - r.uptimeAt) / 1000 : 0)), render: (td, r, now) => {
    setText(td, r.uptimeS === undefined ? '–' : duration(r.uptimeS + (r.state === 'online' && r.uptimeAt !== undefined ? Math.max(0, now - r.uptimeAt) / 1000 : 0)));
  } },
  { key: 'binders', title: 'Binders', help: 'binder connections (health)', cls: 'chips', sort: (r) => worst(Object.values(r.binders)), render: (td, r) => chips(td, Object.entries(r.binders).map(([n, s]) => [n, s, undefined])) },
  { key: 'links', title: 'Links', help: 'serial links (health, retained link state)', cls: 'chips', sort: (r) => worst(Object.values(r.links).map((l) => l.state)), render: (td, r) => chips(td, Object.entries(r.links).map(([n, l]) => [n, l.state, l.reason])) },
  { key: 'outbox', title: 'Outbox', help: 'messages waiting in the durable outbox', cls: 'num', sort: (r) => r.outbox.messages ?? -1, render: (td, r) => {
    const rec = r.outbox.recovery;
    setText(td, count(r.outbox.messages) + (rec !== undefined ? ' !' : ''));
    const waiting = r.outbox.bytes !== undefined ? `${bytes(r.outbox.bytes)} waiting` : '';
    setTitle(td, rec !== undefined ? `${waiting}${waiting ? '; ' : ''}${recoveryText(rec)}` : waiting);
    td.classList.toggle('warn', (r.outbox.messages ?? 0) > 0 && rec === undefined);
    td.classList.toggle('bad', rec !== undefined);
  } },
  { key: 'oldest', title: 'Oldest', help: 'age of the oldest message in the outbox', cls: 'num', sort: (r) => r.outbox.oldestAgeS ?? -1, render: (td, r) => setText(td, r.outbox.oldestAgeS ? age(r.outbox.oldestAgeS * 1000) : '–') },
  { key: 'drops', title: 'Drops', help: 'messages dropped by the agent (all reasons)', cls: 'num', sort: (r) => r.dropped.total, render: (td, r) => {
    setText(td, count(r.dropped.total));
    setTitle(td, Object.entries(r.dropped.byReason).map(([k, v]) => `${k}: ${v}`).join('\n'));
    td.classList.toggle('warn', r.dropped.total > 0);
  } },
  { key: 'rss', title: 'RSS', help: "the agent's resident memory", cls: 'num', sort: (r) => r.rssBytes ?? -1, render: (td, r) => setText(td, bytes(r.rssBytes)) },
  { key: 'rate', title: 'Ev/s', help: 'events per second over the last 10 s (monitor)', cls: 'num', sort: (r) => r.rate, render: (td, r) => {
    setText(td, r.rate.toFixed(1));
    setTitle(td, `${r.events} events seen`);
  } },
  { key: 'version', title: 'Version', help: 'agent version', cls: 'version', sort: (r) => r.version ?? '', render: (td, r) => setText(td, r.version ?? '') },
];

interface RowView {
  tr: HTMLTableRowElement;
  cells: HTMLTableCellElement[];
}

/** Row height in px (app.css sets it): the table is windowed on it. */
const ROW_H = 30;
/** Rows drawn above and below the screen. */
const OVERSCAN = 10;

export class FleetView {
  readonly root: HTMLElement;
  private readonly rows = new Map<string, DeviceRow>();
  private readonly views = new Map<string, RowView>();
  private readonly tbody = h('tbody');
  private readonly padTop = h('td', { class: 'pad' });
  private readonly padBottom = h('td', { class: 'pad' });
  private readonly summary = h('div', { class: 'summary' });
  private readonly empty = h('p', { class: 'empty' }, 'No device seen yet: waiting for retained status and messages on the broker.');
  private sortKey = 'device';
  private sortDesc = false;
  private filter = '';
  /** Devices whose row changed since it was last drawn. */
  private dirty = new Set<string>();
  private order: string[] = [];
  private orderDirty = true;
  private frame = 0;
  private readonly headers: HTMLTableCellElement[] = [];
  private readonly pendingLatency: Array<['fleetRow' | 'fleetActivity', number, string]> = [];
  /** The rows in the DOM now (a window of `order` around the screen). */
  private shownRows: string[] = [];

  constructor() {
    const head = h('tr');
    for (const c of COLUMNS) {
      const th = h('th', { title: `${c.help} — click to sort`, class: c.cls, data: { key: c.key }, onclick: () => this.sortBy(c.key) }, c.title);
      this.headers.push(th);
      head.append(th);
    }
    this.padTop.colSpan = this.padBottom.colSpan = COLUMNS.length;
    const filter = h('input', { type: 'search', placeholder: 'filter devices', class: 'filter', spellcheck: false, oninput: (e) => {
      this.filter = (e.target as HTMLInputElement).value.trim().toLowerCase();
      this.orderDirty = true;
      this.schedule();
    } });
    this.root = h('section', { class: 'fleet' },
      h('div', { class: 'toolbar' }, this.summary, filter),
      h('div', { class: 'table-wrap' }, h('table', { class: 'fleet-table' }, h('thead', {}, head), this.tbody)),
      this.empty);
    this.markSort();
    // The window follows the page's scroll and size.
    window.addEventListener('scroll', () => this.schedule(), { passive: true });
    window.addEventListener('resize', () => this.schedule());
  }

  get size(): number {
    return this.rows.size;
  }

  reset(): void {
    this.rows.clear();
    this.views.clear();
    this.dirty.clear();
    this.shownRows = [];
    clear(this.tbody);
    this.orderDirty = true;
    this.schedule();
  }

  update(rows: DeviceRow[], full: boolean, removed: string[] = []): void {
    if (full) this.reset();
    for (const device of removed) {
      this.rows.delete(device);
      this.views.delete(device);
      this.dirty.delete(device);
      this.orderDirty = true;
    }
    for (const r of rows) {
      const prev = this.rows.get(r.device);
      this.rows.set(r.device, r);
      this.dirty.add(r.device);
      if (prev === undefined) this.orderDirty = true;
      if (r.healthAt !== undefined && r.healthAt !== prev?.healthAt) this.pendingLatency.push(['fleetRow', r.healthAt, r.device]);
    }
    this.schedule();
  }

  activity(tuples: ActivityTuple[]): void {
    for (const [device, lastSeen, events, rate, lastEventTs, silent] of tuples) {
      const r = this.rows.get(device);
      if (r === undefined) continue;
      if (lastEventTs !== null && lastEventTs !== r.lastEventTs) this.pendingLatency.push(['fleetActivity', lastEventTs, device]);
      Object.assign(r, { lastSeen, events, rate, silent, lastEventTs: lastEventTs ?? undefined });
      this.dirty.add(device);
    }
    this.schedule();
  }

  /** Once a second: ages move on, and the order when it depends on them. */
  tick(): void {
    for (const d of this.shownRows) this.dirty.add(d);
    this.orderDirty = true;
    this.schedule();
  }

  private sortBy(key: string): void {
    this.sortDesc = this.sortKey === key ? !this.sortDesc : false;
    this.sortKey = key;
    this.markSort();
    this.orderDirty = true;
    this.schedule();
  }

  private markSort(): void {
    for (const th of this.headers) {
      const on = th.dataset.key === this.sortKey;
      th.classList.toggle('sorted', on);
      th.classList.toggle('desc', on && this.sortDesc);
      th.setAttribute('aria-sort', on ? (this.sortDesc ? 'descending' : 'ascending') : 'none');
    }
  }

  private schedule(): void {
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (this.root.isConnected) this.render();
    });
  }

  /**
   * Only the rows around the screen are in the DOM (a spacer row above and
   * below stands for the others): with 500 devices the browser lays out and
   * paints some 50 rows, not 500. Rows keep their elements while off screen,
   * and are redrawn when they come back if they changed.
   */
  private render(): void {
    const now = Date.now() + clockOffset;
    if (this.orderDirty) this.sort(now);
    // Where the screen is over the table (one layout read, before any write).
    const top = this.tbody.getBoundingClientRect().top;
    const first = Math.max(0, Math.min(this.order.length, Math.floor(-top / ROW_H) - OVERSCAN));
    const last = Math.min(this.order.length, first + Math.ceil(window.innerHeight / ROW_H) + 2 * OVERSCAN);
    const want = this.order.slice(first, last);
    const drawn = new Set<string>();
    for (const device of want) {
      let v = this.views.get(device);
      if (v === undefined) {
        const cells = COLUMNS.map((c) => h('td', { class: c.cls }));
        v = { tr: h('tr', { data: { device } }, ...cells), cells };
        this.views.set(device, v);
        this.dirty.add(device);
      }
      if (!this.dirty.has(device)) continue;
      const r = this.rows.get(device)!;
      for (let i = 0; i < COLUMNS.length; i++) COLUMNS[i]!.render(v.cells[i]!, r, now);
      v.tr.classList.toggle('offline', r.state === 'offline');
      v.tr.classList.toggle('silent', r.silent && r.state === 'online');
      this.dirty.delete(device);
      drawn.add(device);
    }
    if (want.length !== this.shownRows.length || want.some((d, i) => d !== this.shownRows[i])) {
      const padTop = (first * ROW_H) + 'px';
      const padBottom = ((this.order.length - last) * ROW_H) + 'px';
      if (this.padTop.style.height !== padTop) this.padTop.style.height = padTop;
      if (this.padBottom.style.height !== padBottom) this.padBottom.style.height = padBottom;
      const rows: HTMLElement[] = [this.padTop.parentElement ?? h('tr', { class: 'pad-row' }, this.padTop)];
      for (const d of want) rows.push(this.views.get(d)!.tr);
      rows.push(this.padBottom.parentElement ?? h('tr', { class: 'pad-row' }, this.padBottom));
      this.tbody.replaceChildren(...rows);
      this.shownRows = want;
    }
    // Latency counts what is painted: rows off screen are not.
    for (const [k, ts, device] of this.pendingLatency.splice(0)) if (drawn.has(device)) shown(k, ts);
    this.empty.hidden = this.rows.size > 0;
    this.renderSummary();
  }

  private sort(now: number): void {
    this.orderDirty = false;
    const col = COLUMNS.find((c) => c.key === this.sortKey)!;
    const keyed = [...this.rows.values()].filter((r) => this.filter === '' || r.device.toLowerCase().includes(this.filter)).map((r) => ({ r, k: col.sort(r, now) }));
    keyed.sort((a, b) => {
      const c = a.k < b.k ? -1 : a.k > b.k ? 1 : a.r.device < b.r.device ? -1 : a.r.device > b.r.device ? 1 : 0;
      return this.sortDesc ? -c : c;
    });
    this.order = keyed.map(({ r }) => r.device);
  }

  private renderSummary(): void {
    let online = 0, offline = 0, silent = 0, unknown = 0;
    for (const r of this.rows.values()) {
      if (r.state === 'offline') offline++;
      else if (r.state === 'unknown') unknown++;
      else if (r.silent) silent++;
      else online++;
    }
    const sig = `${this.rows.size}/${online}/${offline}/${silent}/${unknown}`;
    if (this.summary.dataset.sig === sig) return;
    this.summary.dataset.sig = sig;
    clear(this.summary);
    append(this.summary, [
      h('span', { class: 'count' }, `${this.rows.size} devices`),
      h('span', { class: 'count online' }, `${online} online`),
      h('span', { class: 'count offline' }, `${offline} offline`),
      h('span', { class: 'count silent' }, `${silent} silent`),
      unknown > 0 ? h('span', { class: 'count unknown' }, `${unknown} unknown`) : null,
    ]);
  }
}
