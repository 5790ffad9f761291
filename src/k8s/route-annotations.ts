// ingress-nginx's annotations that change where a request goes or what it carries, read per Ingress:
// permanent-redirect / temporal-redirect (+ -code), from-to-www-redirect, server-alias, enable-cors
// and cors-*. Values are validated as ingress-nginx 1.15 validates them (internal/ingress/annotations/
// redirect, alias, cors); a value it refuses drops that annotation's effect (or takes its default),
// with an INVALID_ANNOTATION_VALUE warning.
import type { ConfigIssue, CorsModel, LocationTracing, Origin, RedirectModel } from '../config/model.ts';
import { ALPHANUMERIC_CHARS, IS_VALID_REGEX, URL_IS_VALID } from './validators.ts';
import { annotationSource, readBool, type ScalarSource, warnAnnotation } from './scalar-readers.ts';
import { OPERATION_NAME } from './tracing-settings.ts';
import { goAnnotationString, parseGoBool, parseGoInt, trimGoSpace } from './values.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';

/** The annotations this module reads (without the prefix). */
export const ROUTE_ANNOTATIONS: readonly string[] = [
  'permanent-redirect',
  'permanent-redirect-code',
  'temporal-redirect',
  'temporal-redirect-code',
  'from-to-www-redirect',
  'server-alias',
  'enable-cors',
  'cors-allow-origin',
  'cors-allow-methods',
  'cors-allow-headers',
  'cors-allow-credentials',
  'cors-expose-headers',
  'cors-max-age',
  'upstream-vhost',
  'x-forwarded-prefix',
  // Read with the ConfigMap it names: src/k8s/header-settings.ts.
  'custom-headers',
  'enable-access-log',
  'enable-opentelemetry',
  'opentelemetry-trust-incoming-span',
  'opentelemetry-operation-name',
  'preserve-trailing-slash',
  'use-port-in-redirects',
  'relative-redirects',
  'connection-proxy-header',
  'default-backend',
  'custom-http-errors',
  'disable-proxy-intercept-errors',
  'proxy-redirect-from',
  'proxy-redirect-to',
  'proxy-cookie-domain',
  'proxy-cookie-path',
  'proxy-http-version',
];

/** The controller ConfigMap keys this module reads. */
export const ROUTE_CONFIGMAP_KEYS: readonly string[] = [
  'disable-access-log',
  'disable-http-access-log',
  'preserve-trailing-slash',
  'use-port-in-redirects',
  'relative-redirects',
  'custom-http-errors',
  'disable-proxy-intercept-errors',
  'proxy-redirect-from',
  'proxy-redirect-to',
  'proxy-cookie-domain',
  'proxy-cookie-path',
  'proxy-http-version',
];

type Rewrite = { from: string; to: string };
const URL_VALUE = /^[-._~a-zA-Z0-9/:,?&=]+$/;
/** nginx's regex forms (`~`, `~*`): ingress-nginx's validators let them through; keepip does not run them. */
const REGEX_FORM = /^~/;

/** What readProxyRewrites found: each proxy-redirect half alone, as ingress-nginx defaults each. */
export interface ProxyRewrites {
  proxyRedirectFrom?: string;
  proxyRedirectTo?: string;
  proxyCookieDomain?: Rewrite | null;
  proxyCookiePath?: Rewrite | null;
}

/**
 * proxy-redirect-from/-to and proxy-cookie-domain/-path from `get` (annotations or ConfigMap data).
 * The redirect halves are kept apart: ingress-nginx takes each from the annotation, else from the
 * ConfigMap (an invalid one too), and pairs them per location (proxyRedirectOf). A cookie rewrite is
 * `off` or `<from> <to>`; an invalid value is none, warned.
 */
