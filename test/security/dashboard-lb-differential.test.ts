// Does the dashboard's Load balancer page (/api/lb) and each decision's `behind` (/api/decisions and
// the trace's `connection` step) say what the L4 hops of `keepip up` really did? A differential between
// the page and what the clients and the gateway counted over real sockets.
//
// ONE chain, in-process, as `keepip up --dashboard` wires it (startChain + upSources + startDashboard,
// test/dashboard/helpers.ts), on manifests written here:
//   - lb/ingress-nginx-controller:80: an NLB with instance targets and PROXY v2 (client address kept,
//     loadBalancerSourceRanges) -> kube-proxy/node-1:30080 (SNAT to the node 127.0.1.1) -> the gateway
//     (use-proxy-protocol, the node trusted) -> whoami. The Ingress allows 127.0.21.0/24 only.
//   - lb/edge:80: an NLB with ip targets and PROXY v2, from its own address 127.0.10.2 (trusted), onto
//     two pods: the gateway, and 127.0.30.9:80, where nothing listens (the target that refuses).
// (keepip closes a PROXY connection from an untrusted peer, so with use-proxy-protocol every record's
// client is the PROXY header's and /api/decisions' `behind` is null; the hops, with ports, are in the
// trace's connection step. The non-null `behind` of the seed is test/dashboard/api.test.ts's.)
// Clients come from distinct 127.x sources: connections kept open (keep-alive, several requests),
// closed, sending bodies of known size, refused by the gateway (403, a garbage request), reset by the LB
// (outside the source ranges), and sent to the refusing pod. Every wait is a deadline poll on the API or
// a socket event; deadlines only turn a hang into a failure.
//
// ALLOWED (documented, asserted as such, each met by a case here):
//   - a target whose checks fail stays `healthy` and in rotation until unhealthyThreshold consecutive
//     failures (NLB semantics, src/lb/health-state.ts); `lastError` shows the first failed check at once
//     (met: the refusing pod, checked once at start-up);
//   - `checks`/`lastError` are the health checks' only: flows that fail to connect count under
//     flowsRejected{connect-failed}, not there (met: the refusing pod after 16 flows);
//   - kube-proxy hops run no health checks (`checks` 0), as kube-proxy trusts endpoint readiness (met);
//   - an LB's health-check connections are flows of the hop behind it (the node hop carries the NLB's
//     TCP check with its 16-byte LOCAL header) (met: before());
//   - /api/decisions' `behind` is null when the outer hop's client is the record's client (PROXY
//     resolved it), docs/dashboard.md; the trace still lists every hop (met: every PROXY record).
//
// LBPAGE_CONCURRENT=<n> opens more concurrent keep-alive connections (default 32). LBPAGE_SLOW=1 also
// waits (about 5 s: the NLB's shortest interval times its smallest threshold) for the refusing pod to
// leave rotation, and checks that new flows then avoid it.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import http from '../../src/node-http.ts';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dashboardOnChain, type Seeded } from '../dashboard/helpers.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { completeResponses, openRaw, type RawConnection } from '../helpers/net.ts';

const CONCURRENT = Number(process.env.LBPAGE_CONCURRENT ?? 32);
const SLOW = process.env.LBPAGE_SLOW === '1';
const TOKEN = 'lbpage-bearer-9f1c2e7a';
const SECRET_VALUE = 'hunter2-lbpage-secret-value';
const HOST = 'lb.test';
const MAIN = 'lb/ingress-nginx-controller:80';
const EDGE = 'lb/edge:80';
const NODE_HOP = 'kube-proxy/node-1:30080';
const DEAD = '127.0.30.9:80';
const DEADLINE_MS = 20_000;
/** Flows sent to the edge LB (flow-hash over two targets: all on one side has odds 2^-15). */
const EDGE_FLOWS = 16;
/** The fields docs/dashboard.md documents for each hop of /api/lb. */
const LB_KEYS = [
  'name',
  'listen',
  'logicalListen',
  'proxyProtocol',
  'preserveClientIp',
  'sourceAddress',
  'failingOpen',
  'targets',
  'stats',
];

