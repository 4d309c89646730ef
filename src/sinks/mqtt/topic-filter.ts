/** MQTT topic filter matching (MQTT 3.1.1 §4.7 / 5.0 §4.7), for dispatching received messages. */
export function topicMatches(filter: string, topic: string): boolean {
  // A filter starting with a wildcard never matches a '$' topic ($SYS...).
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!;
    if (level === '#') return true; // also matches the parent level ("a/#" matches "a")
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
