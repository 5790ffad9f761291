// Invalid annotation VALUES at keepip's admission webhook, against ingress-nginx's own parsers (mirror:
// kubernetes/ingress-nginx v1.15.1, dbb11b92; `git -C /work/.mirror/kubernetes+ingress-nginx/repo show
// HEAD:internal/ingress/annotations/<pkg>/main.go`). admission-differential-ingress-nginx.test.ts covers
// values valid for both controllers' parsers; this file covers the other half.
//
// What the documents claim:
//   docs/controller.md, "Validating admission webhook": keepip "denies it (`allowed: false`, status 400)
//   when the translation reports about it: any error: an invalid allow/deny list (`INVALID_SOURCE_RANGE`:
//   the gateway would answer 503), …, or any other error about the Ingress"; "a `rewrite-target` or
//   `app-root` it would ignore"; "Other warnings (an unsupported annotation, an invalid boolean) are
//   allowed and returned as `response.warnings`, which kubectl prints."
//   docs/errors.md: INVALID_ANNOTATION_VALUE "a supported annotation has a value of the wrong form; it
//   is ignored and the default applies"; ACCESS_CONFIG_DENIED "an access annotation … cannot be used:
//   its locations answer 503 (auth-tls: its host answers 403), as ingress-nginx denies them".
//   README: "annotation values against ingress-nginx's own validators".
//   src/k8s/access-annotations.ts: "Values are validated as ingress-nginx 1.12-1.15 validates them.
//   Where ingress-nginx denies the location (a missing Secret, an invalid auth-url…), keepip does too:
//   the location answers 503 (ACCESS_CONFIG_DENIED), never serving unprotected what was meant to be
//   protected."
//
// ingress-nginx's decision, from the Go code: each parser declares a Validator per annotation
// (parser/validators.go); checkAnnotation (validators.go:207-251) returns a ValidationError for a
// non-empty value the validator refuses. The parser then either falls back to a default (or turns it
// into a LocationDeniedError: the location answers 503), or returns it as it is. Extract
// (annotations.go:179-195) returns such an error at once when errors.IsValidationError holds (a type
// assertion, errors.go:135-138: a wrapped one does not count), and CheckIngress (controller.go:416-419)
// DENIES the Ingress; the store does not take it either (store.go:949-953). The table CASES below says,
// per annotation keepip implements (src/k8s/annotation-catalog.ts, implemented), which it is, with the
// lines, and an invalid value per validator. Each value is sent as an AdmissionReview over real HTTPS to
// `keepip controller`'s webhook (in-process, port 0, a fake API server), then applied with the webhook
// out of the way, and what the gateway serves is read from the served snapshot and, for access rules,
// asked over a socket. The harness is test/controller/harness.ts's (webCluster, webhookFlags, the fake
// API server); `post` and `reviewOf` are copied from admission-differential-ingress-nginx.test.ts, `post`
// also reading `response.warnings`.
//
// Asserted:
//   - ingress-nginx denies → keepip denies (one test per parser package); keepip admitting is a FINDING.
//   - ingress-nginx admits → keepip admits (with a warning naming the annotation), or denies only as
//     ALLOWED says why; every ALLOWED entry must still be met.
//   - what the gateway serves with the webhook off is what the table's `keepip` column says.
//   - an access annotation (source ranges, auth-*, auth-tls-*, limit-*, satisfy, cors-*) with an invalid
//     value never serves a location that admits more than its author meant, even where ingress-nginx
//     does so (a FINDING then too).
//
// Found by this file and fixed: the webhook admitted 25 invalid values ingress-nginx's denies (the
// redirect group, server-alias, upstream-vhost, x-forwarded-prefix, connection-proxy-header, the
// upstream-hash-by group, load-balance, default-backend, custom-http-errors, client-body-buffer-size,
// ssl-passthrough, auth-realm, auth-tls-error-page / -pass-certificate-to-upstream / -match-cn,
// opentelemetry-operation-name; a lone permanent-redirect-code was not even warned); an auth-url whose
// fixed host Go's url.Parse refuses was admitted silently and answered 500 per request (now
// ACCESS_CONFIG_DENIED, 503); an unreadable cors-allow-methods / -headers granted ingress-nginx's wider
// defaults (now no origin), an unreadable cors-allow-credentials was true (now false), and an unreadable
// limit-burst-multiplier was 5 (now 1). Invalid limit-rate / limit-rate-after keep ingress-nginx's
// default (bandwidth, not who gets in).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import http from '../../src/node-http.ts';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { LocationModel, Topology, VirtualHostModel } from '../../src/config/model.ts';
import { buildClusterTopology } from '../../src/controller/snapshot.ts';
import { SUPPORTED_ANNOTATIONS } from '../../src/k8s/annotations.ts';
import {
  type AdmissionAnswer,
  DEFAULT_SNAPSHOT_OPTIONS,
  EMPTY_CLUSTER,
  keyPair,
  postReview,
  waitForHost,
  webCluster,
  webhookFlags,
} from '../controller/harness.ts';
import type { Obj } from '../fixtures/fake-apiserver.ts';
import { mapLimited } from '../helpers/concurrency.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';

// ---- the table: ingress-nginx's decision per annotation, and what keepip serves ----------------------

/** What the gateway serves for the Ingress when it gets in: with a default, failing closed, or not at all. */
type Served = 'default' | 'closed' | 'not served';

/** What an access check sees of one case in the served snapshot. */
interface Seen {
  outcome: Served;
  host: VirtualHostModel | undefined;
  loc: LocationModel | undefined;
}

/** A client's answer (status and head) to a request on the case's host. */
interface WireAnswer {
  status: number;
  headers: IncomingHttpHeaders;
}

interface AccessCheck {
  family: Family;
  /** null: the location admits no more than the author meant; else what it admits more. */
  safe: (seen: Seen) => string | null;
  /** A request a client without credentials (or from a foreign origin) sends, and what must not happen. */
  wire?: { preflight?: true; check: (answer: WireAnswer) => string | null };
}

type Family =
  | 'source ranges'
  | 'rate and bandwidth limits'
  | 'basic auth and satisfy'
  | 'external auth'
  | 'client certificates'
  | 'CORS';

interface Case {
  name: string;
  value: string;
  /** Annotations the parser needs to read `name` at all (valid for both controllers). */
  context?: Record<string, string>;
  /** ingress-nginx's admission verdict. */
  nginx: 'deny' | 'admit';
  /** internal/ingress/annotations/<at>: where the parser returns or swallows the ValidationError. */
  at: string;
  /** What ingress-nginx serves when it admits (a denied Ingress is not served: store.go:949-953). */
  nginxServes?: string;
  /** What keepip's gateway serves when the Ingress gets in without the webhook (checked). */
  keepip: Served;
  access?: AccessCheck;
}