const NLB = (type: 'instance' | 'ip', source: string) => `
    service.beta.kubernetes.io/aws-load-balancer-type: "external"
    service.beta.kubernetes.io/aws-load-balancer-scheme: "internal"
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: "${type}"
    service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: "*"
    keepip.dev/lb-source-address: "${source}"`;

/** The NLB's shortest health checks (interval 5 s, 2 failures): LBPAGE_SLOW only. */
const FAST_CHECKS = `
    service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval: "5"
    service.beta.kubernetes.io/aws-load-balancer-healthcheck-unhealthy-threshold: "2"`;

const slice = (ns: string, name: string, svc: string, port: number, addresses: string[]) => `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}, namespace: ${ns}, labels: {kubernetes.io/service-name: ${svc}}}
addressType: IPv4
ports: [{name: http, port: ${port}}]
endpoints: [${addresses.map((a) => `{addresses: ["${a}"], conditions: {ready: true}, nodeName: node-1}`).join(', ')}]`;

const MANIFESTS = [
  `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: app
  annotations: {nginx.ingress.kubernetes.io/whitelist-source-range: 127.0.21.0/24}
spec:
  ingressClassName: nginx
  rules: [{host: ${HOST}, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 3000}}}}]}}]`,
  `apiVersion: v1
kind: Service
metadata: {name: web, namespace: app}
spec: {type: ClusterIP, selector: {app: web}, ports: [{name: http, port: 3000, targetPort: 3000}]}`,
  slice('app', 'web-1', 'web', 3000, ['127.0.40.11']),
  `apiVersion: v1
kind: Secret
metadata: {name: basic, namespace: app}
stringData: {auth: "${SECRET_VALUE}"}`,
  `apiVersion: v1
kind: Service
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
  annotations:${NLB('instance', '127.0.10.1')}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Cluster
  loadBalancerSourceRanges: [127.0.1.0/24, 127.0.21.0/24, 127.0.22.0/24]
  selector: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
  ports: [{name: http, port: 80, targetPort: 80, nodePort: 30080}]
status: {loadBalancer: {ingress: [{ip: 127.0.10.1}]}}`,
  `apiVersion: v1
kind: ConfigMap
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
data: {use-proxy-protocol: "true", proxy-real-ip-cidr: "127.0.1.0/24,127.0.10.2/32"}`,
  slice('ingress-nginx', 'ingress-nginx-controller-1', 'ingress-nginx-controller', 80, ['127.0.30.1']),
  `apiVersion: v1
kind: Service
metadata:
  name: edge
  namespace: other
  annotations:${NLB('ip', '127.0.10.2')}${SLOW ? FAST_CHECKS : ''}
spec: {type: LoadBalancer, selector: {app: edge}, ports: [{name: http, port: 80, targetPort: 80}]}
status: {loadBalancer: {ingress: [{ip: 127.0.10.2}]}}`,
  slice('other', 'edge-1', 'edge', 80, ['127.0.30.1', '127.0.30.9']),
  `apiVersion: v1
kind: Node
metadata: {name: node-1}
status: {addresses: [{type: InternalIP, address: 127.0.1.1}]}`,
].join('\n---\n');

// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field
type Json = any;

interface Bench extends Seeded {
  /** Where the chain actually listens for a logical LB address. */
  at(lb: 'main' | 'edge'): { host: string; port: number };
  api(
    path: string,
    token?: string | null,
  ): Promise<{ status: number; type: string; text: string; body: Json }>;
}

async function startBench(): Promise<Bench> {
  const dir = await mkdtemp(join(tmpdir(), 'keepip-lbpage-'));
  await writeFile(join(dir, 'chain.yaml'), MANIFESTS);
  const seeded = await dashboardOnChain(dir, TOKEN);
  return {
    ...seeded,
    at: (lb) => seeded.chain.actual({ host: lb === 'main' ? '127.0.10.1' : '127.0.10.2', port: 80 }),
    async api(path, token = TOKEN) {
      const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
      const { status, headers: got, text, body } = await seeded.get(path, headers);
      return { status, type: got.get('content-type') ?? '', text, body };
    },
  };
}

