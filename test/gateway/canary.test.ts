// Which backend a request goes to under canary-* (src/gateway/canary.ts), as ingress-nginx's balancer.lua
// route_to_alternative_balancer decides it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CanaryModel } from '../../src/config/model.ts';
import { compileCanary, routeToCanary } from '../../src/gateway/canary.ts';

const base: CanaryModel = {
  ingress: { namespace: 'default', name: 'canary' },
  backend: { service: { namespace: 'default', name: 'next' }, port: 80, upstreamName: 'default-next-80' },
  header: null,
  headerValue: null,
  headerPattern: null,
  cookie: null,
  weight: 0,
  weightTotal: 100,
};

test("canary-by-header names an nginx variable: `_` in the name matches the header's `-` ($http_x_canary)", () => {
  const canary = compileCanary({ ...base, header: 'X_Canary' });
  assert.equal(routeToCanary(canary, { 'x-canary': 'always' }), 'header');
  assert.equal(routeToCanary(canary, { 'x-canary': 'never' }), null);
  assert.equal(
    routeToCanary(compileCanary({ ...base, header: 'X-Canary' }), { 'x-canary': 'always' }),
    'header',
  );
});

test('canary-by-cookie reads $cookie_<name> as nginx does: any case of the name, `,` between pairs', () => {
  const canary = compileCanary({ ...base, cookie: 'canary' });
  const cases: Array<[string, 'cookie' | null]> = [
    ['canary=always', 'cookie'],
    ['Canary=always', 'cookie'],
    ['CANARY = always', 'cookie'],
    ['tracking=1, canary=always', 'cookie'],
    ['xcanary=always', null],
    // The value runs to the next `;`, so these are not `always`.
    ['canary=always, tracking=1', null],
    ['canary=always ; tracking=1', null],
    // The first wins.
    ['canary=never; Canary=always', null],
    ['tracking=1; canary=always; canary=never', 'cookie'],
  ];
  for (const [cookie, expected] of cases) {
    assert.equal(routeToCanary(canary, { cookie }), expected, cookie);
  }
  assert.equal(routeToCanary(canary, { cookie: ['a=1', 'canary=always'] }), 'cookie', 'a second Cookie line');
});

test('canary-by-header-pattern is PCRE (ngx.re.match): POSIX classes and \\z as there; a pattern without a translation routes nothing', () => {
  const canary = compileCanary({ ...base, header: 'X-Canary', headerPattern: '^v[[:digit:]]+\\z' });
  assert.equal(routeToCanary(canary, { 'x-canary': 'v12' }), 'header');
  assert.equal(routeToCanary(canary, { 'x-canary': 'v1z' }), null);
  assert.equal(routeToCanary(canary, { 'x-canary': 'v:' }), null);
  const untranslatable = compileCanary({ ...base, header: 'X-Canary', headerPattern: '\\Qv1\\E' });
  assert.equal(routeToCanary(untranslatable, { 'x-canary': 'v1' }), null);
});
