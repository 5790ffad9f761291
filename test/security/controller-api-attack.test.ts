// `keepip controller` against an API server that fails or lies: every LIST/WATCH answered 500, 503 or
// 429 (with and without Retry-After), a watch that is 410 Gone on every attempt, Lease renewals that
// get 409 Conflict forever, status writes that get 422/404, Event writes that fail, a LIST split into
// pages with continue tokens, and the admission webhook while the API is down. What must hold: backoff
// (measured by the requests the API saw, and only as lower bounds on the gaps the controller's own
// backoff policy promises, so a slow machine cannot fail them), the last good configuration keeps
// serving, a leader that cannot renew stops writing, and no failure turns into a hot loop. A small
// proxy in front of the fake API server (test/fixtures/fake-apiserver.ts) injects the faults.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  type ApiIntercept,
  type Backend,
  createWaiters,
  get,
  ingress,
  ingressReview,
  postWebhook,
  seedWeb,
  startApiProxy,
  startBackend,
  startTestController,
  type TestController,
  waitForHost,
  type WebCluster,
  webCluster,
  webhookFlags,
} from '../controller/harness.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';

/** A request the proxy saw: `faked` when a rule answered it instead of the API server. */
interface Seen {
  seq: number;
  method: string;
  path: string;
  query: URLSearchParams;
  plural: string;
  watch: boolean;
  status: number;
  faked: boolean;
  at: number;
}

/** What a rule answers instead of the API server. */
interface Fault {
  status: number;
  headers?: Record<string, string>;
  body?: Obj;
}

type Rule = (r: Omit<Seen, 'seq' | 'status' | 'faked' | 'at'>) => Fault | null;

/** One sequence for every proxy, so requests of two controllers can be ordered. */
let sequence = 0;

function failure(status: number, headers: Record<string, string> = {}): Fault {
  return {
    status,
    headers,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      code: status,
      message: `injected ${status}`,
    },
  };
}

/** A proxy in front of `api` whose `rule` may answer any request itself; it records every request. */
async function startFaultProxy(api: FakeApiServer) {
  const seen: Seen[] = [];
  const waiters = createWaiters();
  const proxy = {
    seen,
    rule: null as Rule | null,
    kubeconfig: '',
    close: async () => {},
    /** Resolves with the matching requests once there are `count` (checked on every request). */
    waitFor(match: (s: Seen) => boolean, count = 1, timeoutMs = 20_000): Promise<Seen[]> {
      return waiters.until(
        () => {
          const hits = seen.filter(match);
          return hits.length < count ? undefined : hits;
        },
        timeoutMs,
        () => `${seen.filter(match).length} of ${count} requests within ${timeoutMs} ms`,
      );
    },
  };
  /** The entries of the requests being relayed, for their status. */
  const relayed = new WeakMap<IncomingMessage, Seen>();
  const intercept: ApiIntercept = (req, res, url) => {
    const plural =
      /^\/(?:api\/v1|apis\/[^/]+\/[^/]+)(?:\/namespaces\/[^/]+)?\/([a-z]+)/.exec(url.pathname)?.[1] ?? '';
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const info = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, plural, watch };
    const fault = proxy.rule?.(info) ?? null;
    const entry: Seen = { ...info, seq: ++sequence, status: 0, faked: fault !== null, at: Date.now() };
    seen.push(entry);
    waiters.signal();
    if (fault === null) {
      relayed.set(req, entry);
      return false;
    }
    req.resume();
    entry.status = fault.status;
    const headers = { 'content-type': 'application/json', ...fault.headers };
    res.writeHead(fault.status, headers).end(JSON.stringify(fault.body ?? {}));
    return true;
  };
  const relay = await startApiProxy(api, intercept, (req, status) => {
    relayed.get(req)!.status = status;
    waiters.signal();
  });
  proxy.kubeconfig = relay.kubeconfig;
  proxy.close = relay.close;
  return proxy;
}

