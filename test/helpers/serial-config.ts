/** Serial link configs with the schema's defaults, for link and agent tests. */
import { parseConfigText } from '../../src/config/load.js';
import type { AgentConfig, SerialLinkConfig } from '../../src/config/types.js';

/** A complete agent config from a partial one, defaults applied by the real loader (fails on an invalid one). */
export function agentConfig(partial: Record<string, unknown>): AgentConfig {
  const text = JSON.stringify({ device: { id: 'car-042' }, mqtt: { url: 'mqtt://127.0.0.1:1' }, binders: [], routes: [], ...partial });
  const r = parseConfigText(text, 'test.json');
  if (r.config === undefined) throw new Error(`invalid test config: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  return r.config;
}

/** One link's config, defaults applied; `over` is what the YAML would say. */
export function linkConfig(over: Record<string, unknown> & { device: string; protocol: string }): SerialLinkConfig {
  return agentConfig({ serial: { links: [{ name: 'ecu0', reopen: { initial_delay_ms: 50, max_delay_ms: 200 }, ...over }] } }).serial.links[0]!;
}
