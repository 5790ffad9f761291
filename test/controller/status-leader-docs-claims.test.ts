// docs/controller.md, "Leader election" and "Ingress status" (and their rows of "Failure behaviour"),
// checked end to end against in-process controllers and the fake API server
// (test/fixtures/fake-apiserver.ts), with a proxy in front of it where a fault or a delay is needed.
// The claims (quoted), and which test here runs each one that no other test ran end to end:
//  L1 "a missing Lease is created (holder = identity, `leaseTransitions` 0); every write carries the
//     `resourceVersion` read, so of two replicas racing only one succeeds (the other gets 409 Conflict)"
//     -> 'three replicas' a1
//  L2 "a Lease held by another identity is taken only after `leaseDurationSeconds` have passed **on our
//     clock** since we last saw the record change (the holder's timestamps are never trusted); taking it
//     over increments `leaseTransitions`" -> 'a Lease held by a ghost' b1 (the holder's duration, stale
//     timestamps) and b2 (a record seen changed in a slow answer: the clock starts when it is seen)
//  L3 "the leader renews every retry period" -> a5 (lower bound on the gaps)
//  L4 "on shutdown the leader releases the Lease (holder `""`, `leaseDurationSeconds: 1`), so a standby
//     takes over at its next retry instead of waiting out the lease" -> a5
//  L5 "`--disable-leader-election`: this replica acts as the leader without a Lease" -> c2d
//  L6 "Only the leader writes Ingress status and Events […] Every replica serves traffic." -> a2, a3, a4
//  S1 "`status.loadBalancer.ingress` is set (with `PUT …/ingresses/NAME/status`, carrying the
//     `resourceVersion` read; a 409 is retried once over a fresh read, then on the next sync)" -> c1b, c1c
//  S2 "1. `--publish-status-address` (comma-separated; IPs as `ip`, anything else as `hostname`)" -> c2a
//  S3 "2. else the `--publish-service`'s addresses, by its type as ingress-nginx: a LoadBalancer its
//     `status.loadBalancer.ingress` entries and `spec.externalIPs` (none while its address is pending); a
//     NodePort its `spec.externalIPs`, else its `clusterIP`; a ClusterIP its `clusterIP`; an ExternalName
//     its `externalName`." -> c1a, c1d..c1g; "nor does a headless one" -> c1f
//  S4 "A missing Service writes nothing (the status is left as it is, with a line `--publish-service
//     NS/NAME not found; status left as it is`)" -> c1i; a Service that cannot be read -> c1h
//  S5 "3. else the addresses of the nodes running Running and Ready controller pods (pods with the labels
//     of `POD_NAME`'s pod …)" -> e1 (no POD_NAME: no pod to take addresses from)
//  S6 "The list is sorted and deduplicated; an Ingress already showing it is not written." -> c2a, c2b
//  S7 "Syncs run when leadership is taken, after every applied snapshot" -> a6 (taken), c2c (a status
//     someone else wrote is put back at the snapshot its change brings)
//  S8 "the leader empties the status of the served Ingresses **unless other controller pods exist**"
//     -> a5 (kept: another pod), c2e (only ours are emptied); "When its own pod is unknown to the API (no
//     `POD_NAME`, or 404) it counts as the only replica" -> c2e (404); "when the pods cannot be read (API
//     down) the status is kept" -> d1
//  S9 "Leadership is checked before every write (and before a 409's retry): a replica that loses the
//     Lease in the middle of a sync stops there (`no longer the leader: status writes stopped`)" -> b3b
//  S10 "after every applied snapshot (coalesced: while one runs, at most one more waits, over the latest
//     Ingresses)" -> b3a
//  F1 "Failure behaviour: status write conflict (409) | retried on the next sync" -> c1c
// Covered elsewhere (see the report's table): renew-deadline step-down and the candidates' pace
// (test/security/controller-api-attack.test.ts), takeover after a crash (failover.test.ts), the status
// of Pending / finished / newer-revision pods and the writer's leadership checks (status-writer.test.ts),
// --update-status(-on-shutdown)=false, --report-node-internal-ip-address and --status-update-interval
// (flags-behaviour.test.ts).
//
// Found here, fixed (each test asserts the documented / safe behaviour):
//  b2: the candidate starts the expiry clock when it *sends* the Lease GET, not when the answer shows
//      the record: an answer slowed by the API server (or any hop) shortens the lease by that delay, and
//      a holder that renewed meanwhile is taken over before its lease ran out on anyone's clock
//      (client-go: setObservedRecord sets observedTime = clock.Now() after Get).
//  c1a: a LoadBalancer status entry with both `ip` and `hostname` loses its hostname (ingress-nginx's
//      statusAddressFromService keeps both fields).
//  c2e: POD_NAME set but its pod unknown (404) keeps the status on shutdown ("cannot list the controller
//      pods"), where the docs say it counts as the only replica and empties it.
//  e1: with no POD_NAME and neither --publish-status-address nor --publish-service, every served
//      Ingress's status is written empty (external-dns deletes the records), where a missing source
//      otherwise leaves the status as it is (ingress-nginx does not start without POD_NAME).
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { microTime } from '../../src/controller/leader.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import {
  type ApiProxy,
  type Backend,
  createWaiters,
  get,
  ingress,
  relayToApi,
  seedWeb,
  startApiProxy,
  startBackend,
  startTestController,
  type TestController,
  waitForHost,
  webCluster,
} from './harness.ts';

