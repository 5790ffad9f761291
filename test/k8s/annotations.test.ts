import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigIssue } from '../../src/config/model.ts';
import {
  BACKEND_DEADLINE_AT_ONCE_MS,
  DEFAULT_LOG_FORMAT_UPSTREAM,
  defaultGatewaySettings,
  parseIngressAnnotations,
} from '../../src/k8s/annotations.ts';
import { parseGoBool, parseGoDurationMs, parseWrittenBodySize } from '../../src/k8s/values.ts';
import { codes, configMap, configMapSettings, find, ingress, topologyOf } from './helpers.ts';

const P = 'nginx.ingress.kubernetes.io/';
const ORIGIN = { file: 'f.yaml', document: 1, kind: 'Ingress', namespace: 'ns', name: 'ing' };

function annotations(values: Record<string, string>, base = defaultGatewaySettings()) {
  const issues: ConfigIssue[] = [];
  const prefixed = Object.fromEntries(Object.entries(values).map(([k, v]) => [P + k, v]));
  return { parsed: parseIngressAnnotations(prefixed, base, ORIGIN, issues), issues };
}

const settings = configMapSettings;

test('value syntaxes: Go booleans, Go durations, nginx sizes', () => {
  for (const t of ['1', 't', 'T', 'true', 'TRUE', 'True']) assert.equal(parseGoBool(t), true);
  for (const f of ['0', 'f', 'F', 'false', 'FALSE', 'False']) assert.equal(parseGoBool(f), false);
  for (const bad of ['yes', 'on', '', 'tRuE', ' true', 'false\n']) assert.equal(parseGoBool(bad), null);
  assert.equal(parseGoDurationMs('5s'), 5000);
  assert.equal(parseGoDurationMs('1m30s'), 90_000);
  assert.equal(parseGoDurationMs('250ms'), 250);
  assert.equal(parseGoDurationMs('1.5s'), 1500);
  for (const bad of ['5', 's', '5 s', '-5s', '5x']) assert.equal(parseGoDurationMs(bad), null);
  // client_max_body_size as ingress-nginx writes it (isValidByteSize after Go's TrimSpace), and as
  // nginx then reads the value written as it is.
  assert.equal(parseWrittenBodySize('0'), 0);
  assert.equal(parseWrittenBodySize('100'), 100);
  assert.equal(parseWrittenBodySize('8k'), 8192);
  assert.equal(parseWrittenBodySize('8K'), 8192);
  assert.equal(parseWrittenBodySize(' 1m\t'), 1024 ** 2);
  assert.equal(parseWrittenBodySize('2G'), 2 * 1024 ** 3);
  for (const unwritten of ['1.5m', '1mb', 'm', '', '-1', '1 m', '8b', '\ufeff8m'])
    assert.equal(parseWrittenBodySize(unwritten), 'unwritten', JSON.stringify(unwritten));
  // Go trims U+3000, nginx's lexer does not: written, and refused by nginx.
  assert.equal(parseWrittenBodySize('\u30008m'), null);
});

test('ConfigMap defaults are ingress-nginx 1.12 defaults', () => {
  const s = defaultGatewaySettings();
  assert.equal(s.useProxyProtocol, false);
  assert.equal(s.proxyProtocolHeaderTimeoutMs, 5000);
  assert.deepEqual(s.trustedCidrs, ['0.0.0.0/0']);
  assert.equal(s.trustedCidrsDefaulted, true);
  assert.equal(s.forwardedForHeader, 'X-Forwarded-For');
  assert.equal(s.sslRedirect, true);
  assert.equal(s.httpRedirectCode, 308);
  assert.equal(s.logFormatUpstream, DEFAULT_LOG_FORMAT_UPSTREAM);
  assert.match(
    s.logFormatUpstream,
    /^\$remote_addr - \$remote_user \[\$time_local\] "\$request" .* \$req_id$/,
  );
  assert.equal(s.proxyBodySizeBytes, 1024 * 1024);
  assert.deepEqual(
    [s.proxyConnectTimeoutMs, s.proxyReadTimeoutMs, s.proxySendTimeoutMs],
    [5000, 60_000, 60_000],
  );
  assert.equal(s.upstreamKeepaliveConnections, 320);
});

