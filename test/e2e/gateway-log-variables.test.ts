// The nginx variables custom log formats use most beyond ingress-nginx's default line, over real
// sockets: $connection and $connection_requests (one keep-alive connection, two requests),
// $proxy_add_x_forwarded_for (the client's header plus $remote_addr, as nginx builds it),
// $location_path (ingress-nginx's: the Ingress path as written), $hostname, and the TLS ones
// ($ssl_protocol, $ssl_cipher, $ssl_server_name, $ssl_session_reused) checked against what curl and
// openssl negotiated, over HTTP/1.1 and HTTP/2.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import http from '../../src/node-http.ts';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const FORMAT =
  'uri=$request_uri conn=$connection n=$connection_requests xff="$proxy_add_x_forwarded_for" ' +
  'loc=$location_path host=$hostname proto=$ssl_protocol cipher=$ssl_cipher sni=$ssl_server_name ' +
  'reused=$ssl_session_reused ct="$sent_http_content_type" sc=$sent_http_connection';

type Fields = Record<string, string>;

/** The access log line for `uri`, as name → value. */
async function lineOf(gw: TestGateway, uri: string): Promise<Fields> {
  const line = await gw.access.waitFor(new RegExp(`^uri=${uri.replace(/[?]/g, '\\?')} `));
  const fields: Fields = {};
  for (const match of line.matchAll(/(\w+)=("[^"]*"|\S+)/g))
    fields[match[1] as string] = (match[2] as string).replace(/^"|"$/g, '');
  return fields;
}

describe('log variables', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;
  const curl = requireBinary('curl');

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'log-format-upstream': FORMAT }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'web',
          host: 'web.example.com',
          paths: [{ path: '/api', service: 'web', port: 80 }],
        }),
      ]),
    );
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('$connection and $connection_requests: one keep-alive connection, requests counted on it', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const uri of ['/api/one', '/api/two'])
        assert.equal((await request(gw.httpPort, { host: 'web.example.com', path: uri, agent })).status, 200);
    } finally {
      agent.destroy();
    }
    const [one, two] = [await lineOf(gw, '/api/one'), await lineOf(gw, '/api/two')];
    assert.equal(one.n, '1');
    assert.equal(two.n, '2');
    assert.equal(one.conn, two.conn);
    assert.match(one.conn ?? '', /^\d+$/);
    // Another connection, another number.
    assert.equal((await request(gw.httpPort, { host: 'web.example.com', path: '/api/three' })).status, 200);
    const three = await lineOf(gw, '/api/three');
    assert.notEqual(three.conn, one.conn);
    assert.equal(three.n, '1');
  });

  test('$proxy_add_x_forwarded_for, $location_path and $hostname; no TLS values over plain HTTP', async () => {
    const reply = await request(gw.httpPort, {
      host: 'web.example.com',
      path: '/api/xff',
      from: '127.0.0.9',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    assert.equal(reply.status, 200);
    const fields = await lineOf(gw, '/api/xff');
    // The peer is not trusted: its header is kept in the variable as nginx does, and $remote_addr added.
    assert.equal(fields.xff, '203.0.113.9, 127.0.0.9');
    assert.equal(fields.loc, '/api');
    assert.equal(fields.host, hostname());
    assert.deepEqual([fields.proto, fields.cipher, fields.sni, fields.reused], ['-', '-', '-', '-']);
    assert.equal((await request(gw.httpPort, { host: 'web.example.com', path: '/api/plain' })).status, 200);
    assert.equal((await lineOf(gw, '/api/plain')).xff, '127.0.0.1');
  });

  test('$ssl_protocol, $ssl_cipher, $ssl_server_name as curl negotiated them, HTTP/1.1 and HTTP/2', async () => {
    const base = `https://web.example.com:${gw.httpsPort}`;
    const resolve = `web.example.com:${gw.httpsPort}:127.0.0.1`;
    const tls12 = await runCommand(curl, [
      ...['-sk', '--resolve', resolve, '--http1.1', '--tlsv1.2', '--tls-max', '1.2'],
      ...['--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256', '-o', '/dev/null', '-w', '%{http_code}'],
      `${base}/api/tls12`,
    ]);
    assert.equal(tls12.stdout, '200', tls12.stderr);
    const twelve = await lineOf(gw, '/api/tls12');
    assert.equal(twelve.proto, 'TLSv1.2');
    assert.equal(twelve.cipher, 'ECDHE-ECDSA-AES128-GCM-SHA256');
    assert.equal(twelve.sni, 'web.example.com');
    assert.equal(twelve.reused, '.');
    const h2 = await runCommand(curl, [
      ...[
        '-sk',
        '--resolve',
        resolve,
        '--http2',
        '--tlsv1.3',
        '--tls13-ciphers',
        'TLS_CHACHA20_POLY1305_SHA256',
      ],
      ...['-o', '/dev/null', '-w', '%{http_code} %{http_version}'],
      `${base}/api/h2`,
    ]);
    assert.equal(h2.stdout, '200 2', h2.stderr);
    const two = await lineOf(gw, '/api/h2');
    assert.equal(two.proto, 'TLSv1.3');
    assert.equal(two.cipher, 'TLS_CHACHA20_POLY1305_SHA256');
    assert.equal(two.sni, 'web.example.com');
  });

  test('$sent_http_<name>: the head the client got, from the backend or from the gateway', async () => {
    const proxied = await request(gw.httpPort, { host: 'web.example.com', path: '/api/sent' });
    assert.equal(proxied.status, 200);
    const fields = await lineOf(gw, '/api/sent');
    assert.equal(fields.ct, proxied.headers['content-type']);
    assert.equal(fields.sc, proxied.headers.connection);
    // The gateway's own answer (no Ingress path): its error page's head.
    const own = await request(gw.httpPort, { host: 'web.example.com', path: '/elsewhere' });
    assert.equal(own.status, 404);
    assert.equal((await lineOf(gw, '/elsewhere')).ct, own.headers['content-type']);
    // HTTP/2 (node:http2's response): the same backend's content type.
    const h2 = await runCommand(curl, [
      ...['-sk', '--http2', '--resolve', `web.example.com:${gw.httpsPort}:127.0.0.1`],
      ...['-o', '/dev/null', '-w', '%{http_version} %{content_type}'],
      `https://web.example.com:${gw.httpsPort}/api/sent-h2`,
    ]);
    assert.equal(h2.stdout, `2 ${proxied.headers['content-type']}`, h2.stderr);
    assert.equal((await lineOf(gw, '/api/sent-h2')).ct, proxied.headers['content-type']);
  });

  test('$ssl_session_reused: r when openssl resumes its TLS 1.2 session', async () => {
    const openssl = requireBinary('openssl');
    const session = `/tmp/keepip-log-variables-${process.pid}.session`;
    const ask = (path: string, resume: boolean) =>
      runCommand(
        openssl,
        [
          ...['s_client', '-quiet', '-tls1_2', '-connect', `127.0.0.1:${gw.httpsPort}`],
          ...['-servername', 'web.example.com', resume ? '-sess_in' : '-sess_out', session],
        ],
        { input: `GET ${path} HTTP/1.1\r\nHost: web.example.com\r\nConnection: close\r\n\r\n` },
      );
    await ask('/api/first', false);
    assert.equal((await lineOf(gw, '/api/first')).reused, '.');
    await ask('/api/resumed', true);
    assert.equal((await lineOf(gw, '/api/resumed')).reused, 'r');
  });
});

