/**
 * The latest messages of each device, kept so that a device view opened now
 * starts with some history (its table and its chart). Each entry is the
 * EventItem already serialised to JSON: it is made once and sent as is to
 * every browser watching the device.
 *
 * Bounds, per device: `perDevice` entries, and a share of `totalBytes`
 * (totalBytes / devices, at least 16 KiB): the oldest entries go first. So
 * the whole log stays near totalBytes however many devices there are (plus
 * 16 KiB per device past totalBytes / 16 KiB devices).
 */
const MIN_SHARE = 16 * 1024;

interface Ring {
  items: string[];
  bytes: number;
}

export class DeviceLog {
  private readonly rings = new Map<string, Ring>();
  private bytesTotal = 0;

  constructor(private readonly perDevice: number, private readonly totalBytes: number) {}

  get bytes(): number {
    return this.bytesTotal;
  }

  add(device: string, json: string): void {
    let ring = this.rings.get(device);
    if (ring === undefined) {
      ring = { items: [], bytes: 0 };
      this.rings.set(device, ring);
    }
    ring.items.push(json);
    ring.bytes += json.length;
    this.bytesTotal += json.length;
    const share = Math.max(MIN_SHARE, Math.floor(this.totalBytes / this.rings.size));
    // Shift in one go: items.shift() per entry would be quadratic on a long ring.
    let drop = 0;
    let bytes = ring.bytes;
    while (ring.items.length - drop > 1 && (ring.items.length - drop > this.perDevice || bytes > share)) {
      bytes -= ring.items[drop]!.length;
      drop++;
    }
    if (drop > 0) {
      ring.items.splice(0, drop);
      this.bytesTotal -= ring.bytes - bytes;
      ring.bytes = bytes;
    }
  }

  forget(device: string): void {
    const ring = this.rings.get(device);
    if (ring === undefined) return;
    this.bytesTotal -= ring.bytes;
    this.rings.delete(device);
  }

  history(device: string): readonly string[] {
    return this.rings.get(device)?.items ?? [];
  }
}
