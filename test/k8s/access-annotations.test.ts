// Parsing of the access annotations and ConfigMap keys (src/k8s/access-annotations.ts) into the model,
// with ingress-nginx's validation: what it denies is a 503 location (ACCESS_CONFIG_DENIED), bad values
// of optional settings are warnings with the default.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LocationModel, Topology } from '../../src/config/model.ts';
import { buildSnapshot } from '../../src/gateway/snapshot.ts';
import { ConnectionRegistry } from '../../src/gateway/upstream.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
  opaqueSecret as secret,
} from '../fixtures/gateway/manifests.ts';

function build(
  annotations: Record<string, string>,
  extra: K8sObject[] = [],
  path = '/',
): { t: Topology; loc: LocationModel } {
  const t = topologyOf([
    ...serviceWithEndpoints({ name: 'web', ports: [8080] }),
    ingress({ name: 'web', host: 'web.example', paths: [{ path, service: 'web', port: 80 }], annotations }),
    ...extra,
  ]);
  return { t, loc: t.gateway.virtualHosts[0]!.locations[0]! };
}

const codes = (t: Topology) => t.issues.map((i) => `${i.severity}:${i.code}`);

test('no access annotation: no access model at all', () => {
  assert.equal(build({}).loc.access, undefined);
});

test('limit-rps, limit-rpm, limit-connections, limit-burst-multiplier: a zone per Ingress, multiplier 5 by default', () => {
  const { loc } = build({ 'limit-rps': '5', 'limit-rpm': '300', 'limit-connections': '8' });
  assert.deepEqual(loc.access?.rateLimit, {
    zone: 'default/web',
    rps: 5,
    rpm: 300,
    connections: 8,
    burstMultiplier: 5,
    exempt: null,
  });
  assert.equal(
    build({ 'limit-rps': '1', 'limit-burst-multiplier': '2' }).loc.access?.rateLimit?.burstMultiplier,
    2,
  );
});

test('a limit that is not a whole number fails closed: the location is denied (ingress-nginx serves no such Ingress)', () => {
  for (const value of ['1.5', ' ', 'ten', '-1']) {
    const { t, loc } = build({ 'limit-rps': value });
    assert.equal(loc.access?.denied?.annotation, 'nginx.ingress.kubernetes.io/limit-rps', value);
    assert.ok(codes(t).includes('error:ACCESS_CONFIG_DENIED'), value);
  }
  const connections = build({ 'limit-connections': '2x' });
  assert.equal(connections.loc.access?.denied?.annotation, 'nginx.ingress.kubernetes.io/limit-connections');
  // Empty is no limit, as ingress-nginx (it validates no empty value).
  assert.equal(build({ 'limit-rpm': '' }).loc.access, undefined);
  // nginx refuses limit_conn past 65535: a limit that cannot be applied is not dropped either.
  assert.equal(build({ 'limit-connections': '65535' }).loc.access?.rateLimit?.connections, 65535);
  const huge = build({ 'limit-connections': '65536' });
  assert.equal(huge.loc.access?.denied?.annotation, 'nginx.ingress.kubernetes.io/limit-connections');
});

test('limit-burst-multiplier 0 (nginx refuses burst=0) is the narrow 1, with a warning, not the default 5', () => {
  const { t, loc } = build({ 'limit-rps': '1', 'limit-burst-multiplier': '0' });
  assert.equal(loc.access?.rateLimit?.burstMultiplier, 1);
  assert.equal(codes(t).filter((c) => c.startsWith('warning:')).length, 1);
});