export function readProxyRewrites(
  get: (name: string) => string | undefined,
  warnAbout: (name: string, message: string) => void,
): ProxyRewrites {
  const out: ProxyRewrites = {};
  for (const [key, field, keywords] of [
    ['proxy-redirect-from', 'proxyRedirectFrom', ['off', 'default']],
    ['proxy-redirect-to', 'proxyRedirectTo', ['off']],
  ] as const) {
    const v = get(key);
    if (v === undefined) continue;
    if (key === 'proxy-redirect-from' && REGEX_FORM.test(v))
      warnAbout(key, `${JSON.stringify(v)} is an nginx regex (~), which keepip does not run; ignored`);
    else if ((keywords as readonly string[]).includes(v) || URL_VALUE.test(v)) out[field] = v;
    else
      warnAbout(
        key,
        `${JSON.stringify(v)} is not ${keywords.join(', ')} or a URL of [-._~a-zA-Z0-9/:,?&=]; ignored`,
      );
  }
  for (const [key, field] of [
    ['proxy-cookie-domain', 'proxyCookieDomain'],
    ['proxy-cookie-path', 'proxyCookiePath'],
  ] as const) {
    const v = get(key);
    if (v === undefined) continue;
    const parts = v.trim().split(/\s+/);
    if (v.trim() === 'off') out[field] = null;
    else if (parts.length === 2 && !REGEX_FORM.test(parts[0]!) && parts.every((p) => URL_VALUE.test(p)))
      out[field] = { from: parts[0]!, to: parts[1]! };
    // Ignored, not off: an Ingress's invalid one leaves the ConfigMap's, as ingress-nginx's proxy parser.
    else
      warnAbout(
        key,
        `${JSON.stringify(v)} is not "off" or "<from> <to>" (an nginx regex ~ is not run); ignored`,
      );
  }
  return out;
}

/**
 * A location's proxy_redirect from its two halves, as ingress-nginx's template writes it: `off` or
 * `default` from (or an absent one) is none (nginx's default changes nothing keepip's backends send),
 * an `off` or absent to is none too; otherwise the pair.
 */
export function proxyRedirectOf(from: string | undefined, to: string | undefined): Rewrite | null {
  if (from === undefined || from === 'off' || from === 'default') return null;
  if (to === undefined || to === 'off') return null;
  return { from, to };
}

const HTTP_ERRORS = /^(?:[45]\d{2},?)*$/;

/** custom-http-errors: "404,503" (ingress-nginx's arrayOfHTTPErrors); null when not a list of 4xx/5xx codes. */
export function parseHttpErrors(value: string): number[] | null {
  const compact = value.replaceAll(' ', '');
  if (!HTTP_ERRORS.test(compact)) return null;
  return [
    ...new Set(
      compact
        .split(',')
        .filter((c) => c !== '')
        .map(Number),
    ),
  ];
}

/**
 * disable-access-log / disable-http-access-log (no access log line at all: ingress-nginx's
 * `access_log off`), preserve-trailing-slash, use-port-in-redirects and relative-redirects (defaults of
 * the annotations).
 */
export function applyLogSettings(
  data: Readonly<Record<string, string>>,
  settings: {
    disableAccessLog?: boolean;
    preserveTrailingSlash?: boolean;
    usePortInRedirects?: boolean;
    relativeRedirects?: boolean;
    customHttpErrors?: readonly number[];
    disableProxyInterceptErrors?: boolean;
  },
  invalid: (key: string, value: string) => void,
): void {
  const keys = [
    'disable-access-log',
    'disable-http-access-log',
    'preserve-trailing-slash',
    'use-port-in-redirects',
    'relative-redirects',
    'custom-http-errors',
    'disable-proxy-intercept-errors',
  ];
  for (const key of keys) {
    const v = data[key];
    if (v === undefined) continue;
    if (key === 'custom-http-errors') {
      const codes = parseHttpErrors(v);
      if (codes === null) invalid(key, v);
      else if (codes.length > 0) settings.customHttpErrors = codes;
      continue;
    }
    const b = parseGoBool(v);
    if (b === null) invalid(key, v);
    else if (key === 'preserve-trailing-slash') settings.preserveTrailingSlash = b;
    else if (key === 'use-port-in-redirects') settings.usePortInRedirects = b;
    else if (key === 'relative-redirects') settings.relativeRedirects = b;
    else if (key === 'disable-proxy-intercept-errors') settings.disableProxyInterceptErrors = b;
    else if (b) settings.disableAccessLog = true;
  }
}

