// keepip controller with workers, as a Deployment runs it: the ConfigMap's worker-processes sets the
// count (no flag), the watch/leader/status loop stays one per pod (one list and one watch per
// resource, however many workers), every worker serves and takes each snapshot, /metrics sums the
// workers with the controller's own gauges, and SIGTERM stops every process.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { metricSum, scrapeUntil } from '../helpers/metrics.ts';
import { startKeepip } from '../helpers/process.ts';
import { type Backend, seedWeb, startBackend } from '../controller/harness.ts';
import { stdoutOf, untilEveryWorkerServed, workerLogFormat, workerPids } from './helpers.ts';

function configMap(data: Record<string, string>) {
  return {
    kind: 'ConfigMap',
    metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
    data,
  };
}

describe('keepip controller with workers', () => {
  let api: FakeApiServer;
  let web: Backend;

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
    api.apply(configMap({ 'worker-processes': '2', 'log-format-upstream': workerLogFormat('c1') }));
  });
  after(async () => {
    await api?.close();
    await web?.close();
  });

  it('worker-processes 2: one watch loop, two serving workers, snapshots reach both, one /metrics', async () => {
    const ctl = startKeepip([
      'controller',
      `--kubeconfig=${api.kubeconfig}`,
      '--bind-address=127.0.0.1',
      '--http-port=0',
      '--https-port=0',
      '--healthz-port=0',
      '--configmap=ingress-nginx/ingress-nginx-controller',
      '--disable-leader-election',
      '--post-shutdown-grace-period=0',
      '--enable-metrics=true',
    ]);
    const stdout = stdoutOf(ctl);
    try {
      await ctl.waitFor(
        /workers: 2 processes \(pids [\d, ]+\) share the listening ports \(SO_REUSEPORT; ConfigMap worker-processes\)/,
      );
      const pids = await workerPids(ctl);
      const port = Number((await ctl.waitFor(/listening http 127\.0\.0\.1:(\d+)/))[1]);
      const health = Number((await ctl.waitFor(/health http:\/\/127\.0\.0\.1:(\d+)\/healthz/))[1]);
      const gateway = { port, ...stdout };
      const first = await untilEveryWorkerServed(gateway, pids, 'c1');
      assert.deepEqual(new Set(first.map((s) => s.marker)), new Set(['c1']));

      api.apply(configMap({ 'worker-processes': '2', 'log-format-upstream': workerLogFormat('c2') }));
      await ctl.waitFor(/reloaded: config v2 from the API server/);
      const second = await untilEveryWorkerServed(gateway, pids, 'c2');
      assert.deepEqual(new Set(second.map((s) => s.marker)), new Set(['c2']), 'every worker took v2');

      const text = await scrapeUntil(
        '127.0.0.1',
        health,
        (t) => metricSum(t, 'keepip_gateway_requests_total') >= first.length + second.length,
        'the workers count every request',
      );
      assert.equal(metricSum(text, 'keepip_gateway_requests_total'), first.length + second.length);
      // ingress-nginx's own request counter, summed over the workers too, with the controller's labels
      // (POD_NAMESPACE is not set here: default).
      assert.equal(metricSum(text, 'nginx_ingress_controller_requests'), first.length + second.length);
      // The nginx process metrics: one per worker (not the primary), requests summed.
      assert.equal(metricSum(text, 'nginx_ingress_controller_nginx_process_num_procs'), 2);
      assert.equal(
        metricSum(text, 'nginx_ingress_controller_nginx_process_requests_total'),
        first.length + second.length,
      );
      assert.match(
        text,
        /nginx_ingress_controller_requests\{[^}]*controller_namespace="default"[^}]*controller_class="k8s\.io\/ingress-nginx"/,
      );
      assert.equal(metricSum(text, 'keepip_workers'), 2);
      assert.equal(metricSum(text, 'keepip_controller_synced'), 1);
      assert.equal(metricSum(text, 'keepip_gateway_config_version'), 2);

      // The cluster is watched from one process: one list and one watch of Ingresses for the pod.
      const ingressCalls = api.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/ingresses'));
      assert.equal(ingressCalls.filter((r) => r.query.get('watch') === 'true').length, 1);
      assert.equal(ingressCalls.filter((r) => r.query.get('watch') !== 'true').length, 1);

      ctl.child.kill('SIGTERM');
      assert.equal(await ctl.exited(), 0);
      for (const pid of pids) assert.throws(() => process.kill(pid, 0), `worker ${pid} exited`);
    } finally {
      await ctl.stop();
    }
  });
});