/** Differences from ingress-nginx the docs own: each test that sees one adds its key to allowedSeen. */
const ALLOWED = {
  ipv6Canonical: {
    seen: '--publish-status-address=2001:DB8::1 is written as ip 2001:db8::1',
    ingressNginx: 'the text as given (net.ParseIP only classifies it)',
    reason: 'the same address; the API server reads both, and a canonical form never flaps between spellings',
  },
  mixedSort: {
    seen: 'entries sorted by their address text, hostnames and IPs together (0lb.example.com before 192.0.2.9)',
    ingressNginx: 'lessLoadBalancerIngress: by hostname, so IP-only entries first',
    reason:
      'the order carries no meaning; both compare the current status sorted the same way, so neither rewrites an equal set',
  },
  dedupe: {
    seen: '--publish-status-address listing 192.0.2.9 twice writes it once',
    ingressNginx: 'writes every comma-separated entry, duplicates included',
    reason: 'docs/controller.md: "The list is sorted and deduplicated"',
  },
  retry409: {
    seen: 'a status PUT answered 409 is retried once, over a GET of the Ingress',
    ingressNginx: 'runUpdate GETs the Ingress before its one PUT and does not retry a 409',
    reason: 'docs/controller.md: "a 409 is retried once over a fresh read, then on the next sync"',
  },
  podsUnreadableKept: {
    seen: 'the pods cannot be read at shutdown: the status is kept',
    ingressNginx: 'isRunningMultiplePods returns false on an error, so the status is emptied',
    reason:
      'docs/controller.md: "when the pods cannot be read (API down) the status is kept": an unknown replica count must not blank the address',
  },
  clientGoLeaseDefault: {
    seen: 'without --election-ttl the Lease says leaseDurationSeconds 15',
    ingressNginx: '30 (its --election-ttl default)',
    reason:
      'docs/controller.md, "Defaults that differ from ingress-nginx on purpose": client-go\'s 15s/10s/2s',
  },
} as const;
const allowedSeen = new Set<keyof typeof ALLOWED>();

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/ingress-nginx/leases';
const INGRESSES = '/apis/networking.k8s.io/v1/namespaces/default/ingresses';

/** status.loadBalancer.ingress of an Ingress as the API server holds it (undefined: no status). */
function statusOf(api: FakeApiServer, name: string, namespace = 'default'): Obj[] | undefined {
  return api.get('Ingress', namespace, name)?.status?.loadBalancer?.ingress;
}

