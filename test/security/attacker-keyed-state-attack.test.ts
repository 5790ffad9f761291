// Attacks on state keyed by what an outsider chooses (Host, SNI, :authority, path, query, method,
// headers, request ids, tokens, the client address): does memory, a metric's series or a table grow
// with the number of distinct keys sent, and do the bounded ones evict safely? nginx's answers are the
// yardstick: shared-memory zones of fixed size with LRU eviction (limit_req, the auth proxy_cache),
// Prometheus labels from Ingress rules (ingress-nginx's --metrics-per-host keeps only hosts a rule
// names), and no keep-alive to an auth-url unless auth-keepalive asks for it (and never when the URL's
// host holds a variable). Many distinct keys are sent over real sockets: pipelined HTTP/1.1 on one
// keep-alive connection, HTTP/2 streams, distinct SNI names and 127.x sources; every wait is on an
// answer or a connection event.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createDecisionLog } from '../../src/gateway/decision-log.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { pollUntil } from '../helpers/descriptors.ts';
import { connectH2 } from '../helpers/h2-client.ts';
import { openRaw } from '../helpers/net.ts';

let backend: RunningWhoami;
const gateways: TestGateway[] = [];

before(async () => {
  backend = await startWhoami({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  for (const gw of gateways) await gw.close();
  await backend?.close();
});

async function gatewayOf(objects: K8sObject[], options: Parameters<typeof startTestGateway>[1] = {}) {
  const gw = await startTestGateway(topologyOf(objects), options);
  gateways.push(gw);
  return gw;
}

/** Counts whole HTTP/1.1 responses as they arrive (Content-Length or chunked bodies), keeping statuses. */
class ResponseReader {
  readonly statuses: number[] = [];
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    for (;;) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buf.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      let next: number;
      if (status < 200 || status === 204 || status === 304) next = end + 4;
      else if (length !== null) next = end + 4 + Number(length[1]);
      else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        const last = this.#buf.indexOf('\r\n0\r\n\r\n', end);
        if (last < 0) return;
        next = last + 7;
      } else throw new Error(`unframed response: ${head}`);
      if (next > this.#buf.length) return;
      this.statuses.push(status);
      this.#buf = this.#buf.subarray(next);
    }
  }
}

/** keepalive_requests is 1000, as nginx's: a connection carries fewer than that here. */
const PER_CONNECTION = 900;

/**
 * Sends `requests` pipelined on keep-alive connections from `from` (a new one every PER_CONNECTION
 * requests), `batch` at a time (each batch once the previous one was answered whole); resolves with
 * every status in order.
 */
async function pipelined(port: number, requests: readonly string[], from = '127.0.0.1', batch = 150) {
  const statuses: number[] = [];
  for (let at = 0; at < requests.length; at += PER_CONNECTION)
    statuses.push(...(await onOneConnection(port, requests.slice(at, at + PER_CONNECTION), from, batch)));
  return statuses;
}

async function onOneConnection(port: number, requests: readonly string[], from: string, batch: number) {
  const conn = await openRaw({ host: '127.0.0.1', port, localAddress: from });
  const reader = new ResponseReader();
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  conn.socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    notify();
  });
  conn.socket.on('close', notify);
  const answered = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${reader.statuses.length}/${count} answers`)), 20_000);
      const check = () => {
        if (reader.statuses.length >= count) finish(null);
        else if (conn.closed()) finish(new Error(`closed after ${reader.statuses.length}/${count} answers`));
      };
      const finish = (error: Error | null) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error === null) resolve();
        else reject(error);
      };
      waiters.add(check);
      check();
    });
  try {
    for (let at = 0; at < requests.length; at += batch) {
      const slice = requests.slice(at, at + batch);
      conn.socket.write(Buffer.from(slice.join(''), 'latin1'));
      await answered(at + slice.length);
    }
  } finally {
    conn.destroy();
  }
  return reader.statuses;
}

function get(host: string, path: string, headers: Record<string, string> = {}): string {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra.join('')}\r\n`;
}

