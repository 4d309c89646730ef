/**
 * SocketReads (net's onread for client sockets): what arrives before a
 * connection takes the socket (an inherited fd starts reading at once) is
 * copied, and handed over first, in order, however the read buffer was
 * reused meanwhile; after that each read goes straight to the connection.
 */
import { describe, expect, it } from 'vitest';
import { SocketReads } from '../../src/wsapi/socket-reads.js';

describe('SocketReads', () => {
  it('keeps copies of early reads and hands them over first, then delivers directly', () => {
    const reads = new SocketReads();
    const { buffer, callback } = reads.onread;
    const read = (text: string): boolean => callback(buffer.write(text, 0), buffer);
    expect(read('one')).toBe(true);
    expect(read('two!')).toBe(true);
    buffer.fill(0x2a); // the buffer is reused for the next read
    const got: string[] = [];
    reads.deliverTo((chunk) => got.push(chunk.toString()));
    expect(got).toEqual(['one', 'two!']);
    read('three');
    expect(got).toEqual(['one', 'two!', 'three']);
  });
});
