// Value syntaxes ingress-nginx accepts in annotations and ConfigMap keys (Go's strconv and time
// parsers), re-implemented strictly. Every function returns null for a value it does not accept.
import { canonicalIp } from '../net/ip.ts';
import { nginxArguments } from '../config/nginx-token.ts';

/** Go's strconv.ParseBool, which ingress-nginx uses for annotations and (weakly typed) ConfigMap keys. */
export function parseGoBool(text: string): boolean | null {
  switch (text) {
    case '1':
    case 't':
    case 'T':
    case 'true':
    case 'TRUE':
    case 'True':
      return true;
    case '0':
    case 'f':
    case 'F':
    case 'false':
    case 'FALSE':
    case 'False':
      return false;
    default:
      return null;
  }
}

// Go's unicode.IsSpace, which strings.TrimSpace uses: ASCII space, \t \n \v \f \r, NEL, NBSP and the
// Unicode space separators. (JavaScript's trim() also strips U+FEFF, which Go keeps.)
function isGoSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

export function trimGoSpace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isGoSpace(text.charCodeAt(start))) start++;
  while (end > start && isGoSpace(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/** Whether a Secret's value holds a PEM block of this label (`CERTIFICATE`, `PRIVATE KEY`, …). */
export function isPem(text: string | undefined, label: string): text is string {
  return text !== undefined && new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text);
}

/**
 * An annotation's string as ingress-nginx's parser reads it (parser.normalizeString): each line
 * trimmed of Go's white space; the result "" is its invalid (empty) value.
 */
export function goAnnotationString(text: string): string {
  return text.split('\n').map(trimGoSpace).join('\n');
}

const INT64_DIGITS = /^[+-]?[0-9]+$/;
const INT64_LIMIT = 2n ** 63n;

/**
 * Go's strconv.Atoi on a 64-bit platform: an optional sign and decimal digits (leading zeros too), no
 * space; null outside int64. Beyond JavaScript's safe integers the value is clamped to them.
 */
export function parseGoInt(text: string): number | null {
  if (!INT64_DIGITS.test(text)) return null;
  const n = BigInt(text);
  if (n >= INT64_LIMIT || n < -INT64_LIMIT) return null;
  return Math.max(Number.MIN_SAFE_INTEGER, Math.min(Number.MAX_SAFE_INTEGER, Number(n)));
}

/**
 * strconv.ParseInt(text, 0, 64), as the controller ConfigMap's decoder reads whole numbers, for its
 * decimal and octal forms (a leading `0`: `010` is 8, `08` is an error), a leading `+` taken, no white
 * space, no sign below 0; Go's `0x`, `0b`, `0o` and `_` forms are refused. null when not, or over max.
 */
export function parseGoUintBase0(text: string, max = Number.MAX_SAFE_INTEGER): number | null {
  const digits = text.startsWith('+') ? text.slice(1) : text;
  if (!/^[0-9]{1,15}$/.test(digits)) return null;
  if (digits.length > 1 && digits.startsWith('0')) {
    if (!/^[0-7]+$/.test(digits)) return null;
    const octal = Number.parseInt(digits, 8);
    return octal <= max ? octal : null;
  }
  return parseUint(digits, max);
}

/** A non-negative decimal integer no larger than max (no sign, no exponent, no fraction). */
export function parseUint(text: string, max = Number.MAX_SAFE_INTEGER): number | null {
  const t = text.trim();
  if (!/^[0-9]{1,15}$/.test(t)) return null;
  const n = Number(t);
  return n <= max ? n : null;
}

/** Nanoseconds per unit, as Go's time package names them. */
const DURATION_UNITS_NS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** A Duration's bound: int64 nanoseconds (time.ParseDuration refuses more). */
const MAX_GO_DURATION_NS = (1n << 63n) - 1n;

/**
 * Go's time.ParseDuration ("5s", "1m30s", "500ms"), non-negative only, in milliseconds (rounded). As
 * ingress-nginx passes the value: untrimmed (" 5s" is an error there, so the default stays), and a
 * value past int64 nanoseconds is an error (whole parts counted exactly, fractions as Go: in floats).
 */
export function parseGoDurationMs(text: string): number | null {
  if (text === '0') return 0;
  const re = /([0-9]*)(?:\.([0-9]*))?(ns|us|µs|ms|s|m|h)/gy;
  let totalNs = 0n;
  let consumed = 0;
  for (let match = re.exec(text); match !== null; match = re.exec(text)) {
    const [, whole = '', fraction = '', unit = ''] = match;
    if (whole === '' && fraction === '') return null;
    const unitNs = DURATION_UNITS_NS[unit]!;
    totalNs += BigInt(whole || '0') * unitNs;
    if (fraction !== '') totalNs += BigInt(Math.trunc(Number(`0.${fraction}`) * Number(unitNs)));
    if (totalNs > MAX_GO_DURATION_NS) return null;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) return null;
  return Math.round(Number(totalNs) / 1e6);
}

/** ngx_parse_offset on one word (client_max_body_size): digits and an optional k, m or g, any case. */
function parseNginxOffset(word: string): number | null {
  const m = /^([0-9]{1,12})([kmg]?)$/i.exec(word);
  if (!m) return null;
  const scale: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  const bytes = Number(m[1]) * (scale[m[2]!.toLowerCase()] ?? 1);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** ngx_parse_size, for buffer and cache sizes: digits and an optional k or m, any case (no b, no g). */
export function parseNginxBufferSize(word: string): number | null {
  const m = /^([0-9]{1,12})([km]?)$/i.exec(word);
  if (m === null) return null;
  return Number(m[1]) * (m[2] === '' ? 1 : m[2]!.toLowerCase() === 'k' ? 1024 : 1024 ** 2);
}

/**
 * An annotation's size as ingress-nginx's validator takes it: parser.ValidateRegex(SizeRegex, true)
 * removes spaces (nothing else: a tab or line break is refused) and wants digits and an optional
 * b, k, m or g, any case. The value itself keeps its spaces.
 */
export function isIngressNginxAnnotationSize(raw: string): boolean {
  // Go's (?i) folds Unicode: the Kelvin sign (U+212A) is a k there, as with JavaScript's u flag.
  return /^[0-9]+[bkmg]?$/iu.test(raw.replaceAll(' ', ''));
}

/**
 * client_max_body_size as ingress-nginx's template writes it: only for what isValidByteSize takes
 * (Go's TrimSpace, then digits and an optional k, m or g: an nginx offset); 'unwritten' for the rest:
 * no line, nginx's own 1m applies ("0b", "8b", "1 m", a U+FEFF Go does not trim). The value is written
 * as it is: null when nginx would refuse it (a U+3000 around it, which Go trims and nginx's lexer
 * does not), or a size too large to hold.
 */
export function parseWrittenBodySize(text: string): number | 'unwritten' | null {
  if (!/^[0-9]+[kmg]?$/i.test(trimGoSpace(text))) return 'unwritten';
  const words = nginxArguments(text);
  return words?.length === 1 ? parseNginxOffset(words[0]!) : null;
}

/** An HTTP header field name (RFC 9110 token). */
export function isHeaderName(text: string): boolean {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(text);
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A DNS-1123 subdomain, as Kubernetes validates names and annotation prefixes: at most 253 characters. */
export function isDnsSubdomain(text: string): boolean {
  return text.length > 0 && text.length <= 253 && DNS_SUBDOMAIN.test(text);
}

/**
 * A server a ConfigMap key names (syslog-host, otlp-collector-host): an IP address (IPv6 with or
 * without brackets), canonical, or a DNS name, lower-cased without a trailing dot; null for anything else.
 */
export function serverHost(text: string): string | null {
  const unbracketed = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const ip = canonicalIp(unbracketed);
  if (ip !== null) return ip;
  const name = text.toLowerCase().replace(/\.$/, '');
  return isDnsSubdomain(name) ? name : null;
}
