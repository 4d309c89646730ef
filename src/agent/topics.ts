/**
 * Resolves the agent's own topic templates ({prefix}, {device} only: both are
 * validated by the config, never untrusted input). Event topics, which carry
 * untrusted names, are built by the router's escaping templates instead.
 */
export function resolveBaseTopic(template: string, vars: { prefix: string; device: string }): string {
  return template.replace(/\{(prefix|device)\}/g, (_, k: 'prefix' | 'device') => vars[k]);
}
