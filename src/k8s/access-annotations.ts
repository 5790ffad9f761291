// ingress-nginx's access-control annotations beyond source ranges, read per Ingress: rate and
// connection limits (limit-*), basic auth (auth-type, auth-secret, auth-secret-type, auth-realm),
// external auth (auth-url and companions, enable-global-auth), satisfy, and client certificates
// (auth-tls-*). Values are validated as ingress-nginx 1.12-1.15 validates them. Where ingress-nginx
// denies the location (a missing Secret, an invalid auth-url…), keepip does too: the location answers
// 503 (ACCESS_CONFIG_DENIED), never serving unprotected what was meant to be protected.
import { clientVariablesOf, fixedAuthority, isKeyVariable, variablesOf } from '../config/nginx-variables.ts';
import { pcreRegExp } from '../config/pcre-translate.ts';
import { backtrackingRisk } from '../config/regex-backtracking.ts';
import type {
  AuthKeepaliveModel,
  BasicAuthModel,
  ClientCertificateModel,
  ConfigIssue,
  ExternalAuthModel,
  GatewaySettings,
  HtpasswdEntry,
  LocationAccessModel,
  ObjectRef,
  Origin,
  RateLimitModel,
} from '../config/model.ts';
import { hashScheme, parseAuthMap, parseHtpasswd } from './htpasswd.ts';
import { isLocationInLocationList } from './location-list.ts';
import type { ConfigMapView, SecretView } from './objects.ts';
import { aliasedAnnotation, sourceRangeModel } from './source-range.ts';
import { ALPHANUMERIC_CHARS, BASIC_CHARS, URL_IS_VALID } from './validators.ts';
import {
  annotationIssue,
  annotationSource,
  configMapSource,
  readBool,
  readWhole,
  type ScalarSource,
  warnAnnotation,
} from './scalar-readers.ts';
import { parseGoBool, trimGoSpace } from './values.ts';
import { NGINX_AUTHORITY } from '../net/host-port.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';

/** The annotations this module reads (without the prefix). */
export const ACCESS_ANNOTATIONS: readonly string[] = [
  'limit-rate',
  'limit-rate-after',
  'limit-rps',
  'limit-rpm',
  'limit-connections',
  'limit-burst-multiplier',
  'limit-whitelist',
  'limit-allowlist',
  'auth-type',
  'auth-secret',
  'auth-secret-type',
  'auth-realm',
  'auth-url',
  'auth-method',
  'auth-signin',
  'auth-signin-redirect-param',
  'auth-response-headers',
  'auth-request-redirect',
  'auth-cache-key',
  'auth-cache-duration',
  'auth-proxy-set-headers',
  'auth-always-set-cookie',
  // auth-keepalive* (share-vars changes nothing keepip's subrequest shows: its variables are the client's).
  'auth-keepalive',
  'auth-keepalive-share-vars',
  'auth-keepalive-requests',
  'auth-keepalive-timeout',
  'enable-global-auth',
  'satisfy',
  'auth-tls-secret',
  'auth-tls-verify-client',
  'auth-tls-verify-depth',
  'auth-tls-error-page',
  'auth-tls-pass-certificate-to-upstream',
  'auth-tls-match-cn',
];

/** The ConfigMap keys this module reads. */
export const ACCESS_CONFIGMAP_KEYS: readonly string[] = [
  'limit-rate',
  'limit-rate-after',
  'limit-req-status-code',
  'limit-conn-zone-variable',
  'limit-conn-status-code',
  'global-auth-url',
  'global-auth-method',
  'global-auth-signin',
  'global-auth-signin-redirect-param',
  'global-auth-response-headers',
  'global-auth-request-redirect',
  'global-auth-cache-key',
  'global-auth-cache-duration',
  'global-auth-always-set-cookie',
  'no-auth-locations',
];

export const DEFAULT_AUTH_CACHE_DURATION = '200 202 401 5m';
export const DEFAULT_NO_AUTH_LOCATIONS = '/.well-known/acme-challenge';
const DEFAULT_BURST_MULTIPLIER = 5;

