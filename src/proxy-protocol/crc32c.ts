// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8: the v2 CRC32C TLV checksum.

const POLY = 0x82f63b78;
const TABLES = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
}

/**
 * Continues a CRC-32C over bytes[start, end). Pass the previous return value as `crc` to chain
 * ranges; start with 0. Returns an unsigned 32-bit value.
 */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  const t = TABLES;
  let c = ~crc;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    const hi = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    c =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + (hi & 0xff)]! ^
      t[512 + ((hi >>> 8) & 0xff)]! ^
      t[256 + ((hi >>> 16) & 0xff)]! ^
      t[hi >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The checksum of a v2 header whose 4-byte CRC32C value sits at `fieldOffset`, taken as zero. */
export function headerCrc32c(header: Uint8Array, end: number, fieldOffset: number): number {
  // The zeroed field is fed byte-wise rather than from a constant array, so that crc32c only ever
  // sees one array type per call site (it stays monomorphic when headers are Buffers).
  const t = TABLES;
  let c = ~crc32c(header, 0, fieldOffset, 0);
  for (let k = 0; k < 4; k++) c = t[c & 0xff]! ^ (c >>> 8);
  return crc32c(header, fieldOffset + 4, end, ~c >>> 0);
}
