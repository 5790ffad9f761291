// docs/rules.md against what `keepip lb`, `keepip gateway` and `keepip up` do on loopback (real
// processes, real sockets, clients bound to distinct 127.x sources). What the doctor predicts for the
// same rules is test/doctor's; this file checks the runtime half of each rule.
//
// Claims checked here (quoted from docs/rules.md):
// - A5: "With PROXY protocol v2 on, the NLB writes one header carrying the client's address at the start
//   of each connection and then forwards the client's bytes unchanged; it does not remove a header the
//   client wrote itself. `keepip lb` does the same ... A header written by the client therefore arrives
//   after the load balancer's, as request bytes, and the gateway never takes an address from it (I1)."
// - A6: "the load balancer's health-check connections also start with a header: a LOCAL one ...
//   `keepip lb` sends the same ..., and the gateway treats a LOCAL header as 'use the socket's own
//   addresses'. A health check on a port that does not read PROXY protocol fails".
// - A8: "`keepip lb` connects anyway but counts and logs each hairpin flow" (ALLOWED: logged once per
//   target per 10 s, each one counted).
// - K2: "With `Local`, the node forwards only to pods on itself and the address passes unchanged. Nodes
//   without a gateway pod fail kube-proxy's health check (`healthCheckNodePort`) and the load balancer
//   sends them nothing ... `keepip up`'s kube-proxy hop keeps the caller's address in this case."
// - G2: "The header is read as the start of the HTTP request: **400** for every request, and the access
//   log shows the header as the request (... `"\x00"` for v2's binary signature)."
// - G3: "Each connection is closed without a response; ... keepip a `broken header … while reading PROXY
//   protocol` line and a rejected-header metric."
// - G4: "`keepip lb`'s own checks send a LOCAL header (A6) and do not cause it [a broken header line]."
// - G8: "A load balancer that terminates TLS and forwards plain HTTP to the gateway's HTTPS port gets
//   nginx's **400** `The plain HTTP request was sent to HTTPS port`" (here with the LB's PROXY v2 header
//   in front, as an NLB with PROXY on sends it).
//
// Claim -> covering test (elsewhere), so that this file only adds what was not run end to end:
//   A1 defaults by target type, Classic never preserves .... test/lb/lb-docs-claims.test.ts:684,705,716
//   A2 preservation from a local client; family fallback .... test/lb/balancer.test.ts:185,200;
//                                                             test/lb/lb-docs-claims.test.ts:418
//   A2 fallback for a client that is not local ............... not runnable on loopback (every 127.x is local)
//   A3 --source-address, CLIENT_IP_LOST_AT_LB at the gateway ... test/e2e/up-seed.test.ts:75
//   A4 keepip up connects from its own address, says so ....... test/up/up-docs-claims.test.ts:530
//   A5 header then the bytes, in order, byte-exact ............ test/lb/forwarding.test.ts:71,
//                                                             test/lb/forwarding.heavy.test.ts:45
//   A5 a client-written header through keepip lb -> gateway ... this file
//   A6 LOCAL on every check (engine) .......................... test/lb/balancer.test.ts:100; nginx and
//      HAProxy behind keepip lb ................................ test/interop/lb-nginx.test.ts,
//                                                             test/interop/lb-haproxy.test.ts
//   A6 keepip gateway behind keepip lb's checks; a non-PROXY port fails them ... this file
//   A7 the Local health check (model) ......................... test/k8s/translate-lb.test.ts
//   A8 a hairpin flow logged and counted ...................... test/lb/lb-docs-claims.test.ts:418
//   A8 "each" hairpin flow logged ............................. this file (ALLOWED)
//   A9 not enforced (a statement that nothing happens) ........ not tested: 55,000 flows is no unit test
//   A10 the TLV on flows and LOCAL checks (flags and -f) ...... test/interop/proxy-wire-haproxy.test.ts,
//                                                             test/interop/proxy-wire-nginx.test.ts:102
//   K1 keepip up's kube-proxy hop SNATs to the node ........... test/e2e/up-seed.test.ts:199,
//                                                             test/up/up-docs-claims.test.ts:720
//   K2 keeps the address ...................................... test/e2e/up-seed.test.ts:211
//   K2 a node without a gateway pod gets/forwards nothing ..... this file (found here, fixed)
//   K3 no header from inside: the gateway closes it ........... test/e2e/up-seed.test.ts:122,170
//   K4 ip targets straight to the pods ........................ test/lb/lb-docs-claims.test.ts:705
//   G1 .......................................................... test/e2e/up-seed.test.ts:75
//   G2 in-process gateway; keepip up ........................... test/e2e/gateway-proxy-protocol.test.ts:280,
//                                                             test/e2e/up-seed.test.ts:148
//   G2 keepip lb v2 -> keepip gateway, every connection ........ this file
//   G3 in-process gateway (line + metric) ..................... test/e2e/gateway-proxy-protocol.test.ts:161
//   G3 keepip lb without PROXY -> keepip gateway process ....... this file
//   G4 a silent client at the header timeout ................... test/e2e/gateway-proxy-protocol.test.ts:174,
//                                                             test/gateway/gateway-docs-listeners.test.ts:117
//   G4 keepip lb's checks cause no broken header ............... this file
//   G5, G7 ...................................................... test/e2e/gateway-proxy-protocol.test.ts:145,
//                                                             test/e2e/ingress-nginx-e2e-gaps.test.ts:268
//   G6 ........................................................... test/security/forwarded-headers-differential-nginx.test.ts
//   G8 plain HTTP to the HTTPS port (no PROXY) ................. test/e2e/gateway-tls.test.ts:259
//   G8 behind keepip lb with PROXY v2 .......................... this file
//   G9 ........................................................... test/e2e (allowlist 503 tests), test/security/invariants.test.ts
//   G10, G11 .................................................... test/e2e/gateway-ssl-passthrough.test.ts:198,243
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { rawExchange } from '../helpers/net.ts';
import { type Running, startGatewayOnFreePorts, startKeepip } from '../helpers/process.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { exchange, startTarget, type TestTarget } from './helpers.ts';

