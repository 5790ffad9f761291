// Attacks on rate and connection limits (limit-rps, limit-rpm, limit-burst-multiplier,
// limit-connections, limit-allowlist, limit-rate, limit-rate-after, the ConfigMap's
// limit-req-status-code, limit-conn-status-code and max-worker-connections) from the outside:
//   identity: does the key follow the real client (forwarded headers from untrusted and trusted peers,
//     the PROXY source, the IPv4-mapped spelling of one address)?
//   transport: pipelined HTTP/1.1, HTTP/2 streams on one connection, WebSocket upgrades;
//   accounting: a limit-connections slot comes back however a request ends (client abort, RST_STREAM,
//     abandoned body, backend reset or timeout, refusal by the allowlist or the auth service);
//   answers: the two status codes are not crossed, an invalid allowlist exempts no one;
//   limit-rate: not on request bodies, not dodged by HTTP/2 or gzip, backpressure rather than memory;
//   max-worker-connections: both listeners and TLS handshakes not yet begun count.
// limit-rpm 1 × limit-burst-multiplier 1 admits two requests per key at once and leaks one a minute, so
// [200, 200, refused] is "limited" and nothing refills during a test. Slots are awaited on the access log
// line of the request that held them (written as the slot is released), never on time.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Server, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { connectH2 } from '../helpers/h2-client.ts';
import { completeResponses, openRaw } from '../helpers/net.ts';
import { counterValue, exchange, httpRequest } from './helpers.ts';

/** What /stream offers: far more than any socket buffers on the way can hold. */
const STREAM_OFFER = 128 * 1024 * 1024;
/** Incompressible, so gzip cannot shrink what limit-rate has to pace. */
const RANDOM = randomBytes(48 * 1024);

interface Holder {
  port: number;
  /** Paths whose request head reached the backend, in arrival order. */
  seen: string[];
  arrived(path: string): Promise<void>;
  /** Answers the held request for `path` (paths under /hold are held until then). */
  answer(path: string): void;
  /** Bytes /stream has handed to its socket so far. */
  streamed(): number;
  close(): Promise<void>;
}

