/**
 * The multiplexing tree of a message, built without recursion: the root
 * node holds the signals that are always present; each multiplexer signal
 * has a table from its value to the node of signals present for it (which
 * may hold further multiplexers: cascaded `mNM`). Values are matched by
 * ranges (SG_MUL_VAL_ `0-4294967295` is one range, not four billion
 * entries): the ranges of all children are cut into disjoint segments, each
 * with the set of children covering it, and a value is found by binary search.
 * Each multiplexer's table is built once and shared by every node holding it.
 */
import type { MuxRange } from './model.js';

export interface MuxNode {
  /** Indices into the message's signals, in DBC order. */
  signals: number[];
  /** Multiplexers among `signals`, with their tables. */
  muxes: MuxTable[];
}

export interface MuxTable {
  /** Index of the multiplexer signal. */
  signal: number;
  /** Disjoint segments [lo[i], hi[i]], ascending, each with its node. */
  lo: number[];
  hi: number[];
  nodes: MuxNode[];
}

export interface MuxSignalInfo {
  name: string;
  isMultiplexer: boolean;
  multiplexer: string | undefined;
  muxRanges: readonly MuxRange[] | undefined;
}

/** Segment × signal entries a message may build at most (hostile SG_MUL_VAL_ overlaps grow them quadratically). */
export const MAX_MUX_ENTRIES = 200_000;

export class MuxTooComplexError extends Error {}

export function buildMuxTree(signals: readonly MuxSignalInfo[]): MuxNode {
  const children = new Map<string, number[]>();
  signals.forEach((s, i) => {
    if (s.multiplexer === undefined || s.muxRanges === undefined) return;
    let list = children.get(s.multiplexer);
    if (list === undefined) children.set(s.multiplexer, (list = []));
    list.push(i);
  });
  const tables = new Map<number, MuxTable>();
  const pending: MuxTable[] = [];
  const nodesBySet = new Map<string, MuxNode>();
  let entries = 0;
  const charge = (n: number): void => {
    entries += n;
    if (entries > MAX_MUX_ENTRIES) throw new MuxTooComplexError(`its multiplexing needs more than ${MAX_MUX_ENTRIES} branch entries`);
  };
  const nodeOf = (members: number[]): MuxNode => {
    const key = members.join(',');
    const known = nodesBySet.get(key);
    if (known !== undefined) return known;
    const muxes: MuxTable[] = [];
    for (const i of members) {
      if (!signals[i]!.isMultiplexer) continue;
      let t = tables.get(i);
      if (t === undefined) {
        t = { signal: i, lo: [], hi: [], nodes: [] };
        tables.set(i, t);
        pending.push(t);
      }
      muxes.push(t);
    }
    const node = { signals: members, muxes };
    nodesBySet.set(key, node);
    return node;
  };
  const root = nodeOf(signals.flatMap((s, i) => (s.multiplexer === undefined ? [i] : [])));
  for (let t = pending.pop(); t !== undefined; t = pending.pop()) {
    fillTable(t, children.get(signals[t.signal]!.name) ?? [], signals, nodeOf, charge);
  }
  return root;
}

/** Sweep over range boundaries: each segment gets the set of children active in it; equal neighbours merge. */
function fillTable(t: MuxTable, kids: number[], signals: readonly MuxSignalInfo[], nodeOf: (members: number[]) => MuxNode, charge: (n: number) => void): void {
  const events: Array<[at: number, kid: number, delta: number]> = [];
  for (const k of kids) {
    const ranges = signals[k]!.muxRanges!;
    charge(ranges.length);
    for (const [lo, hi] of ranges) events.push([lo, k, 1], [hi + 1, k, -1]);
  }
  events.sort((a, b) => a[0] - b[0]);
  const active = new Map<number, number>();
  let prevKey = '';
  for (let e = 0; e < events.length; ) {
    const at = events[e]![0];
    while (e < events.length && events[e]![0] === at) {
      const [, k, d] = events[e++]!;
      const n = (active.get(k) ?? 0) + d;
      if (n === 0) active.delete(k);
      else active.set(k, n);
    }
    if (e >= events.length || active.size === 0) {
      prevKey = '';
      continue;
    }
    const end = events[e]![0] - 1;
    charge(active.size);
    const members = [...active.keys()].sort((a, b) => a - b);
    const key = members.join(',');
    const last = t.lo.length - 1;
    if (key === prevKey && t.hi[last] === at - 1) {
      t.hi[last] = end;
      continue;
    }
    t.lo.push(at);
    t.hi.push(end);
    t.nodes.push(nodeOf(members));
    prevKey = key;
  }
}

/** The node of a multiplexer value, undefined when no signal depends on that value. */
export function branchOf(t: MuxTable, value: number): MuxNode | undefined {
  let a = 0;
  let b = t.lo.length - 1;
  while (a <= b) {
    const m = (a + b) >> 1;
    if (value < t.lo[m]!) b = m - 1;
    else if (value > t.hi[m]!) a = m + 1;
    else return t.nodes[m];
  }
  return undefined;
}