/** Placeholder for the auth service's URL (a server of this test answering 401 to every check). */
const AUTH = 'http://{auth}/check';
const AUTH_URL = { 'auth-url': AUTH };
const BASIC = { 'auth-type': 'basic', 'auth-secret': 'pw' };
const TLS = { 'auth-tls-secret': 'default/ca' };
const PROXY_SSL = { 'backend-protocol': 'HTTPS', 'proxy-ssl-secret': 'default/ca' };
const CORS = { 'enable-cors': 'true' };
const COOKIE = { affinity: 'cookie' };
const CANARY = { canary: 'true' };
const OTEL = { 'enable-opentelemetry': 'true' };
const RPS = { 'limit-rps': '5' };

/**
 * A request without credentials is refused (4xx/5xx, or auth-signin's redirect to the sign-in page);
 * the family's test also checks that none of them reached the backend.
 */
const REFUSED: AccessCheck['wire'] = {
  check: (a) => (a.status < 300 ? `answered ${a.status}` : null),
};

const closedOr =
  (what: string, ok: (s: Seen) => boolean) =>
  (s: Seen): string | null =>
    s.outcome !== 'default' || ok(s) ? null : what;
const closed = (what: string) => closedOr(what, () => false);

/** The tokens of a comma/space separated list, lower case. */
const tokens = (list: string) =>
  list
    .split(/[\s,]+/)
    .filter((t) => t !== '')
    .map((t) => t.toLowerCase());
/**
 * Entries of `list` its author did not name in `value` (which the validator refused); OPTIONS, the
 * preflight's own method, is not counted.
 */
const beyond = (list: string, value: string) => {
  const named = new Set(['options', ...tokens(value.replace(/[^A-Za-z0-9-]+/g, ' '))]);
  return tokens(list).filter((t) => !named.has(t));
};

const CORS_PREFLIGHT = (check: (a: WireAnswer) => string | null): AccessCheck['wire'] => ({
  preflight: true,
  check,
});

