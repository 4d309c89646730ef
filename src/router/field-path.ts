/**
 * Dot paths into event data ({data.a.b} in topics, deadband `field`).
 * Only own properties are followed: a path such as `constructor.name` or
 * `__proto__` must not reach into the prototype of the untrusted data.
 * Array elements are reached by index (`values.0`).
 */

/** Returns a getter for the value at `path` ('' = the data itself); undefined when absent. */
export function compileFieldPath(path: string): (data: unknown) => unknown {
  if (path === '') return (data) => data;
  const keys = path.split('.');
  if (keys.some((k) => k === '')) throw new Error(`field path "${path}" has an empty name`);
  if (keys.length === 1) {
    const k = keys[0]!;
    return (data) => (data !== null && typeof data === 'object' && Object.hasOwn(data, k) ? (data as Record<string, unknown>)[k] : undefined);
  }
  return (data) => {
    let v = data;
    for (const k of keys) {
      if (v === null || typeof v !== 'object' || !Object.hasOwn(v, k)) return undefined;
      v = (v as Record<string, unknown>)[k];
    }
    return v;
  };
}