/** Polls /api/lb until `ready` holds for it (the flows end asynchronously); fails at the deadline. */
async function lbWhen(
  bench: Bench,
  what: string,
  ready: (lbs: Map<string, Json>) => boolean,
): Promise<Map<string, Json>> {
  const deadline = Date.now() + DEADLINE_MS;
  let last: Map<string, Json> = new Map();
  for (;;) {
    const { body } = await bench.api('/api/lb');
    last = new Map(body.loadBalancers.map((l: Json) => [l.name, l]));
    if (ready(last)) return last;
    if (Date.now() > deadline)
      throw new Error(
        `/api/lb never showed ${what}:\n${JSON.stringify([...last.values()].map((l) => [l.name, l.stats]))}`,
      );
    await new Promise((r) => setImmediate(r));
  }
}

const sum = (record: Record<string, number>) => Object.values(record).reduce((a, b) => a + b, 0);
const settled = (l: Json) => l.stats.flowsActive === 0 && sum(l.stats.flowsEnded) === l.stats.flowsTotal;

/** The counters of a hop that the test compares, as numbers (one level deep). */
function counters(l: Json): Record<string, number> {
  const s = l.stats;
  return {
    flowsActive: s.flowsActive,
    flowsTotal: s.flowsTotal,
    bytesToTarget: s.bytesToTarget,
    bytesToClient: s.bytesToClient,
    proxyV1: s.proxyHeadersSent.v1,
    proxyV2: s.proxyHeadersSent.v2,
    ...Object.fromEntries(
      Object.entries(s.flowsRejected as Record<string, number>).map(([k, v]) => [`rejected:${k}`, v]),
    ),
    ...Object.fromEntries(
      Object.entries(s.flowsEnded as Record<string, number>).map(([k, v]) => [`ended:${k}`, v]),
    ),
  };
}

function delta(now: Record<string, number>, then: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of new Set([...Object.keys(now), ...Object.keys(then)])) {
    const d = (now[key] ?? 0) - (then[key] ?? 0);
    if (d !== 0 || key === 'flowsActive' || key === 'flowsTotal') out[key] = d;
  }
  return out;
}

const get = (path: string, close = false) =>
  `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
const post = (path: string, body: string) =>
  `POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;

/** One client connection and what it counted: bytes it wrote, bytes it got, the requests it tagged. */
interface Client {
  tag: string;
  from: string;
  port: number;
  conn: RawConnection;
  sent: number;
  /** Request paths this connection sent, and the status of each answer. */
  requests: Map<string, number>;
}

async function openClient(at: { host: string; port: number }, from: string, tag: string): Promise<Client> {
  const conn = await openRaw({ host: at.host, port: at.port, localAddress: from });
  return { tag, from, port: conn.socket.localPort ?? 0, conn, sent: 0, requests: new Map() };
}

/** One GET from `from`:`localPort` (allowed beside another socket on that port: SO_REUSEADDR). */
function getFromPort(
  at: { host: string; port: number },
  from: string,
  localPort: number,
  path: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: at.host,
        port: at.port,
        localAddress: from,
        localPort,
        path,
        agent: false,
        headers: { host: HOST },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function write(client: Client, raw: string): void {
  client.sent += Buffer.byteLength(raw);
  client.conn.socket.write(raw);
}

/** Sends a GET on the connection (keep-alive) and waits for its whole answer. */
async function ask(client: Client, n: number): Promise<number> {
  const path = `/p/${client.tag}/${n}`;
  const before = completeResponses(client.conn.received());
  write(client, get(path));
  const raw = await client.conn.until((r) => completeResponses(r) > before);
  const status = statusOf(raw, before);
  client.requests.set(path, status);
  return status;
}

/** The status of the `index`-th response in `raw`. */
function statusOf(raw: Buffer, index: number): number {
  const statuses = [...raw.toString('latin1').matchAll(/(?:^|\r\n\r\n|\n)HTTP\/1\.1 (\d{3}) /g)].map((m) =>
    Number(m[1]),
  );
  return statuses[index] ?? 0;
}

/** Writes `raw` (a request that ends the connection), and waits for the server's close. */
async function once(client: Client, raw: string, path: string | null): Promise<void> {
  write(client, raw);
  await client.conn.whenClosed();
  if (path !== null) client.requests.set(path, statusOf(client.conn.received(), 0));
}

/** Connects from `from`, writes `raw`: true when the connection is reset or closed with no byte back. */
function resetBeforeAnyByte(at: { host: string; port: number }, from: string, raw: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: at.host, port: at.port, localAddress: from });
    let got = 0;
    socket.on('connect', () => socket.write(raw));
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(got === 0));
  });
}

