// The seven security invariants of docs/architecture.md (I1-I7), one `describe` each, end to end on real
// sockets on 127.0.0.0/8: gateways started in-process from inline manifests, whoami backends behind a
// tap that records every byte the gateway sends upstream, and keepip lb in front for invariant 6.
// Client addresses are played by binding to distinct 127.x addresses, or carried in PROXY headers and
// X-Forwarded-For (203.0.113.0/24, documentation addresses that never leave the test).
import assert from 'node:assert/strict';
import type { Agent } from 'node:http';
import http from '../../src/node-http.ts';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RunningLb, startLoadBalancer } from '../../src/lb/balancer.ts';
import { encodeProxyHeader, parseProxyHeader, V2_SIGNATURE } from '../../src/proxy-protocol/index.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { echoOf, request } from '../fixtures/gateway/harness.ts';
import { startHeldBackend } from '../helpers/held-backend.ts';
import { listenTracked } from '../helpers/net.ts';
import {
  configMapYaml,
  counterValue,
  exchange,
  httpRequest,
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  startTap,
  type Tap,
  topologyFromYaml,
} from './helpers.ts';

/** The trusted hop: the load balancer / proxy in front of the gateway. */
const LB = '127.0.0.10';
/** A peer outside every trusted list that reaches the gateway directly. */
const STRANGER = '127.0.0.11';
const ALLOWED = '203.0.113.7';
const DENIED = '203.0.113.8';
const PROXY_HEADERS = 'keepip_gateway_proxy_headers_total';

function v1(client: string): Buffer {
  return encodeProxyHeader({
    version: 1,
    source: { address: client, port: 40000 },
    destination: { address: client.includes(':') ? '::1' : '10.0.0.1', port: 80 },
  });
}

function v2(client: string): Buffer {
  return encodeProxyHeader({
    version: 2,
    source: { address: client, port: 40001 },
    destination: { address: client.includes(':') ? '::1' : '10.0.0.1', port: 80 },
  });
}

/** An HTTP/1.1 request asking whoami for its JSON echo. */
const jsonRequest = (port: number, options: Parameters<typeof request>[1] = {}) =>
  request(port, { ...options, headers: { accept: 'application/json', ...options.headers } });

/** Destroys a keep-alive agent's sockets and waits until each is closed, before its peer goes away. */
async function closeAgent(agent: Agent): Promise<void> {
  const sockets = [...Object.values(agent.freeSockets), ...Object.values(agent.sockets)].flat();
  const closed = sockets.map((s) =>
    s && !s.closed ? new Promise((resolve) => s.once('close', resolve)) : null,
  );
  agent.destroy();
  await Promise.all(closed);
}

/** A whoami backend behind a tap; closes both. */
async function tappedBackend(
  name = 'whoami',
): Promise<{ whoami: RunningWhoami; tap: Tap; close(): Promise<void> }> {
  const whoami = await startWhoami({ host: '127.0.0.1', port: 0, name });
  const tap = await startTap(whoami.address.port);
  return {
    whoami,
    tap,
    async close() {
      await tap.close();
      await whoami.close();
    },
  };
}