test('every supported ConfigMap key is read', () => {
  const { s, issues } = settings({
    'use-proxy-protocol': 'true',
    'proxy-protocol-header-timeout': '2s',
    'proxy-real-ip-cidr': '10.0.0.0/16, 192.0.2.7',
    'use-forwarded-headers': 'true',
    'forwarded-for-header': 'X-Real-Client',
    'compute-full-forwarded-for': 'true',
    'enable-real-ip': 'true',
    'whitelist-source-range': '10.1.0.0/16',
    'denylist-source-range': '10.1.2.0/24',
    'block-cidrs': '203.0.113.0/24,,198.51.100.1',
    'ssl-redirect': 'false',
    'http-redirect-code': '301',
    'log-format-upstream': '$remote_addr $status',
    'log-format-escape-json': 'true',
    'proxy-body-size': '16m',
    'proxy-connect-timeout': '3',
    'proxy-read-timeout': '30',
    'proxy-send-timeout': '40',
    'upstream-keepalive-connections': '0',
    'upstream-keepalive-timeout': '5',
    'upstream-keepalive-requests': '100',
    'upstream-keepalive-time': '1h30m',
    'allow-snippet-annotations': 'false',
  });
  assert.deepEqual(issues, []);
  assert.equal(s.useProxyProtocol, true);
  assert.equal(s.proxyProtocolHeaderTimeoutMs, 2000);
  assert.deepEqual(s.trustedCidrs, ['10.0.0.0/16', '192.0.2.7/32']);
  assert.equal(s.trustedCidrsDefaulted, false);
  assert.equal(s.useForwardedHeaders, true);
  assert.equal(s.forwardedForHeader, 'X-Real-Client');
  assert.equal(s.computeFullForwardedFor, true);
  assert.equal(s.enableRealIp, true);
  assert.deepEqual(s.defaultAllow, {
    valid: true,
    cidrs: ['10.1.0.0/16'],
    raw: '10.1.0.0/16',
    from: 'configmap',
  });
  assert.deepEqual(s.defaultDeny?.valid && s.defaultDeny.cidrs, ['10.1.2.0/24']);
  // ConfigMap lists skip empty entries, as ingress-nginx splits them.
  assert.deepEqual(s.blockCidrs?.valid && s.blockCidrs.cidrs, ['198.51.100.1/32', '203.0.113.0/24']);
  assert.equal(s.sslRedirect, false);
  assert.equal(s.httpRedirectCode, 301);
  assert.equal(s.logFormatUpstream, '$remote_addr $status');
  assert.equal(s.logFormatEscapeJson, true);
  assert.equal(s.logFormatEscapeNone, false);
  assert.equal(s.proxyBodySizeBytes, 16 * 1024 ** 2);
  assert.deepEqual(
    [s.proxyConnectTimeoutMs, s.proxyReadTimeoutMs, s.proxySendTimeoutMs],
    [3000, 30_000, 40_000],
  );
  assert.equal(s.upstreamKeepaliveConnections, 0);
  assert.deepEqual(
    [s.upstreamKeepaliveTimeoutMs, s.upstreamKeepaliveRequests, s.upstreamKeepaliveTimeMs],
    [5000, 100, 5_400_000],
  );
  assert.deepEqual(s.unsupportedKeys, []);
});

