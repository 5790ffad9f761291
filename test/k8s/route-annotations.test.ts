// Reading the route annotations (src/k8s/route-annotations.ts): values, defaults and refusals as
// ingress-nginx 1.15's parsers have them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigIssue, Origin } from '../../src/config/model.ts';
import { parseRouteAnnotations } from '../../src/k8s/route-annotations.ts';

const P = 'nginx.ingress.kubernetes.io/';
const ORIGIN: Origin = { file: 'x.yaml', document: 1, kind: 'Ingress', namespace: 'default', name: 'x' };

function parse(annotations: Record<string, string>) {
  const issues: ConfigIssue[] = [];
  const prefixed = Object.fromEntries(Object.entries(annotations).map(([k, v]) => [P + k, v]));
  return { parsed: parseRouteAnnotations({ annotations: prefixed, origin: ORIGIN, issues }), issues };
}

test('enable-cors: ingress-nginx defaults; off unless a Go boolean true', () => {
  assert.equal(parse({}).parsed.cors, null);
  assert.equal(parse({ 'enable-cors': 'false' }).parsed.cors, null);
  const bad = parse({ 'enable-cors': 'yes' });
  assert.equal(bad.parsed.cors, null);
  assert.equal(bad.issues[0]?.code, 'INVALID_ANNOTATION_VALUE');
  assert.deepEqual(parse({ 'enable-cors': 'true' }).parsed.cors, {
    allowOrigin: ['*'],
    allowMethods: 'GET, PUT, POST, DELETE, PATCH, OPTIONS',
    allowHeaders:
      'DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization',
    allowCredentials: true,
    exposeHeaders: '',
    maxAge: 1728000,
  });
});

test('cors-*: invalid values fail closed where the default grants more (warned); invalid origins are skipped; * wins', () => {
  const { parsed, issues } = parse({
    'enable-cors': 'true',
    'cors-allow-origin': 'https://a.example, bad origin, null, https://*.b.example:8443',
    'cors-allow-headers': 'X-A, X_B',
    'cors-allow-credentials': 'nope',
    'cors-expose-headers': '*, X-C',
    'cors-max-age': '-1x',
  });
  assert.deepEqual(parsed.cors?.allowOrigin, ['https://a.example', 'null', 'https://*.b.example:8443']);
  assert.equal(parsed.cors?.allowMethods, 'GET, PUT, POST, DELETE, PATCH, OPTIONS');
  assert.equal(parsed.cors?.allowHeaders, 'X-A, X_B');
  assert.equal(parsed.cors?.allowCredentials, false, 'an unreadable boolean is false, not the default true');
  assert.equal(parsed.cors?.exposeHeaders, '*, X-C');
  assert.equal(parsed.cors?.maxAge, 1728000);
  assert.equal(issues.length, 3);
  // Methods or headers that cannot be read allow no origin: the default would grant every method.
  const unreadables: Record<string, string>[] = [
    { 'cors-allow-methods': 'GET;DELETE' },
    { 'cors-allow-headers': 'X-A;X-B' },
  ];
  for (const unreadable of unreadables) {
    const closed = parse({ 'enable-cors': 'true', ...unreadable });
    assert.deepEqual(closed.parsed.cors?.allowOrigin, []);
    assert.match(closed.issues[0]?.message ?? '', /no origin is allowed \(fails closed\)/);
  }
  // Nothing written is the default, as in ingress-nginx.
  assert.equal(
    parse({ 'enable-cors': 'true', 'cors-allow-methods': ' ' }).parsed.cors?.allowMethods,
    'GET, PUT, POST, DELETE, PATCH, OPTIONS',
  );
  assert.deepEqual(
    parse({ 'enable-cors': 'true', 'cors-allow-origin': 'https://a.example, *' }).parsed.cors?.allowOrigin,
    ['*'],
  );
});

test('server-alias: names are lower-cased, `~` regexes are kept as written (\\D is not \\d)', () => {
  const { parsed, issues } = parse({ 'server-alias': 'WWW.Example.com, ~^\\D+\\.Example\\.com$' });
  assert.deepEqual(issues, []);
  assert.deepEqual(parsed.aliases, ['www.example.com', '~^\\D+\\.Example\\.com$']);
});