async function closeClient(client: Client): Promise<void> {
  client.conn.socket.end();
  await client.conn.whenClosed();
}

const received = (clients: readonly Client[]) => clients.reduce((n, c) => n + c.conn.received().length, 0);
const sentBy = (clients: readonly Client[]) => clients.reduce((n, c) => n + c.sent, 0);

/** Every trace, by the request path it answered. */
interface Trace {
  summary: Json;
  /** The connection step's detail. */
  detail: string;
  /** "<hop> <client address:port>", innermost first. */
  hops: string[];
}

async function tracesByPath(bench: Bench): Promise<Map<string, Trace>> {
  const list = (await bench.api('/api/decisions?limit=1000')).body.decisions as Json[];
  const out = new Map<string, Trace>();
  await mapLimited(list, 16, async (d: Json) => {
    const { body } = await bench.api(`/api/decisions/${d.id}`);
    const detail: string = body.trace[0].detail;
    const hops = [...detail.matchAll(/; (\S+) carried it for client ([^;\s]+)/g)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    out.set(d.target, { summary: d, detail, hops });
  });
  return out;
}

describe('the Load balancer page and `behind` against what the L4 hops really did', () => {
  let bench: Bench;
  let base: Map<string, Json>;
  const clients: Client[] = [];
  before(async () => {
    bench = await startBench();
    // The first health checks run at once (one per target) and the node hop carries the main LB's.
    base = await lbWhen(
      bench,
      'the first health checks done and their flows ended',
      (lbs) =>
        [...lbs.values()].every(
          (l) => settled(l) && l.targets.every((t: Json) => t.checks === (l.name === NODE_HOP ? 0 : 1)),
        ) && lbs.get(NODE_HOP)?.stats.flowsTotal === 1,
    );
  });
  after(async () => {
    for (const c of clients) c.conn.destroy();
    await bench.close();
  });

  test('flows, bytes and PROXY headers of each hop equal what the clients and the gateway counted', async () => {
    const main = bench.at('main');
    const kept: Client[] = [];
    const done: Client[] = [];
    // Kept open: three requests each on one connection (keep-alive), from 127.0.21.1-6.
    await mapLimited([1, 2, 3, 4, 5, 6], 6, async (i) => {
      const c = await openClient(main, `127.0.21.${i}`, `keep${i}`);
      kept.push(c);
      for (let n = 0; n < 3; n++) assert.equal(await ask(c, n), 200, `${c.from} request ${n}`);
    });
    // Closed after one request; bodies of known size; refused by the gateway (403, and a 400); silent.
    const cases: [string, string, (c: Client) => Promise<void>][] = [
      ...[1, 2, 3].map((i): [string, string, (c: Client) => Promise<void>] => [
        `127.0.21.${10 + i}`,
        `close${i}`,
        (c) => once(c, get(`/p/${c.tag}/0`, true), `/p/${c.tag}/0`),
      ]),
      ...[1, 2, 3, 4].map((i): [string, string, (c: Client) => Promise<void>] => [
        `127.0.21.${20 + i}`,
        `body${i}`,
        (c) => once(c, post(`/p/${c.tag}/0`, 'x'.repeat(997 * i)), `/p/${c.tag}/0`),
      ]),
      ...[1, 2, 3].map((i): [string, string, (c: Client) => Promise<void>] => [
        `127.0.22.${i}`,
        `deny${i}`,
        (c) => once(c, get(`/p/${c.tag}/0`, true), `/p/${c.tag}/0`),
      ]),
      ['127.0.22.9', 'garbage', (c) => once(c, 'NOT HTTP AT ALL\r\n\r\n', null)],
      ['127.0.21.30', 'silent', (c) => closeClient(c)],
    ];
    // Outside loadBalancerSourceRanges: the LB resets it (at once: before or after the connect event).
    assert.equal(await resetBeforeAnyByte(main, '127.0.23.1', get('/p/outside/0')), true);
    await mapLimited(cases, 8, async ([from, tag, run]) => {
      const c = await openClient(main, from, tag);
      done.push(c);
      await run(c);
    });
    clients.push(...kept, ...done);
    for (const c of done.filter((d) => d.tag.startsWith('deny')))
      assert.deepEqual([...c.requests.values()], [403]);
    for (const c of done.filter((d) => d.tag.startsWith('body') || d.tag.startsWith('close')))
      assert.deepEqual([...c.requests.values()], [200], c.tag);
    const all = [...kept, ...done];
    const flows = all.length;
    const lbs = await lbWhen(bench, 'the kept flows open and the others ended', (m) => {
      const lb = m.get(MAIN).stats;
      const hop = m.get(NODE_HOP).stats;
      return (
        lb.flowsActive === kept.length &&
        hop.flowsActive === kept.length &&
        sum(lb.flowsEnded) - sum(base.get(MAIN).stats.flowsEnded) === flows - kept.length &&
        lb.bytesToClient - base.get(MAIN).stats.bytesToClient === received(all) &&
        hop.bytesToClient - base.get(NODE_HOP).stats.bytesToClient === received(all)
      );
    }).catch((e) => e as Error);
    assert.ok(!(lbs instanceof Error), String(lbs));
    const lb = delta(counters(lbs.get(MAIN)), counters(base.get(MAIN)));
    const hop = delta(counters(lbs.get(NODE_HOP)), counters(base.get(NODE_HOP)));
    const v2 = 28; // PROXY v2 over IPv4, no TLVs: the node hop forwards it as data
    assert.deepEqual(lb, {
      flowsActive: kept.length,
      flowsTotal: flows,
      bytesToTarget: sentBy(all),
      bytesToClient: received(all),
      proxyV2: flows,
      'rejected:source-range': 1,
      'ended:closed': flows - kept.length,
    });
    assert.deepEqual(hop, {
      flowsActive: kept.length,
      flowsTotal: flows,
      bytesToTarget: sentBy(all) + flows * v2,
      bytesToClient: received(all),
      'ended:closed': flows - kept.length,
    });
    // The gateway's side: one decision per request the clients sent (the garbage one is answered 400).
    const traces = await tracesByPath(bench);
    for (const c of all)
      for (const [path, status] of c.requests) assert.equal(traces.get(path)?.summary.status, status, path);
    // Per target: the main LB's one target holds every kept flow.
    assert.equal(lbs.get(MAIN).targets[0].activeFlows, kept.length);
    assert.equal(lbs.get(NODE_HOP).targets[0].activeFlows, kept.length);
  });

  test("every record's trace names, at the outer hop, the address:port of that very client connection", async () => {
    const traces = await tracesByPath(bench);
    const wrong = clients.flatMap((c) => misnamed(traces, c, MAIN, 2));
    assert.deepEqual(wrong, [], `records that name another connection than their own:\n${wrong.join('\n')}`);
  });

  test('many concurrent kept-alive connections: each record names its own connection', async () => {
    const main = bench.at('main');
    const many = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) => openClient(main, `127.0.21.${100 + i}`, `many${i}`)),
    );
    clients.push(...many);
    for (let round = 0; round < 2; round++) {
      const statuses = await Promise.all(many.map((c) => ask(c, round)));
      assert.ok(
        statuses.every((s) => s === 200),
        `round ${round}: ${statuses.join(' ')}`,
      );
    }
    const traces = await tracesByPath(bench);
    const wrong = many.flatMap((c) => misnamed(traces, c, MAIN, 2));
    assert.deepEqual(wrong, [], `records that name another connection than their own:\n${wrong.join('\n')}`);
  });

  test("a connection from the node's address on another flow's port is not shown as that other client", async () => {
    const main = bench.at('main');
    const victim = clients.find((c) => c.tag === 'keep1')!;
    const traces = await tracesByPath(bench);
    const record = traces.get(`/p/${victim.tag}/0`)!;
    // The node hop's connection to the gateway for the victim (the gateway's TCP peer): 127.0.1.1:k.
    const peer = /^TCP peer 127\.0\.1\.1:(\d+) /.exec(record.detail)?.[1];
    assert.ok(peer !== undefined, record.detail);
    const status = await getFromPort(main, '127.0.1.1', Number(peer), '/p/node/0');
    assert.equal(status, 403, 'the node is not on the allowlist');
    const mine = (await tracesByPath(bench)).get('/p/node/0')!;
    assert.equal(mine.summary.client, '127.0.1.1');
    assert.deepEqual(
      { behind: mine.summary.behind, outer: mine.hops.at(-1) },
      { behind: null, outer: `${MAIN} 127.0.1.1:${peer}` },
      `the record of 127.0.1.1:${peer}'s request names ${victim.from}:${victim.port}'s connection:\n${mine.detail}`,
    );
  });

  test('a target that refuses: the page says where new flows go, and the flows go there', async () => {
    const edge = bench.at('edge');
    const page = (await lbWhen(bench, 'the edge LB settled', (m) => settled(m.get(EDGE)))).get(EDGE);
    const byTarget = new Map<string, Json>(page.targets.map((t: Json) => [t.target, t]));
    const dead = byTarget.get(DEAD);
    // NLB semantics: out of rotation only after unhealthyThreshold failed checks (not reached here).
    assert.deepEqual(
      {
        status: dead.status,
        inRotation: dead.inRotation,
        lastError: dead.lastError,
        failingOpen: page.failingOpen,
      },
      { status: 'healthy', inRotation: true, lastError: 'ECONNREFUSED', failingOpen: false },
    );
    const sent = await mapLimited(
      Array.from({ length: EDGE_FLOWS }, (_, i) => i),
      8,
      async (i) => {
        const c = await openClient(edge, `127.0.24.${i + 1}`, `edge${i}`).catch(() => null);
        if (c === null) return null; // reset before the connect event: it went to the refusing pod
        clients.push(c);
        await once(c, get(`/p/${c.tag}/0`, true), `/p/${c.tag}/0`);
        return c;
      },
    );
    const answered = sent.filter((c): c is Client => c !== null && c.conn.received().length > 0);
    const resets = EDGE_FLOWS - answered.length;
    assert.ok(resets > 0 && answered.length > 0, `flows went to both targets in rotation (${resets} resets)`);
    for (const c of answered) assert.equal(c.requests.get(`/p/${c.tag}/0`), 403, 'not on the allowlist');
    const now = await lbWhen(
      bench,
      'every edge flow ended',
      (m) =>
        settled(m.get(EDGE)) && sum(m.get(EDGE).stats.flowsEnded) - sum(page.stats.flowsEnded) === EDGE_FLOWS,
    );
    const d = delta(counters(now.get(EDGE)), counters(page));
    assert.deepEqual(
      {
        failed: d['rejected:connect-failed'] ?? 0,
        bytesToTarget: d.bytesToTarget,
        bytesToClient: d.bytesToClient,
      },
      { failed: resets, bytesToTarget: sentBy(answered), bytesToClient: received(answered) },
    );
    // docs/lb.md: flows_total counts every client connection sent towards a target, a failed connect
    // included (as HAProxy's stot); those also count in flows_rejected{connect-failed} and end as
    // connect-failed, so that total = ended + active holds.
    assert.deepEqual(
      { total: d.flowsTotal, endedFailed: d['ended:connect-failed'] ?? 0 },
      { total: EDGE_FLOWS, endedFailed: resets },
    );
  });

  // Exploration only (about 5 s more): registered when LBPAGE_SLOW=1, never shown as a skipped test.
  if (SLOW)
    test('LBPAGE_SLOW: once the refusing pod is unhealthy the page says so and no new flow goes there', async () => {
      const page = (
        await lbWhen(bench, 'the refusing pod unhealthy', (m) =>
          m.get(EDGE).targets.some((t: Json) => t.target === DEAD && t.status === 'unhealthy'),
        )
      ).get(EDGE);
      const dead = page.targets.find((t: Json) => t.target === DEAD);
      assert.deepEqual(
        { inRotation: dead.inRotation, lastError: dead.lastError, failingOpen: page.failingOpen },
        { inRotation: false, lastError: 'ECONNREFUSED', failingOpen: false },
      );
      const results = await mapLimited([1, 2, 3, 4, 5, 6, 7, 8], 8, (i) =>
        resetBeforeAnyByte(bench.at('edge'), `127.0.25.${i}`, get('/p/slow/0', true)),
      );
      assert.deepEqual(
        results,
        Array(8).fill(false),
        'a flow went to the pod the page shows out of rotation',
      );
    });

  test('behind: through the edge LB (one hop) each record names its own client address:port', async () => {
    const traces = await tracesByPath(bench);
    // The ones the refusing pod reset made no request the gateway saw.
    const edgeClients = clients.filter((c) => c.tag.startsWith('edge') && c.conn.received().length > 0);
    assert.ok(edgeClients.length > 0);
    const wrong = edgeClients.flatMap((c) => misnamed(traces, c, EDGE, 1));
    for (const c of edgeClients) {
      const t = traces.get(`/p/${c.tag}/0`)!;
      if (t.summary.client !== c.from || t.summary.behind !== null)
        wrong.push(`${c.from}: client ${t.summary.client}, behind ${JSON.stringify(t.summary.behind)}`);
    }
    assert.deepEqual(wrong, []);
  });

  test('/api/lb ignores query strings, needs the token, and shows no token or secret', async () => {
    const plain = await bench.api('/api/lb');
    assert.equal(plain.status, 200);
    assert.match(plain.type, /^application\/json/);
    const hostile = [
      '?name=lb%2Fedge%3A80&target=127.0.30.9:80',
      '?limit=-1&stats=0&__proto__[polluted]=1&constructor[prototype][x]=1',
      '?callback=alert(1)&format=html&jsonp=x',
      `?token=${TOKEN}&authorization=Bearer%20x`,
      `?${'a'.repeat(4000)}=1`,
    ];
    const stable = (text: string) =>
      JSON.stringify(JSON.parse(text), (k, v) => (k === 'checks' || k === 'healthChecks' ? undefined : v));
    for (const query of hostile) {
      const r = await bench.api(`/api/lb${query}`);
      assert.equal(r.status, 200, query);
      assert.equal(
        stable(r.text),
        stable(plain.text),
        `a query string changed /api/lb: ${query.slice(0, 80)}`,
      );
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    }
    for (const lb of plain.body.loadBalancers)
      assert.deepEqual(
        Object.keys(lb).sort(),
        [...LB_KEYS].sort(),
        `${lb.name} shows only the documented fields`,
      );
    for (const text of [plain.text, (await bench.api(`/api/lb?token=${TOKEN}`, null)).text])
      for (const secret of [TOKEN, SECRET_VALUE, 'Bearer'])
        assert.ok(!text.includes(secret), `/api/lb shows ${secret}`);
    assert.equal((await bench.api('/api/lb', null)).status, 401);
    assert.equal((await bench.api(`/api/lb?token=${TOKEN}&access_token=${TOKEN}`, null)).status, 401);
    assert.equal((await bench.api('/api/lb', `${TOKEN}x`)).status, 401);
  });

  test('once every client has gone, the page shows no open flow and every flow ended as it did', async () => {
    await Promise.all(clients.filter((c) => !c.conn.closed()).map((c) => closeClient(c)));
    const lbs = await lbWhen(bench, 'no open flow', (m) => [...m.values()].every((l) => settled(l)));
    for (const l of lbs.values()) {
      assert.equal(l.stats.flowsActive, 0, l.name);
      for (const t of l.targets) assert.equal(t.activeFlows, 0, `${l.name} ${t.target}`);
    }
    const ended = lbs.get(MAIN).stats.flowsEnded;
    assert.deepEqual(
      Object.keys(ended),
      ['closed'],
      'every main flow was closed by its client or the gateway',
    );
  });
});

/** The problems of `c`'s records: the outer hop must be `via` carrying c's own address:port. */
function misnamed(traces: Map<string, Trace>, c: Client, via: string, hops: number): string[] {
  const wrong: string[] = [];
  for (const path of c.requests.keys()) {
    const t = traces.get(path);
    const own = `${via} ${c.from}:${c.port}`;
    if (t === undefined) wrong.push(`${path}: no record`);
    else if (t.hops.length !== hops || t.hops.at(-1) !== own)
      wrong.push(`${path} from ${c.from}:${c.port}: ${t.hops.join(' <- ') || '(no hop)'}`);
  }
  return wrong;
}
