// Annotation values: keepip's translation against ingress-nginx's own validators.
//
// Every annotation keepip implements is fed the same values: ingress-nginx's e2e and unit test values,
// and attack values (nginx variables, `;`, braces, quotes, CR/LF, `#`, spaces, `..`, unicode, a very
// long value, whitespace). Each value goes to keepip (the real loader and buildTopology) and to a
// transcription of the validator ingress-nginx runs on that annotation (from
// test/helpers/go-annotation-validators.ts, or below), named in the table below with its place in the
// mirror (git --git-dir=/work/.mirror/kubernetes+ingress-nginx/repo show HEAD:<path>,
// HEAD dbb11b92ddb77bee9c35e462479129354c84f939).
//
// ingress-nginx (parser/validators.go:207-251, checkAnnotation): an empty value is never validated; a
// value its validator refuses is a ValidationError, which each parser turns into its default, a denied
// location (auth, source ranges) or, passed up to annotations.go:192-195, an Ingress that is not synced
// at all (store/store.go:949-953).
//
// What is asserted (the safe behaviour; a failure is a finding):
//   - a value ingress-nginx refuses is not taken by keepip without a warning or error naming the
//     annotation, unless the ALLOWED table below says why taking it is harmless;
//   - an access annotation (source ranges, auth-*, limit-allowlist) never ends more open in keepip than
//     in ingress-nginx: where ingress-nginx denies the location, keepip denies it too;
//   - no value with CR or LF reaches the model (ingress-nginx's MaliciousRegex, validators.go:84).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigIssue, LocationModel, Topology } from '../../src/config/model.ts';
import { SUPPORTED_ANNOTATIONS } from '../../src/k8s/annotations.ts';
import {
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
  opaqueSecret as secret,
} from '../fixtures/gateway/manifests.ts';
import {
  bool,
  cidrs,
  GO,
  int,
  options,
  regex,
  V,
  type Validator,
} from '../helpers/go-annotation-validators.ts';
import { goTrimSpace } from '../helpers/go-net.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';

// ---------------------------------------------------------------------------------------------
// ingress-nginx's validators, transcribed (internal/ingress/annotations/parser/validators.go; its
// patterns, ValidateRegex, ValidateOptions, ValidateBool, ValidateInt, ValidateCIDRs and the
// per-annotation V are in test/helpers/go-annotation-validators.ts).

/** validators.go:100-106 ValidateServerName. */
const serverName: Validator = (s) => GO.IsValidRegex.test(goTrimSpace(s));
/** validators.go:89-96 ValidateArrayOfServerName. */
const serverNames: Validator = (s) => s.split(',').every(serverName);
/** validators.go:192-198 ValidateServiceName (DNS-1035 label). */
const serviceName: Validator = (s) => s.length <= 63 && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(s);
/** validators.go:129-139 CommonNameAnnotationValidator (RE2 compile, approximated by RegExp). */
const commonName: Validator = (s) => {
  if (!s.startsWith('CN=')) return false;
  try {
    new RegExp(s.slice(3));
    return true;
  } catch {
    return false;
  }
};

// ---------------------------------------------------------------------------------------------
// The annotations keepip implements, with the validator ingress-nginx runs on each (main.go:line),
// the annotations they need to be read at all, and values of ingress-nginx's own tests.

interface Spec {
  name: string;
  go: Validator;
  /** Where the Validator is declared (internal/ingress/annotations/…). */
  at: string;
  context?: Record<string, string>;
  values?: string[];
  /** Whether keepip took the value; default: no warning or error names the annotation. */
  applied?: (loc: LocationModel) => boolean;
}

const AUTH_URL = { 'auth-url': 'http://auth.example/check' };
const TLS = { 'auth-tls-secret': 'default/ca' };
const PROXY_SSL = { 'backend-protocol': 'HTTPS', 'proxy-ssl-secret': 'default/ca' };
const CORS = { 'enable-cors': 'true' };
const COOKIE = { affinity: 'cookie' };
const CANARY = { canary: 'true' };
const OTEL = { 'enable-opentelemetry': 'true' };
const CIDR_VALUES = [
  '10.0.0.0/8',
  '10.0.0.1, 192.168.0.0/16',
  '10.0.0.0/33',
  'bogus',
  '10.0.0.0/8,',
  ',10.0.0.0/8',
];