/** A bounded wait for `ready`, checked at every `notify()`; rejects after `timeoutMs`. */
function signal() {
  const waiters = new Set<() => void>();
  return {
    notify: () => {
      for (const w of [...waiters]) w();
    },
    wait(ready: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!ready()) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

/** /stream: STREAM_OFFER bytes, written only as fast as the socket drains (counted in `count`). */
function pump(res: ServerResponse, count: (n: number) => number): void {
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': STREAM_OFFER });
  const more = () => {
    while (count(0) < STREAM_OFFER) {
      count(chunk.length);
      if (!res.write(chunk)) {
        res.once('drain', more);
        return;
      }
    }
    res.end();
  };
  more();
}

/** The backend: holds /hold*, streams /stream, sends RANDOM on /random, else echoes the body length. */
async function startHolder(): Promise<Holder> {
  const seen: string[] = [];
  const held = new Map<string, ServerResponse>();
  const arrivals = signal();
  let streamed = 0;
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    seen.push(path);
    arrivals.notify();
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
    });
    req.on('error', () => {});
    res.on('error', () => {});
    req.on('end', () => {
      if (path.startsWith('/hold')) held.set(path, res);
      else if (path === '/stream') pump(res, (n) => (streamed += n));
      else if (path === '/random')
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': RANDOM.length }).end(RANDOM);
      else {
        const body = JSON.stringify({ path, bytes });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    arrived: (path) => arrivals.wait(() => seen.includes(path), `${path} at the backend`),
    answer(path) {
      held.get(path)?.writeHead(200, { 'content-length': 4 }).end('done');
      held.delete(path);
    },
    streamed: () => streamed,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A TCP server that resets every connection once it has read something: the backend's 502. */
async function startResetter(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.resetAndDestroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** An auth service that refuses everyone with 401. */
async function startRefusingAuth(): Promise<Server> {
  const server = http.createServer((_req, res) => res.writeHead(401).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const portOf = (server: net.Server | Server) => (server.address() as AddressInfo).port;
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let holder: Holder;
/** One backend per limit-rate test: a paced response can leave its upstream connection paused (see below). */
const sinks: Record<'upload' | 'rate' | 'stream', Holder | null> = { upload: null, rate: null, stream: null };
let whoami: RunningWhoami;
let resetter: net.Server;
let auth: Server;
const gateways: TestGateway[] = [];

before(async () => {
  holder = await startHolder();
  for (const name of ['upload', 'rate', 'stream'] as const) sinks[name] = await startHolder();
  whoami = await startWhoami({ host: '127.0.0.1', port: 0 });
  resetter = await startResetter();
  auth = await startRefusingAuth();
});

after(async () => {
  for (const gw of gateways) await gw.close();
  await holder?.close();
  for (const sink of Object.values(sinks)) await sink?.close();
  await whoami?.close();
  resetter?.close();
  auth?.close();
});

/** The backends as Services: holder, whoami, reset. */
function services(): K8sObject[] {
  return [
    ...serviceWithEndpoints({ name: 'holder', ports: [holder.port] }),
    ...serviceWithEndpoints({ name: 'whoami', ports: [whoami.address.port] }),
    ...serviceWithEndpoints({ name: 'reset', ports: [portOf(resetter)] }),
  ];
}

/** An Ingress for `<name>.example.com`/ to `service`. */
function site(name: string, service: string, annotations: Record<string, string>): K8sObject {
  return ingress({
    name,
    host: `${name}.example.com`,
    paths: [{ path: '/', service, port: 80 }],
    annotations,
  });
}

const RPM_1: Record<string, string> = { 'limit-rpm': '1', 'limit-burst-multiplier': '1' };
const CONN_1: Record<string, string> = { 'limit-connections': '1' };

async function gatewayOf(
  objects: K8sObject[],
  options: Parameters<typeof startTestGateway>[1] = {},
): Promise<TestGateway> {
  const gw = await startTestGateway(topologyOf(objects), options);
  gateways.push(gw);
  return gw;
}

/** The main gateway: limit-conn-status-code 429, limit-req-status-code left at 503. */
let main: TestGateway | null = null;
async function mainGateway(): Promise<TestGateway> {
  main ??= await gatewayOf([
    controllerConfigMap({ 'limit-conn-status-code': '429', 'use-gzip': 'true' }),
    ...services(),
    ...(['upload', 'rate', 'stream'] as const).flatMap((name) =>
      serviceWithEndpoints({ name: `sink-${name}`, ports: [sinks[name]!.port] }),
    ),
    site('rpm', 'holder', RPM_1),
    site('conn', 'holder', CONN_1),
    site('streamed', 'holder', { ...CONN_1, 'proxy-request-buffering': 'off' }),
    site('ws', 'whoami', CONN_1),
    site('broken', 'reset', CONN_1),
    site('slow', 'holder', { ...CONN_1, 'proxy-read-timeout': '1' }),
    site('deny', 'whoami', { ...CONN_1, 'whitelist-source-range': '10.0.0.0/8' }),
    site('authz', 'whoami', { ...CONN_1, 'auth-url': `http://127.0.0.1:${portOf(auth)}/` }),
    site('codes', 'holder', { ...RPM_1, ...CONN_1 }),
    site('badlist', 'whoami', { ...RPM_1, 'limit-allowlist': '127.0.90.1/32, 10.0.0.0/33' }),
    site('upload', 'sink-upload', { 'limit-rate': '1', 'limit-rate-after': '0', 'proxy-body-size': '8m' }),
    site('rate', 'sink-rate', { 'limit-rate': '16', 'limit-rate-after': '0' }),
    site('trickle', 'sink-stream', { 'limit-rate': '64', 'limit-rate-after': '0' }),
  ]);
  return main;
}

/** Status of one HTTP/1.1 request on a fresh connection. */
async function statusOf(
  gw: TestGateway,
  from: string,
  host: string,
  path = '/',
  headers: Record<string, string> = {},
): Promise<number> {
  return (await request(gw.httpPort, { from, host: `${host}.example.com`, path, headers })).status;
}

/** The access log line of `path` (written when its exchange ends and its slot is given back). */
function logged(gw: TestGateway, path: string): Promise<string> {
  return gw.access.waitFor(new RegExp(`${escapeRegExp(path)} HTTP/`));
}

describe('identity: the limit follows the real client', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayOf([
      controllerConfigMap({
        'use-forwarded-headers': 'true',
        'proxy-real-ip-cidr': '127.0.70.1/32',
        'limit-req-status-code': '429',
      }),
      ...services(),
      site('fwd', 'holder', { ...RPM_1, 'limit-allowlist': '203.0.113.77/32' }),
    ]);
  });
  const viaXff = (from: string, xff: string) => statusOf(gw, from, 'fwd', '/', { 'x-forwarded-for': xff });

  test('use-forwarded-headers on, a peer outside proxy-real-ip-cidr: forged X-Forwarded-For, X-Real-IP and Forwarded neither refill its bucket, nor name an exempt address, nor charge the named client', async () => {
    const forged = (ip: string) => ({ 'x-forwarded-for': ip, 'x-real-ip': ip, forwarded: `for=${ip}` });
    const statuses = [];
    for (const ip of ['203.0.113.10', '203.0.113.11', '203.0.113.77', '203.0.113.12'])
      statuses.push(await statusOf(gw, '127.0.70.2', 'fwd', '/', forged(ip)));
    assert.deepEqual(statuses, [200, 200, 429, 429]);
    // 203.0.113.10, reaching the gateway through the trusted proxy, has a bucket nobody touched.
    assert.deepEqual(
      [await viaXff('127.0.70.1', '203.0.113.10'), await viaXff('127.0.70.1', '203.0.113.10')],
      [200, 200],
    );
  });

  test('behind the trusted proxy: the right-most untrusted X-Forwarded-For entry is the key; entries the client prepends and the IPv4-mapped spelling change nothing', async () => {
    const trusted = (xff: string) => viaXff('127.0.70.1', xff);
    assert.deepEqual([await trusted('203.0.113.1'), await trusted('203.0.113.1')], [200, 200]);
    // The client prepends an address of its choosing; the proxy appended the real one.
    assert.equal(await trusted('198.51.100.9, 203.0.113.1'), 429);
    assert.equal(await trusted('::ffff:203.0.113.1'), 429, 'the IPv4-mapped spelling is the same client');
    assert.equal(await trusted('203.0.113.2'), 200, 'another client has its own bucket');
    // limit-allowlist matches the resolved client, not the proxy.
    const exempt = [];
    for (let i = 0; i < 3; i++) exempt.push(await trusted('203.0.113.77'));
    assert.deepEqual(exempt, [200, 200, 200]);
  });

  test("use-proxy-protocol: the PROXY source of a trusted peer is the key; an untrusted peer's PROXY header charges no one", async () => {
    const pp = await gatewayOf([
      controllerConfigMap({
        'use-proxy-protocol': 'true',
        'proxy-real-ip-cidr': '127.0.60.1/32',
        'limit-req-status-code': '429',
      }),
      ...services(),
      ingress({
        name: 'pp',
        host: 'app.example.com',
        paths: [{ path: '/', service: 'holder', port: 80 }],
        annotations: RPM_1,
      }),
    ]);
    const via = async (from: string, source: string) =>
      (await exchange(pp.httpPort, from, httpRequest('/'), `PROXY TCP4 ${source} 127.0.0.1 40000 80\r\n`))
        .status;
    const trustedRun = [];
    for (let i = 0; i < 3; i++) trustedRun.push(await via('127.0.60.1', '198.51.100.1'));
    assert.deepEqual(trustedRun, [200, 200, 429]);
    assert.equal(await via('127.0.60.1', '198.51.100.2'), 200);
    // An untrusted peer's PROXY header is refused outright (keepip closes; nginx would parse it and key
    // on the peer): whatever source it names, nothing is served and nobody is charged.
    for (const source of ['198.51.100.2', '198.51.100.4', '198.51.100.2']) {
      const reply = await exchange(
        pp.httpPort,
        '127.0.60.2',
        httpRequest('/'),
        `PROXY TCP4 ${source} 127.0.0.1 40000 80\r\n`,
      );
      assert.equal(reply.status, 0);
      assert.ok(reply.closedByServer);
    }
    // 198.51.100.2 has exactly the one request left that its own first request did not use.
    assert.deepEqual(
      [await via('127.0.60.1', '198.51.100.2'), await via('127.0.60.1', '198.51.100.2')],
      [200, 429],
    );
  });

  test('::ffff:127.0.50.1 on a dual-stack listener and 127.0.50.1 on an IPv4 one are one client (one bucket), and limit-allowlist 127.0.51.0/24 exempts the mapped form', async () => {
    const dual = await gatewayOf(
      [
        controllerConfigMap({ 'limit-req-status-code': '429' }),
        ...services(),
        site('dual', 'holder', { ...RPM_1, 'limit-allowlist': '127.0.51.0/24' }),
      ],
      { http: { host: '::', port: 0 } },
    );
    assert.equal(dual.gateway.httpAddress?.family, 'IPv6');
    // Over the dual-stack listener the peer is ::ffff:127.0.50.1; over TLS (IPv4 listener) 127.0.50.1.
    assert.deepEqual(
      [await statusOf(dual, '127.0.50.1', 'dual'), await statusOf(dual, '127.0.50.1', 'dual')],
      [200, 200],
    );
    const h2 = await connectH2({ port: dual.httpsPort, from: '127.0.50.1', host: 'dual.example.com' });
    try {
      assert.equal((await h2.request('/')).status, 429);
    } finally {
      await h2.close();
    }
    const exempt = [];
    for (let i = 0; i < 3; i++) exempt.push(await statusOf(dual, '127.0.51.1', 'dual'));
    assert.deepEqual(exempt, [200, 200, 200]);
  });
});

describe('transport: every request is counted, however it arrives', () => {
  test('pipelined HTTP/1.1: three requests in one write to limit-rpm 1 × 1 get 200, 200, 503', async () => {
    const gw = await mainGateway();
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.31.1' });
    const one = (i: number, last = false) =>
      `GET /pipe-${i} HTTP/1.1\r\nHost: rpm.example.com\r\n${last ? 'Connection: close\r\n' : ''}\r\n`;
    conn.socket.write(one(1) + one(2) + one(3, true));
    const raw = await conn.until((b) => completeResponses(b) >= 3);
    conn.destroy();
    const statuses = [...raw.toString('latin1').matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [200, 200, 503]);
    assert.ok(!holder.seen.includes('/pipe-3'), 'the refused request reached the backend');
  });

  test('HTTP/2: three streams at once on one connection to limit-rpm 1 × 1: two admitted, one refused', async () => {
    const gw = await mainGateway();
    const h2 = await connectH2({ port: gw.httpsPort, from: '127.0.32.1', host: 'rpm.example.com' });
    try {
      const replies = await Promise.all([1, 2, 3].map((i) => h2.request(`/h2rate-${i}`)));
      assert.deepEqual(replies.map((r) => r.status).sort(), [200, 200, 503]);
    } finally {
      await h2.close();
    }
  });

  test('HTTP/2: limit-connections 1 counts streams, not connections: a second stream is refused (429) while the first is in flight', async () => {
    const gw = await mainGateway();
    const h2 = await connectH2({ port: gw.httpsPort, from: '127.0.33.1', host: 'conn.example.com' });
    try {
      const first = h2.request('/hold/h2-1');
      await holder.arrived('/hold/h2-1');
      assert.equal((await h2.request('/h2-2')).status, 429);
      holder.answer('/hold/h2-1');
      assert.equal((await first).status, 200);
      assert.ok(!holder.seen.includes('/h2-2'));
    } finally {
      await h2.close();
    }
  });

  test('WebSocket: an open upgrade holds its limit-connections slot; once it ends, the slot is free', async () => {
    const gw = await mainGateway();
    const ws = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.34.1' });
    ws.socket.write(
      'GET /ws-1 HTTP/1.1\r\nHost: ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const head = await ws.until((b) => b.includes('\r\n\r\n'));
    assert.match(head.toString('latin1'), /^HTTP\/1\.1 101 /);
    assert.equal(await statusOf(gw, '127.0.34.1', 'ws', '/during'), 429);
    ws.destroy();
    await logged(gw, '/ws-1');
    assert.equal(await statusOf(gw, '127.0.34.1', 'ws', '/after'), 200);
  });
});

describe('accounting: a limit-connections slot always comes back', () => {
  test('five HTTP/1.1 clients that abort while the backend holds their request leave the slot free', async () => {
    const gw = await mainGateway();
    for (let i = 1; i <= 5; i++) {
      const path = `/hold/abort-${i}`;
      const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.35.1' });
      conn.socket.write(`GET ${path} HTTP/1.1\r\nHost: conn.example.com\r\n\r\n`);
      await holder.arrived(path);
      if (i === 1)
        assert.equal(await statusOf(gw, '127.0.35.1', 'conn', '/locked'), 429, 'the slot is taken');
      conn.destroy();
      await logged(gw, path);
    }
    assert.equal(await statusOf(gw, '127.0.35.1', 'conn', '/after-aborts'), 200);
  });

  test('five HTTP/2 streams the client resets (RST_STREAM CANCEL) leave the slot free', async () => {
    const gw = await mainGateway();
    const h2 = await connectH2({ port: gw.httpsPort, from: '127.0.36.1', host: 'conn.example.com' });
    try {
      for (let i = 1; i <= 5; i++) {
        const path = `/hold/rst-${i}`;
        const stream = h2.session.request({ ':method': 'GET', ':path': path });
        stream.on('error', () => {});
        await holder.arrived(path);
        stream.close(http2.constants.NGHTTP2_CANCEL);
        await logged(gw, path);
      }
      assert.equal((await h2.request('/after-rst')).status, 200);
    } finally {
      await h2.close();
    }
  });

  test('three request bodies abandoned halfway (proxy-request-buffering off) leave the slot free', async () => {
    const gw = await mainGateway();
    for (let i = 1; i <= 3; i++) {
      const path = `/hold-body-${i}`;
      const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.37.1' });
      conn.socket.write(
        `POST ${path} HTTP/1.1\r\nHost: streamed.example.com\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`,
      );
      await holder.arrived(path);
      conn.destroy();
      await logged(gw, path);
    }
    assert.equal(await statusOf(gw, '127.0.37.1', 'streamed', '/after-bodies'), 200);
  });

  test('a backend that resets (502) or times out (504, proxy-read-timeout 1) gives the slot back', async () => {
    const gw = await mainGateway();
    const resets = [];
    for (let i = 0; i < 3; i++) resets.push(await statusOf(gw, '127.0.38.1', 'broken', `/reset-${i}`));
    assert.deepEqual(resets, [502, 502, 502]);
    assert.equal(await statusOf(gw, '127.0.38.2', 'slow', '/hold/timeout-1'), 504);
    assert.equal(await statusOf(gw, '127.0.38.2', 'slow', '/after-timeout'), 200);
  });

  test('requests refused after the limits (whitelist-source-range 403, auth-url 401) give the slot back each time', async () => {
    const gw = await mainGateway();
    const denied = [];
    const unauthorized = [];
    for (let i = 0; i < 4; i++) {
      denied.push(await statusOf(gw, '127.0.39.1', 'deny', `/deny-${i}`));
      unauthorized.push(await statusOf(gw, '127.0.39.2', 'authz', `/authz-${i}`));
    }
    assert.deepEqual(denied, [403, 403, 403, 403]);
    assert.deepEqual(unauthorized, [401, 401, 401, 401]);
  });
});

describe('answers and limit-allowlist', () => {
  test('limit-conn-status-code 429 and the default limit-req-status-code 503 are not crossed; refused requests never reach the backend', async () => {
    const gw = await mainGateway();
    const first = request(gw.httpPort, {
      from: '127.0.40.1',
      host: 'codes.example.com',
      path: '/hold/codes',
    });
    await holder.arrived('/hold/codes');
    // limit_req admits it (burst 1) and charges it; limit_conn refuses it.
    const second = await request(gw.httpPort, {
      from: '127.0.40.1',
      host: 'codes.example.com',
      path: '/codes-2',
    });
    assert.equal(second.status, 429);
    assert.match(second.body, /429 Too Many Requests/);
    // Now the bucket is over its burst: limit_req refuses first.
    assert.equal(await statusOf(gw, '127.0.40.1', 'codes', '/codes-3'), 503);
    holder.answer('/hold/codes');
    assert.equal((await first).status, 200);
    assert.ok(!holder.seen.includes('/codes-2') && !holder.seen.includes('/codes-3'));
  });

  test('a limit-allowlist with one invalid CIDR among valid ones fails closed: 503 for every client, the listed one included', async () => {
    const gw = await mainGateway();
    assert.equal(await statusOf(gw, '127.0.90.1', 'badlist'), 503);
    assert.equal(await statusOf(gw, '127.0.90.2', 'badlist'), 503);
  });
});

describe('limit-rate and limit-rate-after', () => {
  test('limit-rate does not throttle the request body: a 2 MiB upload to limit-rate 1 (1 KB/s) arrives whole at once', async () => {
    const gw = await mainGateway();
    const body = Buffer.alloc(2 * 1024 * 1024, 0x62);
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error('the upload was paced (2 MiB at 1 KB/s is 34 minutes)')),
        15_000,
      );
    });
    const sent = request(gw.httpPort, {
      from: '127.0.41.1',
      host: 'upload.example.com',
      method: 'POST',
      path: '/upload',
      body,
    });
    try {
      const reply = await Promise.race([sent, bound]);
      assert.equal(reply.status, 200);
      assert.equal((JSON.parse(reply.body) as { bytes: number }).bytes, body.length);
    } finally {
      clearTimeout(timer);
    }
  });

  test('limit-rate 16 (KB/s) paces a 48 KiB response the backend sends in one piece: at least 1.9 s over HTTP/1.1, HTTP/2 and with gzip', async () => {
    const gw = await mainGateway();
    const timed = async (run: () => Promise<{ status: number; length: number; encoding: unknown }>) => {
      const started = performance.now();
      const reply = await run();
      return { ...reply, ms: performance.now() - started };
    };
    const h1 = (from: string, headers: Record<string, string>) => () =>
      request(gw.httpPort, { from, host: 'rate.example.com', path: '/random', headers }).then((r) => ({
        status: r.status,
        length: Buffer.byteLength(r.body, 'latin1'),
        encoding: r.headers['content-encoding'],
      }));
    const h2 = await connectH2({ port: gw.httpsPort, from: '127.0.42.3', host: 'rate.example.com' });
    try {
      const [plain, gzip, overH2] = await Promise.all([
        timed(h1('127.0.42.1', {})),
        timed(h1('127.0.42.2', { 'accept-encoding': 'gzip' })),
        timed(() =>
          h2
            .request('/random')
            .then((r) => ({ status: r.status, length: r.body.length, encoding: undefined })),
        ),
      ]);
      assert.deepEqual([plain.status, gzip.status, overH2.status], [200, 200, 200]);
      assert.equal(gzip.encoding, 'gzip', 'the gzip path was not taken');
      assert.equal(overH2.length, RANDOM.length);
      // Lower bounds only (nginx: ~2 s, one rate's worth a second from the start; keepip's budget: 3 s).
      const took = { plain: Math.round(plain.ms), gzip: Math.round(gzip.ms), h2: Math.round(overH2.ms) };
      assert.ok(
        plain.ms >= 1_900 && gzip.ms >= 1_900 && overH2.ms >= 1_900,
        `took ${JSON.stringify(took)} ms`,
      );
    } finally {
      await h2.close();
    }
  });

  test('a paced limit-rate response leaves no paused backend connection behind: the next client on that backend is answered, not held 60 s into a 504', async () => {
    // Its own backend and gateway, so the one idle upstream connection is surely the one reused.
    const backend = await startHolder();
    try {
      const gw = await gatewayOf([
        ...serviceWithEndpoints({ name: 'fresh', ports: [backend.port] }),
        site('paced', 'fresh', { 'limit-rate': '1', 'limit-rate-after': '0' }),
        site('plain', 'fresh', {}),
      ]);
      // The attacker: ~30 bytes at 1 KB/s, so the body ends while the pacing still holds the backend.
      assert.equal(await statusOf(gw, '127.0.45.1', 'paced', '/small'), 200);
      await logged(gw, '/small');
      // The victim, given up after a bound (the gateway would hold it for proxy-read-timeout, 60 s).
      const victim = await new Promise<number>((resolve) => {
        const req = http.get(
          {
            host: '127.0.0.1',
            port: gw.httpPort,
            path: '/victim',
            localAddress: '127.0.45.2',
            agent: false,
            headers: { host: 'plain.example.com' },
          },
          (res) => {
            res.resume();
            res.on('end', () => {
              clearTimeout(timer);
              resolve(res.statusCode ?? 0);
            });
          },
        );
        req.on('error', () => resolve(0));
        const timer = setTimeout(() => {
          req.destroy();
          resolve(0);
        }, 3_000);
      });
      assert.equal(victim, 200, `the next client got ${victim === 0 ? 'nothing within 3 s' : victim}`);
    } finally {
      await backend.close();
    }
  });

  test('a client that reads nothing of a limit-rate 64 response: the backend is held back, not buffered in the gateway', async () => {
    const gw = await mainGateway();
    const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.43.1' });
    conn.socket.write('GET /stream HTTP/1.1\r\nHost: trickle.example.com\r\n\r\n');
    conn.socket.pause();
    const sink = sinks.stream!;
    await sink.arrived('/stream');
    // An absence, so a bounded window: a gateway that buffers takes /stream's 64 MB in well under a
    // second over loopback; one that applies backpressure stops at its socket buffers (tens of MB at most).
    const limit = STREAM_OFFER / 2;
    const watch = signal();
    const tick = setInterval(watch.notify, 20);
    const overran = await watch
      .wait(() => sink.streamed() >= limit, 'an overrun', 1_500)
      .then(() => true)
      .catch(() => false);
    clearInterval(tick);
    conn.destroy();
    assert.equal(overran, false, `the gateway took ${sink.streamed()} bytes for a client that read nothing`);
  });
});

describe('max-worker-connections', () => {
  test('the cap counts both listeners and TLS handshakes not yet begun: a third connection (HTTP/2 over TLS) is closed at once and counted', async () => {
    const gw = await gatewayOf([
      controllerConfigMap({ 'max-worker-connections': '2' }),
      ...services(),
      site('web', 'holder', {}),
    ]);
    const pendingTls = await openRaw({ host: '127.0.0.1', port: gw.httpsPort, localAddress: '127.0.44.1' });
    const idle = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.44.2' });
    const serving = gw.gateway.metrics.serving;
    const accepted = signal();
    const tick = setInterval(accepted.notify, 5);
    try {
      await accepted.wait(() => serving.accepted >= 2, 'the two connections accepted');
    } finally {
      clearInterval(tick);
    }
    await assert.rejects(connectH2({ port: gw.httpsPort, from: '127.0.44.3', host: 'web.example.com' }));
    assert.equal(
      await counterValue(gw.gateway, 'keepip_gateway_connections_closed_total', {
        reason: 'max_connections',
      }),
      1,
    );
    assert.equal(serving.handled, 2);
    pendingTls.destroy();
    idle.destroy();
  });
});
