/**
 * What reading a configuration takes (the YAML parser, the generated schema
 * validators, the semantic checks, the board files), as one module: the
 * commands get it through ./loader-module.ts, which in the bundled CLI
 * loads it from a file of its own and lets `run` drop it once the agent
 * has its configuration. It returns plain data only (the config, errors as
 * text and positions, the board), nothing that would keep its code alive.
 */
export { loadConfigFile, parseConfigText } from './load.js';
export { boardLoadOptions, heapWarning, selectBoard } from './board.js';
