// keepip gateway end to end on real sockets: clients bound to distinct 127.x addresses play allowed and
// denied IPs; whoami backends echo what reached them. Routing, access rules (403 + error log line, fail
// closed 503), redirects, rewrites, 404/413/502/503/504, upstream headers, keep-alive, access log, metrics.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { refusingPort } from '../helpers/net.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

describe('gateway routing and access', () => {
  let a: RunningWhoami;
  let b: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    a = await startWhoami({ host: '127.0.0.1', port: 0, name: 'a' });
    b = await startWhoami({ host: '127.0.0.1', port: 0, name: 'b' });
    const refused = await refusingPort();
    const objects = [
      ...serviceWithEndpoints({ name: 'svc-a', ports: [a.address.port] }),
      ...serviceWithEndpoints({ name: 'svc-ab', ports: [a.address.port, b.address.port] }),
      ...serviceWithEndpoints({ name: 'svc-dead', ports: [refused] }),
      ...serviceWithEndpoints({ name: 'svc-empty', ports: [], notReady: [a.address.port] }),
      ingress({
        name: 'web',
        host: 'web.example.com',
        paths: [{ path: '/', service: 'svc-a', port: 80 }],
        annotations: {
          'allowlist-source-range': '127.0.0.2/32, 127.0.0.5',
          'denylist-source-range': '127.0.0.5/32',
        },
      }),
      ingress({
        name: 'broken',
        host: 'broken.example.com',
        paths: [{ path: '/', service: 'svc-a', port: 80 }],
        annotations: { 'allowlist-source-range': 'ww' },
      }),
      ingress({ name: 'rr', host: 'rr.example.com', paths: [{ path: '/', service: 'svc-ab', port: 80 }] }),
      ingress({
        name: 'small',
        host: 'small.example.com',
        paths: [{ path: '/', service: 'svc-a', port: 80 }],
        annotations: { 'proxy-body-size': '1k' },
      }),
      ingress({
        name: 'slow',
        host: 'slow.example.com',
        paths: [{ path: '/', service: 'svc-a', port: 80 }],
        annotations: { 'proxy-read-timeout': '1' },
      }),
      ingress({
        name: 'dead',
        host: 'dead.example.com',
        paths: [{ path: '/', service: 'svc-dead', port: 80 }],
      }),
      ingress({
        name: 'empty',
        host: 'empty.example.com',
        paths: [{ path: '/', service: 'svc-empty', port: 80 }],
      }),
      ingress({
        name: 'root',
        host: 'app.example.com',
        paths: [{ path: '/', service: 'svc-a', port: 80 }],
        annotations: { 'app-root': '/app' },
      }),
      ingress({
        name: 'secure',
        host: 'secure.example.com',
        paths: [{ path: '/', service: 'svc-a', port: 80 }],
        annotations: { 'force-ssl-redirect': 'true' },
      }),
      ingress({
        name: 'rewrite',
        host: 'rw.example.com',
        paths: [
          { path: '/something(/|$)(.*)', pathType: 'ImplementationSpecific', service: 'svc-a', port: 80 },
        ],
        annotations: { 'use-regex': 'true', 'rewrite-target': '/$2' },
      }),
    ];
    gw = await startTestGateway(topologyOf(objects));
  });

  after(async () => {
    await gw.close();
    await a.close();
    await b.close();
  });

  const json = { accept: 'application/json' };

  test('an allowed client reaches the backend, which sees the resolved client in X-Real-IP and X-Forwarded-For', async () => {
    const reply = await request(gw.httpPort, {
      from: '127.0.0.2',
      host: 'web.example.com',
      path: '/x?y=1',
      headers: json,
    });
    assert.equal(reply.status, 200);
    const echo = echoOf(reply);
    assert.equal(echo.name, 'a');
    assert.equal(echo.url, '/x?y=1');
    assert.equal(echo.headers['x-real-ip'], '127.0.0.2');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.2');
    assert.equal(echo.headers['x-forwarded-host'], 'web.example.com');
    assert.equal(echo.headers['x-forwarded-proto'], 'http');
    assert.match(echo.headers['x-request-id'] ?? '', /^[0-9a-f]{32}$/);
    // The access log line has ingress-nginx's default shape and the same request id.
    const line = await gw.access.waitFor(new RegExp(echo.headers['x-request-id']!));
    assert.match(
      line,
      /^127\.0\.0\.2 - - \[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET \/x\?y=1 HTTP\/1\.1" 200 \d+ "-" "-" \d+ \d+\.\d{3} \[default-svc-a-80\] \[\] 127\.0\.0\.1:\d+ \d+ \d+\.\d{3} 200 [0-9a-f]{32}$/,
    );
  });

  test('a client outside the allowlist gets 403 and the error log names the resolved client', async () => {
    const reply = await request(gw.httpPort, {
      from: '127.0.0.3',
      host: 'web.example.com',
      path: '/private',
    });
    assert.equal(reply.status, 403);
    assert.match(reply.body, /<title>403 Forbidden<\/title>/);
    const line = await gw.errors.waitFor(/access forbidden by rule, client: 127\.0\.0\.3/);
    assert.match(
      line,
      /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} \[error\] \d+#\d+: \*\d+ access forbidden by rule, client: 127\.0\.0\.3, server: web\.example\.com, request: "GET \/private HTTP\/1\.1", host: "web\.example\.com"$/,
    );
  });

  test('deny beats allow: a client on both lists is refused', async () => {
    const reply = await request(gw.httpPort, { from: '127.0.0.5', host: 'web.example.com' });
    assert.equal(reply.status, 403);
  });

  test('a forged X-Forwarded-For from an untrusted setup is ignored (use-forwarded-headers off)', async () => {
    const reply = await request(gw.httpPort, {
      from: '127.0.0.3',
      host: 'web.example.com',
      headers: { 'x-forwarded-for': '127.0.0.2', 'x-real-ip': '127.0.0.2' },
    });
    assert.equal(reply.status, 403);
    await gw.errors.waitFor(/client: 127\.0\.0\.3, server: web\.example\.com, request: "GET \/ HTTP/);
  });

  test('an invalid allowlist fails closed: 503 for everyone, even the client it meant to allow', async () => {
    for (const from of ['127.0.0.2', '127.0.0.3']) {
      const reply = await request(gw.httpPort, { from, host: 'broken.example.com' });
      assert.equal(reply.status, 503);
    }
  });

  test('curl from two source addresses: one allowed, one denied', async () => {
    const curl = requireBinary('curl');
    const url = `http://127.0.0.1:${gw.httpPort}/`;
    const allowed = await runCommand(curl, [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--interface',
      '127.0.0.2',
      '-H',
      'Host: web.example.com',
      url,
    ]);
    const denied = await runCommand(curl, [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--interface',
      '127.0.0.9',
      '-H',
      'Host: web.example.com',
      url,
    ]);
    assert.equal(allowed.stdout, '200');
    assert.equal(denied.stdout, '403');
  });

  test('round robin over the endpoints of a Service', async () => {
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      names.push(echoOf(await request(gw.httpPort, { host: 'rr.example.com', headers: json })).name);
    }
    assert.deepEqual([...names].sort(), ['a', 'a', 'b', 'b']);
    assert.notEqual(names[0], names[1]);
  });

  test('an unknown host gets the 404 default backend', async () => {
    const reply = await request(gw.httpPort, { host: 'nobody.example.com' });
    assert.equal(reply.status, 404);
    assert.match(reply.body, /404 Not Found/);
  });

  test('proxy-body-size: a Content-Length over the limit is 413 without reaching the backend', async () => {
    const reply = await request(gw.httpPort, {
      host: 'small.example.com',
      method: 'POST',
      body: Buffer.alloc(2048, 1),
    });
    assert.equal(reply.status, 413);
    const ok = await request(gw.httpPort, {
      host: 'small.example.com',
      method: 'POST',
      body: Buffer.alloc(512, 1),
      headers: json,
    });
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body) as { body: { bytes: number } }).body.bytes, 512);
  });

  test('proxy-read-timeout: a backend slower than the timeout is a 504', async () => {
    const reply = await request(gw.httpPort, { host: 'slow.example.com', path: '/?wait=4s' });
    assert.equal(reply.status, 504);
    await gw.errors.waitFor(
      /upstream timed out \(110: Connection timed out\) while reading response header from upstream/,
    );
  });

  test("no endpoint answering is a 502 with nginx's connect() error line", async () => {
    const reply = await request(gw.httpPort, { host: 'dead.example.com' });
    assert.equal(reply.status, 502);
    await gw.errors.waitFor(
      /connect\(\) failed \(111: Connection refused\) while connecting to upstream, client: 127\.0\.0\.1, server: dead\.example\.com/,
    );
  });

  test('a Service without ready endpoints answers 503 (as ingress-nginx)', async () => {
    const reply = await request(gw.httpPort, { host: 'empty.example.com' });
    assert.equal(reply.status, 503);
  });

  test('app-root redirects / with 302; force-ssl-redirect redirects with 308 to https', async () => {
    const root = await request(gw.httpPort, { host: 'app.example.com', path: '/' });
    assert.equal(root.status, 302);
    assert.match(root.headers.location ?? '', /\/app$/);
    const secure = await request(gw.httpPort, { host: 'secure.example.com', path: '/a?b=c' });
    assert.equal(secure.status, 308);
    assert.equal(secure.headers.location, 'https://secure.example.com/a?b=c');
  });

  test('rewrite-target with captures: /something/new reaches the backend as /new', async () => {
    const reply = await request(gw.httpPort, {
      host: 'rw.example.com',
      path: '/something/new?q=1',
      headers: json,
    });
    assert.equal(reply.status, 200);
    assert.equal(echoOf(reply).url, '/new?q=1');
  });

  test('keep-alive: one client connection carries several requests, and the upstream connection is reused', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const clientPorts = new Set<number>();
      const upstreamPorts = new Set<number>();
      for (let i = 0; i < 5; i++) {
        const reply = await new Promise<{ local: number; body: string }>((resolve, reject) => {
          const req = http.get(
            {
              host: '127.0.0.1',
              port: gw.httpPort,
              path: '/',
              headers: { host: 'web.example.com', ...json },
              agent,
              localAddress: '127.0.0.2',
            },
            (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => {
                body += chunk;
              });
              res.on('end', () => resolve({ local: req.socket?.localPort ?? 0, body }));
            },
          );
          req.on('error', reject);
        });
        clientPorts.add(reply.local);
        upstreamPorts.add((JSON.parse(reply.body) as { remotePort: number }).remotePort);
      }
      assert.equal(clientPorts.size, 1);
      assert.equal(upstreamPorts.size, 1);
    } finally {
      agent.destroy();
    }
  });

  test('metrics count requests by ingress, host and status, and denials by rule', async () => {
    const text = await gw.gateway.metrics.registry.metrics();
    assert.match(
      text,
      /keepip_gateway_requests_total\{ingress="default\/web",host="web\.example\.com",status="403"\} \d+/,
    );
    assert.match(
      text,
      /keepip_gateway_requests_total\{ingress="default\/web",host="web\.example\.com",status="200"\} \d+/,
    );
    assert.match(text, /keepip_gateway_denials_total\{rule="allowlist-miss"\} \d+/);
    assert.match(text, /keepip_gateway_denials_total\{rule="denylist"\} \d+/);
    assert.match(text, /keepip_gateway_denials_total\{rule="invalid-rules"\} \d+/);
    assert.match(text, /keepip_gateway_upstream_duration_seconds_count\{upstream="default-svc-a-80"\} \d+/);
  });
});
