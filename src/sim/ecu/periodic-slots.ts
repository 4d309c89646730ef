/**
 * What each periodic slot carries, the same rule for every protocol:
 *
 *   slot 0, 2, 4, … (even)  the counter message, n = slot / 2 (0, 1, 2, …)
 *   slot 1, 5, 9, …         signal A (slcan: vehicle speed 0x100; JSON: temperature)
 *   slot 3, 7, 11, …        signal B (slcan: EEC1 0x0CF00400;  JSON: temperature)
 *
 * `--rate` counts slots (every periodic frame, whatever it carries) so that
 * it is the frame rate on the wire; `--count N` counts counter messages:
 * output stops right after counter N-1, i.e. after 2N-1 slots. A test
 * therefore expects exactly the counters 0..N-1 in order, with signal frames
 * between them.
 */
export type SlotContent =
  | { kind: 'counter'; n: number }
  | { kind: 'signal'; which: 'a' | 'b' };

export function slotContent(slot: number): SlotContent {
  if (slot % 2 === 0) return { kind: 'counter', n: slot / 2 };
  return { kind: 'signal', which: slot % 4 === 1 ? 'a' : 'b' };
}

/** The last slot sent with `--count N` (N ≥ 1): the one carrying counter N-1. */
export function lastSlotForCount(count: number): number {
  return 2 * (count - 1);
}
