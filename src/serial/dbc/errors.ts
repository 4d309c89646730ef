/** A DBC file that cannot be read: names the file, line and column (1-based) as compilers do. */
export class DbcSyntaxError extends Error {
  constructor(readonly file: string, readonly line: number, readonly column: number, readonly reason: string) {
    super(`${file}:${line}:${column}: ${reason}`);
    this.name = 'DbcSyntaxError';
  }
}
