/**
 * A time-series chart of chosen numeric fields of a device's messages:
 * each series is a name (exact, or a glob as in a route's `match`) and a
 * field path in the message (`data.value` of `vehicle/speed`;
 * `data.values.speed` of a raw CAN message), several series on one chart,
 * the last 1, 5 or 15 minutes.
 *
 * uPlot draws it: a canvas chart of ~50 KB that redraws thousands of points
 * in a millisecond or two, so ten and more updates a second stay smooth on
 * a modest laptop; it is maintained (releases through 2025), has no
 * dependency, and sets styles through the DOM (no inline <style>, which the
 * page's Content-Security-Policy would refuse). Chart.js (~200 KB) and
 * ECharts (~1 MB) do more, slower, and we need none of it.
 *
 * Bounds: MAX_SERIES series, MAX_POINTS points (the oldest go first), and
 * the window; the chart redraws at most once per animation frame and once a
 * second when nothing comes (the time axis moves on).
 */
import uPlot from 'uplot';
import { compileMatch } from '../../../router/match.js';
import type { EventItem } from '../protocol.js';
import { clear, h, setText } from './dom.js';
import { clockOffset, shown } from './probe.js';

const MAX_SERIES = 8;
const MAX_POINTS = 20_000;
const MAX_FIELDS = 300;
const PALETTE = ['#2f7ed8', '#e4572e', '#29a745', '#9b59b6', '#f0a202', '#17a2b8', '#c2185b', '#6d4c41'];

interface Series {
  name: string;
  path: string[];
  label: string;
  match: (n: string) => boolean;
}

/** The number at `path` in the message ({name, topic, ts, seq, data, …}), or null. */
function valueAt(e: EventItem, path: string[]): number | null {
  let v: unknown = e;
  for (const k of path) {
    if (typeof v !== 'object' || v === null) return null;
    v = (v as Record<string, unknown>)[k];
  }
  return typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'boolean' ? Number(v) : null;
}

/** The numeric fields of a message's data (for the field picker), depth ≤ 4, ≤ 32 per message. */
function numericPaths(v: unknown, prefix: string, out: string[], depth = 0): void {
  if (out.length >= 32 || depth > 4) return;
  if (typeof v === 'number') out.push(prefix);
  else if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) if (!k.includes('.')) numericPaths(x, `${prefix}.${k}`, out, depth + 1);
  }
}

export class ChartPanel {
  readonly root: HTMLElement;
  private series: Series[] = [];
  private xs: number[] = [];
  private ys: Array<Array<number | null>> = [];
  private plot: uPlot | undefined;
  private windowS = 60;
  private frame = 0;
  private readonly plotBox = h('div', { class: 'plot' });
  private readonly chipsBox = h('div', { class: 'series-chips' });
  private readonly nameInput = h('input', { type: 'text', placeholder: 'name, e.g. vehicle/speed', class: 'series-name', spellcheck: false, list: 'afb-fields-names' });
  private readonly pathInput = h('input', { type: 'text', placeholder: 'field, e.g. data.value', class: 'series-path', spellcheck: false, value: 'data.value' });
  private readonly picker = h('select', { class: 'field-picker', title: 'numeric fields seen' });
  private readonly error = h('span', { class: 'error' });
  private readonly fields = new Set<string>();
  private pendingLatency: number[] = [];
  private readonly resize = new ResizeObserver(() => this.fit());
  private readonly timer: number;

  constructor() {
    this.picker.append(h('option', { value: '' }, 'numeric fields seen…'));
    this.picker.addEventListener('change', () => {
      const [name, path] = this.picker.value.split('\u0000');
      if (name !== undefined && path !== undefined) this.addSeries(name, path);
      this.picker.value = '';
    });
    const win = h('select', { class: 'window', title: 'time window' }, ...[60, 300, 900].map((s) => h('option', { value: String(s) }, `last ${s / 60} min`)));
    win.value = String(this.windowS);
    win.addEventListener('change', () => {
      this.windowS = Number(win.value);
      this.schedule();
    });
    this.root = h('section', { class: 'panel chart' },
      h('div', { class: 'panel-head' }, h('h2', {}, 'Chart'), this.picker, this.nameInput, this.pathInput,
        h('button', { type: 'button', class: 'add-series', onclick: () => this.addSeries(this.nameInput.value.trim(), this.pathInput.value.trim()) }, 'Add series'), win),
      this.error, this.chipsBox, this.plotBox);
    this.resize.observe(this.plotBox);
    this.timer = window.setInterval(() => { if (this.series.length > 0) this.schedule(); }, 1000);
  }

  reset(): void {
    this.xs = [];
    this.ys = this.series.map(() => []);
    this.fields.clear();
    clear(this.picker);
    this.picker.append(h('option', { value: '' }, 'numeric fields seen…'));
    this.schedule();
  }