const SPECS: Spec[] = [
  {
    name: 'allowlist-source-range',
    go: cidrs,
    at: 'ipallowlist/main.go:42',
    values: [...CIDR_VALUES, '010.0.0.1', '10.0.0.0/08', '::ffff:10.0.0.1', 'fe80::1%eth0', '10.0.0.0/8\n'],
    applied: (l) => l.allow?.valid === true,
  },
  {
    name: 'whitelist-source-range',
    go: cidrs,
    at: 'ipallowlist/main.go:46 (alias)',
    values: CIDR_VALUES,
    applied: (l) => l.allow?.valid === true,
  },
  {
    name: 'denylist-source-range',
    go: cidrs,
    at: 'ipdenylist/main.go:41',
    values: CIDR_VALUES,
    applied: (l) => l.deny?.valid === true,
  },
  {
    name: 'rewrite-target',
    go: regex(GO.RegexPathWithCapture, false),
    at: 'rewrite/main.go:43',
    values: ['/', '/$1', '/app/$2/x', '$1', 'http://x/'],
  },
  {
    name: 'use-regex',
    go: bool,
    at: 'rewrite/main.go:68',
    values: ['true', 'True', 'TRUE', 'tRue', '1', 'yes'],
  },
  { name: 'ssl-redirect', go: bool, at: 'rewrite/main.go:50', values: ['false', 'tRue', ' false', 'true\n'] },
  { name: 'force-ssl-redirect', go: bool, at: 'rewrite/main.go:62' },
  { name: 'preserve-trailing-slash', go: bool, at: 'rewrite/main.go:56' },
  {
    name: 'app-root',
    go: regex(GO.RegexPathWithCapture, false),
    at: 'rewrite/main.go:75',
    values: ['/foo', '/foo/$1', 'foo', 'http://evil.com', '//evil.com'],
  },
  { name: 'service-upstream', go: bool, at: 'serviceupstream/main.go:35' },
  {
    name: 'backend-protocol',
    go: options(['auto_http', 'http', 'https', 'grpc', 'grpcs', 'fcgi'], false, true),
    at: 'backendprotocol/main.go:39',
    values: ['HTTPS', 'https', ' GRPC ', 'h2c'],
  },
  {
    name: 'proxy-body-size',
    go: regex(GO.SizeRegex, true),
    at: 'proxy/main.go:109',
    values: ['8m', '8M', '1 m', '0', ' 0', '5g ', '1g', '1t', '-1', '8mb', '1.5m'],
  },
  { name: 'proxy-connect-timeout', go: int, at: 'proxy/main.go:59', values: ['5', '-1', '5s', '+5', '1.5'] },
  { name: 'proxy-read-timeout', go: int, at: 'proxy/main.go:71' },
  { name: 'proxy-send-timeout', go: int, at: 'proxy/main.go:65' },
  {
    name: 'permanent-redirect',
    go: regex(GO.URLIsValidRegex, false),
    at: 'redirect/redirect.go:63',
    values: [
      'https://www.google.com',
      '/foo?a=b&c=d',
      'https://x/$host',
      'https://x/#frag',
      'https://x/%0d%0aSet-Cookie:a',
      'javascript:alert(1)',
      '//evil.com',
    ],
  },
  {
    name: 'permanent-redirect-code',
    go: int,
    at: 'redirect/redirect.go:70',
    context: { 'permanent-redirect': 'https://x.example/' },
    values: ['308', '200', '30x'],
  },
  {
    name: 'temporal-redirect',
    go: regex(GO.URLIsValidRegex, false),
    at: 'redirect/redirect.go:76',
    values: ['https://www.google.com', 'https://x/$host'],
  },
  {
    name: 'temporal-redirect-code',
    go: int,
    at: 'redirect/redirect.go:83',
    context: { 'temporal-redirect': 'https://x.example/' },
    values: ['307'],
  },
  { name: 'relative-redirects', go: bool, at: 'redirect/redirect.go:89' },
  { name: 'from-to-www-redirect', go: bool, at: 'redirect/redirect.go:57' },
  { name: 'use-port-in-redirects', go: bool, at: 'portinredirect/main.go:34' },
  {
    name: 'server-alias',
    go: serverNames,
    at: 'alias/main.go:38',
    values: [
      'a.example',
      'a.example,b.example',
      '*.a.example',
      '~^www\\d+\\.example\\.com$',
      'a.example b.example',
    ],
  },
  { name: 'enable-cors', go: bool, at: 'cors/main.go:71' },
  {
    name: 'cors-allow-origin',
    go: V.corsOrigin,
    at: 'cors/main.go:77',
    context: CORS,
    values: [
      '*',
      'https://origin.example',
      'null, https://origin123.test.com:4443',
      'https://*.example.com',
      'origin123.test.com:4443',
      'test://localhost',
      '$http_origin',
    ],
  },
  {
    name: 'cors-allow-methods',
    go: V.corsMethods,
    at: 'cors/main.go:93',
    context: CORS,
    values: ['GET, POST', 'PUT,DELETE', 'GET;POST', 'GET\nPOST', 'GET\u00a0POST'],
  },
  {
    name: 'cors-allow-headers',
    go: regex(GO.HeadersVariable, true),
    at: 'cors/main.go:86',
    context: CORS,
    values: ['X-Foo, Authorization', 'X-Foo\r\nX-Bar'],
  },
  {
    name: 'cors-expose-headers',
    go: V.corsExpose,
    at: 'cors/main.go:106',
    context: CORS,
    values: ['X-Foo, X-Bar', '*', 'X-Foo\nX-Bar', 'X-Foo\u2028'],
  },
  { name: 'cors-allow-credentials', go: bool, at: 'cors/main.go:100', context: CORS },
  { name: 'cors-max-age', go: int, at: 'cors/main.go:113', context: CORS, values: ['600', '-1'] },
  {
    name: 'upstream-vhost',
    go: serverName,
    at: 'upstreamvhost/main.go:34',
    values: ['backend.example', 'backend.example:8080', 'a.example\r\nX: y'],
  },
  {
    name: 'x-forwarded-prefix',
    go: regex(GO.RegexPathWithCapture, true),
    at: 'xforwardedprefix/main.go:34',
    context: { 'rewrite-target': '/$1', 'use-regex': 'true' },
    values: ['/api', '/$1', 'api'],
  },
  {
    name: 'custom-headers',
    go: regex(GO.BasicCharsRegex, true),
    at: 'customheaders/main.go:74',
    values: ['hdrs', 'default/hdrs'],
  },
  { name: 'enable-access-log', go: bool, at: 'log/main.go:35' },
  {
    name: 'upstream-hash-by',
    go: V.hashBy,
    at: 'upstreamhashby/main.go:44',
    values: ['$request_uri', '$remote_addr', '$'.concat('{request_uri}'), '$request_uri$host', 'abc'],
  },
  {
    name: 'upstream-hash-by-subset',
    go: bool,
    at: 'upstreamhashby/main.go:51',
    context: { 'upstream-hash-by': '$request_uri' },
  },
  {
    name: 'upstream-hash-by-subset-size',
    go: int,
    at: 'upstreamhashby/main.go:57',
    context: { 'upstream-hash-by': '$request_uri', 'upstream-hash-by-subset': 'true' },
  },
  {
    name: 'load-balance',
    go: options(
      ['round_robin', 'chash', 'chashsubset', 'sticky_balanced', 'sticky_persistent', 'ewma'],
      true,
      true,
    ),
    at: 'loadbalancing/main.go:38',
    values: ['ewma', 'round_robin', 'EWMA'],
  },
  {
    name: 'connection-proxy-header',
    go: V.connection,
    at: 'connection/main.go:38',
    values: ['close', 'keep-alive', 'upgrade'],
  },
  {
    name: 'proxy-next-upstream',
    go: V.nextUpstream,
    at: 'proxy/main.go:115',
    values: ['error timeout', 'off', 'http_500 http_502', 'http_418'],
  },
  { name: 'proxy-next-upstream-tries', go: int, at: 'proxy/main.go:129' },
  { name: 'proxy-next-upstream-timeout', go: int, at: 'proxy/main.go:123' },
  {
    name: 'default-backend',
    go: serviceName,
    at: 'defaultbackend/main.go:36',
    values: ['svc', 'Svc', 'default/svc'],
  },
  {
    name: 'custom-http-errors',
    go: V.httpErrors,
    at: 'customhttperrors/main.go:42',
    values: ['404,503', '404, 503', '200', '4044'],
  },
  { name: 'disable-proxy-intercept-errors', go: bool, at: 'disableproxyintercepterrors/main.go:35' },
  {
    name: 'proxy-redirect-from',
    go: regex(GO.URLIsValidRegex, true),
    at: 'proxy/main.go:141',
    context: { 'proxy-redirect-to': 'https://b.example/' },
    values: ['http://a.example/', 'default', 'off', '$scheme://x/'],
  },
  {
    name: 'proxy-redirect-to',
    go: regex(GO.URLIsValidRegex, true),
    at: 'proxy/main.go:147',
    context: { 'proxy-redirect-from': 'http://a.example/' },
    values: ['https://b.example/', 'https://$host/'],
  },
  {
    name: 'proxy-cookie-domain',
    go: V.cookieDomain,
    at: 'proxy/main.go:103',
    values: ['off', 'a.example b.example', 'a.example', 'a.example $host'],
  },
  {
    name: 'proxy-cookie-path',
    go: regex(GO.URLIsValidRegex, true),
    at: 'proxy/main.go:97',
    values: ['off', '/one/ /', '/one/ $host'],
  },
  {
    name: 'proxy-http-version',
    go: options(['1.0', '1.1'], true, true),
    at: 'proxy/main.go:159',
    values: ['1.0', '1.1', '2'],
  },
  {
    name: 'proxy-request-buffering',
    go: options(['on', 'off'], true, true),
    at: 'proxy/main.go:135',
    values: ['on', 'off', 'OFF'],
  },
  {
    name: 'client-body-buffer-size',
    go: regex(GO.SizeRegex, true),
    at: 'clientbodybuffersize/main.go:34',
    values: ['8k', '1m', '8K'],
  },
  { name: 'limit-rps', go: int, at: 'ratelimit/main.go:170', values: ['5', '0', '-1', '1.5'] },
  { name: 'limit-rpm', go: int, at: 'ratelimit/main.go:164' },
  { name: 'limit-connections', go: int, at: 'ratelimit/main.go:176' },
  { name: 'limit-rate', go: int, at: 'ratelimit/main.go:150' },
  { name: 'limit-rate-after', go: int, at: 'ratelimit/main.go:158' },
  { name: 'limit-burst-multiplier', go: int, at: 'ratelimit/main.go:182', context: { 'limit-rps': '5' } },
  {
    name: 'limit-allowlist',
    go: cidrs,
    at: 'ratelimit/main.go:188',
    context: { 'limit-rps': '5' },
    values: CIDR_VALUES,
    applied: (l) => l.access?.rateLimit?.exempt?.valid === true,
  },
  {
    name: 'limit-whitelist',
    go: cidrs,
    at: 'ratelimit/main.go:192 (alias)',
    context: { 'limit-rps': '5' },
    values: CIDR_VALUES,
    applied: (l) => l.access?.rateLimit?.exempt?.valid === true,
  },
  {
    name: 'auth-type',
    go: V.authType,
    at: 'auth/main.go:78',
    context: { 'auth-secret': 'pw' },
    values: ['basic', 'digest', 'Basic', 'xbasicx'],
  },
  {
    name: 'auth-secret',
    go: regex(GO.BasicCharsRegex, true),
    at: 'auth/main.go:54',
    context: { 'auth-type': 'basic' },
    values: ['pw', 'default/pw', 'other/pw', 'a/b/c'],
  },
  {
    name: 'auth-secret-type',
    go: V.authSecretType,
    at: 'auth/main.go:65',
    context: { 'auth-type': 'basic', 'auth-secret': 'pw' },
    values: ['auth-file', 'auth-map', 'Auth-File'],
  },
  {
    name: 'auth-realm',
    go: regex(GO.CharsWithSpace, false),
    at: 'auth/main.go:72',
    context: { 'auth-type': 'basic', 'auth-secret': 'pw' },
    values: ['Authentication Required', 'a"b', 'a,b'],
  },
  {
    name: 'auth-url',
    go: regex(GO.URLWithNginxVariableRegex, true),
    at: 'authreq/main.go:61',
    values: [
      'http://bar.foo.com/external-auth/auth?allowed_groups=snow-group,rain-group',
      'http://$host/auth',
      'http://foo..bar.com',
      'bar',
      'http://',
    ],
  },
  {
    name: 'auth-method',
    go: V.authMethod,
    at: 'authreq/main.go:67',
    context: AUTH_URL,
    values: ['GET', 'POST', 'get', 'PROPFIND'],
  },
  {
    name: 'auth-signin',
    go: regex(GO.URLWithNginxVariableRegex, true),
    at: 'authreq/main.go:73',
    context: AUTH_URL,
    values: [
      'http://foo.com/external-auth/start?rd=https://$host$escaped_request_uri',
      '/start',
      'javascript:alert(1)',
    ],
  },
  {
    name: 'auth-signin-redirect-param',
    go: regex(GO.URLIsValidRegex, true),
    at: 'authreq/main.go:79',
    context: { ...AUTH_URL, 'auth-signin': 'https://a.example/s' },
    values: ['origUrl', 'rd', '$x'],
  },
  {
    name: 'auth-response-headers',
    go: regex(GO.HeadersVariable, true),
    at: 'authreq/main.go:127',
    context: AUTH_URL,
    values: ['h1', '1,2', ',1,,2,', '  ', '1 2', '1+2'],
  },
  {
    name: 'auth-request-redirect',
    go: regex(GO.URLIsValidRegex, true),
    at: 'authreq/main.go:140',
    context: AUTH_URL,
    values: ['http://foo.com/redirect-me', '$host'],
  },
  {
    name: 'auth-cache-key',
    go: regex(GO.NGINXVariable, true),
    at: 'authreq/main.go:91',
    context: AUTH_URL,
    values: ['$foo$bar', '$remote_user$http_authorization'],
  },
  {
    name: 'auth-cache-duration',
    go: regex(GO.ExtendedCharsRegex, false),
    at: 'authreq/main.go:121',
    context: AUTH_URL,
    values: ['5m', '200 202 10m, 401 5m', ',5m,,401 10m,', '200', '5m, xaxax', '5m 200'],
  },
  {
    name: 'auth-proxy-set-headers',
    go: regex(GO.BasicCharsRegex, true),
    at: 'authreq/main.go:133',
    context: AUTH_URL,
    values: ['authhdrs', 'default/authhdrs', 'other/x'],
  },
  { name: 'auth-always-set-cookie', go: bool, at: 'authreq/main.go:146', context: AUTH_URL },
  { name: 'auth-keepalive', go: int, at: 'authreq/main.go:97', context: AUTH_URL, values: ['5', 'x'] },
  { name: 'auth-keepalive-share-vars', go: bool, at: 'authreq/main.go:103', context: AUTH_URL },
  {
    name: 'auth-keepalive-requests',
    go: int,
    at: 'authreq/main.go:109',
    context: AUTH_URL,
    values: ['500', 'dummy'],
  },
  { name: 'auth-keepalive-timeout', go: int, at: 'authreq/main.go:115', context: AUTH_URL },
  { name: 'enable-global-auth', go: bool, at: 'authreqglobal/main.go:34' },
  {
    name: 'satisfy',
    go: options(['any', 'all'], true, true),
    at: 'satisfy/main.go:34',
    values: ['any', 'all', 'Any', ' any'],
  },
  {
    name: 'auth-tls-secret',
    go: regex(GO.BasicCharsRegex, true),
    at: 'authtls/main.go:52',
    values: ['default/ca', 'ca', 'other/ca'],
  },
  {
    name: 'auth-tls-verify-client',
    go: V.verifyClient,
    at: 'authtls/main.go:58',
    context: TLS,
    values: ['on', 'off', 'optional', 'optional_no_ca', 'On'],
  },
  {
    name: 'auth-tls-verify-depth',
    go: int,
    at: 'authtls/main.go:64',
    context: TLS,
    values: ['1', '0', '-1'],
  },
  {
    name: 'auth-tls-error-page',
    go: V.tlsErrorPage,
    at: 'authtls/main.go:70',
    context: TLS,
    values: ['http://www.acme.com/error', '/error', '@named', 'javascript:x'],
  },
  { name: 'auth-tls-pass-certificate-to-upstream', go: bool, at: 'authtls/main.go:76', context: TLS },
  {
    name: 'auth-tls-match-cn',
    go: commonName,
    at: 'authtls/main.go:82',
    context: TLS,
    values: ['CN=client', 'CN=(a|b)', 'client', 'CN=('],
  },
  { name: 'ssl-passthrough', go: bool, at: 'sslpassthrough/main.go:35' },
  {
    name: 'ssl-ciphers',
    go: V.sslCiphers,
    at: 'sslcipher/main.go:49',
    values: ['HIGH:!aNULL', 'ALL:@SECLEVEL=0', 'HIGH;'],
  },
  { name: 'ssl-prefer-server-ciphers', go: bool, at: 'sslcipher/main.go:42' },
  { name: 'enable-opentelemetry', go: bool, at: 'opentelemetry/main.go:41' },
  { name: 'opentelemetry-trust-incoming-span', go: bool, at: 'opentelemetry/main.go:48', context: OTEL },
  {
    name: 'opentelemetry-operation-name',
    go: V.operationName,
    at: 'opentelemetry/main.go:54',
    context: OTEL,
    values: ['op', 'HTTP $request_method $service_name $uri'],
  },
  {
    name: 'mirror-target',
    go: serverName,
    at: 'mirror/main.go:49',
    values: ['https://test.env.com/$request_uri', 'http://mirror.example/', 'https://a.example/x?y=z'],
  },
  {
    name: 'mirror-host',
    go: serverName,
    at: 'mirror/main.go:55',
    context: { 'mirror-target': 'http://mirror.example/$request_uri' },
    values: ['mirror.example'],
  },
  {
    name: 'mirror-request-body',
    go: V.onOff,
    at: 'mirror/main.go:43',
    context: { 'mirror-target': 'http://mirror.example/$request_uri' },
    values: ['on', 'off', 'OFF'],
  },
  {
    name: 'proxy-ssl-secret',
    go: regex(GO.BasicCharsRegex, true),
    at: 'proxyssl/main.go:61',
    context: { 'backend-protocol': 'HTTPS' },
    values: ['default/ca', 'ca'],
  },
  {
    name: 'proxy-ssl-verify',
    go: V.onOff,
    at: 'proxyssl/main.go:90',
    context: PROXY_SSL,
    values: ['on', 'off', 'On', 'true'],
  },
  { name: 'proxy-ssl-verify-depth', go: int, at: 'proxyssl/main.go:96', context: PROXY_SSL },
  {
    name: 'proxy-ssl-name',
    go: serverName,
    at: 'proxyssl/main.go:83',
    context: PROXY_SSL,
    values: ['backend.example'],
  },
  {
    name: 'proxy-ssl-server-name',
    go: V.onOff,
    at: 'proxyssl/main.go:102',
    context: PROXY_SSL,
    values: ['on', 'off'],
  },
  {
    name: 'proxy-ssl-protocols',
    go: V.sslProtocols,
    at: 'proxyssl/main.go:77',
    context: PROXY_SSL,
    values: ['TLSv1.2', 'TLSv1.2 TLSv1.3', 'TLSv1'],
  },
  {
    name: 'proxy-ssl-ciphers',
    go: V.proxySslCiphers,
    at: 'proxyssl/main.go:70',
    context: PROXY_SSL,
    values: ['HIGH:!aNULL', 'DEFAULT'],
  },
  { name: 'canary', go: bool, at: 'canary/main.go:42' },
  { name: 'canary-weight', go: int, at: 'canary/main.go:48', context: CANARY, values: ['10', '-1', '101'] },
  { name: 'canary-weight-total', go: int, at: 'canary/main.go:54', context: CANARY },
  {
    name: 'canary-by-header',
    go: regex(GO.BasicCharsRegex, true),
    at: 'canary/main.go:60',
    context: CANARY,
    values: ['X-Canary', 'X:Canary'],
  },
  {
    name: 'canary-by-header-value',
    go: regex(GO.BasicCharsRegex, true),
    at: 'canary/main.go:68',
    context: { ...CANARY, 'canary-by-header': 'X-Canary' },
    values: ['yes'],
  },
  {
    name: 'canary-by-header-pattern',
    go: regex(GO.IsValidRegex, false),
    at: 'canary/main.go:77',
    context: { ...CANARY, 'canary-by-header': 'X-Canary' },
    values: ['^yes$', '(a|b)+'],
  },
  {
    name: 'canary-by-cookie',
    go: regex(GO.BasicCharsRegex, true),
    at: 'canary/main.go:85',
    context: CANARY,
    values: ['canary', 'a=b'],
  },
  {
    name: 'affinity',
    go: options(['cookie'], true, true),
    at: 'sessionaffinity/main.go:74',
    values: ['cookie', 'Cookie', 'ip'],
  },
  {
    name: 'affinity-mode',
    go: options(['balanced', 'persistent'], true, true),
    at: 'sessionaffinity/main.go:80',
    context: COOKIE,
    values: ['balanced', 'persistent', 'sticky'],
  },
  {
    name: 'affinity-canary-behavior',
    go: options(['sticky', 'legacy'], true, true),
    at: 'sessionaffinity/main.go:88',
    context: { ...CANARY, ...COOKIE },
    values: ['sticky', 'legacy'],
  },
  {
    name: 'session-cookie-name',
    go: regex(GO.BasicCharsRegex, true),
    at: 'sessionaffinity/main.go:96',
    context: COOKIE,
    values: ['route', 'a=b', 'a;b'],
  },
  {
    name: 'session-cookie-path',
    go: regex(GO.URLIsValidRegex, true),
    at: 'sessionaffinity/main.go:120',
    context: COOKIE,
    values: ['/', '/a;b', '/$1'],
  },
  {
    name: 'session-cookie-domain',
    go: regex(GO.BasicCharsRegex, true),
    at: 'sessionaffinity/main.go:126',
    context: COOKIE,
    values: ['a.example', '.a.example', 'a.example; Secure'],
  },
  {
    name: 'session-cookie-expires',
    go: V.cookieExpires(true),
    at: 'sessionaffinity/main.go:108',
    context: COOKIE,
    values: ['172800', '0', '-1'],
  },
  {
    name: 'session-cookie-max-age',
    go: V.cookieExpires(false),
    at: 'sessionaffinity/main.go:114',
    context: COOKIE,
    values: ['172800'],
  },
  { name: 'session-cookie-secure', go: bool, at: 'sessionaffinity/main.go:102', context: COOKIE },
  {
    name: 'session-cookie-samesite',
    go: options(['none', 'lax', 'strict'], false, true),
    at: 'sessionaffinity/main.go:132',
    context: COOKIE,
    values: ['None', 'Lax', 'Strict', 'x'],
  },
  {
    name: 'session-cookie-conditional-samesite-none',
    go: bool,
    at: 'sessionaffinity/main.go:139',
    context: COOKIE,
  },
  { name: 'session-cookie-change-on-failure', go: bool, at: 'sessionaffinity/main.go:145', context: COOKIE },
];