// ingress-nginx's validators (internal/ingress/annotations/parser/validators.go).
const ALNUM = ALPHANUMERIC_CHARS;
const URL_WITH_VARIABLES = new RegExp(`^[${ALNUM}, ,:?&=$]*$`);
const CHARS_WITH_SPACE = new RegExp(`^[/${ALNUM} ]*$`);
const NGINX_VARIABLE = /^[A-Za-z0-9\-_${}]*$/;
const HEADER_NAME = /^[a-zA-Z\d\-_]+$/;
const METHODS = /^(GET|HEAD|POST|PUT|PATCH|DELETE|CONNECT|OPTIONS|TRACE)$/;
const CACHE_STATUS = /^\d{3}$/;
const CACHE_TIME = /^\d+(ms|s|m|h|d|w|M|y)$/;
const TLS_ERROR_PAGE = /^(@[A-Za-z0-9_-]+|((https?:\/\/)?[A-Za-z0-9\-.]+(:\d+)?)?(\/[A-Za-z0-9\-_.]+)*\/?)$/;

export interface AccessInput {
  annotations: Readonly<Record<string, string>>;
  ingress: ObjectRef;
  origin: Origin;
  /** Secrets and ConfigMaps by "namespace/name". */
  secrets: ReadonlyMap<string, SecretView>;
  configMaps: ReadonlyMap<string, ConfigMapView>;
  settings: GatewaySettings;
  issues: ConfigIssue[];
}

/** What one Ingress's access annotations say, before the path is known (global auth depends on it). */
export interface IngressAccess {
  rateLimit: RateLimitModel | null;
  bandwidth: { rateBytes: number; afterBytes: number } | null;
  basicAuth: BasicAuthModel | null;
  externalAuth: ExternalAuthModel | null;
  enableGlobalAuth: boolean;
  satisfy: 'all' | 'any';
  denied: { annotation: string; reason: string } | null;
  clientCertificate: ClientCertificateModel | null;
}

interface Reader {
  input: AccessInput;
  get(name: string): string | undefined;
  /** The annotations for readBool / readWhole (scalar-readers.ts). */
  values: ScalarSource;
  warn(name: string, message: string): void;
  deny(name: string, reason: string): null;
  denied: { annotation: string; reason: string } | null;
}

function reader(input: AccessInput): Reader {
  const r: Reader = {
    input,
    denied: null,
    get: (name) => input.annotations[PREFIX + name],
    values: annotationSource(input.annotations, input),
    warn: (name, message) => warnAnnotation(input, name, message),
    deny(name, reason) {
      if (r.denied === null) r.denied = { annotation: PREFIX + name, reason };
      annotationIssue(
        input,
        'error',
        'ACCESS_CONFIG_DENIED',
        name,
        `${reason}; the locations of this Ingress answer 503, as ingress-nginx denies them`,
      );
      return null;
    },
  };
  return r;
}

/** A whole number (ingress-nginx's GetIntAnnotation): null when absent or invalid (warned). */
const WHOLE_NUMBER = { max: 1_000_000_000, expected: 'a whole number', kept: 'ignored' };

/**
 * `name` or `namespace/name`; another namespace is refused unless the ConfigMap's
 * allow-cross-namespace-resources is true, as ingress-nginx (false by default).
 */
function namespacedRef(r: Reader, name: string, value: string): string | null {
  const parts = value.split('/');
  if (parts.length > 2 || parts.some((p) => p === '') || !BASIC_CHARS.test(value))
    return r.deny(name, `${JSON.stringify(value)} is not "name" or "namespace/name"`);
  const namespace = parts.length === 2 ? parts[0]! : r.input.ingress.namespace;
  if (namespace !== r.input.ingress.namespace && !r.input.settings.allowCrossNamespaceResources)
    return r.deny(
      name,
      `${JSON.stringify(value)} is in another namespace (cross-namespace references need the ConfigMap's allow-cross-namespace-resources)`,
    );
  return `${namespace}/${parts[parts.length - 1]}`;
}

/**
 * limit-rps, limit-rpm or limit-connections: 0 when absent or empty. A value that is not a whole number
 * fails closed (the location is denied): ingress-nginx's validator refuses it and the Ingress is not
 * served at all, where ignoring it would serve the Ingress without its limit.
 */
/** nginx's limit_conn takes at most 65535 connections per key ("connection limit must be less 65536"). */
const MAX_CONNECTION_LIMIT = 65_535;

