// Go, transcribed: strings.TrimSpace, netip.ParseAddr (net.ParseIP, net.ParseCIDR), IP.String(),
// IPNet.String(), internal/net.ParseIPNets, configmap.go's splitAndTrimSpace. Shared by
// test/security/source-lists-differential-nginx.test.ts, test/k8s/configmap-validation-ingress-nginx.test.ts,
// test/helpers/go-annotation-validators.ts, the test/security differentials (annotation-risk-attack,
// cors, scalar-values) and test/k8s/go-reference.test.ts, which holds it against Go's own answers
// (test/fixtures/go-reference/vectors.json).

/** Go's unicode.IsSpace (JavaScript's \s also takes U+FEFF, Go's does not; Go's takes U+0085). */
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const GO_TRIM = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'g');
export function goTrimSpace(s: string): string {
  return s.replace(GO_TRIM, '');
}

/** netip parseIPv4Fields: four decimal fields, no leading zero, none empty. */
function goIPv4Fields(s: string): number[] | null {
  const fields: number[] = [];
  let value = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && value === 0) return null;
      value = value * 10 + (c - 48);
      digits++;
      if (value > 255) return null;
    } else if (s[i] === '.') {
      if (i === 0 || i === s.length - 1 || s[i - 1] === '.' || fields.length === 3) return null;
      fields.push(value);
      value = 0;
      digits = 0;
    } else return null;
  }
  if (fields.length < 3) return null;
  return [...fields, value];
}

const hexDigit = (c: string) => '0123456789abcdef'.indexOf(c.toLowerCase());

/** One hex group of netip parseIPv6: its value and length, null when it has more than four digits. */
function goHexGroup(s: string): { value: number; length: number } | null {
  let length = 0;
  let value = 0;
  for (; length < s.length; length++) {
    const d = /[0-9a-fA-F]/.test(s[length]!) ? hexDigit(s[length]!) : -1;
    if (d < 0) break;
    value = value * 16 + d;
    if (length > 3) return null;
  }
  return { value, length };
}

/** netip parseIPv6 (a zone is refused: net.ParseIP and net.ParseCIDR refuse one). */
function goIPv6(input: string): number[] | null {
  if (input.includes('%')) return null;
  let s = input;
  const ip = new Array<number>(16).fill(0);
  let ellipsis = -1;
  if (s.startsWith('::')) {
    ellipsis = 0;
    s = s.slice(2);
    if (s === '') return ip;
  }
  let i = 0;
  while (i < 16) {
    const group = goHexGroup(s);
    if (group === null || group.length === 0) return null;
    if (s[group.length] === '.') {
      if ((ellipsis < 0 && i !== 12) || i + 4 > 16) return null;
      const v4 = goIPv4Fields(s);
      if (v4 === null) return null;
      ip.splice(i, 4, ...v4);
      s = '';
      i += 4;
      break;
    }
    ip[i] = group.value >> 8;
    ip[i + 1] = group.value & 0xff;
    i += 2;
    s = s.slice(group.length);
    if (s === '') break;
    if (s[0] !== ':' || s.length === 1) return null;
    s = s.slice(1);
    if (s[0] === ':') {
      if (ellipsis >= 0) return null;
      ellipsis = i;
      s = s.slice(1);
      if (s === '') break;
    }
  }
  if (s !== '') return null;
  if (i < 16) {
    if (ellipsis < 0) return null;
    const n = 16 - i;
    for (let j = i - 1; j >= ellipsis; j--) ip[j + n] = ip[j]!;
    ip.fill(0, ellipsis, ellipsis + n);
  } else if (ellipsis >= 0) return null;
  return ip;
}

/** netip.ParseAddr without a zone: the 16 bytes, and whether it was written as IPv4. */
export function goParseAddr(s: string): { bytes: number[]; is4: boolean } | null {
  for (const c of s) {
    if (c === '.') {
      const v4 = goIPv4Fields(s);
      return v4 && { bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...v4], is4: true };
    }
    if (c === ':') {
      const v6 = goIPv6(s);
      return v6 && { bytes: v6, is4: false };
    }
    if (c === '%') return null;
  }
  return null;
}

const isMapped = (b: readonly number[]) =>
  b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

/** net.IP.String(): a mapped address as IPv4, else RFC 5952 (the first longest run of 2+ zero groups). */
export function goIpString(b: readonly number[]): string {
  if (isMapped(b)) return b.slice(12).join('.');
  const groups = Array.from({ length: 8 }, (_, k) => (b[2 * k]! << 8) | b[2 * k + 1]!);
  let [start, end] = [-1, -1];
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i >= 2 && j - i > end - start) [start, end] = [i, j];
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === start) {
      out += '::';
      i = end;
      if (i >= 8) break;
    } else if (i > 0) out += ':';
    out += groups[i]!.toString(16);
  }
  return out;
}

export function masked(bytes: readonly number[], bits: number): number[] {
  return bytes.map((x, i) => {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    return x & ((0xff << (8 - keep)) & 0xff);
  });
}

/** net.ParseCIDR then IPNet.String(); null when it does not parse (dtoi: digits, leading zeros too). */
export function goParseCidr(s: string): string | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const address = goParseAddr(s.slice(0, slash));
  const mask = s.slice(slash + 1);
  if (address === null || !/^[0-9]+$/.test(mask) || Number(mask) >= 0xffffff) return null;
  const n = Number(mask);
  if (address.is4) return n > 32 ? null : `${masked(address.bytes.slice(12), n).join('.')}/${n}`;
  if (n > 128) return null;
  const network = masked(address.bytes, n);
  return isMapped(network) ? `${network.slice(12).join('.')}/${n - 96}` : `${goIpString(network)}/${n}`;
}

/** internal/net.ParseIPNets over a comma-split value: the rendered entries (sorted), null on an error. */
export function goParseIPNets(value: string): string[] | null {
  const out = new Set<string>();
  for (const part of value.split(',')) {
    const spec = goTrimSpace(part);
    const network = goParseCidr(spec);
    if (network !== null) {
      out.add(network);
      continue;
    }
    const ip = goParseAddr(spec);
    if (ip === null) return null;
    out.add(goIpString(ip.bytes));
  }
  return [...out].sort();
}

/** configmap.go:496 splitAndTrimSpace. */
export function splitAndTrimSpace(value: string): string[] {
  return value
    .split(',')
    .filter((field) => field !== '')
    .map(goTrimSpace);
}
