/**
 * What the page measures of itself, readable as `window.afbEdgeDashboard`
 * (the tests and bench/dashboard-scale read it; an operator can too, in the
 * browser console): publish-to-pixels latency, per kind of update, from the
 * agent's own time of a message (the envelope's `ts`, the health `ts`) to
 * the frame that shows it; and the chart's series. Bounded: the last
 * MAX_SAMPLES samples of each kind.
 */
const MAX_SAMPLES = 5000;

export type LatencyKind = 'events' | 'chart' | 'fleetRow' | 'fleetActivity';

const samples: Record<LatencyKind, number[]> = { events: [], chart: [], fleetRow: [], fleetActivity: [] };
let waiting: Array<[LatencyKind, number]> = [];
let scheduled = false;

/** Notes that the DOM now shows something stamped `ts`: its latency is taken once it is painted. */
export function shown(kind: LatencyKind, ts: number | undefined): void {
  if (ts === undefined) return;
  waiting.push([kind, ts]);
  if (scheduled) return;
  scheduled = true;
  // requestAnimationFrame runs before the frame's paint; a message posted from it runs after.
  requestAnimationFrame(() => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      const now = Date.now() + clockOffset;
      for (const [k, t] of waiting) {
        const a = samples[k];
        a.push(now - t);
        if (a.length > MAX_SAMPLES) a.splice(0, a.length - MAX_SAMPLES);
      }
      waiting = [];
      scheduled = false;
    };
    ch.port2.postMessage(null);
  });
}

/** The monitor's clock minus this page's (from each message's `now`). */
export let clockOffset = 0;
export function setClockOffset(ms: number): void {
  clockOffset = ms;
}

export interface ProbeSources {
  chart(): { series: Array<{ label: string; points: number }>; width: number; height: number } | null;
  counts(): Record<string, number>;
}

export function installProbe(src: ProbeSources): void {
  (window as unknown as { afbEdgeDashboard: unknown }).afbEdgeDashboard = {
    latency: () => Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.slice()])),
    resetLatency: () => { for (const k of Object.keys(samples) as LatencyKind[]) samples[k] = []; },
    chart: () => src.chart(),
    counts: () => src.counts(),
  };
}