function readLimit(r: Reader, name: string, max = WHOLE_NUMBER.max): number {
  // The refusal below is the one issue: no warning that the value is "ignored" beside it.
  const quiet: ScalarSource = {
    get: (key) => r.values.get(key),
    ...(r.values.wholeAsParseInt ? { wholeAsParseInt: true } : {}),
    invalid: () => {},
  };
  const value = readWhole(quiet, name, null, WHOLE_NUMBER);
  const raw = r.get(name);
  if (value === null && raw !== undefined && raw !== '')
    r.deny(name, `${JSON.stringify(raw)} is not a whole number: a limit that cannot be read is not dropped`);
  if (value !== null && value > max)
    r.deny(
      name,
      `${value} is above ${max}, the most nginx takes: a limit that cannot be applied is not dropped`,
    );
  return value ?? 0;
}

function readRateLimit(r: Reader): RateLimitModel | null {
  const rps = readLimit(r, 'limit-rps');
  const rpm = readLimit(r, 'limit-rpm');
  const connections = readLimit(r, 'limit-connections', MAX_CONNECTION_LIMIT);
  // An unreadable multiplier (`1.5`), or 0 (nginx refuses `burst=0`), is the narrowest burst, 1 × the
  // limit: ingress-nginx's default 5 would let through more than the author asked for.
  const multiplier =
    r.get('limit-burst-multiplier') === undefined
      ? 0
      : readWhole(r.values, 'limit-burst-multiplier', -1, {
          ...WHOLE_NUMBER,
          min: 1,
          expected: 'a whole number above 0',
          kept: '1 applies (fails closed; ingress-nginx takes 5)',
        });
  const listed = aliasedAnnotation(r.input.annotations, [
    `${PREFIX}limit-allowlist`,
    `${PREFIX}limit-whitelist`,
  ]);
  let exempt = null;
  if (listed !== undefined && trimGoSpace(listed.value) !== '') {
    exempt = sourceRangeModel(listed.value, 'annotation');
    if (!exempt.valid) r.deny(listed.name.slice(PREFIX.length), exempt.error);
  }
  if (rps === 0 && rpm === 0 && connections === 0) return null;
  const { namespace, name } = r.input.ingress;
  return {
    zone: `${namespace}/${name}`,
    rps,
    rpm,
    connections,
    burstMultiplier: multiplier === -1 ? 1 : multiplier === 0 ? DEFAULT_BURST_MULTIPLIER : multiplier,
    exempt,
  };
}

function readBasicAuth(r: Reader): BasicAuthModel | null {
  const type = r.get('auth-type');
  if (type === undefined) return null;
  // ingress-nginx matches `basic|digest` unanchored; digest is not implemented by keepip.
  if (!/basic|digest/.test(type)) return r.deny('auth-type', `${JSON.stringify(type)} is not "basic"`);
  if (!/basic/.test(type)) return r.deny('auth-type', 'digest authentication is not supported by keepip');
  const secretType = r.get('auth-secret-type') ?? 'auth-file';
  if (secretType !== 'auth-file' && secretType !== 'auth-map')
    return r.deny('auth-secret-type', `${JSON.stringify(secretType)} is not "auth-file" or "auth-map"`);
  const secretName = r.get('auth-secret');
  if (secretName === undefined || secretName === '')
    return r.deny('auth-secret', 'auth-type basic needs auth-secret');
  const ref = namespacedRef(r, 'auth-secret', secretName);
  if (ref === null) return null;
  const secret = r.input.secrets.get(ref);
  if (secret === undefined) return r.deny('auth-secret', `Secret ${ref} is not in the manifests`);
  let users: HtpasswdEntry[];
  if (secretType === 'auth-map') users = parseAuthMap(secret.data);
  else if (secret.data.auth === undefined) return r.deny('auth-secret', `Secret ${ref} has no key "auth"`);
  else users = parseHtpasswd(secret.data.auth);
  let realm = r.get('auth-realm') ?? '';
  if (!CHARS_WITH_SPACE.test(realm)) {
    r.warn(
      'auth-realm',
      `${JSON.stringify(realm)} has characters ingress-nginx does not accept; the realm is ""`,
    );
    realm = '';
  }
  for (const entry of users) {
    const scheme = hashScheme(entry.hash);
    if (scheme === 'des-crypt' || scheme === 'sha-crypt' || (scheme === null && entry.hash !== ''))
      annotationIssue(
        r.input,
        'warning',
        'AUTH_HASH_UNSUPPORTED',
        'auth-secret',
        `user ${JSON.stringify(entry.user)} in Secret ${ref} has a ${scheme ?? 'unknown'} hash, which keepip does not verify (use bcrypt: htpasswd -B); this user cannot log in`,
      );
  }
  return { realm, secret: ref, secretType, users };
}

