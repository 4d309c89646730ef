/**
 * SerialLink slcan against the adapters as their firmwares behave, on real
 * ptys (socat). The adapter end is written here from the firmware sources,
 * independently of afb-edge ecu-sim (docs/ecu-protocols.md, "slcan dialects"):
 *
 * - stockCanable: normaldotcom canable-fw src/slcan.c + usbd_cdc_if.c — no CR
 *   or BEL for any command, no Z/F/N/L, V answers "<git describe> <remote>\r",
 *   M1 = silent mode, an empty line repeats the previous command.
 * - usbtin: USBtin firmware v1.7 frontend.c — CR/BEL, z/Z, V0100, v0107, Z at
 *   any time, C refused (BEL) when already closed.
 * - lawicel: CANUSB — CR/BEL, z/Z, V1011, v unknown (BEL).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SerialPortStream } from '@serialport/stream';
import { Cleanup, tempDir, waitFor } from '../helpers/net-helpers.js';
import { counter } from '../helpers/mqtt-helpers.js';
import { openPeer, ptyPair } from '../helpers/pty.js';
import { startSerialLink } from '../helpers/serial-link.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const startLink = (over: Parameters<typeof startSerialLink>[1]) => startSerialLink(cleanup, over);

interface Peer {
  /** Every command line received, in order. */
  commands: string[];
  /** Frames the adapter put on the bus (after O, not silent). */
  transmitted: string[];
  state: { open: boolean; silent: boolean };
}

function lines(port: SerialPortStream, onLine: (line: string) => void): void {
  let buf = '';
  port.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let i: number;
    while ((i = buf.indexOf('\r')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  });
}

/** canable-fw: answers nothing but V; unknown commands silently ignored. */
function stockCanable(port: SerialPortStream): Peer {
  const peer: Peer = { commands: [], transmitted: [], state: { open: false, silent: false } };
  let previous = '';
  lines(port, (line) => {
    if (line === '') line = previous; // cdc_process parses the stale buffer: the previous command again
    previous = line;
    peer.commands.push(line);
    const c = line[0];
    if (c === 'O') peer.state.open = true;
    else if (c === 'C') peer.state.open = false;
    else if (c === 'M' && !peer.state.open) peer.state.silent = line[1] === '1';
    else if (c === 'V') port.write('8ca5d39 https://github.com/normaldotcom/canable-fw.git\r');
    else if ((c === 't' || c === 'T' || c === 'r' || c === 'R') && peer.state.open && !peer.state.silent) peer.transmitted.push(line);
  });
  return peer;
}

/** USBtin v1.7 / LAWICEL CANUSB: every command answered CR or BEL. */
function ackingAdapter(port: SerialPortStream, kind: 'usbtin' | 'lawicel'): Peer {
  const peer: Peer = { commands: [], transmitted: [], state: { open: false, silent: false } };
  const ok = () => port.write('\r');
  const bell = () => port.write('\x07');
  lines(port, (line) => {
    peer.commands.push(line);
    const closed = !peer.state.open;
    const c = line[0];
    if (c === 'C') { if (closed) bell(); else { peer.state.open = false; ok(); } }
    else if (c === 'O' || c === 'L') { if (closed) { peer.state.open = true; peer.state.silent = c === 'L'; ok(); } else bell(); }
    else if (c === 'S') { if (closed && /^S[0-8]$/.test(line)) ok(); else bell(); }
    else if (c === 'Z') { if (kind === 'usbtin' || closed) ok(); else bell(); }
    else if (line === 'V') port.write(kind === 'usbtin' ? 'V0100\r' : 'V1011\r');
    else if (line === 'v' && kind === 'usbtin') port.write('v0107\r');
    else if (line === 'F') port.write('F00\r');
    else if (c === 't' || c === 'T' || c === 'r' || c === 'R') {
      if (peer.state.open && !peer.state.silent) { peer.transmitted.push(line); port.write(c === 'T' || c === 'R' ? 'Z\r' : 'z\r'); } else bell();
    } else bell();
  });
  return peer;
}

async function setup(make: (port: SerialPortStream) => Peer) {
  const dir = tempDir(cleanup, 'slcan-dialects');
  const pty = await ptyPair(cleanup, dir);
  const port = await openPeer(cleanup, pty.peer);
  return { device: pty.device, port, peer: make(port) };
}

