/** The event router: routes (globs, topic templates, filters, payloads). See ./README.md. */
export { EventRouter, type RouterContext } from './event-router.js';
export {
  topicLevelEscape, topicLevelUnescape, TopicTemplate, MAX_TOPIC_BYTES, TOPIC_FIELD_MISSING, TOPIC_TOO_LONG,
  type TopicContext, type TopicFailure,
} from './topic-template.js';
export { compileMatch, GLOB_OPTIONS } from './match.js';
export { FilterChain, DEFAULT_MAX_TOPICS, DEFAULT_MAX_CHARS, type FilterChainLimits } from './filter-chain.js';
export { TokenBucket, ChangeOnly, Deadband, Sampler, TopicState, type TopicFilter, type FilterName } from './filters.js';
export { dataJson, envelopeJson, jsonString, makePayload } from './payload.js';
export { jsonEqual } from './json-equal.js';
export { compileFieldPath } from './field-path.js';