/** Attack values, fed to every annotation. */
const ATTACK = [
  ' ',
  '\t',
  '$host',
  '$'.concat('{host}'),
  'a;b',
  'a{b',
  'a}b',
  '"q"',
  "'q'",
  'a\nb',
  'a\r\nb',
  '#x',
  'a b',
  '..',
  '/../x',
  'é',
  '\u2028',
  'x'.repeat(5000),
  '%0d%0a',
  '\\',
  '<s>',
  'a,b',
  'true',
  '5',
  // A number with spaces: parser.ValidateInt (Go's Atoi) refuses it.
  ' 5',
  '5 ',
  'on',
  '*',
];

// ---------------------------------------------------------------------------------------------
// keepip's side: the real loader and translator.

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const BCRYPT = 'foo:$2y$05$abcdefghijklmnopqrstuu5S/4bMgXQ1cRwEI3Sk1bJ8k8UmtlM0C';

function configMap(name: string, data: Record<string, string>): K8sObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data };
}

const EXTRAS: K8sObject[] = [
  ...serviceWithEndpoints({ name: 'web', ports: [8080] }),
  ...serviceWithEndpoints({ name: 'svc', ports: [8081] }),
  secret('pw', { auth: BCRYPT }),
  secret('ca', { 'ca.crt': PEM }),
  configMap('hdrs', { 'X-A': 'b' }),
  configMap('authhdrs', { 'X-A': 'b' }),
];

