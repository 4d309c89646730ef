/**
 * What an MQTT topic name may hold, as brokers enforce it. MQTT 5 §1.5.4 and
 * §4.7: UTF-8 well-formed, no U+0000, at most 65,535 bytes, no wildcard; the
 * control characters U+0001–U+001F and U+007F–U+009F and the noncharacters
 * are "SHOULD NOT" in the spec, but mosquitto treats them as a malformed
 * packet and drops the whole connection (the last will goes out, every
 * in-flight message is resent). So a topic the agent publishes to must pass
 * here before it reaches mqtt.js: one bad reply topic must not cost a
 * reconnection.
 */

/** MQTT topic names are at most 65535 bytes of UTF-8 (a u16 length prefix). */
export const MAX_TOPIC_BYTES = 65535;

/**
 * A UTF-16 unit that may stand in a topic as it is: printable, not a
 * surrogate (pairs are checked by the caller), not C1, not a noncharacter.
 * '+' and '#' are plain here: whether a wildcard is allowed is the caller's rule.
 */
export function isTopicUnit(c: number): boolean {
  if (c < 0x80) return c >= 0x20 && c !== 0x7f;
  return (c >= 0xa0 && c < 0xd800) || (c > 0xdfff && c < 0xfdd0) || (c > 0xfdef && c < 0xfffe);
}

/** A problem of the text at `i` (a wildcard, a control, a lone surrogate...), and how many units it spans. */
export function topicCharProblem(text: string, i: number): { problem: string | null; units: 1 | 2 } {
  const c = text.charCodeAt(i);
  if (c === 0x2b || c === 0x23) return { problem: `'${text[i]}' is a wildcard, not allowed in a topic name`, units: 1 };
  if (isTopicUnit(c)) return { problem: null, units: 1 };
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) {
      const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
      // U+1FFFE, U+1FFFF ... U+10FFFF are noncharacters too
      if ((cp & 0xfffe) !== 0xfffe) return { problem: null, units: 2 };
      return { problem: `character U+${cp.toString(16).toUpperCase()} (a noncharacter) is not allowed in a topic name`, units: 2 };
    }
  }
  const what = c >= 0xd800 && c <= 0xdfff ? 'an unpaired surrogate: not well-formed UTF-8'
    : c === 0 ? 'NUL' : c < 0xa0 ? 'a control character' : 'a noncharacter';
  return { problem: `character U+${c.toString(16).toUpperCase().padStart(4, '0')} (${what}) is not allowed in a topic name`, units: 1 };
}

/** Why `topic` cannot be published to (the rules above), or null when it can. */
export function mqttTopicProblem(topic: string): string | null {
  if (topic.length === 0) return 'the topic is empty';
  // A UTF-16 unit is at most 3 bytes of UTF-8: only long strings need counting.
  if (topic.length * 3 > MAX_TOPIC_BYTES && Buffer.byteLength(topic) > MAX_TOPIC_BYTES) return `the topic is longer than ${MAX_TOPIC_BYTES} bytes of UTF-8`;
  for (let i = 0; i < topic.length;) {
    const c = topic.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x2b && c !== 0x23) { i++; continue; } // the usual case, inline
    const { problem, units } = topicCharProblem(topic, i);
    if (problem !== null) return `${problem} (at offset ${i})`;
    i += units;
  }
  return null;
}

/**
 * For a topic a remote client chose (a command's reply topic): the rules
 * above, and no leading '$' (reserved for the broker: $SYS...). The
 * agent's own topics come from its config, which may use a '$' prefix.
 */
export function topicNameProblem(topic: string): string | null {
  if (topic.charCodeAt(0) === 0x24) return "a topic starting with '$' is reserved for the broker";
  return mqttTopicProblem(topic);
}