describe('1. a listener reads a PROXY header only when configured to; it never guesses', () => {
  let backend: Awaited<ReturnType<typeof tappedBackend>>;
  let off: SecurityGateway;
  let on: SecurityGateway;
  const CLIENT = '127.0.0.12';

  before(async () => {
    backend = await tappedBackend();
    const routes = `${serviceYaml('app', backend.tap.port)}\n${ingressYaml('app', '/', 'app', { 'allowlist-source-range': `${ALLOWED}/32` })}`;
    // Every loopback peer is trusted on both, so trust is never the reason a header is refused here.
    off = await startSecurityGateway(
      topologyFromYaml(`${configMapYaml({ 'proxy-real-ip-cidr': '127.0.0.0/8' })}\n${routes}`),
    );
    on = await startSecurityGateway(
      topologyFromYaml(
        `${configMapYaml({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '127.0.0.0/8' })}\n${routes}`,
      ),
    );
  });
  after(async () => {
    await off.close();
    await on.close();
    await backend.close();
  });

  test('off: a valid v1 or v2 header is a bad request (400); the claimed client is never used', async () => {
    for (const [header, path] of [
      [v1(ALLOWED), '/inv1-v1'],
      [v2(ALLOWED), '/inv1-v2'],
    ] as const) {
      const reply = await exchange(off.port, CLIENT, httpRequest(path), header);
      assert.equal(reply.status, 400, `${path}: ${reply.raw.toString('latin1')}`);
      assert.equal(backend.tap.saw(path), false);
    }
    assert.ok(off.access.lines.length >= 2);
    // $remote_addr is the socket peer; the header bytes appear only as the refused request line.
    for (const line of off.access.lines) assert.ok(line.startsWith(`${CLIENT} - - [`), line);
  });

  test('off: without a header the socket peer is the client (the allowlist of the header address denies it)', async () => {
    const reply = await exchange(off.port, CLIENT, httpRequest('/inv1-plain'));
    assert.equal(reply.status, 403);
  });

  test('on: a plain request without a header is closed without any response', async () => {
    const reply = await exchange(on.port, CLIENT, httpRequest('/inv1-no-header'));
    assert.equal(reply.closedByServer, true);
    assert.equal(reply.raw.length, 0);
    assert.equal(backend.tap.saw('/inv1-no-header'), false);
  });

  test('on: the same request behind a header is served for the header client', async () => {
    const reply = await exchange(on.port, CLIENT, httpRequest('/inv1-header'), v1(ALLOWED));
    assert.equal(reply.status, 200);
    assert.equal(reply.echo?.headers['x-real-ip'], ALLOWED);
  });
});