const SEED = Number(process.env.KEEPIP_TEST_SEED ?? 20261207);

/**
 * Differences between the rule book's words and what keepip does that are acceptable, each with its
 * reason; the test at the end checks each is still what is seen, so the table cannot rot.
 */
const ALLOWED = {
  'hairpin-logged-once-per-10s': {
    claim: 'A8: "`keepip lb` connects anyway but counts and logs each hairpin flow"',
    seen: 'every hairpin flow is counted (keepip_lb_hairpin_flows_total); the line is written for the first one per target in 10 s',
    reason:
      'a log line per flow would let any client flood the log; docs/lb.md says the preservation lines are ' +
      'written "at most once per 10 s per reason", and the counter gives each flow',
  },
} as const;
const allowedSeen = new Set<keyof typeof ALLOWED>();

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-rules-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function keepip(args: string[]): Running {
  const running = startKeepip(args);
  cleanup.push(() => running.stop());
  return running;
}

async function target(options: Parameters<typeof startTarget>[0]): Promise<TestTarget> {
  const t = await startTarget(options);
  cleanup.push(() => t.close());
  return t;
}

const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const statusOf = (reply: Buffer) => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply.toString('latin1'))?.[1] ?? 0);
const linesOf = (text: string, pattern: RegExp) => text.split('\n').filter((l) => pattern.test(l));

