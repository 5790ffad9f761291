// The upstream pool and the forwarding step on real sockets: round robin, the next endpoint when one
// refuses, 502/504 mapping, the body limit while a chunked body streams, keep-alive reuse.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { type ProxyOutcome, type ProxyRequest, proxyRequest } from '../../src/gateway/proxy.ts';
import { HOP_BY_HOP_FIELDS } from '../../src/net/hop-by-hop.ts';
import { type BalancedUpstream, ConnectionRegistry, type PoolSpec } from '../../src/gateway/upstream.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { refusingPort } from '../helpers/net.ts';

const registry = new ConnectionRegistry();
const backends: RunningWhoami[] = [];
let refusedPort = 0;

before(async () => {
  backends.push(await startWhoami({ host: '127.0.0.1', port: 0, name: 'a' }));
  backends.push(await startWhoami({ host: '127.0.0.1', port: 0, name: 'b' }));
  refusedPort = await refusingPort();
});

after(async () => {
  await registry.closeAll();
  await Promise.all(backends.map((b) => b.close()));
});

function upstreamOf(name: string, ports: number[], connectTimeoutMs = 1_000): BalancedUpstream {
  const members = ports.map((port) => {
    const spec: PoolSpec = { protocol: 'HTTP', address: '127.0.0.1', port, connectTimeoutMs };
    return registry.acquire(spec);
  });
  return { name, members, cursor: { value: 0 } };
}

/** A one-route proxy server in front of `upstream`, answering gateway errors with their status. */
async function withProxy(
  upstream: BalancedUpstream,
  overrides: Partial<ProxyRequest>,
  body: (port: number, outcomes: ProxyOutcome[]) => Promise<void>,
): Promise<void> {
  const outcomes: ProxyOutcome[] = [];
  const server = http.createServer((req, res) => {
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
    const headers: Record<string, string> = { host: req.headers.host ?? '' };
    if (req.headers['content-length'] !== undefined)
      headers['content-length'] = req.headers['content-length'];
    proxyRequest(
      req,
      res,
      {
        upstream,
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers,
        readTimeoutMs: 5_000,
        sendTimeoutMs: 5_000,
        bodyLimitBytes: 0,
        hiddenResponseHeaders: HOP_BY_HOP_FIELDS,
        hasBody,
        ...overrides,
      },
      (outcome) => {
        outcomes.push(outcome);
        if (outcome.answeredByGateway) res.writeHead(outcome.status, { connection: 'close' }).end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await body((server.address() as AddressInfo).port, outcomes);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function get(
  port: number,
  path = '/',
  init: RequestInit = {},
): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: response.status, text: await response.text() };
}

test('round robin alternates between endpoints', async () => {
  const upstream = upstreamOf(
    'rr',
    backends.map((b) => b.address.port),
  );
  await withProxy(upstream, {}, async (port) => {
    const names: string[] = [];
    for (let i = 0; i < 4; i++)
      names.push((JSON.parse((await get(port, '/?format=json')).text) as { name: string }).name);
    assert.deepEqual(names, ['a', 'b', 'a', 'b']);
  });
});

test('a refused endpoint is skipped: the next one answers and both attempts are recorded', async () => {
  const upstream = upstreamOf('retry', [refusedPort, backends[0]!.address.port]);
  await withProxy(upstream, {}, async (port, outcomes) => {
    const reply = await get(port, '/?format=json');
    assert.equal(reply.status, 200);
    const outcome = outcomes[0]!;
    assert.deepEqual(
      outcome.attempts.map((a) => [a.hostPort, a.status]),
      [
        [`127.0.0.1:${refusedPort}`, 502],
        [`127.0.0.1:${backends[0]!.address.port}`, 200],
      ],
    );
    assert.equal(outcome.failures[0]?.code, 'UPSTREAM_CONNECT_REFUSED');
    assert.match(outcome.failures[0]!.message, /Connection refused\) while connecting to upstream/);
  });
});

test('every endpoint refusing is a 502 answered by the gateway', async () => {
  const upstream = upstreamOf('dead', [refusedPort]);
  await withProxy(upstream, {}, async (port, outcomes) => {
    assert.equal((await get(port)).status, 502);
    assert.equal(outcomes[0]?.answeredByGateway, true);
  });
});

test('a backend slower than proxy-read-timeout is a 504', async () => {
  const upstream = upstreamOf('slow', [backends[0]!.address.port]);
  await withProxy(upstream, { readTimeoutMs: 200 }, async (port, outcomes) => {
    assert.equal((await get(port, '/?wait=2s')).status, 504);
    assert.equal(outcomes[0]?.failures[0]?.code, 'UPSTREAM_READ_TIMEOUT');
  });
});

test('a chunked body over the limit is cut at the limit and answered 413', async () => {
  const upstream = upstreamOf('limit', [backends[0]!.address.port]);
  await withProxy(upstream, { bodyLimitBytes: 1024 }, async (port, outcomes) => {
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 8; i++) controller.enqueue(new Uint8Array(512));
        controller.close();
      },
    });
    const reply = await get(port, '/', { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    assert.equal(reply.status, 413);
    assert.equal(outcomes[0]?.failures[0]?.code, 'CLIENT_BODY_TOO_LARGE');
  });
});

test('a body under the limit streams through intact', async () => {
  const upstream = upstreamOf('body', [backends[0]!.address.port]);
  await withProxy(upstream, { bodyLimitBytes: 1 << 20 }, async (port) => {
    const payload = Buffer.alloc(300_000, 7);
    const reply = await get(port, '/?format=json', {
      method: 'POST',
      body: payload,
      headers: { 'content-length': String(payload.length) },
    });
    assert.equal(reply.status, 200);
    const echo = JSON.parse(reply.text) as { body: { bytes: number } };
    assert.equal(echo.body.bytes, payload.length);
  });
});

test('upstream connections are kept alive and reused across requests', async () => {
  const upstream = upstreamOf('keepalive', [backends[1]!.address.port]);
  await withProxy(upstream, {}, async (port) => {
    const remotePorts = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const echo = JSON.parse((await get(port, '/?format=json')).text) as { remotePort: number };
      remotePorts.add(String(echo.remotePort));
    }
    assert.equal(remotePorts.size, 1, `one upstream connection expected, saw ${[...remotePorts].join(' ')}`);
  });
});