/** auth-cache-duration as ingress-nginx's ParseStringToCacheDurations: comma-separated "codes… time". */
export function parseCacheDurations(text: string | undefined): string[] | null {
  if (text === undefined || text.trim() === '') return [DEFAULT_AUTH_CACHE_DURATION];
  const out: string[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    let seenTime = false;
    for (const part of entry.split(' ')) {
      if (part === '') continue;
      if (CACHE_STATUS.test(part)) {
        if (seenTime) return null;
      } else if (CACHE_TIME.test(part)) seenTime = true;
    }
    if (!seenTime) return null;
    out.push(entry);
  }
  return out.length === 0 ? [DEFAULT_AUTH_CACHE_DURATION] : out;
}

/** ingress-nginx's StringToURL: a scheme, a host, no ".." in the host. Null when fine, else why not. */
export function authUrlProblem(url: string): string | null {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)/.exec(url);
  if (m === null) return /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(url) ? 'url host is empty' : 'url scheme is empty';
  if (m[2] === '') return 'url host is empty';
  if (m[2]!.includes('..')) return 'invalid url host';
  // A host named by a variable is checked per request (external-auth.ts); a fixed one now, as Go's url.Parse.
  if (!m[2]!.includes('$') && !NGINX_AUTHORITY.test(m[2]!)) return `invalid url host ${JSON.stringify(m[2])}`;
  if (!/^https?$/i.test(m[1]!)) return `scheme ${m[1]} is not http or https`;
  return null;
}

function headerList(text: string | undefined): string[] | null {
  const out: string[] = [];
  for (const raw of (text ?? '').split(',')) {
    const h = raw.trim();
    if (h === '') continue;
    if (!HEADER_NAME.test(h)) return null;
    out.push(h);
  }
  return out;
}

/** The parts of external auth both the annotations and the ConfigMap's global-auth-* keys set. */
export interface ExternalAuthFields {
  url: string;
  method?: string | undefined;
  signin?: string | undefined;
  signinRedirectParam?: string | undefined;
  responseHeaders?: string | undefined;
  requestRedirect?: string | undefined;
  cacheKey?: string | undefined;
  cacheDuration?: string | undefined;
  alwaysSetCookie: boolean;
}

/** Validates external auth fields; `fail(key, reason)` reports a problem that denies. */
export function buildExternalAuth(
  f: ExternalAuthFields,
  fail: (key: string, reason: string) => null,
  warn: (key: string, message: string) => void,
  global: boolean,
): ExternalAuthModel | null {
  if (!URL_WITH_VARIABLES.test(f.url))
    return fail('url', `${JSON.stringify(f.url)} has characters ingress-nginx does not accept`);
  const problem = authUrlProblem(f.url);
  if (problem !== null) return fail('url', `could not parse auth-url: ${problem}`);
  if (f.method !== undefined && !METHODS.test(f.method))
    return fail('method', `${JSON.stringify(f.method)} is not an HTTP method`);
  let signin = f.signin ?? null;
  if (signin !== null && (!URL_WITH_VARIABLES.test(signin) || signin === '')) {
    warn(
      'signin',
      `${JSON.stringify(signin)} has characters ingress-nginx does not accept; no sign-in redirect`,
    );
    signin = null;
  }
  let param = f.signinRedirectParam ?? null;
  if (param !== null && !URL_IS_VALID.test(param)) {
    warn('signin-redirect-param', `${JSON.stringify(param)} is not valid; "rd" applies`);
    param = null;
  }
  const responseHeaders = headerList(f.responseHeaders);
  if (responseHeaders === null) return fail('response-headers', 'invalid headers list');
  let cacheKey = f.cacheKey ?? null;
  if (cacheKey !== null && !NGINX_VARIABLE.test(cacheKey)) {
    warn('cache-key', `${JSON.stringify(cacheKey)} is not valid; auth responses are not cached`);
    cacheKey = null;
  }
  const cacheDurations = parseCacheDurations(f.cacheDuration);
  if (cacheDurations === null)
    return fail('cache-duration', `invalid cache duration ${JSON.stringify(f.cacheDuration)}`);
  const requestRedirect = f.requestRedirect ?? null;
  if (requestRedirect !== null && !URL_IS_VALID.test(requestRedirect))
    return fail('request-redirect', `${JSON.stringify(requestRedirect)} is not valid`);
  return {
    url: f.url,
    method: f.method ?? null,
    signin: signin === '' ? null : signin,
    signinRedirectParam: param === '' ? null : param,
    responseHeaders,
    requestRedirect: requestRedirect === '' ? null : requestRedirect,
    cacheKey: cacheKey === '' ? null : cacheKey,
    cacheDurations,
    proxySetHeaders: {},
    alwaysSetCookie: f.alwaysSetCookie,
    global,
  };
}

