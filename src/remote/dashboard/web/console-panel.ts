/**
 * The command console: binder, verb and JSON args → a remote command through
 * the monitor (which publishes it on the agent's call topic), and the
 * reply's error, info and data with the round-trip latency. Only when the
 * monitor runs with --allow-commands; the agent's allow-list still decides
 * (a verb it does not allow answers `forbidden`). The last MAX_RESULTS
 * replies are kept.
 */
import type { ClientMessage, ServerMessage } from '../protocol.js';
import { clear, h, setText } from './dom.js';
import { preview } from './format.js';

const MAX_RESULTS = 50;

type Reply = Extract<ServerMessage, { t: 'reply' }>;

export class ConsolePanel {
  readonly root: HTMLElement;
  private device = '';
  private seq = 0;
  private readonly waiting = new Map<string, { binder: string; verb: string; li: HTMLElement }>();
  private readonly binder = h('input', { type: 'text', placeholder: 'binder', class: 'binder', spellcheck: false, list: 'afb-binders' });
  private readonly verb = h('input', { type: 'text', placeholder: 'verb', class: 'verb', spellcheck: false });
  private readonly args = h('textarea', { class: 'args', placeholder: 'JSON args, e.g. {"a":1}', spellcheck: false });
  private readonly button: HTMLButtonElement;
  private readonly error = h('span', { class: 'error' });
  private readonly results = h('ol', { class: 'results', role: 'log' });
  private readonly binders = h('datalist', { id: 'afb-binders' });
  private readonly note = h('p', { class: 'muted' });

  constructor(private readonly send: (msg: ClientMessage) => boolean) {
    this.args.value = 'null';
    this.args.addEventListener('input', () => this.check());
    this.button = h('button', { type: 'button', class: 'call', onclick: () => this.call() }, 'Call');
    const onEnter = (e: KeyboardEvent) => { if (e.key === 'Enter' && (e.ctrlKey || e.target !== this.args)) { e.preventDefault(); this.call(); } };
    for (const el of [this.binder, this.verb, this.args] as HTMLElement[]) el.addEventListener('keydown', onEnter);
    this.root = h('section', { class: 'panel console' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Command console')),
      this.note,
      h('div', { class: 'call-form' }, this.binder, h('span', { class: 'slash' }, '/'), this.verb, this.button),
      this.args, this.error, this.binders, this.results);
  }

  /** Enabled or not (the monitor's --allow-commands), and for which device. */
  configure(enabled: boolean, device: string): void {
    this.device = device;
    for (const el of [this.binder, this.verb, this.args, this.button]) el.disabled = !enabled;
    setText(this.note, enabled
      ? `Calls go to ${device} through the broker; the agent's commands.allow decides what runs.`
      : 'Commands are off: start the monitor with --allow-commands to call verbs from here.');
    this.root.classList.toggle('disabled', !enabled);
  }

  /** Binder names the device reports (for the binder field's suggestions). */
  knownBinders(names: string[]): void {
    const sig = names.join('\u0000');
    if (this.binders.dataset.sig === sig) return;
    this.binders.dataset.sig = sig;
    clear(this.binders);
    for (const n of names) this.binders.append(h('option', { value: n }));
  }

  reply(r: Reply): void {
    const w = this.waiting.get(r.id);
    if (w === undefined) return;
    this.waiting.delete(r.id);
    clear(w.li);
    const ok = r.error === null;
    w.li.className = ok ? 'ok' : 'bad';
    w.li.append(
      h('div', { class: 'result-head' },
        h('span', { class: 'what' }, `${w.binder}/${w.verb}`),
        h('span', { class: `outcome ${ok ? 'ok' : 'bad'}` }, ok ? 'ok' : r.error ?? ''),
        h('span', { class: 'latency' }, `${r.latencyMs} ms`)),
      h('pre', { class: 'reply' }, JSON.stringify({ error: r.error, info: r.info ?? null, data: r.data ?? null }, null, 2)));
  }

  private check(): boolean {
    const text = this.args.value.trim();
    try {
      if (text !== '') JSON.parse(text);
      setText(this.error, '');
      return true;
    } catch (err) {
      setText(this.error, `args: ${(err as Error).message}`);
      return false;
    }
  }

  private call(): void {
    if (this.button.disabled || !this.check()) return;
    const binder = this.binder.value.trim();
    const verb = this.verb.value.trim();
    if (binder === '' || verb === '') return setText(this.error, 'a call needs a binder and a verb');
    const id = `c${++this.seq}`;
    if (!this.send({ t: 'call', id, device: this.device, binder, verb, args: this.args.value.trim() || 'null' })) return setText(this.error, 'not connected to the monitor');
    const li = h('li', { class: 'waiting' }, h('div', { class: 'result-head' }, h('span', { class: 'what' }, `${binder}/${verb}`), h('span', { class: 'outcome' }, 'waiting…'), h('span', { class: 'latency' }, preview(this.args.value.trim(), 60))));
    this.waiting.set(id, { binder, verb, li });
    this.results.insertBefore(li, this.results.firstChild);
    while (this.results.children.length > MAX_RESULTS) this.results.lastChild!.remove();
  }
}