/** What one Ingress's route annotations say. */
export interface RouteAnnotations {
  /** permanent-redirect or temporal-redirect (temporal wins, as in ingress-nginx). */
  redirect: RedirectModel | null;
  fromToWwwRedirect: boolean;
  /** server-alias: names (exact, `*.suffix`, or `~regex`), sorted and without duplicates. */
  aliases: readonly string[];
  cors: CorsModel | null;
  /** upstream-vhost: the Host sent to the backend. */
  upstreamVhost: string | null;
  /** x-forwarded-prefix (only sent where the location rewrites). */
  xForwardedPrefix: string | null;
  /** enable-access-log: false turns the access log off for the Ingress's locations. */
  accessLog: boolean;
  /** enable-opentelemetry (with its trust and operation name); null: not set, the ConfigMap decides. */
  tracing: LocationTracing | null;
  /** preserve-trailing-slash / use-port-in-redirects; null: the ConfigMap's. */
  preserveTrailingSlash: boolean | null;
  usePortInRedirects: boolean | null;
  /** relative-redirects (nginx's absolute_redirect off); null: the ConfigMap's. */
  relativeRedirects: boolean | null;
  connectionHeader: 'close' | 'keep-alive' | null;
  /** default-backend: a Service of the Ingress's namespace, by name. */
  defaultBackend: string | null;
  /** custom-http-errors; null: the ConfigMap's. */
  customHttpErrors: readonly number[] | null;
  disableProxyInterceptErrors: boolean | null;
  /** proxy-http-version; null: the ConfigMap's. */
  proxyHttpVersion: '1.0' | '1.1' | null;
  /** proxy-redirect-* / proxy-cookie-*: undefined when not set (the ConfigMap's), null when off. */
  rewrites: ProxyRewrites;
}

export interface RouteInput {
  annotations: Readonly<Record<string, string>>;
  origin: Origin;
  issues: ConfigIssue[];
}

// ingress-nginx's validators (internal/ingress/annotations/parser/validators.go).
const ALNUM = ALPHANUMERIC_CHARS;
const SERVER_NAME = IS_VALID_REGEX;

/** Go's strconv.Atoi; undefined when absent, null when not an integer. */
function int(input: RouteInput, name: string): number | null | undefined {
  const v = input.annotations[PREFIX + name];
  if (v === undefined) return undefined;
  return parseGoInt(v);
}

/**
 * A redirect target made of the characters ingress-nginx allows (URLIsValidRegex). temporal-redirect
 * must also be an http(s) URL as Go's url.Parse reads it; permanent-redirect may be a path (`/new`),
 * which nginx's `return 301 /new` makes absolute unless relative-redirects.
 */
function redirectUrl(input: RouteInput, name: string, needsScheme: boolean): string | null | undefined {
  const v = input.annotations[PREFIX + name];
  if (v === undefined || v === '') return undefined;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(v)?.[1] ?? '';
  if (!URL_IS_VALID.test(v) || (needsScheme && !scheme.startsWith('http'))) {
    const what = needsScheme ? 'an http(s) URL' : 'a URL or path';
    warnAnnotation(input, name, `${JSON.stringify(v)} is not ${what} of [-._~a-zA-Z0-9/:,?&=]; no redirect`);
    return null;
  }
  return v;
}

/** One of permanent-redirect / temporal-redirect with its code: out of range is the default code. */
function readRedirect(
  input: RouteInput,
  kind: 'permanent' | 'temporal',
  fallback: number,
  max: number,
): RedirectModel | null | undefined {
  const url = redirectUrl(input, `${kind}-redirect`, kind === 'temporal');
  if (url === undefined || url === null) {
    // ingress-nginx reads permanent-redirect-code even without a redirect, and refuses the Ingress for it.
    if (kind === 'permanent' && int(input, `${kind}-redirect-code`) === null)
      warnAnnotation(input, `${kind}-redirect-code`, 'is not a whole number');
    return url;
  }
  const code = int(input, `${kind}-redirect-code`);
  if (code === null) {
    // ingress-nginx returns the parse error: the Ingress gets no redirect at all.
    warnAnnotation(input, `${kind}-redirect-code`, 'is not a whole number; no redirect');
    return null;
  }
  const status = code === undefined || code < 300 || code > max ? fallback : code;
  return { url, code: status };
}

function readAliases(input: RouteInput): string[] {
  const v = input.annotations[`${PREFIX}server-alias`];
  if (v === undefined) return [];
  const names = v
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  const bad = names.find((n) => !SERVER_NAME.test(n));
  if (bad !== undefined) {
    warnAnnotation(input, 'server-alias', `${JSON.stringify(bad)} is not a server name; no alias applies`);
    return [];
  }
  // Host names are case-insensitive; a `~` regex is kept as written (lower-casing `\D` would make it `\d`).
  return [...new Set(names.map((n) => (n.startsWith('~') ? n : n.toLowerCase())))].sort();
}

const CORS_DEFAULT_METHODS = 'GET, PUT, POST, DELETE, PATCH, OPTIONS';
const CORS_DEFAULT_HEADERS =
  'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization';