/** `keepip lb` with flags; resolves with the process, its listen port and its metrics port. */
async function startLb(args: string[]): Promise<{ lb: Running; port: number; metrics: number }> {
  const lb = keepip(['lb', '--listen', '127.0.0.1:0', '--metrics', '127.0.0.1:0', ...args]);
  const port = Number((await lb.waitFor(/listening on 127\.0\.0\.1:(\d+)/))[1]);
  const metrics = Number((await lb.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
  return { lb, port, metrics };
}

/** `keepip gateway -f file` on free HTTP, HTTPS and metrics ports, stopped after the file. */
async function startGateway(file: string): ReturnType<typeof startGatewayOnFreePorts> {
  const started = await startGatewayOnFreePorts(file);
  cleanup.push(() => started.gw.stop());
  return started;
}

/** An Ingress on web.example.com allowing only ALLOWLISTED, a host-less /ping for health checks. */
function gatewayManifests(backendPort: number, configMapData: Record<string, string>): string {
  const data = Object.entries(configMapData)
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)
    .join('\n');
  return `apiVersion: v1
kind: ConfigMap
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
data:
${data || '  allow-snippet-annotations: "false"'}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: app
  annotations:
    nginx.ingress.kubernetes.io/allowlist-source-range: ${ALLOWLISTED}/32
spec:
  ingressClassName: nginx
  rules:
    - host: web.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: web
                port:
                  number: 80
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ping
  namespace: app
spec:
  ingressClassName: nginx
  rules:
    - http:
        paths:
          - path: /ping
            pathType: Prefix
            backend:
              service:
                name: web
                port:
                  number: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: app
spec:
  type: ClusterIP
  ports:
    - name: http
      port: 80
      targetPort: ${backendPort}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: app
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
  - name: http
    port: ${backendPort}
    protocol: TCP
endpoints:
  - addresses: ["127.0.0.1"]
    conditions:
      ready: true
`;
}

// Addresses: the load balancers' own (source) addresses, trusted by the PROXY gateway as a /24; clients
// elsewhere, one per test so that log lines name their test.
const TRUSTED_LBS = '127.0.176.0/24';
const LB_HTTP_CHECKS = '127.0.176.1'; // v2, HTTP checks -> PROXY gateway's HTTP port
const LB_TO_HTTPS = '127.0.176.2'; // v2, TCP checks -> PROXY gateway's HTTPS port
const LB_NO_PROXY = '127.0.176.3'; // no PROXY, TCP checks -> PROXY gateway's HTTP port (G3)
const LB_TO_PLAIN = '127.0.177.1'; // v2, HTTP checks -> gateway without PROXY (A6 failing, G2)
const ALLOWLISTED = '203.0.113.7';
const CLIENT_A5_V1 = '127.0.178.11';
const CLIENT_A5_V2 = '127.0.178.12';
const CLIENT_A5_CONTROL = '127.0.178.13';
const CLIENT_A5_RAW = '127.0.178.14';
const CLIENT_G3 = '127.0.178.21';
const CLIENT_G2 = '127.0.178.31';
const CLIENT_G8 = '127.0.178.41';

const get = (path: string, host = 'web.example.com') =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

describe('keepip lb in front of keepip gateway (A5, A6, G2, G3, G4, G8)', () => {
  let backend: RunningWhoami;
  let proxyGw: Awaited<ReturnType<typeof startGateway>>;
  let plainGw: Awaited<ReturnType<typeof startGateway>>;
  let lbHttpChecks: Awaited<ReturnType<typeof startLb>>;
  let lbToHttps: Awaited<ReturnType<typeof startLb>>;
  let lbNoProxy: Awaited<ReturnType<typeof startLb>>;
  let lbToPlain: Awaited<ReturnType<typeof startLb>>;
  let lbRaw: Awaited<ReturnType<typeof startLb>>;
  let recording: TestTarget;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => backend.close());
    const dir = tempDir();
    writeFileSync(
      join(dir, 'proxy.yaml'),
      gatewayManifests(backend.address.port, {
        'use-proxy-protocol': 'true',
        'proxy-real-ip-cidr': TRUSTED_LBS,
      }),
    );
    writeFileSync(join(dir, 'plain.yaml'), gatewayManifests(backend.address.port, {}));
    recording = await target({
      proxy: true,
      record: true,
      behave: (socket) => socket.on('end', () => socket.end()),
    });
    [proxyGw, plainGw] = await Promise.all([
      startGateway(join(dir, 'proxy.yaml')),
      startGateway(join(dir, 'plain.yaml')),
    ]);
    const checks = ['--health-interval', '300ms', '--health-timeout', '5s'];
    [lbHttpChecks, lbToHttps, lbNoProxy, lbToPlain, lbRaw] = await Promise.all([
      startLb([
        '--target',
        `127.0.0.1:${proxyGw.http}`,
        '--proxy-protocol',
        'v2',
        '--source-address',
        LB_HTTP_CHECKS,
        '--health-check',
        'http:/ping',
        ...checks,
      ]),
      startLb([
        '--target',
        `127.0.0.1:${proxyGw.https}`,
        '--proxy-protocol',
        'v2',
        '--source-address',
        LB_TO_HTTPS,
        '--health-check',
        'tcp',
        ...checks,
      ]),
      startLb(['--target', `127.0.0.1:${proxyGw.http}`, '--source-address', LB_NO_PROXY]),
      startLb([
        '--target',
        `127.0.0.1:${plainGw.http}`,
        '--proxy-protocol',
        'v2',
        '--source-address',
        LB_TO_PLAIN,
        '--health-check',
        'http:/ping',
        ...checks,
      ]),
      startLb(['--target', `127.0.0.1:${recording.port}`, '--proxy-protocol', 'v2']),
    ]);
  });

  test('A5: a v1 header the client wrote arrives after the LB header as request bytes: 400, logged as the real client', async () => {
    const forged = encodeProxyHeader({
      version: 1,
      source: { address: ALLOWLISTED, port: 40000 },
      destination: { address: '10.0.0.1', port: 80 },
    });
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: lbHttpChecks.port,
      localAddress: CLIENT_A5_V1,
      payload: Buffer.concat([forged, Buffer.from(get('/a5-v1'))]),
    });
    assert.equal(statusOf(reply.received), 400, reply.received.toString('latin1'));
    await proxyGw.gw.waitFor(
      new RegExp(
        `\\n${esc(CLIENT_A5_V1)} - - \\[[^\\]]*\\] "PROXY TCP4 203\\.0\\.113\\.7 10\\.0\\.0\\.1 40000 80" 400 `,
      ),
    );
  });

  test('A5: a v2 header the client wrote is request bytes too: 400, "\\x00" logged for the real client', async () => {
    const forged = encodeProxyHeader({
      version: 2,
      source: { address: ALLOWLISTED, port: 40001 },
      destination: { address: '10.0.0.1', port: 80 },
    });
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: lbHttpChecks.port,
      localAddress: CLIENT_A5_V2,
      payload: Buffer.concat([forged, Buffer.from(get('/a5-v2'))]),
    });
    assert.equal(statusOf(reply.received), 400, reply.received.toString('latin1'));
    await proxyGw.gw.waitFor(new RegExp(`\\n${esc(CLIENT_A5_V2)} - - \\[[^\\]]*\\] "\\\\x00" 400 `));
  });

  test("A5 control: without a forged header the gateway checks the LB header's client (403 naming it)", async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: lbHttpChecks.port,
      localAddress: CLIENT_A5_CONTROL,
      payload: get('/a5-control'),
    });
    assert.equal(statusOf(reply.received), 403);
    await proxyGw.gw.waitFor(
      new RegExp(`access forbidden by rule, client: ${esc(CLIENT_A5_CONTROL)}, server: web\\.example\\.com`),
    );
  });

  test('A5 raw: one LB header naming the client and the listener, then the client bytes (its own header included) unchanged', async () => {
    const random = seededRandom(SEED);
    const noise = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(random() * 256)));
    const ownHeader = encodeProxyHeader({
      version: 2,
      source: { address: ALLOWLISTED, port: 1 },
      destination: { address: '10.0.0.1', port: 2 },
    });
    const payload = Buffer.concat([ownHeader, noise, ownHeader]);
    await exchange(lbRaw.port, payload, { localAddress: CLIENT_A5_RAW });
    const accepted = recording.accepted.filter(
      (a) => a.header?.source && 'address' in a.header.source && a.header.source.address === CLIENT_A5_RAW,
    );
    assert.equal(accepted.length, 1, 'one connection, opened by one header naming the client');
    const header = accepted[0]!.header!;
    assert.ok(header.destination && 'port' in header.destination);
    assert.equal(header.destination.port, lbRaw.port);
    assert.equal(accepted[0]!.data().equals(payload), true, 'the client bytes arrive unchanged');
  });

  test("A6/G4: keepip lb's HTTP and TCP checks (LOCAL headers) pass and cause no broken header; G3: a flow without a header does", async () => {
    const passedAndNoFailure = (text: string) =>
      metricSum(text, 'keepip_lb_health_checks_total', { result: 'passed' }) >= 3 &&
      metricSum(text, 'keepip_lb_health_checks_total', { result: 'failed' }) === 0;
    await scrapeUntil('127.0.0.1', lbHttpChecks.metrics, passedAndNoFailure, 'three HTTP checks passed');
    await scrapeUntil('127.0.0.1', lbToHttps.metrics, passedAndNoFailure, 'three TCP checks passed');
    // G3, through the LB without PROXY: closed without a response, a broken header line, the metric.
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: lbNoProxy.port,
      localAddress: CLIENT_G3,
      payload: get('/g3-marker'),
    });
    assert.equal(reply.closedByServer, true);
    assert.equal(reply.received.length, 0, 'no response');
    // keepip names the reason and the peer, not the bytes (nginx quotes them up to the first CR).
    await proxyGw.gw.waitFor(
      new RegExp(`broken header.* while reading PROXY protocol.*client: ${esc(LB_NO_PROXY)}, `),
    );
    const gwMetrics = await scrape('127.0.0.1', proxyGw.metrics);
    assert.ok(
      metricSum(gwMetrics, 'keepip_gateway_proxy_headers_total', {
        result: 'rejected',
        reason: 'malformed',
      }) >= 1,
    );
    // The marker's line came after every check that had passed: none of them wrote one.
    const broken = linesOf(proxyGw.gw.output(), /broken header/);
    assert.deepEqual(
      broken.filter((l) => !l.includes(`client: ${LB_NO_PROXY}, `)),
      [],
      'no broken header from the checks',
    );
    assert.ok(
      metricSum(gwMetrics, 'keepip_gateway_proxy_headers_total', { result: 'accepted' }) >= 6,
      'the LOCAL headers were read',
    );
    // LOCAL: the socket's own addresses are the client (the LB's source address in the access log).
    assert.match(
      proxyGw.gw.output(),
      new RegExp(
        `\\n${esc(LB_HTTP_CHECKS)} - - \\[[^\\]]*\\] "GET /ping HTTP/1\\.1" 200 .*"keepip-lb-health-check"`,
      ),
    );
  });

  test('A6: checks with PROXY on against a gateway that does not read it fail; G2: every request through that LB is a 400, "\\x00" logged', async () => {
    await scrapeUntil(
      '127.0.0.1',
      lbToPlain.metrics,
      (text) =>
        metricSum(text, 'keepip_lb_health_checks_total', { result: 'failed' }) >= 3 &&
        metricSum(text, 'keepip_lb_health_checks_total', { result: 'passed' }) === 0 &&
        metricSum(text, 'keepip_lb_target_healthy') === 0,
      'the target unhealthy after three failed checks',
    );
    for (let i = 0; i < 3; i++) {
      const reply = await rawExchange({
        host: '127.0.0.1',
        port: lbToPlain.port,
        localAddress: CLIENT_G2,
        payload: get(`/g2-${i}`),
      });
      assert.equal(statusOf(reply.received), 400, `request ${i}: ${reply.received.toString('latin1')}`);
    }
    await plainGw.gw.waitFor(
      new RegExp(`(?:\\n${esc(LB_TO_PLAIN)} - - \\[[^\\]]*\\] "\\\\x00" 400 [\\s\\S]*){6}`),
    );
    assert.equal(
      linesOf(plainGw.gw.output(), new RegExp(esc(CLIENT_G2))).length,
      0,
      'the gateway never read the client from the header it does not expect',
    );
  });

  test("G8: plain HTTP behind the LB's PROXY v2 header on the HTTPS port: nginx's 400 page, logged for the header's client", async () => {
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: lbToHttps.port,
      localAddress: CLIENT_G8,
      payload: get('/g8'),
    });
    const text = reply.received.toString('latin1');
    assert.equal(statusOf(reply.received), 400, text);
    assert.match(text, /The plain HTTP request was sent to HTTPS port/);
    assert.equal(reply.closedByServer, true);
    await proxyGw.gw.waitFor(new RegExp(`\\n${esc(CLIENT_G8)} - - \\[[^\\]]*\\] "GET /g8 HTTP/1\\.1" 400 `));
  });
});