describe('2. headers are accepted only from trusted peers; others are closed and counted', () => {
  let backend: Awaited<ReturnType<typeof tappedBackend>>;
  let gw: SecurityGateway;

  before(async () => {
    backend = await tappedBackend();
    gw = await startSecurityGateway(
      topologyFromYaml(
        `${configMapYaml({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': `${LB}/32` })}
${serviceYaml('app', backend.tap.port)}
${ingressYaml('app', '/', 'app')}`,
      ),
    );
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('a valid header from an untrusted peer: closed without a response, counted, never forwarded', async () => {
    for (const [header, path] of [
      [v1(ALLOWED), '/inv2-v1'],
      [v2(ALLOWED), '/inv2-v2'],
    ] as const) {
      const rejected = await counterValue(gw.gateway, PROXY_HEADERS, {
        result: 'rejected',
        reason: 'untrusted',
      });
      const accepted = await counterValue(gw.gateway, PROXY_HEADERS, { result: 'accepted' });
      const reply = await exchange(gw.port, STRANGER, httpRequest(path), header);
      assert.equal(reply.closedByServer, true);
      assert.equal(reply.raw.length, 0);
      assert.equal(backend.tap.saw(path), false);
      assert.equal(
        await counterValue(gw.gateway, PROXY_HEADERS, { result: 'rejected', reason: 'untrusted' }),
        rejected + 1,
      );
      assert.equal(await counterValue(gw.gateway, PROXY_HEADERS, { result: 'accepted' }), accepted);
    }
    await gw.errors.waitFor(/PROXY protocol peer 127\.0\.0\.11 is not a trusted proxy/);
  });

  test('the same header from the trusted peer is accepted and counted as accepted', async () => {
    const accepted = await counterValue(gw.gateway, PROXY_HEADERS, { result: 'accepted' });
    const reply = await exchange(gw.port, LB, httpRequest('/inv2-trusted'), v2(ALLOWED));
    assert.equal(reply.status, 200);
    assert.equal(reply.echo?.headers['x-real-ip'], ALLOWED);
    assert.equal(await counterValue(gw.gateway, PROXY_HEADERS, { result: 'accepted' }), accepted + 1);
  });
});

describe('3. forwarded headers are used only from trusted peers, right to left; never the left-most entry', () => {
  let backend: Awaited<ReturnType<typeof tappedBackend>>;
  let gw: SecurityGateway;

  before(async () => {
    backend = await tappedBackend();
    gw = await startSecurityGateway(
      topologyFromYaml(
        `${configMapYaml({ 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': `${LB}/32` })}
${serviceYaml('app', backend.tap.port)}
${ingressYaml('open', '/open', 'app')}
${ingressYaml('allow', '/allow', 'app', { 'allowlist-source-range': `${ALLOWED}/32` })}`,
      ),
    );
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  test("an untrusted peer's X-Forwarded-For is ignored: the peer is the client", async () => {
    const forged = { 'X-Forwarded-For': ALLOWED };
    assert.equal((await exchange(gw.port, STRANGER, httpRequest('/allow/x', forged))).status, 403);
    const open = await exchange(gw.port, STRANGER, httpRequest('/open/x', forged));
    assert.equal(open.echo?.headers['x-real-ip'], STRANGER);
    await gw.access.waitFor(/^127\.0\.0\.11 - - .*"GET \/open\/x HTTP\/1\.1" 200/);
  });

  test('from the trusted peer, the right-most untrusted entry is the client, not the forged left-most one', async () => {
    const chain = { 'X-Forwarded-For': `${ALLOWED}, ${DENIED}` };
    assert.equal((await exchange(gw.port, LB, httpRequest('/allow/y', chain))).status, 403);
    await gw.errors.waitFor(/access forbidden by rule, client: 203\.0\.113\.8,/);
    const open = await exchange(gw.port, LB, httpRequest('/open/y', chain));
    assert.equal(open.echo?.headers['x-real-ip'], DENIED);
  });

  test('trusted hops are skipped from the right; the walk stops at the first untrusted one', async () => {
    const chain = { 'X-Forwarded-For': `${DENIED}, ${ALLOWED}, ${LB}` };
    const reply = await exchange(gw.port, LB, httpRequest('/allow/z', chain));
    assert.equal(reply.status, 200);
    assert.equal(reply.echo?.headers['x-real-ip'], ALLOWED);
  });
});

describe('4. IPv4-mapped addresses match IPv4 rules; zone ids and non-canonical forms never slip a rule', () => {
  let backend: Awaited<ReturnType<typeof tappedBackend>>;
  let pp: SecurityGateway;
  let xff: SecurityGateway;

  before(async () => {
    backend = await tappedBackend();
    const routes = `${serviceYaml('app', backend.tap.port)}
${ingressYaml('allow', '/allow', 'app', { 'allowlist-source-range': `${ALLOWED}/32` })}
${ingressYaml('deny', '/deny', 'app', { 'denylist-source-range': `${DENIED}/32` })}
${ingressYaml('deny6', '/link-local', 'app', { 'denylist-source-range': 'fe80::/10' })}`;
    pp = await startSecurityGateway(
      topologyFromYaml(
        `${configMapYaml({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': `${LB}/32` })}\n${routes}`,
      ),
    );
    xff = await startSecurityGateway(
      topologyFromYaml(
        `${configMapYaml({ 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': `${LB}/32` })}\n${routes}`,
      ),
    );
  });
  after(async () => {
    await pp.close();
    await xff.close();
    await backend.close();
  });

  test('PROXY TCP6 headers with mapped sources are the IPv4 client for allow and deny rules', async () => {
    const allowed = await exchange(pp.port, LB, httpRequest('/allow/pp'), v2(`::ffff:${ALLOWED}`));
    assert.equal(allowed.status, 200);
    assert.equal(allowed.echo?.headers['x-real-ip'], ALLOWED);
    assert.equal((await exchange(pp.port, LB, httpRequest('/allow/pp'), v2(`::ffff:${DENIED}`))).status, 403);
    assert.equal((await exchange(pp.port, LB, httpRequest('/deny/pp'), v2(`::ffff:${DENIED}`))).status, 403);
    assert.equal((await exchange(pp.port, LB, httpRequest('/deny/pp'), v1(`::ffff:${DENIED}`))).status, 403);
    assert.equal((await exchange(pp.port, LB, httpRequest('/deny/pp'), v2(`::ffff:${ALLOWED}`))).status, 200);
  });

  test('PROXY v1 sources with a zone id or leading zeros are refused: closed, never forwarded', async () => {
    for (const [line, path] of [
      ['PROXY TCP6 fe80::1%eth0 ::1 40000 80\r\n', '/link-local/zone'],
      ['PROXY TCP4 203.0.113.008 10.0.0.1 40000 80\r\n', '/deny/zeros'],
      ['PROXY TCP4 0203.0.113.8 10.0.0.1 40000 80\r\n', '/deny/octal'],
    ] as const) {
      const reply = await exchange(pp.port, LB, httpRequest(path), line);
      assert.equal(reply.closedByServer, true, line);
      assert.equal(reply.raw.length, 0, line);
      assert.equal(backend.tap.saw(path), false, line);
    }
  });

  test('X-Forwarded-For: mapped, hex-mapped and port-suffixed forms of a denied address are denied', async () => {
    for (const entry of [`::ffff:${DENIED}`, '::ffff:cb00:7108', `[::ffff:${DENIED}]`, `${DENIED}:4000`]) {
      const reply = await exchange(xff.port, LB, httpRequest('/deny/xff', { 'X-Forwarded-For': entry }));
      assert.equal(reply.status, 403, entry);
    }
    const mapped = await exchange(
      xff.port,
      LB,
      httpRequest('/allow/xff', { 'X-Forwarded-For': `::ffff:${ALLOWED}` }),
    );
    assert.equal(mapped.status, 200);
    assert.equal(mapped.echo?.headers['x-real-ip'], ALLOWED);
  });

  test('X-Forwarded-For: zone ids and leading zeros make the client unknown, which every rule denies', async () => {
    for (const [path, entry] of [
      ['/link-local/xff', 'fe80::1%eth0'],
      ['/deny/xff', '203.0.113.008'],
      ['/deny/xff', '0203.0.113.8'],
      ['/allow/xff', '203.0.113.007'],
      ['/allow/xff', `${ALLOWED}%0`],
    ] as const) {
      const reply = await exchange(xff.port, LB, httpRequest(path, { 'X-Forwarded-For': entry }));
      assert.equal(reply.status, 403, `${path} ${entry}`);
    }
  });
});

describe('5. invalid access rules fail closed (503); deny beats allow; block-cidrs always apply', () => {
  let backend: Awaited<ReturnType<typeof tappedBackend>>;
  let gw: SecurityGateway;
  let badDefault: SecurityGateway;
  const INSIDE = '127.0.0.21';
  const DENIED_PEER = '127.0.0.22';
  const BLOCKED = '127.0.0.23';

  before(async () => {
    backend = await tappedBackend();
    gw = await startSecurityGateway(
      topologyFromYaml(
        `${configMapYaml({ 'block-cidrs': `${BLOCKED}/32` })}
${serviceYaml('app', backend.tap.port)}
${ingressYaml('bad-allow', '/bad-allow', 'app', { 'allowlist-source-range': '127.0.0.0/8, 10.0.0.0/33' })}
${ingressYaml('bad-deny', '/bad-deny', 'app', { 'denylist-source-range': 'not-an-address' })}
${ingressYaml('both', '/both', 'app', { 'allowlist-source-range': '127.0.0.0/8', 'denylist-source-range': `${DENIED_PEER}/32` })}
${ingressYaml('own-allow', '/own-allow', 'app', { 'allowlist-source-range': '127.0.0.0/8' })}
${ingressYaml('open', '/open', 'app')}`,
      ),
    );
    badDefault = await startSecurityGateway(
      topologyFromYaml(
        `${configMapYaml({ 'whitelist-source-range': '127.0.0.0/8, 127.0.0.300' })}
${serviceYaml('app', backend.tap.port)}
${ingressYaml('open', '/default-list', 'app')}`,
      ),
    );
  });
  after(async () => {
    await gw.close();
    await badDefault.close();
    await backend.close();
  });

  test('an allowlist, denylist or ConfigMap default with one bad entry answers 503 to everyone', async () => {
    for (const [target, path] of [
      [gw, '/bad-allow/a'],
      [gw, '/bad-deny/a'],
      [badDefault, '/default-list/a'],
    ] as const) {
      const reply = await exchange(target.port, INSIDE, httpRequest(path));
      assert.equal(reply.status, 503, path);
      assert.equal(backend.tap.saw(path), false, path);
    }
  });

  test('deny beats allow', async () => {
    assert.equal((await exchange(gw.port, DENIED_PEER, httpRequest('/both/a'))).status, 403);
    assert.equal((await exchange(gw.port, INSIDE, httpRequest('/both/a'))).status, 200);
  });

  test('block-cidrs apply on every location, also one with its own allowlist that includes the address', async () => {
    for (const path of ['/own-allow/b', '/open/b', '/both/b']) {
      assert.equal((await exchange(gw.port, BLOCKED, httpRequest(path))).status, 403, path);
      assert.equal((await exchange(gw.port, INSIDE, httpRequest(path))).status, 200, path);
    }
  });
});

/** A raw TCP target that records every byte of every connection and answers "ok\n" to each line. */
async function recordingTarget(): Promise<{ port: number; connections: Buffer[][]; close(): Promise<void> }> {
  const connections: Buffer[][] = [];
  const server = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    connections.push(chunks);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      for (const byte of chunk) if (byte === 0x0a) socket.write('ok\n');
    });
  });
  const { port, close } = await listenTracked(server);
  return { port, connections, close };
}

