/**
 * The one-file bundle bin/afb-edge prefers (scripts/bundle.mjs) behaves as
 * the compiled modules do: same answers, the native addon and the boards
 * found from its location.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { cliMain, ensureBuilt, projectRoot } from '../helpers/cli.js';

const bundle = join(projectRoot, 'dist/src/cli/afb-edge.bundle.cjs');
const example = join(projectRoot, 'config/afb-edge.example.yaml');
const run = (entry: string, args: string[]) => spawnSync(process.execPath, [entry, ...args], { encoding: 'utf8' });

beforeAll(() => ensureBuilt());

it('the build made the bundle, and it answers as main.js does', () => {
  expect(existsSync(bundle)).toBe(true);
  for (const args of [['--version'], ['check-config', example], ['check-config', example, '--board', 'rcar-h3'], ['call'], ['call', 'unix:@afb-edge-bundle-test-nobody-listens', 'ping'],
    ['ecu-sim', '--protocol', 'ndjson', '--device', '/nonexistent/afb-edge-bundle-test']]) {
    const a = run(cliMain, args);
    const b = run(bundle, args);
    expect({ status: b.status, stdout: b.stdout, stderr: b.stderr }, args.join(' ')).toEqual({ status: a.status, stdout: a.stdout, stderr: a.stderr });
  }
});

it('bin/afb-edge runs the bundle (through dist/src/cli/launch.cjs)', () => {
  // A preload that lists, at exit, the CommonJS files the process loaded.
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-bundle-test-'));
  try {
    const preload = join(dir, 'loaded.cjs');
    writeFileSync(preload, "process.on('exit', () => process.stdout.write('\\nLOADED ' + Object.keys(require.cache).join(' ')));\n");
    const r = spawnSync(join(projectRoot, 'bin/afb-edge'), ['--version'], { encoding: 'utf8', env: { ...process.env, AFB_EDGE_NODE_FLAGS: `--require ${preload}` } });
    expect(r.status).toBe(0);
    const loaded = /LOADED (.*)/.exec(r.stdout)?.[1]?.split(' ') ?? [];
    expect(loaded.some((f) => f.endsWith('dist/src/cli/launch.cjs'))).toBe(true);
    expect(loaded.some((f) => f.endsWith('dist/src/cli/afb-edge.bundle.cjs'))).toBe(true);
    expect(loaded.some((f) => f.endsWith('dist/src/cli/main.js'))).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('is ASCII: dist/src/cli/launch.cjs reads it as latin1', () => {
  const bytes = readFileSync(bundle);
  expect(bytes.findIndex((b) => b > 0x7f)).toBe(-1);
});

it("mqtt.js's debug logging still works in the bundle with $DEBUG, and is silent without", () => {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-bundle-test-'));
  try {
    const config = join(dir, 'agent.yaml');
    writeFileSync(config, `device: { id: debug-test }\nmqtt: { url: "mqtt://127.0.0.1:9" }\noutbox: { path: ${join(dir, 'outbox.db')} }\nbinders: []\nroutes: []\n`);
    // 2 s: ready, and a first connection attempt refused (port 9), then SIGTERM.
    const agent = (env: NodeJS.ProcessEnv) => spawnSync(join(projectRoot, 'bin/afb-edge'), ['run', '--config', config], { encoding: 'utf8', timeout: 2000, killSignal: 'SIGTERM', env });
    const base = { ...process.env };
    delete base.DEBUG;
    delete base.NOTIFY_SOCKET;
    const quiet = agent(base);
    expect(quiet.stderr).toMatch(/ready in/);
    expect(quiet.stderr).not.toMatch(/mqttjs/);
    const verbose = agent({ ...base, DEBUG: 'mqttjs:client' });
    expect(verbose.stderr).toMatch(/ready in/);
    expect(verbose.stderr).toMatch(/mqttjs:client/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it("the reload worker's own bundle (beside the CLI's, where the bundled agent starts it) checks a file as the compiled worker does", () => {
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-bundle-test-'));
  try {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'device: {id: a}\nmqtt: {url: "mqtt://h:1", password_file: /dev/zero, bogus_key: 1}\nbinders: []\nroutes: []\n');
    const check = (script: string, file: string) => {
      const code = `const { Worker } = require('node:worker_threads');
new Worker(${JSON.stringify(script)}, { workerData: { file: ${JSON.stringify(file)} } }).once('message', (m) => process.stdout.write(JSON.stringify(m)));`;
      const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as { result: { config?: unknown; errors: unknown[] }; entry?: unknown };
    };
    const bundled = join(projectRoot, 'dist/src/cli/config-check-worker.bundle.cjs');
    const compiled = join(projectRoot, 'dist/src/config/check-worker.js');
    for (const file of [example, bad]) expect(check(bundled, file), file).toEqual(check(compiled, file));
    const r = check(bundled, bad).result;
    expect(r.errors.map((e) => (e as { path: string }).path)).toEqual(['mqtt.password_file', 'mqtt.bogus_key']);
    expect(check(bundled, example).result.config).toBeDefined();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it("mqtt.js in the bundle uses Node's own streams, not readable-stream's copy of them", () => {
  const text = readFileSync(bundle, 'latin1');
  // esbuild keys each bundled CommonJS module by its path.
  expect(text).toContain('node_modules/mqtt/build/lib/client.js');
  expect(text).not.toContain('node_modules/readable-stream/');
  expect(text).toContain('require("node:stream")');
});

it("mqtt-packet's parser in the bundle keeps its bytes in PacketBytes, not in bl", () => {
  const text = readFileSync(bundle, 'latin1');
  expect(text).toContain('node_modules/mqtt-packet/parser.js');
  expect(text).toContain('scripts/bundle-shims/bl.cjs');
  expect(text).toContain('PacketBytes=class');
  expect(text).not.toContain('node_modules/bl/');
});

it("the config loader is a bundle of its own: the CLI's holds no YAML parser, no validators, and check-config works from it", () => {
  const text = readFileSync(bundle, 'latin1');
  const loader = readFileSync(join(projectRoot, 'dist/src/cli/config-loader.bundle.cjs'), 'latin1');
  // yaml (CommonJS) is keyed by its path; the validators by their schemas' ids and messages.
  for (const m of ['node_modules/yaml/', '$id:"https://afb-edge/config.s', 'must NOT have additional properties']) {
    expect(text, m).not.toContain(m);
    expect(loader, m).toContain(m);
  }
  expect(text).toContain('"./config-loader.bundle.cjs"'); // loaded by path (src/config/loader-module.ts)
  const dir = mkdtempSync(join(tmpdir(), 'afb-edge-loader-bundle-'));
  try {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'device: { id: x }\nmqtt: { url: "mqtt://127.0.0.1:1883" }\nroutes: [ { name: r, match: ["a/b"], qos: 3 } ]\n');
    const r = spawnSync(join(projectRoot, 'bin/afb-edge'), ['check-config', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:3:\d+: .*qos/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