const CASES: readonly Case[] = [
  // --- ipallowlist, ipdenylist: the ValidationError becomes a LocationDeniedError (503).
  {
    name: 'allowlist-source-range',
    value: '10.0.0.0/8, bogus',
    nginx: 'admit',
    at: 'ipallowlist/main.go:92-102',
    nginxServes: 'location denied (503)',
    keepip: 'closed',
    access: {
      family: 'source ranges',
      safe: closed('served with an allowlist it cannot read'),
      wire: REFUSED,
    },
  },
  {
    name: 'whitelist-source-range',
    value: 'bogus',
    nginx: 'admit',
    at: 'ipallowlist/main.go:92-102 (alias)',
    nginxServes: 'location denied (503)',
    keepip: 'closed',
    access: {
      family: 'source ranges',
      safe: closed('served with an allowlist it cannot read'),
      wire: REFUSED,
    },
  },
  {
    name: 'denylist-source-range',
    value: '10.0.0.0/33',
    nginx: 'admit',
    at: 'ipdenylist/main.go:90-99',
    nginxServes: 'location denied (503)',
    keepip: 'closed',
    access: { family: 'source ranges', safe: closed('served with a denylist it cannot read'), wire: REFUSED },
  },
  // --- rewrite: every value falls back to a default.
  {
    name: 'rewrite-target',
    value: '/x?y',
    nginx: 'admit',
    at: 'rewrite/main.go:145-151',
    nginxServes: 'no rewrite',
    keepip: 'default',
  },
  {
    name: 'use-regex',
    value: 'yes',
    nginx: 'admit',
    at: 'rewrite/main.go:175-181',
    nginxServes: 'false',
    keepip: 'default',
  },
  {
    name: 'ssl-redirect',
    value: 'yes',
    nginx: 'admit',
    at: 'rewrite/main.go:152-158',
    nginxServes: 'the ConfigMap default',
    keepip: 'default',
  },
  {
    name: 'force-ssl-redirect',
    value: 'yes',
    nginx: 'admit',
    at: 'rewrite/main.go:167-173',
    nginxServes: 'the ConfigMap default',
    keepip: 'default',
  },
  {
    name: 'preserve-trailing-slash',
    value: 'yes',
    nginx: 'admit',
    at: 'rewrite/main.go:159-165',
    nginxServes: 'the ConfigMap default',
    keepip: 'default',
  },
  {
    name: 'app-root',
    value: '/a;b',
    nginx: 'admit',
    at: 'rewrite/main.go:183-190',
    nginxServes: 'no app-root',
    keepip: 'default',
  },
  {
    name: 'service-upstream',
    value: 'yes',
    nginx: 'admit',
    at: 'serviceupstream/main.go:59-65',
    nginxServes: 'false',
    keepip: 'default',
  },
  {
    name: 'backend-protocol',
    value: 'h2c',
    nginx: 'admit',
    at: 'backendprotocol/main.go:72-78',
    nginxServes: 'HTTP',
    keepip: 'default',
  },
  // --- proxy: every value falls back to the ConfigMap's.
  ...(
    [
      ['proxy-body-size', 'abc', '323-326'],
      ['proxy-connect-timeout', '5s', '283-286'],
      ['proxy-read-timeout', '5s', '293-296'],
      ['proxy-send-timeout', '5s', '288-291'],
      ['proxy-next-upstream', 'http_418', '328-331'],
      ['proxy-next-upstream-tries', 'x', '338-341'],
      ['proxy-next-upstream-timeout', 'x', '333-336'],
      ['proxy-cookie-domain', 'a.example', '318-321'],
      ['proxy-cookie-path', '/a;b /', '313-316'],
      ['proxy-http-version', '2', '363-366'],
      ['proxy-request-buffering', 'maybe', '343-346'],
    ] as const
  ).map(
    ([name, value, lines]): Case => ({
      name,
      value,
      nginx: 'admit',
      at: `proxy/main.go:${lines}`,
      nginxServes: 'the ConfigMap default',
      keepip: 'default',
    }),
  ),
  {
    name: 'proxy-redirect-from',
    value: 'http://a.example/#x',
    context: { 'proxy-redirect-to': 'https://b.example/' },
    nginx: 'admit',
    at: 'proxy/main.go:348-351',
    nginxServes: 'the ConfigMap default',
    keepip: 'default',
  },
  {
    name: 'proxy-redirect-to',
    value: 'https://b.example/#x',
    context: { 'proxy-redirect-from': 'http://a.example/' },
    nginx: 'admit',
    at: 'proxy/main.go:353-356',
    nginxServes: 'the ConfigMap default',
    keepip: 'default',
  },
  // --- redirect: every GetXAnnotation error but a missing one is returned (ValidationError: denied).
  {
    name: 'permanent-redirect',
    value: 'https://x.example/#frag',
    nginx: 'deny',
    at: 'redirect/redirect.go:152-155',
    keepip: 'default',
  },
  {
    name: 'permanent-redirect-code',
    value: '30x',
    context: { 'permanent-redirect': 'https://x.example/' },
    nginx: 'deny',
    at: 'redirect/redirect.go:157-160',
    keepip: 'default',
  },
  {
    name: 'permanent-redirect-code',
    value: '30x',
    nginx: 'deny',
    at: 'redirect/redirect.go:157-160 (read even without permanent-redirect)',
    keepip: 'default',
  },
  {
    name: 'relative-redirects',
    value: 'yes',
    nginx: 'deny',
    at: 'redirect/redirect.go:120-123',
    keepip: 'default',
  },
  {
    name: 'temporal-redirect',
    value: 'https://x.example/#frag',
    nginx: 'deny',
    at: 'redirect/redirect.go:125-128',
    keepip: 'default',
  },
  {
    name: 'temporal-redirect-code',
    value: '30x',
    context: { 'temporal-redirect': 'https://x.example/' },
    nginx: 'deny',
    at: 'redirect/redirect.go:131-134',
    keepip: 'default',
  },
  {
    name: 'from-to-www-redirect',
    value: 'yes',
    nginx: 'deny',
    at: 'redirect/redirect.go:115-118',
    keepip: 'default',
  },
  {
    name: 'use-port-in-redirects',
    value: 'yes',
    nginx: 'admit',
    at: 'portinredirect/main.go:58-61',
    nginxServes: 'the ConfigMap default',
    keepip: 'default',
  },
  // --- parsers that return GetStringAnnotation's error as it is.
  { name: 'server-alias', value: 'a.example;b', nginx: 'deny', at: 'alias/main.go:67-70', keepip: 'default' },
  {
    name: 'upstream-vhost',
    value: 'a.example;x',
    nginx: 'deny',
    at: 'upstreamvhost/main.go:59-61',
    keepip: 'default',
  },
  {
    name: 'x-forwarded-prefix',
    value: '/a;b',
    nginx: 'deny',
    at: 'xforwardedprefix/main.go:58-60',
    keepip: 'default',
  },
  {
    name: 'connection-proxy-header',
    value: 'upgrade',
    nginx: 'deny',
    at: 'connection/main.go:68-73',
    keepip: 'default',
  },
  {
    name: 'upstream-hash-by',
    value: 'abc/def',
    nginx: 'deny',
    at: 'upstreamhashby/main.go:87-90',
    keepip: 'default',
  },
  {
    name: 'upstream-hash-by-subset',
    value: 'yes',
    context: { 'upstream-hash-by': '$request_uri' },
    nginx: 'deny',
    at: 'upstreamhashby/main.go:91-94',
    keepip: 'default',
  },
  {
    name: 'upstream-hash-by-subset-size',
    value: 'x',
    context: { 'upstream-hash-by': '$request_uri', 'upstream-hash-by-subset': 'true' },
    nginx: 'deny',
    at: 'upstreamhashby/main.go:95-98',
    keepip: 'default',
  },
  {
    name: 'load-balance',
    value: 'least_conn',
    nginx: 'deny',
    at: 'loadbalancing/main.go:63-65',
    keepip: 'default',
  },
  {
    name: 'default-backend',
    value: 'Svc',
    nginx: 'deny',
    at: 'defaultbackend/main.go:61-64',
    keepip: 'default',
  },
  {
    name: 'custom-http-errors',
    value: '200',
    nginx: 'deny',
    at: 'customhttperrors/main.go:68-71',
    keepip: 'default',
  },
  {
    name: 'client-body-buffer-size',
    value: '8KB',
    nginx: 'deny',
    at: 'clientbodybuffersize/main.go:64-66',
    keepip: 'default',
  },
  {
    name: 'ssl-passthrough',
    value: 'yes',
    nginx: 'deny',
    at: 'sslpassthrough/main.go:58-64',
    keepip: 'default',
  },
  { name: 'ssl-ciphers', value: 'HIGH;', nginx: 'deny', at: 'sslcipher/main.go:94-97', keepip: 'closed' },
  {
    name: 'ssl-prefer-server-ciphers',
    value: 'yes',
    nginx: 'admit',
    at: 'sslcipher/main.go:83-92',
    nginxServes: 'the ConfigMap default',
    keepip: 'default',
  },
  {
    name: 'custom-headers',
    value: 'a;b',
    nginx: 'admit',
    at: 'customheaders/main.go:100-103',
    nginxServes: 'no headers',
    keepip: 'closed',
  },
  {
    name: 'enable-access-log',
    value: 'yes',
    nginx: 'admit',
    at: 'log/main.go:87-90',
    nginxServes: 'true',
    keepip: 'default',
  },
  {
    name: 'disable-proxy-intercept-errors',
    value: 'yes',
    nginx: 'admit',
    at: 'disableproxyintercepterrors/main.go:68-75',
    nginxServes: 'false',
    keepip: 'default',
  },
  // --- cors: every value falls back to a default, some of them wider than the author's.
  {
    name: 'enable-cors',
    value: 'yes',
    nginx: 'admit',
    at: 'cors/main.go:191-197',
    nginxServes: 'CORS off',
    keepip: 'default',
    access: { family: 'CORS', safe: (s) => (s.loc?.cors === undefined ? null : 'CORS on') },
  },
  ...['not a url!', 'https://a.example/path'].map(
    (value): Case => ({
      name: 'cors-allow-origin',
      value,
      context: CORS,
      nginx: 'admit',
      at: 'cors/main.go:200-226',
      nginxServes: '`*`: every origin',
      keepip: 'default',
      access: {
        family: 'CORS',
        safe: (s) => (s.loc?.cors?.allowOrigin.includes('*') ? 'every origin allowed' : null),
        wire: CORS_PREFLIGHT((a) =>
          a.headers['access-control-allow-origin'] === undefined
            ? null
            : `Access-Control-Allow-Origin: ${a.headers['access-control-allow-origin']}`,
        ),
      },
    }),
  ),
  {
    name: 'cors-allow-methods',
    value: 'GET;POST',
    context: CORS,
    nginx: 'admit',
    at: 'cors/main.go:233-236',
    nginxServes: 'the default methods (GET, PUT, POST, DELETE, PATCH, OPTIONS)',
    keepip: 'default',
    access: {
      family: 'CORS',
      safe: (s) => {
        const more = beyond(s.loc?.cors?.allowMethods ?? '', 'GET;POST');
        return more.length === 0 ? null : `methods allowed beyond GET, POST: ${more.join(', ')}`;
      },
      wire: CORS_PREFLIGHT((a) => {
        const more = beyond(String(a.headers['access-control-allow-methods'] ?? ''), 'GET;POST');
        return more.length === 0 ? null : `Access-Control-Allow-Methods grants ${more.join(', ')}`;
      }),
    },
  },
  {
    name: 'cors-allow-headers',
    value: 'X-A;X-B',
    context: CORS,
    nginx: 'admit',
    at: 'cors/main.go:228-231',
    nginxServes: 'the default request headers (Authorization among them)',
    keepip: 'default',
    access: {
      family: 'CORS',
      safe: (s) => {
        const more = beyond(s.loc?.cors?.allowHeaders ?? '', 'X-A;X-B');
        return more.length === 0 ? null : `request headers allowed beyond X-A, X-B: ${more.join(', ')}`;
      },
      wire: CORS_PREFLIGHT((a) => {
        const more = beyond(String(a.headers['access-control-allow-headers'] ?? ''), 'X-A;X-B');
        return more.length === 0 ? null : `Access-Control-Allow-Headers grants ${more.join(', ')}`;
      }),
    },
  },
  {
    name: 'cors-expose-headers',
    value: 'X-A;X-B',
    context: CORS,
    nginx: 'admit',
    at: 'cors/main.go:248-251',
    nginxServes: 'none',
    keepip: 'default',
    access: {
      family: 'CORS',
      safe: (s) => {
        const more = beyond(s.loc?.cors?.exposeHeaders ?? '', 'X-A;X-B');
        return more.length === 0 ? null : `headers exposed beyond X-A, X-B: ${more.join(', ')}`;
      },
    },
  },
  {
    name: 'cors-allow-credentials',
    value: 'no',
    context: CORS,
    nginx: 'admit',
    at: 'cors/main.go:238-246',
    nginxServes: 'true',
    keepip: 'default',
    access: {
      family: 'CORS',
      safe: (s) =>
        s.loc?.cors?.allowCredentials === true ? 'credentials allowed ("no" read as true)' : null,
      wire: CORS_PREFLIGHT((a) =>
        a.headers['access-control-allow-credentials'] === 'true'
          ? 'Access-Control-Allow-Credentials: true'
          : null,
      ),
    },
  },
  // cors-max-age only says how long a browser may keep a preflight answer, not what the answer admits.
  {
    name: 'cors-max-age',
    value: '1h',
    context: CORS,
    nginx: 'admit',
    at: 'cors/main.go:253-259',
    nginxServes: '1728000',
    keepip: 'default',
  },
  // --- canary: every value falls back to a default (the canary config then may not apply at all).
  {
    name: 'canary',
    value: 'yes',
    nginx: 'admit',
    at: 'canary/main.go:124-130',
    nginxServes: 'not a canary',
    keepip: 'default',
  },
  ...(
    [
      ['canary-weight', 'ten', {}, '132-138', '0'],
      ['canary-weight-total', 'x', {}, '140-146', '100'],
      ['canary-by-header', 'X;Canary', {}, '148-154', 'none'],
      ['canary-by-header-value', 'a;b', { 'canary-by-header': 'X-Canary' }, '156-162', 'none'],
      ['canary-by-header-pattern', 'a;b', { 'canary-by-header': 'X-Canary' }, '164-170', 'none'],
      ['canary-by-cookie', 'a;b', {}, '172-178', 'none'],
    ] as const
  ).map(
    ([name, value, context, lines, serves]): Case => ({
      name,
      value,
      context: { ...CANARY, ...context },
      nginx: 'admit',
      at: `canary/main.go:${lines}`,
      nginxServes: serves,
      keepip: 'default',
    }),
  ),
  // --- sessionaffinity: every value falls back to a default.
  {
    name: 'affinity',
    value: 'ip',
    nginx: 'admit',
    at: 'sessionaffinity/main.go:265-268',
    nginxServes: 'no affinity',
    keepip: 'default',
  },
  ...(
    [
      ['affinity-mode', 'sticky', '271-274'],
      ['affinity-canary-behavior', 'x', '276-279'],
      ['session-cookie-name', 'a;b', '201-205'],
      ['session-cookie-path', '/a;b', '219-222'],
      ['session-cookie-domain', 'a.example; Secure', '224-227'],
      ['session-cookie-expires', '1h', '207-211'],
      ['session-cookie-max-age', '1h', '213-217'],
      ['session-cookie-secure', 'yes', '234-237'],
      ['session-cookie-samesite', 'x', '229-232'],
      ['session-cookie-conditional-samesite-none', 'yes', '239-242'],
      ['session-cookie-change-on-failure', 'yes', '244-247'],
    ] as const
  ).map(
    ([name, value, lines]): Case => ({
      name,
      value,
      context: COOKIE,
      nginx: 'admit',
      at: `sessionaffinity/main.go:${lines}`,
      nginxServes: 'the default',
      keepip: 'default',
    }),
  ),
  // --- proxyssl: the Secret's error is returned; the others are read only with a usable Secret.
  {
    name: 'proxy-ssl-secret',
    value: 'a;b',
    context: { 'backend-protocol': 'HTTPS' },
    nginx: 'deny',
    at: 'proxyssl/main.go:192-195',
    keepip: 'closed',
  },
  ...(
    [
      ['proxy-ssl-verify', 'yes', '241-244', 'off'],
      ['proxy-ssl-verify-depth', 'x', '246-249', '1'],
      ['proxy-ssl-name', 'a.example;x', '233-239', '$proxy_host'],
      ['proxy-ssl-server-name', 'yes', '251-254', 'off'],
      ['proxy-ssl-protocols', 'TLSv1', '223-231', 'TLSv1.2 TLSv1.3'],
      ['proxy-ssl-ciphers', 'HIGH;x', '215-221', 'DEFAULT'],
    ] as const
  ).map(
    ([name, value, lines, serves]): Case => ({
      name,
      value,
      context: PROXY_SSL,
      nginx: 'admit',
      at: `proxyssl/main.go:${lines}`,
      nginxServes: serves,
      keepip: 'default',
    }),
  ),
  // --- ratelimit: rpm, rps, connections and the allowlist are returned; the others fall back.
  ...(
    [
      ['limit-rps', '5.5', '227-230'],
      ['limit-rpm', 'x', '223-226'],
      ['limit-connections', 'x', '231-234'],
    ] as const
  ).map(
    ([name, value, lines]): Case => ({
      name,
      value,
      nginx: 'deny',
      at: `ratelimit/main.go:${lines}`,
      keepip: 'closed',
      access: {
        family: 'rate and bandwidth limits',
        safe: closed('served without the limit'),
        wire: REFUSED,
      },
    }),
  ),
  {
    name: 'limit-rate',
    value: '1m',
    nginx: 'admit',
    at: 'ratelimit/main.go:214-217',
    nginxServes: 'the ConfigMap default (no limit)',
    // Bandwidth, not who gets in: keepip warns and takes ingress-nginx's default too (not failed closed).
    keepip: 'default',
  },
  {
    name: 'limit-rate-after',
    value: '1m',
    context: { 'limit-rate': '100' },
    nginx: 'admit',
    at: 'ratelimit/main.go:218-221',
    nginxServes: 'the ConfigMap default (0: limited from the first byte)',
    // Bandwidth, not who gets in: warned, ingress-nginx's default (limited from the first byte).
    keepip: 'default',
  },
  {
    name: 'limit-burst-multiplier',
    value: '1.5',
    context: RPS,
    nginx: 'admit',
    at: 'ratelimit/main.go:235-238',
    nginxServes: '5',
    keepip: 'default',
    access: {
      family: 'rate and bandwidth limits',
      safe: closedOr(
        'a burst wider than 1.5 × the limit',
        (s) => (s.loc?.access?.rateLimit?.burstMultiplier ?? Number.POSITIVE_INFINITY) <= 1.5,
      ),
    },
  },
  ...['limit-allowlist', 'limit-whitelist'].map(
    (name): Case => ({
      name,
      value: 'bogus',
      context: RPS,
      nginx: 'deny',
      at: `ratelimit/main.go:240-243${name === 'limit-whitelist' ? ' (alias)' : ''}`,
      keepip: 'closed',
      access: {
        family: 'rate and bandwidth limits',
        safe: closedOr(
          'clients exempted from the limit by a list that cannot be read',
          (s) => s.loc?.access?.rateLimit != null && s.loc.access.rateLimit.exempt?.valid !== true,
        ),
        wire: REFUSED,
      },
    }),
  ),
  // --- auth (basic): the type, the secret type and the realm are returned; a bad Secret name denies.
  {
    name: 'auth-type',
    value: 'none',
    context: { 'auth-secret': 'pw' },
    nginx: 'deny',
    at: 'auth/main.go:151-154',
    keepip: 'closed',
    access: { family: 'basic auth and satisfy', safe: closed('served without basic auth'), wire: REFUSED },
  },
  {
    name: 'auth-secret',
    value: 'a;b',
    context: { 'auth-type': 'basic' },
    nginx: 'admit',
    at: 'auth/main.go:169-174',
    nginxServes: 'location denied (503)',
    keepip: 'closed',
    access: { family: 'basic auth and satisfy', safe: closed('served without basic auth'), wire: REFUSED },
  },
  {
    name: 'auth-secret-type',
    value: 'file',
    context: BASIC,
    nginx: 'deny',
    at: 'auth/main.go:161-167',
    keepip: 'closed',
    access: { family: 'basic auth and satisfy', safe: closed('served without basic auth'), wire: REFUSED },
  },
  {
    name: 'auth-realm',
    value: 'a"b',
    context: BASIC,
    nginx: 'deny',
    at: 'auth/main.go:202-205',
    keepip: 'default',
    access: {
      family: 'basic auth and satisfy',
      safe: closedOr('served without basic auth', (s) => s.loc?.access?.basicAuth != null),
      wire: REFUSED,
    },
  },
  {
    name: 'satisfy',
    value: 'Any',
    context: { ...BASIC, 'allowlist-source-range': '10.0.0.0/8' },
    nginx: 'admit',
    at: 'satisfy/main.go:59-63',
    nginxServes: '"" (all)',
    keepip: 'default',
    access: {
      family: 'basic auth and satisfy',
      safe: closedOr(
        'satisfy any: the allowlist or the password alone lets a client in',
        (s) => s.loc?.access?.satisfy === 'all' && s.loc.access.basicAuth != null,
      ),
      wire: REFUSED,
    },
  },
  // --- authreq (external auth): only a refused auth-url is returned as it is.
  {
    name: 'auth-url',
    value: 'http://auth.example/check#frag',
    nginx: 'deny',
    at: 'authreq/main.go:316-319',
    keepip: 'closed',
    access: { family: 'external auth', safe: closed('served without external auth'), wire: REFUSED },
  },
  {
    name: 'auth-url',
    value: 'http://auth example/check',
    nginx: 'admit',
    at: 'authreq/main.go:321-324 (the validator drops spaces; url.Parse refuses a space in the host)',
    nginxServes: 'location denied (503)',
    keepip: 'closed',
    access: {
      family: 'external auth',
      safe: closed('an auth-url ingress-nginx cannot parse is not a denied location (its 503)'),
      wire: REFUSED,
    },
  },
  ...(
    [
      ['auth-method', 'PROPFIND', {}, '326-331', 'location denied (503)', 'closed'],
      ['auth-signin', 'https://a.example/s#x', {}, '334-340', 'no sign-in redirect', 'default'],
      [
        'auth-signin-redirect-param',
        '$x',
        { 'auth-signin': 'https://a.example/s' },
        '342-348',
        'the default parameter (rd)',
        'default',
      ],
      ['auth-response-headers', 'X-A;X-B', {}, '416-419', 'location denied (503)', 'closed'],
      [
        'auth-request-redirect',
        '$host',
        {},
        '474-477 (a plain error: annotations.go:200-202 skips the parser)',
        'served WITHOUT external auth',
        'closed',
      ],
      ['auth-cache-key', 'a;b', {}, '355-361', 'no cache', 'default'],
      [
        'auth-cache-duration',
        '5m;',
        {},
        '406-409 (a plain error: annotations.go:200-202 skips the parser)',
        'served WITHOUT external auth',
        'closed',
      ],
      ['auth-proxy-set-headers', 'a;b', {}, '433-436', 'no headers', 'closed'],
      [
        'auth-always-set-cookie',
        'yes',
        {},
        '479-482 (a plain error: annotations.go:200-202 skips the parser)',
        'served WITHOUT external auth',
        'default',
      ],
      ['auth-keepalive', 'x', {}, '363-367', '0', 'default'],
      ['auth-keepalive-share-vars', 'yes', {}, '380-384', 'false', 'default'],
      ['auth-keepalive-requests', 'x', {}, '386-390', '1000', 'default'],
      ['auth-keepalive-timeout', 'x', {}, '396-400', '60', 'default'],
    ] as const
  ).map(
    ([name, value, context, lines, serves, keepip]): Case => ({
      name,
      value,
      context: { ...AUTH_URL, ...context },
      nginx: 'admit',
      at: `authreq/main.go:${lines}`,
      nginxServes: serves,
      keepip,
      access: {
        family: 'external auth',
        safe: closedOr('served without external auth', (s) => {
          const auth = s.loc?.access?.externalAuth;
          // An auth-cache-key that cannot be read must not leave one cached answer for every client.
          return auth != null && (name !== 'auth-cache-key' || auth.cacheKey === null);
        }),
        wire: REFUSED,
      },
    }),
  ),
  {
    name: 'enable-global-auth',
    value: 'yes',
    nginx: 'admit',
    at: 'authreqglobal/main.go:58-61',
    nginxServes: 'true (global auth on); checked with a global-auth-url by the global auth test',
    keepip: 'default',
  },
  // --- authtls: the Secret, error page, pass-certificate and match-cn errors are returned.
  {
    name: 'auth-tls-secret',
    value: 'a;b',
    nginx: 'deny',
    at: 'authtls/main.go:151-154',
    keepip: 'closed',
    access: {
      family: 'client certificates',
      safe: (s) =>
        s.outcome === 'not served' || s.host?.clientCertificate?.error != null
          ? null
          : 'served without client certificates',
    },
  },
  ...(
    [
      ['auth-tls-verify-client', 'maybe', 'admit', '176-180', 'on', 'default'],
      ['auth-tls-verify-depth', 'x', 'admit', '182-186', '1', 'default'],
      ['auth-tls-error-page', 'javascript:x', 'deny', '188-194', undefined, 'default'],
      ['auth-tls-pass-certificate-to-upstream', 'yes', 'deny', '196-202', undefined, 'default'],
    ] as const
  ).map(
    ([name, value, nginx, lines, serves, keepip]): Case => ({
      name,
      value,
      context: TLS,
      nginx,
      at: `authtls/main.go:${lines}`,
      ...(serves === undefined ? {} : { nginxServes: serves }),
      keepip,
      access: {
        family: 'client certificates',
        safe: (s) => {
          const cc = s.host?.clientCertificate;
          if (s.outcome === 'not served' || cc?.error != null) return null;
          if (cc?.verifyClient !== 'on') return `verify-client ${cc?.verifyClient ?? 'none'}`;
          return cc.verifyDepth > 1 ? `verify depth ${cc.verifyDepth}` : null;
        },
      },
    }),
  ),
  ...[
    ['client', '(no CN= prefix)'],
    ['CN=(client', '(regexp.Compile fails)'],
  ].map(
    ([value, why]): Case => ({
      name: 'auth-tls-match-cn',
      value: value!,
      context: TLS,
      nginx: 'deny',
      at: `authtls/main.go:204-210 ${why}`,
      keepip: 'closed',
      access: {
        family: 'client certificates',
        safe: (s) =>
          s.outcome === 'not served' || s.host?.clientCertificate?.error != null
            ? null
            : 'every certificate of the CA accepted, whatever its CN',
      },
    }),
  ),
  // --- opentelemetry: only a refused operation name is returned.
  {
    name: 'enable-opentelemetry',
    value: 'yes',
    nginx: 'admit',
    at: 'opentelemetry/main.go:112-115',
    nginxServes: 'the ConfigMap default',
    keepip: 'default',
  },
  {
    name: 'opentelemetry-trust-incoming-span',
    value: 'yes',
    context: OTEL,
    nginx: 'admit',
    at: 'opentelemetry/main.go:122-133',
    nginxServes: 'the ConfigMap default',
    keepip: 'default',
  },
  {
    name: 'opentelemetry-operation-name',
    value: 'HTTP $request_method',
    context: OTEL,
    nginx: 'deny',
    at: 'opentelemetry/main.go:124-130',
    keepip: 'default',
  },
  // --- mirror: every value falls back.
  {
    name: 'mirror-target',
    value: 'https://m.example/x;y',
    nginx: 'admit',
    at: 'mirror/main.go:129-137',
    nginxServes: 'no mirror',
    keepip: 'default',
  },
  {
    name: 'mirror-host',
    value: 'm.example;x',
    context: { 'mirror-target': 'https://m.example/$request_uri' },
    nginx: 'admit',
    at: 'mirror/main.go:139-154',
    nginxServes: "mirror-target's host",
    keepip: 'default',
  },
  {
    name: 'mirror-request-body',
    value: 'maybe',
    context: { 'mirror-target': 'https://m.example/$request_uri' },
    nginx: 'admit',
    at: 'mirror/main.go:121-127',
    nginxServes: 'on',
    keepip: 'default',
  },
];