/** The entries as a set: each as JSON with its fields in one order, sorted. */
function asSet(entries: Obj[] | undefined): string[] {
  return (entries ?? [])
    .map((e) => JSON.stringify({ hostname: e.hostname, ip: e.ip }))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const leaseWrites = (api: FakeApiServer, id: string) =>
  api.requests.filter(
    (r) => (r.method === 'PUT' && r.path === `${LEASES}/${id}`) || (r.method === 'POST' && r.path === LEASES),
  );

const statusPuts = (api: FakeApiServer, name?: string) =>
  api.requests.filter(
    (r) =>
      r.method === 'PUT' &&
      (name === undefined ? r.path.endsWith('/status') : r.path === `${INGRESSES}/${name}/status`),
  );

function pod(name: string, labels: Record<string, string>): Obj {
  return {
    kind: 'Pod',
    metadata: { namespace: 'ingress-nginx', name, labels },
    spec: { nodeName: `node-${name}` },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

function ghostLease(name: string, spec: Obj): Obj {
  return { kind: 'Lease', metadata: { namespace: 'ingress-nginx', name }, spec };
}

/** A Status answer of `code`, as the API server words a failure. */
function replyStatus(res: ServerResponse, code: number): void {
  const body = { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, message: `injected ${code}` };
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The lines of `ctl` that arrived after `from`. */
const linesAfter = (ctl: TestController, from: number) => ctl.lines.slice(from);

/** Waits for a line after `from` matching `pattern` (ctl.waitForLine reads from the last mark()). */
async function lineAfter(ctl: TestController, from: number, pattern: RegExp): Promise<string> {
  await ctl.waitFor(() => linesAfter(ctl, from).some((l) => pattern.test(l)), `a line ${pattern}`);
  return linesAfter(ctl, from).find((l) => pattern.test(l))!;
}

describe('docs/controller.md: Leader election and Ingress status', { concurrency: true }, () => {
  after(() => {
    assert.deepEqual(
      Object.keys(ALLOWED).filter((k) => !allowedSeen.has(k as keyof typeof ALLOWED)),
      [],
      'every ALLOWED difference is checked to be still what is seen',
    );
  });

  describe('three replicas: the race, leader-only writes, a follower stopping, release and takeover', {
    concurrency: false,
  }, () => {
    const ADDRESS: Record<string, string> = {
      'ctl-a': '192.0.2.1',
      'ctl-b': '192.0.2.2',
      third: '192.0.2.3',
    };
    const ID = 'docs-a';
    let api: FakeApiServer;
    let web: Backend;
    const replicas: Record<string, TestController> = {};
    let leader = '';
    let follower = '';
    const flags = (name: string) => [
      '--election-ttl=4s',
      `--election-id=${ID}`,
      `--publish-status-address=${ADDRESS[name]}`,
    ];

    before(async () => {
      api = await startFakeApiServer();
      web = await startBackend('web');
      seedWeb(api, web.port);
      // Two pods of one controller (the revision label differs, as in a rolling update).
      api.apply(pod('ctl-a', { app: 'docs-a', 'pod-template-hash': 'a' }));
      api.apply(pod('ctl-b', { app: 'docs-a', 'pod-template-hash': 'b' }));
      const [a, b] = await Promise.all(
        ['ctl-a', 'ctl-b'].map((name) => startTestController(api, flags(name), { POD_NAME: name })),
      );
      replicas['ctl-a'] = a!;
      replicas['ctl-b'] = b!;
    });
    after(async () => {
      for (const r of Object.values(replicas)) await r.close();
      await api?.close();
      await web?.close();
    });

    it('a1: one create wins the race (holder = identity, leaseTransitions 0); another create gets 409', async () => {
      leader = await Promise.race(
        Object.entries(replicas).map(([name, r]) => r.waitForLine(/became the leader/).then(() => name)),
      );
      follower = leader === 'ctl-a' ? 'ctl-b' : 'ctl-a';
      await replicas[follower]!.waitForLine(new RegExp(`the leader is ${leader}$`));
      const creates = api.requests.filter((r) => r.method === 'POST' && r.path === LEASES);
      const won = creates.filter((r) => r.status === 201);
      assert.equal(won.length, 1, JSON.stringify(creates.map((r) => r.status)));
      assert.deepEqual(
        creates.filter((r) => r.status !== 201).map((r) => r.status),
        creates.length === 2 ? [409] : [],
      );
      const spec = won[0]!.body!.spec;
      assert.deepEqual(
        [spec.holderIdentity, spec.leaseTransitions, spec.leaseDurationSeconds],
        [leader, 0, 4],
      );
      // Every renewal carries the resourceVersion of the Lease it renews (the fake server 409s the rest).
      assert.ok(leaseWrites(api, ID).every((r) => r.method === 'POST' || r.body?.metadata?.resourceVersion));
    });

    it('a2: every replica serves traffic, the follower too', async () => {
      for (const name of [leader, follower]) {
        const port = (await replicas[name]!.running.serving()).httpAddress!.port;
        const answer = await get(port, 'web.example.com', `/${name}`);
        assert.deepEqual([answer.status, answer.body], [200, `web /${name}\n`]);
      }
    });

    it('a3: only the leader writes status and Events', async () => {
      await api.waitUntil(() => statusOf(api, 'web')?.[0]?.ip === ADDRESS[leader]);
      await api.waitUntil(() =>
        api.list('Event').find((e) => e.involvedObject?.name === 'web' && e.reason === 'Sync'),
      );
      assert.deepEqual(
        [...new Set(api.list('Event').map((e) => e.reportingInstance))],
        [leader],
        'Events written by the leader only',
      );
      assert.deepEqual(
        [...new Set(statusPuts(api).map((r) => JSON.stringify(r.body?.status?.loadBalancer?.ingress)))],
        [JSON.stringify([{ ip: ADDRESS[leader] }])],
      );
      assert.ok(!replicas[follower]!.lines.some((l) => /^status of Ingress/.test(l)));
    });

    it('a4: a follower that stops (and would count as the only replica: no POD_NAME) clears nothing and releases nothing', async () => {
      // No POD_NAME: its pods are "only itself", so only the leadership check keeps it from clearing.
      const third = await startTestController(api, flags('third'));
      replicas.third = third;
      await third.waitForLine(new RegExp(`the leader is ${leader}$`));
      const port = (await third.running.serving()).httpAddress!.port;
      assert.equal((await get(port, 'web.example.com', '/third')).status, 200);
      const from = api.requests.length;
      await third.close();
      delete replicas.third;
      assert.ok(third.lines.includes('stopped'), third.lines.join('\n'));
      const later = api.requests.slice(from);
      assert.deepEqual(
        later.filter((r) => r.method === 'PUT' && r.path.endsWith('/status')).map((r) => r.path),
        [],
        'no status write by a follower on shutdown',
      );
      assert.deepEqual(
        later
          .filter((r) => r.path.startsWith(LEASES) && r.method !== 'GET')
          .map((r) => r.body?.spec?.holderIdentity)
          .filter((h) => h !== leader),
        [],
        'no Lease write but the leader renewing',
      );
      assert.ok(!third.lines.some((l) => /released the Lease|status of Ingress/.test(l)));
      assert.equal(api.get('Lease', 'ingress-nginx', ID)!.spec.holderIdentity, leader);
      assert.deepEqual(statusOf(api, 'web'), [{ ip: ADDRESS[leader] }]);
    });

    it('a5: the leader renews every retry period, releases on stop (holder "", 1 s), keeps the status for the other pod; the standby takes over at its next attempt', async () => {
      const renewals = () =>
        leaseWrites(api, ID).filter(
          (r) => r.method === 'PUT' && r.status === 200 && r.body?.spec?.holderIdentity === leader,
        );
      await api.waitUntil(() => renewals().length >= 2);
      const gaps = renewals()
        .slice(1)
        .map((r, i) => r.at - renewals()[i]!.at);
      // The retry period is ttl/4 = 1 s: a renewal starts that long after the previous one was answered.
      assert.ok(
        gaps.every((g) => g >= 990),
        `renewal gaps ${gaps.join(', ')} ms`,
      );
      const L = replicas[leader]!;
      delete replicas[leader];
      await L.close();
      assert.ok(L.lines.includes('released the Lease'), L.lines.join('\n'));
      assert.ok(L.lines.includes('other controller pods are running: status kept on shutdown'));
      const release = api.requests.findIndex(
        (r) =>
          r.method === 'PUT' &&
          r.path === `${LEASES}/${ID}` &&
          r.status === 200 &&
          r.body?.spec?.holderIdentity === '',
      );
      assert.ok(release >= 0, 'a release was written');
      const released = api.requests[release]!;
      assert.deepEqual([released.status, released.body!.spec.leaseDurationSeconds], [200, 1]);
      assert.deepEqual(
        statusPuts(api).filter((r) => r.body?.status?.loadBalancer?.ingress?.length === 0),
        [],
        'status kept: another pod exists',
      );
      await replicas[follower]!.waitForLine(/became the leader/);
      // Nobody else polls the Lease now: the standby's first look after the release is its takeover.
      const next = api.requests.slice(release + 1).filter((r) => r.path === `${LEASES}/${ID}`);
      assert.deepEqual(
        next.slice(0, 2).map((r) => [r.method, r.status, r.body?.spec?.holderIdentity ?? null]),
        [
          ['GET', 200, null],
          ['PUT', 200, follower],
        ],
      );
      assert.equal(next[1]!.body!.spec.leaseTransitions, 1);
    });

    it('a6: the new leader writes its own address as it takes the Lease (nothing in the cluster changed)', async () => {
      await replicas[follower]!.waitForLine(
        new RegExp(`^status of Ingress default/web: ${ADDRESS[follower]!.replaceAll('.', '\\.')}$`),
      );
      assert.deepEqual(statusOf(api, 'web'), [{ ip: ADDRESS[follower] }]);
    });
  });

  describe('a Lease held by a ghost (no replica renews it)', { concurrency: true }, () => {
    let api: FakeApiServer;
    let web: Backend;
    let proxy: ApiProxy | null = null;
    let held: NodeJS.Timeout | undefined;
    const started: TestController[] = [];

    before(async () => {
      api = await startFakeApiServer();
      web = await startBackend('web');
      seedWeb(api, web.port);
    });
    after(async () => {
      clearTimeout(held);
      for (const c of started) await c.close();
      await proxy?.close();
      await api?.close();
      await web?.close();
    });

    it("b1: stale timestamps are not trusted and the holder's own leaseDurationSeconds (3 s, ours 1 s) is waited out, on our clock; leaseTransitions + 1", async () => {
      api.apply(
        ghostLease('docs-b1', {
          holderIdentity: 'ghost',
          leaseDurationSeconds: 3,
          acquireTime: '2001-01-01T00:00:00.000000Z',
          renewTime: '2001-01-01T00:00:00.000000Z',
          leaseTransitions: 4,
        }),
      );
      const startedAt = Date.now();
      const ctl = await startTestController(
        api,
        ['--election-ttl=1s', '--election-id=docs-b1', '--update-status=false'],
        {
          POD_NAME: 'ctl-b1',
        },
      );
      started.push(ctl);
      await ctl.waitForLine(/the leader is ghost/);
      await ctl.waitForLine(/became the leader/);
      const path = `${LEASES}/docs-b1`;
      const takeover = api.requests.find((r) => r.method === 'PUT' && r.path === path && r.status === 200)!;
      // The clock may start when the first GET is sent (see b2), so the bound is from before the
      // controller started: 3 s at least. A trusted 2001 renewTime would take it at once, our own 1 s
      // lease at the second or third attempt.
      const waited = takeover.at - startedAt;
      assert.ok(waited >= 3000, `took the ghost's Lease ${waited} ms after the controller started`);
      assert.deepEqual(
        [takeover.body!.spec.holderIdentity, takeover.body!.spec.leaseTransitions],
        ['ctl-b1', 5],
      );
    });

    it('b2: the clock starts when the record is seen: a holder that renewed while our GET was slow keeps its full lease (client-go: observedTime after Get)', async () => {
      const path = `${LEASES}/docs-b2`;
      const renewed = { at: 0 };
      const ghost = (renewMs: number) =>
        ghostLease('docs-b2', {
          holderIdentity: 'ghost',
          leaseDurationSeconds: 1,
          acquireTime: microTime(renewMs),
          renewTime: microTime(renewMs),
          leaseTransitions: 2,
        });
      api.apply(ghost(Date.now()));
      let first = true;
      const intercept = (req: IncomingMessage, res: ServerResponse, url: URL) => {
        if (!first || req.method !== 'GET' || url.pathname !== path) return false;
        first = false;
        // The answer is slow (a busy API server); the holder renews meanwhile, and that renewal is what
        // the answer shows. Its length only has to exceed lease - retry for a clock started at the
        // request to expire the lease early; a correct clock passes whatever it is.
        held = setTimeout(() => {
          const now = Date.now();
          api.apply(ghost(now));
          renewed.at = now;
          relayToApi(api.port, req, res, req.headers);
        }, 800);
        return true;
      };
      proxy = await startApiProxy(api, intercept);
      const ctl = await startTestController(
        { ...api, kubeconfig: proxy.kubeconfig },
        ['--election-ttl=1s', '--election-id=docs-b2', '--update-status=false'],
        { POD_NAME: 'ctl-b2' },
      );
      started.push(ctl);
      await ctl.waitForLine(/became the leader/);
      const seen = api.requests.find((r) => r.method === 'GET' && r.path === path)!;
      const takeover = api.requests.find((r) => r.method === 'PUT' && r.path === path && r.status === 200)!;
      assert.ok(seen.at >= renewed.at, 'the slow answer carried the renewal');
      const waited = takeover.at - seen.at;
      assert.ok(
        waited >= 1000,
        `took over ${waited} ms after the answer showing a renewal (the ghost's lease is 1000 ms)`,
      );
    });
  });

  describe('--publish-service by type, a Service that cannot be read or is gone, 409 on the status write', {
    concurrency: false,
  }, () => {
    type Rule = (method: string, path: string) => number | null;
    const proxyState: { rule: Rule | null; seen: { method: string; path: string; status: number }[] } = {
      rule: null,
      seen: [],
    };
    const intercept = (req: IncomingMessage, res: ServerResponse, url: URL): boolean => {
      const status = proxyState.rule?.(req.method ?? 'GET', url.pathname) ?? null;
      if (status === null) return false;
      proxyState.seen.push({ method: req.method ?? 'GET', path: url.pathname, status });
      req.resume();
      replyStatus(res, status);
      return true;
    };
    const relayed = (req: IncomingMessage, status: number) =>
      proxyState.seen.push({
        method: req.method ?? 'GET',
        path: new URL(req.url ?? '/', 'http://x').pathname,
        status,
      });
    const lb = (spec: Obj, status: Obj = {}): Obj => ({
      kind: 'Service',
      metadata: { namespace: 'ingress-nginx', name: 'lb' },
      spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...spec },
      status,
    });
    const cluster = webCluster(['--disable-leader-election', '--publish-service=ingress-nginx/lb'], {
      prepare: (api) => {
        api.apply(
          lb(
            { type: 'LoadBalancer', clusterIP: '10.96.0.50', externalIPs: ['198.51.100.3', '203.0.113.9'] },
            {
              loadBalancer: {
                ingress: [
                  { hostname: 'abc.elb.amazonaws.com' },
                  { ip: '203.0.113.9', hostname: 'both.example.net' },
                ],
              },
            },
          ),
        );
      },
      proxy: (api) => startApiProxy(api, intercept, relayed),
    });
    const webLine = /^status of Ingress default\/web: /;

    /** Applies `service`, then waits until a sync wrote web's status; returns what web shows. */
    async function step(service: Obj): Promise<Obj[] | undefined> {
      const { api, ctl } = cluster;
      const from = ctl.lines.length;
      api.apply(service);
      await lineAfter(ctl, from, webLine);
      return statusOf(api, 'web');
    }

    it('c1a: a LoadBalancer: its status entries (an entry with ip and hostname keeps both, as ingress-nginx) and externalIPs, once each', async () => {
      const { api, ctl } = cluster;
      await lineAfter(ctl, 0, webLine);
      assert.deepEqual(
        asSet(statusOf(api, 'web')),
        asSet([
          { hostname: 'abc.elb.amazonaws.com' },
          { ip: '203.0.113.9', hostname: 'both.example.net' },
          { ip: '198.51.100.3' },
        ]),
      );
    });

    it('c1b: a status PUT answered 409 is retried once over a fresh read, and written (ALLOWED retry409)', async () => {
      const { api, ctl } = cluster;
      const statusPath = `${INGRESSES}/c409a/status`;
      let fired = false;
      proxyState.rule = (method, path) => {
        if (fired || method !== 'PUT' || path !== statusPath) return null;
        fired = true;
        return 409;
      };
      const from = ctl.lines.length;
      api.apply(ingress('c409a', 'c409a.example.com', 'web'));
      await lineAfter(ctl, from, /^status of Ingress default\/c409a: /);
      proxyState.rule = null;
      const mine = proxyState.seen.filter((s) => s.path.startsWith(`${INGRESSES}/c409a`));
      assert.deepEqual(
        mine.map((s) => [s.method, s.path.endsWith('/status') ? 'status' : 'object', s.status]),
        [
          ['PUT', 'status', 409],
          ['GET', 'object', 200],
          ['PUT', 'status', 200],
        ],
      );
      assert.deepEqual(asSet(statusOf(api, 'c409a')), asSet(statusOf(api, 'web')));
      allowedSeen.add('retry409');
    });

    it('c1c: 409 again after the retry: two PUTs and one line for that sync; written at the next sync', async () => {
      const { api, ctl } = cluster;
      const statusPath = `${INGRESSES}/c409b/status`;
      proxyState.rule = (method, path) => (method === 'PUT' && path === statusPath ? 409 : null);
      const puts = () => proxyState.seen.filter((s) => s.method === 'PUT' && s.path === statusPath).length;
      const from = ctl.lines.length;
      let atLine = -1;
      api.apply(ingress('c409b', 'c409b.example.com', 'web'));
      await ctl.waitFor(() => {
        if (
          atLine < 0 &&
          linesAfter(ctl, from).some((l) => /^status of Ingress default\/c409b not written/.test(l))
        )
          atLine = puts();
        return atLine >= 0;
      }, 'the 409 said');
      proxyState.rule = null;
      assert.equal(atLine, 2, 'one PUT and one retry before giving up for this sync');
      assert.match(
        linesAfter(ctl, from).find((l) => /c409b not written/.test(l))!,
        /retrying on the next sync$/,
      );
      const next = ctl.lines.length;
      api.apply(ingress('c409b-touch', 'touch.example.com', 'web'));
      await lineAfter(ctl, next, /^status of Ingress default\/c409b: /);
      assert.deepEqual(asSet(statusOf(api, 'c409b')), asSet(statusOf(api, 'web')));
    });

    it('c1d: a LoadBalancer whose address is pending: none', async () => {
      assert.deepEqual(await step(lb({ type: 'LoadBalancer', clusterIP: '10.96.0.50' })), []);
    });

    it('c1e: a NodePort: its externalIPs (sorted), else its clusterIP', async () => {
      assert.deepEqual(
        await step(
          lb({ type: 'NodePort', clusterIP: '10.96.0.50', externalIPs: ['192.0.2.31', '192.0.2.30'] }),
        ),
        [{ ip: '192.0.2.30' }, { ip: '192.0.2.31' }],
      );
      assert.deepEqual(await step(lb({ type: 'NodePort', clusterIP: '10.96.0.50' })), [{ ip: '10.96.0.50' }]);
    });

    it('c1f: a ClusterIP: its clusterIP; a headless one: the status left as it is, with a line', async () => {
      assert.deepEqual(await step(lb({ type: 'ClusterIP', clusterIP: '10.96.0.51' })), [
        { ip: '10.96.0.51' },
      ]);
      const { api, ctl } = cluster;
      const from = ctl.lines.length;
      api.apply(lb({ type: 'ClusterIP', clusterIP: 'None' }));
      assert.match(
        await lineAfter(ctl, from, /status left as it is$/),
        /^--publish-service ingress-nginx\/lb is headless \(clusterIP None\): no address; /,
      );
      assert.deepEqual(statusOf(api, 'web'), [{ ip: '10.96.0.51' }]);
    });

    it('c1g: an ExternalName: its externalName', async () => {
      assert.deepEqual(await step(lb({ type: 'ExternalName', externalName: 'lb.example.org' })), [
        { hostname: 'lb.example.org' },
      ]);
    });

    it('c1h: the Service cannot be read (503): the status is left as it is, with a line', async () => {
      const { api, ctl } = cluster;
      proxyState.rule = (method, path) =>
        method === 'GET' && path === '/api/v1/namespaces/ingress-nginx/services/lb' ? 503 : null;
      const from = ctl.lines.length;
      const fromRequest = api.requests.length;
      api.apply(ingress('c1h', 'c1h.example.com', 'web'));
      try {
        // The line says why, with the API error's code (not "unreachable" for an answer).
        assert.match(
          await lineAfter(ctl, from, /status left as it is$/),
          /^cannot read the status sources \(KUBE_API_STATUS: .*503/,
        );
        // The sync before (c1g's) may still have been writing the ExternalName's hostname to the other
        // Ingresses as the rule came; nothing else (no blank) is written while the Service is unreadable.
        assert.deepEqual(statusOf(api, 'web'), [{ hostname: 'lb.example.org' }]);
        assert.deepEqual(
          [
            ...new Set(
              statusPuts(api)
                .filter((r) => api.requests.indexOf(r) >= fromRequest)
                .map((r) => JSON.stringify(r.body?.status?.loadBalancer?.ingress)),
            ),
          ].filter((w) => w !== JSON.stringify([{ hostname: 'lb.example.org' }])),
          [],
        );
        assert.deepEqual(statusOf(api, 'c1h'), undefined, 'the new Ingress got no status');
      } finally {
        proxyState.rule = null;
      }
    });

    it('c1i: the Service is deleted: nothing is written, with the documented line', async () => {
      const { api, ctl } = cluster;
      const from = ctl.lines.length;
      const writes = statusPuts(api).length;
      api.remove('Service', 'ingress-nginx', 'lb');
      await lineAfter(ctl, from, /^--publish-service ingress-nginx\/lb not found; status left as it is$/);
      assert.deepEqual(statusOf(api, 'web'), [{ hostname: 'lb.example.org' }]);
      assert.equal(statusPuts(api).length, writes);
    });
  });

  describe('--publish-status-address: sorted, deduplicated, not rewritten when shown, put back, emptied on shutdown', {
    concurrency: false,
  }, () => {
    const EXPECTED = [
      { hostname: '0lb.example.com' },
      { ip: '192.0.2.9' },
      { ip: '2001:db8::1' },
      { hostname: 'a.example.com' },
      { hostname: 'b.example.com' },
    ];
    const foreignStatus = [{ ip: '198.51.100.200' }];
    const cluster = webCluster(
      [
        '--disable-leader-election',
        '--publish-status-address= b.example.com, 192.0.2.9,a.example.com,192.0.2.9 , 2001:DB8::1,0lb.example.com',
      ],
      {
        // POD_NAME names a pod the API does not know (404).
        env: { POD_NAME: 'ctl-gone' },
        prepare: (api) => {
          // Already showing the list, in another order and with a repeat.
          api.apply({
            ...ingress('web', 'web.example.com', 'web'),
            status: {
              loadBalancer: {
                ingress: [
                  { hostname: 'b.example.com' },
                  { ip: '2001:db8::1' },
                  { hostname: 'a.example.com' },
                  { ip: '192.0.2.9' },
                  { hostname: '0lb.example.com' },
                  { ip: '192.0.2.9' },
                ],
              },
            },
          });
          api.apply(ingress('fresh', 'fresh.example.com', 'web'));
          // Another controller's Ingress (legacy class annotation "other"), with its status.
          const foreign = ingress('foreign', 'foreign.example.com', 'web', {
            annotations: { 'kubernetes.io/ingress.class': 'other' },
          });
          delete foreign.spec.ingressClassName;
          api.apply({ ...foreign, status: { loadBalancer: { ingress: foreignStatus } } });
        },
      },
    );

    it('c2a: IPs as ip, the rest as hostname, sorted and deduplicated (ALLOWED ipv6Canonical, mixedSort, dedupe)', async () => {
      const { api, ctl } = cluster;
      await lineAfter(ctl, 0, /^status of Ingress default\/fresh: /);
      const shown = statusOf(api, 'fresh')!;
      assert.deepEqual(shown, EXPECTED);
      if (shown.some((e) => e.ip === '2001:db8::1')) allowedSeen.add('ipv6Canonical');
      if (
        shown.findIndex((e) => e.hostname === '0lb.example.com') <
        shown.findIndex((e) => e.ip === '192.0.2.9')
      )
        allowedSeen.add('mixedSort');
      if (shown.filter((e) => e.ip === '192.0.2.9').length === 1) allowedSeen.add('dedupe');
    });

    it('c2b: an Ingress already showing the list (another order, a repeat) is not written', async () => {
      const { api, ctl } = cluster;
      // A sync that starts after the first one (which saw web) has finished: a new Ingress's.
      const from = ctl.lines.length;
      api.apply(ingress('later', 'later.example.com', 'web'));
      await lineAfter(ctl, from, /^status of Ingress default\/later: /);
      assert.deepEqual(statusPuts(api, 'web'), []);
    });

    it('c2c: a status someone else wrote over ours is put back at the snapshot its change brings', async () => {
      const { api, ctl } = cluster;
      const from = ctl.lines.length;
      api.apply({
        ...api.get('Ingress', 'default', 'web')!,
        status: { loadBalancer: { ingress: [{ ip: '6.6.6.6' }] } },
      });
      await lineAfter(ctl, from, /^status of Ingress default\/web: /);
      assert.deepEqual(statusOf(api, 'web'), EXPECTED);
    });

    it('c2d: --disable-leader-election leads without a Lease; an Ingress of another class is never written', () => {
      const { api } = cluster;
      assert.deepEqual(
        api.requests.filter((r) => r.path.includes('/leases')).map((r) => `${r.method} ${r.path}`),
        [],
      );
      assert.deepEqual(statusPuts(api, 'foreign'), []);
      assert.deepEqual(statusOf(api, 'foreign'), foreignStatus);
    });

    it('c2e: on shutdown, a status of five addresses is left for the next leader (ingress-nginx Shutdown: more than one)', async () => {
      const { api, ctl } = cluster;
      const before = ['web', 'fresh', 'later', 'foreign'].map((name) => [name, statusOf(api, name)]);
      await ctl.close();
      assert.ok(ctl.lines.includes('stopped'), ctl.lines.join('\n'));
      assert.ok(ctl.lines.includes('the status has 5 addresses: kept on shutdown for the next leader'));
      assert.deepEqual(
        ['web', 'fresh', 'later', 'foreign'].map((name) => [name, statusOf(api, name)]),
        before,
      );
      assert.deepEqual(statusPuts(api, 'foreign'), []);
    });
  });

  describe('--publish-status-address of one address, its own pod unknown (404): emptied on shutdown', {
    concurrency: false,
  }, () => {
    const cluster = webCluster(['--disable-leader-election', '--publish-status-address=192.0.2.77'], {
      env: { POD_NAME: 'ctl-gone' },
    });

    it('c2f: its own pod unknown to the API counts as the only replica: ours emptied', async () => {
      const { api, ctl } = cluster;
      await ctl.waitForLine(/^status of Ingress default\/web: 192\.0\.2\.77$/);
      await ctl.close();
      assert.deepEqual(statusOf(api, 'web'), [], ctl.lines.filter((l) => /status|pods/.test(l)).join(' | '));
    });
  });

  describe('a leader in the middle of a sync: snapshots coalesced, the Lease lost', {
    concurrency: false,
  }, () => {
    const SERVICE = '/api/v1/namespaces/ingress-nginx/services/lb';
    const waiters = createWaiters();
    const state = {
      holdNext: false,
      held: null as { req: IncomingMessage; res: ServerResponse } | null,
      leases409: false,
      /** What the controller asked, in order: 'svc' (a sync reads the Service), 'put:NAME' (a status write). */
      log: [] as string[],
    };
    const intercept = (req: IncomingMessage, res: ServerResponse, url: URL): boolean => {
      const path = url.pathname;
      if (req.method === 'PUT' && path.startsWith(LEASES) && state.leases409) {
        req.resume();
        replyStatus(res, 409);
        return true;
      }
      if (req.method === 'GET' && path === SERVICE) state.log.push('svc');
      if (req.method === 'PUT' && path.endsWith('/status')) {
        state.log.push(`put:${path.split('/').at(-2)}`);
        if (state.holdNext) {
          state.holdNext = false;
          state.held = { req, res };
          waiters.signal();
          return true;
        }
      }
      return false;
    };
    const lb = (clusterIP: string): Obj => ({
      kind: 'Service',
      metadata: { namespace: 'ingress-nginx', name: 'lb' },
      spec: { type: 'ClusterIP', clusterIP, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
    });
    // A 6 s lease (3 s renew deadline): the renewal counts from its sending (ddcf442), so with 2 s a
    // loaded CI machine's slow Lease write made the leader step down mid-sync, and b3a saw extra syncs.
    const cluster = webCluster<ApiProxy>(
      ['--election-ttl=6s', '--election-id=docs-b3', '--publish-service=ingress-nginx/lb'],
      {
        env: { POD_NAME: 'ctl-b3' },
        prepare: (api) => {
          api.apply(lb('10.96.0.77'));
        },
        proxy: (api) => startApiProxy(api, intercept),
      },
    );
    /** Holds the next status write; resolves with its place in the log once it is held. */
    async function holdNextWrite(): Promise<number> {
      state.holdNext = true;
      await waiters.until(
        () => state.held ?? undefined,
        20_000,
        () => 'no status write to hold',
      );
      return state.log.length;
    }
    function releaseHeld(): void {
      const held = state.held!;
      state.held = null;
      relayToApi(cluster.api.port, held.req, held.res, held.req.headers);
    }
    after(() => {
      state.holdNext = false;
      if (state.held) state.held.res.destroy();
    });

    it('b3a: snapshots while a sync runs make one more sync, over the latest Ingresses', async () => {
      const { api, ctl } = cluster;
      await api.waitUntil(() => statusOf(api, 'web')?.[0]?.ip === '10.96.0.77');
      api.apply(ingress('q0', 'q0.example.com', 'web'));
      await holdNextWrite();
      // Four snapshots served while that sync waits on its write.
      for (const n of [1, 2, 3, 4]) {
        api.apply(ingress(`q${n}`, `q${n}.example.com`, 'web'));
        await waitForHost(ctl, `q${n}.example.com`);
      }
      const from = state.log.length;
      releaseHeld();
      await api.waitUntil(() => [1, 2, 3, 4].every((n) => statusOf(api, `q${n}`)?.length === 1));
      const log = state.log.slice(from);
      const last = Math.max(...[1, 2, 3, 4].map((n) => log.indexOf(`put:q${n}`)));
      assert.deepEqual(
        log.slice(0, last + 1).filter((e) => e === 'svc'),
        ['svc'],
        `one sync wrote q1..q4, not one per snapshot: ${log.join(' ')}`,
      );
    });

    it('b3b: a leader that loses the Lease while a write is on the wire writes nothing more (with the documented line)', async () => {
      const { api, ctl } = cluster;
      const lines = ctl.lines.length;
      // A new address: every Ingress needs a write, all in one sync.
      api.apply(lb('10.96.0.78'));
      const heldAt = await holdNextWrite();
      state.leases409 = true;
      try {
        await lineAfter(ctl, lines, /^stopped leading/);
        releaseHeld();
        await lineAfter(ctl, lines, /^no longer the leader: status writes stopped$/);
        assert.deepEqual(
          state.log.slice(heldAt).filter((e) => e.startsWith('put:')),
          [],
          'no status write after leadership was lost',
        );
        assert.ok(api.list('Ingress').some((i) => i.status?.loadBalancer?.ingress?.[0]?.ip === '10.96.0.77'));
      } finally {
        state.leases409 = false;
      }
    });
  });

  describe('shutdown while the API server is down (default Lease timings)', { concurrency: false }, () => {
    const cluster = webCluster(['--publish-status-address=192.0.2.44', '--election-id=docs-d'], {
      env: { POD_NAME: 'ctl-d' },
      prepare: (api) => {
        api.apply(pod('ctl-d', { app: 'docs-d' }));
      },
    });

    it('d1: the pods cannot be read: the status is kept, with a line; the Lease is left to expire (ALLOWED podsUnreadableKept, clientGoLeaseDefault)', async () => {
      const { api, ctl } = cluster;
      await ctl.waitForLine(/^status of Ingress default\/web: 192\.0\.2\.44$/);
      const lease = api.get('Lease', 'ingress-nginx', 'docs-d')!.spec;
      assert.deepEqual([lease.holderIdentity, lease.leaseDurationSeconds], ['ctl-d', 15]);
      allowedSeen.add('clientGoLeaseDefault');
      api.setDown(true);
      await ctl.close();
      assert.ok(
        ctl.lines.some((l) =>
          /^cannot list the controller pods \(KUBE_API_STATUS: .+HTTP 503.+\): status kept on shutdown$/.test(
            l,
          ),
        ),
        ctl.lines.join('\n'),
      );
      assert.ok(ctl.lines.some((l) => /^could not release the Lease/.test(l)));
      api.setDown(false);
      assert.deepEqual(statusOf(api, 'web'), [{ ip: '192.0.2.44' }]);
      allowedSeen.add('podsUnreadableKept');
    });
  });

  describe('status from the nodes without POD_NAME', { concurrency: false }, () => {
    const shown = [{ hostname: 'left.by.previous.example.com' }];
    const cluster = webCluster(['--disable-leader-election'], {
      prepare: (api) => {
        api.apply({
          ...ingress('web', 'web.example.com', 'web'),
          status: { loadBalancer: { ingress: shown } },
        });
      },
    });

    it('e1: no pod to read addresses from: the status is left as it is, not blanked', async () => {
      const { api, ctl } = cluster;
      // Either a write (the status blanked) or the line saying why nothing was written.
      await lineAfter(ctl, 0, /^status of Ingress default\/web|status left as it is$/);
      assert.deepEqual(statusOf(api, 'web'), shown, ctl.lines.filter((l) => /status/.test(l)).join(' | '));
    });
  });
});
