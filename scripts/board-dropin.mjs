#!/usr/bin/env node
// Writes the systemd drop-in of a board profile: the environment that makes
// bin/afb-edge start node with the board's heap flags (AFB_EDGE_NODE_FLAGS),
// the board the agent applies (AFB_EDGE_BOARD) and the suggested memory
// limits (MemoryHigh=, MemoryMax=). Heap flags only act when node starts, so
// they are set before the launcher runs rather than read by the agent.
//
//   node scripts/board-dropin.mjs NAME             the drop-in on stdout
//   node scripts/board-dropin.mjs --all --out DIR  DIR/50-board-NAME.conf for every board
//
// Boards come from boards/ (or $AFB_EDGE_BOARDS_DIR). Needs the built
// dist/ (npm run build); the Yocto recipe runs it after compiling.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { boardsDir, listBoards, loadBoard, systemdDropIn } from '../dist/src/config/board.js';
import { formatConfigError } from '../dist/src/config/errors.js';

const { values, positionals } = parseArgs({
  options: { all: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  allowPositionals: true,
});
if (values.help || (values.all ? positionals.length > 0 || values.out === undefined : positionals.length !== 1)) {
  process.stderr.write('usage: board-dropin.mjs NAME | board-dropin.mjs --all --out DIR\n');
  process.exit(values.help ? 0 : 2);
}

const dir = boardsDir();
const names = values.all ? listBoards(dir) : positionals;
let failed = false;
for (const name of names) {
  const loaded = loadBoard(name, dir);
  if (loaded.kind === 'unknown') {
    process.stderr.write(`board-dropin: unknown board '${name}' (known: ${loaded.known.join(', ') || 'none'} in ${loaded.dir})\n`);
    process.exit(2);
  }
  if (loaded.kind === 'invalid') {
    for (const e of loaded.errors) process.stderr.write(formatConfigError(e, loaded.file) + '\n');
    failed = true;
    continue;
  }
  const text = systemdDropIn(loaded.board);
  if (values.all) {
    mkdirSync(values.out, { recursive: true });
    writeFileSync(join(values.out, `50-board-${name}.conf`), text);
  } else {
    process.stdout.write(text);
  }
}
if (values.all && names.length === 0) {
  process.stderr.write(`board-dropin: no boards in ${dir}\n`);
  failed = true;
}
process.exit(failed ? 1 : 0);
