// keepip manifests: chart values in, Kubernetes objects out. Every rendered object validates against
// the Kubernetes OpenAPI schemas (kubernetes-models); the seed's values give a chain the doctor finds
// healthy (PROXY protocol on both ends), the chart's defaults one where kube-proxy loses the client;
// the controller arguments, ports, annotations and ConfigMap data are the chart's; every values key
// keepip does not render is a warning naming it.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import type { Values } from '../../src/deploy/chart-defaults.ts';
import type { K8sObject } from '../../src/deploy/context.ts';
import { Registry } from 'prom-client';
import { createNginxControllerMetrics } from '../../src/controller/nginx-metrics.ts';
import { renderManifests } from '../../src/deploy/render.ts';
import { createReloadMetrics } from '../../src/gateway/reload-metrics.ts';
import { createRequestMetrics } from '../../src/gateway/request-metrics.ts';
import { repoRoot, runKeepip } from '../helpers/process.ts';
import { schemaViolation } from './schema.ts';

const EXAMPLES = join(repoRoot, 'examples/helm-values');
const FIXTURES = join(repoRoot, 'test/fixtures/helm-values');
const GITEA = join(repoRoot, 'examples/seed/after/gitea.yaml');
const OPTIONS = {
  release: 'ingress-nginx',
  namespace: 'ingress-nginx',
  image: 'keepip:test',
  version: '0.0.0-test',
};

const VALUES_FILES = [
  join(EXAMPLES, 'seed.yaml'),
  join(EXAMPLES, 'chart-defaults.yaml'),
  join(FIXTURES, 'seed-writeup.yaml'),
  join(FIXTURES, 'kitchen-sink.yaml'),
  join(FIXTURES, 'daemonset-scoped.yaml'),
  join(FIXTURES, 'cert-manager.yaml'),
];

// biome-ignore lint/suspicious/noExplicitAny: rendered objects are read as plain JSON in the assertions
type Json = any;

const readValues = (file: string): Values => (parse(readFileSync(file, 'utf8')) as Values | null) ?? {};

async function render(values: Values) {
  const result = await renderManifests(values, { ...OPTIONS });
  const errors = result.problems.filter((p) => p.severity === 'error');
  assert.deepEqual(errors, [], 'no values errors');
  return result;
}

function find(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.ok(found, `no ${kind} ${name ?? ''}`);
  return found;
}

type Container = {
  args: string[];
  ports: { name: string; containerPort: number; protocol: string; hostPort?: number }[];
};
const container = (objects: readonly K8sObject[]): Container =>
  (find(objects, objects.some((o) => o.kind === 'DaemonSet') ? 'DaemonSet' : 'Deployment').spec as Json)
    .template.spec.containers[0];

/** The CLI's output for a values file, rendered once per file into a directory the tests share. */
const renderDir = mkdtempSync(join(tmpdir(), 'keepip-manifests-'));
after(() => rmSync(renderDir, { recursive: true, force: true }));
const rendered = new Map<string, Promise<string>>();

function renderedFile(valuesFile: string): Promise<string> {
  let file = rendered.get(valuesFile);
  if (file === undefined) {
    const path = join(renderDir, `${rendered.size}.yaml`);
    file = runKeepip(['manifests', '--values', valuesFile]).then((out) => {
      assert.equal(out.code, 0, out.stderr);
      writeFileSync(path, out.stdout);
      return path;
    });
    rendered.set(valuesFile, file);
  }
  return file;
}

/** The doctor on a values file's rendered objects and the seed's Gitea Ingress. */
async function doctorOn(valuesFile: string, extra: string[] = []) {
  return runKeepip(['doctor', '-f', await renderedFile(valuesFile), '-f', GITEA, ...extra]);
}