const CORS_DEFAULT_MAX_AGE = 1_728_000;
const CORS_ORIGIN = /^([a-z]+:\/\/(\*\.)?[A-Za-z0-9\-.]*(:\d+)?|\*|null)?$/;
// ingress-nginx's regexes (cors/main.go) in Go, where `\s` is ASCII white space and CR/LF are refused
// (MaliciousRegex): a space or a tab here. JavaScript's `\s` would take U+2028, U+200A…, characters
// a latin1 head writes as their low byte (a line feed). Go's `^([A-Za-z]+,?\s?)+$` runs in linear time
// (RE2); written so in JavaScript it backtracks exponentially (30 letters and a `!`: seconds, an Ingress
// could hang every translation). The same languages, unambiguous: a word, then (separator word)*, then
// an optional separator (test/security/regex-redos.test.ts checks every pattern of src/).
const CORS_METHODS = /^[A-Za-z]+(?:(?:,[\t ]?|[\t ])[A-Za-z]+)*,?[\t ]?$/;
const CORS_HEADERS = /^[A-Za-z0-9-_, ]*$/;
const CORS_EXPOSE = /^[A-Za-z0-9\-_*]+(?:(?:,[\t ]?|[\t ])[A-Za-z0-9\-_*]+)*(?:,[\t ]?|[\t ])?$/;

/** cors-allow-origin: `*` alone wins; entries ingress-nginx does not accept are skipped (warned). */
function corsOrigins(input: RouteInput): string[] {
  const v = input.annotations[`${PREFIX}cors-allow-origin`];
  if (v === undefined || v.trim() === '') return ['*'];
  const origins: string[] = [];
  for (const entry of v.split(',')) {
    const origin = entry.trim();
    if (origin === '') continue;
    if (origin === '*') return ['*'];
    if (CORS_ORIGIN.test(origin)) origins.push(origin);
    else
      warnAnnotation(
        input,
        'cors-allow-origin',
        `${JSON.stringify(origin)} is not scheme://host[:port], null or *; skipped`,
      );
  }
  return origins;
}

/**
 * A cors-* string with its validator, as ingress-nginx checks it: the raw value without its spaces
 * (ValidateRegex), then the value read with its lines trimmed (parseString) and checked again.
 * Absent is the default, empty too (warned); invalid is null (warned: `invalid` says what applies).
 */
function corsString(
  input: RouteInput,
  name: string,
  check: { valid: RegExp; fallback: string; invalid: string },
): string | null {
  const raw = input.annotations[PREFIX + name];
  if (raw === undefined) return check.fallback;
  const v = goAnnotationString(raw);
  if (v !== '' && check.valid.test(raw.replaceAll(' ', '')) && check.valid.test(v)) return v;
  // Nothing written is the default, as in ingress-nginx; something unreadable is what `invalid` says.
  const empty = v === '';
  const applies = empty ? `${JSON.stringify(check.fallback)} applies` : check.invalid;
  warnAnnotation(input, name, `${JSON.stringify(v)} is not accepted; ${applies}`);
  return empty ? check.fallback : null;
}

/**
 * enable-cors and its cors-* values. An invalid value fails closed where ingress-nginx's default would
 * grant more than the author wrote (its default methods, request headers or credentials): allow-methods
 * or allow-headers that cannot be read allow no origin, allow-credentials is false.
 */
function readCors(input: RouteInput): CorsModel | null {
  const values = annotationSource(input.annotations, input);
  if (!readBool(values, 'enable-cors', false, { kept: 'CORS is off' })) return null;
  const credentials = input.annotations[`${PREFIX}cors-allow-credentials`];
  const allowCredentials = credentials === undefined ? true : parseGoBool(credentials);
  if (allowCredentials === null)
    warnAnnotation(input, 'cors-allow-credentials', 'is not a boolean; false applies (fails closed)');
  const age = int(input, 'cors-max-age');
  if (age === null)
    warnAnnotation(input, 'cors-max-age', `is not a whole number; ${CORS_DEFAULT_MAX_AGE} applies`);
  const closed = 'no origin is allowed (fails closed)';
  const methods = corsString(input, 'cors-allow-methods', {
    valid: CORS_METHODS,
    fallback: CORS_DEFAULT_METHODS,
    invalid: closed,
  });
  const headers = corsString(input, 'cors-allow-headers', {
    valid: CORS_HEADERS,
    fallback: CORS_DEFAULT_HEADERS,
    invalid: closed,
  });
  return {
    allowOrigin: methods === null || headers === null ? [] : corsOrigins(input),
    allowMethods: methods ?? '',
    allowHeaders: headers ?? '',
    allowCredentials: allowCredentials ?? false,
    exposeHeaders:
      corsString(input, 'cors-expose-headers', { valid: CORS_EXPOSE, fallback: '', invalid: 'none' }) ?? '',
    maxAge: age ?? CORS_DEFAULT_MAX_AGE,
  };
}