test('bad ConfigMap values warn by key and keep the default', () => {
  const { s, issues } = settings({
    'use-proxy-protocol': 'yes',
    'proxy-protocol-header-timeout': '5',
    'forwarded-for-header': 'X Bad',
    'http-redirect-code': '303',
    'proxy-body-size': '1.5m',
    'proxy-read-timeout': '60s',
    'upstream-keepalive-connections': '-1',
  });
  assert.equal(s.useProxyProtocol, false);
  assert.equal(s.proxyProtocolHeaderTimeoutMs, 5000);
  assert.equal(s.forwardedForHeader, 'X-Forwarded-For');
  assert.equal(s.httpRedirectCode, 308);
  assert.equal(s.proxyBodySizeBytes, 1024 ** 2);
  assert.equal(s.proxyReadTimeoutMs, 60_000);
  assert.equal(s.upstreamKeepaliveConnections, 320);
  assert.deepEqual(
    issues.map((i) => [i.code, i.severity, i.field]),
    [
      ['INVALID_CONFIGMAP_VALUE', 'warning', 'data["use-proxy-protocol"]'],
      ['INVALID_CONFIGMAP_VALUE', 'warning', 'data["proxy-protocol-header-timeout"]'],
      ['INVALID_CONFIGMAP_VALUE', 'warning', 'data["forwarded-for-header"]'],
      ['INVALID_CONFIGMAP_VALUE', 'warning', 'data["http-redirect-code"]'],
      ['INVALID_CONFIGMAP_VALUE', 'warning', 'data["proxy-body-size"]'],
      ['INVALID_CONFIGMAP_VALUE', 'warning', 'data["proxy-read-timeout"]'],
      ['INVALID_CONFIGMAP_VALUE', 'warning', 'data["upstream-keepalive-connections"]'],
    ],
  );
});

test('bad address lists fail closed: invalid proxy-real-ip-cidr trusts nobody, invalid block-cidrs stays invalid', () => {
  const { s, issues } = settings({ 'proxy-real-ip-cidr': '10.0.0.0/8,nope', 'block-cidrs': '1.2.3.4/33' });
  assert.deepEqual(s.trustedCidrs, []);
  assert.equal(s.trustedCidrsDefaulted, false);
  assert.equal(s.blockCidrs?.valid, false);
  assert.deepEqual(codes(issues, 'error'), ['INVALID_TRUSTED_CIDR', 'INVALID_SOURCE_RANGE']);
});

test('PROXY or forwarded headers with the default proxy-real-ip-cidr are warned about', () => {
  assert.deepEqual(codes(settings({ 'use-proxy-protocol': 'true' }).issues), ['TRUSTS_EVERYONE']);
  assert.deepEqual(codes(settings({ 'use-forwarded-headers': 'true' }).issues), ['TRUSTS_EVERYONE']);
  assert.deepEqual(
    codes(settings({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '10.0.0.0/8' }).issues),
    [],
  );
});

test('refused and unknown ConfigMap keys are reported by name and listed in the settings', () => {
  const t = topologyOf(
    configMap({
      'use-geoip2': 'true',
      'enable-modsecurity': 'true',
      'allow-snippet-annotations': 'true',
      'worker-cpu-affinity': 'auto',
      'use-gzipp': 'true',
      'ssl-redirect': 'false',
    }),
  );
  // worker-cpu-affinity has no observable effect (info only), so it is not "unsupported".
  assert.deepEqual(t.gateway.settings.unsupportedKeys, [
    'use-geoip2',
    'enable-modsecurity',
    'use-gzipp',
    'allow-snippet-annotations',
  ]);
  const geoip = t.issues.find((i) => i.code === 'CONFIGMAP_KEY_REFUSED' && i.field === 'data["use-geoip2"]')!;
  assert.equal(geoip.severity, 'warning');
  assert.equal(geoip.origin!.kind, 'ConfigMap');
  assert.match(
    geoip.message,
    /test\.yaml, document 1 \(ConfigMap ingress-nginx\/ingress-nginx-controller\) data\["use-geoip2"\]/,
  );
  assert.equal(find(t.issues, 'CONFIGMAP_KEY_NO_EFFECT').severity, 'info');
  assert.match(find(t.issues, 'UNSUPPORTED_CONFIGMAP_KEY').message, /did you mean "use-gzip"\?/);
});

