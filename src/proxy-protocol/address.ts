// The codec's address text: strict parsing is src/net/ip.ts's, the one parser every part of keepip
// uses (a v1 header with "01.2.3.4" or "fe80::1%eth0" is refused, never "repaired"); this module turns
// its words into the bytes a v2 header carries, and formats bytes back to text. The formatting stays
// here: it reads straight from a header's bytes, and keeps an IPv4-mapped address in its mapped form
// (::ffff:a.b.c.d), because a header reports what was sent; folding is the reader's business.
import { parseIpUnfolded, parseIpv4Value } from '../net/ip.ts';

/** Decimal strings for 0-255, so formatting an IPv4 address is four lookups. */
export const DEC: readonly string[] = Array.from({ length: 256 }, (_, i) => String(i));
/** The same with the dot that follows the first three octets: three concatenations per address. */
export const DEC_DOT: readonly string[] = DEC.map((d) => `${d}.`);

/** Dotted decimal, exactly four octets, no leading zeros, each 0-255. Returns the 4 bytes or null. */
export function parseIPv4(text: string): Uint8Array | null {
  const out = new Uint8Array(4);
  return parseIPv4Into(text, out, 0) ? out : null;
}

/**
 * parseIPv4 without the allocation: writes the 4 bytes to out[offset..offset+4) and returns true,
 * or returns false and leaves out alone. For the encoder's hot path.
 */
export function parseIPv4Into(text: string, out: Uint8Array, offset: number): boolean {
  const value = parseIpv4Value(text, 0, text.length);
  if (value < 0) return false;
  writeWord(out, offset, value);
  return true;
}

/**
 * RFC 4291 text: 1-4 hex digits per group, at most one "::", an optional dotted IPv4 tail.
 * No zone id, no brackets, no prefix length. Returns the 16 bytes or null.
 */
export function parseIPv6(text: string): Uint8Array | null {
  const ip = parseIpUnfolded(text);
  if (ip === null || ip.family !== 6) return null;
  const out = new Uint8Array(16);
  writeWord(out, 0, ip.w0);
  writeWord(out, 4, ip.w1);
  writeWord(out, 8, ip.w2);
  writeWord(out, 12, ip.w3);
  return out;
}

function writeWord(out: Uint8Array, offset: number, word: number): void {
  out[offset] = word >>> 24;
  out[offset + 1] = (word >>> 16) & 0xff;
  out[offset + 2] = (word >>> 8) & 0xff;
  out[offset + 3] = word & 0xff;
}

/** IPv4 text of bytes[offset..offset+4). */
export function formatIPv4(bytes: Uint8Array, offset: number): string {
  return (
    DEC_DOT[bytes[offset]!]! +
    DEC_DOT[bytes[offset + 1]!]! +
    DEC_DOT[bytes[offset + 2]!]! +
    DEC[bytes[offset + 3]!]!
  );
}

/**
 * RFC 5952 text of bytes[offset..offset+16): lower-case hex, no leading zeros, the longest run
 * (first on a tie) of two or more zero groups as "::", and ::ffff:a.b.c.d for IPv4-mapped addresses.
 */
export function formatIPv6(bytes: Uint8Array, offset: number): string {
  const g = new Array<number>(8);
  for (let k = 0; k < 8; k++) g[k] = (bytes[offset + 2 * k]! << 8) | bytes[offset + 2 * k + 1]!;
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes, offset + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (g[k] !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && g[e] === 0) e++;
    if (e - k > bestLen) {
      bestStart = k;
      bestLen = e - k;
    }
    k = e;
  }
  if (bestStart < 0) return g.map((v) => v.toString(16)).join(':');
  const head = g.slice(0, bestStart).map((v) => v.toString(16));
  const tail = g.slice(bestStart + bestLen).map((v) => v.toString(16));
  return `${head.join(':')}::${tail.join(':')}`;
}