// ---- where keepip's webhook denies what ingress-nginx admits, and why ---------------------------------

interface Allowed {
  annotations: readonly string[];
  /** The code keepip's denial carries for it. */
  code: string;
  reason: string;
}

const ALLOWED: Readonly<Record<string, Allowed>> = {
  sourceRanges: {
    annotations: ['allowlist-source-range', 'whitelist-source-range', 'denylist-source-range'],
    code: 'INVALID_SOURCE_RANGE',
    reason:
      'ingress-nginx admits it and denies the location (503, ipallowlist/main.go:92-102, ipdenylist/main.go:90-99); keepip refuses it at admission, as docs/controller.md says ("an invalid allow/deny list (`INVALID_SOURCE_RANGE`: the gateway would answer 503)")',
  },
  ignoredRewrite: {
    annotations: ['rewrite-target', 'app-root'],
    code: 'INVALID_ANNOTATION_VALUE',
    reason:
      'ingress-nginx admits it and routes without it (rewrite/main.go:145-151, 183-190); docs/controller.md: keepip refuses "a `rewrite-target` or `app-root` it would ignore (it would route differently than asked)"',
  },
  deniedLocation: {
    annotations: ['auth-secret', 'auth-method', 'auth-response-headers', 'auth-url'],
    code: 'ACCESS_CONFIG_DENIED',
    reason:
      'ingress-nginx admits it and denies the location (LocationDeniedError: auth/main.go:169-174, authreq/main.go:321-331, 416-419); keepip denies the location the same way and its webhook refuses "any other error about the Ingress" (docs/controller.md)',
  },
  droppedAuth: {
    annotations: ['auth-request-redirect', 'auth-cache-duration'],
    code: 'ACCESS_CONFIG_DENIED',
    reason:
      'ingress-nginx returns a plain error that annotations.go:200-202 skips: the Ingress is admitted and served WITHOUT its external auth (authreq/main.go:406-409, 474-477); keepip denies the location and the Ingress: the safe side',
  },
  configMapName: {
    annotations: ['auth-proxy-set-headers', 'custom-headers'],
    code: 'ACCESS_CONFIG_DENIED',
    reason:
      'ingress-nginx drops a name its validator refuses and serves without those headers (authreq/main.go:433-436, customheaders/main.go:100-103); keepip looks the name up, finds no such ConfigMap and denies the location (docs/errors.md ACCESS_CONFIG_DENIED: "… or custom-headers cannot be used: its locations answer 503")',
  },
};

