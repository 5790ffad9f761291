// ingress-nginx's annotation validators, transcribed: internal/ingress/annotations/parser/validators.go
// (its character classes and patterns, ValidateRegex, ValidateOptions, ValidateBool, ValidateInt,
// ValidateCIDRs), the parser's normalizeString and its strconv.ParseBool / Atoi reads (parser/main.go)
// and the per-annotation Validators of internal/ingress/annotations/<pkg>/main.go (V, their patterns
// PATTERN), with Go's net.ParseIP / ParseCIDR as ValidateCIDRs needs them (Node's isIP, a zone
// refused); strings.TrimSpace is goTrimSpace of test/helpers/go-net.ts. Places are in the mirror
// (git --git-dir=/work/.mirror/kubernetes+ingress-nginx/repo show HEAD:<path>, HEAD
// dbb11b92ddb77bee9c35e462479129354c84f939). Shared by test/k8s/annotation-validation-ingress-nginx.test.ts,
// the test/security differentials (affinity, canary, cors, scalar-values) and
// test/k8s/go-reference.test.ts, which holds the patterns, validators, ParseBool and Atoi against Go's own
// answers (test/fixtures/go-reference/vectors.json); ValidateOptions and normalizeString are built on
// goTrimSpace, held there too.
import { isIP } from 'node:net';
import { goBool } from './go-configmap.ts';
import { goTrimSpace } from './go-net.ts';

/** validators.go:45 alphaNumericChars, :46 extendedAlphaNumeric, :47 regexEnabledChars, :48 urlEnabledChars. */
export const ALNUM = String.raw`\-\.\_\~a-zA-Z0-9\/:`;
export const EXTENDED = `${ALNUM}, `;
export const REGEX_CHARS = String.raw`\^\$\[\]\(\)\{\}\*\+\?\|&=\\`;
export const URL_CHARS = String.raw`,:\?&=`;

export const GO = {
  /** validators.go:55 */
  IsValidRegex: new RegExp(`^[/${ALNUM}${REGEX_CHARS}]*$`),
  /** validators.go:58 `^(?i)\d+[bkmg]?$` */
  // (?i) in Go folds Unicode: the Kelvin sign U+212A is a k (the u flag does that in JS).
  SizeRegex: /^\d+[bkmg]?$/iu,
  /** validators.go:65 */
  URLIsValidRegex: new RegExp(`^[${ALNUM}${URL_CHARS}]*$`),
  /** validators.go:68 */
  BasicCharsRegex: new RegExp(`^[/${ALNUM}]*$`),
  /** validators.go:70 */
  ExtendedCharsRegex: new RegExp(`^[/${EXTENDED}]*$`),
  /** validators.go:72 */
  CharsWithSpace: new RegExp(`^[/${ALNUM} ]*$`),
  /** validators.go:74 */
  NGINXVariable: /^[A-Za-z0-9\-_${}]*$/,
  /** validators.go:77 */
  RegexPathWithCapture: new RegExp(`^/?[${ALNUM}\\/\\$]*$`),
  /** validators.go:79 */
  HeadersVariable: /^[A-Za-z0-9-_, ]*$/,
  /** validators.go:82 */
  URLWithNginxVariableRegex: new RegExp(`^[${EXTENDED}${URL_CHARS}$]*$`),
};
/** validators.go:84 MaliciousRegex. */
export const MALICIOUS = /\r|\n/;
/** RE2's `\s` (perl class): [\t\n\f\r ], not JavaScript's. */
export const S = '[\\t\\n\\f\\r ]';

export type Validator = (value: string) => boolean;

/** validators.go:111-125 ValidateRegex. */
export const regex =
  (re: RegExp, removeSpace: boolean): Validator =>
  (s) => {
    const v = removeSpace ? s.replaceAll(' ', '') : s;
    return re.test(v) && !MALICIOUS.test(v);
  };
/** validators.go:143-158 ValidateOptions. */
export const options =
  (list: readonly string[], caseSensitive: boolean, trimSpace: boolean): Validator =>
  (s) => {
    let v = trimSpace ? goTrimSpace(s) : s;
    if (!caseSensitive) v = v.toLowerCase();
    return list.includes(v);
  };