interface Translated {
  t: Topology;
  loc: LocationModel;
  /** Warnings and errors of Ingress default/web. */
  issues: ConfigIssue[];
}

/** Ingress default/web (web.example/ → web:80) with `annotations`; a canary also gets its main Ingress. */
function translate(annotations: Record<string, string>): Translated {
  const objects = [...EXTRAS];
  if (annotations.canary !== undefined)
    objects.push(
      ingress({ name: 'main', host: 'web.example', paths: [{ path: '/', service: 'svc', port: 80 }] }),
    );
  objects.push(
    ingress({
      name: 'web',
      host: 'web.example',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations,
    }),
  );
  const t = topologyOf(objects);
  const host = t.gateway.virtualHosts.find((v) => v.host === 'web.example');
  assert.ok(host, 'web.example is served');
  const issues = t.issues.filter(
    (i) => i.severity !== 'info' && (i.origin as { name?: string } | undefined)?.name === 'web',
  );
  return { t, loc: host.locations[0]!, issues };
}

/** A warning or error names the annotation. */
function flagged(r: Translated, name: string): boolean {
  return r.issues.some((i) => (i.field ?? '').includes(`"${PREFIX}${name}"`));
}

/** A value for a message: ASCII, escapes shown, long ones cut. */
const show = (v: string) =>
  JSON.stringify(v.length > 40 ? `${v.slice(0, 20)}…(${v.length})` : v).replace(/[^\x20-\x7e]/g, (c) =>
    c === '…' ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

// ---------------------------------------------------------------------------------------------
// Values ingress-nginx refuses that keepip takes, and why that is harmless.

interface Allowed {
  name: string;
  when: (value: string) => boolean;
  reason: string;
}

const isBlank = (v: string) => v.trim() === '';

const ALLOWED: Allowed[] = [
  {
    name: 'cors-allow-origin',
    when: isBlank,
    reason:
      'blank is the default `*`, which is also what ingress-nginx falls back to on a refused value (cors/main.go:221-225)',
  },
  {
    name: 'custom-headers',
    when: isBlank,
    reason:
      'blank sets no header; a refused value sets none in ingress-nginx either (customheaders/main.go:100-108)',
  },
  {
    name: 'upstream-hash-by',
    when: isBlank,
    reason: 'blank is no hashing, ingress-nginx default on a refused value',
  },
  {
    name: 'load-balance',
    when: isBlank,
    reason: 'blank is round robin, ingress-nginx default (loadbalancing/main.go) on a refused value',
  },
  {
    name: 'ssl-ciphers',
    when: isBlank,
    reason: 'blank keeps the default cipher list, as a refused value does in ingress-nginx',
  },
  {
    name: 'proxy-cookie-domain',
    when: (v) => /[\r\n]/.test(v),
    reason:
      'the line break only separates `from` and `to` (keepip splits on whitespace); neither half carries it, and the rewrite only edits the backend Set-Cookie',
  },
  {
    name: 'proxy-cookie-path',
    when: (v) => /[\r\n]/.test(v),
    reason: 'same as proxy-cookie-domain',
  },
  {
    name: 'auth-response-headers',
    when: isBlank,
    reason:
      'no header is copied and auth is still enforced; ingress-nginx denies the location (authreq/main.go:416-419), keepip serves it behind the auth: not more open',
  },
  {
    name: 'auth-cache-duration',
    when: isBlank,
    reason:
      'keepip keeps auth with the default durations; ingress-nginx returns a plain error (authreq/main.go:406-409) that annotations.go:200-202 skips, serving WITHOUT auth: keepip is the safer one',
  },
  ...['auth-keepalive', 'auth-keepalive-share-vars', 'auth-keepalive-requests', 'auth-keepalive-timeout'].map(
    (name) => ({
      name,
      when: () => true,
      reason:
        'accepted and without effect in keepip (it keeps auth connections alive anyway); ingress-nginx uses its default on a refused value (authreq/main.go:363-404)',
    }),
  ),
  {
    name: 'proxy-ssl-secret',
    when: isBlank,
    reason:
      'blank is as if absent (no client certificate, verification as proxy-ssl-verify says without a CA: off); ingress-nginx refuses the whole Ingress (proxyssl/main.go:192-195, annotations.go:192-195). Borderline: reported',
  },
];

/** The values of `spec` ingress-nginx refuses (a non-empty value its validator fails) that keepip takes. */
function takenButRefused(spec: Spec): string[] {
  const out: string[] = [];
  for (const value of [...(spec.values ?? []), ...ATTACK]) {
    if (value === '' || spec.go(value)) continue; // "" is never validated (validators.go:241-242)
    const r = translate({ ...spec.context, [spec.name]: value });
    const taken = spec.applied ? spec.applied(r.loc) : !flagged(r, spec.name);
    if (!taken) continue;
    if (ALLOWED.some((a) => a.name === spec.name && a.when(value))) continue;
    out.push(value);
  }
  return out;
}

test('every annotation keepip implements has its ingress-nginx validator transcribed here', () => {
  const covered = new Set(SPECS.map((s) => s.name));
  assert.deepEqual(
    SUPPORTED_ANNOTATIONS.filter((n) => !covered.has(n)),
    [],
  );
});

for (const spec of SPECS) {
  test(`${spec.name} (${spec.at}): no value ingress-nginx refuses is taken silently`, () => {
    assert.deepEqual(takenButRefused(spec).map(show), []);
  });
}

// ---------------------------------------------------------------------------------------------
// Header values: what goes on the wire. keepip writes response heads in latin1 (src/gateway/
// h1-server.ts:338, 355), so a character above U+00FF is sent as its low byte: U+200A (a "space" to
// JavaScript's `\s`) is a bare LF, U+2000 a NUL. ingress-nginx's regexes are ASCII and RE2's `\s` is
// [\t\n\f\r ], and MaliciousRegex refuses CR and LF (validators.go:84, 119-121).

/** The bytes a header value becomes on the wire. */
const wireBytes = (v: string) => Buffer.from(v, 'latin1');
const unsafeOnWire = (v: string) => wireBytes(v).some((b) => b === 0x0a || b === 0x0d || b === 0x00);

const CORS_WIRE_CASES: { name: 'cors-allow-methods' | 'cors-expose-headers'; value: string }[] = [
  { name: 'cors-allow-methods', value: 'GET,\u200aPOST' },
  { name: 'cors-allow-methods', value: 'GET\nPOST' },
  { name: 'cors-allow-methods', value: 'GET,\u2000POST' },
  { name: 'cors-expose-headers', value: 'X-Foo,\u200aInjected' },
  { name: 'cors-expose-headers', value: 'X-Foo\nX-Bar' },
];

for (const { name, value } of CORS_WIRE_CASES) {
  test(`${name} ${show(value)}: refused as ingress-nginx refuses it (cors/main.go:51-54 with validators.go:84), never a CR, LF or NUL on the wire`, () => {
    assert.equal((name === 'cors-allow-methods' ? V.corsMethods : V.corsExpose)(value), false);
    const r = translate({ ...CORS, [name]: value });
    const cors = r.loc.cors;
    assert.ok(cors, 'CORS stays on');
    const written = name === 'cors-allow-methods' ? cors.allowMethods : cors.exposeHeaders;
    assert.equal(
      unsafeOnWire(written),
      false,
      `written as ${JSON.stringify(wireBytes(written).toString('latin1'))}`,
    );
    assert.ok(flagged(r, name), 'a warning names the annotation');
  });
}

test('CORS values ingress-nginx accepts are taken as written', () => {
  const r = translate({ ...CORS, 'cors-allow-methods': 'GET, POST', 'cors-expose-headers': 'X-Foo, X-Bar' });
  assert.equal(r.loc.cors?.allowMethods, 'GET, POST');
  assert.equal(r.loc.cors?.exposeHeaders, 'X-Foo, X-Bar');
});

// ---------------------------------------------------------------------------------------------
// Source ranges: ingress-nginx reads the alias only when allowlist-source-range is "" (checkAnnotation,
// validators.go:231-240); any other value is validated (ValidateCIDRs) and a refused one denies the
// location (ipallowlist/main.go:92-102, ipdenylist/main.go:96-104).

type RangeOutcome = 'denied' | string[];

const RANGE_CASES: { annotations: Record<string, string>; ingressNginx: RangeOutcome; why: string }[] = [
  {
    annotations: { 'allowlist-source-range': ' ', 'whitelist-source-range': '10.0.0.0/8' },
    ingressNginx: 'denied',
    why: '" " is not "", so the alias is not read; " " fails ValidateCIDRs',
  },
  {
    annotations: { 'allowlist-source-range': '\t', 'whitelist-source-range': '10.0.0.0/8' },
    ingressNginx: 'denied',
    why: 'same with a tab',
  },
  {
    annotations: { 'allowlist-source-range': '', 'whitelist-source-range': '10.0.0.0/8' },
    ingressNginx: ['10.0.0.0/8'],
    why: 'an empty allowlist reads the alias',
  },
  {
    annotations: { 'allowlist-source-range': '' },
    ingressNginx: 'denied',
    why: 'empty, no alias: parseString refuses ""',
  },
  {
    annotations: { 'allowlist-source-range': '10.0.0.0/8, bogus' },
    ingressNginx: 'denied',
    why: 'one bad entry',
  },
  { annotations: { 'allowlist-source-range': '10.0.0.0/8,' }, ingressNginx: 'denied', why: 'an empty entry' },
  { annotations: { 'allowlist-source-range': 'fe80::1%eth0' }, ingressNginx: 'denied', why: 'a zone' },
  { annotations: { 'allowlist-source-range': '010.0.0.1' }, ingressNginx: 'denied', why: 'a leading zero' },
  {
    annotations: { 'allowlist-source-range': '::ffff:10.0.0.0/104' },
    ingressNginx: ['10.0.0.0/8'],
    why: 'Go prints a v4-mapped network as IPv4',
  },
  {
    annotations: { 'allowlist-source-range': '10.0.0.0/08' },
    ingressNginx: ['10.0.0.0/8'],
    why: 'ParseCIDR reads 08',
  },
];

for (const c of RANGE_CASES) {
  test(`source range ${JSON.stringify(c.annotations)}: ${c.why}; keepip is not more open than ingress-nginx`, () => {
    const { loc } = translate(c.annotations);
    if (c.ingressNginx === 'denied')
      assert.equal(loc.allow?.valid, false, `keepip allows ${JSON.stringify(loc.allow)}`);
    else assert.deepEqual(loc.allow?.valid === true ? loc.allow.cidrs : loc.allow, c.ingressNginx);
  });
}

test('denylist-source-range: a value ingress-nginx refuses denies the location, never an empty deny list', () => {
  for (const value of [' ', '', '10.0.0.0/8,', 'bogus', '10.0.0.1 ,, 10.0.0.2', 'a\nb']) {
    const { loc } = translate({ 'allowlist-source-range': '0.0.0.0/0', 'denylist-source-range': value });
    assert.equal(loc.deny?.valid, false, `denylist ${JSON.stringify(value)}: ${JSON.stringify(loc.deny)}`);
  }
});

// ---------------------------------------------------------------------------------------------
// External auth: a refused auth-url is a ValidationError that keeps the Ingress out (authreq/main.go:316-319,
// annotations.go:192-195); one url.Parse refuses denies it (parser/main.go:260-276, authreq/main.go:321-324).

/** parser/main.go:260-276 StringToURL, for the URLs of the table (scheme://host…). */
function goStringToUrl(s: string): boolean {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(\/\/([^/?#]*))?/.exec(s);
  return m !== null && m[3] !== undefined && m[3] !== '' && !m[3].includes('..');
}

test('auth-url: whatever ingress-nginx refuses, keepip denies; whatever it takes, keepip enforces or denies', () => {
  const values = [
    'http://bar.foo.com/external-auth/auth?allowed_groups=snow-group,rain-group',
    'https://auth.example/oauth2/auth?rd=$escaped_request_uri',
    'http://$host/auth',
    'http://foo..bar.com',
    'bar',
    'http://',
    '',
    ...ATTACK,
    'http://auth.example/a\nb',
    'http://auth.example/#x',
    'http://auth.example/;x',
    'http://auth.example/{x}',
    'http://auth.example/\u200a',
  ];
  const open: string[] = [];
  for (const value of values) {
    const { loc } = translate({ 'auth-url': value });
    const ingressNginxTakes =
      value !== '' && regex(GO.URLWithNginxVariableRegex, true)(value) && goStringToUrl(value);
    const denied = loc.access?.denied != null;
    const enforced = loc.access?.externalAuth != null;
    if (!denied && !enforced) open.push(`${show(value)} unprotected`);
    if (!ingressNginxTakes && !denied) open.push(`${show(value)} taken (ingress-nginx refuses it)`);
    if (enforced && /[\r\n\0]/.test(loc.access!.externalAuth!.url)) open.push(`${show(value)} CR/LF in url`);
  }
  assert.deepEqual(open, []);
});

test('auth-signin, auth-request-redirect, auth-response-headers: no CR, LF or character ingress-nginx refuses reaches the model', () => {
  const bad: string[] = [];
  for (const value of [...ATTACK, 'https://a.example/\u200a', 'X-A,\u200aX-B']) {
    const r = translate({
      ...AUTH_URL,
      'auth-signin': value,
      'auth-request-redirect': value,
      'auth-response-headers': value,
    });
    const auth = r.loc.access?.externalAuth;
    if (!auth) continue;
    if (auth.signin !== null && !regex(GO.URLWithNginxVariableRegex, true)(auth.signin))
      bad.push(`signin ${show(value)}`);
    if (auth.requestRedirect !== null && !regex(GO.URLIsValidRegex, true)(auth.requestRedirect))
      bad.push(`request-redirect ${show(value)}`);
    for (const h of auth.responseHeaders)
      if (!/^[a-zA-Z\d\-_]+$/.test(h)) bad.push(`response header ${show(h)}`);
  }
  assert.deepEqual(bad, []);
});

test('basic auth and client certificates: a value ingress-nginx takes is enforced or denied, never dropped', () => {
  const dropped: string[] = [];
  for (const type of ['basic', 'xbasicx', 'basic ', 'digest', 'Basic', 'none', ...ATTACK]) {
    const { loc } = translate({ 'auth-type': type, 'auth-secret': 'pw' });
    if (loc.access?.basicAuth == null && loc.access?.denied == null) dropped.push(`auth-type ${show(type)}`);
  }
  for (const verify of ['on', 'On', 'of f', 'optional', ...ATTACK]) {
    const { t } = translate({ ...TLS, 'auth-tls-verify-client': verify });
    const mode = t.gateway.virtualHosts.find((v) => v.host === 'web.example')?.clientCertificate
      ?.verifyClient;
    if (mode === undefined) dropped.push(`auth-tls-verify-client ${show(verify)}: no client certificate`);
    else if (mode !== verify && mode !== 'on')
      dropped.push(`auth-tls-verify-client ${show(verify)} read as ${mode}`);
  }
  assert.deepEqual(dropped, []);
});

test('satisfy: only "any" as written weakens auth; anything else is "all"', () => {
  for (const value of ['Any', ' any', 'any ', 'ANY', ...ATTACK]) {
    const { loc } = translate({ 'auth-type': 'basic', 'auth-secret': 'pw', satisfy: value });
    assert.notEqual(loc.access?.satisfy, 'any', `satisfy ${show(value)}`);
  }
});