/** The series (sample lines) of `name` in the gateway's /metrics text. */
async function seriesOf(gw: TestGateway, name: string): Promise<string[]> {
  const text = await gw.gateway.metrics.registry.metrics();
  return text.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

async function metricsText(gw: TestGateway): Promise<string> {
  return gw.gateway.metrics.registry.metrics();
}

/** Every sample line of the text, values dropped: what a scraper stores as distinct series. */
function seriesNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n'))
    if (line !== '' && !line.startsWith('#')) out.add(line.slice(0, line.lastIndexOf(' ')));
  return out;
}

describe('metric label sets come from the configuration, never from request data', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayOf([
      ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
      ingress({
        name: 'exact',
        host: 'app.example.com',
        paths: [{ path: '/api', service: 'web', port: 80 }],
      }),
      ingress({ name: 'wild', host: '*.example.com', paths: [{ path: '/', service: 'web', port: 80 }] }),
      ingress({ name: 'open', paths: [{ path: '/open', service: 'web', port: 80 }] }),
    ]);
  });

  /** One request of each kind an outsider can vary, the i-th distinct value of every key. */
  const mix = (i: number): string[] => {
    const h = { 'x-request-id': `rid-${i}`, cookie: `sess=ck-${i}`, 'user-agent': `ua-${i}` };
    return [
      get(`wild-${i}.example.com`, `/p-${i}?q=${i}`, h),
      get(`rogue-${i}.test`, `/open/p-${i}?q=${i}`, h),
      get(`nowhere-${i}.invalid`, `/nomatch-${i}`, h),
      get('app.example.com', `/api/p-${i}?q=${i}`, h),
      get(`app.example.com:${1000 + (i % 60000)}`, `/api/x-${i}`, h),
      `DELETE /p-${i} HTTP/1.1\r\nHost: wild-${i}.example.com\r\n\r\n`,
    ];
  };

  test('4,000 HTTP/1.1 requests with distinct Host, path, query, X-Request-ID, Cookie and User-Agent add no series to /metrics', async () => {
    // One of each kind first: every series these requests can ever make exists from here on.
    const warm = await pipelined(gw.httpPort, mix(0));
    assert.deepEqual(warm, [200, 200, 404, 200, 200, 200]);
    const before = seriesNames(await metricsText(gw));
    const requests: string[] = [];
    for (let i = 1; i <= 666; i++) requests.push(...mix(i));
    const statuses = await pipelined(gw.httpPort, requests);
    assert.equal(statuses.length, requests.length);
    const text = await metricsText(gw);
    const grown = [...seriesNames(text)].filter((s) => !before.has(s));
    assert.deepEqual(grown, [], 'series one per distinct request value');
    assert.doesNotMatch(text, /wild-\d|rogue-\d|nowhere-\d|p-\d|nomatch-\d|rid-\d|ck-\d|ua-\d/);
    // The host label holds names rules write (the wildcard as written), never a client's Host.
    const hosts = new Set(
      (await seriesOf(gw, 'nginx_ingress_controller_requests')).map((l) => /host="([^"]*)"/.exec(l)?.[1]),
    );
    for (const host of hosts) assert.ok(['app.example.com', '*.example.com'].includes(host ?? ''), host);
    const gatewayHosts = new Set(
      (await seriesOf(gw, 'keepip_gateway_requests_total')).map((l) => /host="([^"]*)"/.exec(l)?.[1]),
    );
    for (const host of gatewayHosts)
      assert.ok(['app.example.com', '*.example.com', '_'].includes(host ?? ''), host);
  });

  test('HTTP/2: 150 connections with distinct SNI and :authority, 300 invented methods: no series per name or method', async () => {
    const conn = await connectH2({ port: gw.httpsPort, host: 'warm.example.com' });
    // The backend (node:http) answers 400 to a method it does not know: the gateway passed it on.
    assert.equal((await conn.request('/p', { method: 'PURGE' })).status, 200);
    assert.equal((await conn.request('/p', { method: 'XMWARM' })).status, 400);
    await conn.close();
    const before = seriesNames(await metricsText(gw));
    const letters = (i: number) =>
      [...i.toString(26)].map((d) => String.fromCharCode(65 + parseInt(d, 26))).join('');
    for (let c = 0; c < 150; c++) {
      const h2 = await connectH2({ port: gw.httpsPort, host: `sni-${c}.example.com` });
      const replies = await Promise.all([
        h2.request(`/q-${c}`, { method: `XM-${letters(2 * c)}` }),
        h2.request(`/q-${c}`, { method: `XM_${letters(2 * c + 1)}` }),
      ]);
      assert.deepEqual(
        replies.map((r) => r.status),
        [400, 400],
      );
      await h2.close();
    }
    const text = await metricsText(gw);
    const grown = [...seriesNames(text)].filter((s) => !before.has(s));
    assert.deepEqual(grown, [], 'series one per distinct SNI, :authority or method');
    assert.doesNotMatch(text, /sni-\d|XM-|XM_|q-\d/);
  });
});

