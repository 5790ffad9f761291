// docs/controller.md, sections "How it works", "Which Ingresses are served", "Events", "Validating
// admission webhook", "tcp-services and udp-services" and "Failure behaviour": the claims no other test
// checks end to end, met as an operator and an outsider meet them (real sockets on 127.0.0.0/8, the
// fake API server, the controller in-process and as a child process). The Flags table is audited by
// flags-behaviour.test.ts. Claims, quoted:
//
// How it works:
//  C1 "every change triggers a debounce […] then the cluster's objects go through the same buildTopology
//     […] and the gateway swaps the new snapshot in atomically."
//  C2 "A snapshot the gateway refuses leaves the old one serving (`reload rejected (CODE: …); still
//     serving config vN`, then the first 20 issues that blocked it, object and field)"
// Which Ingresses are served:
//  C4 "when the legacy annotation `kubernetes.io/ingress.class` is present (even empty), it must equal
//     `--ingress-class`; an Ingress whose annotation names another class is never 'without class'."
//  C5 "`--default-backend-service` becomes the catch-all when no served Ingress sets
//     `spec.defaultBackend` without rules (as ingress-nginx: an Ingress's catch-all wins). […] (a host
//     root without a `/` rule that falls back to it is its host's location, logged); a catch-all
//     Ingress is an Ingress, named `<namespace>-<service>-<port>` and logged."
// Events:
//  C6 "Written by the leader to the Ingress's namespace (core/v1 Event, `source.component`
//     `nginx-ingress-controller`, `reportingInstance` the identity), for every served Ingress whose spec
//     or annotations changed since its events were last written (status changes, which keepip writes
//     itself, do not count)"
//  C7 "`Warning` for each problem […] `UnsupportedAnnotation` (`UNSUPPORTED_BACKEND_PROTOCOL`), […]
//     `InvalidPath`, `InvalidHost`. The message is the translation's message with its code."
//  C8 "one Event object per (Ingress uid, type, reason, message), named `<ingress>.<16 hex of that key>`"
// Validating admission webhook:
//  C9 "Messages quote a value up to 2,000 characters (a 1 MiB annotation value is not echoed whole into
//     logs, Events or denials)."
//  C10 "The webhook's deadlines: 10 s for a request's headers (ingress-nginx's), 30 s for the whole
//     review, at most 64 connections." — read with "the API server sends small reviews over few
//     connections; anyone else holds at most this much" (src/controller/servers.ts): an outsider who
//     reaches the port must not be able to starve the API server's reviews.
// Failure behaviour:
//  C12 "API server unreachable later | […] `keepip_controller_api_connected 0`"
//  C13 "SIGTERM / SIGINT | […] A second SIGTERM / SIGINT ends the process at once (the Lease is then
//     left to expire)"
//
// Claims of these sections checked elsewhere are listed in the report (claim -> test), not repeated.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { snapshotOptions } from '../../src/controller/controller.ts';
import { parseControllerFlags } from '../../src/controller/flags.ts';
import { createServing } from '../../src/controller/serving.ts';
import type { ClusterObjects } from '../../src/controller/snapshot.ts';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import { createLineSink } from '../../src/gateway/line-sink.ts';
import { createGatewayMetrics } from '../../src/gateway/metrics.ts';
import type { ServedGateway } from '../../src/workers/gateway-primary.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { metricSum, scrape } from '../helpers/metrics.ts';
import { startKeepip } from '../helpers/process.ts';
import {
  type Backend,
  EMPTY_CLUSTER,
  endpointSlice,
  get,
  healthz,
  ingress,
  ingressReview,
  postWebhook,
  seedWeb,
  service,
  startBackend,
  waitForHost,
  webCluster,
  webhookFlags,
} from './harness.ts';

const POD_NAME = 'keepip-docs-0';

/**
 * Differences from the doc's words that are acceptable, each with its reason; the test named in `seen`
 * checks that it is still what happens, so the table cannot rot.
 */