/** Admitted invalid values keepip takes without a warning, and why that is harmless. */
const SILENT: Readonly<Record<string, string>> = {
  'affinity-canary-behavior':
    'read only on a canary (this Ingress is none); ingress-nginx drops the value without a word too (sessionaffinity/main.go:276-279)',
};

// ---- the cluster, the reviews, the requests ----------------------------------------------------------

const hostOf = (i: number) => `v${i}.values.example`;
const nameOf = (i: number) => `value-${i}`;
const isCanary = (c: Case) => c.context?.canary === 'true';

function ingressObject(
  name: string,
  host: string,
  service: string,
  annotations: Record<string, string>,
): Obj {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      namespace: 'default',
      name,
      // A UUID, as ingress-nginx's CheckIngress requires (controller.go:370-372); the name's digest.
      uid: createHash('sha256')
        .update(name)
        .digest('hex')
        .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12}).*$/, '$1-$2-$3-$4-$5'),
      annotations: Object.fromEntries(Object.entries(annotations).map(([k, v]) => [PREFIX + k, v])),
    },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host,
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: service, port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  };
}

function serviceObject(name: string): Obj {
  return {
    kind: 'Service',
    metadata: { namespace: 'default', name },
    spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
  };
}

/** The Ingress of case `i`, its auth-url pointing at `auth` (host:port). */
function caseIngress(c: Case, i: number, auth: string): Obj {
  const annotations = Object.fromEntries(
    Object.entries({ ...c.context, [c.name]: c.value }).map(([k, v]) => [k, v.replace('{auth}', auth)]),
  );
  return ingressObject(nameOf(i), hostOf(i), isCanary(c) ? 'canary' : 'web', annotations);
}