/** Variables that tell one client from another (the Host header does not). */

/**
 * auth-keepalive (idle connections, default 0: not set), -requests (1000) and -timeout (60 s), as
 * ingress-nginx reads them: off when a variable names the auth-url's host, or a count is not above 0.
 */
function readAuthKeepalive(r: Reader, url: string): AuthKeepaliveModel | null {
  const connections = readWhole(r.values, 'auth-keepalive', 0, { ...WHOLE_NUMBER, kept: 'not set' });
  const requests = readWhole(r.values, 'auth-keepalive-requests', 1000, {
    ...WHOLE_NUMBER,
    kept: '1000 applies',
  });
  const timeout = readWhole(r.values, 'auth-keepalive-timeout', 60, { ...WHOLE_NUMBER, kept: '60 applies' });
  // Read for its warning only: keepip's subrequest variables are the client request's either way.
  readBool(r.values, 'auth-keepalive-share-vars', false, { kept: 'false applies' });
  if (connections <= 0) return null;
  if (!fixedAuthority(url) || requests <= 0 || timeout <= 0) {
    r.warn(
      'auth-keepalive',
      `${connections} does not apply: a variable names the auth-url's host, or a count is 0`,
    );
    return null;
  }
  return { connections, requests, timeoutMs: timeout * 1000 };
}

function readExternalAuth(r: Reader): ExternalAuthModel | null {
  const url = r.get('auth-url');
  if (url === undefined) return null;
  const model = buildExternalAuth(
    {
      url,
      method: r.get('auth-method'),
      signin: r.get('auth-signin'),
      signinRedirectParam: r.get('auth-signin-redirect-param'),
      responseHeaders: r.get('auth-response-headers'),
      requestRedirect: r.get('auth-request-redirect'),
      cacheKey: r.get('auth-cache-key'),
      cacheDuration: r.get('auth-cache-duration'),
      alwaysSetCookie: readBool(r.values, 'auth-always-set-cookie', false, { kept: 'false applies' }),
    },
    (key, reason) => r.deny(`auth-${key}`, reason),
    (key, message) => r.warn(`auth-${key}`, message),
    false,
  );
  if (model === null) return null;
  const keepalive = readAuthKeepalive(r, model.url);
  if (keepalive !== null) model.keepalive = keepalive;
  const shared = sharedCacheKey(model.cacheKey, 'the location');
  if (shared !== null) annotationIssue(r.input, 'warning', 'AUTH_CACHE_SHARED', 'auth-cache-key', shared);
  const mapName = r.get('auth-proxy-set-headers');
  if (mapName === undefined || mapName === '') return model;
  const ref = namespacedRef(r, 'auth-proxy-set-headers', mapName);
  if (ref === null) return null;
  const map = r.input.configMaps.get(ref);
  if (map === undefined) return r.deny('auth-proxy-set-headers', `unable to find ConfigMap ${ref}`);
  for (const header of Object.keys(map.data))
    if (!HEADER_NAME.test(header))
      return r.deny(
        'auth-proxy-set-headers',
        `invalid header name ${JSON.stringify(header)} in ConfigMap ${ref}`,
      );
  return { ...model, proxySetHeaders: { ...map.data } };
}