const ALLOWED = {
  catchAllLoggedHostRootLine: {
    claim: "a host root without a `/` rule that falls back to it is its host's location, logged",
    seen: 'the line of such a request names upstream-default-backend as $proxy_upstream_name, as ingress-nginx writes the root location of such a server',
    reason:
      "ingress-nginx's createServers gives the root location of every server the default backend's upstream; the doc's 'its host's location' is about logging (Logs.Access of the server), not the upstream name",
  },
} as const;

/** The Sync Event of Ingress default/`name`, if written. */
const syncEvent = (api: FakeApiServer, name: string): Obj | undefined =>
  api.list('Event').find((e) => e.involvedObject?.name === name && e.reason === 'Sync');

/** The Warning Events of Ingress default/`name`. */
const warnings = (api: FakeApiServer, name: string): Obj[] =>
  api.list('Event').filter((e) => e.involvedObject?.name === name && e.type === 'Warning');

/** A TCP connection from `localAddress` that never sends a byte (no TLS ClientHello). */
function silentConnection(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress }, () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('docs/controller.md claims', { concurrency: true }, () => {
  describe('controller docs claims (one in-process controller: events, class rules, catch-all, webhook)', {
    concurrency: false,
  }, () => {
    let fallback: Backend;
    let catchall: Backend;
    const cluster = webCluster(
      async () => [
        '--disable-leader-election',
        '--publish-status-address=192.0.2.10',
        '--default-backend-service=default/fallback',
        '--watch-ingress-without-class',
        '--enable-metrics=true',
        ...(await webhookFlags()),
      ],
      {
        env: { POD_NAME },
        prepare: async (api) => {
          fallback = await startBackend('fallback');
          catchall = await startBackend('catchall', '127.0.0.3');
          api.apply(service('fallback'));
          api.apply(endpointSlice('fallback', '127.0.0.1', fallback.port));
          api.apply(service('catchall'));
          api.apply(endpointSlice('catchall', '127.0.0.3', catchall.port));
          // A host none of whose rules is `/`: its root falls back to the default backend.
          const partial = ingress('partial', 'partial.example.com', 'web');
          partial.spec.rules[0].http.paths[0].path = '/api';
          api.apply(partial);
        },
      },
    );
    after(async () => {
      await fallback?.close();
      await catchall?.close();
    });

    it('C6 C8: the Sync Event names the component, the identity and <ingress>.<16 hex>; the status keepip writes raises no count', async () => {
      const { api } = cluster;
      // The status write is a change of the Ingress the watch brings back: a snapshot after it runs.
      await api.waitUntil(
        () => api.get('Ingress', 'default', 'web')?.status?.loadBalancer?.ingress?.length === 1,
      );
      const sync = await api.waitUntil(() => syncEvent(api, 'web'));
      assert.match(sync.metadata.name, /^web\.[0-9a-f]{16}$/);
      assert.equal(sync.metadata.namespace, 'default');
      assert.equal(sync.source?.component, 'nginx-ingress-controller');
      assert.equal(sync.reportingComponent, 'nginx-ingress-controller');
      assert.equal(sync.reportingInstance, POD_NAME);
      assert.equal(sync.type, 'Normal');
      assert.equal(sync.message, 'Scheduled for sync');
      // A later Ingress's Sync Event is written after every earlier write (one queue): once it is there,
      // the snapshots after the status write have had their say about web.
      api.apply(ingress('later', 'later.example.com', 'web'));
      await api.waitUntil(() => syncEvent(api, 'later'));
      await api.waitUntil(
        () => api.get('Ingress', 'default', 'later')?.status?.loadBalancer?.ingress?.length === 1,
      );
      api.apply(ingress('marker', 'marker.example.com', 'web'));
      await api.waitUntil(() => syncEvent(api, 'marker'));
      assert.equal(syncEvent(api, 'web')?.count, 1, 'the status write raised the Sync count');
      assert.equal(syncEvent(api, 'later')?.count, 1, 'the status write raised the Sync count');
    });

    it('C7: InvalidHost, InvalidPath and UnsupportedAnnotation (backend-protocol) Warnings, each message ending in its code', async () => {
      const { api, ctl, httpPort } = cluster;
      const badHost = ingress('bad-host', 'Bad_Host!.example.com', 'web');
      const badPath = ingress('bad-path', 'bad-path.example.com', 'web');
      badPath.spec.rules[0].http.paths.push({
        path: '/x y',
        pathType: 'Prefix',
        backend: { service: { name: 'web', port: { number: 80 } } },
      });
      const fcgi = ingress('fcgi', 'fcgi.example.com', 'web', {
        annotations: { 'nginx.ingress.kubernetes.io/backend-protocol': 'FCGI' },
      });
      for (const object of [badHost, badPath, fcgi]) api.apply(object);
      await waitForHost(ctl, 'fcgi.example.com');
      const expect = [
        ['bad-host', 'InvalidHost', 'INVALID_HOST'],
        ['bad-path', 'InvalidPath', 'INVALID_PATH'],
        ['fcgi', 'UnsupportedAnnotation', 'UNSUPPORTED_BACKEND_PROTOCOL'],
      ] as const;
      for (const [name, reason, code] of expect) {
        const event = await api.waitUntil(() => warnings(api, name).find((e) => e.reason === reason));
        assert.ok(event.message.endsWith(`[${code}]`), `${name}: ${event.message}`);
        assert.equal(event.source?.component, 'nginx-ingress-controller');
        assert.match(event.metadata.name, new RegExp(`^${name}\\.[0-9a-f]{16}$`));
      }
      // Still served around what was dropped, the refused protocol failing closed.
      assert.equal((await get(httpPort, 'bad-path.example.com', '/ok')).body, 'web /ok\n');
      assert.equal((await get(httpPort, 'fcgi.example.com')).status, 503);
    });

    it('C4: a legacy class annotation that is present but empty is not "without class", even with --watch-ingress-without-class', async () => {
      const { api, ctl, httpPort } = cluster;
      const empty = ingress('empty-class', 'empty-class.example.com', 'web', {
        annotations: { 'kubernetes.io/ingress.class': '' },
      });
      delete empty.spec.ingressClassName;
      const other = ingress('other-class', 'other-class.example.com', 'web', {
        annotations: { 'kubernetes.io/ingress.class': 'traefik' },
      });
      delete other.spec.ingressClassName;
      const none = ingress('no-class', 'no-class.example.com', 'web');
      delete none.spec.ingressClassName;
      api.apply(empty);
      api.apply(other);
      api.apply(none);
      // The Ingress without any class is served: the snapshot that has it had the other two as well.
      await waitForHost(ctl, 'no-class.example.com');
      assert.equal((await get(httpPort, 'no-class.example.com')).body, 'web /\n');
      for (const host of ['empty-class.example.com', 'other-class.example.com']) {
        const answer = await get(httpPort, host, '/probe');
        assert.equal(answer.body, 'fallback /probe\n', `${host} answered by its Ingress`);
      }
    });

    it('C5: a host root without "/" falls back to --default-backend-service and is logged; a catch-all Ingress wins, logged as <namespace>-<service>-<port>', async () => {
      const { api, ctl, httpPort } = cluster;
      const root = await get(httpPort, 'partial.example.com', '/root-fallback');
      assert.equal(root.body, 'fallback /root-fallback\n');
      await ctl.waitFor(
        () => ctl.accessLines.some((l) => l.includes('/root-fallback')),
        "the host root's line",
      );
      const rootLine = ctl.accessLines.find((l) => l.includes('/root-fallback'))!;
      // ALLOWED.catchAllLoggedHostRootLine
      assert.match(rootLine, /\[upstream-default-backend\]/, ALLOWED.catchAllLoggedHostRootLine.seen);
      // The catch-all Ingress (spec.defaultBackend, no rules).
      api.apply({
        kind: 'Ingress',
        metadata: { namespace: 'default', name: 'catch', annotations: {} },
        spec: {
          ingressClassName: 'nginx',
          defaultBackend: { service: { name: 'catchall', port: { number: 80 } } },
        },
      });
      await ctl.waitFor(
        () =>
          ctl.running.gateway()?.snapshot().topology.gateway.defaultBackend?.upstreamName ===
          'default-catchall-80',
        'the catch-all Ingress serves unknown hosts',
      );
      const unknown = await get(httpPort, 'nobody.example.com', '/catch-me');
      assert.equal(unknown.body, 'catchall /catch-me\n', "the Ingress's catch-all wins over the flag");
      await ctl.waitFor(() => ctl.accessLines.some((l) => l.includes('/catch-me')), "the catch-all's line");
      assert.match(ctl.accessLines.find((l) => l.includes('/catch-me'))!, /\[default-catchall-80\]/);
    });

    it('C2: a rejected reload lists the first 20 issues, then how many more', async () => {
      const { api, ctl, httpPort } = cluster;
      const from = ctl.mark();
      // 25 Ingresses whose spec.rules is no list (no API server stores that): one blocking issue each.
      const names = Array.from({ length: 25 }, (_, i) => `broken-${String(i).padStart(2, '0')}`);
      for (const name of names)
        api.apply({
          kind: 'Ingress',
          metadata: { namespace: 'default', name },
          spec: { ingressClassName: 'nginx', rules: 'not a list' },
        });
      try {
        // A burst may be split into several snapshots; the one with more than 20 issues says so.
        const moreLine = await ctl.waitForLine(/^error: … and \d+ more issues$/);
        const said = ctl.lines.slice(from);
        const more = said.indexOf(moreLine);
        const rejected = said
          .slice(0, more)
          .findLastIndex((l) => /reload rejected \(.*\); still serving config v\d+/.test(l));
        assert.ok(rejected >= 0, said.join('\n'));
        const listed = said.slice(rejected + 1, more);
        assert.equal(listed.length, 20, listed.join('\n'));
        assert.ok(
          listed.every((l) => l.startsWith('error: ') && /Ingress default\/broken-\d\d/.test(l)),
          listed.join('\n'),
        );
        assert.ok(Number(/… and (\d+) more/.exec(moreLine)![1]) >= 5, moreLine);
        assert.equal((await get(httpPort, 'web.example.com', '/still')).body, 'web /still\n');
      } finally {
        for (const name of names) api.remove('Ingress', 'default', name);
      }
      // The removal serves what v1 served (no reload); the next change is served again.
      api.apply(ingress('after-broken', 'after-broken.example.com', 'web'));
      await waitForHost(ctl, 'after-broken.example.com');
    });

    it('C9: a denial quotes at most 2,000 characters of a 1 MiB annotation value', async () => {
      const { ctl } = cluster;
      const port = ctl.running.webhookAddress!.port;
      const huge = ingress('huge', 'huge.example.com', 'web', {
        annotations: { 'nginx.ingress.kubernetes.io/whitelist-source-range': 'x'.repeat(1024 * 1024) },
      });
      const answer = await postWebhook(port, JSON.stringify(ingressReview(huge, { name: 'huge' })));
      assert.equal(answer.status, 200);
      const response = JSON.parse(answer.body).response;
      assert.equal(response.allowed, false);
      const message = String(response.status?.message ?? '');
      assert.match(message, /INVALID_SOURCE_RANGE/);
      const longestRun = Math.max(0, ...(message.match(/x+/g) ?? []).map((run) => run.length));
      assert.ok(longestRun <= 2000, `the denial quotes ${longestRun} characters of the value`);
    });

    it("C10: 64 TCP connections that never start TLS do not starve the API server's review (found here, fixed)", async () => {
      const { ctl } = cluster;
      const port = ctl.running.webhookAddress!.port;
      const held: net.Socket[] = [];
      try {
        // An outsider on the pod network (127.0.0.66): 64 connections, not one byte sent.
        for (let i = 0; i < 64; i++) held.push(await silentConnection(port, '127.0.0.66'));
        const review = JSON.stringify(
          ingressReview(ingress('fresh', 'fresh.example.com', 'web'), { name: 'fresh' }),
        );
        const outcome = await postWebhook(port, review).then(
          (a) => `${a.status} allowed=${JSON.parse(a.body).response?.allowed}`,
          (error: NodeJS.ErrnoException) => `no answer: ${error.code ?? error.message}`,
        );
        assert.equal(outcome, '200 allowed=true');
      } finally {
        for (const s of held) s.destroy();
      }
    });

    it('C12: while the API server is unreachable keepip_controller_api_connected is 0, and 1 again after (found here, fixed)', async () => {
      const { api, ctl, httpPort } = cluster;
      const metricsPort = ctl.running.healthzAddress!.port;
      assert.equal(metricSum(await scrape('127.0.0.1', metricsPort), 'keepip_controller_api_connected'), 1);
      ctl.mark();
      api.setDown(true);
      try {
        await ctl.waitForLine(/keeping the last good objects, retrying with backoff/);
        await ctl.waitFor(() => ctl.running.gateway() !== null, 'serving');
        const down = await scrape('127.0.0.1', metricsPort);
        assert.equal(metricSum(down, 'keepip_controller_api_connected'), 0);
        assert.equal(metricSum(down, 'keepip_controller_synced'), 1);
        const health = await healthz(metricsPort);
        assert.equal(health.status, 200);
        assert.match(health.body, /API server unreachable: serving the last good snapshot/);
        assert.equal((await get(httpPort, 'web.example.com', '/outage')).body, 'web /outage\n');
      } finally {
        api.setDown(false);
      }
      await ctl.waitForLine(/connected again at resourceVersion/);
      await ctl.waitFor(() => {
        const statuses = ctl.lines.filter((l) => /connected again at resourceVersion/.test(l));
        return statuses.length > 0;
      }, 'reconnected');
    });
  });

  describe('C1: a change that comes while the first snapshot is being started is served (found here, fixed)', {
    concurrency: false,
  }, () => {
    // The controller's Serving, as the controller wires it (src/controller/controller.ts wireCore): the
    // debouncer calls flush(); here the second flush is called while the first start is still under way,
    // which is what happens to a change that arrives within the gateway's start (forking the workers
    // takes about a second: an Ingress created 150-300 ms after the first sync was never served by a
    // `keepip controller --workers=2`, until some other change came).
    let gateway: ServedGateway | null = null;
    let tcp: ReturnType<typeof createTcpRunner> | null = null;
    after(async () => {
      await gateway?.close();
      await tcp?.close();
    });

    it('the second flush (an Ingress added, an allowlist tightened) reaches the gateway once it has started', async () => {
      const parsed = parseControllerFlags(
        ['--bind-address', '127.0.0.1', '--http-port=0', '--https-port=0', '--healthz-port=0'],
        {},
      );
      if (parsed.ok !== true) throw new Error(JSON.stringify(parsed));
      const o = parsed.options;
      const metrics = createGatewayMetrics();
      const lines: string[] = [];
      let signal = () => {};
      const log = (line: string) => {
        lines.push(line);
        signal();
      };
      tcp = createTcpRunner({ host: '127.0.0.1', registry: metrics.registry, log, accessLog: () => {} });
      const quiet = createLineSink(new Writable({ write: (_c, _e, cb) => cb() }));
      const web = ingress('web', 'web.example.com', 'web');
      let objects: ClusterObjects = {
        ...EMPTY_CLUSTER,
        services: [service('web')],
        endpointSlices: [endpointSlice('web', '127.0.0.1', 9)],
        ingresses: [web],
      };
      const serving = createServing({
        options: o,
        snapshotOptions: snapshotOptions(o),
        objects: () => objects,
        metrics,
        tcp,
        log,
        accessLog: quiet,
        errorLog: quiet,
        onServed: () => {},
      });
      serving.flush();
      // The change: a new Ingress, and the served one now allowlisted to 10.0.0.0/8 only.
      const locked = ingress('web', 'web.example.com', 'web', {
        annotations: { 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8' },
      });
      objects = { ...objects, ingresses: [locked, ingress('added', 'added.example.com', 'web')] };
      serving.flush();
      gateway = await serving.ready;
      const hosts = () =>
        gateway!
          .snapshot()
          .topology.gateway.virtualHosts.map((v) => v.host)
          .sort();
      // Safe: the change is served without waiting for another one (a reload follows the start).
      const deadline = Date.now() + 20_000; // bounds a controller that never serves it
      while (!hosts().includes('added.example.com') && Date.now() < deadline)
        await new Promise<void>((resolve) => {
          signal = resolve;
          setTimeout(resolve, 100);
        });
      assert.deepEqual(hosts(), ['added.example.com', 'web.example.com'], lines.join('\n'));
      const port = gateway.httpAddress!.port;
      assert.equal((await get(port, 'web.example.com')).status, 403, 'the tightened allowlist is in force');
    });
  });

  describe('C13: a controller process stopped with two SIGTERMs', {
    concurrency: false,
  }, () => {
    let api: FakeApiServer;
    let web: Backend;
    let child: ReturnType<typeof startKeepip> | null = null;
    before(async () => {
      api = await startFakeApiServer();
      web = await startBackend('web');
      seedWeb(api, web.port);
    });
    after(async () => {
      if (child !== null && child.child.exitCode === null && child.child.signalCode === null)
        child.child.kill('SIGKILL');
      await child?.stop();
      await api?.close();
      await web?.close();
    });

    it('a second SIGTERM during the shutdown grace period exits at once, the Lease left to expire', async () => {
      child = startKeepip(
        [
          'controller',
          `--kubeconfig=${api.kubeconfig}`,
          '--bind-address=127.0.0.1',
          '--http-port=0',
          '--https-port=0',
          '--healthz-port=0',
          '--workers=1',
          '--election-id=docs-leader',
          '--shutdown-grace-period=60',
          '--post-shutdown-grace-period=0',
        ],
        { env: { POD_NAMESPACE: 'ingress-nginx', POD_NAME } },
      );
      const [, httpPort] = await child.waitFor(/listening http 127\.0\.0\.1:(\d+)/);
      assert.equal((await get(Number(httpPort), 'web.example.com', '/x')).body, 'web /x\n');
      await api.waitUntil(
        () => api.get('Lease', 'ingress-nginx', 'docs-leader')?.spec?.holderIdentity === POD_NAME,
      );
      const exited = new Promise<string | number | null>((resolve) =>
        child!.child.once('exit', (code, sig) => resolve(sig ?? code)),
      );
      child.child.kill('SIGTERM');
      await child.waitFor(/shutting down: \/healthz answers 500/);
      child.child.kill('SIGTERM');
      // The first stop is in its 60 s grace period: only the second signal can end it now.
      // A bound, not a timing expectation: the default action is immediate.
      let timer: NodeJS.Timeout | undefined;
      const how = await Promise.race([
        exited,
        new Promise((resolve) => {
          timer = setTimeout(() => resolve('still running 5 s later'), 5_000);
        }),
      ]);
      clearTimeout(timer);
      assert.equal(how, 'SIGTERM');
      assert.equal(api.get('Lease', 'ingress-nginx', 'docs-leader')?.spec?.holderIdentity, POD_NAME);
    });
  });
});
