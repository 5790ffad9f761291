// ingress-nginx's request metrics as its dashboards and alert rules read them: the names, the labels
// (and the controller's), the buckets, the per-host filter, status classes, excluded metrics, and
// counts that carry on across a reload (new location objects, same labels).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { LocationModel } from '../../src/config/model.ts';
import { DEFAULT_REQUEST_METRICS, type RequestMetricsSettings } from '../../src/config/request-metrics.ts';
import { createRequestMetrics, type RequestSample } from '../../src/gateway/request-metrics.ts';

const location = (path = '/api') =>
  ({
    path,
    ingress: { namespace: 'gitea', name: 'gitea' },
    backend: { service: { namespace: 'gitea', name: 'gitea-http' }, port: 3000 },
  }) as unknown as LocationModel;

const sample = (over: Partial<RequestSample> = {}): RequestSample => ({
  location: location(),
  host: 'git.example.com',
  hostDefined: true,
  method: 'GET',
  status: 200,
  canary: '',
  requestSeconds: 0.02,
  upstreamSeconds: 0.015,
  connectSeconds: 0,
  headerSeconds: 0.012,
  requestLength: 75,
  bytesSent: 5000,
  ...over,
});

const CONTROLLER: RequestMetricsSettings = {
  ...DEFAULT_REQUEST_METRICS,
  controllerNamespace: 'ingress-nginx',
  controllerClass: 'k8s.io/ingress-nginx',
  controllerPod: 'ingress-nginx-controller-abc',
};

const LABELS =
  'controller_namespace="ingress-nginx",controller_class="k8s.io/ingress-nginx",controller_pod="ingress-nginx-controller-abc",' +
  'status="200",method="GET",path="/api",namespace="gitea",ingress="gitea",service="gitea-http",canary="",host="git.example.com"';

async function scrape(record: (m: ReturnType<typeof createRequestMetrics>) => void): Promise<string> {
  const registry = new Registry();
  const metrics = createRequestMetrics(registry);
  record(metrics);
  return registry.metrics();
}

test('nginx_ingress_controller_requests and the histograms, with ingress-nginx labels and default buckets', async () => {
  const text = await scrape((m) => {
    m.record(CONTROLLER, sample());
    m.record(CONTROLLER, sample({ requestSeconds: 3 }));
  });
  assert.ok(text.includes(`nginx_ingress_controller_requests{${LABELS}} 2`), text);
  // request_duration_seconds: Prometheus's default buckets; 0.02 s and 3 s.
  assert.ok(
    text.includes(`nginx_ingress_controller_request_duration_seconds_bucket{le="0.01",${LABELS}} 0`),
    text,
  );
  assert.ok(
    text.includes(`nginx_ingress_controller_request_duration_seconds_bucket{le="0.025",${LABELS}} 1`),
    text,
  );
  assert.ok(
    text.includes(`nginx_ingress_controller_request_duration_seconds_bucket{le="5",${LABELS}} 2`),
    text,
  );
  assert.ok(text.includes(`nginx_ingress_controller_request_duration_seconds_count{${LABELS}} 2`), text);
  assert.ok(text.includes(`nginx_ingress_controller_response_duration_seconds_count{${LABELS}} 2`), text);
  // connect_duration_seconds and header_duration_seconds: the time buckets, one observation per request.
  assert.ok(
    text.includes(`nginx_ingress_controller_connect_duration_seconds_bucket{le="0.005",${LABELS}} 2`),
    text,
  );
  assert.ok(
    text.includes(`nginx_ingress_controller_header_duration_seconds_bucket{le="0.01",${LABELS}} 0`),
    text,
  );
  assert.ok(
    text.includes(`nginx_ingress_controller_header_duration_seconds_bucket{le="0.025",${LABELS}} 2`),
    text,
  );
  assert.ok(text.includes(`nginx_ingress_controller_header_duration_seconds_sum{${LABELS}} 0.024`), text);
  // request_size: 10, 20 … 100 (75 bytes); response_size the same buckets; bytes_sent 10 … 10^7.
  assert.ok(text.includes(`nginx_ingress_controller_request_size_bucket{le="70",${LABELS}} 0`), text);
  assert.ok(text.includes(`nginx_ingress_controller_request_size_bucket{le="80",${LABELS}} 2`), text);
  assert.ok(text.includes(`nginx_ingress_controller_response_size_bucket{le="+Inf",${LABELS}} 2`), text);
  assert.ok(text.includes(`nginx_ingress_controller_bytes_sent_bucket{le="10000",${LABELS}} 2`), text);
  assert.ok(text.includes(`nginx_ingress_controller_bytes_sent_sum{${LABELS}} 10000`), text);
});

