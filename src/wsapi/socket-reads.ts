/**
 * A client socket read into one buffer of its own (net's `onread` option)
 * instead of a new Buffer per read pushed through a Readable stream. A
 * sequential call reads once per reply: the per-read allocation and the
 * stream's push/emit showed in the profile of bench/wsapi.ts against the
 * native binder (about a tenth of a call's user CPU). Accepted sockets of a
 * server have no such option in Node.js and keep the 'data' path.
 *
 * The bytes handed on are valid only during the call: the FrameReceiver is
 * told so (reusedChunks) and copies what it keeps.
 */
import { Buffer } from 'node:buffer';

/** As Node.js's own read size for streams. */
const READ_BUFFER_BYTES = 64 * 1024;

export class SocketReads {
  private target: ((chunk: Buffer) => void) | undefined;
  /** Read before a connection took the socket (copies): handed over by deliverTo(). */
  private early: Buffer[] = [];

  private readonly memory = new ArrayBuffer(READ_BUFFER_BYTES);

  /** What net.connect / new net.Socket take as `onread`. */
  readonly onread = {
    buffer: Buffer.from(this.memory),
    // The bytes are always in `memory` (net hands back the buffer given above): a view of it
    // is made from there, without asking the typed array for its ArrayBuffer and offset.
    callback: (nread: number): boolean => {
      const chunk = Buffer.from(this.memory, 0, nread);
      if (this.target !== undefined) this.target(chunk);
      else this.early.push(Buffer.from(chunk));
      return true; // keep reading (false would pause the socket)
    },
  };

  /** From now on, each read goes to `target` (what was read before first). */
  deliverTo(target: (chunk: Buffer) => void): void {
    this.target = target;
    for (const chunk of this.early.splice(0)) target(chunk);
  }
}
