/**
 * The reload worker's script (see ./load-in-worker.ts): loads and checks
 * the config file named in workerData, the files it names included, as the
 * agent would, and posts back the result and the parse-cache entry of its
 * text. Runs in a worker thread so that a large or hostile file never
 * holds up the agent's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { applyBoard, type Board } from './board.js';
import { loadConfigFile } from './load.js';
import { cacheEntry, type CacheEntry, type ParseCacheLike } from './parse-cache.js';

export interface CheckRequest {
  file: string;
  board?: Board;
}

let entry: CacheEntry | undefined;
// records what the parser gave, for the agent's own parse cache: the worker has none to look into
const recorder: ParseCacheLike = {
  lookup: () => undefined,
  remember: (text, schema, data) => { entry = cacheEntry(text, schema, data); },
};

const { file, board } = workerData as CheckRequest;
const result = loadConfigFile(file, {
  ...(board !== undefined ? { transform: (data: Record<string, unknown>) => applyBoard(board, data) } : {}),
  parseCache: recorder,
  files: 'agent',
});
parentPort!.postMessage({ result, entry });
