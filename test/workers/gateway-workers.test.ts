// keepip gateway --workers 2 as a user runs it: the workers share the port (each serves, named by
// nginx's $pid in the access log), one /metrics sums them, one dashboard shows every worker's
// decisions, a reload reaches every worker (an invalid one none), a killed worker is replaced by one
// serving the latest configuration, and SIGTERM drains every worker. Processes are real; every wait is on a line, a counter or the backend.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, ingress, manifestDir, toYaml, webApp } from '../fixtures/gateway/manifests.ts';
import { startHeldBackend } from '../helpers/held-backend.ts';
import { connectOutcome } from '../helpers/net.ts';
import { pollUntil } from '../helpers/descriptors.ts';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { runKeepip } from '../helpers/process.ts';
import {
  parseServed,
  startWorkersGateway,
  untilEveryWorkerServed,
  type WorkersGateway,
  workerLogFormat,
  alive,
} from './helpers.ts';
import type { DecisionSummary } from '../../src/dashboard/decision-view.ts';

/** A decision as /api/decisions lists it. */
type Decision = DecisionSummary;

interface Stats {
  counters: { seen: number; denied: number };
  topDenied: { address: string; count: number }[];
  seconds: { routes: Record<string, { requests: number; denials: number }> }[];
}

/** GETs a dashboard API until `done` holds of its JSON (the workers' batches come every 200 ms). */
// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field by the test
async function dashboardUntil(board: URL, path: string, done: (body: any) => boolean): Promise<any> {
  let body: unknown;
  await pollUntil(`the dashboard's ${path} shows every request`, async () => {
    body = await (await fetch(new URL(path, board))).json();
    return done(body);
  });
  return body;
}

