// nginx's 301 to the path with a trailing slash, as ingress-nginx serves Prefix paths: a prefix
// location whose name ends in `/` and that proxies has nginx's auto_redirect, so a request for that name
// without its `/` is answered 301 at find-config (before any access check or CORS), unless an exact
// location of that name exists (ingress-nginx adds `= /foo` beside `location /foo/` for a Prefix path
// `/foo`, not for `/foo/`) or the host's locations are regexes (use-regex, rewrite-target).
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import {
  echoOf,
  type Reply,
  request,
  startTestGateway,
  type TestGateway,
} from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { metricSum } from '../helpers/metrics.ts';

const json = { accept: 'application/json' };

function httpsGet(port: number, host: string, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: host,
        rejectUnauthorized: false,
        agent: false,
        headers: { host },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('trailing-slash redirect of Prefix paths (nginx auto_redirect)', () => {
  let a: RunningWhoami;
  let b: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    a = await startWhoami({ host: '127.0.0.1', port: 0, name: 'a' });
    b = await startWhoami({ host: '127.0.0.1', port: 0, name: 'b' });
    const objects = [
      ...serviceWithEndpoints({ name: 'svc-a', ports: [a.address.port] }),
      ...serviceWithEndpoints({ name: 'svc-b', ports: [b.address.port] }),
      ingress({
        name: 'slash',
        host: 'slash.test',
        paths: [
          { path: '/', service: 'svc-b', port: 80 },
          { path: '/foo/', service: 'svc-a', port: 80 },
          { path: '/bar', service: 'svc-a', port: 80 },
        ],
      }),
      ingress({
        name: 'exact',
        host: 'exact.test',
        paths: [
          { path: '/foo/', service: 'svc-a', port: 80 },
          { path: '/foo', pathType: 'Exact', service: 'svc-b', port: 80 },
        ],
      }),
      ingress({
        name: 'rx-plain',
        host: 'regex.test',
        paths: [{ path: '/foo/', service: 'svc-a', port: 80 }],
      }),
      ingress({
        name: 'rx',
        host: 'regex.test',
        paths: [{ path: '/other.*', pathType: 'ImplementationSpecific', service: 'svc-b', port: 80 }],
        annotations: { 'use-regex': 'true' },
      }),
      ingress({
        name: 'relative',
        host: 'relative.test',
        paths: [{ path: '/foo/', service: 'svc-a', port: 80 }],
        annotations: { 'relative-redirects': 'true' },
      }),
      ingress({
        name: 'guarded',
        host: 'guarded.test',
        paths: [{ path: '/foo/', service: 'svc-a', port: 80 }],
        annotations: { 'allowlist-source-range': '127.0.0.2/32', 'enable-cors': 'true' },
      }),
    ];
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gw.close();
    await a.close();
    await b.close();
  });

  test('Prefix /foo/: GET /foo is 301 to http://<host>/foo/, the query kept', async () => {
    const reply = await request(gw.httpPort, { host: `slash.test:${gw.httpPort}`, path: '/foo' });
    assert.equal(reply.status, 301);
    // absolute_redirect on, port_in_redirect off: the Host without its port.
    assert.equal(reply.headers.location, 'http://slash.test/foo/');
    const query = await request(gw.httpPort, { host: 'slash.test', path: '/foo?x=1&y' });
    assert.equal(query.status, 301);
    assert.equal(query.headers.location, 'http://slash.test/foo/?x=1&y');
  });

  test('the 301 is logged with status 301, no upstream, and counted', async () => {
    await request(gw.httpPort, { host: 'slash.test', path: '/foo?logged=1' });
    const line = await gw.access.waitFor(/"GET \/foo\?logged=1 HTTP\/1\.1" 301 /);
    // The location's `set $proxy_upstream_name` never ran: the server's "-".
    assert.match(line, / \[-\] \[\] /);
    // Counted as ingress-nginx's monitor counts it: the location's $namespace/$ingress_name were never set.
    const counted = metricSum(await gw.gateway.metrics.registry.metrics(), 'keepip_gateway_requests_total', {
      status: '301',
      ingress: '',
    });
    assert.ok(counted >= 1);
  });

  test('Prefix /foo/: /foo/ and /foo/bar are proxied by it; /foox is not its', async () => {
    for (const path of ['/foo/', '/foo/bar']) {
      const reply = await request(gw.httpPort, { host: 'slash.test', path, headers: json });
      assert.equal(reply.status, 200, path);
      assert.equal(echoOf(reply).name, 'a', path);
      assert.equal(echoOf(reply).url, path);
    }
    const other = await request(gw.httpPort, { host: 'slash.test', path: '/foox', headers: json });
    assert.equal(echoOf(other).name, 'b');
  });

  test('Prefix /bar (no slash): /bar is proxied (ingress-nginx adds `location = /bar`)', async () => {
    const reply = await request(gw.httpPort, { host: 'slash.test', path: '/bar', headers: json });
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).name, 'a');
  });

  test('an Exact /foo beside a Prefix /foo/: /foo is proxied by the Exact one', async () => {
    const reply = await request(gw.httpPort, { host: 'exact.test', path: '/foo', headers: json });
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).name, 'b');
  });

  test('a host with use-regex has no auto_redirect: /foo is not redirected', async () => {
    const reply = await request(gw.httpPort, { host: 'regex.test', path: '/foo', headers: json });
    assert.notEqual(reply.status, 301);
    assert.equal(reply.headers.location, undefined);
  });

  test('relative-redirects: the Location is the path', async () => {
    const reply = await request(gw.httpPort, { host: 'relative.test', path: '/foo?q' });
    assert.equal(reply.status, 301);
    assert.equal(reply.headers.location, '/foo/?q');
  });

  test('over HTTPS the Location is https://<host>/foo/', async () => {
    const reply = await httpsGet(gw.httpsPort, 'slash.test', '/foo');
    assert.equal(reply.status, 301);
    assert.equal(reply.headers.location, 'https://slash.test/foo/');
  });

  test('the redirect comes before the allowlist and CORS (find-config); the new request is checked', async () => {
    const denied = await request(gw.httpPort, { from: '127.0.0.3', host: 'guarded.test', path: '/foo' });
    assert.equal(denied.status, 301);
    assert.equal(denied.headers.location, 'http://guarded.test/foo/');
    const preflight = await request(gw.httpPort, {
      from: '127.0.0.2',
      host: 'guarded.test',
      path: '/foo',
      method: 'OPTIONS',
      headers: { origin: 'https://x.test' },
    });
    assert.equal(preflight.status, 301);
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    const followed = await request(gw.httpPort, { from: '127.0.0.3', host: 'guarded.test', path: '/foo/' });
    assert.equal(followed.status, 403);
    const allowed = await request(gw.httpPort, {
      from: '127.0.0.2',
      host: 'guarded.test',
      path: '/foo/',
      headers: json,
    });
    assert.equal(allowed.status, 200);
  });
});
