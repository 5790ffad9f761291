// PROXY protocol on the gateway's listeners (security invariants 1 and 2, rules G2/G3/G5/G7):
// headers from a trusted peer set the client address (allow lists and logs use it); an untrusted peer
// is closed and counted; a missing or broken header closes the connection without a response and
// logs why; a header sent to a listener that does not expect one is just a bad request (400).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { encodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
  webApp,
} from '../fixtures/gateway/manifests.ts';
import { rawExchange } from '../helpers/net.ts';

const LB = '127.0.0.10';
const ALLOWED = '203.0.113.7';
const DENIED = '203.0.113.8';

function httpRequest(path = '/'): string {
  return `GET ${path} HTTP/1.1\r\nHost: web.example.com\r\nAccept: application/json\r\nConnection: close\r\n\r\n`;
}

function v1(client: string, destinationPort = 80): Buffer {
  return encodeProxyHeader({
    version: 1,
    source: { address: client, port: 40000 },
    destination: { address: '10.0.0.1', port: destinationPort },
  });
}

function v2(client: string, destinationPort = 80): Buffer {
  return encodeProxyHeader({
    version: 2,
    source: { address: client, port: 40001 },
    destination: { address: '10.0.0.1', port: destinationPort },
  });
}

function statusOf(reply: Buffer): number {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(reply.toString('latin1'));
  return match ? Number(match[1]) : 0;
}

function echoHeaders(reply: Buffer): Record<string, string> {
  const text = reply.toString('utf8');
  return (JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { headers: Record<string, string> })
    .headers;
}

describe('gateway with use-proxy-protocol', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({
          'use-proxy-protocol': 'true',
          'proxy-real-ip-cidr': `${LB}/32`,
          'proxy-protocol-header-timeout': '1s',
        }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'web',
          host: 'web.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'allowlist-source-range': `${ALLOWED}/32` },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test("v1 from the trusted load balancer: the header's client reaches the backend and the access log", async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: LB,
      payload: Buffer.concat([v1(ALLOWED), Buffer.from(httpRequest('/v1'))]),
    });
    assert.equal(statusOf(reply.received), 200);
    const headers = echoHeaders(reply.received);
    assert.equal(headers['x-real-ip'], ALLOWED);
    assert.equal(headers['x-forwarded-for'], ALLOWED);
    await gw.access.waitFor(
      new RegExp(`^${ALLOWED.replaceAll('.', '\\.')} - - \\[.*"GET /v1 HTTP/1\\.1" 200`),
    );
  });

  test('v2 from the trusted load balancer, header and request in separate segments', async () => {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: gw.httpPort, localAddress: LB });
      const chunks: Buffer[] = [];
      socket.on('connect', () => {
        const header = v2(ALLOWED);
        socket.write(header.subarray(0, 7));
        setTimeout(() => socket.write(header.subarray(7)), 20);
        setTimeout(() => socket.write(httpRequest('/v2')), 40);
      });
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.on('error', reject);
    });
    assert.equal(statusOf(reply), 200);
    assert.equal(echoHeaders(reply)['x-real-ip'], ALLOWED);
  });

  test('the allowlist applies to the PROXY client: another client behind the same LB gets 403', async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: LB,
      payload: Buffer.concat([v2(DENIED), Buffer.from(httpRequest('/denied'))]),
    });
    assert.equal(statusOf(reply.received), 403);
    await gw.errors.waitFor(
      /access forbidden by rule, client: 203\.0\.113\.8, server: web\.example\.com, request: "GET \/denied HTTP\/1\.1"/,
    );
  });

  test('a PROXY destination port of 443 makes the forwarded scheme https', async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: LB,
      payload: Buffer.concat([v2(ALLOWED, 443), Buffer.from(httpRequest('/443'))]),
    });
    const headers = echoHeaders(reply.received);
    assert.equal(headers['x-forwarded-proto'], 'https');
    assert.equal(headers['x-forwarded-port'], '443');
  });

  test('an untrusted peer is closed without a response, counted, and logged, even with a valid header', async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: '127.0.0.11',
      payload: Buffer.concat([v2(ALLOWED), Buffer.from(httpRequest('/forged'))]),
    });
    assert.equal(reply.closedByServer, true);
    assert.equal(reply.received.length, 0);
    await gw.errors.waitFor(
      /PROXY protocol peer 127\.0\.0\.11 is not a trusted proxy .*client: 127\.0\.0\.11/,
    );
    const metrics = await gw.gateway.metrics.registry.metrics();
    assert.match(metrics, /keepip_gateway_proxy_headers_total\{result="rejected",reason="untrusted"\} [1-9]/);
    assert.match(metrics, /keepip_gateway_proxy_headers_total\{result="accepted",reason="ok"\} [1-9]/);
  });

  test('a trusted peer that sends HTTP without the expected header is closed without a response (G3)', async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: LB,
      payload: httpRequest('/no-header'),
    });
    assert.equal(reply.closedByServer, true);
    assert.equal(reply.received.length, 0);
    // nginx's words, with what was read quoted (nginx: `broken header: "GET / HTTP/1.1" while …`).
    await gw.errors.waitFor(
      /broken header: "GET \/no-header HTTP\/1\.1\\x0D\\x0AHost: [^"]*" while reading PROXY protocol.*client: 127\.0\.0\.10/,
    );
    assert.match(await gw.gateway.metrics.registry.metrics(), /reason="malformed"\} [1-9]/);
  });

  test('a trusted peer that sends nothing is closed after proxy-protocol-header-timeout (G4)', async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: LB,
      payload: '',
    });
    assert.equal(reply.closedByServer, true);
    await gw.errors.waitFor(/broken header: "" while reading PROXY protocol/);
  });

  test('PROXY v2 in front of TLS on the HTTPS listener', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const raw = net.connect({ host: '127.0.0.1', port: gw.httpsPort, localAddress: LB }, () => {
        raw.write(v2(ALLOWED, 443));
        const secure = tls.connect(
          { socket: raw, servername: 'web.example.com', rejectUnauthorized: false },
          () => {
            secure.write(httpRequest('/tls'));
          },
        );
        const chunks: Buffer[] = [];
        secure.on('data', (chunk: Buffer) => chunks.push(chunk));
        secure.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        secure.on('error', reject);
      });
      raw.on('error', reject);
    });
    assert.match(body, /^HTTP\/1\.1 200/);
    const headers = echoHeaders(Buffer.from(body));
    assert.equal(headers['x-real-ip'], ALLOWED);
    assert.equal(headers['x-forwarded-proto'], 'https');
  });
});

