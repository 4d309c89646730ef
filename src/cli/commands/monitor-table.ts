/**
 * The monitor's terminal view: agent status lines, then one row per topic
 * (count, rate, age, last payload), redrawn in place. Bounded: at most
 * MAX_TOPICS topics are remembered, the least recently updated forgotten.
 */
import type { MonitorLine } from './monitor.js';

const MAX_TOPICS = 1000;
const RATE_WINDOW_MS = 5000;

interface Row {
  topic: string;
  count: number;
  last: unknown;
  lastAt: number;
  recent: number[];
}

function short(value: unknown, width: number): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  return s.length <= width ? s : s.slice(0, width - 1) + '…';
}

export class LiveTable {
  private readonly rows = new Map<string, Row>();
  private readonly status = new Map<string, { state: string; reason: string; at: number }>();

  constructor(private readonly prefix: string, private readonly write: (s: string) => void) {}

  add(line: MonitorLine): void {
    const now = Date.now();
    const p = line.payload as { state?: unknown; reason?: unknown } | null;
    if (line.topic.endsWith('/status') && p !== null && typeof p === 'object' && typeof p.state === 'string') {
      this.status.set(line.topic, { state: p.state, reason: typeof p.reason === 'string' ? p.reason : '', at: now });
      return;
    }
    let row = this.rows.get(line.topic);
    if (row === undefined) {
      row = { topic: line.topic, count: 0, last: null, lastAt: now, recent: [] };
    } else {
      this.rows.delete(line.topic); // re-inserted last: Map order = recency
    }
    row.count++;
    row.last = line.payload;
    row.lastAt = now;
    row.recent.push(now);
    while (row.recent.length > 0 && now - row.recent[0]! > RATE_WINDOW_MS) row.recent.shift();
    this.rows.set(line.topic, row);
    if (this.rows.size > MAX_TOPICS) this.rows.delete(this.rows.keys().next().value as string);
  }

  render(): void {
    const now = Date.now();
    const width = process.stdout.columns ?? 120;
    const out: string[] = ['\x1b[H\x1b[2J'];
    out.push(`afb-edge monitor — ${new Date(now).toISOString()}  (Ctrl-C to quit)`);
    for (const [topic, s] of this.status) {
      const dev = topic.slice(this.prefix.length + 1, -'/status'.length);
      out.push(`  ${s.state === 'online' ? '\x1b[32m●\x1b[0m' : '\x1b[31m●\x1b[0m'} ${dev} ${s.state}${s.reason ? ` (${s.reason})` : ''}`);
    }
    out.push('');
    out.push(`${'topic'.padEnd(48)} ${'count'.padStart(7)} ${'rate/s'.padStart(7)} ${'age'.padStart(6)}  last`);
    const rows = [...this.rows.values()].reverse().slice(0, Math.max(5, (process.stdout.rows ?? 40) - out.length - 2));
    for (const r of rows) {
      const recent = r.recent.filter((t) => now - t <= RATE_WINDOW_MS).length;
      const topic = r.topic.startsWith(this.prefix + '/') ? r.topic.slice(this.prefix.length + 1) : r.topic;
      const age = ((now - r.lastAt) / 1000).toFixed(1) + 's';
      const head = `${short(topic, 48).padEnd(48)} ${String(r.count).padStart(7)} ${(recent / (RATE_WINDOW_MS / 1000)).toFixed(1).padStart(7)} ${age.padStart(6)}  `;
      out.push(head + short(r.last, Math.max(10, width - head.length - 1)));
    }
    this.write(out.join('\n') + '\n');
  }
}
