/**
 * Stands in for `lru-cache` inside the agent's bundle (scripts/bundle.mjs).
 * mqtt.js requires it when it loads, for MQTT 5 topic aliases, but uses it
 * only when a broker grants topic aliases and the client asked for them.
 * lru-cache, as it loads, reads the `performance` and `AbortController`
 * globals, which makes Node load perf_hooks and its dependencies: ~85-120 ms
 * of start-up in the emulated arm64 guest. Here it loads on first use of
 * LRUCache.
 */
'use strict';

let real = null;
Object.defineProperty(exports, 'LRUCache', { enumerable: true, get: () => (real ??= require('lru-cache')).LRUCache });
