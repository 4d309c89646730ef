/** candump log lines and can-utils frame syntax (lib.c parse_canframe), as the CLI reads them. */
import { describe, expect, it } from 'vitest';
import { parseCanFrame, parseLogLine, type LogLine } from '../../src/serial/candump-log.js';

const hex = (f: LogLine): unknown => ('data' in f ? { ...f, data: f.data.toString('hex') } : f);

describe('can-utils frame syntax', () => {
  it('reads standard, extended, dotted, raw-DLC, RTR, CAN FD and error frames', () => {
    expect(hex(parseCanFrame('123#DEADBEEF'))).toEqual({ kind: 'frame', id: 0x123, extended: false, rtr: false, fd: false, data: 'deadbeef' });
    expect(hex(parseCanFrame('1F334455#11.22.33'))).toEqual({ kind: 'frame', id: 0x1f334455, extended: true, rtr: false, fd: false, data: '112233' });
    expect(hex(parseCanFrame('123#1122334455667788_E'))).toMatchObject({ kind: 'frame', data: '1122334455667788' });
    expect(hex(parseCanFrame('123#'))).toMatchObject({ kind: 'frame', data: '' });
    expect(hex(parseCanFrame('123#R'))).toMatchObject({ kind: 'frame', rtr: true, data: '' });
    expect(hex(parseCanFrame('00000123#R7'))).toMatchObject({ kind: 'frame', id: 0x123, extended: true, rtr: true });
    expect(hex(parseCanFrame('213##311223344'))).toEqual({ kind: 'frame', id: 0x213, extended: false, rtr: false, fd: true, data: '11223344' });
    expect(hex(parseCanFrame(`1ABCDEF0##0${'ab'.repeat(64)}`))).toMatchObject({ kind: 'frame', fd: true, extended: true });
    expect(hex(parseCanFrame('20000080#0000000000000000'))).toEqual({ kind: 'error-frame', id: 0x80, data: '0000000000000000' });
  });

  it('refuses what can-utils refuses, saying why', () => {
    expect(parseCanFrame('12#00')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('3 (standard) or 8 (extended) hex digits') });
    expect(parseCanFrame('123#123')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('pairs of hex digits') });
    expect(parseCanFrame('123#112233445566778899')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('more than 8 data bytes') });
    expect(parseCanFrame(`123##0${'00'.repeat(65)}`)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('more than 64 data bytes') });
    expect(parseCanFrame('123##')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('one hex digit of flags') });
    expect(parseCanFrame('123#R9')).toMatchObject({ kind: 'invalid' });
    expect(parseCanFrame('XYZ#00')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('not hex') });
  });
});

describe('log lines', () => {
  it('reads candump -l lines (timestamp, interface, frame, optional flags), JSON lines, and skips DROPCOUNT and blank lines', () => {
    expect(hex(parseLogLine('(1700000000.123456) can0 18FEF100#00C8'))).toMatchObject({ kind: 'frame', id: 0x18fef100, extended: true, timestamp: 1700000000.123456, iface: 'can0', data: '00c8' });
    expect(parseLogLine('(0000000001.000000) vcan1 123#11 R')).toMatchObject({ kind: 'frame', iface: 'vcan1' });
    expect(parseLogLine("DROPCOUNT: dropped 1 CAN frame on 'can0' socket (total drops 1)")).toEqual({ kind: 'blank' });
    expect(parseLogLine('  ')).toEqual({ kind: 'blank' });
    expect(hex(parseLogLine('{"id":291,"extended":false,"data":"0102"}'))).toMatchObject({ kind: 'frame', id: 291, data: '0102' });
    expect(parseLogLine('{"id":291,"data":"0"}')).toMatchObject({ kind: 'invalid' });
    expect(parseLogLine('{nope')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('invalid JSON') });
    expect(parseLogLine('can0 123 [2] 11 22')).toMatchObject({ kind: 'invalid' });
  });
});