/** A canary's main Ingress: a Service of its own, so its canary joins no other case's upstream. */
const mainOf = (i: number) => ingressObject(`main-${i}`, hostOf(i), `main-${i}`, {});

/** A bcrypt htpasswd line (the hash as the k8s tests use it; nobody logs in here). */
const HTPASSWD = 'foo:$2y$05$abcdefghijklmnopqrstuu5S/4bMgXQ1cRwEI3Sk1bJ8k8UmtlM0C\n';

function secrets(caPem: string): Obj[] {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return [
    {
      kind: 'Secret',
      type: 'Opaque',
      metadata: { namespace: 'default', name: 'ca' },
      data: { 'ca.crt': b64(caPem) },
    },
    {
      kind: 'Secret',
      type: 'Opaque',
      metadata: { namespace: 'default', name: 'pw' },
      data: { auth: b64(HTPASSWD) },
    },
  ];
}

function reviewOf(object: Obj, uid: string): Obj {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress' },
      resource: { group: 'networking.k8s.io', version: 'v1', resource: 'ingresses' },
      operation: 'CREATE',
      namespace: 'default',
      name: object.metadata.name,
      object,
      oldObject: null,
    },
  };
}

/** A GET (or a CORS preflight) to the gateway for `host`, from 127.0.0.`source`. */
function ask(port: number, host: string, preflight: boolean, source: number): Promise<WireAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        localAddress: `127.0.0.${source}`,
        method: preflight ? 'OPTIONS' : 'GET',
        path: '/',
        agent: false,
        headers: {
          host,
          ...(preflight
            ? {
                origin: 'https://evil.example',
                'access-control-request-method': 'PUT',
                'access-control-request-headers': 'x-evil',
              }
            : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end();
  });
}

