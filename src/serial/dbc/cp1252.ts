/**
 * DBC files are Windows-1252 text (CANdb++ writes them so; cantools reads
 * them as cp1252). Bytes 0x00-0x7F and 0xA0-0xFF are the same code points as
 * Latin-1; only 0x80-0x9F differ. The table is here rather than through
 * `new TextDecoder('windows-1252')` because Node built without ICU (small
 * embedded builds) knows only UTF-8 and UTF-16 decoders.
 */

/** Code points of 0x80..0x9F; the five bytes cp1252 leaves undefined map to the C1 control of the same value (as WHATWG does). */
const HIGH = [
  0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8d, 0x017d, 0x8f,
  0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x9d, 0x017e, 0x0178,
];

export function decodeCp1252(bytes: Uint8Array): string {
  // Latin-1 is a byte-for-byte, one-byte-string decode (fast, compact): fix the 0x80-0x9F bytes only if there are any.
  const latin1 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (!/[\x80-\x9f]/.test(latin1)) return latin1;
  return latin1.replace(/[\x80-\x9f]/g, (c) => String.fromCharCode(HIGH[c.charCodeAt(0) - 0x80]!));
}