test('limit-whitelist (or limit-allowlist): the exempt list; an invalid one denies the location', () => {
  const ok = build({ 'limit-rps': '1', 'limit-whitelist': '10.0.0.0/8, 192.168.1.1' });
  assert.deepEqual(ok.loc.access?.rateLimit?.exempt?.valid && ok.loc.access.rateLimit.exempt.cidrs, [
    '10.0.0.0/8',
    '192.168.1.1/32',
  ]);
  // As ingress-nginx: an empty limit-allowlist goes on to the legacy name.
  const empty = build({ 'limit-rps': '1', 'limit-allowlist': '', 'limit-whitelist': '10.0.0.0/8' });
  assert.deepEqual(empty.loc.access?.rateLimit?.exempt?.valid && empty.loc.access.rateLimit.exempt.cidrs, [
    '10.0.0.0/8',
  ]);
  const bad = build({ 'limit-rps': '1', 'limit-allowlist': '10.0.0.0/33' });
  assert.equal(bad.loc.access?.denied?.annotation, 'nginx.ingress.kubernetes.io/limit-allowlist');
  assert.ok(codes(bad.t).includes('error:ACCESS_CONFIG_DENIED'));
});

test('basic auth: auth-file htpasswd and auth-map read into users; realm kept', () => {
  const file = build({ 'auth-type': 'basic', 'auth-secret': 'pw', 'auth-realm': 'test auth' }, [
    secret('pw', { auth: '# comment\nfoo:$apr1$x$y\n\nbar:{SHA}abc:comment\n' }),
  ]);
  assert.deepEqual(file.loc.access?.basicAuth, {
    realm: 'test auth',
    secret: 'default/pw',
    secretType: 'auth-file',
    users: [
      { user: 'foo', hash: '$apr1$x$y' },
      { user: 'bar', hash: '{SHA}abc' },
    ],
  });
  const map = build({ 'auth-type': 'basic', 'auth-secret': 'default/pw', 'auth-secret-type': 'auth-map' }, [
    secret('pw', { alice: '{PLAIN}a', bob: '{PLAIN}b' }),
  ]);
  assert.deepEqual(
    map.loc.access?.basicAuth?.users.map((u) => u.user),
    ['alice', 'bob'],
  );
});

test('basic auth that cannot be configured denies the location (503), as ingress-nginx does', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'auth-type': 'basic', 'auth-secret': 'nope' }, /Secret default\/nope is not in the manifests/],
    [{ 'auth-type': 'basic' }, /needs auth-secret/],
    [{ 'auth-type': 'digest', 'auth-secret': 'pw' }, /digest authentication is not supported/],
    [{ 'auth-type': 'ntlm', 'auth-secret': 'pw' }, /is not "basic"/],
    [{ 'auth-type': 'basic', 'auth-secret': 'other/pw' }, /another namespace/],
    [
      { 'auth-type': 'basic', 'auth-secret': 'pw', 'auth-secret-type': 'file' },
      /is not "auth-file" or "auth-map"/,
    ],
    [{ 'auth-type': 'basic', 'auth-secret': 'nokey' }, /has no key "auth"/],
  ];
  for (const [annotations, reason] of cases) {
    const { t, loc } = build(annotations, [
      secret('pw', { auth: 'a:b' }),
      secret('nokey', { x: 'y' }),
      secret('pw', { auth: 'a:b' }, 'other'),
    ]);
    assert.match(loc.access?.denied?.reason ?? '', reason, JSON.stringify(annotations));
    assert.ok(codes(t).includes('error:ACCESS_CONFIG_DENIED'));
    // Contained: the configuration is still served, that location fails closed.
    assert.ok(
      buildSnapshot(t, {
        version: 1,
        trustedProxies: null,
        logFormat: 'text',
        connections: new ConnectionRegistry(),
      }).ok,
    );
  }
});

test('a DES-crypt user is reported (AUTH_HASH_UNSUPPORTED)', () => {
  const { t } = build({ 'auth-type': 'basic', 'auth-secret': 'pw' }, [
    secret('pw', { auth: 'old:abJnggxhB/yWI' }),
  ]);
  assert.ok(codes(t).includes('warning:AUTH_HASH_UNSUPPORTED'));
});

