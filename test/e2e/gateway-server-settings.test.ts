// The controller ConfigMap's server-level keys, as ingress-nginx 1.15's e2e tests check them
// (test/e2e/settings/tls.go "HSTS", global_access_block.go, no_tls_redirect_locations.go,
// access_log.go) but over real sockets: Strict-Transport-Security on HTTPS answers of hosts with a
// certificate (read by curl), block-user-agents / block-referers with nginx map entries (403, and 503
// while a list is unusable), no-tls-redirect-locations keeping ACME challenges on HTTP,
// force-ssl-redirect from the ConfigMap, and skip-access-log-urls.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import {
  echoOf,
  request,
  startTestGateway,
  type TestGateway,
  withTestGateway,
} from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { rawExchange } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const CHROME_68 =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/68.0.3440.106 Safari/537.36';
const IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 11_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/11.0 Mobile/15E148 Safari/604.1';

/** The response head curl received over https for `host` (SNI and Host), as lower-cased name -> value. */
async function curlHead(
  port: number,
  host: string,
  path = '/',
  extra: string[] = [],
): Promise<Record<string, string>> {
  const curl = requireBinary('curl');
  const result = await runCommand(curl, [
    '-sk',
    '-o',
    '/dev/null',
    '-D',
    '-',
    ...extra,
    '--resolve',
    `${host}:${port}:127.0.0.1`,
    `https://${host}:${port}${path}`,
  ]);
  assert.equal(result.code, 0, result.stderr);
  const head: Record<string, string> = {};
  for (const line of result.stdout.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) head[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  head[':status'] = result.stdout.split(' ')[1] ?? '';
  return head;
}

describe('ConfigMap server settings', () => {
  let backend: Server;
  let port: number;
  let cert: { cert: string; key: string };
  // A whoami backend that echoes what it received (headers as the gateway sent them).
  let echo: RunningWhoami;

  before(async () => {
    echo = await startWhoami({ host: '127.0.0.1', port: 0, name: 'echo' });
    // A backend that sets its own HSTS header: ingress-nginx's replaces it.
    backend = http.createServer((req, res) => {
      res.writeHead(200, { 'strict-transport-security': 'max-age=100', 'content-type': 'text/plain' });
      res.end(`backend ${req.url}\n`);
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    port = (backend.address() as AddressInfo).port;
    cert = await certificateFor('tls.example.com');
  });
  after(async () => {
    await echo.close();
    backend.closeAllConnections();
    await new Promise((resolve) => backend.close(resolve));
  });

  const site = (data: Record<string, string>, more: K8sObject[] = []): K8sObject[] => [
    controllerConfigMap(data),
    ...serviceWithEndpoints({ name: 'web', ports: [port] }),
    tlsSecret('tls', cert.cert, cert.key),
    ingress({
      name: 'tls',
      host: 'tls.example.com',
      tlsSecret: 'tls',
      paths: [{ path: '/', service: 'web', port: 80 }],
    }),
    ingress({ name: 'plain', host: 'plain.example.com', paths: [{ path: '/', service: 'web', port: 80 }] }),
    ...more,
  ];

  const echoSite = (data: Record<string, string>): K8sObject[] => [
    controllerConfigMap(data),
    ...serviceWithEndpoints({ name: 'echo', ports: [echo.address.port] }),
    ingress({ name: 'echo', host: 'echo.example.com', paths: [{ path: '/', service: 'echo', port: 80 }] }),
  ];

  const withGateway = (objects: K8sObject[], run: (gw: TestGateway) => Promise<void>) =>
    withTestGateway(topologyOf(objects), run);

  test('HSTS: the defaults, then max-age, includeSubDomains and preload as tls.go sets them', async () => {
    const cases: [Record<string, string>, string | undefined][] = [
      [{}, 'max-age=31536000; includeSubDomains'],
      [{ 'hsts-max-age': '86400' }, 'max-age=86400; includeSubDomains'],
      [{ 'hsts-max-age': '86400', 'hsts-include-subdomains': 'false' }, 'max-age=86400'],
      [
        { 'hsts-max-age': '86400', 'hsts-preload': 'true', 'hsts-include-subdomains': 'false' },
        'max-age=86400; preload',
      ],
      [{ hsts: 'false' }, 'max-age=100'],
    ];
    for (const [data, expected] of cases) {
      await withGateway(site(data), async (gw) => {
        const head = await curlHead(gw.httpsPort, 'tls.example.com');
        assert.equal(head[':status'], '200');
        // One header: the gateway's replaces the backend's own (more_set_headers), unless hsts is off.
        assert.equal(head['strict-transport-security'], expected, JSON.stringify(data));
      });
    }
  });

  test('HSTS on every answer over TLS, default certificate included (as ingress-nginx), never over HTTP', async () => {
    await withGateway(site({ 'block-referers': 'qwerty' }), async (gw) => {
      // Plain HTTP: the backend's header as it sent it.
      const plain = await request(gw.httpPort, { host: 'plain.example.com' });
      assert.equal(plain.headers['strict-transport-security'], 'max-age=100');
      // HTTPS to a host served with the default certificate: ingress-nginx's header filter adds it
      // there too (lua_ingress.lua tests the certificate function without calling it).
      const defaultCert = await curlHead(gw.httpsPort, 'plain.example.com');
      assert.equal(defaultCert['strict-transport-security'], 'max-age=31536000; includeSubDomains');
      // The gateway's own answers over TLS carry it too (a 403 of that host's server).
      const refused = await curlHead(gw.httpsPort, 'tls.example.com', '/', ['-H', 'referer: qwerty']);
      assert.equal(refused[':status'], '403');
      assert.equal(refused['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    });
  });

  test('block-user-agents and block-referers: global_access_block.go', async () => {
    const data = {
      'block-user-agents': '~*chrome\\/68\\.0\\.3440\\.106\\ safari\\/537\\.36,AlphaBot',
      'block-referers': '~*example\\.com,qwerty',
    };
    await withGateway(site(data), async (gw) => {
      const get = (headers: Record<string, string>) =>
        request(gw.httpPort, { host: 'plain.example.com', headers }).then((r) => r.status);
      assert.equal(await get({ 'user-agent': CHROME_68 }), 403);
      assert.equal(await get({ 'user-agent': 'AlphaBot' }), 403);
      assert.equal(await get({ 'user-agent': 'alphabot' }), 403, 'map strings ignore case');
      assert.equal(await get({ 'user-agent': IPHONE }), 200);
      assert.equal(await get({ 'user-agent': 'AlphaBot2' }), 200, 'a string entry is the whole value');
      assert.equal(await get({ referer: 'example.com' }), 403);
      assert.equal(await get({ referer: 'qwerty' }), 403);
      assert.equal(await get({ referer: 'qwerty123' }), 200);
      // Every server: an unknown host (the default server) and a host that redirects to https too.
      assert.equal(
        (await request(gw.httpPort, { host: 'nowhere', headers: { referer: 'qwerty' } })).status,
        403,
      );
      assert.equal(
        (await request(gw.httpPort, { host: 'tls.example.com', headers: { referer: 'qwerty' } })).status,
        403,
      );
    });
  });

  test('a block list nginx would not load is an error: keepip will not serve it (as nginx -t)', async () => {
    for (const [key, value] of [
      ['block-user-agents', '~*(unclosed'],
      ['block-referers', '~'],
    ] as const) {
      const topology = topologyOf(site({ [key]: value }));
      const issue = topology.issues.find((i) => i.severity === 'error' && i.field === `data["${key}"]`);
      assert.ok(issue, `${key}: ${value} is an error`);
      assert.match(issue.message, /fails closed/);
      await assert.rejects(startTestGateway(topology), /error/);
    }
  });

  test('no-tls-redirect-locations: ACME challenges stay on HTTP by default; the list can be changed', async () => {
    const acme = ingress({
      name: 'acme',
      host: 'tls.example.com',
      paths: [{ path: '/.well-known/acme-challenge/token', service: 'web', port: 80 }],
    });
    const check = ingress({
      name: 'check',
      host: 'tls.example.com',
      paths: [{ path: '/check-no-tls', service: 'web', port: 80 }],
    });
    await withGateway(site({}, [acme, check]), async (gw) => {
      const challenge = await request(gw.httpPort, {
        host: 'tls.example.com',
        path: '/.well-known/acme-challenge/token',
      });
      assert.equal(challenge.status, 200);
      assert.equal(challenge.body, 'backend /.well-known/acme-challenge/token\n');
      assert.equal(
        (await request(gw.httpPort, { host: 'tls.example.com', path: '/check-no-tls' })).status,
        308,
      );
    });
    await withGateway(site({ 'no-tls-redirect-locations': '/check-no-tls' }, [acme, check]), async (gw) => {
      assert.equal(
        (await request(gw.httpPort, { host: 'tls.example.com', path: '/check-no-tls' })).status,
        200,
      );
      const challenge = await request(gw.httpPort, {
        host: 'tls.example.com',
        path: '/.well-known/acme-challenge/token',
      });
      assert.equal(challenge.status, 308, 'the default is replaced, not added to');
    });
  });

  test('force-ssl-redirect from the ConfigMap: hosts without TLS too; the annotation still wins', async () => {
    const off = ingress({
      name: 'off',
      host: 'off.example.com',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'force-ssl-redirect': 'false' },
    });
    await withGateway(site({ 'force-ssl-redirect': 'true' }, [off]), async (gw) => {
      const plain = await request(gw.httpPort, { host: 'plain.example.com', path: '/a' });
      assert.equal(plain.status, 308);
      assert.equal(plain.headers.location, 'https://plain.example.com/a');
      assert.equal((await request(gw.httpPort, { host: 'off.example.com' })).status, 200);
    });
  });

  test('the HTTP to HTTPS redirection names no port, and a trusted X-Forwarded-Host with use-forwarded-headers (tls.go)', async () => {
    const xfh = { 'x-forwarded-host': 'example.com:80' };
    await withGateway(site({ 'use-forwarded-headers': 'true' }), async (gw) => {
      const ported = await request(gw.httpPort, { host: `tls.example.com:${gw.httpPort}` });
      assert.equal(ported.status, 308);
      assert.equal(ported.headers.location, 'https://tls.example.com');
      // $best_http_host: the first X-Forwarded-Host, without its port.
      const forwarded = await request(gw.httpPort, { host: 'tls.example.com', headers: xfh });
      assert.equal(forwarded.status, 308);
      assert.equal(forwarded.headers.location, 'https://example.com');
      const list = await request(gw.httpPort, {
        host: 'tls.example.com',
        path: '/a?b',
        headers: { 'x-forwarded-host': 'a.example:8443,b.example' },
      });
      assert.equal(list.headers.location, 'https://a.example/a?b');
    });
    // From a hop that is not trusted (or without use-forwarded-headers) the header is not believed.
    const untrusted: Record<string, string>[] = [
      { 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '10.0.0.0/8' },
      {},
    ];
    for (const data of untrusted) {
      await withGateway(site(data), async (gw) => {
        const reply = await request(gw.httpPort, { host: 'tls.example.com', headers: xfh });
        assert.equal(reply.headers.location, 'https://tls.example.com', JSON.stringify(data));
      });
    }
  });

  test('skip-access-log-urls: matching request URIs are served but not logged', async () => {
    await withGateway(site({ 'skip-access-log-urls': '/healthz,~^/metrics' }), async (gw) => {
      for (const path of ['/healthz', '/HEALTHZ', '/metrics?x=1', '/healthz?full=1', '/logged']) {
        assert.equal((await request(gw.httpPort, { host: 'plain.example.com', path })).status, 200, path);
      }
      await gw.access.waitFor(/GET \/logged /);
      const logged = gw.access.lines.map((l) => l.match(/"GET (\S+) /)?.[1]);
      // '/healthz?full=1' is another request URI than '/healthz': nginx's map compares the whole value.
      assert.deepEqual(logged, ['/healthz?full=1', '/logged']);
    });
  });

  test('headers named with underscores never reach the backend (nginx ignores them), unless enabled', async () => {
    const forged = {
      accept: 'application/json',
      x_forwarded_for: '6.6.6.6',
      custom_header: 'x',
      'x-ok': 'y',
    };
    await withGateway(echoSite({}), async (gw) => {
      const seen = echoOf(await request(gw.httpPort, { host: 'echo.example.com', headers: forged })).headers;
      assert.equal(seen.x_forwarded_for, undefined, 'a forged X_Forwarded_For is dropped');
      assert.equal(seen.custom_header, undefined);
      assert.equal(seen['x-ok'], 'y');
      assert.equal(seen['x-forwarded-for'], '127.0.0.1');
      // Other malformed names are a 400 from the parser, never passed on.
      const bad = await rawExchange({
        host: '127.0.0.1',
        port: gw.httpPort,
        payload: 'GET / HTTP/1.1\r\nHost: echo.example.com\r\nBad Name: x\r\n\r\n',
      });
      assert.match(bad.received.toString('latin1'), /^HTTP\/1\.1 400 /);
    });
    const enabling: Record<string, string>[] = [
      { 'enable-underscores-in-headers': 'true' },
      { 'ignore-invalid-headers': 'false' },
    ];
    for (const data of enabling) {
      await withGateway(echoSite(data), async (gw) => {
        const seen = echoOf(
          await request(gw.httpPort, { host: 'echo.example.com', headers: forged }),
        ).headers;
        assert.equal(seen.custom_header, 'x', JSON.stringify(data));
      });
    }
  });

  test('generate-request-id and proxy-add-original-uri-header: what the backend gets', async () => {
    const seen = async (gw: TestGateway, headers: Record<string, string> = {}) =>
      echoOf(
        await request(gw.httpPort, {
          host: 'echo.example.com',
          path: '/a/b?c=d',
          headers: { accept: 'application/json', ...headers },
        }),
      ).headers;
    await withGateway(echoSite({}), async (gw) => {
      const defaults = await seen(gw);
      assert.match(String(defaults['x-request-id']), /^[0-9a-f]{32}$/);
      assert.equal(defaults['x-original-uri'], undefined);
    });
    const data = { 'generate-request-id': 'false', 'proxy-add-original-uri-header': 'true' };
    await withGateway(echoSite(data), async (gw) => {
      const none = await seen(gw);
      assert.equal(none['x-request-id'], undefined, 'none made up, none sent');
      assert.equal(none['x-original-uri'], '/a/b?c=d');
      assert.equal(
        (await seen(gw, { 'x-request-id': 'from-the-client' }))['x-request-id'],
        'from-the-client',
      );
    });
  });

  test('response headers nginx hides (Server, Date, X-Pad, X-Accel-*), hide-headers, server-tokens', async () => {
    const noisy = http.createServer((_req, res) => {
      res.writeHead(200, {
        server: 'backend/1.0',
        date: 'Thu, 01 Jan 1970 00:00:00 GMT',
        'x-pad': 'avoid browser bug',
        'x-accel-redirect': '/internal/secret',
        'x-accel-buffering': 'no',
        'x-custom': 'kept',
        'x-secret': 'internal',
      });
      res.end('ok');
    });
    await new Promise<void>((resolve) => noisy.listen(0, '127.0.0.1', resolve));
    const noisyPort = (noisy.address() as AddressInfo).port;
    const objects = (data: Record<string, string>) => [
      controllerConfigMap(data),
      ...serviceWithEndpoints({ name: 'noisy', ports: [noisyPort] }),
      ingress({
        name: 'noisy',
        host: 'noisy.example.com',
        paths: [{ path: '/', service: 'noisy', port: 80 }],
      }),
    ];
    const get = (gw: TestGateway, host = 'noisy.example.com') => request(gw.httpPort, { host });
    try {
      await withGateway(objects({}), async (gw) => {
        const { headers } = await get(gw);
        for (const name of ['server', 'x-pad', 'x-accel-redirect', 'x-accel-buffering']) {
          assert.equal(headers[name], undefined, `${name} is not passed`);
        }
        assert.notEqual(headers.date, 'Thu, 01 Jan 1970 00:00:00 GMT', "the gateway's own Date");
        assert.ok(headers.date);
        assert.equal(headers['x-custom'], 'kept');
        assert.equal(headers['x-secret'], 'internal');
        // The gateway's own answers carry no Server header either (server-tokens off).
        assert.equal((await get(gw, 'unknown.example')).headers.server, undefined);
      });
      await withGateway(
        objects({ 'hide-headers': 'X-Secret, x-other', 'server-tokens': 'true' }),
        async (gw) => {
          const { headers } = await get(gw);
          assert.equal(headers['x-secret'], undefined, 'hide-headers, case-insensitive');
          assert.equal(headers['x-custom'], 'kept');
          assert.equal(headers.server, 'keepip', "server-tokens: the gateway's Server, not the backend's");
          assert.equal((await get(gw, 'unknown.example')).headers.server, 'keepip');
        },
      );
      const backendServer = { 'server-tokens': 'true', 'allow-backend-server-header': 'true' };
      await withGateway(objects(backendServer), async (gw) => {
        assert.equal((await get(gw)).headers.server, 'backend/1.0');
      });
      await withGateway(objects({ 'allow-backend-server-header': 'true' }), async (gw) => {
        assert.equal((await get(gw)).headers.server, undefined, 'cleared without server-tokens');
      });
    } finally {
      noisy.closeAllConnections();
      await new Promise((resolve) => noisy.close(resolve));
    }
  });

  test('keep-alive-requests closes an HTTP/1.1 connection after that many requests, as nginx', async () => {
    const requestText = 'GET / HTTP/1.1\r\nHost: plain.example.com\r\n\r\n';
    await withGateway(site({ 'keep-alive-requests': '3' }), async (gw) => {
      // Four pipelined requests: three answers, the third says close, then the gateway closes.
      const exchange = await rawExchange({
        host: '127.0.0.1',
        port: gw.httpPort,
        payload: requestText.repeat(4),
      });
      const text = exchange.received.toString('latin1');
      assert.ok(exchange.closedByServer);
      const heads = text.split('HTTP/1.1 ').slice(1);
      assert.equal(heads.length, 3, text);
      assert.match(heads[0] ?? '', /\r\nconnection: keep-alive\r\n/i);
      assert.match(heads[2] ?? '', /\r\nconnection: close\r\n/i);
    });
  });
});