// ingress-nginx's template: with use-proxy-protocol and without use-forwarded-headers the real IP comes
// from the PROXY header only (real_ip_header proxy_protocol), enable-real-ip or not, so a client behind
// the load balancer cannot name itself with X-Forwarded-For (proxy_protocol.go sets both for TCP).
describe('gateway with use-proxy-protocol and enable-real-ip', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(
      topologyOf([
        controllerConfigMap({ 'use-proxy-protocol': 'true', 'enable-real-ip': 'true' }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'web',
          host: 'web.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'allowlist-source-range': `${ALLOWED}/32` },
        }),
      ]),
    );
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  const withForwardedFor = (path: string, forwardedFor: string) =>
    `GET ${path} HTTP/1.1\r\nHost: web.example.com\r\nAccept: application/json\r\nX-Forwarded-For: ${forwardedFor}\r\nConnection: close\r\n\r\n`;

  test("X-Forwarded-For does not replace the PROXY header's client: a denied client naming an allowed one is 403", async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: LB,
      payload: Buffer.concat([v1(DENIED), Buffer.from(withForwardedFor('/forged', ALLOWED))]),
    });
    assert.equal(statusOf(reply.received), 403);
    await gw.errors.waitFor(/access forbidden by rule, client: 203\.0\.113\.8, server: web\.example\.com/);
  });

  test("the PROXY header's client is the backend's X-Real-IP, whatever X-Forwarded-For says", async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: LB,
      payload: Buffer.concat([v1(ALLOWED), Buffer.from(withForwardedFor('/real', DENIED))]),
    });
    assert.equal(statusOf(reply.received), 200);
    const headers = echoHeaders(reply.received);
    assert.equal(headers['x-real-ip'], ALLOWED);
    assert.equal(headers['x-forwarded-for'], ALLOWED);
    assert.equal(headers['x-original-forwarded-for'], DENIED);
  });
});

describe('gateway without use-proxy-protocol', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(topologyOf([...webApp(backend.address.port)]));
  });

  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('a v1 header is never guessed: the request is a 400 and the log shows the PROXY line (G2)', async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      payload: Buffer.concat([v1('198.51.100.1'), Buffer.from(httpRequest())]),
    });
    assert.equal(statusOf(reply.received), 400);
    await gw.access.waitFor(
      /^127\.0\.0\.1 - - \[.*\] "PROXY TCP4 198\.51\.100\.1 10\.0\.0\.1 40000 80" 400 /,
    );
  });

  test('a v2 header is a 400 as well, and the client address stays the socket peer', async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: gw.httpPort,
      localAddress: '127.0.0.12',
      payload: Buffer.concat([v2('198.51.100.2'), Buffer.from(httpRequest())]),
    });
    assert.equal(statusOf(reply.received), 400);
    await gw.access.waitFor(/^127\.0\.0\.12 - - \[.*\] "\\x00" 400 /);
  });
});