/** From `from`: connect, send `lines` one at a time (each after the previous "ok"), then close. */
function lineClient(port: number, from: string, lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
    let next = 0;
    let received = '';
    const send = () => socket.write(lines[next++]!);
    socket.on('connect', send);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.split('ok\n').length - 1 < next) return;
      if (next < lines.length) send();
      else socket.end();
    });
    socket.on('close', () =>
      next === lines.length ? resolve() : reject(new Error(`${from}: closed early`)),
    );
    socket.on('error', reject);
  });
}

describe('6. a PROXY header is never sent on a connection that carries more than one client', () => {
  const CLIENTS = Array.from({ length: 12 }, (_, i) => `127.0.6.${i + 1}`);

  for (const version of ['v1', 'v2'] as const) {
    test(`keepip lb (${version}): one upstream connection per client, each with exactly one header, its own`, async () => {
      const target = await recordingTarget();
      const lb = await startLoadBalancer({
        listen: { host: '127.0.0.1', port: 0 },
        targets: [{ host: '127.0.0.1', port: target.port }],
        proxyProtocol: version,
        sourceAddress: null,
        preserveClientIp: false,
        algorithm: 'round-robin',
        healthCheck: null,
      });
      try {
        // All clients at once, each sending several messages on its one connection.
        const sent = new Map(CLIENTS.map((c) => [c, [1, 2, 3].map((n) => `${c} message ${n}\n`)]));
        await Promise.all(CLIENTS.map((c) => lineClient(lb.address.port, c, sent.get(c)!)));
        assert.equal(target.connections.length, CLIENTS.length);
        const seen = new Set<string>();
        for (const chunks of target.connections) {
          const bytes = Buffer.concat(chunks);
          const parsed = parseProxyHeader(bytes);
          assert.equal(parsed.kind, 'header');
          if (parsed.kind !== 'header') continue;
          const source = parsed.header.source;
          assert.ok(source !== null && 'address' in source);
          // After the one header, exactly the bytes that client sent: no second header, no other client.
          assert.equal(
            bytes.subarray(parsed.consumed).toString('latin1'),
            sent.get(source.address)?.join(''),
          );
          seen.add(source.address);
        }
        assert.deepEqual([...seen].sort(), [...CLIENTS].sort());
      } finally {
        await lb.close();
        await target.close();
      }
    });
  }

  describe('lb (PROXY v2) -> gateway -> pooled upstream -> backend', () => {
    let backend: Awaited<ReturnType<typeof tappedBackend>>;
    let gw: SecurityGateway;
    let lb: RunningLb;
    const LB_SOURCE = '127.0.0.30';

    before(async () => {
      backend = await tappedBackend();
      gw = await startSecurityGateway(
        topologyFromYaml(
          `${configMapYaml({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': `${LB_SOURCE}/32` })}
${serviceYaml('app', backend.tap.port)}
${ingressYaml('app', '/', 'app')}`,
        ),
      );
      lb = await startLoadBalancer({
        listen: { host: '127.0.0.1', port: 0 },
        targets: [{ host: '127.0.0.1', port: gw.port }],
        proxyProtocol: 'v2',
        sourceAddress: LB_SOURCE,
        preserveClientIp: false,
        algorithm: 'round-robin',
        healthCheck: null,
      });
    });
    after(async () => {
      await lb.close();
      await gw.close();
      await backend.close();
    });

    test('each client connection carries one header and its own client; the backend pool carries none', async () => {
      const accepted = await counterValue(gw.gateway, PROXY_HEADERS, { result: 'accepted' });
      const run = async (client: string) => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          for (let i = 0; i < 3; i++) {
            const reply = await jsonRequest(lb.address.port, {
              from: client,
              path: `/pool/${client}/${i}`,
              agent,
            });
            assert.equal(reply.status, 200);
            assert.equal(echoOf(reply).headers['x-real-ip'], client);
          }
        } finally {
          await closeAgent(agent);
        }
      };
      // Two waves: the second finds the first wave's idle upstream connections in the pool.
      await Promise.all(CLIENTS.slice(0, 6).map(run));
      await Promise.all(CLIENTS.slice(6).map(run));
      // One header per client connection (each client kept one connection through the LB).
      assert.equal(
        await counterValue(gw.gateway, PROXY_HEADERS, { result: 'accepted' }),
        accepted + CLIENTS.length,
      );

      const upstream = backend.tap.upstream();
      const requests = upstream.map((bytes) => bytes.toString('latin1').match(/^GET /gm)?.length ?? 0);
      assert.equal(
        requests.reduce((a, b) => a + b, 0),
        CLIENTS.length * 3,
      );
      const clientsPerConnection = upstream.map(
        (bytes) => new Set(bytes.toString('latin1').match(/^x-real-ip: .*$/gim) ?? []).size,
      );
      // The pool did mix clients on one connection, which is exactly where a header must never go.
      assert.ok(
        Math.max(...clientsPerConnection) > 1,
        `clients per upstream connection: ${clientsPerConnection}`,
      );
      for (const bytes of upstream) {
        assert.equal(bytes.includes(Buffer.from(V2_SIGNATURE)), false);
        assert.equal(/(^|\r\n)PROXY /.test(bytes.toString('latin1')), false);
        assert.ok(bytes.toString('latin1').startsWith('GET /pool/'));
      }
    });
  });
});

