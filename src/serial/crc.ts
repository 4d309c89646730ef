/**
 * CRCs used by the COBS framing of MCU serial links (src/serial/cobs-codec.ts).
 *
 * Hand-written rather than a dependency: each is a 256-entry table and a
 * three-line loop, it must work on a sub-range of a Uint8Array without
 * copying (the decoder checks a frame in place), and Node's own zlib.crc32
 * only exists from Node 20.15 / 22.2 while this project supports Node >= 20.
 * Pure-JS packages exist (`crc`, `crc-32` on npm) but would add a dependency
 * for a few lines; the check values below are pinned by the tests.
 *
 * - CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first (no reflection),
 *   xorout 0; check("123456789") = 0x29B1. The usual choice of MCU HALs.
 * - CRC-32 (IEEE 802.3, zlib, Ethernet): poly 0x04C11DB7 reflected
 *   (0xEDB88320), init and xorout 0xFFFFFFFF; check("123456789") = 0xCBF43926.
 */

const CRC16_TABLE: Uint16Array = (() => {
  const t = new Uint16Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[n] = c;
  }
  return t;
})();

const CRC32_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-16/CCITT-FALSE of data[start, end). Returns 0..0xFFFF. */
export function crc16ccitt(data: Uint8Array, start = 0, end = data.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >>> 8) ^ data[i]!) & 0xff]!;
  return crc;
}

/** CRC-32 (IEEE 802.3) of data[start, end). Returns an unsigned 32-bit value. */
export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  return crc32Final(crc32Update(CRC32_START, data, start, end));
}

/*
 * CRC-32 over several parts without joining them: start from CRC32_START,
 * update with each part in order, finish with crc32Final. The result is
 * crc32() of the parts' concatenation (zlib.crc32(b, zlib.crc32(a)) too).
 */

/** The CRC-32 register before any byte. */
export const CRC32_START = 0xffffffff;

/** The CRC-32 register after data[start, end), from register `crc`. */
export function crc32Update(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ CRC32_TABLE[(crc ^ data[i]!) & 0xff]!;
  return crc;
}

/**
 * The CRC-32 register after the UTF-8 bytes of `text` (lone surrogates as
 * U+FFFD, as Buffer.from(text) and zlib.crc32(text) encode them). ASCII text
 * is fed as it is, without encoding it into a buffer first.
 */
export function crc32UpdateText(crc: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Everything before i is ASCII: the rest starts on a character boundary.
    if (c >= 0x80) return crc32Update(crc, Buffer.from(text.slice(i), 'utf8'));
    crc = (crc >>> 8) ^ CRC32_TABLE[(crc ^ c) & 0xff]!;
  }
  return crc;
}

/** The CRC-32 value (unsigned 32-bit) of register `crc`. */
export function crc32Final(crc: number): number {
  return (crc ^ 0xffffffff) >>> 0;
}