describe("the dashboard's memory of who was denied", () => {
  const TRUSTED = { 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '127.0.0.1/32' };

  /** A gateway behind a trusted proxy (127.0.0.1) whose one Ingress admits 10.0.0.0/8 only. */
  async function deniedGateway() {
    const log = createDecisionLog();
    const gw = await gatewayOf(
      [
        controllerConfigMap(TRUSTED),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'web',
          host: 'app.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'whitelist-source-range': '10.0.0.0/8' },
        }),
      ],
      { decisions: log.sink },
    );
    const from = (client: string, path = '/') => get('app.example.com', path, { 'x-forwarded-for': client });
    return { log, gw, from };
  }

  test('12,000 denied clients with distinct addresses: the records and the denied-address table stay at their sizes', async () => {
    const { log, gw, from } = await deniedGateway();
    const requests = Array.from({ length: 12_000 }, (_, i) => from(`100.64.${i >> 8}.${i & 255}`, `/d-${i}`));
    const statuses = await pipelined(gw.httpPort, requests);
    assert.equal(statuses.filter((s) => s === 403).length, 12_000);
    assert.equal(log.counters.denied, 12_000);
    assert.ok(log.records().length <= log.capacity, `${log.records().length} records`);
    assert.ok(log.topDenied(1_000_000).length <= 10_000, `${log.topDenied(1_000_000).length} addresses`);
  });

  test('once 10,000 one-off denied addresses were seen, a client denied 300 times still tops the denied list', async () => {
    // Scanners alone bring 10,000 distinct denied addresses to a public gateway within days; an
    // attacker behind a trusted proxy brings them in seconds. The table never forgets them...
    const { log, gw, from } = await deniedGateway();
    const noise = Array.from({ length: 10_000 }, (_, i) => from(`100.65.${i >> 8}.${i & 255}`));
    assert.equal((await pipelined(gw.httpPort, noise)).length, 10_000);
    // ...so is the client that hammers now, by far the most denied, shown to the operator?
    const hammer = Array.from({ length: 300 }, () => from('192.0.2.66'));
    assert.deepEqual(new Set(await pipelined(gw.httpPort, hammer)), new Set([403]));
    const top = log.topDenied(10);
    assert.deepEqual(top[0] && { address: top[0].address, count: top[0].count }, {
      address: '192.0.2.66',
      count: 300,
    });
  });
});

/** An auth service on 127.0.0.1:0 that keeps idle connections as long as its client does (keepAliveTimeout 0). */
interface AuthServer {
  port: number;
  /** Connections open now. */
  open(): number;
  /** Requests seen, by their X-Token value. */
  seen: Map<string, number>;
  close(): Promise<void>;
}

