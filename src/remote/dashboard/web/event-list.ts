/**
 * A device's live messages, newest first: time, name (api/event), topic and
 * a one-line payload; a glob filter on the name (the syntax of a route's
 * `match`: src/router/match.ts, e.g. `vehicle/*`, `!**∕rpm`), pause (new
 * messages wait, at most `max`, and are counted), and a click shows the
 * whole message as JSON in the detail pane. At most `max` messages are
 * kept and at most `max` rows exist in the DOM.
 */
import { compileMatch } from '../../../router/match.js';
import type { EventItem } from '../protocol.js';
import { clear, h, setText } from './dom.js';
import { clock, preview } from './format.js';
import { shown } from './probe.js';

export class EventList {
  readonly root: HTMLElement;
  private items: EventItem[] = [];
  private waiting: EventItem[] = [];
  private paused = false;
  private missed = 0;
  private droppedByServer = 0;
  private match: (name: string) => boolean = () => true;
  private readonly tbody = h('tbody');
  private readonly status = h('span', { class: 'muted' });
  private readonly filterError = h('span', { class: 'error' });
  private readonly pauseButton: HTMLButtonElement;
  private readonly detail = h('pre', { class: 'detail' }, 'Click a message to see it whole.');
  private selected: HTMLTableRowElement | undefined;

  constructor(private readonly max: number) {
    const filter = h('input', { type: 'search', placeholder: 'filter: glob on api/event, e.g. vehicle/* or !**/rpm', class: 'filter wide', spellcheck: false, oninput: (e) => this.setFilter((e.target as HTMLInputElement).value) });
    this.pauseButton = h('button', { type: 'button', onclick: () => this.togglePause() }, 'Pause');
    this.root = h('section', { class: 'panel events' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Messages'), filter, this.pauseButton, this.status),
      this.filterError,
      h('div', { class: 'split' },
        h('div', { class: 'table-wrap events-wrap' }, h('table', { class: 'event-table' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Name'), h('th', { class: 'topic' }, 'Topic'), h('th', {}, 'Payload'))),
          this.tbody)),
        h('div', { class: 'detail-wrap' }, h('h3', {}, 'Detail'), this.detail)));
  }

  reset(): void {
    this.items = [];
    this.waiting = [];
    this.missed = 0;
    this.droppedByServer = 0;
    clear(this.tbody);
    this.detail.textContent = 'Click a message to see it whole.';
    this.renderStatus();
  }

  add(events: EventItem[], droppedByServer: number): void {
    this.droppedByServer += droppedByServer;
    if (this.paused) {
      this.waiting.push(...events);
      if (this.waiting.length > this.max) {
        this.missed += this.waiting.length - this.max;
        this.waiting.splice(0, this.waiting.length - this.max);
      }
      this.renderStatus();
      return;
    }
    this.push(events);
  }

  private push(events: EventItem[]): void {
    this.items.push(...events);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
    // Only the newest `max` can show: older ones of a large batch are not even made.
    const fresh = events.slice(-this.max).filter((e) => this.match(e.name));
    const frag = document.createDocumentFragment();
    for (let i = fresh.length - 1; i >= 0; i--) frag.append(this.row(fresh[i]!));
    this.tbody.insertBefore(frag, this.tbody.firstChild);
    while (this.tbody.children.length > this.max) this.tbody.lastChild!.remove();
    for (const e of fresh) if (e.kind === 'event') shown('events', e.ts);
    this.renderStatus();
  }

  private row(e: EventItem): HTMLTableRowElement {
    // Selected on press: newer rows are inserted above while messages stream in, so the row under
    // the pointer at release may be another one, and the browser then sends `click` to the table
    // body, not to a row (the press was lost). `click` too, for activations without a pointer.
    const select = () => this.select(tr, e);
    const tr = h('tr', { class: `kind-${e.kind}${e.retained ? ' retained' : ''}`, onpointerdown: select, onclick: select },
      h('td', { class: 'time', title: e.ts !== undefined ? `agent time; received ${clock(e.at)}` : 'received' }, clock(e.ts ?? e.at)),
      h('td', { class: 'name' }, e.name),
      h('td', { class: 'topic' }, e.topic),
      h('td', { class: 'payload' }, e.truncated !== undefined ? `(${e.truncated} bytes, cut) ${preview(e.data)}` : preview(e.data)));
    return tr;
  }

  private select(tr: HTMLTableRowElement, e: EventItem): void {
    this.selected?.classList.remove('selected');
    tr.classList.add('selected');
    this.selected = tr;
    const { i: _i, ...shownItem } = e;
    this.detail.textContent = JSON.stringify(shownItem, null, 2);
  }

  private setFilter(text: string): void {
    const globs = text.split(/\s+/).filter((g) => g !== '');
    try {
      this.match = globs.length === 0 ? () => true : compileMatch(globs);
      setText(this.filterError, '');
    } catch (err) {
      setText(this.filterError, (err as Error).message);
      return;
    }
    clear(this.tbody);
    const frag = document.createDocumentFragment();
    for (let i = this.items.length - 1; i >= 0; i--) if (this.match(this.items[i]!.name)) frag.append(this.row(this.items[i]!));
    this.tbody.append(frag);
    this.renderStatus();
  }

  private togglePause(): void {
    this.paused = !this.paused;
    setText(this.pauseButton, this.paused ? 'Resume' : 'Pause');
    this.pauseButton.classList.toggle('active', this.paused);
    if (!this.paused) {
      const w = this.waiting;
      this.waiting = [];
      this.push(w);
    }
    this.renderStatus();
  }

  private renderStatus(): void {
    const parts = [`${this.tbody.children.length} shown`];
    if (this.paused) parts.push(`paused: ${this.waiting.length} new waiting${this.missed ? `, ${this.missed} missed` : ''}`);
    if (this.droppedByServer) parts.push(`${this.droppedByServer} not sent (rate bound)`);
    setText(this.status, parts.join(' · '));
  }
}