test('auth-url and companions', () => {
  const { loc } = build(
    {
      'auth-url': 'http://auth.example/check?x=$host',
      'auth-method': 'POST',
      'auth-signin': 'https://$host/oauth2/start?rd=$escaped_request_uri',
      'auth-signin-redirect-param': 'orig',
      'auth-response-headers': 'X-User, X-Email',
      'auth-request-redirect': 'http://x.example/r',
      'auth-cache-key': '$remote_user$http_authorization',
      'auth-cache-duration': '200 202 401 30m, 5m',
      'auth-always-set-cookie': 'true',
      'auth-proxy-set-headers': 'hdrs',
    },
    [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'hdrs', namespace: 'default' },
        data: { 'X-Custom': '42' },
      },
    ],
  );
  assert.deepEqual(loc.access?.externalAuth, {
    url: 'http://auth.example/check?x=$host',
    method: 'POST',
    signin: 'https://$host/oauth2/start?rd=$escaped_request_uri',
    signinRedirectParam: 'orig',
    responseHeaders: ['X-User', 'X-Email'],
    requestRedirect: 'http://x.example/r',
    cacheKey: '$remote_user$http_authorization',
    cacheDurations: ['200 202 401 30m', '5m'],
    proxySetHeaders: { 'X-Custom': '42' },
    alwaysSetCookie: true,
    global: false,
  });
});

test('an auth-cache-key that names nothing of the client is a warning (AUTH_CACHE_SHARED); one with credentials is not', () => {
  const auth = (key: string) =>
    codes(build({ 'auth-url': 'http://auth.example/check', 'auth-cache-key': key }).t);
  for (const key of ['$host', '$request_uri', '$host$http_host', 'static'])
    assert.ok(auth(key).includes('warning:AUTH_CACHE_SHARED'), key);
  for (const key of ['$remote_user$http_authorization', '$cookie_session', '$http_x_api_key', '$remote_addr'])
    assert.ok(!auth(key).includes('warning:AUTH_CACHE_SHARED'), key);
});

test('external auth that cannot be configured denies the location', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'auth-url': 'https://invalid..auth.url' }, /could not parse auth-url: invalid url host/],
    [{ 'auth-url': 'auth.example/x' }, /url scheme is empty/],
    [{ 'auth-url': 'http://a.example', 'auth-method': 'FETCH' }, /not an HTTP method/],
    [
      { 'auth-url': 'http://a.example', 'auth-response-headers': 'X-Ok, bad header!' },
      /invalid headers list/,
    ],
    [{ 'auth-url': 'http://a.example', 'auth-cache-duration': '30m 200' }, /invalid cache duration/],
    [
      { 'auth-url': 'http://a.example', 'auth-proxy-set-headers': 'nope' },
      /unable to find ConfigMap default\/nope/,
    ],
  ];
  for (const [annotations, reason] of cases) {
    const { loc } = build(annotations);
    assert.match(loc.access?.denied?.reason ?? '', reason, JSON.stringify(annotations));
  }
});

test('global-auth-url applies unless enable-global-auth is false, an own auth-url, or no-auth-locations', () => {
  const cm = controllerConfigMap({
    'global-auth-url': 'http://auth.example/global',
    'global-auth-signin': 'http://login.example/',
    'no-auth-locations': '/public, /.well-known',
  });
  assert.equal(build({}, [cm]).loc.access?.externalAuth?.url, 'http://auth.example/global');
  assert.equal(build({}, [cm]).loc.access?.externalAuth?.global, true);
  assert.equal(build({ 'enable-global-auth': 'false' }, [cm]).loc.access, undefined);
  assert.equal(
    build({ 'auth-url': 'http://own.example/' }, [cm]).loc.access?.externalAuth?.url,
    'http://own.example/',
  );
  assert.equal(build({}, [cm], '/public/files').loc.access, undefined);
  assert.equal(
    build(
      {},
      [controllerConfigMap({ 'global-auth-url': 'http://auth.example/' })],
      '/.well-known/acme-challenge',
    ).loc.access,
    undefined,
  );
});

test('an unusable global-auth-url fails closed where it applies', () => {
  const { t, loc } = build({}, [controllerConfigMap({ 'global-auth-url': 'http://bad..host/' })]);
  assert.equal(loc.access?.denied?.annotation, 'global-auth-url');
  assert.ok(codes(t).includes('error:ACCESS_CONFIG_DENIED'));
});