/** How the served snapshot treats case `i`. */
function seenIn(topology: Topology, c: Case, i: number): Seen {
  const name = nameOf(i);
  const host = topology.gateway.virtualHosts.find((h) => h.host === hostOf(i));
  const loc = host?.locations.find((l) =>
    isCanary(c) ? l.canary?.ingress.name === name : l.ingress.name === name && l.path === '/',
  );
  if (host === undefined || loc === undefined) return { outcome: 'not served', host, loc };
  const cc = host.clientCertificate;
  const closedHere =
    loc.allow?.valid === false ||
    loc.deny?.valid === false ||
    loc.access?.denied != null ||
    (cc?.ingress.name === name && cc.error !== null) ||
    host.serverTls?.invalidCiphers !== undefined ||
    host.serverTls?.invalidProtocols !== undefined;
  return { outcome: closedHere ? 'closed' : 'default', host, loc };
}

const describeCase = (c: Case) =>
  `${c.name}=${JSON.stringify(c.value)}${c.context ? ` (with ${Object.keys(c.context).join(', ')})` : ''}`;

function show(list: readonly string[]): string {
  return list.length === 0 ? '' : `\n  ${list.join('\n  ')}`;
}

/** The parser package of a case: the tests of denials are grouped by it. */
const packageOf = (c: Case) => c.at.split('/')[0]!;

// ---- the tests ----------------------------------------------------------------------------------------