describe('keepip manifests: valid Kubernetes objects', () => {
  for (const file of VALUES_FILES) {
    it(`${file.slice(repoRoot.length)}: every object validates against the Kubernetes schemas`, async () => {
      const { objects } = await render(readValues(file));
      assert.ok(objects.length >= 10, `only ${objects.length} objects`);
      const violations = objects
        .map((o) => [`${o.kind} ${o.metadata.name}`, schemaViolation(o)])
        .filter(([, v]) => v);
      assert.deepEqual(violations, []);
    });
  }

  it('the validation itself refuses a broken object (a string replica count, a port name for a port)', () => {
    assert.match(
      schemaViolation({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'x' },
        spec: { replicas: '3' },
      }),
      /replicas must be integer/,
    );
    assert.match(
      schemaViolation({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 's' },
        spec: { ports: [{ port: 'http' }] },
      }),
      /port must be integer/,
    );
    assert.match(schemaViolation({ apiVersion: 'v9', kind: 'Nope' }), /no schema/);
  });

  it('prints multi-document YAML that parses back to the rendered objects, warnings on stderr only', async () => {
    const file = join(FIXTURES, 'kitchen-sink.yaml');
    const out = await runKeepip([
      'manifests',
      '--values',
      file,
      '--namespace',
      'edge',
      '--image',
      'registry.example/keepip:1',
    ]);
    assert.equal(out.code, 0, out.stderr);
    const docs = parseAllDocuments(out.stdout)
      .map((d) => d.toJS() as K8sObject)
      .filter((d) => d !== null);
    assert.deepEqual(
      docs.map((d) => d.kind),
      (await renderManifests(readValues(file), { ...OPTIONS, namespace: 'edge' })).objects.map((o) => o.kind),
    );
    assert.equal(container(docs).args[0], 'controller');
    assert.equal(
      (find(docs, 'Deployment').spec as Json).template.spec.containers[0].image,
      'registry.example/keepip:1',
    );
    assert.ok(
      docs
        .filter(
          (d) =>
            d.kind !== 'Namespace' &&
            d.kind !== 'IngressClass' &&
            d.kind !== 'ClusterRole' &&
            d.kind !== 'ClusterRoleBinding' &&
            d.kind !== 'ValidatingWebhookConfiguration',
        )
        .every((d) => d.metadata.namespace === 'edge'),
    );
    assert.doesNotMatch(out.stdout, /keepip manifests: warning/);
  });
});