function readClientCertificate(r: Reader): ClientCertificateModel | null {
  const secretName = r.get('auth-tls-secret');
  if (secretName === undefined) return null;
  const base: ClientCertificateModel = {
    ingress: r.input.ingress,
    secret: secretName,
    caPem: null,
    crlPem: null,
    verifyClient: 'on',
    verifyDepth: 1,
    errorPage: null,
    passCertificate: readBool(r.values, 'auth-tls-pass-certificate-to-upstream', false, {
      kept: 'false applies',
    }),
    matchCn: null,
    error: null,
  };
  const verify = r.get('auth-tls-verify-client');
  if (verify === 'on' || verify === 'off' || verify === 'optional' || verify === 'optional_no_ca')
    base.verifyClient = verify;
  else if (verify !== undefined)
    r.warn(
      'auth-tls-verify-client',
      `${JSON.stringify(verify)} is not on, off, optional or optional_no_ca; "on" applies`,
    );
  const depth = readWhole(r.values, 'auth-tls-verify-depth', null, WHOLE_NUMBER);
  if (depth !== null && depth > 0) base.verifyDepth = depth;
  const page = r.get('auth-tls-error-page');
  if (page !== undefined && page !== '') {
    if (TLS_ERROR_PAGE.test(page) && !page.startsWith('@')) base.errorPage = page;
    else
      r.warn(
        'auth-tls-error-page',
        `${JSON.stringify(page)} is not a URL or path keepip can redirect to; the 400 page applies`,
      );
  }
  const cn = r.get('auth-tls-match-cn');
  if (cn !== undefined) base.matchCn = matchCnOrError(r, cn, base);
  const fail = (why: string): ClientCertificateModel => {
    annotationIssue(
      r.input,
      'error',
      'ACCESS_CONFIG_DENIED',
      'auth-tls-secret',
      `${why}; every request to this host answers 403, as ingress-nginx does`,
    );
    return { ...base, error: why };
  };
  const parts = secretName.split('/');
  if (parts.length > 2 || parts.some((p) => p === '') || !BASIC_CHARS.test(secretName))
    return fail(`${JSON.stringify(secretName)} is not "name" or "namespace/name"`);
  const namespace = parts.length === 2 ? parts[0]! : r.input.ingress.namespace;
  if (namespace !== r.input.ingress.namespace && !r.input.settings.allowCrossNamespaceResources)
    return fail('cross namespace secrets are not supported (allow-cross-namespace-resources is false)');
  const ref = `${namespace}/${parts[parts.length - 1]}`;
  const secret = r.input.secrets.get(ref);
  if (secret === undefined) return fail(`error obtaining certificate: Secret ${ref} is not in the manifests`);
  const ca = secret.data['ca.crt'];
  if (ca === undefined || !/-----BEGIN CERTIFICATE-----/.test(ca))
    return fail(`Secret ${ref} has no PEM certificate in ca.crt`);
  // ingress-nginx writes ca.crl as ssl_crl; one nginx could not load fails its reload, here the host.
  const crl = secret.data['ca.crl'];
  if (crl !== undefined && !/-----BEGIN X509 CRL-----/.test(crl))
    return fail(`Secret ${ref} has no PEM CRL in ca.crl`);
  return { ...base, secret: ref, caPem: ca, crlPem: crl ?? null };
}

function matchCnOrError(r: Reader, cn: string, base: ClientCertificateModel): string | null {
  if (!cn.startsWith('CN=')) {
    r.warn(
      'auth-tls-match-cn',
      `${JSON.stringify(cn)} does not start with "CN="; every client certificate is refused`,
    );
    base.error = 'auth-tls-match-cn is invalid';
    return null;
  }
  const risk = backtrackingRisk(cn);
  if (risk !== null) {
    r.warn('auth-tls-match-cn', `${JSON.stringify(cn)} ${risk}; every client certificate is refused`);
    base.error = 'auth-tls-match-cn is invalid';
    return null;
  }
  try {
    pcreRegExp(cn); // nginx tests it with `!~`: PCRE
    return cn;
  } catch {
    r.warn(
      'auth-tls-match-cn',
      `${JSON.stringify(cn)} is not a valid regex; every client certificate is refused`,
    );
    base.error = 'auth-tls-match-cn is invalid';
    return null;
  }
}

