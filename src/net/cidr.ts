// Strict CIDR parsing. A bare address is a /32 or /128; host bits are masked ("10.0.0.1/8" is
// 10.0.0.0/8, as Go's net.ParseCIDR and ingress-nginx normalise it). An IPv4-mapped IPv6 prefix of
// length >= 96 is the IPv4 prefix of length - 96 ("::ffff:10.0.0.0/104" is 10.0.0.0/8); a shorter one
// is an ordinary IPv6 prefix and, like every IPv6 prefix, never matches an IPv4 address.
import { formatIp, type IpAddress, parseIpUnfolded } from './ip.ts';

export interface Cidr {
  /** The network address, host bits zero. */
  readonly address: IpAddress;
  /** 0-32 for IPv4, 0-128 for IPv6. */
  readonly prefix: number;
}

export type CidrErrorCode = 'CIDR_EMPTY' | 'CIDR_BAD_ADDRESS' | 'CIDR_BAD_PREFIX';

export type CidrResult =
  | { ok: true; cidr: Cidr }
  | { ok: false; error: { code: CidrErrorCode; message: string } };

/** The mask (signed 32-bit, like the words) for word `wordIndex` of a prefix of `prefix` bits. */
export function wordMask(prefix: number, wordIndex: number): number {
  const bits = prefix - wordIndex * 32;
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return -1 << (32 - bits);
}

/** Builds a normalised CIDR: host bits masked, mapped IPv6 prefixes >= /96 folded to IPv4. */
export function makeCidr(address: IpAddress, prefix: number): Cidr {
  if (address.family === 4) {
    return {
      address: { family: 4, w0: address.w0 & wordMask(prefix, 0), w1: 0, w2: 0, w3: 0 },
      prefix,
    };
  }
  if (prefix >= 96 && address.w0 === 0 && address.w1 === 0 && address.w2 === 0xffff) {
    return makeCidr({ family: 4, w0: address.w3, w1: 0, w2: 0, w3: 0 }, prefix - 96);
  }
  return {
    address: {
      family: 6,
      w0: address.w0 & wordMask(prefix, 0),
      w1: address.w1 & wordMask(prefix, 1),
      w2: address.w2 & wordMask(prefix, 2),
      w3: address.w3 & wordMask(prefix, 3),
    },
    prefix,
  };
}

function fail(code: CidrErrorCode, message: string): CidrResult {
  return { ok: false, error: { code, message } };
}

/** Parses "ADDR" or "ADDR/LEN" strictly (no whitespace, no zone ids, no leading-zero octets). */
export function parseCidr(text: string): CidrResult {
  if (text.length === 0) return fail('CIDR_EMPTY', 'empty address or CIDR');
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const address = parseIpUnfolded(addressText);
  if (address === null) {
    return fail('CIDR_BAD_ADDRESS', `"${text}" is not a valid IP address or CIDR`);
  }
  const bits = address.family === 4 ? 32 : 128;
  if (slash < 0) return { ok: true, cidr: makeCidr(address, bits) };
  const lengthText = text.slice(slash + 1);
  // Decimal digits only; leading zeros ("/08", "/0008") are accepted as Go's net.ParseCIDR (dtoi)
  // accepts them, and nginx's ngx_atoi too.
  if (lengthText.length === 0) return fail('CIDR_BAD_PREFIX', `"${text}" has an invalid prefix length`);
  let prefix = 0;
  for (let i = 0; i < lengthText.length; i++) {
    const c = lengthText.charCodeAt(i);
    if (c < 48 || c > 57) return fail('CIDR_BAD_PREFIX', `"${text}" has an invalid prefix length`);
    prefix = prefix * 10 + (c - 48);
    if (prefix > 128) {
      return fail('CIDR_BAD_PREFIX', `"${text}": prefix length ${lengthText} is larger than ${bits}`);
    }
  }
  if (prefix > bits) {
    return fail('CIDR_BAD_PREFIX', `"${text}": prefix length ${prefix} is larger than ${bits}`);
  }
  return { ok: true, cidr: makeCidr(address, prefix) };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.address)}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  const a = cidr.address;
  if (a.family !== ip.family) return false;
  const p = cidr.prefix;
  if (((ip.w0 ^ a.w0) & wordMask(p, 0)) !== 0) return false;
  if (a.family === 4) return true;
  return (
    ((ip.w1 ^ a.w1) & wordMask(p, 1)) === 0 &&
    ((ip.w2 ^ a.w2) & wordMask(p, 2)) === 0 &&
    ((ip.w3 ^ a.w3) & wordMask(p, 3)) === 0
  );
}

/** The first address of `cidr` and one past its last, as integers of its family's width. */
function span(cidr: Cidr): [bigint, bigint] {
  const a = cidr.address;
  const bits = a.family === 4 ? 32 : 128;
  const words = a.family === 4 ? [a.w0] : [a.w0, a.w1, a.w2, a.w3];
  const start = words.reduce((n, w) => (n << 32n) | BigInt(w >>> 0), 0n);
  return [start, start + (1n << BigInt(bits - cidr.prefix))];
}

/**
 * Whether `cidrs` together hold every IPv4 address or every IPv6 address: a list that trusts
 * everyone without a `/0` (`0.0.0.0/1,128.0.0.0/1`) counts. Entries that do not parse count for none.
 */
export function coversEveryAddress(cidrs: readonly string[]): boolean {
  for (const family of [4, 6] as const) {
    const spans = cidrs
      .map(parseCidr)
      .filter((r) => r.ok && r.cidr.address.family === family)
      .map((r) => span((r as { ok: true; cidr: Cidr }).cidr))
      .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    let covered = 0n;
    for (const [start, end] of spans) {
      if (start > covered) break;
      if (end > covered) covered = end;
    }
    if (covered === 1n << BigInt(family === 4 ? 32 : 128)) return true;
  }
  return false;
}