test('limit-req-status-code and limit-conn-status-code: 400-599, else a warning and 503', () => {
  const t = topologyOf([
    controllerConfigMap({ 'limit-req-status-code': '429', 'limit-conn-status-code': '200' }),
  ]);
  assert.equal(t.gateway.settings.limitReqStatusCode, 429);
  assert.equal(t.gateway.settings.limitConnStatusCode, 503);
  assert.ok(codes(t).includes('warning:INVALID_CONFIGMAP_VALUE'));
  assert.ok(!t.gateway.settings.unsupportedKeys.includes('limit-req-status-code'));
});

test('satisfy: any or all; anything else is a warning and all', () => {
  assert.equal(build({ satisfy: 'any', 'limit-rps': '1' }).loc.access?.satisfy, 'any');
  const bad = build({ satisfy: 'some', 'limit-rps': '1' });
  assert.equal(bad.loc.access?.satisfy, 'all');
  assert.ok(codes(bad.t).includes('warning:INVALID_ANNOTATION_VALUE'));
  // As written (ingress-nginx compares the raw value): 'Any' and ' any' are all, warned, never any.
  for (const value of ['Any', ' any']) {
    const spelled = build({ satisfy: value, 'limit-rps': '1' });
    assert.equal(spelled.loc.access?.satisfy, 'all', value);
    assert.ok(codes(spelled.t).includes('warning:INVALID_ANNOTATION_VALUE'), value);
  }
});

test('auth-tls-*: per host, defaults on / depth 1; a missing Secret is the host error (403)', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const withCa = build(
    { 'auth-tls-secret': 'default/ca', 'auth-tls-verify-depth': '0', 'auth-tls-match-cn': 'CN=(a|b)' },
    [secret('ca', { 'ca.crt': ca })],
  );
  const cc = withCa.t.gateway.virtualHosts[0]!.clientCertificate!;
  assert.equal(cc.verifyClient, 'on');
  assert.equal(cc.verifyDepth, 1);
  assert.equal(cc.caPem, ca);
  assert.equal(cc.matchCn, 'CN=(a|b)');
  assert.equal(cc.error, null);
  const missing = build({ 'auth-tls-secret': 'default/none', 'auth-tls-verify-client': 'maybe' });
  const err = missing.t.gateway.virtualHosts[0]!.clientCertificate!;
  assert.match(err.error ?? '', /Secret default\/none is not in the manifests/);
  assert.equal(err.verifyClient, 'on');
  assert.ok(codes(missing.t).includes('warning:INVALID_ANNOTATION_VALUE'));
});

test("auth-tls-secret's ca.crl is the host's CRL; one that is not a PEM CRL is the host error (403)", () => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const crl = '-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n';
  const withCrl = build({ 'auth-tls-secret': 'default/ca' }, [secret('ca', { 'ca.crt': ca, 'ca.crl': crl })]);
  const cc = withCrl.t.gateway.virtualHosts[0]!.clientCertificate!;
  assert.deepEqual([cc.crlPem, cc.error], [crl, null]);
  const without = build({ 'auth-tls-secret': 'default/ca' }, [secret('ca', { 'ca.crt': ca })]);
  assert.equal(without.t.gateway.virtualHosts[0]!.clientCertificate!.crlPem, null);
  const bad = build({ 'auth-tls-secret': 'default/ca' }, [
    secret('ca', { 'ca.crt': ca, 'ca.crl': 'revoked: 1' }),
  ]);
  assert.match(bad.t.gateway.virtualHosts[0]!.clientCertificate!.error ?? '', /no PEM CRL in ca\.crl/);
});

test('auth-tls-match-cn that can backtrack without bound refuses every certificate (the host error), with a warning', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const nested = build({ 'auth-tls-secret': 'default/ca', 'auth-tls-match-cn': 'CN=(a+)+$' }, [
    secret('ca', { 'ca.crt': ca }),
  ]);
  const cc = nested.t.gateway.virtualHosts[0]!.clientCertificate!;
  assert.equal(cc.matchCn, null);
  assert.equal(cc.error, 'auth-tls-match-cn is invalid');
  assert.ok(nested.t.issues.some((i) => /auth-tls-match-cn.*repeats "\(a\+\)\+"/.test(i.message)));
});