test('--configmap picks another ConfigMap; a missing one is an info and defaults apply', () => {
  const yaml = configMap(
    { 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '10.0.0.0/8' },
    'edge/gw-config',
  );
  assert.equal(topologyOf(yaml).gateway.settings.useProxyProtocol, false);
  assert.equal(find(topologyOf(yaml).issues, 'CONFIGMAP_NOT_FOUND').severity, 'info');
  const picked = topologyOf(yaml, { configMap: 'edge/gw-config' });
  assert.equal(picked.gateway.settings.useProxyProtocol, true);
  assert.deepEqual(picked.gateway.settings.configMap, { namespace: 'edge', name: 'gw-config' });
  assert.equal(
    find(topologyOf(yaml, { configMap: 'nonsense' }).issues, 'INVALID_CONFIGMAP_OPTION').severity,
    'error',
  );
});

test('every supported annotation is read', () => {
  const { parsed, issues } = annotations({
    'allowlist-source-range': '10.0.0.0/24',
    'whitelist-source-range': '192.0.2.0/24',
    'denylist-source-range': '10.0.0.7',
    'rewrite-target': '/$2',
    'use-regex': 'true',
    'ssl-redirect': 'false',
    'force-ssl-redirect': 'true',
    'app-root': '/app1',
    'service-upstream': 'true',
    'backend-protocol': 'HTTPS',
    'proxy-body-size': '0',
    'proxy-connect-timeout': '1',
    'proxy-read-timeout': '2',
    'proxy-send-timeout': '3',
  });
  assert.deepEqual(issues, []);
  // allowlist wins over the legacy whitelist name
  assert.deepEqual(parsed.allow?.valid && parsed.allow.cidrs, ['10.0.0.0/24']);
  assert.deepEqual(parsed.deny?.valid && parsed.deny.cidrs, ['10.0.0.7/32']);
  assert.equal(parsed.rewriteTarget, '/$2');
  assert.equal(parsed.useRegex, true);
  assert.equal(parsed.sslRedirect, false);
  assert.equal(parsed.forceSslRedirect, true);
  assert.equal(parsed.appRoot, '/app1');
  assert.equal(parsed.serviceUpstream, true);
  assert.equal(parsed.backendProtocol, 'HTTPS');
  assert.equal(parsed.backendRefused, false);
  assert.equal(parsed.proxyBodySizeBytes, 0);
  assert.deepEqual(
    [parsed.proxyConnectTimeoutMs, parsed.proxyReadTimeoutMs, parsed.proxySendTimeoutMs],
    [1000, 2000, 3000],
  );
});

test("a backend deadline of 0 (ConfigMap or annotation) is no wait, as nginx's timer of 0, never none", () => {
  const cm = settings({ 'proxy-connect-timeout': '0', 'proxy-read-timeout': '0', 'proxy-send-timeout': '0' });
  assert.deepEqual(cm.issues, []);
  assert.deepEqual(
    [cm.s.proxyConnectTimeoutMs, cm.s.proxyReadTimeoutMs, cm.s.proxySendTimeoutMs],
    [BACKEND_DEADLINE_AT_ONCE_MS, BACKEND_DEADLINE_AT_ONCE_MS, BACKEND_DEADLINE_AT_ONCE_MS],
  );
  const { parsed } = annotations({
    'proxy-connect-timeout': '0',
    'proxy-read-timeout': '0',
    'proxy-send-timeout': '0',
  });
  assert.deepEqual(
    [parsed.proxyConnectTimeoutMs, parsed.proxyReadTimeoutMs, parsed.proxySendTimeoutMs],
    [BACKEND_DEADLINE_AT_ONCE_MS, BACKEND_DEADLINE_AT_ONCE_MS, BACKEND_DEADLINE_AT_ONCE_MS],
  );
  assert.ok(BACKEND_DEADLINE_AT_ONCE_MS > 0);
});

test('annotation defaults: nothing set means ConfigMap values and no rules', () => {
  const { parsed, issues } = annotations({});
  assert.deepEqual(issues, []);
  assert.equal(parsed.allow, null);
  assert.equal(parsed.deny, null);
  assert.equal(parsed.rewriteTarget, null);
  assert.equal(parsed.useRegex, false);
  assert.equal(parsed.sslRedirect, null);
  assert.equal(parsed.forceSslRedirect, null, "absent: the ConfigMap's force-ssl-redirect decides");
  assert.equal(parsed.serviceUpstream, false);
  assert.equal(parsed.backendProtocol, 'HTTP');
  assert.equal(parsed.proxyBodySizeBytes, 1024 ** 2);
  assert.equal(parsed.proxyConnectTimeoutMs, 5000);
});