/** Reads the access annotations of one Ingress. */
export function parseAccessAnnotations(input: AccessInput): IngressAccess {
  const r = reader(input);
  // Snippets are refused by name with the other catalogued names (annotations.ts, ANNOTATION_REFUSED).
  const rateLimit = readRateLimit(r);
  const basicAuth = readBasicAuth(r);
  const externalAuth = readExternalAuth(r);
  const satisfyRaw = r.get('satisfy');
  let satisfy: 'all' | 'any' = 'all';
  if (satisfyRaw !== undefined) {
    // As written: ingress-nginx compares the raw value, so 'Any' or ' any' is all there.
    if (satisfyRaw === 'any' || satisfyRaw === 'all') satisfy = satisfyRaw;
    else r.warn('satisfy', `${JSON.stringify(satisfyRaw)} is not "any" or "all"; "all" applies`);
  }
  const rateKb = readWhole(r.values, 'limit-rate', null, WHOLE_NUMBER) ?? input.settings.limitRateKb ?? 0;
  const afterKb =
    readWhole(r.values, 'limit-rate-after', null, WHOLE_NUMBER) ?? input.settings.limitRateAfterKb ?? 0;
  return {
    rateLimit,
    bandwidth: rateKb > 0 ? { rateBytes: rateKb * 1024, afterBytes: afterKb * 1024 } : null,
    basicAuth,
    externalAuth,
    enableGlobalAuth: readBool(r.values, 'enable-global-auth', true, { kept: 'true applies' }),
    satisfy,
    denied: r.denied,
    clientCertificate: readClientCertificate(r),
  };
}

/** The access model of one location of the Ingress, with global auth applied; undefined when it has none. */
export function locationAccess(
  access: IngressAccess,
  path: string,
  settings: GatewaySettings,
): LocationAccessModel | undefined {
  const noAuthLocations = settings.noAuthLocations ?? DEFAULT_NO_AUTH_LOCATIONS;
  const global = settings.globalAuth ?? null;
  const exempt = isLocationInLocationList(path, noAuthLocations);
  let externalAuth = exempt ? null : access.externalAuth;
  if (externalAuth === null && !exempt && global !== null && access.enableGlobalAuth) externalAuth = global;
  const basicAuth = exempt ? null : access.basicAuth;
  let denied = access.denied;
  if (externalAuth !== null && externalAuth.url === '') {
    denied ??= { annotation: 'global-auth-url', reason: 'the ConfigMap global-auth-url cannot be used' };
    externalAuth = null;
  }
  const { rateLimit, bandwidth, satisfy } = access;
  if (
    rateLimit === null &&
    bandwidth === null &&
    basicAuth === null &&
    externalAuth === null &&
    denied === null &&
    satisfy === 'all'
  )
    return undefined;
  return {
    rateLimit,
    basicAuth,
    externalAuth,
    satisfy,
    denied,
    ...(bandwidth !== null ? { bandwidth } : {}),
  };
}

/** How the ConfigMap part reports: a bad value keeps the default (warning); a bad global auth denies it. */
export interface SettingsSink {
  invalid(key: string, value: string, expected: string, kept: string): void;
  error(key: string, message: string): void;
  /** A warning worded whole: a value refused with its reason, or one that works but not as meant. */
  warning(key: string, code: 'AUTH_CACHE_SHARED' | 'INVALID_CONFIGMAP_VALUE', message: string): void;
}

/**
 * Why an auth cache key that names nothing of the client shares one answer among all of `whose`
 * clients; null when it names some (or there is no cache).
 */
function sharedCacheKey(cacheKey: string | null, whose: string): string | null {
  if (cacheKey === null || clientVariablesOf(cacheKey).length > 0) return null;
  return `${JSON.stringify(cacheKey.slice(0, 200))} names nothing of the client: one cached auth answer serves every client of ${whose} (the first client's 200 admits the next unchecked); put the credentials in the key, e.g. "$remote_user$http_authorization"`;
}

const STATUS_CODE = { min: 400, max: 599, expected: 'an HTTP status code from 400 to 599', kept: '503' };

