/**
 * Where the agent keeps its start-up caches (the V8 code cache of
 * dist/src/cli/launch.cjs, the parsed config of src/config/parse-cache.ts):
 * $AFB_EDGE_CODE_CACHE, else the first directory of systemd's
 * $CACHE_DIRECTORY (the unit's CacheDirectory=afb-edge), else none.
 * launch.cjs applies the same rule itself: it runs before the bundle and
 * loads nothing from it.
 */
export function startupCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = env.AFB_EDGE_CODE_CACHE || env.CACHE_DIRECTORY?.split(':')[0];
  return dir ? dir : undefined;
}