test('proxy-body-size as ingress-nginx has it: its validator first (spaces removed), then what its template writes', () => {
  const read = (annotation: string, configMapValue = '2m') => {
    const { s } = settings({ 'proxy-body-size': configMapValue });
    const { parsed, issues } = annotations({ 'proxy-body-size': annotation }, s);
    return [parsed.proxyBodySizeBytes, issues.length];
  };
  assert.deepEqual(read(' 8k '), [8192, 0]);
  assert.deepEqual(read('0'), [0, 0]);
  // Taken by the validator, not written by the template: nginx's own 1m, not the ConfigMap's 2m.
  for (const unwritten of ['0b', '8b', '1 m']) assert.deepEqual(read(unwritten), [1024 ** 2, 1], unwritten);
  // Refused by the validator (a tab, a line break): the ConfigMap's.
  for (const refused of ['2m\t', '\n1k', '1.5m']) assert.deepEqual(read(refused, '1k'), [1024, 1], refused);
  // The ConfigMap's own: what the template would not write is nginx's 1m, with a warning.
  for (const value of ['0b', '8b', '1 m']) {
    const { s, issues } = settings({ 'proxy-body-size': value });
    assert.deepEqual([s.proxyBodySizeBytes, issues.length], [1024 ** 2, 1], value);
  }
});

test('bad annotation values are ignored with a warning naming the annotation', () => {
  const { parsed, issues } = annotations({
    'rewrite-target': '/$1;return 200 pwned',
    'app-root': 'app1',
    'use-regex': 'maybe',
    'proxy-body-size': '10mb',
    'proxy-read-timeout': '30s',
    'backend-protocol': 'SMTP',
  });
  assert.equal(parsed.rewriteTarget, null);
  assert.equal(parsed.appRoot, null);
  assert.equal(parsed.useRegex, false);
  assert.equal(parsed.proxyBodySizeBytes, 1024 ** 2);
  assert.equal(parsed.proxyReadTimeoutMs, 60_000);
  assert.equal(parsed.backendProtocol, 'HTTP');
  assert.equal(issues.length, 6);
  assert.ok(issues.every((i) => i.code === 'INVALID_ANNOTATION_VALUE' && i.severity === 'warning'));
  assert.deepEqual(
    issues.map((i) => i.field),
    [
      `metadata.annotations["${P}rewrite-target"]`,
      `metadata.annotations["${P}app-root"]`,
      `metadata.annotations["${P}backend-protocol"]`,
      `metadata.annotations["${P}proxy-body-size"]`,
      `metadata.annotations["${P}use-regex"]`,
      `metadata.annotations["${P}proxy-read-timeout"]`,
    ],
  );
});

test('GRPC and GRPCS backends are accepted (any case)', () => {
  for (const [value, protocol] of [
    ['GRPC', 'GRPC'],
    ['grpcs', 'GRPCS'],
  ] as const) {
    const { parsed, issues } = annotations({ 'backend-protocol': value });
    assert.equal(parsed.backendRefused, false);
    assert.equal(parsed.backendProtocol, protocol);
    assert.deepEqual(issues, []);
  }
});

test("FCGI backends are refused with an error; AUTO_HTTP is HTTP with the client's scheme (issue 20)", () => {
  for (const proto of ['FCGI', 'fcgi']) {
    const { parsed, issues } = annotations({ 'backend-protocol': proto });
    assert.equal(parsed.backendRefused, true, proto);
    assert.deepEqual(codes(issues, 'error'), ['UNSUPPORTED_BACKEND_PROTOCOL']);
  }
  const auto = annotations({ 'backend-protocol': 'auto_http' });
  assert.equal(auto.parsed.backendRefused, false);
  assert.equal(auto.parsed.backendProtocol, 'HTTP');
  assert.equal(auto.parsed.autoHttp, true);
  assert.deepEqual(auto.issues, []);
});