/**
 * limit-conn-zone-variable, the key of every limit zone (ingress-nginx's `$limit_<id>` map): the
 * client address ($binary_remote_addr, the default, or $remote_addr) leaves the default; other nginx
 * request variables key on what they expand to. A variable keepip cannot expand would make every
 * key empty, and nginx does not limit empty keys; one new on every request ($msec, $req_id, which the
 * client sets) would count every request alone: both refused (warned), the client address stays.
 */
function readLimitKey(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  sink: SettingsSink,
): void {
  const template = data['limit-conn-zone-variable']?.trim();
  if (template === undefined || template === '') return;
  const names = variablesOf(template);
  if (names.length === 0 || !names.every(isKeyVariable)) {
    sink.invalid(
      'limit-conn-zone-variable',
      template,
      'nginx request variables keepip expands ($binary_remote_addr, $remote_addr, $http_<name>, $cookie_<name>, $arg_<name>, $host, $server_name…)',
      '$binary_remote_addr',
    );
    return;
  }
  // The address alone is the default key, whichever way it is written.
  if (!/^\$(\{(binary_)?remote_addr\}|(binary_)?remote_addr)$/.test(template)) settings.limitKey = template;
}

/** limit-*-status-code, limit-conn-zone-variable, global-auth-* and no-auth-locations into `settings`. */
export function applyAccessSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  sink: SettingsSink,
): void {
  const keys = configMapSource(data, (...report) => sink.invalid(...report));
  settings.limitReqStatusCode = readWhole(keys, 'limit-req-status-code', 503, STATUS_CODE);
  settings.limitConnStatusCode = readWhole(keys, 'limit-conn-status-code', 503, STATUS_CODE);
  readLimitKey(data, settings, sink);
  settings.noAuthLocations = data['no-auth-locations'] ?? DEFAULT_NO_AUTH_LOCATIONS;
  for (const [key, field] of [
    ['limit-rate', 'limitRateKb'],
    ['limit-rate-after', 'limitRateAfterKb'],
  ] as const) {
    const rule = { max: 1_000_000_000, expected: 'a whole number of KB', kept: '0 (no limit)' };
    const n = readWhole(keys, key, null, rule);
    if (n !== null) settings[field] = n;
  }
  settings.globalAuth = null;
  const url = data['global-auth-url'];
  if (url === undefined || url.trim() === '') return;
  const always = parseGoBool(data['global-auth-always-set-cookie'] ?? 'false');
  let failed = false;
  const model = buildExternalAuth(
    {
      url: url.trim(),
      method: data['global-auth-method'] || undefined,
      signin: data['global-auth-signin'] || undefined,
      // ingress-nginx trims this one (configmap.go), not the others.
      signinRedirectParam: data['global-auth-signin-redirect-param']?.trim() || undefined,
      responseHeaders: data['global-auth-response-headers'],
      requestRedirect: data['global-auth-request-redirect'] || undefined,
      cacheKey: data['global-auth-cache-key'] || undefined,
      cacheDuration: data['global-auth-cache-duration'],
      alwaysSetCookie: always ?? false,
    },
    (key, reason) => {
      failed = true;
      sink.error(`global-auth-${key}`, `${reason}; every location global auth covers answers 503`);
      return null;
    },
    (key, message) => sink.warning(`global-auth-${key}`, 'INVALID_CONFIGMAP_VALUE', message),
    true,
  );
  // An unusable global auth fails closed (ingress-nginx would drop it and serve unprotected).
  settings.globalAuth = failed ? { ...UNUSABLE_GLOBAL_AUTH } : model;
  const shared = failed ? null : sharedCacheKey(model?.cacheKey ?? null, 'every location global auth covers');
  if (shared !== null) sink.warning('global-auth-cache-key', 'AUTH_CACHE_SHARED', shared);
}

/** Stands for a global-auth-url that cannot be used: locations it covers are denied. */
const UNUSABLE_GLOBAL_AUTH: ExternalAuthModel = {
  url: '',
  method: null,
  signin: null,
  signinRedirectParam: null,
  responseHeaders: [],
  requestRedirect: null,
  cacheKey: null,
  cacheDurations: [],
  proxySetHeaders: {},
  alwaysSetCookie: false,
  global: true,
};