type FaultProxy = Awaited<ReturnType<typeof startFaultProxy>>;

/** The smallest total of `gaps` backoff delays the test policy (20 ms doubling, at most 200 ms) allows. */
function minimumBackoff(gaps: number): number {
  let total = 0;
  for (let n = 0; n < gaps; n++) total += Math.min(200, 20 * 2 ** n);
  return total;
}

/** A controller behind its own fault proxy, serving web.example.com. */
async function startBehindProxy(api: FakeApiServer, args: string[], env: Record<string, string> = {}) {
  const proxy = await startFaultProxy(api);
  const ctl = await startTestController({ ...api, kubeconfig: proxy.kubeconfig }, args, env);
  return { proxy, ctl };
}

/** What proxiedCluster starts: set in its before(), so read the fields in tests, not at collection. */
type ProxiedCluster = WebCluster<FaultProxy>;

/**
 * Call in a describe body: a before() that starts a fake API server seeded with seedWeb (and
 * `prepare`), a fault proxy (its rule set by `prepare` too) and a controller behind it with `flags`,
 * serving; an after() that closes them.
 */
function proxiedCluster(
  flags: () => Promise<string[]>,
  prepare: (api: FakeApiServer, proxy: FaultProxy) => void = () => {},
): ProxiedCluster {
  return webCluster(flags, {
    proxy: async (api) => {
      const proxy = await startFaultProxy(api);
      prepare(api, proxy);
      return proxy;
    },
  });
}

/** Every GET that `only` picks gets `fault` until `heal`; open streams are cut so the next ones fail. */
function failReads(
  c: ProxiedCluster,
  fault: Fault,
  only: (r: Seen) => boolean = () => true,
): { from: number; heal(): void } {
  const from = sequence;
  c.proxy.rule = (r) =>
    r.method === 'GET' && only({ ...r, seq: 0, status: 0, faked: true, at: 0 }) ? fault : null;
  c.api.dropWatches();
  return {
    from,
    heal: () => {
      c.proxy.rule = null;
    },
  };
}

/** An AdmissionReview of `object` (CREATE in namespace default). */
function review(object: Obj, uid: string): string {
  return JSON.stringify(ingressReview(object, { uid, name: object.metadata.name }));
}

const outageLine = /ingresses: .*keeping the last good objects, retrying with backoff/;

