// Strict IP address parsing and formatting, hand-written for the request hot path (no regex, no BigInt).
//
// Strict means: IPv4 is exactly four decimal octets without leading zeros ("010.0.0.1" is rejected,
// as Go's parser that ingress-nginx used rejects it, because other parsers read it as octal); IPv6 is
// RFC 4291 text with at most one "::", 1-4 hex digits per group and an optional trailing dotted quad;
// no zone ids ("fe80::1%eth0"), no brackets, no whitespace, no ports.
// IPv4-mapped IPv6 (::ffff:a.b.c.d, in any spelling) folds to the IPv4 address everywhere, so a client
// cannot dodge an IPv4 rule by writing its address in IPv6 form (invariant I4).

/**
 * An IP address as plain words. IPv4: `w0` holds the address, w1..w3 are 0. IPv6: w0..w3 are the four
 * 32-bit words, most significant first. Words are stored as SIGNED 32-bit integers (`x | 0`: the same
 * bits; use `x >>> 0` for the unsigned value): they stay small integers in V8, so building and reading
 * an address does not box doubles. One object shape for both families keeps property access monomorphic.
 */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
}

/** The longest IPv6 text form: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255". */
const MAX_TEXT_LENGTH = 45;

export function ipv4(value: number): IpAddress {
  return { family: 4, w0: value | 0, w1: 0, w2: 0, w3: 0 };
}

/** Builds an IPv6 address from its words; an IPv4-mapped address folds to IPv4. */
export function ipv6(w0: number, w1: number, w2: number, w3: number): IpAddress {
  if (w0 === 0 && w1 === 0 && w2 >>> 0 === 0xffff) return ipv4(w3);
  return { family: 6, w0: w0 | 0, w1: w1 | 0, w2: w2 | 0, w3: w3 | 0 };
}

export function isIpv4(ip: IpAddress): boolean {
  return ip.family === 4;
}

export function isIpv6(ip: IpAddress): boolean {
  return ip.family === 6;
}

export function ipEquals(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.w0 === b.w0 && a.w1 === b.w1 && a.w2 === b.w2 && a.w3 === b.w3;
}

/**
 * Parses an address strictly; IPv4-mapped IPv6 folds to IPv4. Returns null for anything else
 * (zone ids, leading zeros, whitespace, brackets, ports, empty text).
 */
export function parseIp(text: string): IpAddress | null {
  const raw = parseIpUnfolded(text);
  if (raw === null || raw.family === 4) return raw;
  return raw.w0 === 0 && raw.w1 === 0 && raw.w2 === 0xffff ? ipv4(raw.w3) : raw;
}

/**
 * Like parseIp but keeps IPv4-mapped IPv6 as IPv6. Only CIDR parsing needs this, because a mapped
 * prefix shorter than /96 is not an IPv4 prefix.
 */
export function parseIpUnfolded(text: string): IpAddress | null {
  const length = text.length;
  if (length === 0 || length > MAX_TEXT_LENGTH) return null;
  // IPv4 first: it fails within a few characters on IPv6 text, and IPv4 is the common case.
  const value = parseIpv4Value(text, 0, length);
  if (value >= 0) return ipv4(value);
  return text.includes(':') ? parseIpv6(text, length) : null;
}

/** Parse and format in one call, e.g. a socket's "::ffff:127.0.0.1" becomes "127.0.0.1". */
export function canonicalIp(text: string): string | null {
  const ip = parseIp(text);
  return ip === null ? null : formatIp(ip);
}

/**
 * A socket address with an IPv4-mapped IPv6 form (`::ffff:10.0.0.1`, as a dual-stack listener reports
 * an IPv4 peer) folded to the IPv4 address; any other text is returned as it is, unchecked.
 */
export function foldMappedIpv4(text: string): string {
  if (!text.includes(':')) return text;
  const ip = parseIp(text);
  return ip !== null && ip.family === 4 ? formatIpv4(ip.w0) : text;
}

/**
 * The family of an address already in canonical text (IPv4-mapped folded): only IPv6 text has a colon.
 * Not a validator (a host name counts as 4): untrusted text goes through parseIp.
 */
export function addressFamily(text: string): 4 | 6 {
  return text.includes(':') ? 6 : 4;
}

