/**
 * Bounds on what a config (or board) file may be, so that a hostile or
 * broken file costs a bounded time and memory to refuse: docs/config.md
 * ("Limits") documents each. A real configuration is a few KiB, a few
 * hundred YAML items, under ten levels deep.
 */

/** Refused before reading further: the YAML parser needs ~250 bytes of memory per item. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * YAML items (keys, values, list entries, separators: the lexer's tokens
 * other than spaces and comments), counted by a lexer pass before the
 * parser builds its tree. A 1 MiB flow list of `1,` holds ~1 M of them
 * and took > 250 MB to parse; 100,000 take ~30 MB and well under a second.
 * Only files of at least this many characters are counted (each item is
 * one character at least).
 */
export const MAX_YAML_ITEMS = 100_000;

/** Levels of nested mappings and lists, the document's own included. */
export const MAX_DEPTH = 64;

/** Errors reported per file: a hostile file can have one per key; the rest are counted. */
export const MAX_REPORTED_ERRORS = 100;

/** Characters of a key or value shown in a message (the rest is summarised). */
export const MAX_SHOWN_CHARS = 40;