describe('every LIST and WATCH fails (one controller behind the fault proxy)', () => {
  const c = proxiedCluster(async () => [
    '--disable-leader-election',
    '--workers=1',
    ...(await webhookFlags()),
  ]);

  for (const status of [500, 503, 429]) {
    it(`${status} to every LIST and WATCH: backoff that grows, said once, the last good configuration serves, then recovery`, async () => {
      const { api, proxy, ctl, httpPort } = c;
      const from = ctl.mark();
      const outage = failReads(c, failure(status));
      const hits = await proxy.waitFor((s) => s.seq > outage.from && s.faked && s.plural === 'ingresses', 6);
      const span = hits[5]!.at - hits[0]!.at;
      assert.ok(span >= minimumBackoff(5) - 5, `6 failed ingress requests within ${span} ms`);
      assert.equal((await get(httpPort, 'web.example.com', '/during')).status, 200);
      const said = ctl.lines.slice(from).filter((l) => outageLine.test(l)).length;
      outage.heal();
      api.apply(ingress(`back-${status}`, `back-${status}.example.com`, 'web'));
      await waitForHost(ctl, `back-${status}.example.com`);
      assert.equal((await get(httpPort, `back-${status}.example.com`, '/')).status, 200);
      assert.equal(said, 1, 'the outage is said once, not per retry');
    });
  }

  it('a 429 with Retry-After: 2 is not retried before 2 s (client-go rest client honours Retry-After)', async () => {
    const { api, proxy } = c;
    const outage = failReads(c, failure(429, { 'retry-after': '2' }));
    try {
      const hits = await proxy.waitFor((s) => s.seq > outage.from && s.faked && s.plural === 'ingresses', 2);
      const gap = hits[1]!.at - hits[0]!.at;
      assert.ok(gap >= 1950, `retried ${gap} ms after a 429 that said Retry-After: 2`);
    } finally {
      outage.heal();
      await api.waitUntil(() => api.openWatches('Ingress') === 1);
    }
  });

  it('a watch that is 410 Gone on every attempt: the relists back off and grow (no relist storm)', async () => {
    const { proxy, httpPort } = c;
    const outage = failReads(c, failure(410), (r) => r.watch && r.plural === 'ingresses');
    try {
      const lists = await proxy.waitFor(
        (s) => s.seq > outage.from && s.plural === 'ingresses' && !s.watch && !s.faked,
        6,
      );
      const span = lists[5]!.at - lists[0]!.at;
      assert.equal((await get(httpPort, 'web.example.com', '/gone')).status, 200);
      assert.ok(span >= minimumBackoff(5) - 5, `6 full relists of ingresses within ${span} ms`);
    } finally {
      outage.heal();
    }
  });

  it('the webhook keeps checking against the last good cache while the API is down (no fail-open)', async () => {
    const { ctl } = c;
    const outage = failReads(c, failure(500));
    try {
      await ctl.waitForLine(outageLine);
      const port = ctl.running.webhookAddress!.port;
      const twin = JSON.parse(
        (await postWebhook(port, review(ingress('twin', 'web.example.com', 'web'), 'u1'))).body,
      );
      const fresh = JSON.parse(
        (await postWebhook(port, review(ingress('new', 'new.example.com', 'web'), 'u2'))).body,
      );
      assert.deepEqual(
        {
          twin: twin.response.allowed,
          overlap: /ADMISSION_PATH_OVERLAP/.test(twin.response.status?.message ?? ''),
        },
        { twin: false, overlap: true },
      );
      assert.equal(fresh.response.allowed, true);
    } finally {
      outage.heal();
    }
  });
});

const statusPut = (s: Seen) => s.path.endsWith('/status') && (s.method === 'PUT' || s.method === 'PATCH');
const eventWrite = (s: Seen) => s.plural === 'events' && s.method !== 'GET';

describe('status and Event writes that fail (one controller, leader without election)', () => {
  const c = proxiedCluster(async () => [
    '--disable-leader-election',
    '--workers=1',
    '--publish-status-address=192.0.2.7',
  ]);

  for (const status of [422, 404]) {
    it(`status writes answered ${status} forever: one attempt per Ingress per sync, no hot loop, traffic served`, async () => {
      const { api, proxy, ctl, httpPort } = c;
      const from = sequence;
      const mark = ctl.mark();
      const pending = api.list('Ingress').filter((i) => !i.status?.loadBalancer?.ingress?.length).length;
      proxy.rule = (r) =>
        statusPut({ ...r, seq: 0, status: 0, faked: true, at: 0 }) ? failure(status) : null;
      try {
        const names = [1, 2, 3].map((i) => `s${status}-${i}`);
        for (const name of names) {
          api.apply(ingress(name, `${name}.example.com`, 'web'));
          await waitForHost(ctl, `${name}.example.com`);
          await ctl.waitForLine(new RegExp(`status of Ingress default/${name} not written`));
        }
        assert.equal((await get(httpPort, `${names[2]}.example.com`, '/')).status, 200);
        const puts = proxy.seen.filter((s) => s.seq > from && statusPut(s)).length;
        const said = ctl.lines.slice(mark).filter((l) => /not written/.test(l)).length;
        // One sync per new Ingress (each served on its own), each over every Ingress still unwritten;
        // twice that leaves room for a debounced extra sync, not for a loop.
        const bound = 2 * (3 * pending + 1 + 2 + 3);
        assert.ok(puts <= bound, `${puts} status writes for 3 new Ingresses (${pending} pending before)`);
        assert.equal(puts, said, 'every failed write is one attempt and one line');
      } finally {
        proxy.rule = null;
      }
    });
  }

  it('Event writes answered 500 forever: no retry loop, the data path is not affected', async () => {
    const { api, proxy, ctl, httpPort } = c;
    const from = sequence;
    const mark = ctl.mark();
    proxy.rule = (r) => (eventWrite({ ...r, seq: 0, status: 0, faked: true, at: 0 }) ? failure(500) : null);
    try {
      const names = ['ev-1', 'ev-2', 'ev-3'];
      for (const name of names) {
        api.apply(ingress(name, `${name}.example.com`, 'web'));
        await waitForHost(ctl, `${name}.example.com`);
        await ctl.waitForLine(new RegExp(`event \\w+ on Ingress default/${name} not written`));
        assert.equal((await get(httpPort, `${name}.example.com`, '/')).status, 200);
      }
      const writes = proxy.seen.filter((s) => s.seq > from && eventWrite(s)).length;
      const said = ctl.lines.slice(mark).filter((l) => /^event .* not written/.test(l)).length;
      assert.ok(
        writes <= 2 * said && said <= 6,
        `${writes} Event writes, ${said} failures said, for 3 Ingresses`,
      );
    } finally {
      proxy.rule = null;
    }
  });
});