async function startAuthServer(status: number): Promise<AuthServer> {
  const seen = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const key = String(req.headers['x-token'] ?? '');
    seen.set(key, (seen.get(key) ?? 0) + 1);
    res.writeHead(status, { 'content-length': '0' });
    res.end();
  });
  server.keepAliveTimeout = 0;
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    open: () => sockets.size,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('auth-url: state keyed by the request', () => {
  const servers: AuthServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  test('auth-url http://$http_host/auth: 40 auth servers a client names by Host are not each left holding an idle connection from the gateway', async () => {
    // ingress-nginx keeps no connection to an auth-url (auth-keepalive 0), and none ever when the URL's
    // host holds a variable; a pool per host named by clients is an idle socket (a file descriptor)
    // per name, held until the named server lets go, which a server the client runs never does.
    for (let i = 0; i < 40; i++) servers.push(await startAuthServer(200));
    const gw = await gatewayOf([
      ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
      ingress({
        name: 'sso',
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations: { 'auth-url': 'http://$http_host/auth' },
      }),
    ]);
    const requests = servers.slice(-40).map((s) => get(`127.0.0.1:${s.port}`, '/'));
    assert.deepEqual(new Set(await pipelined(gw.httpPort, requests, '127.0.0.1', 1)), new Set([200]));
    for (const s of servers.slice(-40)) assert.equal(s.seen.size, 1, 'each auth server was asked');
    // Each subrequest's connection closes after its answer (the old code kept all 40 open for ever).
    const open = () => servers.slice(-40).reduce((sum, s) => sum + s.open(), 0);
    await pollUntil(
      'the gateway closed its connections to the auth servers named by clients',
      () => open() === 0,
    );
  });

  test('auth-cache-key $http_x_token: 10,000 distinct tokens keep the cache at its size, and an evicted refusal is asked again, never let through', async () => {
    const auth = await startAuthServer(401);
    servers.push(auth);
    const gw = await gatewayOf([
      ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
      ingress({
        name: 'cached',
        host: 'app.example.com',
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations: {
          'auth-url': `http://127.0.0.1:${auth.port}/auth`,
          'auth-cache-key': '$http_x_token',
          'auth-cache-duration': '401 5m',
        },
      }),
    ]);
    const withToken = (t: string) => get('app.example.com', '/', { 'x-token': t });
    // The cache works: the second request with token "first" is answered without asking.
    assert.deepEqual(await pipelined(gw.httpPort, [withToken('first'), withToken('first')]), [401, 401]);
    assert.equal(auth.seen.get('first'), 1);
    const spray = Array.from({ length: 10_000 }, (_, i) => withToken(`t-${i}`));
    const statuses = await pipelined(gw.httpPort, spray);
    assert.equal(statuses.filter((s) => s === 401).length, 10_000);
    assert.equal(auth.seen.size, 10_001, 'every new token was asked once');
    // 10,000 newer entries: "first" fell out of the bounded cache (as nginx's zone drops the oldest),
    // and is asked again, and refused again.
    assert.deepEqual(await pipelined(gw.httpPort, [withToken('first')]), [401]);
    assert.equal(auth.seen.get('first'), 2, 'the oldest answer was kept beyond the cache size');
  });
});

describe('limit-rpm keyed by what a client sends: a spray of new keys', () => {
  test('3,000 new X-Api-Key values (far fewer than a zone holds) do not give an exhausted key a fresh budget', async () => {
    const gw = await gatewayOf([
      controllerConfigMap({ 'limit-conn-zone-variable': '$http_x_api_key', 'limit-req-status-code': '429' }),
      ...serviceWithEndpoints({ name: 'api', ports: [backend.address.port] }),
      ingress({
        name: 'api',
        host: 'api.example.com',
        paths: [{ path: '/', service: 'api', port: 80 }],
        annotations: { 'limit-rpm': '1', 'limit-burst-multiplier': '1' },
      }),
    ]);
    const keyed = (key: string) => get('api.example.com', '/', { 'x-api-key': key });
    const victim = [keyed('mine'), keyed('mine'), keyed('mine')];
    assert.deepEqual(await pipelined(gw.httpPort, victim), [200, 200, 429]);
    const spray = Array.from({ length: 3_000 }, (_, i) => keyed(`k-${i}`));
    assert.deepEqual(new Set(await pipelined(gw.httpPort, spray)), new Set([200]));
    // nginx's 5m zone keeps tens of thousands of such keys: the bucket of "mine" is still spent.
    assert.deepEqual(await pipelined(gw.httpPort, [keyed('mine')]), [429]);
  });
});
