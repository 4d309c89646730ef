/**
 * ISO 8601 timestamps (UTC, milliseconds), as Date#toISOString writes them,
 * without calling it.
 *
 * Why not toISOString: in Node 20's V8 its first call looks up the local
 * time zone and that zone's display name through ICU (TimeZone and
 * TimeZoneNames: stack seen with gdb), although the text is in UTC. That
 * maps ICU's time-zone data and code: +0.8 MB of RSS in a bare node
 * process, ~1 MB of the agent's ICU pages against ~0.4 MB without it. The
 * UTC getters used here read no time zone.
 */

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;

/** The year as toISOString writes it: 4 digits, or a sign and 6 digits outside 0-9999. */
function isoYear(y: number): string {
  if (y >= 0 && y <= 9999) return String(y).padStart(4, '0');
  return (y < 0 ? '-' : '+') + String(Math.abs(y)).padStart(6, '0');
}

// Events carry a timestamp each, many in the same second: the text up to the second is kept.
let isoSecond = NaN;
let isoPrefix = '';

/** ISO 8601 (UTC, ms) of a ms timestamp; one that is not a valid date is replaced by now. */
export function isoTime(ms: number): string {
  let t = Math.trunc(ms); // as Date does
  if (!(Math.abs(t) <= 8.64e15)) t = Date.now();
  const second = Math.floor(t / 1000);
  if (second !== isoSecond) {
    const d = new Date(second * 1000);
    isoPrefix = `${isoYear(d.getUTCFullYear())}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.`;
    isoSecond = second;
  }
  const milli = t - second * 1000;
  return isoPrefix + (milli < 10 ? '00' : milli < 100 ? '0' : '') + milli + 'Z';
}
