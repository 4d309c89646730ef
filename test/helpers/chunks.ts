/**
 * Cutting a byte stream into chunks at arbitrary places, as a socket or a
 * serial port may deliver it: decoders must give the same result whatever
 * the cuts.
 */

/** Splits `data` at the given (unsorted, possibly repeated, out-of-range) cut points; empty parts may occur. */
export function splitAt(data: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (data.length === 0 ? 0 : c % (data.length + 1))))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    parts.push(data.subarray(prev, p));
    prev = p;
  }
  parts.push(data.subarray(prev));
  return parts;
}

/** Feeds every part to a decoder's push() and collects what it returns. */
export function feedAll<T>(decoder: { push(chunk: Uint8Array): T[] }, parts: Uint8Array[]): T[] {
  const out: T[] = [];
  for (const p of parts) out.push(...decoder.push(p));
  return out;
}