describe('slcan adapter dialects: the stock CANable (no acknowledgements at all)', () => {
  it('auto, timestamps off: probes, opens without waiting for an ack, never sends Z, F or L, and delivers every frame', async () => {
    const { device, port, peer } = await setup(stockCanable);
    const { link, events, logger } = startLink({ device, protocol: 'slcan', slcan: { timestamps: false, status_interval_ms: 50 } });
    await waitFor(() => link.isOpen, 5000, 'link open');
    await waitFor(() => peer.state.open, 3000, 'the adapter opened');
    for (let n = 0; n < 100; n++) port.write(`t2008${n.toString(16).toUpperCase().padStart(2, '0')}00000000000000\r`);
    await waitFor(() => events.length === 100, 5000, '100 frames');
    expect(events.map(([, d]) => parseInt((d.data as string).slice(0, 2), 16))).toEqual(Array.from({ length: 100 }, (_, i) => i));
    await new Promise((r) => setTimeout(r, 200)); // status polls would have gone out by now (50 ms)
    expect(peer.commands).toEqual(['C', 'V', 'v', 'S6', 'M0', 'O']);
    expect(link.info().stats).toMatchObject({ adapter: 'canable', adapter_version: '8ca5d39 https://github.com/normaldotcom/canable-fw.git', tx_refused: 0 });
    expect(link.info().stats.adapter_reason).toMatch(/probed: no acknowledgement of C, and V answered a text line/);
    expect(logger.matching(/<info> link ecu0: slcan on .* open: adapter canable \(probed: .*\); no acknowledgements .*no status polls/)).toHaveLength(1);
  });

  it('explicit adapter canable skips the probe; listen-only is M1 then O (the firmware has no L); frames sent owe no answer', async () => {
    const { device, peer } = await setup(stockCanable);
    const { link, metrics } = startLink({ device, protocol: 'slcan', slcan: { adapter: 'canable', listen_only: true } });
    await waitFor(() => link.isOpen, 5000, 'link open');
    await waitFor(() => peer.commands.length === 4, 3000, 'setup written');
    expect(peer.commands).toEqual(['C', 'S6', 'M1', 'O']);
    expect(peer.state).toEqual({ open: true, silent: true });
    expect(link.info().stats).toMatchObject({ adapter: 'canable', adapter_reason: 'slcan.adapter in the config (not probed)' });
    expect(await counter(metrics.serialRejected, { link: 'ecu0', reason: 'tx-refused' })).toBe(0);
  });

  it('frames sent to a CANable are never owed an answer: a stray BEL is unexpected-bell, not tx-refused', async () => {
    const { device, port, peer } = await setup(stockCanable);
    const { link, metrics } = startLink({ device, protocol: 'slcan', slcan: { adapter: 'canable', bitrate: 250000 } });
    await waitFor(() => link.isOpen, 5000, 'link open');
    for (let i = 0; i < 5; i++) link.send({ id: 0x7df, data: '02010c5555555555' });
    await waitFor(() => peer.transmitted.length === 5, 3000, 'five frames on the bus');
    expect(peer.commands.slice(0, 4)).toEqual(['C', 'S5', 'M0', 'O']);
    port.write('\x07');
    await waitFor(async () => (await counter(metrics.serialRejected, { link: 'ecu0', reason: 'unexpected-bell' })) === 1, 3000, 'unexpected bell counted');
    expect(await counter(metrics.serialRejected, { link: 'ecu0', reason: 'tx-refused' })).toBe(0);
  });

  it('a bit rate the firmware lacks fails with the reason (its S7 is 750 kbit/s), and 750 kbit/s is S7', async () => {
    const { device, peer } = await setup(stockCanable);
    const { link } = startLink({ device, protocol: 'slcan', slcan: { bitrate: 800000 } });
    await waitFor(() => /cannot run the bus at 800000 bit\/s: it has .*750/.test(link.info().reason), 5000, 'the failure reason');
    expect(link.isOpen).toBe(false);
    expect(peer.commands.some((c) => c.startsWith('S'))).toBe(false);

    const again = await setup(stockCanable);
    const second = startLink({ device: again.device, protocol: 'slcan', slcan: { adapter: 'canable', bitrate: 750000 } }).link;
    await waitFor(() => second.isOpen, 5000, 'link open at 750k');
    await waitFor(() => again.peer.commands.includes('S7'), 3000, 'S7 sent');
  });

  it('RTR frames carry data bytes on a CANable (slcan_parse_frame): decoded as RTR, data dropped', async () => {
    const { device, port } = await setup(stockCanable);
    const { link, events } = startLink({ device, protocol: 'slcan', slcan: { adapter: 'canable' } });
    await waitFor(() => link.isOpen, 5000, 'link open');
    port.write('r1232AABB\rR123456783000000\r');
    await waitFor(() => events.length === 2, 3000, 'two RTR frames');
    expect(events.map(([n, d]) => [n, d.rtr, d.dlc, d.data])).toEqual([['123', true, 2, ''], ['12345678', true, 3, '']]);
  });
});

