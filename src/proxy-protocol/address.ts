// Strict IP text parsing and RFC 5952 formatting for the codec. Strict on purpose: a v1 header
// with "01.2.3.4" or "fe80::1%eth0" is refused, never "repaired".

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
 * or returns false (out may then hold part of an address). For the encoder's hot path.
 */
export function parseIPv4Into(text: string, out: Uint8Array, offset: number): boolean {
  const len = text.length;
  if (len < 7 || len > 15) return false;
  let octet = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= len; i++) {
    const c = i < len ? text.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || octet > 3) return false;
      out[offset + octet++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && value === 0) return false; // leading zero
      value = value * 10 + (c - 0x30);
      if (++digits > 3 || value > 255) return false;
    } else {
      return false;
    }
  }
  return octet === 4;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * RFC 4291 text: 1-4 hex digits per group, at most one "::", an optional dotted IPv4 tail.
 * No zone id, no brackets, no prefix length. Returns the 16 bytes or null.
 */
export function parseIPv6(text: string): Uint8Array | null {
  const len = text.length;
  if (len < 2 || len > 45) return null;
  const groups: number[] = [];
  let gap = -1; // index in `groups` where "::" stands
  let i = 0;
  if (text.charCodeAt(0) === 0x3a) {
    if (text.charCodeAt(1) !== 0x3a) return null;
    gap = 0;
    i = 2;
    if (i === len) return expand(groups, gap);
  }
  for (;;) {
    // One group (or the IPv4 tail) starts at i.
    let j = i;
    let value = 0;
    while (j < len && j - i < 5) {
      const h = hexValue(text.charCodeAt(j));
      if (h < 0) break;
      value = value * 16 + h;
      j++;
    }
    if (j < len && text.charCodeAt(j) === 0x2e) {
      // Dotted IPv4 in the last 32 bits.
      const v4 = parseIPv4(text.slice(i));
      if (v4 === null || groups.length > 6) return null;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      break;
    }
    if (j === i || j - i > 4) return null;
    groups.push(value);
    if (groups.length > 8) return null;
    if (j === len) break;
    if (text.charCodeAt(j) !== 0x3a) return null;
    j++;
    if (j < len && text.charCodeAt(j) === 0x3a) {
      if (gap >= 0) return null; // a second "::"
      gap = groups.length;
      j++;
      if (j === len) break;
    } else if (j === len) {
      return null; // trailing single ":"
    }
    i = j;
  }
  return expand(groups, gap);
}

function expand(groups: number[], gap: number): Uint8Array | null {
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return null;
  const out = new Uint8Array(16);
  const tail = gap < 0 ? 0 : groups.length - gap;
  for (let g = 0; g < groups.length; g++) {
    const slot = gap >= 0 && g >= gap ? 8 - tail + (g - gap) : g;
    out[slot * 2] = groups[g]! >> 8;
    out[slot * 2 + 1] = groups[g]! & 0xff;
  }
  return out;
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