test('auth-tls-match-cn is PCRE (nginx `!~`): POSIX classes and \\z are kept; a construct without a translation refuses every certificate', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const posix = build({ 'auth-tls-secret': 'default/ca', 'auth-tls-match-cn': 'CN=[[:alpha:]]+\\z' }, [
    secret('ca', { 'ca.crt': ca }),
  ]);
  assert.equal(posix.t.gateway.virtualHosts[0]!.clientCertificate!.matchCn, 'CN=[[:alpha:]]+\\z');
  const quoted = build({ 'auth-tls-secret': 'default/ca', 'auth-tls-match-cn': 'CN=\\Qadmin\\E' }, [
    secret('ca', { 'ca.crt': ca }),
  ]);
  const cc = quoted.t.gateway.virtualHosts[0]!.clientCertificate!;
  assert.equal(cc.matchCn, null);
  assert.equal(cc.error, 'auth-tls-match-cn is invalid');
});

test('limit-rate / limit-rate-after: KB per request, defaults from the ConfigMap', () => {
  assert.deepEqual(build({ 'limit-rate': '100', 'limit-rate-after': '10' }).loc.access?.bandwidth, {
    rateBytes: 100 * 1024,
    afterBytes: 10 * 1024,
  });
  assert.equal(build({ 'limit-rate-after': '10' }).loc.access, undefined, 'no rate: no limit');
  const cm = controllerConfigMap({ 'limit-rate': '5' });
  assert.deepEqual(build({}, [cm]).loc.access?.bandwidth, { rateBytes: 5 * 1024, afterBytes: 0 });
  assert.equal(build({ 'limit-rate': '0' }, [cm]).loc.access, undefined, 'the annotation wins');
});

test('allow-cross-namespace-resources: another namespace is denied by default, read with "true"', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const others: K8sObject[] = [
    secret('pw', { auth: 'alice:{PLAIN}a' }, 'shared'),
    secret('ca', { 'ca.crt': ca }, 'shared'),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'hdrs', namespace: 'shared' },
      data: { 'X-Custom': '42' },
    },
  ];
  const basic = { 'auth-type': 'basic', 'auth-secret': 'shared/pw' };
  const external = { 'auth-url': 'http://auth.example/', 'auth-proxy-set-headers': 'shared/hdrs' };
  const tls = { 'auth-tls-secret': 'shared/ca' };
  // By default (false), as ingress-nginx: each reference denies.
  assert.match(build(basic, others).loc.access?.denied?.reason ?? '', /another namespace/);
  assert.match(build(external, others).loc.access?.denied?.reason ?? '', /another namespace/);
  assert.match(
    build(tls, others).t.gateway.virtualHosts[0]!.clientCertificate!.error ?? '',
    /cross namespace secrets are not supported/,
  );
  const allowed = [controllerConfigMap({ 'allow-cross-namespace-resources': 'true' }), ...others];
  const withBasic = build(basic, allowed);
  assert.equal(withBasic.loc.access?.denied ?? null, null);
  assert.deepEqual(
    withBasic.loc.access?.basicAuth?.users.map((u) => u.user),
    ['alice'],
  );
  assert.deepEqual(build(external, allowed).loc.access?.externalAuth?.proxySetHeaders, { 'X-Custom': '42' });
  const cc = build(tls, allowed).t.gateway.virtualHosts[0]!.clientCertificate!;
  assert.deepEqual([cc.error, cc.caPem, cc.secret], [null, ca, 'shared/ca']);
  // proxy-ssl-secret likewise (a backend CA of another namespace).
  const proxySsl = { 'backend-protocol': 'HTTPS', 'proxy-ssl-secret': 'shared/ca' };
  assert.match(build(proxySsl, others).loc.access?.denied?.reason ?? '', /cross namespace/);
  const upstreamCa = build(proxySsl, allowed).loc;
  assert.equal(upstreamCa.access?.denied ?? null, null);
  assert.equal(upstreamCa.proxySsl?.caPem, ca);
});
