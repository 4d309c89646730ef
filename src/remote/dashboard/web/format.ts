/** Numbers and times as the dashboard shows them. */

export function age(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  const s = Math.max(0, ms / 1000);
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

/** An age to the second (the fleet table: fewer changes to paint than tenths). */
export function ageCoarse(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  const s = Math.floor(ms / 1000);
  return s < 1 ? '< 1 s' : s < 90 ? `${s} s` : age(ms);
}

export function duration(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '–';
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${Math.floor(s % 60)}s`;
  return `${Math.floor(s)}s`;
}

export function bytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function count(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n >= 10_000 ? `${(n / 1000).toFixed(n >= 100_000 ? 0 : 1)}k` : String(n);
}

/** Local wall-clock time with milliseconds. */
export function clock(ms: number | undefined): string {
  if (ms === undefined) return '–';
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Local date and time, to the second. */
export function dateTime(ms: number | undefined): string {
  if (ms === undefined) return '–';
  const d = new Date(ms);
  return `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

/** One line of JSON, cut to `max` characters. */
export function preview(v: unknown, max = 160): string {
  let s: string;
  try {
    s = typeof v === 'string' ? v : JSON.stringify(v) ?? 'undefined';
  } catch {
    s = String(v);
  }
  return s.length <= max ? s : s.slice(0, max - 1) + '…';
}

/** The agent's outbox recovery report, in words: what happened at its last start and what was lost. */
export function recoveryText(r: { reason: string; lost?: number | null; salvaged?: number; movedTo?: string; at?: number }): string {
  const what = r.reason === 'corrupt' ? `a damaged outbox was moved aside${r.movedTo ? ` to ${r.movedTo}` : ''}${r.salvaged !== undefined ? `, ${r.salvaged} message(s) salvaged` : ''}`
    : r.reason === 'wal' ? 'accepted messages were lost from the outbox journal'
    : r.reason === 'missing' ? 'the outbox file was missing' : `outbox recovered (${r.reason})`;
  const lost = r.lost === null ? 'an unknown number lost' : r.lost !== undefined ? `${r.lost} lost` : '';
  return `${what}${lost ? `; ${lost}` : ''}${r.at !== undefined ? ` (${dateTime(r.at)})` : ''}`;
}