test('a request without a backend attempt is no upstream time observation', async () => {
  const text = await scrape((m) =>
    m.record(
      CONTROLLER,
      sample({ upstreamSeconds: null, connectSeconds: null, headerSeconds: null, status: 403 }),
    ),
  );
  const labels = LABELS.replace('status="200"', 'status="403"');
  assert.ok(text.includes(`nginx_ingress_controller_requests{${labels}} 1`), text);
  assert.ok(!text.includes('nginx_ingress_controller_response_duration_seconds_count'), text);
  assert.ok(!text.includes('nginx_ingress_controller_connect_duration_seconds_count'), text);
  assert.ok(!text.includes('nginx_ingress_controller_header_duration_seconds_count'), text);
});

test('hosts no Ingress names are left out, unless --metrics-per-undefined-host; without --metrics-per-host no host label', async () => {
  const undefinedHost = sample({ location: null, host: '_', hostDefined: false, status: 404 });
  assert.ok(
    !(await scrape((m) => m.record(CONTROLLER, undefinedHost))).includes(
      'nginx_ingress_controller_requests{',
    ),
  );
  const included = await scrape((m) => m.record({ ...CONTROLLER, perUndefinedHost: true }, undefinedHost));
  assert.match(
    included,
    /nginx_ingress_controller_requests\{[^}]*status="404"[^}]*path="",namespace="",ingress="",service=""[^}]*host="_"\} 1/,
  );
  const noHost = await scrape((m) => m.record({ ...CONTROLLER, perHost: false }, undefinedHost));
  assert.match(noHost, /nginx_ingress_controller_requests\{[^}]*status="404"[^}]*canary=""\} 1/);
  assert.doesNotMatch(noHost, /host=/);
});

test('--report-status-classes, custom buckets and --exclude-socket-metrics', async () => {
  const settings: RequestMetricsSettings = {
    ...CONTROLLER,
    statusClasses: true,
    timeBuckets: [0.1, 1],
    exclude: ['nginx_ingress_controller_bytes_sent', 'response_size'],
  };
  const text = await scrape((m) => {
    m.record(settings, sample({ status: 201 }));
    m.record(settings, sample({ status: 204 }));
  });
  const labels = LABELS.replace('status="200"', 'status="2xx"');
  assert.ok(text.includes(`nginx_ingress_controller_requests{${labels}} 2`), text);
  assert.ok(
    text.includes(`nginx_ingress_controller_request_duration_seconds_bucket{le="0.1",${labels}} 2`),
    text,
  );
  assert.ok(!text.includes('request_duration_seconds_bucket{le="0.005"'), text);
  assert.ok(!text.includes('nginx_ingress_controller_bytes_sent_bucket'), text);
  assert.ok(!text.includes('nginx_ingress_controller_response_size_bucket'), text);
});

test('a reload (new location objects, same labels) keeps counting the same series', async () => {
  const text = await scrape((m) => {
    m.record(CONTROLLER, sample());
    // The next snapshot: an equal settings object and a new location for the same path.
    m.record({ ...CONTROLLER }, sample({ location: location() }));
    m.record(CONTROLLER, sample({ location: location('/other') }));
  });
  assert.ok(text.includes(`nginx_ingress_controller_requests{${LABELS}} 2`), text);
  assert.ok(
    text.includes(`nginx_ingress_controller_requests{${LABELS.replace('path="/api"', 'path="/other"')}} 1`),
    text,
  );
});