describe('7. config changes are atomic; no request is dropped by a reload', () => {
  let alpha: Awaited<ReturnType<typeof tappedBackend>>;
  let beta: Awaited<ReturnType<typeof tappedBackend>>;

  before(async () => {
    alpha = await tappedBackend('alpha');
    beta = await tappedBackend('beta');
  });
  after(async () => {
    await alpha.close();
    await beta.close();
  });

  /** Version n: even versions route to alpha, odd to beta, and rewrite every path to /v<n>. */
  const versioned = (n: number) =>
    topologyFromYaml(`${configMapYaml({})}
${serviceYaml('app', (n % 2 === 0 ? alpha : beta).tap.port)}
${ingressYaml('app', '/', 'app', { 'rewrite-target': `/v${n}` })}`);
  const INVALID = 'apiVersion: v1\nkind: Service\nmetadata: {name: app\n';

  test('reloads under bounded load: zero failures, every answer from one whole snapshot', async () => {
    const gw = await startSecurityGateway(versioned(0));
    const seen = new Set<number>();
    const problems: string[] = [];
    let stop = false;
    let answered = 0;
    const client = async (from: string) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let i = 0; i < 300 && !stop; i++) {
          try {
            const reply = await jsonRequest(gw.port, { from, path: '/x', agent });
            const echo = reply.status === 200 ? echoOf(reply) : null;
            const n = Number(/^\/v(\d+)$/.exec(echo?.url ?? '')?.[1] ?? Number.NaN);
            // A torn snapshot would pair one version's rewrite with the other version's backend.
            if (echo === null || Number.isNaN(n) || echo.name !== (n % 2 === 0 ? 'alpha' : 'beta')) {
              problems.push(`${reply.status} ${echo?.name} ${echo?.url}`);
            } else seen.add(n);
            answered++;
          } catch (error) {
            problems.push(`${from}: ${(error as Error).message}`);
          }
        }
      } finally {
        await closeAgent(agent);
      }
    };
    /** Waits until a request has been answered on version `n` (the load ran on it), bounded generously. */
    const answeredOn = async (n: number) => {
      const deadline = Date.now() + 20_000;
      while (!seen.has(n) && problems.length === 0) {
        assert.ok(Date.now() < deadline, `no request answered on version ${n}; seen ${[...seen]}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    try {
      const load = Promise.all(['127.0.0.41', '127.0.0.42', '127.0.0.43', '127.0.0.44'].map(client));
      // Each reload happens while the load runs, and each version serves before the next one.
      await answeredOn(0);
      for (let n = 1; n <= 12; n++) {
        const applied = gw.gateway.reload(versioned(n));
        assert.equal(applied.ok, true);
        if (n % 3 === 0) {
          const refused = gw.gateway.reload(topologyFromYaml(INVALID));
          assert.equal(refused.ok, false);
          if (!refused.ok) assert.equal(refused.error.code, 'GATEWAY_CONFIG_INVALID');
        }
        await answeredOn(n);
      }
      stop = true;
      await load;
      assert.deepEqual(problems, []);
      assert.ok(answered > 0);
      assert.deepEqual(
        [...seen].sort((a, b) => a - b),
        Array.from({ length: 13 }, (_, n) => n),
        'every version served',
      );
      const last = await jsonRequest(gw.port, { path: '/x' });
      assert.equal(echoOf(last).url, '/v12');
    } finally {
      stop = true;
      await gw.close();
    }
  });

  test('an in-flight request finishes on the snapshot it started with', async () => {
    // A backend that holds the request until the reload is done: in flight for certain, with no delay.
    const held = await startHeldBackend({ name: 'alpha', hold: (url) => url.startsWith('/slow') });
    const before = `${configMapYaml({})}\n${serviceYaml('app', held.port)}\n${ingressYaml('app', '/', 'app')}`;
    // The new config routes elsewhere and denies every loopback client.
    const afterward = `${configMapYaml({})}\n${serviceYaml('app', beta.tap.port)}\n${ingressYaml('app', '/', 'app', { 'allowlist-source-range': '192.0.2.1/32' })}`;
    const gw = await startSecurityGateway(topologyFromYaml(before));
    try {
      const slow = jsonRequest(gw.port, { from: '127.0.0.45', path: '/slow' });
      await held.arrived(/^\/slow$/);
      assert.equal(gw.gateway.reload(topologyFromYaml(afterward)).ok, true);
      assert.equal((await jsonRequest(gw.port, { from: '127.0.0.45', path: '/after' })).status, 403);
      held.release();
      const reply = await slow;
      assert.equal(reply.status, 200);
      assert.equal(echoOf(reply).name, 'alpha');
      assert.equal(beta.tap.saw('/after'), false, 'the denied request never reached the new backend');
    } finally {
      await gw.close();
      await held.close();
    }
  });
});
