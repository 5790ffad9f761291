// keepip gateway --workers 2 as a user runs it: the workers share the port (each serves, named by
// nginx's $pid in the access log), one /metrics sums them, a reload reaches every worker (an invalid
// one none), a killed worker is replaced by one serving the latest configuration, and SIGTERM drains
// every worker. Processes are real; every wait is on a line, a counter or the backend.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, manifestDir, toYaml, webApp } from '../fixtures/gateway/manifests.ts';
import { startHeldBackend } from '../helpers/held-backend.ts';
import { metricSum, scrape, scrapeUntil } from '../helpers/metrics.ts';
import { runKeepip } from '../helpers/process.ts';
import {
  startWorkersGateway,
  untilEveryWorkerServed,
  type WorkersGateway,
  workerLogFormat,
  alive,
} from './helpers.ts';

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
    toYaml([controllerConfigMap({ 'log-format-upstream': workerLogFormat(marker) }), ...webApp(port)]);

  test('--workers takes a count or auto; 0, words and --dashboard with workers are usage errors', async () => {
    const file = dir.write('usage.yaml', manifests('m'));
    const help = await runKeepip(['gateway', '--help']);
    assert.match(help.stdout, /--workers <N\|auto>/);
    for (const bad of ['0', 'two', '-1', '1025']) {
      const result = await runKeepip(['gateway', '-f', file, '--http', '127.0.0.1:0', `--workers=${bad}`]);
      assert.equal(result.code, 2, `--workers ${bad}`);
      assert.match(result.stderr, /--workers: .*\[WORKER_COUNT_INVALID\]/);
    }
    const board = await runKeepip(['gateway', '-f', file, '--workers', '2', '--dashboard', '127.0.0.1:0']);
    assert.equal(board.code, 2);
    assert.match(board.stderr, /--dashboard needs --workers 1/);
  });

  describe('two workers on one port', () => {
    let gw: WorkersGateway;
    let file: string;

    before(async () => {
      file = dir.write('web.yaml', manifests('v1'));
      gw = await startWorkersGateway(file, ['--workers', '2']);
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

  test('SIGTERM drains every worker: a request in flight completes, then all processes exit 0', async () => {
    const held = await startHeldBackend({ hold: (url) => url.includes('hold') });
    const file = dir.write('drain.yaml', manifests('d', held.port));
    // A drain bound past setTimeout's longest (34 days): the primary must still wait, not kill at once.
    const gw = await startWorkersGateway(file, ['--workers', '2', '--drain-timeout', '3000000']);
    try {
      const exited = new Promise<number | null>((resolve) => gw.running.child.once('exit', resolve));
      const pending = request(gw.port, { host: 'web.example.com', path: '/hold' });
      await held.arrived(/hold/);
      gw.running.child.kill('SIGTERM');
      await gw.running.waitFor(/SIGTERM: stopped accepting, draining/);
      held.release();
      assert.equal((await pending).status, 200);
      assert.equal(await exited, 0);
      assert.match(gw.running.output(), /keepip gateway: stopped/);
      for (const pid of gw.pids) assert.ok(!alive(pid), `worker ${pid} exited`);
      await gw.waitForLines(/^\d+ 200 d "GET \/hold HTTP\/1\.1"$/, 1);
    } finally {
      await gw.running.stop();
      await held.close();
    }
  });
});
