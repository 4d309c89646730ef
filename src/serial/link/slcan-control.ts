/**
 * The control side of an slcan link, per dialect (slcan-dialects.ts): which
 * adapter is there (the configured one, or probed: slcan-probe.ts), the
 * setup when the port opens, the answers the adapter owes (command acks,
 * z/Z for frames, F for status polls) and the status poll itself. Frames and
 * requests stay in slcan-protocol.ts.
 *
 * A dialect that acknowledges (LAWICEL, USBtin) gets each setup command
 * awaited (CR, or BEL = refused); one that does not (CANable stock, no-ack)
 * gets its setup written at once, never waited for, as slcand and python-can
 * do. Only acknowledging dialects ever owe answers for frames.
 */
import type { SerialLinkConfig } from '../../config/types.js';
import { SLCAN_STATUS, slcanCommands, type SlcanDecoder, type SlcanItem } from '../slcan-codec.js';
import { LinkError, type LinkIO } from './link-protocol.js';
import { SLCAN_DIALECTS, bitrateCommand, type SlcanDialect } from './slcan-dialects.js';
import { SLCAN_PROBE_REQUEST, SlcanProbe, type SlcanProbeResult } from './slcan-probe.js';

/** Answers owed at most: far more than any adapter's transmit queue. */
const MAX_UNANSWERED = 4096;

/**
 * Silent probes in a row before `auto` takes the adapter for one without
 * acknowledgements: silence is also what an adapter gives that is not ready
 * yet (booting, powered later, its tty just flushed), and opening it as
 * no-ack would skip Z and F for as long as the link stays open.
 */
export const SILENT_PROBES_BEFORE_NO_ACK = 3;

interface CommandWaiter {
  command: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface ActiveProbe {
  probe: SlcanProbe;
  done: (result: SlcanProbeResult) => void;
  abort: (err: Error) => void;
}

export class SlcanControl {
  private dialect: SlcanDialect | undefined;
  /** How the dialect was chosen, for stats and the open log. */
  private chosen: { reason: string; version?: string } = { reason: 'not opened yet' };
  /** The probe chose a dialect without acks: an acknowledgement later means it misjudged (adapter not ready yet?). */
  private probedWithoutAcks = false;
  /** Probes in a row that heard nothing (kept across reopens; an answer resets it). */
  private silentProbes = 0;
  private probing: ActiveProbe | undefined;
  /** Setup commands of an acknowledging dialect, answered in order by CR or BEL. */
  private readonly waiting: CommandWaiter[] = [];
  private txAcks = 0;
  private txRefused = 0;
  /**
   * Frames and status polls written since the handshake and not answered yet
   * (each gets CR, z/Z, F or BEL). Only then is a BEL a refusal; a BEL with
   * nothing waiting is line noise or a confused adapter (`unexpected-bell`).
   * Saturates: an adapter that never answers cannot grow it. Stays 0 for a
   * dialect without acknowledgements.
   */
  private unanswered = 0;
  private unexpectedBells = 0;
  private unexpectedReplies = 0;
  private statusTimer: NodeJS.Timeout | undefined;
  /** Last status flags reported (undefined: none since the link opened). */
  private lastFlags: number | undefined;

  constructor(private readonly config: SerialLinkConfig, private readonly io: LinkIO, private readonly decoder: SlcanDecoder) {}

  /** While probing, the adapter's bytes are the probe's (version text lines are no slcan messages). */
  intercept(chunk: Buffer): boolean {
    const p = this.probing;
    if (p === undefined) return false;
    const result = p.probe.push(chunk);
    if (result !== undefined) p.done(result);
    return true;
  }

