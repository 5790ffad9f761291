// docs/deploy.md and docs/manifests.md, claims no other test checks end to end, met as an operator and
// an outsider meet them: the rendered Deployment's arguments run by a real `keepip controller` process
// against the fake API server, its requests held to the rendered RBAC; the rendered webhook Secret
// served and verified through the caBundle; the migration's second install side by side with the
// first; the apply order; a kept webhook certificate the API server could not trust; manifest
// directories with a symlink back to an ancestor.
//
// Claims (quoted):
// - deploy.md "keepip also accepts `/nginx-ingress-controller` as a name for `controller`, so swapping
//   only the image of the chart's Deployment (keeping its args) starts `keepip controller` with the
//   same flags."
// - deploy.md "RBAC is made from one list (src/deploy/api-access.ts): exactly the calls keepip
//   controller makes." ... "Secrets (every type but Helm's release Secrets ...)", "list/watch ConfigMaps
//   (every one but Helm 2's releases, as the chart ...)", "create/patch Events (no get, as the chart)",
//   "With `controller.scope.enabled` the watched resources move to a Role in the watched namespace and
//   the ClusterRole keeps the cluster-scoped IngressClasses and Nodes only".
// - deploy.md "keepip makes a CA and a serving certificate for `<name>-controller-admission.<ns>.svc`
//   (ECDSA P-256, ten years) at render time: the Secret `<fullname>-admission` holds `ca`, `cert` and
//   `key`, mounted at `/usr/local/certificates/`, and the CA goes into the `caBundle`."
// - deploy.md "(a kept certificate that does not name the Service, has expired or does not match its
//   key is an error)"
// - deploy.md values table: "`controller.livenessProbe` | livenessProbe (keepip serves /healthz on the
//   healthz port)", "`controller.readinessProbe` | readinessProbe (ready after the first complete sync)".
// - deploy.md migration: "`update-status: "false"` # two controllers must not fight over Ingress
//   status", "`--release keepip` gives every object, the Lease and the cluster-wide RBAC names of their
//   own (`keepip-ingress-nginx-…`)."
// - deploy.md "prints, in apply order: Namespace, ServiceAccount, the controller ConfigMap (and the
//   add-headers, proxy-set-headers, tcp-services and udp-services ones), ClusterRole/Role and bindings,
//   the Services (...), the Deployment or DaemonSet, PodDisruptionBudget (...), HorizontalPodAutoscaler
//   (...), IngressClass (and aliases), the admission webhook's certificate and
//   ValidatingWebhookConfiguration, ServiceMonitor and PrometheusRule".
// - deploy.md "A key set to the chart's default value is not reported."
// - manifests.md "a directory (read recursively; only `*.yaml`, `*.yml`, `*.json`; dot-files skipped;
//   entries sorted by name, so the order is stable). The same file named twice is read once."
//
// Already covered elsewhere (not repeated here): test/deploy/{manifests,cluster,rbac,values-keys}.test.ts,
// test/security/deploy-hardening.test.ts (securityContext, RBAC against the chart, webhook exposure),
// test/security/yaml-input-attack.test.ts (alias bombs, 32 MiB, duplicate keys), test/k8s/*.test.ts.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generate } from 'selfsigned';
import http from '../../src/node-http.ts';
import { chartDefaults } from '../../src/deploy/chart-defaults.ts';
import { renderManifests } from '../../src/deploy/render.ts';
import { loadManifests } from '../../src/k8s/load.ts';
import { FLAGS } from '../../src/controller/flags.ts';
import { type FakeApiServer, type SeenRequest, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { allows, apiCall, type Rule } from '../helpers/rbac.ts';
import { type Running, runKeepip, startKeepip } from '../helpers/process.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered objects are read as plain JSON in the assertions
type Json = any;

const work = mkdtempSync(join(tmpdir(), 'keepip-deploy-docs-'));
after(() => rmSync(work, { recursive: true, force: true }));

/**
 * What `keepip manifests` renders for `values` (in-process: test/deploy/manifests.test.ts checks the
 * CLI prints exactly these objects); the objects as plain JSON and the problems it reports.
 */
async function manifests(values: Json, options: { release?: string; namespace?: string } = {}) {
  const result = await renderManifests(values, {
    release: options.release ?? 'ingress-nginx',
    namespace: options.namespace ?? 'ingress-nginx',
    image: 'keepip:test',
    version: '0.0.0-test',
  });
  assert.deepEqual(
    result.problems.filter((p) => p.severity === 'error'),
    [],
  );
  return { docs: structuredClone(result.objects) as Json[], problems: result.problems };
}

const find = (docs: Json[], kind: string, name?: string): Json => {
  const found = docs.find((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  assert.ok(found, `no ${kind} ${name ?? ''}`);
  return found;
};
const podSpec = (docs: Json[]): Json =>
  docs.find((d) => d.kind === 'Deployment' || d.kind === 'DaemonSet').spec.template.spec;

// ---------------------------------------------------------------------------------------------------
// The cluster the pod runs in (as test/controller/harness.ts seeds it; not imported from there, whose
// in-process controller would cost this file a second start-up): Ingress web.example.com -> Service
// web -> a backend on 127.0.0.1.

interface Backend {
  port: number;
  close(): Promise<void>;
}

async function startBackend(): Promise<Backend> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`web ${req.url}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function ingress(name: string, host: string): Json {
  return {
    kind: 'Ingress',
    metadata: { namespace: 'default', name, annotations: {} },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host,
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } },
            ],
          },
        },
      ],
    },
  };
}

function seedWeb(api: FakeApiServer, backendPort: number): void {
  api.apply({
    kind: 'IngressClass',
    metadata: { name: 'nginx' },
    spec: { controller: 'k8s.io/ingress-nginx' },
  });
  api.apply({
    kind: 'Service',
    metadata: { namespace: 'default', name: 'web' },
    spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
  });
  api.apply({
    kind: 'EndpointSlice',
    metadata: { namespace: 'default', name: 'web-abc', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
    ports: [{ name: 'http', port: backendPort, protocol: 'TCP' }],
  });
  api.apply(ingress('web', 'web.example.com'));
}

/** An AdmissionReview v1 CREATE of `object`, as the API server sends it. */
const ingressReview = (object: Json): Json => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: 'uid-1',
    kind: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress' },
    resource: { group: 'networking.k8s.io', version: 'v1', resource: 'ingresses' },
    operation: 'CREATE',
    namespace: 'default',
    name: object.metadata.name,
    object,
  },
});

// ---------------------------------------------------------------------------------------------------
// RBAC as the API server evaluates it: a list or watch with fieldSelector metadata.name=X is authorized
// as a request for X.

/** The requests the rendered ClusterRole and the Roles (each in its namespace) refuse, deduplicated. */
function refused(docs: Json[], requests: readonly SeenRequest[]): string[] {
  const cluster: Rule[] = docs.filter((d) => d.kind === 'ClusterRole').flatMap((d) => d.rules);
  const rolesIn = (ns: string): Rule[] =>
    docs.filter((d) => d.kind === 'Role' && d.metadata.namespace === ns).flatMap((d) => d.rules);
  const denied = requests
    .map(apiCall)
    .filter((c) => !allows(cluster, c) && !(c.namespace !== '' && allows(rolesIn(c.namespace), c)));
  return [...new Set(denied.map((c) => `${c.verb} ${c.group}/${c.resource} ${c.namespace}/${c.name}`))];
}

// ---------------------------------------------------------------------------------------------------
// The rendered pod, run as the kubelet runs it: $(POD_NAMESPACE) expanded from the env, the webhook
// Secret's keys as files where the Deployment mounts them. Only what a test machine needs differs: the
// listening addresses (127.x, port 0) and the API server (a kubeconfig for the fake one).

interface Pod {
  docs: Json[];
  api: FakeApiServer;
  web: Backend;
  ctl: Running;
  /** The container args as rendered (before any substitution). */
  rendered: string[];
  webhookPort: number;
  healthUrl: string;
  ca: string;
  close(): Promise<void>;
}

const NAMESPACE = 'ingress-nginx';

async function runPod(values: Json, options: { bind: string; command?: string }): Promise<Pod> {
  const { docs } = await manifests(values);
  const spec = podSpec(docs);
  const container = spec.containers[0];
  const rendered: string[] = container.args;
  // The Secret the webhook-cert volume mounts, written out as the kubelet projects it.
  const certVolume = spec.volumes.find((v: Json) => v.name === 'webhook-cert');
  const secret = find(docs, 'Secret', certVolume.secret.secretName);
  const mount = container.volumeMounts.find((m: Json) => m.name === 'webhook-cert').mountPath as string;
  const dir = mkdtempSync(join(work, 'certs-'));
  const projected = (path: string) => {
    assert.ok(path.startsWith(mount), `${path} is under the mount ${mount}`);
    const file = join(dir, path.slice(mount.length).replace(/^\//, ''));
    writeFileSync(file, Buffer.from(secret.data[path.slice(mount.length).replace(/^\//, '')], 'base64'));
    return file;
  };
  const args = rendered.slice(1).map((a) => a.replaceAll('$(POD_NAMESPACE)', NAMESPACE));
  const swapped = args.map((a) => {
    if (a.startsWith('--validating-webhook=')) return `--validating-webhook=${options.bind}:0`;
    if (a.startsWith('--validating-webhook-certificate='))
      return `--validating-webhook-certificate=${projected(a.slice(a.indexOf('=') + 1))}`;
    if (a.startsWith('--validating-webhook-key='))
      return `--validating-webhook-key=${projected(a.slice(a.indexOf('=') + 1))}`;
    return a;
  });
  const api = await startFakeApiServer();
  const web = await startBackend();
  seedWeb(api, web.port);
  // The cluster the pod lands in: its ConfigMap (one worker: the test is about the API calls), the
  // Service --publish-service names, with the load balancer's address.
  api.apply({
    kind: 'ConfigMap',
    metadata: { namespace: NAMESPACE, name: 'ingress-nginx-controller' },
    data: { 'worker-processes': '1' },
  });
  api.apply({
    kind: 'Service',
    metadata: { namespace: NAMESPACE, name: 'ingress-nginx-controller' },
    spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    status: { loadBalancer: { ingress: [{ ip: '192.0.2.7' }] } },
  });
  const ctl = startKeepip(
    [
      options.command ?? rendered[0]!,
      ...swapped,
      `--kubeconfig=${api.kubeconfig}`,
      `--bind-address=${options.bind}`,
      '--http-port=0',
      '--https-port=0',
      '--healthz-port=0',
      '--post-shutdown-grace-period=0',
      '--shutdown-grace-period=0',
    ],
    { env: { POD_NAMESPACE: NAMESPACE, POD_NAME: 'ingress-nginx-controller-0' } },
  );
  const close = async () => {
    await ctl.stop();
    await api.close();
    await web.close();
  };
  try {
    const webhook = await ctl.waitFor(/validating webhook https:\/\/[\d.]+:(\d+)/);
    const health = await ctl.waitFor(/health (http:\/\/\S+)/);
    // The status is written after the Lease, the publish-service and an Event: every kind of call made.
    await ctl.waitFor(/status of Ingress default\/web: 192\.0\.2\.7/);
    return {
      docs,
      api,
      web,
      ctl,
      rendered,
      webhookPort: Number(webhook[1]),
      healthUrl: health[1]!,
      ca: Buffer.from(
        find(docs, 'ValidatingWebhookConfiguration').webhooks[0].clientConfig.caBundle,
        'base64',
      ).toString('utf8'),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

function post(
  port: number,
  options: { host: string; ca: string; servername: string; path: string; body: string; from: string },
): Promise<{ status: number; body: string; cert: X509Certificate }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: options.host,
        port,
        method: 'POST',
        path: options.path,
        ca: options.ca,
        servername: options.servername,
        localAddress: options.from,
        agent: false,
        headers: { 'content-type': 'application/json' },
        timeout: 15_000,
      },
      (res) => {
        const cert = new X509Certificate((res.socket as TLSSocket).getPeerX509Certificate()!.raw);
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cert }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('webhook request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

function get(url: string, from: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { localAddress: from, agent: false, timeout: 15_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

// Every part at once: the controllers' start-up waits on I/O while the other parts render.
describe('docs/deploy.md and docs/manifests.md claims', { concurrency: true }, () => {
  describe("the rendered Deployment, run as the pod runs it (the chart's defaults, only the image swapped)", () => {
    let pod: Pod | null = null;
    let scoped: Pod | null = null;
    let scopedError: unknown = null;

    before(async () => {
      // Both pods start together: the chart's defaults under the chart's own first argument, and the same
      // with controller.scope watching the apps' namespace (the release stays in ingress-nginx).
      const [a, b] = await Promise.allSettled([
        runPod({}, { bind: '127.0.71.1', command: '/nginx-ingress-controller' }),
        runPod({ controller: { scope: { enabled: true, namespace: 'default' } } }, { bind: '127.0.71.2' }),
      ]);
      if (a.status === 'fulfilled') pod = a.value;
      if (b.status === 'fulfilled') scoped = b.value;
      else scopedError = b.reason;
      if (a.status === 'rejected') throw a.reason;
    });

    after(async () => {
      await pod?.close();
      await scoped?.close();
    });

    it('`/nginx-ingress-controller` + the rendered args: serves, and every API request it makes is one the rendered RBAC allows', () => {
      assert.ok(pod);
      assert.equal(pod.rendered[0], 'controller');
      assert.match(pod.ctl.output(), /serving: config v1 from the API server: 1 Ingress/);
      const calls = pod.api.requests.map(apiCall);
      for (const [resource, verb] of [
        ['leases', 'create'],
        ['services', 'get'],
        ['events', 'create'],
        ['ingresses/status', 'update'],
      ])
        assert.ok(
          calls.some((c) => c.resource === resource && c.verb === verb),
          `the controller did ${verb} ${resource}`,
        );
      assert.deepEqual(refused(pod.docs, pod.api.requests), []);
    });

    it("Secrets are read without Helm's release Secrets, ConfigMaps without Helm 2's; Events are never read back", () => {
      assert.ok(pod);
      const lists = (plural: string) =>
        pod!.api.requests.filter((r) => r.method === 'GET' && new RegExp(`/${plural}$`).test(r.path));
      const secrets = lists('secrets');
      assert.ok(secrets.length > 0, 'Secrets were listed');
      for (const r of secrets) assert.equal(r.query.get('fieldSelector'), 'type!=helm.sh/release.v1', r.path);
      const configMaps = lists('configmaps').filter(
        (r) => !r.query.get('fieldSelector')?.startsWith('metadata.name='),
      );
      assert.ok(configMaps.length > 0, 'ConfigMaps were listed');
      for (const r of configMaps) assert.equal(r.query.get('labelSelector'), 'OWNER!=TILLER', r.path);
      assert.deepEqual(
        pod.api.requests.filter((r) => r.method === 'GET' && r.path.includes('/events')).map((r) => r.path),
        [],
      );
    });

    it("the webhook serves the rendered Secret's certificate (ECDSA P-256, ten years), verified through the caBundle for the Service's DNS name, on the configuration's path", async () => {
      assert.ok(pod);
      const vwc = find(pod.docs, 'ValidatingWebhookConfiguration').webhooks[0].clientConfig.service;
      const servername = `${vwc.name}.${vwc.namespace}.svc`;
      assert.equal(servername, 'ingress-nginx-controller-admission.ingress-nginx.svc');
      const review = ingressReview(ingress('shop', 'shop.example.com'));
      const answer = await post(pod.webhookPort, {
        host: '127.0.71.1',
        from: '127.0.71.100',
        ca: pod.ca,
        servername,
        path: vwc.path,
        body: JSON.stringify(review),
      });
      assert.equal(answer.status, 200, answer.body);
      assert.equal(JSON.parse(answer.body).response.allowed, true, answer.body);
      const key = answer.cert.publicKey;
      assert.equal(key.asymmetricKeyType, 'ec');
      assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      const years =
        (Date.parse(answer.cert.validTo) - Date.parse(answer.cert.validFrom)) / (365 * 24 * 3600e3);
      assert.ok(years >= 9.99 && years <= 10.01, `valid for ${years} years`);
      // Another name for the same address is refused by the client's check, as the API server's would be.
      await assert.rejects(
        post(pod.webhookPort, {
          host: '127.0.71.1',
          from: '127.0.71.100',
          ca: pod.ca,
          servername: 'evil.example.com',
          path: vwc.path,
          body: '{}',
        }),
        /altnames|Hostname/i,
      );
    });

    it("the probes: /healthz on keepip's --healthz-port (the rendered 10254), ready once synced", async () => {
      assert.ok(pod);
      const container = podSpec(pod.docs).containers[0];
      const defaultHealthzPort = Number(FLAGS.find((f) => f.name === 'healthz-port')?.default);
      assert.equal(defaultHealthzPort, 10254);
      for (const probe of [container.livenessProbe, container.readinessProbe]) {
        assert.equal(probe.httpGet.path, '/healthz');
        assert.equal(probe.httpGet.port, defaultHealthzPort);
      }
      assert.ok(pod.healthUrl.endsWith('/healthz'), pod.healthUrl);
      const answer = await get(pod.healthUrl, '127.0.71.100');
      assert.equal(answer.status, 200, answer.body);
    });

    it('controller.scope.namespace other than the release: every request is still one the rendered RBAC allows (--publish-service names a Service at home)', () => {
      if (scoped === null) throw scopedError;
      const args = podSpec(scoped.docs).containers[0].args as string[];
      assert.ok(args.includes('--watch-namespace=default'));
      assert.ok(args.includes('--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller'));
      // Found here, fixed: GET services ingress-nginx/ingress-nginx-controller was refused (the chart's Role
      // at home grants services get/list/watch, controller-role.yaml:32-40): no status was ever written.
      assert.deepEqual(refused(scoped.docs, scoped.api.requests), []);
    });
  });

  describe('the migration: a second install next to ingress-nginx (docs/deploy.md, Migrating)', () => {
    const migration = {
      controller: {
        ingressClassResource: { enabled: false },
        extraArgs: { 'update-status': 'false' },
        admissionWebhooks: { enabled: true },
      },
    };

    it('`--release keepip --namespace keepip` collides with no object of the Helm release, takes no Ingress status, names its own Lease', async () => {
      const [chart, keepip] = await Promise.all([
        manifests({}),
        manifests(migration, { release: 'keepip', namespace: 'keepip' }),
      ]);
      const clusterScoped = new Set([
        'Namespace',
        'ClusterRole',
        'ClusterRoleBinding',
        'IngressClass',
        'ValidatingWebhookConfiguration',
      ]);
      const id = (d: Json) =>
        `${d.kind} ${clusterScoped.has(d.kind) ? '' : `${d.metadata.namespace}/`}${d.metadata.name}`;
      const theirs = new Set(chart.docs.map(id));
      assert.deepEqual(
        keepip.docs.map(id).filter((x) => theirs.has(x)),
        [],
      );
      assert.deepEqual(
        keepip.docs.filter((d) => d.kind === 'IngressClass'),
        [],
      );
      for (const d of keepip.docs.filter((x) => x.kind !== 'Namespace'))
        assert.match(d.metadata.name, /^keepip-ingress-nginx(-|$)/, `${d.kind} ${d.metadata.name}`);
      const args = podSpec(keepip.docs).containers[0].args as string[];
      assert.ok(args.includes('--election-id=keepip-ingress-nginx-leader'));
      assert.ok(args.includes('--update-status=false'));
      const rules: Rule[] = keepip.docs.filter((d) => /Role$/.test(d.kind)).flatMap((d) => d.rules ?? []);
      assert.deepEqual(
        rules.filter((r) => r.resources.includes('ingresses/status')),
        [],
      );
      assert.ok(
        rules.some(
          (r) => r.resources.includes('leases') && r.resourceNames?.includes('keepip-ingress-nginx-leader'),
        ),
      );
      assert.deepEqual(keepip.problems, [], 'the migration values warn about nothing');
    });
  });

  describe('what `keepip manifests` prints', () => {
    it('objects in the documented apply order, for values that render every kind', async () => {
      const { docs } = await manifests({
        tcp: { '22': 'gitea/gitea-ssh:22' },
        udp: { '53': 'kube-system/kube-dns:53' },
        controller: {
          addHeaders: { 'X-Frame-Options': 'DENY' },
          proxySetHeaders: { 'X-Team': 'edge' },
          scope: { enabled: true, namespace: 'apps' },
          replicaCount: 3,
          autoscaling: { enabled: true, minReplicas: 2 },
          ingressClassResource: { aliases: ['edge'] },
          service: { internal: { enabled: true, annotations: { a: 'b' } } },
          metrics: {
            enabled: true,
            serviceMonitor: { enabled: true },
            prometheusRule: { enabled: true, rules: [{ alert: 'A', expr: 'vector(1)' }] },
          },
        },
      });
      const rank: Record<string, number> = {
        Namespace: 0,
        ServiceAccount: 1,
        ConfigMap: 2,
        ClusterRole: 3,
        ClusterRoleBinding: 3,
        Role: 3,
        RoleBinding: 3,
        Service: 4,
        Deployment: 5,
        DaemonSet: 5,
        PodDisruptionBudget: 6,
        HorizontalPodAutoscaler: 7,
        IngressClass: 8,
        Secret: 9,
        Issuer: 9,
        Certificate: 9,
        ValidatingWebhookConfiguration: 9,
        ServiceMonitor: 10,
        PrometheusRule: 11,
      };
      const kinds = docs.map((d) => d.kind as string);
      assert.deepEqual(
        kinds.filter((k) => rank[k] === undefined),
        [],
        'every kind is one the doc lists',
      );
      assert.deepEqual(
        new Set(kinds),
        new Set(Object.keys(rank).filter((k) => !['DaemonSet', 'Issuer', 'Certificate'].includes(k))),
        'every kind rendered',
      );
      const out = kinds.filter((k, i) => i > 0 && rank[k]! < rank[kinds[i - 1]!]!);
      assert.deepEqual(out, [], `order: ${kinds.join(', ')}`);
      assert.deepEqual(
        docs.filter((d) => d.kind === 'ConfigMap').map((d) => d.metadata.name),
        [
          'ingress-nginx-controller',
          'ingress-nginx-custom-add-headers',
          'ingress-nginx-custom-proxy-headers',
          'ingress-nginx-tcp',
          'ingress-nginx-udp',
        ],
        'the controller ConfigMap, then add-headers, proxy-set-headers, tcp-services, udp-services',
      );
    });

    it("the chart's whole values.yaml (helm get values --all) as the values file: not one warning", async () => {
      const { problems } = await manifests(chartDefaults());
      assert.deepEqual(problems, []);
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // A kept webhook certificate (--webhook-certs DIR) that the API server could not use.

  const SERVICE_NAMES = [
    'ingress-nginx-controller-admission',
    'ingress-nginx-controller-admission.ingress-nginx',
    'ingress-nginx-controller-admission.ingress-nginx.svc',
  ];
  const DAY = 24 * 3600e3;

  async function keptDir(o: {
    ca: [number, number];
    leaf: [number, number];
    caIsCa?: boolean;
  }): Promise<string> {
    const now = Date.now();
    const at = (days: number) => new Date(now + days * DAY);
    const ca = await generate([{ name: 'commonName', value: 'kept-ca' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate: at(o.ca[0]),
      notAfterDate: at(o.ca[1]),
      extensions:
        o.caIsCa === false
          ? [{ name: 'basicConstraints', cA: false }]
          : [
              { name: 'basicConstraints', cA: true, critical: true },
              { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
            ],
    });
    const leaf = await generate([{ name: 'commonName', value: SERVICE_NAMES[2]! }], {
      keyType: 'ec',
      algorithm: 'sha256',
      notBeforeDate: at(o.leaf[0]),
      notAfterDate: at(o.leaf[1]),
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: SERVICE_NAMES.map((value) => ({ type: 2 as const, value })) },
      ],
    });
    const dir = mkdtempSync(join(work, 'kept-'));
    writeFileSync(join(dir, 'ca.crt'), ca.cert);
    writeFileSync(join(dir, 'tls.crt'), leaf.cert);
    writeFileSync(join(dir, 'tls.key'), leaf.private);
    return dir;
  }

  describe('--webhook-certs DIR: a kept certificate the API server would not trust is an error', {
    concurrency: true,
  }, () => {
    const cases: [string, Parameters<typeof keptDir>[0], RegExp][] = [
      ['an expired leaf (the documented case)', { ca: [-30, 900], leaf: [-20, -1] }, /expired/],
      ['a CA that has expired (the caBundle verifies nothing)', { ca: [-30, -1], leaf: [-20, 300] }, /./],
      [
        'a "CA" that is no CA (basicConstraints CA:FALSE)',
        { ca: [-1, 900], leaf: [-1, 300], caIsCa: false },
        /./,
      ],
    ];
    for (const [what, spec, message] of cases) {
      it(what, async () => {
        const dir = await keptDir(spec);
        const out = await runKeepip(['manifests', '--webhook-certs', dir]);
        // Found here, fixed (all but the first): accepted, exit 0, and the unusable CA went into the caBundle.
        assert.equal(out.code, 1, `exit ${out.code}; stderr: ${out.stderr}`);
        assert.match(out.stderr, /error DEPLOY_WEBHOOK_CERT_ERROR: /);
        assert.match(out.stderr, message);
        assert.equal(out.stdout, '');
      });
    }

    it("a key that is not the certificate's", async () => {
      const a = await keptDir({ ca: [-1, 900], leaf: [-1, 300] });
      const b = await keptDir({ ca: [-1, 900], leaf: [-1, 300] });
      writeFileSync(join(a, 'tls.key'), readFileSync(join(b, 'tls.key')));
      const out = await runKeepip(['manifests', '--webhook-certs', a]);
      assert.equal(out.code, 1);
      assert.match(out.stderr, /DEPLOY_WEBHOOK_CERT_ERROR: the key does not belong to the certificate/);
      assert.equal(out.stdout, '');
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // docs/manifests.md, reading files.

  const SERVICE_YAML = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {ports: [{name: http, port: 80}]}
`;

  describe('manifests.md: a directory is read recursively, each file once', () => {
    it('a symlink back to an ancestor (a loop) neither fails the read nor reads a file twice', async () => {
      const dir = join(work, 'loop');
      mkdirSync(join(dir, 'apps'), { recursive: true });
      writeFileSync(join(dir, 'apps', 'web.yaml'), SERVICE_YAML);
      symlinkSync('..', join(dir, 'apps', 'up'));
      // Two links to the same directory: a walk that follows each would take 2^40 paths.
      mkdirSync(join(dir, 'sub'));
      symlinkSync('.', join(dir, 'sub', 'loop'));
      symlinkSync('.', join(dir, 'sub', 'loop2'));
      // A FIFO named like a manifest: opening it would wait for a writer for ever.
      execFileSync('mkfifo', [join(dir, 'sub', 'pipe.yaml')]);
      const out = await runKeepip(['doctor', '-f', dir, '--json'], { timeoutMs: 30_000 });
      // Found here, fixed: exit 1 "cannot read the manifests: ... ELOOP" after reading web.yaml 40 times;
      // with two such links the walk never ended; the FIFO blocked the read.
      assert.equal(out.code, 0, out.stdout + out.stderr);
      const report = JSON.parse(out.stdout);
      assert.deepEqual(
        report.configIssues.map((i: Json) => i.code),
        [],
      );
    });

    it('the same file named twice, spelt two ways (`dir` and `dir/./file`), is read once', async () => {
      const dir = join(work, 'twice');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'web.yaml'), SERVICE_YAML);
      const plain = await loadManifests([dir, join(dir, 'web.yaml')]);
      assert.equal(plain.objects.length, 1, 'the same spelling: read once');
      // Found here, fixed: read twice (the doctor, gateway, lb and up then warned DUPLICATE_OBJECT for one
      // object in one file).
      const spelt = await loadManifests([dir, `${dir}/./web.yaml`]);
      assert.equal(spelt.objects.length, 1, spelt.objects.map((o) => o.origin.file).join(', '));
    });
  });

  // ---------------------------------------------------------------------------------------------------
  // ALLOWED: differences from the chart the docs state as deliberate; each is checked to be still what
  // keepip renders, so the table cannot rot.

  const ALLOWED: { what: string; why: string; check: (docs: Json[]) => void }[] = [
    {
      what: 'the first argument is `controller`, not `/nginx-ingress-controller`',
      why: "keepip's CLI has subcommands; the chart's name is accepted as an alias (tested above)",
      check: (docs) => assert.equal(podSpec(docs).containers[0].args[0], 'controller'),
    },
    {
      what: 'no preStop hook (the chart runs /wait-shutdown)',
      why: 'the image has no shell; keepip drains on SIGTERM itself',
      check: (docs) => assert.equal(podSpec(docs).containers[0].lifecycle, undefined),
    },
    {
      what: 'readOnlyRootFilesystem: true where the chart renders false, with a /tmp emptyDir',
      why: 'keepip writes nothing to its root; scratch space is the emptyDir',
      check: (docs) => {
        assert.equal(podSpec(docs).containers[0].securityContext.readOnlyRootFilesystem, true);
        assert.ok(podSpec(docs).volumes.some((v: Json) => v.name === 'tmp' && v.emptyDir));
      },
    },
    {
      what: 'no certgen Jobs or Helm hooks: the webhook Secret is rendered',
      why: 'keepip makes the certificate at render time (or cert-manager does)',
      check: (docs) => {
        assert.deepEqual(
          docs.filter((d) => d.kind === 'Job'),
          [],
        );
        assert.deepEqual(Object.keys(find(docs, 'Secret', 'ingress-nginx-admission').data).sort(), [
          'ca',
          'cert',
          'key',
        ]);
      },
    },
    {
      what: 'no default backend Deployment or Service, even with defaultBackend.enabled',
      why: 'keepip answers unmatched requests itself; --default-backend-service can name one',
      check: (docs) =>
        assert.deepEqual(
          docs.filter((d) => /default-backend/.test(d.metadata.name)),
          [],
        ),
    },
    {
      what: 'rbac.scope still renders a ClusterRole, for IngressClasses and Nodes',
      why: 'both are cluster-scoped: without it the controller cannot list IngressClasses',
      check: (docs) => {
        const roles = docs.filter((d) => d.kind === 'ClusterRole');
        assert.equal(roles.length, 1);
        assert.deepEqual(roles[0].rules.map((r: Rule) => r.resources[0]).sort(), ['ingressclasses', 'nodes']);
      },
    },
  ];

  describe('ALLOWED differences from the chart are still what is rendered', () => {
    let docs: Json[] = [];
    before(async () => {
      ({ docs } = await manifests({
        defaultBackend: { enabled: true },
        rbac: { scope: true },
        controller: { scope: { enabled: true } },
      }));
    });
    for (const allowed of ALLOWED) it(`${allowed.what} (${allowed.why})`, () => allowed.check(docs));
  });
});