describe('slcan adapter dialects: acknowledging adapters', () => {
  for (const kind of ['usbtin', 'lawicel'] as const) {
    it(`auto finds ${kind}, awaits each setup command (C refused when closed is fine), polls F, counts z acks`, async () => {
      const { device, port, peer } = await setup((p) => ackingAdapter(p, kind));
      const { link, events } = startLink({ device, protocol: 'slcan', slcan: { status_interval_ms: 40 } });
      await waitFor(() => link.isOpen, 5000, 'link open');
      expect(peer.commands.slice(0, 6)).toEqual(['C', 'V', 'v', 'S6', 'Z1', 'O']);
      expect(link.info().stats).toMatchObject({ adapter: kind, adapter_version: kind === 'usbtin' ? 'V0100 v0107' : 'V1011' });
      await waitFor(() => peer.commands.includes('F'), 3000, 'a status poll');
      await waitFor(() => events.some(([n]) => n === 'status'), 3000, 'status event');
      link.send({ id: 0x321, data: 'cafe' });
      await waitFor(() => (link.info().stats.tx_acks as number) >= 1, 3000, 'the z ack counted');
      port.write('t1232AABB1234\r');
      await waitFor(() => events.some(([n]) => n === '123'), 3000, 'a timestamped frame');
      expect(events.find(([n]) => n === '123')![1]).toMatchObject({ timestamp: 0x1234 });
    });
  }

  it('timestamps off on an acknowledging adapter: Z0 (the setting is kept in EEPROM on a CANUSB)', async () => {
    const { device, peer } = await setup((p) => ackingAdapter(p, 'lawicel'));
    const { link } = startLink({ device, protocol: 'slcan', slcan: { adapter: 'lawicel', timestamps: false, listen_only: true } });
    await waitFor(() => link.isOpen, 5000, 'link open');
    expect(peer.commands.slice(0, 4)).toEqual(['C', 'S6', 'Z0', 'L']);
  });

  it('explicit lawicel on a stock CANable: the timeout says why and what to set', async () => {
    const { device } = await setup(stockCanable);
    const { link } = startLink({ device, protocol: 'slcan', request_timeout_ms: 200, slcan: { adapter: 'lawicel' } });
    await waitFor(() => /did not answer 'C' within 200 ms.*A stock CANable answers nothing: adapter auto or canable/.test(link.info().reason), 5000, 'the reason');
  });
});

describe('slcan adapter dialects: an adapter that answers nothing', () => {
  it('auto: three silent probes of probe_timeout_ms (the adapter may not be ready), then no-ack: only C, S and O, and it says so', async () => {
    const dir = tempDir(cleanup, 'slcan-dialects');
    const pty = await ptyPair(cleanup, dir);
    const port = await openPeer(cleanup, pty.peer);
    const commands: string[] = [];
    lines(port, (l) => commands.push(l));
    const started = Date.now();
    const { link, events, logger } = startLink({ device: pty.device, protocol: 'slcan', slcan: { probe_timeout_ms: 300 } });
    await waitFor(() => link.isOpen, 8000, 'link open');
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(3 * 290);
    expect(took).toBeLessThan(4000); // 3 probes + 2 reopen delays (50-200 ms)
    await waitFor(() => commands.length === 11, 3000, 'setup written');
    expect(commands).toEqual(['C', 'V', 'v', 'C', 'V', 'v', 'C', 'V', 'v', 'S6', 'O']);
    expect(link.info().stats).toMatchObject({ adapter: 'no-ack' });
    expect(link.info().stats.adapter_reason).toMatch(/nothing answered C, V or v within 300 ms/);
    expect(logger.matching(/<warn>.*nothing answered the slcan probe .*silent probe [12] of 3/)).toHaveLength(2);
    port.write('t1001FF\r');
    await waitFor(() => events.length === 1, 3000, 'a frame');
  });

  it('an adapter that was not ready for the probe (silent, then acknowledging) is probed again and set up in its own dialect', async () => {
    const dir = tempDir(cleanup, 'slcan-dialects');
    const pty = await ptyPair(cleanup, dir);
    const port = await openPeer(cleanup, pty.peer);
    let powered = false;
    const before: string[] = [];
    let peer: Peer | undefined;
    lines(port, (l) => { if (!powered) before.push(l); });
    const { link, logger } = startLink({ device: pty.device, protocol: 'slcan', slcan: { probe_timeout_ms: 100 }, reopen: { initial_delay_ms: 50, max_delay_ms: 100 } });
    await waitFor(() => link.isOpen && link.info().stats.adapter === 'no-ack', 5000, 'open as no-ack');
    await waitFor(() => before.length === 11, 3000, 'three probes and the no-ack setup');
    powered = true; // the adapter comes up (a CAN232 on ignition power): from now on it answers
    peer = ackingAdapter(port, 'lawicel');
    port.write('\r'); // it acknowledges the O it got while booting
    await waitFor(() => link.isOpen && link.info().stats.adapter === 'lawicel', 5000, 'reopened as lawicel');
    expect(peer.commands.slice(0, 6)).toEqual(['C', 'V', 'v', 'S6', 'Z1', 'O']);
    expect(logger.matching(/<warn>.*probing it again/)).toHaveLength(1);
  });
});