test('an empty allowlist annotation is invalid (fail closed) unless the whitelist name has the list; a blank one is invalid', () => {
  assert.equal(annotations({ 'allowlist-source-range': '' }).parsed.allow?.valid, false);
  const fallback = annotations({ 'allowlist-source-range': '', 'whitelist-source-range': '10.0.0.0/8' });
  assert.deepEqual(fallback.parsed.allow?.valid && fallback.parsed.allow.cidrs, ['10.0.0.0/8']);
  const blank = annotations({ 'allowlist-source-range': ' ', 'whitelist-source-range': '10.0.0.0/8' });
  assert.equal(blank.parsed.allow?.valid, false);
  const bad = annotations({ 'denylist-source-range': '10.0.0.0/8"rm /tmp",11.0.0.0/8' });
  assert.equal(bad.parsed.deny?.valid, false);
  assert.equal(
    find(bad.issues, 'INVALID_SOURCE_RANGE').field,
    `metadata.annotations["${P}denylist-source-range"]`,
  );
});

test('unsupported nginx annotations are reported by name on served Ingresses only; other prefixes are left alone', () => {
  // annotations-risk-level Critical: a snippet no longer keeps the Ingress from being served.
  const t = topologyOf(
    configMap({ 'annotations-risk-level': 'Critical' }) +
      ingress({
        name: 'x',
        annotations: {
          [`${P}configuration-snippet`]: 'more_set_headers "X: y";',
          [`${P}enable-modsecurity`]: 'true',
          'example.com/whatever': 'x',
        },
      }) +
      ingress({
        name: 'y',
        className: 'other',
        host: 'other.test',
        annotations: { [`${P}auth-url`]: 'http://auth' },
      }),
  );
  const refused = t.issues.filter((i) => i.code === 'ANNOTATION_REFUSED');
  assert.deepEqual(
    refused.map((i) => i.field),
    [`metadata.annotations["${P}configuration-snippet"]`, `metadata.annotations["${P}enable-modsecurity"]`],
  );
  assert.ok(refused.every((i) => i.severity === 'warning' && i.origin?.name === 'x'));
  assert.deepEqual(
    codes(t.issues).filter((c) => c === 'UNSUPPORTED_ANNOTATION'),
    [],
  );
  // Snippets are refused by name, with the reason (issue 17, issue 20).
  assert.match(refused[0]!.message, /keepip never runs nginx configuration text/);
});

test("app-root as ingress-nginx's RegexPathWithCapture and url.ParseRequestURI: a path with ':' is accepted; '$' (an nginx variable there) and relative paths are refused", () => {
  assert.equal(annotations({ 'app-root': '/app:v2/home' }).parsed.appRoot, '/app:v2/home');
  for (const value of ['/$host', 'app', 'http://other.example/app']) {
    const { parsed, issues } = annotations({ 'app-root': value });
    assert.equal(parsed.appRoot, null, value);
    assert.deepEqual(
      issues.map((i) => i.code),
      ['INVALID_ANNOTATION_VALUE'],
      value,
    );
  }
});

test('bad upstream keep-alive values warn by key and keep the defaults (60 s, 10000, 1 h)', () => {
  const { s, issues } = settings({
    'upstream-keepalive-timeout': '0',
    'upstream-keepalive-requests': '0',
    'upstream-keepalive-time': 'forever',
  });
  assert.deepEqual(
    [s.upstreamKeepaliveTimeoutMs, s.upstreamKeepaliveRequests, s.upstreamKeepaliveTimeMs],
    [60_000, 10_000, 3_600_000],
  );
  assert.deepEqual(
    issues.map((i) => i.field),
    [
      'data["upstream-keepalive-timeout"]',
      'data["upstream-keepalive-requests"]',
      'data["upstream-keepalive-time"]',
    ],
  );
});

