/**
 * Which topics a command may name for its reply. Any valid topic name,
 * except the topics the agent publishes itself: a `reply_to` (or MQTT 5
 * Response Topic) naming the device's status, health or event topics would
 * make the agent forge its own telemetry for whoever may send commands (a
 * confused deputy: the broker's ACL lets the agent publish there, not the
 * sender), and one under the command topic would feed the reply back in as
 * a new command. Replies below the reply base are always allowed.
 */
import { topicNameProblem } from '../../core/topic-name.js';

export type ReplyTopicCheck = (topic: string) => string | null;

/**
 * `own`: topics and topic prefixes the agent publishes under (a prefix
 * covers itself and everything below it); `replyBase`: the default reply
 * topic base, always allowed.
 */
export function replyTopicCheck(own: readonly string[], replyBase: string): ReplyTopicCheck {
  const owned = own.filter((t) => t !== '');
  return (topic) => {
    const problem = topicNameProblem(topic);
    if (problem !== null) return problem;
    if (topic === replyBase || topic.startsWith(replyBase + '/')) return null;
    const hit = owned.find((o) => topic === o || topic.startsWith(o + '/'));
    return hit === undefined ? null : `'${hit}' is one of the agent's own topics (replies may go anywhere else, or under '${replyBase}/')`;
  };
}

/**
 * The literal levels a topic template starts with, once {prefix} and
 * {device} are filled in: `fleet/car-1/events/{api}/{event}` → `fleet/car-1/events`;
 * '' when it starts with a placeholder (nothing can be protected then).
 */
export function literalTopicPrefix(filled: string): string {
  const brace = filled.indexOf('{');
  if (brace < 0) return filled;
  const slash = filled.lastIndexOf('/', brace);
  return slash < 0 ? '' : filled.slice(0, slash);
}