describe('keepip lb hairpin flows (A8)', () => {
  test('each hairpin flow is counted; the line is written once per target (ALLOWED)', async () => {
    const HOST_1 = '127.0.179.1';
    const HOST_2 = '127.0.179.2';
    const echoBack = (socket: import('node:net').Socket) => socket.pipe(socket);
    const [t1, t2] = await Promise.all([
      target({ host: HOST_1, behave: echoBack }),
      target({ host: HOST_2, behave: echoBack }),
    ]);
    const { lb, port, metrics } = await startLb([
      '--target',
      `${HOST_1}:${t1.port}`,
      '--target',
      `${HOST_2}:${t2.port}`,
      '--preserve-client-ip',
      '--algorithm',
      'round-robin',
    ]);
    const started = Date.now();
    // Round-robin: at most four flows from HOST_1 give t1 two of them (both hairpins).
    for (let i = 0; i < 4 && t1.accepted.length < 2; i++) {
      const { received } = await exchange(port, `h1-${i}`, { localAddress: HOST_1 });
      assert.equal(received.toString(), `h1-${i}`, 'the hairpin flow works on loopback');
    }
    const elapsed = Date.now() - started;
    assert.equal(t1.accepted.length, 2);
    assert.ok(
      t1.accepted.every((a) => a.remoteAddress === HOST_1),
      'preserved: t1 sees its own address',
    );
    // A later positive signal: a hairpin on the other target writes its own line after them.
    for (let i = 0; i < 2 && !t2.accepted.some((a) => a.remoteAddress === HOST_2); i++) {
      await exchange(port, `h2-${i}`, { localAddress: HOST_2 });
    }
    await lb.waitFor(new RegExp(`hairpin: client ${esc(HOST_2)} is target ${esc(HOST_2)}:${t2.port} itself`));
    const text = await scrape('127.0.0.1', metrics);
    assert.equal(metricSum(text, 'keepip_lb_hairpin_flows_total'), 3, 'every hairpin flow counted');
    const t1Lines = linesOf(lb.output(), new RegExp(`hairpin: client ${esc(HOST_1)} is target`));
    assert.ok(t1Lines.length >= 1 && t1Lines.length <= 2);
    // Two flows within 10 s: one line (the ALLOWED difference). A machine so slow that they were 9 s
    // apart says nothing about it either way.
    if (elapsed < 9_000)
      assert.equal(t1Lines.length, 1, 'the second hairpin flow to t1 within 10 s is not logged');
    allowedSeen.add('hairpin-logged-once-per-10s');
  });
});