describe('$upstream_http_<name>', () => {
  let backend: Server;
  let gw: TestGateway;

  before(async () => {
    backend = http.createServer((_req, res) => {
      res.writeHead(200, {
        'x-cache-status': 'HIT',
        'set-cookie': ['a=1', 'b=2'],
        'content-type': 'text/plain',
      });
      res.end('cached');
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const port = (backend.address() as { port: number }).port;
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({
          'log-format-upstream':
            'uri=$request_uri up="$upstream_http_x_cache_status" sent="$sent_http_x_cache_status" cookies="$upstream_http_set_cookie"',
          // Hidden from the client, still the backend's: $upstream_http_ reads what the backend sent.
          'hide-headers': 'X-Cache-Status',
          'enable-access-log-for-default-backend': 'true',
        }),
        ...serviceWithEndpoints({ name: 'cache', ports: [port] }),
        ingress({
          name: 'cache',
          host: 'cache.example.com',
          paths: [{ path: '/', service: 'cache', port: 80 }],
        }),
      ]),
    );
  });
  after(async () => {
    await gw.close();
    backend.closeAllConnections();
    await new Promise((resolve) => backend.close(resolve));
  });

  test("the backend's head as it came, headers the client does not get included", async () => {
    const reply = await request(gw.httpPort, { host: 'cache.example.com', path: '/page' });
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['x-cache-status'], undefined);
    const fields = await lineOf(gw, '/page');
    assert.equal(fields.up, 'HIT');
    assert.equal(fields.sent, '-');
    assert.equal(fields.cookies, 'a=1, b=2');
    // A request the gateway answers itself has no backend head.
    await request(gw.httpPort, { host: 'unknown.example.com', path: '/none' });
    assert.equal((await lineOf(gw, '/none')).up, '-');
  });
});
