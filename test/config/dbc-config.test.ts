/**
 * `serial.links[].dbc`: DBC files read and compiled when the config loads,
 * relative paths taken from the config file's folder, syntax errors placed
 * at the entry with the DBC's own file:line:column, a CAN id in both the
 * YAML map and a DBC refused naming both, routes naming DBC messages and
 * signals checked against the file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/config/load.js';
import { BASE, tempDir } from './helpers.js';

const DBC = `BO_ 2566844926 TC1: 8 TCU
 SG_ Gear : 0|4@1+ (1,0) [0|7] "" Vector__XXX
 SG_ OilTemp : 8|8@1- (1,-40) [-40|150] "degC" Vector__XXX
VAL_ 2566844926 Gear 15 "Invalid" ;
`;

let remove: (() => void) | undefined;
afterEach(() => remove?.());

function setup(files: Record<string, string>): string {
  const t = tempDir();
  remove = t.remove;
  for (const [name, text] of Object.entries(files)) writeFileSync(join(t.dir, name), text);
  return t.dir;
}

const link = (extra: string): string => `${BASE}serial:
  links:
    - name: gearbox
      device: /dev/ttyACM0
      protocol: slcan
${extra}`;

describe('config: serial.links[].dbc', () => {
  it('loads DBC files relative to the config file, and gives the link absolute paths', () => {
    const dir = setup({ 'tc.dbc': DBC, 'afb-edge.yaml': link('      dbc: [tc.dbc]\n') });
    const r = loadConfigFile(join(dir, 'afb-edge.yaml'));
    expect(r.errors).toEqual([]);
    expect(r.config!.serial.links[0]!.dbc).toEqual([join(dir, 'tc.dbc')]);
  });

  it('reports a DBC syntax error at the entry, with the DBC file, line and column', () => {
    const dir = setup({ 'tc.dbc': DBC.replace('(1,-40)', '(1;-40)'), 'afb-edge.yaml': link('      dbc: [tc.dbc]\n') });
    const r = loadConfigFile(join(dir, 'afb-edge.yaml'));
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ path: 'serial.links[0].dbc[0]', line: 16, message: `${join(dir, 'tc.dbc')}:3:25: signal OilTemp: expected ',' between factor and offset, found ';'` });
  });

  it('reports a missing file; a DBC fits slcan and JSON links (CAN gateways), not raw COBS', () => {
    const dir = setup({ 'afb-edge.yaml': link('      dbc: [nope.dbc]\n') });
    expect(loadConfigFile(join(dir, 'afb-edge.yaml')).errors[0]).toMatchObject({ path: 'serial.links[0].dbc[0]', message: `${join(dir, 'nope.dbc')}: cannot read: no such file` });
    const dir2 = setup({ 'tc.dbc': DBC, 'afb-edge.yaml': link('      dbc: [tc.dbc]\n').replace('protocol: slcan', 'protocol: ndjson') });
    expect(loadConfigFile(join(dir2, 'afb-edge.yaml')).errors).toEqual([]);
    const dir3 = setup({ 'tc.dbc': DBC, 'afb-edge.yaml': link('      dbc: [tc.dbc]\n      cobs: { payload: raw }\n').replace('protocol: slcan', 'protocol: cobs') });
    expect(loadConfigFile(join(dir3, 'afb-edge.yaml')).errors[0]).toMatchObject({ path: 'serial.links[0].dbc', message: expect.stringContaining('not cobs payload raw') });
  });

  it('refuses a CAN id defined both in the YAML messages and in a DBC, naming both', () => {
    const yaml = link('      dbc: [tc.dbc]\n      messages:\n        - { id: 0x18FEF1FE, extended: true, name: Gearbox, signals: [] }\n');
    const dir = setup({ 'tc.dbc': DBC, 'afb-edge.yaml': yaml });
    const errors = loadConfigFile(join(dir, 'afb-edge.yaml')).errors;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ path: 'serial.links[0].dbc', message: 'CAN id 0x18FEF1FE (extended) is defined twice: messages[0] Gearbox and tc.dbc:1 TC1' });
  });

  it('checks routes to a link against the DBC messages and signals', () => {
    const routes = `  - name: to-tcu
    match: [vehicle/gear]
    link: { name: gearbox, message: TC1, values: { Gear: value, OilTmp: temp } }
`;
    const yaml = link('      dbc: [tc.dbc]\n').replace('    match: [vehicle/speed]\n', `    match: [vehicle/speed]\n${routes}`);
    const dir = setup({ 'tc.dbc': DBC, 'afb-edge.yaml': yaml });
    const errors = loadConfigFile(join(dir, 'afb-edge.yaml')).errors;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ path: 'routes[1].link.values.OilTmp', message: "message 'TC1' has no signal 'OilTmp'", hint: 'signals are: Gear, OilTemp' });
  });
});
