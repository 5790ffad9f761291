// canary and canary-* over real sockets, each case drawn from ingress-nginx's e2e test
// test/e2e/annotations/canary.go (release 1.15): a main Ingress and a canary Ingress for the same host
// and path, two whoami backends that say their name.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, type K8sObject, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';

const json = { accept: 'application/json' };

describe('canary (canary.go)', () => {
  let main: RunningWhoami;
  let canary: RunningWhoami;
  let gw: TestGateway;

  /**
   * A main Ingress on `host` /info and a canary Ingress with `annotations` for the same host and path.
   * Each main has a Service of its own: as in ingress-nginx, a canary belongs to the main upstream, so
   * mains sharing one Service would share one canary (the first).
   */
  const pair = (host: string, annotations: Record<string, string>): K8sObject[] => [
    ...serviceWithEndpoints({ name: `main-${host}`, ports: [main.address.port] }),
    ingress({ name: host, host, paths: [{ path: '/info', service: `main-${host}`, port: 80 }] }),
    ingress({
      name: `${host}-canary`,
      host,
      annotations: { canary: 'true', ...annotations },
      paths: [{ path: '/info', service: 'canary-svc', port: 80 }],
    }),
  ];

  before(async () => {
    main = await startWhoami({ host: '127.0.0.1', port: 0, name: 'http-svc' });
    canary = await startWhoami({ host: '127.0.0.1', port: 0, name: 'canary-svc' });
    gw = await startTestGateway(
      topologyOf([
        ...serviceWithEndpoints({ name: 'canary-svc', ports: [canary.address.port] }),
        ...pair('by-header', { 'canary-by-header': 'CanaryByHeader' }),
        ...pair('by-value', { 'canary-by-header': 'CanaryByHeader', 'canary-by-header-value': 'DoCanary' }),
        ...pair('by-pattern', {
          'canary-by-header': 'CanaryByHeader',
          'canary-by-header-pattern': '^Do[A-Z][a-z]+y$',
        }),
        ...pair('value-and-pattern', {
          'canary-by-header': 'CanaryByHeader',
          'canary-by-header-value': 'DoCanary',
          'canary-by-header-pattern': '^Do[A-Z][a-z]+y$',
        }),
        ...pair('bad-pattern', {
          'canary-by-header': 'CanaryByHeader',
          'canary-by-header-pattern': '[][**da?$&*',
          'canary-by-cookie': 'CanaryByCookie',
        }),
        ...pair('value-and-cookie', {
          'canary-by-header': 'CanaryByHeader',
          'canary-by-header-value': 'DoCanary',
          'canary-by-cookie': 'CanaryByCookie',
        }),
        ...pair('by-cookie', { 'canary-by-cookie': 'Canary-By-Cookie' }),
        ...pair('weight-0', { 'canary-weight': '0' }),
        ...pair('weight-100', { 'canary-weight': '100' }),
        ...pair('weight-total', { 'canary-weight': '1000', 'canary-weight-total': '1000' }),
        ...pair('weight-50', { 'canary-weight': '50' }),
        ...pair('weight-100-of-200', { 'canary-weight': '100', 'canary-weight-total': '200' }),
        // A canary with no main Ingress for its host and path is not served.
        ingress({
          name: 'lonely-canary',
          host: 'lonely',
          annotations: { canary: 'true', 'canary-by-header': 'CanaryByHeader' },
          paths: [{ path: '/info', service: 'canary-svc', port: 80 }],
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await main.close();
    await canary.close();
  });

  const served = async (host: string, headers: Record<string, string> = {}) => {
    const reply = await request(gw.httpPort, { host, path: '/info', headers: { ...json, ...headers } });
    assert.equal(reply.status, 200, `${host} ${JSON.stringify(headers)}`);
    return echoOf(reply).name;
  };

  test('should response with a 200 status from the mainline upstream when requests are made to the mainline ingress', async () => {
    assert.equal(await served('by-header'), 'http-svc');
  });

  test('should return 404 status for requests to the canary if no matching ingress is found', async () => {
    const reply = await request(gw.httpPort, {
      host: 'lonely',
      path: '/info',
      headers: { CanaryByHeader: 'always' },
    });
    assert.equal(reply.status, 404);
  });

  test('when canaried by header with no value: always, never, anything else', async () => {
    assert.equal(await served('by-header', { CanaryByHeader: 'always' }), 'canary-svc');
    assert.equal(await served('by-header', { CanaryByHeader: 'never' }), 'http-svc');
    assert.equal(await served('by-header', { CanaryByHeader: 'badheadervalue' }), 'http-svc');
    // $proxy_upstream_name stays the main one; $proxy_alternative_upstream_name names the canary.
    await gw.access.waitFor(/\[default-main-by-header-80\] \[default-canary-svc-80\] /);
  });

  test('when canaried by header with value', async () => {
    assert.equal(await served('by-value', { CanaryByHeader: 'DoCanary' }), 'canary-svc');
    assert.equal(await served('by-value', { CanaryByHeader: 'always' }), 'http-svc');
    assert.equal(await served('by-value', { CanaryByHeader: 'never' }), 'http-svc');
    assert.equal(await served('by-value', { CanaryByHeader: 'otherheadervalue' }), 'http-svc');
  });

  test('when canaried by header with pattern; the value wins over the pattern', async () => {
    assert.equal(await served('by-pattern', { CanaryByHeader: 'DoCanary' }), 'canary-svc');
    assert.equal(await served('by-pattern', { CanaryByHeader: 'Docanary' }), 'http-svc');
    assert.equal(await served('value-and-pattern', { CanaryByHeader: 'DoCananry' }), 'http-svc');
    assert.equal(await served('value-and-pattern', { CanaryByHeader: 'DoCanary' }), 'canary-svc');
  });

  test('should routes to mainline upstream when the given Regex causes error', async () => {
    assert.equal(
      await served('bad-pattern', { CanaryByHeader: 'DoCanary', Cookie: 'CanaryByCookie=always' }),
      'http-svc',
    );
  });

  test('when canaried by header with value and cookie: the cookie decides when the header does not', async () => {
    assert.equal(
      await served('value-and-cookie', {
        CanaryByHeader: 'otherheadervalue',
        Cookie: 'CanaryByCookie=always',
      }),
      'canary-svc',
    );
  });

  test('when canaried by cookie: respects always and never values', async () => {
    assert.equal(await served('by-cookie', { Cookie: 'Canary-By-Cookie=always' }), 'canary-svc');
    assert.equal(await served('by-cookie', { Cookie: 'Canary-By-Cookie=never' }), 'http-svc');
    assert.equal(await served('by-cookie', { Cookie: 'Canary-By-Cookie=badcookievalue' }), 'http-svc');
  });

  test("when canaried by cookie: read as nginx's $cookie_ (any case of the name, pairs also split at `,`)", async () => {
    assert.equal(await served('by-cookie', { Cookie: 'canary-by-cookie=always' }), 'canary-svc');
    assert.equal(await served('by-cookie', { Cookie: 'tracking=1, Canary-By-Cookie=always' }), 'canary-svc');
    // A value runs to the next `;` only: `always, tracking=1` is not `always`.
    assert.equal(await served('by-cookie', { Cookie: 'Canary-By-Cookie=always, tracking=1' }), 'http-svc');
  });

  test('when canaried by weight: 0, 100, equal to the total', async () => {
    for (let i = 0; i < 10; i++) {
      assert.equal(await served('weight-0'), 'http-svc');
      assert.equal(await served('weight-100'), 'canary-svc');
      assert.equal(await served('weight-total'), 'canary-svc');
    }
  });

  test('should route requests split between mainline and canary if canary weight is 50, or 100 of 200', async () => {
    for (const host of ['weight-50', 'weight-100-of-200']) {
      const seen = new Set<string>();
      // Bounded: the chance of one name only in 200 fair draws is 2^-199.
      for (let i = 0; i < 200 && seen.size < 2; i++) seen.add(await served(host));
      assert.deepEqual([...seen].sort(), ['canary-svc', 'http-svc'], host);
    }
  });
});