test('worker-shutdown-timeout and proxy-stream-timeout are nginx times; bad ones keep 240s and 600s', () => {
  const good = settings({ 'worker-shutdown-timeout': '5m', 'proxy-stream-timeout': '1h30m' });
  assert.deepEqual([good.s.workerShutdownTimeoutMs, good.s.proxyStreamTimeoutMs], [300_000, 5_400_000]);
  assert.deepEqual(good.issues, []);
  const bad = settings({ 'worker-shutdown-timeout': 'soon', 'proxy-stream-timeout': '0' });
  assert.deepEqual([bad.s.workerShutdownTimeoutMs, bad.s.proxyStreamTimeoutMs], [240_000, 600_000]);
  assert.deepEqual(
    bad.issues.map((i) => i.field),
    ['data["worker-shutdown-timeout"]', 'data["proxy-stream-timeout"]'],
  );
  // What nginx refuses as ingress-nginx writes it (unquoted: `1h 30m` is two arguments; units out
  // of order; a year where nginx reads milliseconds) is refused, not a longer deadline.
  for (const value of ['1h 30m', '30m1h', '1y', '1M']) {
    const refused = settings({ 'worker-shutdown-timeout': value, 'proxy-stream-timeout': value });
    assert.deepEqual(
      [refused.s.workerShutdownTimeoutMs, refused.s.proxyStreamTimeoutMs, refused.issues.length],
      [240_000, 600_000, 2],
      value,
    );
  }
});

test('the stream keys: log-format-stream, disable-(stream-)access-log, proxy-stream-next-upstream, -tries, -timeout', () => {
  // All at their defaults: nothing set (the defaults of src/config/stream.ts apply).
  assert.equal(settings({}).s.stream, undefined);
  assert.equal(
    settings({ 'proxy-stream-next-upstream': 'true', 'log-format-stream': ' ' }).s.stream,
    undefined,
  );
  const set = settings({
    'log-format-stream': '$remote_addr $upstream_addr',
    'proxy-stream-next-upstream': 'false',
    'proxy-stream-next-upstream-tries': '5',
    'proxy-stream-next-upstream-timeout': '1m',
    'proxy-stream-responses': '2',
  });
  assert.deepEqual(set.s.stream, {
    logFormat: '$remote_addr $upstream_addr',
    nextUpstream: false,
    nextUpstreamTries: 5,
    nextUpstreamTimeoutMs: 60_000,
    responses: 2,
  });
  assert.deepEqual(set.issues, []);
  // Either disable key turns the connection log off; disable-http-access-log does not.
  assert.equal(settings({ 'disable-stream-access-log': 'true' }).s.stream?.logFormat, null);
  assert.equal(settings({ 'disable-access-log': 'true' }).s.stream?.logFormat, null);
  assert.equal(settings({ 'disable-http-access-log': 'true' }).s.stream, undefined);
  assert.equal(settings({ 'proxy-stream-next-upstream-timeout': '0' }).s.stream?.nextUpstreamTimeoutMs, 0);
  const bad = settings({
    'proxy-stream-next-upstream': 'maybe',
    'proxy-stream-next-upstream-tries': '-1',
    'proxy-stream-next-upstream-timeout': 'soon',
    'disable-stream-access-log': 'yes',
    'proxy-stream-responses': 'one',
  });
  assert.equal(bad.s.stream, undefined);
  assert.deepEqual(bad.issues.map((i) => i.field).sort(), [
    'data["disable-stream-access-log"]',
    'data["proxy-stream-next-upstream"]',
    'data["proxy-stream-next-upstream-timeout"]',
    'data["proxy-stream-next-upstream-tries"]',
    'data["proxy-stream-responses"]',
  ]);
});

test('max-worker-connections: a whole number, 0 for no limit; anything else keeps 16384', () => {
  assert.equal(settings({}).s.maxWorkerConnections, 16_384);
  assert.equal(settings({ 'max-worker-connections': '0' }).s.maxWorkerConnections, 0);
  assert.equal(settings({ 'max-worker-connections': '65536' }).s.maxWorkerConnections, 65_536);
  const bad = settings({ 'max-worker-connections': 'lots' });
  assert.equal(bad.s.maxWorkerConnections, 16_384);
  assert.deepEqual(
    bad.issues.map((i) => i.field),
    ['data["max-worker-connections"]'],
  );
});