  async handshake(timeoutMs: number): Promise<void> {
    const s = this.config.slcan;
    let probed = false;
    this.probedWithoutAcks = false;
    if (s.adapter === 'auto') {
      const r = await this.probe(s.probe_timeout_ms);
      if (r.silent !== true) this.silentProbes = 0;
      else if (++this.silentProbes < SILENT_PROBES_BEFORE_NO_ACK) {
        throw new LinkError('timeout', `nothing answered the slcan probe (C, V, v) within ${s.probe_timeout_ms} ms ` +
          `(silent probe ${this.silentProbes} of ${SILENT_PROBES_BEFORE_NO_ACK}; after that the adapter is taken for one without acknowledgements)`);
      }
      this.dialect = SLCAN_DIALECTS[r.adapter];
      this.chosen = { reason: `probed: ${r.reason}`, ...(r.version !== undefined ? { version: r.version } : {}) };
      probed = true;
    } else {
      this.dialect = SLCAN_DIALECTS[s.adapter];
      this.chosen = { reason: 'slcan.adapter in the config (not probed)' };
    }
    const d = this.dialect;
    this.probedWithoutAcks = probed && !d.acks;
    this.decoder.rtrCarriesData = d.rtrCarriesData;
    const plan: string[] = [];
    // C first (the probe already sent it): an adapter left open by a previous run refuses S and Z.
    if (!probed) plan.push('C');
    plan.push(bitrateCommand(d, s.bitrate));
    if (d.timestamps) plan.push(s.timestamps ? 'Z1' : 'Z0');
    plan.push(...d.open(s.listen_only));
    if (d.acks) {
      for (const c of plan) await this.command(c, timeoutMs, c === 'C');
    } else {
      this.io.write(Buffer.from(plan.map((c) => c + '\r').join(''), 'latin1'));
    }
    if (d.statusFlags) this.startStatusPoll();
  }

  /** One line for the open log: which adapter, why, and what it cannot do. */
  describe(): string {
    const d = this.dialect;
    if (d === undefined) return '';
    const s = this.config.slcan;
    const lacks: string[] = [];
    if (!d.acks) lacks.push('no acknowledgements (nothing is waited for)');
    if (!d.timestamps && s.timestamps) lacks.push('no receive timestamps (no Z command)');
    if (!d.statusFlags && s.status_interval_ms > 0) lacks.push('no status polls (no F command: bus errors are not visible)');
    return `adapter ${d.name} (${this.chosen.reason})${lacks.length > 0 ? `; ${lacks.join(', ')}` : ''}`;
  }

  reset(reason: string): void {
    this.unanswered = 0;
    clearInterval(this.statusTimer);
    this.statusTimer = undefined;
    this.lastFlags = undefined;
    this.probing?.abort(new LinkError('disconnected', reason));
    for (const w of this.waiting.splice(0)) w.reject(new LinkError('disconnected', reason));
  }

  /** A frame or poll went out: an acknowledging adapter owes one answer, another owes none. */
  sent(): void {
    if (this.dialect?.acks === true && this.unanswered < MAX_UNANSWERED) this.unanswered++;
  }

  /** A decoded line other than a frame. */
  onReply(item: Exclude<SlcanItem, { kind: 'frame' }>): void {
    const acks = this.dialect?.acks === true;
    switch (item.kind) {
      case 'status':
        // Outside the setup, an F reply is the poll's: matched by its kind, not by order
        // (frames sent meanwhile get their own z/Z/CR replies).
        if (this.waiting.length === 0 && !acks) return this.unexpectedReply();
        if (this.waiting.length === 0) {
          this.answered();
          this.onStatus(item.flags);
          return;
        }
        this.waiting.shift()!.resolve();
        return;
      case 'ok':
      case 'tx-ack':
      case 'version':
      case 'serial': {
        const w = this.waiting.shift();
        if (w !== undefined) w.resolve();
        else if (acks) {
          this.answered();
          this.txAcks++;
        } else this.unexpectedReply();
        return;
      }
      case 'error': {
        const w = this.waiting.shift();
        if (w !== undefined) w.reject(new LinkError('ecu-error', `the adapter refused '${w.command}'`));
        else if (this.unanswered > 0) {
          this.answered();
          this.txRefused++;
          this.io.rejected('tx-refused', 'the adapter refused a frame (BEL): bus off, queue full or channel closed');
        } else {
          this.unexpectedBells++;
          this.io.rejected('unexpected-bell', 'a BEL while no command or frame waited for an answer (line noise?)');
          if (this.probedWithoutAcks) this.reprobe('BEL');
        }
      }
    }
  }