describe('invalid annotation values at the admission webhook, against ingress-nginx parsers (over HTTPS)', () => {
  const cluster = webCluster(async () => [...(await webhookFlags())], {
    prepare: async (api) => {
      for (const s of secrets((await keyPair('values-test-ca')).cert)) api.apply(s);
      api.apply(serviceObject('canary'));
      CASES.forEach((c, i) => {
        if (!isCanary(c)) return;
        api.apply(serviceObject(`main-${i}`));
        api.apply(mainOf(i));
      });
    },
  });
  const agent = new https.Agent({ keepAlive: true, maxSockets: 8, rejectUnauthorized: false });
  const authServer = http.createServer((_req, res) => {
    res.writeHead(401, { 'content-length': '0' }).end();
  });
  let auth = '';
  const answers: AdmissionAnswer[] = [];
  let served: Topology | null = null;

  before(async () => {
    await new Promise<void>((resolve) => authServer.listen(0, '127.0.0.1', resolve));
    auth = `127.0.0.1:${(authServer.address() as AddressInfo).port}`;
    const port = cluster.ctl.running.webhookAddress!.port;
    answers.push(
      ...(await mapLimited(CASES, 8, (c, i) =>
        postReview(agent, port, JSON.stringify(reviewOf(caseIngress(c, i, auth), `uid-values-${i}`))),
      )),
    );
    // The webhook out of the way: straight to the API server, then a marker applied last, so the
    // snapshot that serves the marker holds every case before it.
    for (const [i, c] of CASES.entries()) cluster.api.apply(caseIngress(c, i, auth));
    cluster.api.apply(ingressObject('marker', 'marker.values.example', 'web', {}));
    await waitForHost(cluster.ctl, 'marker.values.example');
    served = cluster.ctl.running.gateway()!.snapshot().topology;
  });
  after(async () => {
    agent.destroy();
    authServer.closeAllConnections();
    await new Promise<void>((resolve) => authServer.close(() => resolve()));
  });

  it('the table has an invalid value for every annotation keepip implements', () => {
    const covered = new Set(CASES.map((c) => c.name));
    assert.deepEqual(
      SUPPORTED_ANNOTATIONS.filter((n) => !covered.has(n)),
      [],
    );
  });

  it('every review is answered (HTTP 200 with a verdict)', () => {
    const broken = answers.flatMap((a, i) =>
      a.status === 200 && a.allowed !== null ? [] : [`${describeCase(CASES[i]!)}: HTTP ${a.status}`],
    );
    assert.deepEqual(broken, []);
  });

  const denyGroups = new Map<string, number[]>();
  CASES.forEach((c, i) => {
    if (c.nginx === 'deny') denyGroups.set(packageOf(c), [...(denyGroups.get(packageOf(c)) ?? []), i]);
  });
  for (const [pkg, indexes] of denyGroups) {
    const names = [...new Set(indexes.map((i) => CASES[i]!.name))].join(', ');
    it(`${pkg}: ingress-nginx denies the Ingress for an invalid ${names}; keepip's webhook denies it too, naming the annotation`, () => {
      const admitted = indexes.flatMap((i) => {
        const c = CASES[i]!;
        const a = answers[i]!;
        if (a.allowed === false && a.message.includes(`"${PREFIX}${c.name}"`)) return [];
        return [
          `${describeCase(c)}: ingress-nginx denies (${c.at}); keepip ${a.allowed ? 'admits' : `denies for another reason: ${a.message}`}${a.warnings.length > 0 ? ` [warning: ${a.warnings.join(' | ')}]` : ''}`,
        ];
      });
      assert.deepEqual(admitted, [], `FINDING: keepip admits what ingress-nginx denies:${show(admitted)}`);
    });
  }

  const met = new Set<string>();
  it('values ingress-nginx admits: keepip admits them too, or denies only where ALLOWED says why', () => {
    const unexplained = CASES.flatMap((c, i) => {
      const a = answers[i]!;
      if (c.nginx !== 'admit' || a.allowed !== false) return [];
      const entry = Object.entries(ALLOWED).find(
        ([, e]) => e.annotations.includes(c.name) && a.message.includes(` ${e.code}: `),
      );
      if (entry === undefined)
        return [`${describeCase(c)}: ingress-nginx admits (${c.at}); keepip denies: ${a.message}`];
      met.add(entry[0]);
      return [];
    });
    assert.deepEqual(unexplained, [], `keepip denies beyond ALLOWED:${show(unexplained)}`);
  });

  it('every ALLOWED admission difference is still met (the table has no dead entries)', () => {
    assert.deepEqual([...met].sort(), Object.keys(ALLOWED).sort());
  });

  it('an invalid value both admit comes back in response.warnings naming the annotation (kubectl prints it), unless SILENT says why not', () => {
    const silent = CASES.flatMap((c, i) => {
      const a = answers[i]!;
      if (c.nginx !== 'admit' || a.allowed !== true) return [];
      if (a.warnings.some((w) => w.includes(`"${PREFIX}${c.name}"`))) return [];
      if (SILENT[c.name] !== undefined) return [];
      return [`${describeCase(c)}: admitted without a word (ingress-nginx: ${c.nginxServes ?? 'denied'})`];
    });
    assert.deepEqual(silent, [], `admitted silently:${show(silent)}`);
    const unmet = Object.keys(SILENT).filter(
      (name) =>
        !CASES.some(
          (c, i) =>
            c.name === name &&
            answers[i]!.allowed === true &&
            !answers[i]!.warnings.some((w) => w.includes(`"${PREFIX}${name}"`)),
        ),
    );
    assert.deepEqual(unmet, [], 'SILENT entries no longer silent');
  });

  it('with the webhook off, the gateway serves each value as the table says (default, closed, not served)', (t) => {
    const differ = CASES.flatMap((c, i) => {
      const seen = seenIn(served!, c, i);
      const a = answers[i]!;
      t.diagnostic(
        `${describeCase(c)} | ingress-nginx: ${c.nginx === 'deny' ? 'deny' : `admit, ${c.nginxServes}`} (${c.at}) | keepip: ${a.allowed ? (a.warnings.length > 0 ? 'admit+warning' : 'admit') : 'deny'}, serves ${seen.outcome}`,
      );
      return seen.outcome === c.keepip
        ? []
        : [`${describeCase(c)}: ${seen.outcome}, the table says ${c.keepip}`];
    });
    assert.deepEqual(differ, [], `update the table's keepip column, or look why:${show(differ)}`);
  });

  it('control: an Ingress without access annotations answers 200 from the backend (the wire checks can see a leak)', async () => {
    const hitsBefore = cluster.web.hits;
    const answer = await ask(cluster.httpPort, 'marker.values.example', false, 9);
    assert.equal(answer.status, 200);
    assert.equal(cluster.web.hits - hitsBefore, 1);
  });

  const families = [...new Set(CASES.flatMap((c) => (c.access ? [c.access.family] : [])))];
  for (const family of families)
    it(`${family}: an invalid value never serves a location that admits more than its author meant (snapshot, and a client on the wire)`, async (t) => {
      const picked = CASES.map((c, i) => ({ c, i })).filter(({ c }) => c.access?.family === family);
      const open: string[] = [];
      for (const { c, i } of picked) {
        const why = c.access!.safe(seenIn(served!, c, i));
        if (why !== null)
          open.push(`${describeCase(c)}: ${why} (ingress-nginx: ${c.nginxServes ?? 'not served'})`);
      }
      const wired = picked.filter(({ c }) => c.access!.wire !== undefined);
      const hitsBefore = cluster.web.hits;
      const results = await mapLimited(wired, 4, ({ c, i }) =>
        ask(cluster.httpPort, hostOf(i), c.access!.wire!.preflight === true, 10 + (i % 200)),
      );
      const hits = cluster.web.hits - hitsBefore;
      wired.forEach(({ c }, k) => {
        const wire = c.access!.wire!;
        t.diagnostic(
          `${describeCase(c)}: ${wire.preflight ? 'preflight' : 'GET'} answered ${results[k]!.status}`,
        );
        const why = wire.check(results[k]!);
        if (why !== null) open.push(`${describeCase(c)} on the wire: ${why}`);
      });
      // A preflight is answered by the gateway itself; a GET without credentials must never get through.
      const preflights = wired.filter(({ c }) => c.access!.wire!.preflight === true).length;
      if (preflights === 0 && hits > 0)
        open.push(`the backend saw ${hits} of ${wired.length} requests sent without credentials`);
      assert.deepEqual(open, [], `FINDING: more open than its author meant:${show(open)}`);
    });

  it('enable-global-auth with an invalid value keeps the global auth (ingress-nginx: true, authreqglobal/main.go:58-61)', () => {
    const i = CASES.findIndex((c) => c.name === 'enable-global-auth');
    const c = CASES[i]!;
    const topology = buildClusterTopology(
      {
        ...EMPTY_CLUSTER,
        ingresses: [caseIngress(c, i, auth)],
        services: [serviceObject('web')],
        configMaps: [
          {
            kind: 'ConfigMap',
            metadata: { namespace: 'ingress-nginx', name: 'global' },
            data: { 'global-auth-url': `http://${auth}/global` },
          },
        ],
      },
      { ...DEFAULT_SNAPSHOT_OPTIONS, configMap: 'ingress-nginx/global' },
    );
    const seen = seenIn(topology, c, i);
    assert.ok(
      seen.outcome !== 'default' || seen.loc?.access?.externalAuth?.global === true,
      `${describeCase(c)}: served without the global auth: ${JSON.stringify(seen.loc?.access)}`,
    );
  });
});