describe('keepip gateway --workers', () => {
  let backend: RunningWhoami;
  let dir: ReturnType<typeof manifestDir>;

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    dir = manifestDir();
  });
  after(async () => {
    await backend.close();
    dir.remove();
  });

  const manifests = (marker: string, port = backend.address.port) =>
    toYaml([
      controllerConfigMap({ 'log-format-upstream': workerLogFormat(marker) }),
      ...webApp(port),
      ingress({
        name: 'private',
        host: 'private.example.com',
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations: { 'whitelist-source-range': '127.0.9.0/24' },
      }),
    ]);

  test('--workers takes a count or auto; 0 and words are usage errors', async () => {
    const file = dir.write('usage.yaml', manifests('m'));
    const help = await runKeepip(['gateway', '--help']);
    assert.match(help.stdout, /--workers <N\|auto>/);
    for (const bad of ['0', 'two', '-1', '1025']) {
      const result = await runKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0', `--workers=${bad}`]);
      assert.equal(result.code, 2, `--workers ${bad}`);
      assert.match(result.stderr, /--workers: .*\[WORKER_COUNT_INVALID\]/);
    }
  });

  describe('two workers on one port', () => {
    let gw: WorkersGateway;
    let file: string;
    let board: URL;

    before(async () => {
      file = dir.write('web.yaml', manifests('v1'));
      gw = await startWorkersGateway(file, ['--workers', '2', '--dashboard', '127.0.0.1:0']);
      board = new URL((await gw.running.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/))[1]!);
    });
    after(async () => {
      assert.equal(await gw.running.stop(), 0);
    });

    test('both workers serve the same port; /metrics is their sum', async () => {
      assert.equal(gw.pids.length, 2);
      assert.notEqual(gw.pids[0], gw.pids[1]);
      const served = await untilEveryWorkerServed(gw, gw.pids, 'sum');
      assert.ok(served.every((s) => s.status === 200 && s.marker === 'v1'));
      const text = await scrapeUntil(
        '127.0.0.1',
        gw.metricsPort,
        (t) => metricSum(t, 'keepip_gateway_requests_total', { status: '200' }) >= served.length,
        'the requests are counted',
      );
      // Every request once: the workers' counters summed, none counted twice.
      assert.equal(metricSum(text, 'keepip_gateway_requests_total', { status: '200' }), served.length);
      assert.equal(metricSum(text, 'keepip_workers'), 2);
      assert.equal(metricSum(text, 'keepip_workers_serving'), 2);
      // Counted once per pod by the primary, not once per worker.
      assert.equal(metricSum(text, 'keepip_gateway_config_version'), 1);
      assert.equal(metricSum(text, 'keepip_gateway_config_reloads_total', { result: 'applied' }), 1);
      const health = await request(gw.metricsPort, { path: '/healthz' });
      assert.equal(health.status, 200);
    });

    test("the dashboard shows every worker's decisions, each once, named by the worker that served it", async () => {
      const allowed = await untilEveryWorkerServed(gw, gw.pids, 'board');
      const denied = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          request(gw.port, { from: `127.0.8.${i + 1}`, host: 'private.example.com', path: `/board-no-${i}` }),
        ),
      );
      const admitted = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          request(gw.port, {
            from: `127.0.9.${i + 1}`,
            host: 'private.example.com',
            path: `/board-yes-${i}`,
          }),
        ),
      );
      assert.ok(denied.every((r) => r.status === 403) && admitted.every((r) => r.status === 200));
      const lines = (await gw.waitForLines(/ "GET \/board-/, allowed.length + 16)).map(parseServed);
      // Every request the workers counted reaches the dashboard's counters (they arrive in batches).
      const total = metricSum(await scrape('127.0.0.1', gw.metricsPort), 'keepip_gateway_requests_total');
      const stats = await dashboardUntil(board, '/api/stats', (s: Stats) => s.counters.seen === total);
      assert.equal(stats.counters.denied, 10);
      assert.deepEqual(
        stats.topDenied.map((d: { address: string; count: number }) => [d.address, d.count]).sort(),
        denied.map((_, i) => [`127.0.8.${i + 1}`, 1]).sort(),
      );
      const routes = (route: string) =>
        stats.seconds.reduce(
          (sum: number[], s: Stats['seconds'][number]) => {
            const r = s.routes[route] ?? { requests: 0, denials: 0 };
            return [sum[0]! + r.requests, sum[1]! + r.denials];
          },
          [0, 0],
        );
      assert.deepEqual(routes('default/private /'), [16, 10]);
      const { decisions } = await dashboardUntil(board, '/api/decisions?limit=1000', () => true);
      const ours = (decisions as Decision[]).filter((d) => d.target.startsWith('/board-'));
      assert.equal(ours.length, lines.length, 'one record per request');
      const slotOfPid = new Map<number, number>();
      for (const line of lines) {
        const record = ours.filter((d) => d.target === line!.path);
        assert.equal(record.length, 1, `${line!.path}: one record`);
        const [one] = record as [Decision];
        assert.equal(one.status, line!.status);
        assert.equal(one.denied, line!.path.startsWith('/board-no-'));
        if (one.denied) assert.equal(one.rule, 'allowlist-miss');
        assert.ok(one.worker === 1 || one.worker === 2);
        // The same worker (by the access log's $pid) is always named by the same slot, and each slot by one pid.
        assert.equal(
          slotOfPid.get(line!.pid) ?? one.worker,
          one.worker,
          `${line!.path}: the worker that served it`,
        );
        slotOfPid.set(line!.pid, one.worker);
      }
      assert.equal(new Set(slotOfPid.values()).size, slotOfPid.size);
      assert.equal(slotOfPid.size, 2, 'both workers decided some');
      const trace = await dashboardUntil(board, `/api/decisions/${ours[0]!.id}`, () => true);
      assert.match(trace.trace.at(-1).detail, new RegExp(`worker ${ours[0]!.worker}\\)$`));
    });

    test('a reload reaches every worker; an invalid one reaches none', async () => {
      dir.write('web.yaml', manifests('v2'));
      await gw.running.waitFor(/reloaded: config v2 from/);
      const after2 = await untilEveryWorkerServed(gw, gw.pids, 'reload');
      assert.deepEqual(new Set(after2.map((s) => s.marker)), new Set(['v2']), 'every worker serves v2');

      dir.write('web.yaml', 'apiVersion: v1\nkind: Service\nmetadata: {name: x\n');
      await gw.running.waitFor(/reload rejected \(.*\); still serving config v2/);
      const kept = await untilEveryWorkerServed(gw, gw.pids, 'rejected');
      assert.deepEqual(new Set(kept.map((s) => s.marker)), new Set(['v2']), 'no worker changed');
      const text = await scrape('127.0.0.1', gw.metricsPort);
      assert.equal(metricSum(text, 'keepip_gateway_config_version'), 2);
      assert.equal(metricSum(text, 'keepip_gateway_config_reloads_total', { result: 'rejected' }), 1);
      // ingress-nginx's reload metrics (its NGINXConfigFailed alert reads the first), once per pod.
      assert.equal(metricSum(text, 'nginx_ingress_controller_config_last_reload_successful'), 0);
      assert.equal(metricSum(text, 'nginx_ingress_controller_errors'), 1);
      assert.equal(metricSum(text, 'nginx_ingress_controller_success'), 2);
      dir.write('web.yaml', manifests('v3'));
      await gw.running.waitFor(/reloaded: config v3 from/);
      const applied = await scrape('127.0.0.1', gw.metricsPort);
      assert.equal(metricSum(applied, 'nginx_ingress_controller_config_last_reload_successful'), 1);
      assert.equal(metricSum(applied, 'nginx_ingress_controller_success'), 3);
      assert.ok(
        metricSum(applied, 'nginx_ingress_controller_config_last_reload_successful_timestamp_seconds') >
          1.7e9,
      );
    });

    test('a killed worker is logged and replaced by one serving the latest configuration', async () => {
      const [victim, survivor] = gw.pids as [number, number];
      process.kill(victim, 'SIGKILL');
      const exited = await gw.running.waitFor(
        new RegExp(`error: worker (\\d) \\(pid ${victim}\\) exited \\(signal SIGKILL\\); starting another`),
      );
      const slot = exited[1]!;
      const again = await gw.running.waitFor(new RegExp(`worker ${slot} serving again \\(pid (\\d+)\\)`));
      const replacement = Number(again[1]);
      assert.ok(alive(replacement) && replacement !== victim);
      const served = await untilEveryWorkerServed(gw, [survivor, replacement], 'restart');
      assert.deepEqual(new Set(served.map((s) => s.marker)), new Set(['v3']));
      assert.ok(!served.some((s) => s.pid === victim));
      const text = await scrape('127.0.0.1', gw.metricsPort);
      assert.equal(metricSum(text, 'keepip_worker_restarts_total', { worker: slot }), 1);
      assert.equal(metricSum(text, 'keepip_workers_serving'), 2);
      // The replacement's decisions reach the dashboard too, under the slot it took over.
      const fromReplacement = served.filter((s) => s.pid === replacement).map((s) => s.path);
      const { decisions } = await dashboardUntil(
        board,
        '/api/decisions?limit=1000',
        (d: { decisions: Decision[] }) =>
          fromReplacement.every((path) => d.decisions.some((r) => r.target === path)),
      );
      for (const path of fromReplacement)
        assert.equal((decisions as Decision[]).find((r) => r.target === path)?.worker, Number(slot));
      gw.pids = [survivor, replacement];
    });
  });

  test("without --workers, the ConfigMap's worker-processes sets the count", async () => {
    const file = dir.write(
      'configmap-count.yaml',
      toYaml([
        controllerConfigMap({ 'worker-processes': '2', 'log-format-upstream': workerLogFormat('cm') }),
        ...webApp(backend.address.port),
      ]),
    );
    const gw = await startWorkersGateway(file);
    try {
      assert.equal(gw.pids.length, 2);
      const served = await untilEveryWorkerServed(gw, gw.pids, 'cm');
      assert.ok(served.every((s) => s.marker === 'cm'));
      assert.doesNotMatch(gw.running.output(), /no effect in keepip: worker-processes/);
    } finally {
      assert.equal(await gw.running.stop(), 0);
    }
  });

  test('SIGTERM drains every worker: the line comes once no worker accepts, a request in flight completes, then all processes exit 0', async () => {
    const held = await startHeldBackend({ hold: (url) => url.includes('hold') });
    const file = dir.write('drain.yaml', manifests('d', held.port));
    // A drain bound past setTimeout's longest (34 days): the primary must still wait, not kill at once.
    const gw = await startWorkersGateway(file, ['--workers', '2', '--drain-timeout', '3000000']);
    try {
      const pending = request(gw.port, { host: 'web.example.com', path: '/hold' });
      await held.arrived(/hold/);
      gw.running.child.kill('SIGTERM');
      await gw.running.waitFor(/SIGTERM: stopped accepting, draining/);
      // Every worker closed its listener before the line said so: a new connection is refused, not served.
      assert.equal(await connectOutcome('127.0.0.1', gw.port), 'ECONNREFUSED');
      held.release();
      assert.equal((await pending).status, 200);
      assert.equal(await gw.running.exited(), 0);
      assert.match(gw.running.output(), /keepip gateway: stopped/);
      for (const pid of gw.pids) assert.ok(!alive(pid), `worker ${pid} exited`);
      await gw.waitForLines(/^\d+ 200 d "GET \/hold HTTP\/1\.1"$/, 1);
    } finally {
      await gw.running.stop();
      await held.close();
    }
  });
});