describe('keepip up with externalTrafficPolicy: Local on two nodes (K2)', () => {
  const NODE_1 = '127.0.181.1';
  const NODE_2 = '127.0.181.2';
  const CLIENT = '127.0.182.5';
  let up: Running;
  let node1Port: number;
  let node2Port: number;

  before(async () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'chain.yaml'),
      `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: app
spec:
  ingressClassName: nginx
  rules:
    - host: web.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: web
                port:
                  number: 3000
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: app
spec:
  type: ClusterIP
  ports:
    - name: http
      port: 3000
      targetPort: 3000
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: app
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
  - name: http
    port: 3000
    protocol: TCP
endpoints:
  - addresses: ["127.0.183.11"]
    conditions:
      ready: true
    nodeName: node-1
---
apiVersion: v1
kind: Service
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: instance
    keepip.dev/lb-source-address: 127.0.180.2
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 32100
  ports:
    - name: http
      port: 80
      targetPort: http
      nodePort: 30080
      protocol: TCP
status:
  loadBalancer:
    ingress:
      - ip: 127.0.180.1
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: controller-1
  namespace: ingress-nginx
  labels:
    kubernetes.io/service-name: ingress-nginx-controller
addressType: IPv4
ports:
  - name: http
    port: 80
    protocol: TCP
endpoints:
  - addresses: ["127.0.184.1"]
    conditions:
      ready: true
    nodeName: node-1
---
apiVersion: v1
kind: Node
metadata:
  name: node-1
status:
  addresses:
    - type: InternalIP
      address: ${NODE_1}
---
apiVersion: v1
kind: Node
metadata:
  name: node-2
status:
  addresses:
    - type: InternalIP
      address: ${NODE_2}
`,
    );
    up = keepip(['up', '-f', dir, '--ephemeral-ports', '--no-watch']);
    await up.waitFor(/the chain is running/);
    node1Port = Number((await up.waitFor(new RegExp(`listening on ${esc(NODE_1)}:(\\d+)`)))[1]);
    node2Port = Number((await up.waitFor(new RegExp(`listening on ${esc(NODE_2)}:(\\d+)`)))[1]);
  });

  test("the node with the gateway pod keeps the caller's address", async () => {
    const reply = await rawExchange({
      host: NODE_1,
      port: node1Port,
      localAddress: CLIENT,
      payload: get('/k2-node-1'),
    });
    assert.equal(statusOf(reply.received), 200);
    assert.match(reply.received.toString('latin1'), new RegExp(`x-real-ip: ${esc(CLIENT)}`, 'i'));
  });

  test("the node without a gateway pod forwards nothing (found here, fixed: it forwarded to node-1's pod, keeping the address)", async () => {
    const reply = await rawExchange({
      host: NODE_2,
      port: node2Port,
      localAddress: CLIENT,
      payload: get('/k2-node-2'),
    });
    assert.equal(
      reply.received.length,
      0,
      `node-2 has no gateway pod: under Local its kube-proxy sends nowhere; got:\n${reply.received.toString('latin1').slice(0, 200)}`,
    );
  });
});

test('every ALLOWED difference was met', () => {
  assert.deepEqual([...allowedSeen].sort(), Object.keys(ALLOWED).sort());
});