  /** Series given in the page address (#/device/ID?s=name|path&s=…). */
  addSeries(name: string, path: string): void {
    setText(this.error, '');
    if (name === '' || path === '') return setText(this.error, 'a series needs a name and a field');
    if (this.series.length >= MAX_SERIES) return setText(this.error, `at most ${MAX_SERIES} series`);
    if (this.series.some((s) => s.name === name && s.path.join('.') === path)) return;
    let match: (n: string) => boolean;
    try {
      match = compileMatch([name]);
    } catch (err) {
      return setText(this.error, (err as Error).message);
    }
    this.series.push({ name, path: path.split('.'), label: `${name} ${path}`, match });
    // Earlier points had no value for it.
    this.ys.push(this.xs.map(() => null));
    this.rebuild();
  }

  removeSeries(i: number): void {
    this.series.splice(i, 1);
    this.ys.splice(i, 1);
    this.rebuild();
  }

  add(events: EventItem[]): void {
    let added = false;
    for (const e of events) {
      if (e.kind !== 'event') continue;
      this.learnFields(e);
      if (this.series.length === 0) continue;
      const values = this.series.map((s) => (s.match(e.name) ? valueAt(e, s.path) : null));
      if (values.every((v) => v === null)) continue;
      this.insert((e.ts ?? e.at) / 1000, values);
      if (e.ts !== undefined) this.pendingLatency.push(e.ts);
      added = true;
    }
    if (added) this.schedule();
  }

  /** For the probe: each series' point count and the plot's size. */
  describe(): { series: Array<{ label: string; points: number }>; width: number; height: number } | null {
    if (this.plot === undefined) return null;
    return { series: this.series.map((s, i) => ({ label: s.label, points: this.ys[i]!.filter((v) => v !== null).length })), width: this.plot.width, height: this.plot.height };
  }

  private insert(x: number, values: Array<number | null>): void {
    let at = this.xs.length;
    // Messages come in time order nearly always; an older one is put in its place.
    while (at > 0 && this.xs[at - 1]! > x) at--;
    this.xs.splice(at, 0, x);
    values.forEach((v, i) => this.ys[i]!.splice(at, 0, v));
    const horizon = (Date.now() + clockOffset) / 1000 - 900;
    let drop = 0;
    while (drop < this.xs.length && (this.xs[drop]! < horizon || this.xs.length - drop > MAX_POINTS)) drop++;
    if (drop > 0) {
      this.xs.splice(0, drop);
      for (const y of this.ys) y.splice(0, drop);
    }
  }

  private learnFields(e: EventItem): void {
    if (this.fields.size >= MAX_FIELDS) return;
    const paths: string[] = [];
    numericPaths(e.data, 'data', paths);
    for (const p of paths) {
      const key = `${e.name}\u0000${p}`;
      if (this.fields.has(key) || this.fields.size >= MAX_FIELDS) continue;
      this.fields.add(key);
      this.picker.append(h('option', { value: key }, `${e.name} → ${p}`));
    }
  }

  private rebuild(): void {
    clear(this.chipsBox);
    this.series.forEach((s, i) => {
      this.chipsBox.append(h('span', { class: 'series-chip', data: { color: String(i) } },
        h('span', { class: `swatch c${i}` }), s.label,
        h('button', { type: 'button', class: 'remove', title: 'remove this series', onclick: () => this.removeSeries(i) }, '×')));
    });
    this.plot?.destroy();
    this.plot = undefined;
    clear(this.plotBox);
    if (this.series.length === 0) {
      this.plotBox.append(h('p', { class: 'muted' }, 'Add a series: pick a numeric field seen, or type a name and a field.'));
      return;
    }
    const { width, height } = this.size();
    const opts: uPlot.Options = {
      width,
      height,
      scales: { x: { time: true, range: () => { const now = (Date.now() + clockOffset) / 1000; return [now - this.windowS, now]; } } },
      series: [{}, ...this.series.map((s, i) => ({ label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true, points: { show: false } }))],
      axes: [{}, { size: 60 }],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
    this.plot = new uPlot(opts, this.data(), this.plotBox);
  }

  private data(): uPlot.AlignedData {
    return [this.xs, ...this.ys] as uPlot.AlignedData;
  }

  private size(): { width: number; height: number } {
    const width = Math.max(240, Math.floor(this.plotBox.clientWidth || 600));
    return { width, height: width < 500 ? 200 : 260 };
  }

  private fit(): void {
    if (this.plot === undefined) return;
    const { width, height } = this.size();
    if (width !== this.plot.width || height !== this.plot.height) this.plot.setSize({ width, height });
  }

  private schedule(): void {
    if (this.frame !== 0) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (this.plot === undefined) return;
      this.plot.setData(this.data());
      for (const ts of this.pendingLatency) shown('chart', ts);
      this.pendingLatency = [];
    });
  }

  dispose(): void {
    window.clearInterval(this.timer);
    this.resize.disconnect();
    this.plot?.destroy();
  }
}
