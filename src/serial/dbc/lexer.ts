/**
 * Tokens of a DBC file, produced on demand (the file is never held as a
 * token array). The token classes are those of the DBC grammar as cantools
 * reads it:
 * - whitespace (space, tab, CR, LF) and `//` comments to the end of the line are skipped;
 * - NUMBER: `[-+]?digits[.digits][e[-+]digits]` (the sign is part of the
 *   number: `SG_MUL_VAL_ … 2-5` is the two numbers `2` and `-5`);
 * - WORD: `[A-Za-z0-9_]+` (a number directly followed by letters is one word: `0x7FF`, `1stGear`);
 * - STRING: `"…"`, where `\"` stands for a quote; it may span lines;
 * - punctuation `( ) [ ] , @ ; : |` and the signs `+ -` alone.
 * Anything else is a syntax error at its line and column.
 */
import { DbcSyntaxError } from './errors.js';

export const enum Tok {
  Word,
  Number,
  String,
  Punct,
  End,
}

export interface Token {
  kind: Tok;
  /** The text: the word, the number as written, the unescaped string, the punctuation character. */
  text: string;
  line: number;
  col: number;
  /** The token is the first on its line (statement keywords start lines; used to resynchronise after a skipped statement). */
  lineStart: boolean;
}

/** Longest number token accepted: beyond, a hostile file could make number parsing slow for nothing. */
export const MAX_NUMBER_CHARS = 100;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isWordChar = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const PUNCT = new Set(['(', ')', '[', ']', ',', '@', ';', ':', '|', '+', '-']);

export class Lexer {
  private pos = 0;
  private line = 1;
  private lineStartPos = 0;
  /** Whether a newline was crossed since the last token (or nothing read yet). */
  private newLine = true;
  private readonly ahead: Token[] = [];

  constructor(private readonly text: string, readonly file: string) {
    if (text.charCodeAt(0) === 0xfeff) this.pos = 1;
    // A UTF-8 byte-order mark read as cp1252.
    else if (text.startsWith('\u00ef\u00bb\u00bf')) this.pos = 3;
    this.lineStartPos = this.pos;
  }

  peek(k = 0): Token {
    while (this.ahead.length <= k) this.ahead.push(this.scan());
    return this.ahead[k]!;
  }

  next(): Token {
    return this.ahead.length > 0 ? this.ahead.shift()! : this.scan();
  }

  error(at: { line: number; col: number }, message: string): DbcSyntaxError {
    return new DbcSyntaxError(this.file, at.line, at.col, message);
  }

  private scan(): Token {
    const s = this.text;
    const n = s.length;
    let i = this.pos;
    for (;;) {
      if (i >= n) break;
      const c = s.charCodeAt(i);
      if (c === 10) {
        i++;
        this.line++;
        this.lineStartPos = i;
        this.newLine = true;
      } else if (c === 32 || c === 9 || c === 13) {
        i++;
      } else if (c === 47 && s.charCodeAt(i + 1) === 47) {
        const nl = s.indexOf('\n', i);
        i = nl < 0 ? n : nl;
      } else break;
    }
    const line = this.line;
    const col = i - this.lineStartPos + 1;
    const lineStart = this.newLine;
    this.newLine = false;
    if (i >= n) {
      this.pos = i;
      return { kind: Tok.End, text: '', line, col, lineStart: true };
    }
    const c = s.charCodeAt(i);
    const start = i;
    if (c === 34) return this.scanString(i, line, col, lineStart);
    const signed = (c === 43 || c === 45) && isDigit(s.charCodeAt(i + 1));
    if (isDigit(c) || signed) {
      i = start + (signed ? 1 : 0);
      while (i < n && isDigit(s.charCodeAt(i))) i++;
      if (s.charCodeAt(i) === 46) {
        i++;
        while (i < n && isDigit(s.charCodeAt(i))) i++;
      }
      const e = s.charCodeAt(i);
      if (e === 101 || e === 69) {
        let j = i + 1;
        const sign = s.charCodeAt(j);
        if (sign === 43 || sign === 45) j++;
        if (isDigit(s.charCodeAt(j))) {
          while (j < n && isDigit(s.charCodeAt(j))) j++;
          i = j;
        }
      }
      if (!signed && s.charCodeAt(i - 1) !== 46 && isWordChar(s.charCodeAt(i))) {
        // `0x7FF`, `1stGear`: a word (which the grammar then refuses where it wants a number).
        while (i < n && isWordChar(s.charCodeAt(i))) i++;
        return this.token(Tok.Word, start, i, line, col, lineStart);
      }
      if (i - start > MAX_NUMBER_CHARS) throw this.error({ line, col }, `number of ${i - start} characters (at most ${MAX_NUMBER_CHARS})`);
      return this.token(Tok.Number, start, i, line, col, lineStart);
    }
    if (isWordChar(c)) {
      while (i < n && isWordChar(s.charCodeAt(i))) i++;
      return this.token(Tok.Word, start, i, line, col, lineStart);
    }
    const ch = s[i]!;
    if (PUNCT.has(ch)) return this.token(Tok.Punct, start, i + 1, line, col, lineStart);
    throw this.error({ line, col }, `unexpected character ${describeChar(c)}`);
  }

  private token(kind: Tok, start: number, end: number, line: number, col: number, lineStart: boolean): Token {
    this.pos = end;
    return { kind, text: this.text.slice(start, end), line, col, lineStart };
  }

  private scanString(open: number, line: number, col: number, lineStart: boolean): Token {
    const s = this.text;
    let i = open + 1;
    let escaped = false;
    for (;;) {
      const q = s.indexOf('"', i);
      if (q < 0) throw this.error({ line, col }, 'string not closed (no " before the end of the file)');
      // `\"` is a quote inside the string: as in cantools' rule `"(\\"|[^"])*?"`, a quote
      // preceded by a backslash never closes it (even after another backslash).
      if (q - 1 > open && s.charCodeAt(q - 1) === 92) {
        escaped = true;
        i = q + 1;
        continue;
      }
      const body = s.slice(open + 1, q);
      this.countLines(open, q);
      this.pos = q + 1;
      return { kind: Tok.String, text: escaped ? body.replace(/\\"/g, '"') : body, line, col, lineStart };
    }
  }

  /** Keeps line numbers right after a string that spans lines. */
  private countLines(from: number, to: number): void {
    let nl = this.text.indexOf('\n', from);
    while (nl >= 0 && nl < to) {
      this.line++;
      this.lineStartPos = nl + 1;
      nl = this.text.indexOf('\n', nl + 1);
    }
  }
}

function describeChar(c: number): string {
  const hex = 'U+' + c.toString(16).toUpperCase().padStart(4, '0');
  return c >= 0x21 && c < 0x7f ? `'${String.fromCharCode(c)}'` : hex;
}