/** Loopback: any 127.0.0.0/8 address, and ::1 (IPv6 loopback is that one address only); strict text. */
export function isLoopbackAddress(text: string): boolean {
  const ip = parseIp(text);
  if (ip === null) return false;
  if (ip.family === 4) return ip.w0 >>> 24 === 127;
  return ip.w0 === 0 && ip.w1 === 0 && ip.w2 === 0 && ip.w3 === 1;
}

/** IPv4 as a dotted quad; IPv6 in RFC 5952 form (lowercase, shortest, first longest zero run as "::"). */
export function formatIp(ip: IpAddress): string {
  return ip.family === 4 ? formatIpv4(ip.w0) : formatIpv6(ip.w0, ip.w1, ip.w2, ip.w3);
}

export function formatIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`;
}

/**
 * Parses a dotted quad between start and end; returns the unsigned value (0 to 2^32-1) or -1. Exported for the
 * IPv6 parser's embedded IPv4 and for callers that scan a larger string without slicing it.
 */
export function parseIpv4Value(text: string, start: number, end: number): number {
  let value = 0;
  let parts = 0;
  let i = start;
  for (;;) {
    if (i >= end) return -1;
    let c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    let octet = c - 48;
    i++;
    if (i < end) {
      c = text.charCodeAt(i);
      if (c >= 48 && c <= 57) {
        // "0" followed by a digit is a leading zero: ambiguous (octal to some parsers), rejected.
        if (octet === 0) return -1;
        octet = octet * 10 + (c - 48);
        i++;
        if (i < end) {
          c = text.charCodeAt(i);
          if (c >= 48 && c <= 57) {
            octet = octet * 10 + (c - 48);
            i++;
            if (octet > 255) return -1;
          }
        }
      }
    }
    value = (value << 8) | octet;
    parts++;
    if (parts === 4) return i === end ? value >>> 0 : -1;
    if (i >= end || text.charCodeAt(i) !== 46 /* . */) return -1;
    i++;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

// Scratch space for the eight 16-bit groups; parsing is synchronous, so one buffer is enough.
const groups = new Uint16Array(8);

function parseIpv6(text: string, end: number): IpAddress | null {
  groups.fill(0);
  let n = 0;
  let ellipsis = -1;
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    if (end < 2 || text.charCodeAt(1) !== 58) return null;
    ellipsis = 0;
    i = 2;
  }
  while (i < end) {
    let j = i;
    let value = 0;
    while (j < end) {
      const h = hexValue(text.charCodeAt(j));
      if (h < 0) break;
      if (j - i === 4) return null;
      value = value * 16 + h;
      j++;
    }
    if (j === i) return null;
    if (j < end && text.charCodeAt(j) === 46 /* . */) {
      // An embedded dotted quad fills the last 32 bits and ends the address.
      if (n > 6) return null;
      const v4 = parseIpv4Value(text, i, end);
      if (v4 < 0) return null;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (n === 8) return null;
    groups[n++] = value;
    i = j;
    if (i === end) break;
    if (text.charCodeAt(i) !== 58) return null; // a zone "%", whitespace, brackets...
    i++;
    if (i === end) return null; // trailing single colon
    if (text.charCodeAt(i) === 58) {
      if (ellipsis >= 0) return null;
      ellipsis = n;
      i++;
    }
  }
  if (ellipsis < 0) {
    if (n !== 8) return null;
  } else {
    // "::" stands for at least one group of zeros.
    if (n > 7) return null;
    const tail = n - ellipsis;
    for (let k = 1; k <= tail; k++) {
      groups[8 - k] = groups[n - k]!;
      groups[n - k] = 0;
    }
  }
  return {
    family: 6,
    w0: (groups[0]! << 16) | groups[1]!,
    w1: (groups[2]! << 16) | groups[3]!,
    w2: (groups[4]! << 16) | groups[5]!,
    w3: (groups[6]! << 16) | groups[7]!,
  };
}

export function formatIpv6(w0: number, w1: number, w2: number, w3: number): string {
  const g = [w0 >>> 16, w0 & 0xffff, w1 >>> 16, w1 & 0xffff, w2 >>> 16, w2 & 0xffff, w3 >>> 16, w3 & 0xffff];
  // RFC 5952 4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLength - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += g[i]!.toString(16);
  }
  return out;
}