/** parser/main.go:228-235 normalizeString (what parseString hands on): each line trimmed. */
export const normalizeString = (s: string): string => s.split('\n').map(goTrimSpace).join('\n');
/** validators.go:161-164 ValidateBool (strconv.ParseBool). */
export const bool: Validator = (s) =>
  ['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s);
/** validators.go:167-170 ValidateInt (strconv.Atoi, 64-bit). */
export const int: Validator = (s) =>
  /^[+-]?\d+$/.test(s) && BigInt(s) >= -(2n ** 63n) && BigInt(s) < 2n ** 63n;
/** strconv.ParseBool, as GetBoolAnnotation reads a value (parser/main.go parseBool): null on an error. */
export const parseBool = (s: string): boolean | null => (bool(s) ? goBool(s, false) : null);
/** strconv.Atoi, as GetIntAnnotation reads a value (parser/main.go parseInt): null on an error. */
export const atoi = (s: string): bigint | null => (int(s) ? BigInt(s) : null);
/** Go's net.ParseIP: no zone, no leading zeros (node's isIP agrees on both, but accepts a zone). */
export const goIp = (s: string) => !s.includes('%') && isIP(s) !== 0;
/** Go's net.ParseCIDR: the mask is decimal digits (leading zeros allowed) up to the address's bits. */
export function goCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const address = s.slice(0, slash);
  const mask = s.slice(slash + 1);
  return goIp(address) && /^\d+$/.test(mask) && Number(mask) <= (isIP(address) === 4 ? 32 : 128);
}
/** validators.go:173-176 ValidateCIDRs = internal/net/ipnet.go:32-81 ParseCIDRs ("" is no list). */
export const cidrs: Validator = (s) =>
  s === '' ||
  s.split(',').every((e) => {
    const t = goTrimSpace(e);
    return goCidr(t) || goIp(t);
  });

/** Per-annotation patterns their parsers also test on the parsed value (the Validators of V use them). */
export const PATTERN = {
  /** cors/main.go:46 corsOriginRegexValidator */
  corsOrigin: /^((((([a-z]+:\/\/)?(\*\.)?[A-Za-z0-9\-.]*(:\d+)?,?)|null)+)|\*)?$/,
  /** cors/main.go:51 corsMethodsRegex */
  corsMethods: new RegExp(`^([A-Za-z]+,?${S}?)+$`),
  /** cors/main.go:54 corsExposeHeadersRegex */
  corsExpose: new RegExp(`^(([A-Za-z0-9\\-\\_]+|\\*),?${S}?)+$`),
  /** sessionaffinity/main.go:154 affinityCookieExpiresRegex (unanchored alternation) */
  cookieExpires: /(^0|-?[1-9]\d*$)/,
};

/** Per-annotation validators (internal/ingress/annotations/<pkg>/main.go:line of the Validator). */
export const V = {
  /** cors/main.go:46 corsOriginRegexValidator */
  corsOrigin: regex(PATTERN.corsOrigin, true),
  /** cors/main.go:51 corsMethodsRegex */
  corsMethods: regex(PATTERN.corsMethods, true),
  /** cors/main.go:54 corsExposeHeadersRegex */
  corsExpose: regex(PATTERN.corsExpose, true),
  /** authreq/main.go:255 methodsRegex */
  authMethod: regex(/^(GET|HEAD|POST|PUT|PATCH|DELETE|CONNECT|OPTIONS|TRACE)$/, true),
  /** auth/main.go:45 authTypeRegex (unanchored) */
  authType: regex(/basic|digest/, true),
  /** auth/main.go:46 authSecretTypeRegex (unanchored) */
  authSecretType: regex(/auth-file|auth-map/, true),
  /** authtls/main.go:44 authVerifyClientRegex */
  verifyClient: regex(/^(on|off|optional|optional_no_ca)$/, true),
  /** authtls/main.go:45 redirectRegex */
  tlsErrorPage: regex(
    /^(@[A-Za-z0-9_-]+|((https?:\/\/)?[A-Za-z0-9\-.]+(:\d+)?)?(\/[A-Za-z0-9\-_.]+)*\/?)$/,
    true,
  ),
  /** connection/main.go:32 */
  connection: regex(/^(close|keep-alive)$/, true),
  /** proxy/main.go:51 validUpstreamAnnotation */
  nextUpstream: regex(
    new RegExp(
      `^((error|timeout|invalid_header|http_500|http_502|http_503|http_504|http_403|http_404|http_429|non_idempotent|off)${S}?)+$`,
    ),
    false,
  ),
  /** proxy/main.go:49-52 cookieDomainRegex */
  cookieDomain: regex(new RegExp(`^(off|[${ALNUM}]+${S}+[${ALNUM}]+)$`), false),
  /** upstreamhashby/main.go:36-37 hashByRegex */
  hashBy: regex(/^[A-Za-z0-9\-_${}]*$/, true),
  /** customhttperrors/main.go:36 arrayOfHTTPErrors */
  httpErrors: regex(/^(?:[4,5]\d{2},?)*$/, true),
  /** proxyssl/main.go:42-44 */
  onOff: regex(/^(on|off)$/, true),
  sslProtocols: regex(/^(TLSv1\.2|TLSv1\.3| )*$/, true),
  proxySslCiphers: regex(/^[A-Za-z0-9+:_\-!]*$/, true),
  /** sslcipher/main.go:36 regexValidSSLCipher */
  sslCiphers: regex(/^(?:(?:[A-Za-z0-9!:+\-_])*(?:@STRENGTH)*(?:@SECLEVEL=[0-5])*(?:@STRENGTH)*)*$/, true),
  /** sessionaffinity/main.go:154 affinityCookieExpiresRegex (unanchored alternation) */
  cookieExpires: (removeSpace: boolean) => regex(PATTERN.cookieExpires, removeSpace),
  /** opentelemetry/main.go:35 regexOperationName */
  operationName: regex(/^[A-Za-z0-9_-]*$/, true),
};