/** The proxy sequence number at the moment `ctl` logs a line matching `pattern` (checked inside the log call). */
function seqAtLine(ctl: TestController, pattern: RegExp, from: number): Promise<number> {
  let at = -1;
  return ctl
    .waitFor(() => {
      if (at < 0 && ctl.lines.slice(from).some((l) => pattern.test(l))) at = sequence;
      return at >= 0;
    }, `line ${pattern}`)
    .then(() => at);
}

const ADDRESS: Record<string, string> = { 'ctl-a': '192.0.2.1', 'ctl-b': '192.0.2.2' };
const statusOf = (api: FakeApiServer, name: string): string | undefined =>
  api.get('Ingress', 'default', name)?.status?.loadBalancer?.ingress?.[0]?.ip;

describe('Lease renewals that get 409 Conflict forever (two controllers, each behind its own proxy)', () => {
  let api: FakeApiServer;
  let web: Backend;
  const replicas: Record<string, { proxy: FaultProxy; ctl: TestController }> = {};

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
    for (const name of ['ctl-a', 'ctl-b']) {
      // Different addresses: two writers at once would make the status flap, and show whose it is.
      replicas[name] = await startBehindProxy(
        api,
        [
          '--workers=1',
          '--election-ttl=2s',
          '--election-id=api-attack',
          `--publish-status-address=${ADDRESS[name]}`,
        ],
        { POD_NAME: name },
      );
    }
  });
  after(async () => {
    for (const r of Object.values(replicas)) {
      await r.ctl.close();
      await r.proxy.close();
    }
    await api?.close();
    await web?.close();
  });

  it('the leader steps down, writes no status after, and the other leads only after that; it never wrote as follower', async () => {
    const leader = await Promise.race(
      Object.entries(replicas).map(([name, r]) => r.ctl.waitForLine(/became the leader/).then(() => name)),
    );
    const follower = leader === 'ctl-a' ? 'ctl-b' : 'ctl-a';
    const L = replicas[leader]!;
    const F = replicas[follower]!;
    await api.waitUntil(() => statusOf(api, 'web') === ADDRESS[leader]);
    const stepFrom = L.ctl.mark();
    const takeFrom = F.ctl.mark();
    L.proxy.rule = (r) => (r.plural === 'leases' && r.method !== 'GET' ? failure(409) : null);
    const stepDown = await seqAtLine(L.ctl, /stopped leading/, stepFrom);
    const takeover = await seqAtLine(F.ctl, /became the leader/, takeFrom);
    api.apply(ingress('after', 'after.example.com', 'web'));
    await waitForHost(L.ctl, 'after.example.com');
    await api.waitUntil(() => statusOf(api, 'after') === ADDRESS[follower]);
    await api.waitUntil(() => statusOf(api, 'web') === ADDRESS[follower]);
    const lateWrites = L.proxy.seen.filter((s) => s.seq > stepDown && statusPut(s));
    const earlyWrites = F.proxy.seen.filter((s) => s.seq < takeover && statusPut(s));
    L.proxy.rule = null;
    assert.deepEqual(
      {
        steppedDownFirst: stepDown < takeover,
        leaderWroteAfter: lateWrites.length,
        followerWroteBefore: earlyWrites.length,
      },
      { steppedDownFirst: true, leaderWroteAfter: 0, followerWroteBefore: 0 },
    );
  });

  it('the stepped-down leader keeps trying the Lease at the retry pace, not in a loop', async () => {
    const ex = Object.entries(replicas).find(([, r]) => !r.ctl.running.leading())!;
    const from = sequence;
    ex[1].proxy.rule = (r) => (r.plural === 'leases' && r.method !== 'GET' ? failure(409) : null);
    try {
      // Retry period 500 ms (ttl/4), jittered up to 2.2x: 6 reads of the Lease take at least 5 periods.
      const reads = await ex[1].proxy.waitFor(
        (s) => s.seq > from && s.plural === 'leases' && s.method === 'GET',
        6,
      );
      const span = reads[5]!.at - reads[0]!.at;
      assert.ok(span >= 5 * 500 - 5, `6 Lease reads within ${span} ms`);
    } finally {
      ex[1].proxy.rule = null;
    }
  });
});

