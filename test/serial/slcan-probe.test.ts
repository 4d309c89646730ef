/**
 * The slcan dialect probe (slcan-probe.ts) on the answers each firmware gives
 * to `C\rV\rv\r` (docs/ecu-protocols.md), in any chunking.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SLCAN_PROBE_REQUEST, SlcanProbe, type SlcanProbeResult } from '../../src/serial/link/slcan-probe.js';
import { splitAt } from '../helpers/chunks.js';
import { fcSeed } from '../helpers/net-helpers.js';

function run(answer: string, cuts: number[] = []): { early: SlcanProbeResult | undefined; final: SlcanProbeResult } {
  const probe = new SlcanProbe();
  let early: SlcanProbeResult | undefined;
  for (const part of splitAt(Buffer.from(answer, 'latin1'), cuts)) early = probe.push(part) ?? early;
  return { early, final: probe.atDeadline(500) };
}

const cases: Array<[string, string, SlcanProbeResult['adapter'], boolean]> = [
  // label, what the adapter answers, dialect, decided before the deadline
  ['stock CANable (canable-fw: V = "<git describe> <remote>")', '8ca5d39 https://github.com/normaldotcom/canable-fw.git\r', 'canable', true],
  ['stock CANable left open: frames before the answer', 't20080000000000000000\rT0CF004008FFFFFF201CFFFFFF\rv1.0-3-g8ca5d39 canable-fw\r', 'canable', true],
  ['USBtin closed (C refused)', '\x07V0100\rv0107\r', 'usbtin', true],
  ['USBtin left open (C accepted, tx ack in flight)', 'z\r\rV0100\rv0107\r', 'usbtin', true],
  ['LAWICEL CANUSB closed', '\x07V1011\r\x07', 'lawicel', true],
  ['LAWICEL CANUSB open', '\rV1011\r\x07', 'lawicel', true],
  ['acks, version as text (a patched CANable with acks)', '\rVL2K0 abc123 canable2-fw\r\x07', 'lawicel', true],
  ['acks C only, nothing else before the deadline', '\r', 'lawicel', false],
  ['silent', '', 'no-ack', false],
  ['answers V, acknowledges nothing', 'V1234\r', 'no-ack', false],
];

describe('slcan dialect probe', () => {
  it('sends C, V and v, and never a bare CR (a CANable repeats its previous command on one)', () => {
    expect(SLCAN_PROBE_REQUEST.toString('latin1')).toBe('C\rV\rv\r');
  });

  for (const [label, answer, adapter, early] of cases) {
    it(`${label} → ${adapter}${early ? ' (at once)' : ' (at the deadline)'}`, () => {
      const r = run(answer);
      expect(r.final.adapter).toBe(adapter);
      expect(r.early !== undefined).toBe(early);
      expect(r.final.reason.length).toBeGreaterThan(20);
    });
  }

  it('the decision does not depend on how the answers are cut into chunks', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: cases.length - 1 }), fc.array(fc.nat(), { maxLength: 20 }), (i, cuts) => {
      const [, answer, adapter] = cases[i]!;
      expect(run(answer, cuts).final.adapter).toBe(adapter);
    }), { seed: fcSeed(), numRuns: 300 });
  });

  it('bounds a line that never ends (a flood without CR): counted as one text answer', () => {
    const probe = new SlcanProbe();
    probe.push(Buffer.alloc(100_000, 0x41));
    expect(probe.push(Buffer.from('\r'))?.adapter).toBe('canable');
  });
});
