/**
 * `slcan.adapter: auto`: which slcan dialect is on the other end, told from
 * its answers to three harmless commands, `C\rV\rv\r` (close, hardware
 * version, firmware version). No bare CR is ever sent: the CANable stock
 * firmware re-runs its previous command on an empty line (canable2-fw
 * slcan.c: "Pressing enter repeats the previous TX").
 *
 * What each dialect answers (docs/ecu-protocols.md has the sources):
 *
 *   LAWICEL   C → CR or BEL, V → "Vhhss", v → BEL (unknown command)
 *   USBtin    C → CR or BEL, V → "V0100", v → "v0107" (firmware version)
 *   CANable   C → nothing,   V → "<git describe> <remote>" text line, v → nothing
 *   no-ack    nothing at all
 *
 * So: a text line before any CR/BEL is a CANable (decided at once); three
 * answers with CR/BEL among them are LAWICEL or USBtin (decided at the third,
 * by the answer to `v`); at the deadline, CR/BEL seen means an acknowledging
 * (LAWICEL-like) adapter, nothing seen means no-ack. Frame lines of an
 * adapter left open by a previous run are skipped.
 *
 * Pure logic, no I/O and no timer: the link writes `SLCAN_PROBE_REQUEST`,
 * feeds what comes back to push(), and calls atDeadline() when its time is up.
 */
import type { SlcanAdapterName } from './slcan-dialects.js';

export const SLCAN_PROBE_REQUEST = Buffer.from('C\rV\rv\r', 'latin1');

export interface SlcanProbeResult {
  adapter: SlcanAdapterName;
  /** Why, in words for the log and the link's stats. */
  reason: string;
  /** What the adapter said about its version, when it said anything. */
  version?: string;
  /** Nothing at all came back (an absent, unpowered or booting adapter answers the same as a silent one). */
  silent?: true;
}

type Answer =
  | { kind: 'cr' }
  | { kind: 'bel' }
  | { kind: 'V' | 'v'; text: string }
  | { kind: 'text'; text: string };

const CR = 0x0d;
const BEL = 0x07;
/** A CANable version line is "<git describe> <remote url>": room for a long URL, not for a flood. */
const MAX_LINE = 200;
const FRAME_LINE = /^[tTrR][0-9A-Fa-f]{4,}$/;

export class SlcanProbe {
  private readonly answers: Answer[] = [];
  private line: number[] = [];
  private overflow = false;
  private result: SlcanProbeResult | undefined;

  /** Bytes from the adapter; returns the decision once there is one (and keeps returning it). */
  push(chunk: Uint8Array): SlcanProbeResult | undefined {
    for (const b of chunk) {
      if (this.result !== undefined) break;
      if (b === BEL) {
        // A BEL ends whatever half line came before it (a command the adapter cut short).
        this.line = [];
        this.overflow = false;
        this.answer({ kind: 'bel' });
      } else if (b === CR) {
        if (!this.overflow) this.onLine(Buffer.from(this.line).toString('latin1'));
        else this.answer({ kind: 'text', text: '(a line of more than 200 characters)' });
        this.line = [];
        this.overflow = false;
      } else if (this.line.length < MAX_LINE) {
        this.line.push(b);
      } else {
        this.overflow = true;
      }
    }
    return this.result;
  }

  /** The decision when the time is up (or the one made earlier). */
  atDeadline(timeoutMs: number): SlcanProbeResult {
    if (this.result !== undefined) return this.result;
    const heard = this.heard();
    if (this.acked()) {
      return { adapter: 'lawicel', reason: `acknowledges commands (answers to C, V, v within ${timeoutMs} ms: ${heard}): LAWICEL-style`, ...this.version() };
    }
    if (this.answers.length > 0) {
      return { adapter: 'no-ack', reason: `acknowledged nothing within ${timeoutMs} ms (answers: ${heard}): commands are sent without waiting`, ...this.version() };
    }
    return { adapter: 'no-ack', silent: true, reason: `nothing answered C, V or v within ${timeoutMs} ms: commands are sent without waiting, as slcand does (frames will show whether it works)` };
  }

  private onLine(text: string): void {
    if (text === '') return this.answer({ kind: 'cr' });
    // An adapter left open by a previous run still streams frames (and tx acks) until C is done.
    if (FRAME_LINE.test(text) || text === 'z' || text === 'Z') return;
    const m = /^([Vv])[0-9A-Fa-f]{4}$/.exec(text);
    if (m !== null) return this.answer({ kind: m[1] as 'V' | 'v', text });
    this.answer({ kind: 'text', text });
  }

  private answer(a: Answer): void {
    this.answers.push(a);
    if (a.kind === 'text' && !this.acked()) {
      this.result = {
        adapter: 'canable',
        reason: `no acknowledgement of C, and V answered a text line (${JSON.stringify(a.text)}): CANable stock slcan firmware`,
        version: a.text,
      };
      return;
    }
    if (this.answers.length >= 3 && this.acked()) {
      const v = this.answers[2]!;
      const heard = this.heard();
      this.result = v.kind === 'v'
        ? { adapter: 'usbtin', reason: `acknowledges commands and answers v with ${v.text} (answers to C, V, v: ${heard}): USBtin firmware`, ...this.version() }
        : { adapter: 'lawicel', reason: `acknowledges commands, no v (answers to C, V, v: ${heard}): LAWICEL-style`, ...this.version() };
    }
  }

  private acked(): boolean {
    return this.answers.some((a) => a.kind === 'cr' || a.kind === 'bel');
  }

  private heard(): string {
    return this.answers.map((a) => (a.kind === 'cr' ? 'CR' : a.kind === 'bel' ? 'BEL' : JSON.stringify(a.text))).join(', ');
  }

  private version(): { version?: string } {
    const v = this.answers.filter((a): a is Extract<Answer, { text: string }> => 'text' in a).map((a) => a.text);
    return v.length > 0 ? { version: v.join(' ') } : {};
  }
}