/** A page of the Ingresses as the API server pages them: `limit` items from the offset in `continue`. */
function ingressPage(api: FakeApiServer, query: URLSearchParams): Fault {
  const all = api.list('Ingress');
  const offset = Number(query.get('continue') ?? '0');
  const limit = Number(query.get('limit'));
  const next = offset + limit < all.length ? String(offset + limit) : undefined;
  const rv = String(Math.max(...all.map((i) => Number(i.metadata.resourceVersion))));
  return {
    status: 200,
    body: {
      kind: 'IngressList',
      apiVersion: 'networking.k8s.io/v1',
      metadata: { resourceVersion: rv, ...(next !== undefined ? { continue: next } : {}) },
      items: all.slice(offset, offset + limit).map(({ kind: _k, apiVersion: _a, ...rest }) => rest),
    },
  };
}

describe('a LIST of 1,201 Ingresses in pages (continue tokens)', () => {
  const c = proxiedCluster(
    async () => ['--disable-leader-election', '--workers=1'],
    (api, proxy) => {
      for (let i = 0; i < 1200; i++) api.apply(ingress(`p${i}`, `p${i}.example.com`, 'web'));
      proxy.rule = (r) =>
        r.plural === 'ingresses' && r.method === 'GET' && !r.watch && r.query.has('limit')
          ? ingressPage(api, r.query)
          : null;
    },
  );

  it('asks for pages of 500, follows continue to the end, and serves every Ingress once', async () => {
    const { proxy, ctl } = c;
    await ctl.running.serving();
    await waitForHost(ctl, 'p1199.example.com');
    const pages = proxy.seen.filter((s) => s.plural === 'ingresses' && !s.watch);
    assert.deepEqual(
      pages.map((s) => [s.query.get('limit'), s.query.get('continue')]),
      [
        ['500', null],
        ['500', '500'],
        ['500', '1000'],
      ],
    );
    const hosts = ctl.running
      .gateway()!
      .snapshot()
      .topology.gateway.virtualHosts.map((v) => v.host);
    assert.equal(hosts.filter((h) => /^p\d+\.example\.com$/.test(h)).length, 1200);
    assert.equal(new Set(hosts).size, hosts.length);
  });
});