const PREFIX_WITH_CAPTURES = new RegExp(`^/?[${ALNUM}/$]*$`);

/** A string annotation with ingress-nginx's validator; '' or absent is none, invalid is none (warned). */
function checked(
  input: RouteInput,
  name: string,
  valid: RegExp,
  what: string,
  normalize: (raw: string) => string = (raw) => raw,
): string | null {
  const raw = input.annotations[PREFIX + name];
  if (raw === undefined || raw === '') return null;
  const v = normalize(raw);
  if (valid.test(v)) return v;
  warnAnnotation(input, name, `${JSON.stringify(raw)} is not ${what}; ignored`);
  return null;
}

function readHttpErrors(input: RouteInput): readonly number[] | null {
  const v = input.annotations[`${PREFIX}custom-http-errors`];
  if (v === undefined) return null;
  const codes = parseHttpErrors(v);
  if (codes === null)
    warnAnnotation(
      input,
      'custom-http-errors',
      `${JSON.stringify(v)} is not a list of 4xx and 5xx codes; ignored`,
    );
  return codes;
}

/**
 * enable-opentelemetry as ingress-nginx's parser reads it: unset or malformed, the others are not read
 * (the ConfigMap decides); "false", tracing is off for the Ingress; "true", with the trust and name given.
 */
function readTracing(input: RouteInput, values: ScalarSource): LocationTracing | null {
  const enabled = readBool(values, 'enable-opentelemetry', null, { kept: 'the ConfigMap decides' });
  if (enabled !== true) return enabled === null ? null : { enabled };
  const trust = readBool(values, 'opentelemetry-trust-incoming-span', null, {
    kept: 'the ConfigMap decides',
  });
  const name = checked(input, 'opentelemetry-operation-name', OPERATION_NAME, 'letters, digits, "_" and "-"');
  return {
    enabled,
    ...(trust !== null ? { trustIncomingSpan: trust } : {}),
    ...(name !== null && name !== '' ? { operationName: name } : {}),
  };
}

/** Reads the route annotations of one Ingress. */
export function parseRouteAnnotations(input: RouteInput): RouteAnnotations {
  const values = annotationSource(input.annotations, input);
  // Absent or malformed (warned): the ConfigMap's value, or nginx's default.
  const optionalBool = (name: string) => readBool(values, name, null, { kept: 'the default applies' });
  const www = readBool(values, 'from-to-www-redirect', false, { kept: 'false applies' });
  // Temporal first: ingress-nginx returns it without looking at permanent-redirect.
  const temporal = readRedirect(input, 'temporal', 302, 307);
  const redirect = temporal !== undefined ? temporal : (readRedirect(input, 'permanent', 301, 308) ?? null);
  return {
    redirect,
    fromToWwwRedirect: www,
    aliases: readAliases(input),
    cors: readCors(input),
    // nginx would expand variables in it; keepip sends it as written, so `$` is refused.
    upstreamVhost: checked(
      input,
      'upstream-vhost',
      /^[-._~a-zA-Z0-9:]+$/,
      'a host name (with an optional port)',
    ),
    xForwardedPrefix: checked(
      input,
      'x-forwarded-prefix',
      PREFIX_WITH_CAPTURES,
      'a path of [-._~a-zA-Z0-9/:$]',
    ),
    accessLog: readBool(values, 'enable-access-log', true, { kept: 'true applies' }),
    tracing: readTracing(input, values),
    preserveTrailingSlash: optionalBool('preserve-trailing-slash'),
    defaultBackend: checked(input, 'default-backend', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'a Service name'),
    customHttpErrors: readHttpErrors(input),
    disableProxyInterceptErrors: optionalBool('disable-proxy-intercept-errors'),
    // ValidateOptions trims, and so does the value ingress-nginx writes (normalizeString).
    proxyHttpVersion: checked(input, 'proxy-http-version', /^1\.[01]$/, '1.0 or 1.1', trimGoSpace) as
      | '1.0'
      | '1.1'
      | null,
    rewrites: readProxyRewrites(
      (name) => input.annotations[PREFIX + name],
      (name, message) => warnAnnotation(input, name, message),
    ),
    usePortInRedirects: optionalBool('use-port-in-redirects'),
    relativeRedirects: optionalBool('relative-redirects'),
    connectionHeader: checked(
      input,
      'connection-proxy-header',
      /^(close|keep-alive)$/,
      'close or keep-alive',
    ) as 'close' | 'keep-alive' | null,
  };
}
