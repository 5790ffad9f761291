// Issue 11's allowlist bypasses, end to end on real sockets: a request target or a host that the
// router reads one way and the backend another. Each row comes from an address outside the allowlist
// and must never reach a protected backend; the controls from the allowlisted address show the same
// requests do get through when they should (so a test cannot pass by refusing everything).
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, Server } from 'node:http';
import http from '../../src/node-http.ts';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { rawExchange } from '../helpers/net.ts';

const ALLOWED = '127.0.0.50';
const STRANGER = '127.0.0.51';
/** The load balancer in front of the PROXY gateway: the only trusted hop. */
const LB = '127.0.0.52';

interface Seen {
  backend: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** Backends that answer 200 with their own name and record every request they serve. */
async function startBackends(names: readonly string[]) {
  const seen: Seen[] = [];
  const servers = new Map<string, Server>();
  for (const name of names) {
    const server = http.createServer((req, res) => {
      seen.push({ backend: name, url: req.url ?? '', headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
      res.end(`${name} ${req.url}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.set(name, server);
  }
  return {
    seen,
    port: (name: string) => ((servers.get(name) as Server).address() as net.AddressInfo).port,
    async close() {
      for (const server of servers.values()) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

/** One raw request from `from`; the status, the backend that answered (x-backend), and the raw reply. */
async function send(port: number, from: string, head: string, prefix: Buffer = Buffer.alloc(0)) {
  const reply = await rawExchange({
    host: '127.0.0.1',
    port,
    localAddress: from,
    payload: Buffer.concat([prefix, Buffer.from(`${head}Connection: close\r\n\r\n`, 'latin1')]),
    timeoutMs: 10_000,
  });
  const text = reply.received.toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const backend = /\r\nx-backend: (\S+)/i.exec(text)?.[1] ?? null;
  return { status, backend, text };
}

describe('request targets and hosts: the router and the backend read the same request', () => {
  let gw: TestGateway;
  let backends: Awaited<ReturnType<typeof startBackends>>;

  before(async () => {
    backends = await startBackends(['admin', 'public', 'exact']);
    const allow = { 'whitelist-source-range': `${ALLOWED}/32` };
    gw = await startTestGateway(
      topologyOf([
        // "client sent invalid request" is nginx's info level: shown only from error-log-level info.
        controllerConfigMap({ 'error-log-level': 'info' }),
        ...serviceWithEndpoints({ name: 'admin', ports: [backends.port('admin')] }),
        ...serviceWithEndpoints({ name: 'public', ports: [backends.port('public')] }),
        ...serviceWithEndpoints({ name: 'exact', ports: [backends.port('exact')] }),
        ingress({
          name: 'app-admin',
          host: 'app.example',
          paths: [
            { path: '/admin', service: 'admin', port: 80 },
            { path: '/exact', pathType: 'Exact', service: 'exact', port: 80 },
          ],
          annotations: allow,
        }),
        ingress({
          name: 'app-public',
          host: 'app.example',
          paths: [{ path: '/', service: 'public', port: 80 }],
        }),
        ingress({
          name: 'admin-host',
          host: 'admin.example',
          paths: [{ path: '/', service: 'admin', port: 80 }],
          annotations: allow,
        }),
        ingress({
          name: 'public-host',
          host: 'public.example',
          paths: [{ path: '/', service: 'public', port: 80 }],
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backends.close();
  });

  const get = (from: string, target: string, host = 'app.example') =>
    send(gw.httpPort, from, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n`);

  /** From outside the allowlist: 403, no backend reached. From inside it: served by the public `/`. */
  const heldToRules = async (target: string) => {
    const before = backends.seen.length;
    assert.equal((await get(STRANGER, target)).status, 403, target);
    assert.equal(backends.seen.length, before, `${target} reached a backend`);
    const allowed = await get(ALLOWED, target);
    assert.equal(allowed.status, 200, target);
    assert.equal(allowed.backend, 'public', target);
  };

  /** Targets that mean nothing protected, however a backend reads them: the public `/` for everyone. */
  const publicForEveryone = async (targets: readonly string[]) => {
    for (const target of targets) assert.equal((await get(STRANGER, target)).backend, 'public', target);
  };

  it('a fragment in the target is 400 and reaches no backend (Prefix and Exact paths)', async () => {
    for (const target of ['/admin#x', '/exact#x', '/#/admin', '/admin%23x#']) {
      const before = backends.seen.length;
      const reply = await get(STRANGER, target);
      assert.equal(reply.status, 400, target);
      assert.equal(backends.seen.length, before, `${target} reached a backend`);
    }
    // `%23` is an encoded `#`: one path segment `admin#x` to router and backend alike, not `/admin`.
    const encoded = await get(STRANGER, '/admin%23x');
    assert.equal(encoded.backend, 'public');
  });

  it('another case, path parameters and backslashes are held to the rules of the location they could mean', async () => {
    const attempts = [
      '/ADMIN',
      '/Admin/users',
      '/admin;jsessionid=1',
      '/admin;x/users',
      '/EXACT',
      '/exact;v=1',
      '/public\\..\\admin',
      '/x/..\\admin',
    ];
    // Allowed: routed exactly as nginx does (case-sensitive, no path parameters), to the public `/`.
    for (const target of attempts) await heldToRules(target);
    // Paths that mean nothing protected pass for everyone.
    assert.equal((await get(STRANGER, '/Administrators-guide')).backend, 'public');
    assert.equal((await get(STRANGER, '/docs;v=2')).backend, 'public');
  });

  it('trailing dots and spaces of a segment are held to the rules of the path Windows and IIS read', async () => {
    // nginx routes `/admin.` and `/admin%20` to `/`; IIS and Windows file systems drop a segment's
    // trailing dots and spaces, and Spring's suffix patterns take `/admin.` for `/admin`.
    for (const target of [
      '/admin.',
      '/admin..',
      '/admin%20',
      '/admin%09',
      '/admin.%20.',
      '/admin./users',
      '/exact.',
    ])
      await heldToRules(target);
    await publicForEveryone(['/admin.php', '/administrator.', '/a.b', '/admin-x%20', '/.../admin-guide']);
  });

  it('a trailing slash is held to the rules of the Exact path it could mean', async () => {
    // nginx's `location = /exact` does not match `/exact/`, which goes to `/`; Express (strict routing
    // off, its default) and Spring before 6 serve `/exact/` as `/exact`.
    for (const target of ['/exact/', '/exact//', '/exact/.', '/EXACT/', '/exact;v=1/'])
      await heldToRules(target);
    await publicForEveryone(['/exactly/', '/']);
  });

  it('a path that starts with // or /\\ is held to the rules of the path a URL parser reads after the "authority"', async () => {
    // `new URL(req.url, base)` (the pattern of Node's documentation) and other WHATWG parsers read
    // `//x/admin` and `/\x/admin` as host `x`, path `/admin`. nginx merges the slashes, matches
    // `/x/admin` and sends the target as received: a backend behind `/` and `/admin` would serve `/admin`.
    const attempts = [
      '//x/admin',
      '/\\x/admin',
      '//app.example/admin/users',
      '//x/y/../admin',
      '//x/%61dmin',
      '//x/ADMIN',
      '//x\\admin',
      '///x/admin?q',
      '//x/exact',
    ];
    // Allowed: routed exactly as nginx does (the merged path), to the public `/`.
    for (const target of attempts) await heldToRules(target);
    // Absolute-form: the path after the authority is read the same way.
    const absolute = await send(
      gw.httpPort,
      STRANGER,
      'GET http://app.example//x/admin HTTP/1.1\r\nHost: app.example\r\n',
    );
    assert.equal(absolute.status, 403);
    // A network-path reading that means nothing protected passes for everyone.
    await publicForEveryone(['//x/docs', '//x', '/%2fx/admin']);
  });

  it('a path that leaves a location only once %2F or %2E is decoded is held to the rules of that location', async () => {
    // nginx decodes escapes before it resolves `..`, so `/admin/x%2f..%2f..%2fx` is `/x` to it; a
    // backend that matches the path as received (Express's `/admin/:id`, Node's URL for `%2F`) reads a
    // path under `/admin/`, and nginx sends it the target as received.
    const attempts = [
      '/admin/x%2f..%2f..%2fx',
      '/admin/x%2F..%2F..%2Fdocs',
      '/admin/%2e%2e%2fx',
      '/admin/%2e%2e/x',
      '/admin/%2E%2E/docs',
    ];
    for (const target of attempts) await heldToRules(target);
    // Decoded or not, these mean nothing protected.
    await publicForEveryone(['/docs/x%2f..%2fy', '/admin%2f..%2fx']);
  });

  it('encodings, dot segments and NUL: routed by the decoded path or refused as nginx refuses them', async () => {
    for (const target of [
      '/%61dmin',
      '//admin',
      '/x/../admin',
      '/x/%2e%2e/admin',
      '/admin%2fusers',
      '/./admin',
    ]) {
      assert.equal((await get(STRANGER, target)).status, 403, target);
    }
    for (const target of ['/../admin', '/%2e%2e/admin', '/admin%00', '/x/%00/../admin']) {
      const before = backends.seen.length;
      assert.equal((await get(STRANGER, target)).status, 400, target);
      assert.equal(backends.seen.length, before, `${target} reached a backend`);
    }
    assert.match(gw.errors.lines.join('\n'), /client sent invalid request \(TARGET_ABOVE_ROOT/);
  });

  it('an absolute-form target is routed and forwarded by its authority, never by the Host header', async () => {
    const before = backends.seen.length;
    const publicByTarget = await send(
      gw.httpPort,
      STRANGER,
      'GET http://public.example/x HTTP/1.1\r\nHost: admin.example\r\n',
    );
    assert.equal(publicByTarget.status, 200);
    const seen = backends.seen[before] as Seen;
    assert.equal(seen.backend, 'public');
    assert.equal(seen.url, '/x');
    assert.equal(seen.headers.host, 'public.example');
    assert.equal(seen.headers['x-forwarded-host'], 'public.example');
    for (const head of [
      'GET http://admin.example/ HTTP/1.1\r\nHost: public.example\r\n',
      'GET http://ADMIN.Example./ HTTP/1.1\r\nHost: public.example\r\n',
      'GET https://admin.example:8443/ HTTP/1.1\r\nHost: public.example\r\n',
      'GET http://app.example/admin HTTP/1.1\r\nHost: public.example\r\n',
    ]) {
      assert.equal((await send(gw.httpPort, STRANGER, head)).status, 403, head);
    }
    assert.equal(backends.seen.length, before + 1);
  });

  it('invalid hosts and authorities are 400, as nginx answers an invalid Host', async () => {
    const before = backends.seen.length;
    for (const head of [
      'GET / HTTP/1.1\r\nHost: admin.example/x\r\n',
      'GET / HTTP/1.1\r\nHost: .admin.example\r\n',
      'GET / HTTP/1.1\r\nHost: admin..example\r\n',
      'GET / HTTP/1.1\r\nHost: admin.example..\r\n',
      // The Host header is checked beside an absolute-form target too, as nginx checks it (400), though
      // not routed by (a `Host: a@b` there is served, as by nginx: expanded-urls-attack.test.ts).
      'GET http://admin.example/ HTTP/1.1\r\nHost: h test\r\n',
      'GET http://admin.example/ HTTP/1.1\r\nHost: admin..example\r\n',
      'GET http://admin.example/ HTTP/1.1\r\nHost: evil.example/x\r\n',
      'GET http://admin.example/ HTTP/1.1\r\nHost: a.example..\r\n',
      'GET http://user@admin.example/ HTTP/1.1\r\nHost: admin.example\r\n',
      'GET http:///admin HTTP/1.1\r\nHost: admin.example\r\n',
      'GET ftp://admin.example/ HTTP/1.1\r\nHost: admin.example\r\n',
      'GET admin HTTP/1.1\r\nHost: admin.example\r\n',
      'GET / HTTP/1.1\r\nHost: \r\n',
      'GET / HTTP/1.1\r\n',
      'GET http://admin.example/ HTTP/1.1\r\n',
    ]) {
      assert.equal((await send(gw.httpPort, STRANGER, head)).status, 400, head);
    }
    assert.equal(backends.seen.length, before);
  });

  it('a WebSocket upgrade is held to the same target and host rules', async () => {
    const upgrade =
      'Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
    const before = backends.seen.length;
    assert.equal(
      (await send(gw.httpPort, STRANGER, `GET /admin#x HTTP/1.1\r\nHost: app.example\r\n${upgrade}`)).status,
      400,
    );
    assert.equal(
      (await send(gw.httpPort, STRANGER, `GET /ADMIN HTTP/1.1\r\nHost: app.example\r\n${upgrade}`)).status,
      403,
    );
    assert.equal(
      (
        await send(
          gw.httpPort,
          STRANGER,
          `GET http://admin.example/ HTTP/1.1\r\nHost: public.example\r\n${upgrade}`,
        )
      ).status,
      403,
    );
    assert.equal(backends.seen.length, before);
  });
});

describe('forwarded headers behind a PROXY load balancer are trusted from the client the PROXY header names', () => {
  let gw: TestGateway;
  let backends: Awaited<ReturnType<typeof startBackends>>;
  /** A trusted L7 proxy behind the load balancer (its X-Forwarded-* are believed). */
  const INNER_PROXY = '127.0.0.53';

  before(async () => {
    backends = await startBackends(['public', 'secure']);
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({
          'use-proxy-protocol': 'true',
          'use-forwarded-headers': 'true',
          'proxy-real-ip-cidr': `${LB}/32,${INNER_PROXY}/32`,
        }),
        ...serviceWithEndpoints({ name: 'public', ports: [backends.port('public')] }),
        ...serviceWithEndpoints({ name: 'secure', ports: [backends.port('secure')] }),
        ingress({
          name: 'public',
          host: 'public.example',
          paths: [{ path: '/', service: 'public', port: 80 }],
        }),
        ingress({
          name: 'secure',
          host: 'secure.example',
          paths: [{ path: '/', service: 'secure', port: 80 }],
          annotations: { 'force-ssl-redirect': 'true' },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backends.close();
  });

  const viaLb = (client: string, head: string) =>
    send(
      gw.httpPort,
      LB,
      head,
      encodeProxyHeader({
        version: 2,
        source: { address: client, port: 40000 },
        destination: { address: '10.0.0.1', port: 80 },
      }),
    );

  const forged = 'X-Forwarded-Host: admin.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n';

  it('an untrusted client behind the LB cannot forge X-Forwarded-Host, -Proto or -Port', async () => {
    const before = backends.seen.length;
    const reply = await viaLb('203.0.113.9', `GET /p HTTP/1.1\r\nHost: public.example\r\n${forged}`);
    assert.equal(reply.status, 200);
    const seen = backends.seen[before] as Seen;
    assert.equal(seen.headers.host, 'public.example');
    assert.equal(seen.headers['x-forwarded-host'], 'public.example');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-port'], '80');
    assert.equal(seen.headers['x-real-ip'], '203.0.113.9');
  });

  const urlOverrides =
    'X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-Forwarded-Uri: /admin\r\nX-Forwarded-Prefix: /admin\r\n' +
    'Forwarded: for=10.0.0.1;host=admin.example;proto=https\r\nX-Forwarded-Ssl: on\r\nFront-End-Https: on\r\n';
  const overrideNames = [
    'x-original-url',
    'x-rewrite-url',
    'x-forwarded-uri',
    'x-forwarded-prefix',
    'forwarded',
    'x-forwarded-ssl',
    'front-end-https',
  ];

  it('headers that name another URL, host or scheme reach the backend only from a trusted hop', async () => {
    const before = backends.seen.length;
    assert.equal(
      (await viaLb('203.0.113.9', `GET /p HTTP/1.1\r\nHost: public.example\r\n${urlOverrides}`)).status,
      200,
    );
    const untrusted = backends.seen[before] as Seen;
    for (const name of overrideNames) assert.equal(untrusted.headers[name], undefined, name);
    assert.equal(
      (await viaLb(INNER_PROXY, `GET /p HTTP/1.1\r\nHost: public.example\r\n${urlOverrides}`)).status,
      200,
    );
    const trusted = backends.seen[before + 1] as Seen;
    for (const name of overrideNames) assert.notEqual(trusted.headers[name], undefined, name);
  });

  it('a forged X-Forwarded-Proto does not skip force-ssl-redirect', async () => {
    const reply = await viaLb('203.0.113.9', `GET /login HTTP/1.1\r\nHost: secure.example\r\n${forged}`);
    assert.equal(reply.status, 308);
    assert.match(reply.text, /\r\nlocation: https:\/\/secure\.example\/login\r\n/i);
  });

  it('a trusted proxy named by the PROXY header is believed (control)', async () => {
    const before = backends.seen.length;
    const reply = await viaLb(INNER_PROXY, `GET /login HTTP/1.1\r\nHost: secure.example\r\n${forged}`);
    assert.equal(reply.status, 200);
    const seen = backends.seen[before] as Seen;
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-host'], 'admin.example');
  });
});