  private unexpectedReply(): void {
    this.unexpectedReplies++;
    this.io.rejected('unexpected-reply', `an acknowledgement from an adapter set up as ${this.dialect?.name ?? 'unknown'}, which sends none: is slcan.adapter right?`);
    if (this.probedWithoutAcks) this.reprobe('an acknowledgement');
  }

  /**
   * The probe heard no acknowledgement, yet one came: the adapter was not
   * ready then (powered later, or still booting), or lost its answers.
   * Open again, once, so it is probed again and set up in its own dialect.
   */
  private reprobe(what: string): void {
    this.probedWithoutAcks = false;
    this.io.reopen(`the adapter sent ${what} although the probe chose ${this.dialect?.name ?? '?'} (no acknowledgements): probing it again`);
  }

  stats(): Record<string, unknown> {
    return {
      adapter: this.dialect?.name ?? null,
      adapter_reason: this.chosen.reason,
      adapter_version: this.chosen.version ?? null,
      tx_acks: this.txAcks,
      tx_refused: this.txRefused,
      unexpected_bells: this.unexpectedBells,
      unexpected_replies: this.unexpectedReplies,
    };
  }

  private probe(timeoutMs: number): Promise<SlcanProbeResult> {
    return new Promise<SlcanProbeResult>((resolve, reject) => {
      const probe = new SlcanProbe();
      const end = (): void => {
        clearTimeout(timer);
        this.probing = undefined;
      };
      const timer = setTimeout(() => { end(); resolve(probe.atDeadline(timeoutMs)); }, timeoutMs);
      this.probing = {
        probe,
        done: (r) => { end(); resolve(r); },
        abort: (err) => { end(); reject(err); },
      };
      try {
        this.io.write(SLCAN_PROBE_REQUEST);
      } catch (err) {
        end();
        reject(err);
      }
    });
  }

  private command(command: string, timeoutMs: number, ignoreRefusal = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new LinkError('timeout', `the adapter did not answer '${command}' within ${timeoutMs} ms ` +
          `(slcan.adapter ${this.dialect?.name ?? '?'} expects CR or BEL; is it an slcan adapter at this baud rate? A stock CANable answers nothing: adapter auto or canable)`));
      }, timeoutMs);
      const waiter: CommandWaiter = {
        command,
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (err) => { clearTimeout(timer); if (ignoreRefusal && err instanceof LinkError && err.code === 'ecu-error') resolve(); else reject(err); },
      };
      this.waiting.push(waiter);
      try {
        this.io.write(Buffer.from(command + '\r', 'latin1'));
      } catch (err) {
        this.waiting.pop();
        clearTimeout(timer);
        reject(err);
      }
    });
  }

  /** Polls the adapter's status flags (bus errors are otherwise invisible on slcan). */
  private startStatusPoll(): void {
    const every = this.config.slcan.status_interval_ms;
    if (every <= 0) return;
    this.statusTimer = setInterval(() => {
      try {
        this.io.write(slcanCommands.readStatus());
        this.sent();
      } catch {
        /* busy or closing: the next tick asks again */
      }
    }, every);
    this.statusTimer.unref();
  }

  private answered(): void {
    if (this.unanswered > 0) this.unanswered--;
  }

  private onStatus(flags: number): void {
    if (flags === this.lastFlags) return;
    this.lastFlags = flags;
    const errors = Object.entries(SLCAN_STATUS).filter(([, bit]) => (flags & bit) !== 0).map(([name]) => name);
    this.io.event('status', { flags, errors });
  }
}
