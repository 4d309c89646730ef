/** Shared fixtures of the config tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseConfigText, type ConfigError } from '../../src/config/load.js';

/**
 * The smallest valid file. Its lines (1-based), which tests rely on:
 * 1 device, 2 id, 3 mqtt, 4 url, 5 binders, 6 - name, 7 spec, 8 routes, 9 - name, 10 match
 */
export const BASE = `device:
  id: car-1
mqtt:
  url: mqtt://localhost:1883
binders:
  - name: vehicle
    spec: unix:/run/platform/apis/ws/vehicle
routes:
  - name: speed
    match: [vehicle/speed]
`;

export function errorsOf(text: string, fileName = 'afb-edge.yaml'): ConfigError[] {
  const r = parseConfigText(text, fileName);
  expect(r.config === undefined).toBe(r.errors.length > 0);
  return r.errors;
}

/** The single error at `path` (fails when there is none, or several). */
export function errorAt(text: string, path: string): ConfigError {
  const all = errorsOf(text);
  const found = all.filter((e) => e.path === path);
  expect(found, `errors at ${path} among ${JSON.stringify(all, null, 1)}`).toHaveLength(1);
  return found[0]!;
}

export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-config-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
