/**
 * The config validator is generated from the schema at development time
 * (scripts/gen-config-validator.mjs) and committed: a schema edit without
 * regenerating must fail here, not ship a validator of the old schema.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { ensureBuilt, projectRoot } from '../helpers/cli.js';

beforeAll(() => ensureBuilt());

it('src/config/generated/config-validator.ts is what the current schema gives', () => {
  const r = spawnSync(process.execPath, [join(projectRoot, 'scripts/gen-config-validator.mjs'), '--check'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});
