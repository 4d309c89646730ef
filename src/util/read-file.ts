/**
 * Reads a file the agent is configured with (its config, a board profile,
 * a secret) without trusting what the path designates: only a regular
 * file, and at most `maxBytes` of it.
 *
 * Why not readFileSync: on /dev/zero it reads until it runs out of memory
 * (it crashed the process), on a FIFO without a writer it waits forever,
 * and a stat() before it can be raced by a rename. Here the file is opened
 * non-blocking (a FIFO opens at once), checked with fstat() on that very
 * descriptor, and read up to one byte past the limit (a file growing while
 * it is read, or one whose size stat() does not tell, is still bounded).
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export type ReadFailure = 'not-found' | 'permission' | 'is-directory' | 'not-directory' | 'not-regular' | 'too-large' | 'other';

export class FileReadError extends Error {
  constructor(readonly reason: ReadFailure, message: string, readonly size?: number) {
    super(message);
    this.name = 'FileReadError';
  }
}

/** What a non-regular file is, for messages: "/dev/zero is a character device". */
function kind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

/** Stable wording of our own for the errors people meet; the system's code otherwise. */
export function describeErrno(e: NodeJS.ErrnoException): { reason: ReadFailure; text: string } {
  switch (e.code) {
    case 'ENOENT': return { reason: 'not-found', text: 'no such file' };
    case 'EACCES': case 'EPERM': return { reason: 'permission', text: 'permission denied' };
    case 'EISDIR': return { reason: 'is-directory', text: 'is a directory' };
    case 'ENOTDIR': return { reason: 'not-directory', text: 'a component of the path is not a directory' };
    case 'ELOOP': return { reason: 'other', text: 'too many symbolic links' };
    default: return { reason: 'other', text: e.code ?? e.message };
  }
}

/**
 * The bytes of the regular file at `path`, at most `maxBytes`. Throws a
 * FileReadError: for a failed open its message is the reason alone ("no
 * such file"); for a non-regular file "PATH is a FIFO, not a regular file";
 * for one too large "the file is N bytes" (callers word the limit).
 */
export function readRegularFile(path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const { reason, text } = describeErrno(err as NodeJS.ErrnoException);
    throw new FileReadError(reason, text);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new FileReadError('is-directory', `${path} is a directory, not a regular file`);
    if (!st.isFile()) throw new FileReadError('not-regular', `${path} is ${kind(st)}, not a regular file`);
    if (st.size > maxBytes) throw new FileReadError('too-large', `the file is ${st.size} bytes`, st.size);
    const parts: Buffer[] = [];
    let total = 0;
    let buf = Buffer.allocUnsafe(st.size + 1); // one more byte: a file that grew since fstat() is seen
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new FileReadError('too-large', `the file is more than ${maxBytes} bytes`, total);
      buf = Buffer.allocUnsafe(64 * 1024); // only when it grew, or its size is not known (/proc)
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
  } catch (err) {
    if (err instanceof FileReadError) throw err;
    const { reason, text } = describeErrno(err as NodeJS.ErrnoException);
    throw new FileReadError(reason, text);
  } finally {
    closeSync(fd);
  }
}