describe("keepip manifests: the seed's values", () => {
  it('keep the NLB annotations and the PROXY protocol configuration as written', async () => {
    const values = readValues(join(EXAMPLES, 'seed.yaml')) as Json;
    const { objects } = await render(values);
    const service = find(objects, 'Service', 'ingress-nginx-controller');
    assert.deepEqual(service.metadata.annotations, values.controller.service.annotations);
    assert.equal((service.spec as Json).type, 'LoadBalancer');
    assert.deepEqual(find(objects, 'ConfigMap', 'ingress-nginx-controller').data, values.controller.config);
  });

  it('give a chain the doctor finds healthy: the NLB sends PROXY v2, the gateway expects it from the NLB only', async () => {
    const audit = await doctorOn(join(EXAMPLES, 'seed.yaml'), ['--json']);
    assert.equal(audit.code, 0, audit.stdout + audit.stderr);
    const report = JSON.parse(audit.stdout);
    assert.deepEqual(
      report.findings.filter((f: Json) => f.severity !== 'info'),
      [],
    );
    const laptop = await doctorOn(join(EXAMPLES, 'seed.yaml'), [
      '--client',
      '127.0.20.10',
      '--host',
      'gitea.example.com',
    ]);
    assert.equal(laptop.code, 0, laptop.stdout);
    assert.match(laptop.stdout, /^keepip doctor: 200 /);
    assert.match(laptop.stdout, /adds a PROXY v2 header with source 127\.0\.20\.10/);
    assert.match(laptop.stdout, /accepts the PROXY v2 header from trusted 127\.0\.10\.1/);
    const other = await doctorOn(join(EXAMPLES, 'seed.yaml'), [
      '--client',
      '127.0.20.66',
      '--host',
      'gitea.example.com',
    ]);
    assert.equal(other.code, 1);
    assert.match(other.stdout, /403/);
  });

  it('as the write-up set them (use-proxy-protocol alone) trust every peer: a warning here, an error from the doctor', async () => {
    const file = join(FIXTURES, 'seed-writeup.yaml');
    const rendered = await runKeepip(['manifests', '--values', file]);
    assert.equal(rendered.code, 0);
    assert.match(
      rendered.stderr,
      /warning DEPLOY_CONFIG_WARNING: controller\.config\.proxy-real-ip-cidr: TRUSTS_EVERYONE/,
    );
    const audit = await doctorOn(file);
    assert.equal(audit.code, 1);
    assert.match(audit.stdout, /PROXY_PROTOCOL_TRUSTS_EVERYONE/);
  });

  it("the chart's defaults lose the client at kube-proxy (externalTrafficPolicy Cluster), as the doctor says", async () => {
    const audit = await doctorOn(join(EXAMPLES, 'chart-defaults.yaml'));
    assert.equal(audit.code, 1);
    assert.match(audit.stdout, /CLIENT_IP_LOST_AT_KUBE_PROXY/);
    const none = await runKeepip(['manifests']);
    const file = await runKeepip(['manifests', '--values', join(EXAMPLES, 'chart-defaults.yaml')]);
    const strip = (text: string) =>
      text
        .split('\n')
        .filter((l) => !/^#|caBundle:|^ {2}(ca|cert|key): /.test(l))
        .join('\n');
    assert.equal(strip(file.stdout), strip(none.stdout), 'the defaults file renders as no file at all');
  });
});

describe('keepip manifests: what the chart would render', () => {
  it("the controller's arguments for the chart's defaults, flag for flag", async () => {
    const { objects } = await render({});
    assert.deepEqual(container(objects).args, [
      'controller',
      '--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller',
      '--election-id=ingress-nginx-leader',
      '--controller-class=k8s.io/ingress-nginx',
      '--ingress-class=nginx',
      '--configmap=$(POD_NAMESPACE)/ingress-nginx-controller',
      '--validating-webhook=:8443',
      '--validating-webhook-certificate=/usr/local/certificates/cert',
      '--validating-webhook-key=/usr/local/certificates/key',
    ]);
  });

  it('arguments, ports, names and objects follow the values of a production install', async () => {
    const { objects } = await render(readValues(join(FIXTURES, 'kitchen-sink.yaml')));
    const c = container(objects);
    assert.deepEqual(c.args, [
      'controller',
      '--publish-service=$(POD_NAMESPACE)/edge-controller',
      '--election-id=edge-leader',
      '--controller-class=k8s.io/edge',
      '--ingress-class=edge',
      '--configmap=$(POD_NAMESPACE)/edge-controller',
      '--tcp-services-configmap=$(POD_NAMESPACE)/edge-tcp',
      '--udp-services-configmap=$(POD_NAMESPACE)/edge-udp',
      '--validating-webhook=:8443',
      '--validating-webhook-certificate=/usr/local/certificates/cert',
      '--validating-webhook-key=/usr/local/certificates/key',
      '--watch-ingress-without-class=true',
      '--enable-metrics=true',
      '--default-ssl-certificate=edge/wildcard-tls',
      '--sync-period=10m',
      '--update-status-on-shutdown=false',
    ]);
    assert.deepEqual(
      c.ports.map((p) => `${p.name}:${p.containerPort}/${p.protocol}`),
      [
        'http:80/TCP',
        'https:443/TCP',
        'metrics:10254/TCP',
        'webhook:8443/TCP',
        '22-tcp:22/TCP',
        '53-tcp:53/TCP',
        '5432-tcp:5432/TCP',
        '53-udp:53/UDP',
      ],
    );
    const service = find(objects, 'Service', 'edge-controller').spec as Json;
    const servicePorts = (s: Json) =>
      s.ports.map((p: Json) => [p.name, p.port, p.protocol, p.targetPort, p.nodePort]);
    assert.deepEqual(servicePorts(service), [
      ['http', 80, 'TCP', 'http', undefined],
      ['https', 443, 'TCP', 'https', undefined],
      ['22-tcp', 22, 'TCP', '22-tcp', 30022],
      ['53-tcp', 53, 'TCP', '53-tcp', undefined],
      ['5432-tcp', 5432, 'TCP', '5432-tcp', undefined],
      ['53-udp', 53, 'UDP', '53-udp', 30053],
    ]);
    assert.deepEqual(
      servicePorts(find(objects, 'Service', 'edge-controller-internal').spec).slice(2),
      [
        ['22-tcp', 22, 'TCP', '22-tcp', undefined],
        ['53-tcp', 53, 'TCP', '53-tcp', undefined],
        ['5432-tcp', 5432, 'TCP', '5432-tcp', undefined],
        ['53-udp', 53, 'UDP', '53-udp', 31053],
      ],
      'the internal Service: its own nodePorts',
    );
    assert.equal(service.externalTrafficPolicy, 'Local');
    assert.equal(service.loadBalancerClass, 'service.k8s.aws/nlb');
    assert.deepEqual(service.loadBalancerSourceRanges, ['10.0.0.0/8', '192.168.0.0/16']);
    assert.equal(
      (find(objects, 'Service', 'edge-controller-internal').metadata.annotations as Json)?.[
        'service.beta.kubernetes.io/aws-load-balancer-scheme'
      ],
      'internal',
    );
    assert.deepEqual(find(objects, 'ConfigMap', 'edge-tcp').data, {
      '22': 'gitea/gitea-ssh:22::PROXY',
      '53': 'kube-system/kube-dns:53',
      '5432': 'db/postgres:5432',
    });
    assert.deepEqual(find(objects, 'ConfigMap', 'edge-udp').data, { '53': 'kube-system/kube-dns:53' });
    assert.deepEqual(find(objects, 'ConfigMap', 'edge-controller').data, {
      'proxy-body-size': '16m',
      'proxy-real-ip-cidr': '10.0.0.0/16',
      'use-geoip2': 'true',
      'use-proxy-protocol': 'true',
    });
    const deployment = find(objects, 'Deployment', 'edge-controller').spec as Json;
    assert.equal(deployment.replicas, undefined, 'the HPA owns the replica count');
    assert.equal(deployment.template.metadata.annotations['prometheus.io/port'], '10254');
    assert.equal(deployment.template.spec.serviceAccountName, 'edge');
    assert.deepEqual(deployment.template.spec.securityContext, {
      fsGroup: 101,
      sysctls: [{ name: 'net.ipv4.ip_local_port_range', value: '1024 65000' }],
    });
    assert.equal(
      deployment.template.spec.containers[0].securityContext.readOnlyRootFilesystem,
      true,
      'keepip needs no writable root',
    );
    assert.deepEqual((find(objects, 'PodDisruptionBudget').spec as Json).minAvailable, 2);
    assert.deepEqual(
      (find(objects, 'HorizontalPodAutoscaler').spec as Json).metrics.map((m: Json) => m.resource.name),
      ['cpu'],
    );
    assert.deepEqual(
      objects
        .filter((o) => o.kind === 'IngressClass')
        .map((o) => [o.metadata.name, (o.spec as Json).controller]),
      [
        ['edge', 'k8s.io/edge'],
        ['edge-internal', 'k8s.io/edge'],
      ],
    );
    assert.equal(
      (find(objects, 'IngressClass', 'edge').metadata.annotations as Json)?.[
        'ingressclass.kubernetes.io/is-default-class'
      ],
      'true',
    );
    const webhook = (find(objects, 'ValidatingWebhookConfiguration').webhooks as Json[])[0];
    assert.equal(webhook.failurePolicy, 'Ignore');
    assert.equal(webhook.timeoutSeconds, 5);
    assert.equal((find(objects, 'ServiceMonitor').metadata.labels as Json).release, 'prometheus');
    assert.equal(
      (find(objects, 'ServiceAccount').metadata.annotations as Json)?.['eks.amazonaws.com/role-arn'],
      'arn:aws:iam::111122223333:role/edge',
    );
  });

  it('udp as the chart renders tcp: its ConfigMap, argument, container and Service ports (protocol UDP, nodePorts)', async () => {
    const dns = 'kube-system/kube-dns:53';
    const { objects, problems } = await render({
      portNamePrefix: 'ext',
      tcp: { '53': dns },
      udp: { '53': dns, '123': 'kube-system/ntp:123' },
      controller: {
        hostPort: { enabled: true },
        tcp: { configMapNamespace: 'streams' },
        udp: { configMapNamespace: 'streams', annotations: { 'example.com/owner': 'dns' } },
        service: {
          type: 'NodePort',
          nodePorts: { tcp: { '53': 30053 }, udp: { '53': 31053 } },
          internal: {
            enabled: true,
            annotations: { 'example.com/internal': 'true' },
            nodePorts: { udp: { '123': 31123 } },
          },
        },
      },
    });
    assert.deepEqual(problems, [], 'every udp key is rendered: no warning');
    const c = container(objects);
    assert.deepEqual(
      c.args.filter((a) => a.includes('-services-configmap=')),
      [
        '--tcp-services-configmap=streams/ingress-nginx-tcp',
        '--udp-services-configmap=streams/ingress-nginx-udp',
      ],
    );
    assert.deepEqual(
      c.ports.slice(3).map((p) => [p.name, p.containerPort, p.protocol, p.hostPort]),
      [
        ['ext-53-tcp', 53, 'TCP', 53],
        ['ext-123-udp', 123, 'UDP', 123],
        ['ext-53-udp', 53, 'UDP', 53],
      ],
      "after http, https and webhook; udp after tcp, each in Go's key order; hostPort as the chart",
    );
    const udp = find(objects, 'ConfigMap', 'ingress-nginx-udp');
    assert.deepEqual(udp.data, { '123': 'kube-system/ntp:123', '53': dns });
    assert.deepEqual(udp.metadata.annotations, { 'example.com/owner': 'dns' });
    assert.equal(udp.metadata.namespace, 'ingress-nginx', 'in the release namespace, as the chart');
    const ports = (name: string) =>
      (find(objects, 'Service', name).spec as Json).ports
        .slice(2)
        .map((p: Json) => [p.name, p.port, p.protocol, p.targetPort, p.nodePort]);
    assert.deepEqual(ports('ingress-nginx-controller'), [
      ['ext-53-tcp', 53, 'TCP', 'ext-53-tcp', 30053],
      ['ext-123-udp', 123, 'UDP', 'ext-123-udp', undefined],
      ['ext-53-udp', 53, 'UDP', 'ext-53-udp', 31053],
    ]);
    assert.deepEqual(ports('ingress-nginx-controller-internal'), [
      ['ext-53-tcp', 53, 'TCP', 'ext-53-tcp', undefined],
      ['ext-123-udp', 123, 'UDP', 'ext-123-udp', 31123],
      ['ext-53-udp', 53, 'UDP', 'ext-53-udp', undefined],
    ]);
    assert.ok(
      objects.every((o) => schemaViolation(o) === ''),
      'valid against the Kubernetes schemas',
    );
    const bad = await renderManifests({ udp: { dns: dns, '65536': dns } }, { ...OPTIONS });
    assert.deepEqual(bad.objects, []);
    assert.deepEqual(
      bad.problems.map((p) => [p.code, p.message]),
      [
        ['DEPLOY_VALUES_INVALID', 'udp.65536: is not a port number'],
        ['DEPLOY_VALUES_INVALID', 'udp.dns: is not a port number'],
      ],
    );
    const refused = await renderManifests(
      { udp: { '53': dns }, controller: { udp: { configMapNamespace: 'a/b' } } },
      { ...OPTIONS },
    );
    assert.deepEqual(
      refused.problems.map((p) => [p.code, p.key]),
      [['DEPLOY_CONTROLLER_ARGS_INVALID', 'controller.udp.configMapNamespace']],
    );
  });

  it('a DaemonSet on host ports watching one namespace: namespaced RBAC, no PDB, no webhook', async () => {
    const { objects } = await render(readValues(join(FIXTURES, 'daemonset-scoped.yaml')));
    assert.ok(
      objects.every(
        (o) =>
          o.kind !== 'Deployment' &&
          o.kind !== 'PodDisruptionBudget' &&
          o.kind !== 'ValidatingWebhookConfiguration',
      ),
    );
    const c = container(objects);
    assert.deepEqual(
      c.ports.map((p) => [p.name, p.hostPort]),
      [
        ['http', 80],
        ['https', 443],
        ['metrics', undefined],
      ],
    );
    assert.deepEqual(c.args, [
      'controller',
      '--election-id=ingress-nginx-leader',
      '--controller-class=k8s.io/ingress-nginx',
      '--ingress-class=nginx',
      '--configmap=$(POD_NAMESPACE)/ingress-nginx-controller',
      '--watch-namespace=$(POD_NAMESPACE)',
      '--report-node-internal-ip-address=true',
      '--enable-metrics=true',
      '--publish-status-address=203.0.113.10',
    ]);
    const clusterRole = find(objects, 'ClusterRole').rules as Json[];
    assert.deepEqual(
      clusterRole.map((r) => r.resources[0]).sort(),
      ['ingressclasses', 'nodes'],
      'only cluster-scoped resources cluster-wide',
    );
    const role = find(objects, 'Role').rules as Json[];
    assert.ok(role.some((r) => r.resources[0] === 'ingresses'));
    assert.deepEqual(
      (find(objects, 'Service').spec as Json).ports.map((p: Json) => p.nodePort),
      [30080, 30443],
    );
  });

  it('cert-manager makes the webhook certificate and injects its CA; names follow nameOverride', async () => {
    const { objects } = await render(readValues(join(FIXTURES, 'cert-manager.yaml')));
    assert.ok(
      objects.every((o) => o.kind !== 'Secret'),
      'no certificate rendered here',
    );
    const webhook = find(objects, 'ValidatingWebhookConfiguration', 'ingress-nginx-edge-admission');
    assert.equal(
      (webhook.metadata.annotations as Json)?.['cert-manager.io/inject-ca-from'],
      'edge-system/ingress-nginx-edge-admission',
    );
    const cert = find(objects, 'Certificate', 'ingress-nginx-edge-admission').spec as Json;
    assert.equal(cert.duration, '2160h0m0s');
    assert.ok(cert.dnsNames.includes('ingress-nginx-edge-controller-admission.edge-system.svc'));
    assert.equal(find(objects, 'Namespace').metadata.name, 'edge-system');
  });
});

describe('keepip manifests: null removes a default, as Helm does', () => {
  it('controller.livenessProbe, resources and nodeSelector set to null are not rendered', async () => {
    const withDefaults = (find((await render({})).objects, 'Deployment').spec as Json).template.spec;
    assert.ok(withDefaults.containers[0].livenessProbe, 'the chart has a livenessProbe by default');
    assert.ok(withDefaults.containers[0].resources, 'and resources');
    assert.ok(withDefaults.nodeSelector, 'and a nodeSelector');
    const values = {
      controller: { livenessProbe: null, resources: null, nodeSelector: null },
    } as unknown as Values;
    const spec = (find((await render(values)).objects, 'Deployment').spec as Json).template.spec;
    assert.equal(spec.containers[0].livenessProbe, undefined);
    assert.equal(spec.containers[0].resources, undefined);
    assert.equal(spec.nodeSelector, undefined);
    assert.ok(spec.containers[0].readinessProbe, 'what was not removed stays');
  });
});

describe('keepip manifests: the writable /tmp', () => {
  const podOf = async (values: Values) =>
    (find((await render(values)).objects, 'Deployment').spec as Json).template.spec;
  const tmpMounts = (spec: Json) =>
    spec.containers[0].volumeMounts.filter((m: Json) => m.mountPath === '/tmp').map((m: Json) => m.name);

  it('is an emptyDir of its own unless the values mount one there; never two of a name or a path', async () => {
    const own = await podOf({});
    assert.deepEqual(tmpMounts(own), ['tmp']);
    // Values that hardened ingress-nginx with their own /tmp: theirs alone (the API refused two).
    const theirs = await podOf({
      controller: {
        extraVolumes: [{ name: 'tmp', emptyDir: {} }],
        extraVolumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
      },
    });
    assert.deepEqual(tmpMounts(theirs), ['tmp']);
    // A volume of theirs named tmp mounted elsewhere: ours is renamed.
    const elsewhere = await podOf({
      controller: {
        extraVolumes: [{ name: 'tmp', emptyDir: {} }],
        extraVolumeMounts: [{ name: 'tmp', mountPath: '/scratch' }],
      },
    });
    assert.deepEqual(tmpMounts(elsewhere), ['keepip-tmp']);
    for (const spec of [own, theirs, elsewhere]) {
      const names = spec.volumes.map((x: Json) => x.name);
      const paths = spec.containers[0].volumeMounts.map((m: Json) => m.mountPath);
      assert.equal(new Set(names).size, names.length, `volumes ${names}`);
      assert.equal(new Set(paths).size, paths.length, `mounts ${paths}`);
    }
  });
});

describe('keepip manifests: the webhook certificate', () => {
  it('is signed by the CA in the caBundle and names the webhook Service', async () => {
    const { objects } = await render({});
    const data = find(objects, 'Secret', 'ingress-nginx-admission').data as Record<string, string>;
    const pem = (key: string) => Buffer.from(data[key]!, 'base64').toString('utf8');
    const bundle = (find(objects, 'ValidatingWebhookConfiguration').webhooks as Json[])[0].clientConfig
      .caBundle;
    assert.equal(Buffer.from(bundle, 'base64').toString('utf8'), pem('ca'));
    const ca = new X509Certificate(pem('ca'));
    const cert = new X509Certificate(pem('cert'));
    assert.ok(cert.verify(ca.publicKey));
    assert.ok(ca.ca && !cert.ca);
    assert.equal(
      cert.checkHost('ingress-nginx-controller-admission.ingress-nginx.svc'),
      'ingress-nginx-controller-admission.ingress-nginx.svc',
    );
    assert.equal(cert.checkHost('evil.example.com'), undefined);
  });

  it('--webhook-certs keeps it: written on the first run, the same on the next, a foreign one refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keepip-webhook-certs-'));
    try {
      const caBundle = (stdout: string) => /caBundle: (\S+)/.exec(stdout)?.[1];
      const first = await runKeepip(['manifests', '--webhook-certs', dir]);
      const second = await runKeepip(['manifests', '--webhook-certs', dir]);
      assert.equal(first.code, 0, first.stderr);
      assert.ok(caBundle(first.stdout));
      assert.equal(caBundle(second.stdout), caBundle(first.stdout));
      const other = await runKeepip(['manifests', '--webhook-certs', dir, '--namespace', 'elsewhere']);
      assert.equal(other.code, 1);
      assert.match(
        other.stderr,
        /DEPLOY_WEBHOOK_CERT_ERROR: the certificate does not name ingress-nginx-controller-admission\.elsewhere\.svc/,
      );
      assert.equal(other.stdout, '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('keepip manifests: controller.addHeaders and controller.proxySetHeaders', () => {
  it('render their ConfigMaps as the chart does, named by the controller ConfigMap, and the gateway reads them', async () => {
    const { objects, problems } = await render({
      controller: {
        addHeaders: { 'X-Frame-Options': 'DENY', 'X-Request-Id': '$req_id' },
        proxySetHeaders: { 'X-Team': 'edge' },
      },
    } as Values);
    const add = find(objects, 'ConfigMap', 'ingress-nginx-custom-add-headers');
    assert.equal(add.metadata.namespace, 'ingress-nginx');
    assert.deepEqual(add.data, { 'X-Frame-Options': 'DENY', 'X-Request-Id': '$req_id' });
    assert.deepEqual(find(objects, 'ConfigMap', 'ingress-nginx-custom-proxy-headers').data, {
      'X-Team': 'edge',
    });
    const controller = find(objects, 'ConfigMap', 'ingress-nginx-controller').data as Record<string, string>;
    assert.equal(controller['add-headers'], 'ingress-nginx/ingress-nginx-custom-add-headers');
    assert.equal(controller['proxy-set-headers'], 'ingress-nginx/ingress-nginx-custom-proxy-headers');
    assert.deepEqual(problems, []);
    for (const o of objects.filter((x) => x.kind === 'ConfigMap')) assert.equal(schemaViolation(o), '');
  });

  it('what the gateway would leave out is a warning keyed by the values key; none without entries', async () => {
    const { problems } = await render({
      controller: {
        addHeaders: { Connection: 'close' },
        proxySetHeaders: { 'X-Start': 't=$no_such_variable' },
      },
    } as Values);
    assert.deepEqual(
      problems.map((p) => `${p.code} ${p.key}`),
      ['DEPLOY_CONFIG_WARNING controller.addHeaders', 'DEPLOY_CONFIG_WARNING controller.proxySetHeaders'],
    );
    const plain = await render({});
    assert.equal(plain.objects.filter((o) => o.kind === 'ConfigMap').length, 1);
    const data = find(plain.objects, 'ConfigMap', 'ingress-nginx-controller').data as Record<string, string>;
    assert.equal(data['add-headers'], undefined);
  });
});

describe('keepip manifests: controller.metrics.prometheusRule', () => {
  // The chart's example alerts (values.yaml, commented out there).
  const rules = [
    {
      alert: 'NGINXConfigFailed',
      expr: 'count(nginx_ingress_controller_config_last_reload_successful == 0) > 0',
      for: '1s',
      labels: { severity: 'critical' },
    },
    {
      alert: 'NGINXCertificateExpiry',
      expr: '(avg(nginx_ingress_controller_ssl_expire_time_seconds{host!="_"}) by (host) - time()) < 604800',
      for: '1s',
    },
    {
      alert: 'NGINXTooMany500s',
      expr: '100 * ( sum( nginx_ingress_controller_requests{status=~"5.+"} ) / sum(nginx_ingress_controller_requests) ) > 5',
      for: '1m',
    },
  ];

  it("renders the chart's PrometheusRule: the rules as written in one group, its labels and namespace", async () => {
    const { objects, problems } = await render({
      controller: {
        metrics: {
          enabled: true,
          prometheusRule: {
            enabled: true,
            additionalLabels: { release: 'prometheus' },
            namespace: 'monitoring',
            rules,
          },
        },
      },
    } as Values);
    assert.deepEqual(problems, []);
    const rule = find(objects, 'PrometheusRule', 'ingress-nginx-controller');
    assert.equal(rule.metadata.namespace, 'monitoring');
    assert.equal((rule.metadata.labels as Json).release, 'prometheus');
    assert.equal((rule.metadata.labels as Json)['app.kubernetes.io/component'], 'controller');
    assert.deepEqual(rule.spec, { groups: [{ name: 'ingress-nginx', rules }] });
    assert.equal(schemaViolation(rule), '');
    // Not without metrics, as the chart.
    const off = await render({
      controller: { metrics: { prometheusRule: { enabled: true, rules } } },
    } as Values);
    assert.equal(off.objects.filter((o) => o.kind === 'PrometheusRule').length, 0);
  });

  it('the metrics those alerts read are ones keepip exports', async () => {
    const registry = new Registry();
    createReloadMetrics(registry);
    createRequestMetrics(registry);
    createNginxControllerMetrics(registry, {
      controllerClass: 'k8s.io/ingress-nginx',
      podNamespace: 'ingress-nginx',
      podName: null,
      electionId: 'x',
    });
    const exported = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    const read = rules.flatMap((r) =>
      [...r.expr.matchAll(/nginx_ingress_controller_[a-z_]+/g)].map((m) => m[0]),
    );
    assert.deepEqual(
      read.filter((name) => !exported.has(name)),
      [],
    );
  });
});

describe('keepip manifests: nothing dropped silently', () => {
  it('names every key it ignores or does not know, and nothing the chart default already says', async () => {
    const out = await runKeepip(['manifests', '--values', join(FIXTURES, 'kitchen-sink.yaml')]);
    assert.equal(out.code, 0, out.stderr);
    const warned = [...out.stderr.matchAll(/^keepip manifests: warning (\S+): (\S+):/gm)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    assert.deepEqual(warned.sort(), [
      'DEPLOY_CONFIG_WARNING controller.config.use-geoip2',
      'DEPLOY_UNSUPPORTED_FLAG controller.extraArgs.sync-period',
      'DEPLOY_VALUES_IGNORED controller.allowSnippetAnnotations',
      'DEPLOY_VALUES_IGNORED controller.enableMimalloc',
      'DEPLOY_VALUES_IGNORED controller.image.chroot',
      'DEPLOY_VALUES_UNKNOWN_KEY controller.somethingNew',
    ]);
  });

  it('a value of the wrong type or an unknown controller flag: named, and nothing to apply for the former', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keepip-values-'));
    try {
      const bad = join(dir, 'bad.yaml');
      writeFileSync(
        bad,
        'controller:\n  replicaCount: two\n  kind: Both\n  service:\n    annotations: [a]\n',
      );
      const out = await runKeepip(['manifests', '--values', bad]);
      assert.equal(out.code, 1);
      assert.equal(out.stdout, '');
      assert.match(
        out.stderr,
        /error DEPLOY_VALUES_INVALID: controller\.replicaCount: "two" is not an integer/,
      );
      assert.match(out.stderr, /error DEPLOY_VALUES_INVALID: controller\.kind: "Both"/);
      assert.match(
        out.stderr,
        /error DEPLOY_VALUES_INVALID: controller\.service\.annotations: \["a"\] is not a map/,
      );
      const flag = join(dir, 'flag.yaml');
      writeFileSync(flag, 'controller:\n  extraArgs:\n    no-such-flag: "1"\n');
      const warned = await runKeepip(['manifests', '--values', flag]);
      assert.equal(warned.code, 0);
      assert.match(
        warned.stderr,
        /warning DEPLOY_UNSUPPORTED_FLAG: controller\.extraArgs\.no-such-flag: keepip controller has no --no-such-flag/,
      );
      writeFileSync(bad, 'controller: [\n');
      const yaml = await runKeepip(['manifests', '--values', bad]);
      assert.equal(yaml.code, 1);
      assert.match(yaml.stderr, /error DEPLOY_VALUES_YAML_ERROR: .*bad\.yaml \(line \d+, column \d+\)/);
      const usage = await runKeepip(['manifests', '--nope']);
      assert.equal(usage.code, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
