// Realistic values files rendered as a cluster would take them: every object valid against the
// Kubernetes schemas (schema.ts) and against what the API server and the objects of one install check
// of each other (cluster.ts: label values, selectors reaching the pods, named ports, references, the
// controller's arguments), under the default release name and another one. The chart renders some
// values through `tpl` (affinity, topologySpreadConstraints, hostAliases, extraInitContainers, the
// controller Service annotations, controller.config, tcp, udp): the templates its own values.yaml
// documents are evaluated as Helm does, any other is an error naming the key, never passed on as text.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import type { Values } from '../../src/deploy/chart-defaults.ts';
import type { K8sObject } from '../../src/deploy/context.ts';
import { renderManifests } from '../../src/deploy/render.ts';
import { repoRoot } from '../helpers/process.ts';
import { clusterProblems } from './cluster.ts';
import { schemaViolation } from './schema.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered objects are read as plain JSON in the assertions
type Json = any;

const FIXTURES = join(repoRoot, 'test/fixtures/helm-values');
const VALUES_FILES = [
  join(repoRoot, 'examples/helm-values/seed.yaml'),
  join(repoRoot, 'examples/helm-values/chart-defaults.yaml'),
  ...[
    'aws-nlb-internal',
    'daemonset-hostnetwork',
    'hpa-pdb',
    'custom-class',
    'kitchen-sink',
    'daemonset-scoped',
    'cert-manager',
    'seed-writeup',
  ].map((name) => join(FIXTURES, `${name}.yaml`)),
];

const readValues = (file: string): Values => (parse(readFileSync(file, 'utf8')) as Values | null) ?? {};

async function render(values: Values, release = 'ingress-nginx', namespace = 'ingress-nginx') {
  return renderManifests(values, { release, namespace, image: 'keepip:test', version: '0.0.0-test' });
}

async function renderOk(values: Values, release?: string, namespace?: string): Promise<K8sObject[]> {
  const result = await render(values, release, namespace);
  assert.deepEqual(
    result.problems.filter((p) => p.severity === 'error'),
    [],
  );
  return result.objects;
}

const workload = (objects: readonly K8sObject[]): Json =>
  objects.find((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet');

describe('keepip manifests as a cluster takes them', () => {
  for (const file of VALUES_FILES) {
    for (const release of ['ingress-nginx', 'keepip']) {
      it(`${file.slice(repoRoot.length)} as release ${release}: schemas, labels, selectors, ports, references, args`, async () => {
        const objects = await renderOk(readValues(file), release, 'edge');
        const violations = objects
          .map((o) => `${o.kind} ${o.metadata.name}: ${schemaViolation(o)}`)
          .filter((v) => !v.endsWith(': '));
        assert.deepEqual([...violations, ...clusterProblems(objects)], []);
      });
    }
  }

  it('the checks refuse what a cluster refuses', async () => {
    const objects = structuredClone(await renderOk({ controller: { metrics: { enabled: true } } }));
    const spec = workload(objects).spec;
    spec.template.metadata.labels['app.kubernetes.io/component'] = 'web';
    spec.template.spec.containers[0].ports[0].name = 'http-port-too-long';
    spec.template.spec.affinity = {
      podAntiAffinity: { x: [{ labelSelector: { matchLabels: { a: '{{ .Release.Name }}' } } }] },
    };
    spec.template.spec.containers[0].args.push('--http-port=eighty');
    const problems = clusterProblems(objects).join('\n');
    assert.match(problems, /selector does not match template labels/);
    assert.match(problems, /port name http-port-too-long is not an IANA service name/);
    assert.match(problems, /bad label value "\{\{ \.Release\.Name \}\}"/);
    assert.match(problems, /Service ingress-nginx-controller: selects no rendered pods/);
    assert.match(problems, /keepip controller refuses its args: .*--http-port/);
  });

  it('a tcp and a udp entry on one port number are two ports, told apart by protocol and name', async () => {
    const dns = 'kube-system/kube-dns:53';
    const objects = await renderOk({ tcp: { '53': dns }, udp: { '53': dns } });
    assert.deepEqual(clusterProblems(objects), []);
    const broken = structuredClone(objects);
    const service = broken.find((o) => o.kind === 'Service') as Json;
    service.spec.ports.find((p: Json) => p.name === '53-udp').protocol = 'TCP';
    service.spec.ports.push({ ...service.spec.ports[0] });
    const problems = clusterProblems(broken).join('\n');
    assert.match(problems, /Service ingress-nginx-controller: port 53\/TCP twice/);
    assert.match(problems, /Service ingress-nginx-controller: name http twice/);
    assert.match(problems, /targetPort 53-udp is no TCP container port of ingress-nginx-controller/);
  });
});

describe('values the chart renders through tpl', () => {
  it("the chart's documented anti-affinity and spread constraints select this release's pods", async () => {
    for (const release of ['ingress-nginx', 'keepip']) {
      const objects = await renderOk(readValues(join(FIXTURES, 'aws-nlb-internal.yaml')), release);
      const pod = workload(objects).spec.template;
      const spread = pod.spec.topologySpreadConstraints[0].labelSelector.matchLabels;
      assert.deepEqual(spread, {
        'app.kubernetes.io/name': 'ingress-nginx',
        'app.kubernetes.io/instance': release,
        'app.kubernetes.io/component': 'controller',
      });
      for (const [key, value] of Object.entries(spread)) assert.equal(pod.metadata.labels[key], value);
      const terms =
        pod.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm
          .labelSelector.matchExpressions;
      assert.deepEqual(
        terms.map((t: Json) => [t.key, t.values]),
        [
          ['app.kubernetes.io/name', ['ingress-nginx']],
          ['app.kubernetes.io/instance', [release]],
          ['app.kubernetes.io/component', ['controller']],
        ],
      );
    }
  });

  it('Service annotations, controller.config, tcp and udp: the release name and namespace filled in', async () => {
    const objects = await render(
      {
        namespaceOverride: 'edge-system',
        controller: {
          service: {
            annotations: {
              'example.com/lb-name': '{{ .Release.Name }}-nlb',
              'example.com/n': '{{.Release.Namespace}}',
            },
            internal: {
              enabled: true,
              annotations: { 'example.com/lb-name': '{{- .Release.Name -}}-internal' },
            },
          },
          config: {
            'proxy-real-ip-cidr': '10.0.0.0/8',
            'global-auth-url': 'http://auth.{{ include "ingress-nginx.namespace" . }}.svc/',
          },
          hostAliases: [
            { ip: '10.0.0.9', hostnames: ['{{ include "ingress-nginx.controller.fullname" . }}.local'] },
          ],
        },
        tcp: { '2222': '{{ .Release.Namespace }}/gitea-ssh:22' },
        udp: { '53': '{{ .Release.Namespace }}/dns:53' },
      },
      'keepip',
      'platform',
    );
    assert.deepEqual(
      objects.problems.filter((p) => p.severity === 'error'),
      [],
    );
    const by = (kind: string, name: string): Json =>
      objects.objects.find((o) => o.kind === kind && o.metadata.name === name);
    assert.deepEqual(by('Service', 'keepip-ingress-nginx-controller').metadata.annotations, {
      'example.com/lb-name': 'keepip-nlb',
      'example.com/n': 'platform',
    });
    assert.equal(
      by('Service', 'keepip-ingress-nginx-controller-internal').metadata.annotations['example.com/lb-name'],
      'keepip-internal',
    );
    assert.equal(
      by('ConfigMap', 'keepip-ingress-nginx-controller').data['global-auth-url'],
      'http://auth.edge-system.svc/',
    );
    assert.deepEqual(by('ConfigMap', 'keepip-ingress-nginx-tcp').data, { '2222': 'platform/gitea-ssh:22' });
    assert.deepEqual(by('ConfigMap', 'keepip-ingress-nginx-udp').data, { '53': 'platform/dns:53' });
    assert.deepEqual(workload(objects.objects).spec.template.spec.hostAliases[0].hostnames, [
      'keepip-ingress-nginx-controller.local',
    ]);
  });

  it('any other template is an error naming the key, and nothing is rendered', async () => {
    const result = await render({
      controller: {
        affinity: { nodeAffinity: { x: '{{ .Values.controller.name }}' } },
        service: { annotations: { a: '{{ .Release.Name ' } },
        podAnnotations: { 'example.com/t': '{{ .Release.Name }}' },
      },
    });
    assert.deepEqual(result.objects, []);
    assert.deepEqual(
      result.problems.filter((p) => p.severity === 'error').map((p) => [p.code, p.key]),
      [
        ['DEPLOY_VALUES_TEMPLATE', 'controller.service.annotations.a'],
        ['DEPLOY_VALUES_TEMPLATE', 'controller.affinity'],
      ],
    );
    assert.match(
      result.problems.find((p) => p.key === 'controller.affinity')!.message,
      /\.Values\.controller\.name/,
    );
  });
});

describe('controller arguments keepip controller would refuse at start-up', () => {
  it('an extraArgs value it cannot parse is an error naming the key; unknown flags stay warnings', async () => {
    const result = await render({
      controller: {
        extraArgs: {
          'election-ttl': '30',
          'status-update-interval': 'often',
          'http-port': '',
          'no-such-flag': 'x',
        },
      },
    });
    assert.deepEqual(result.objects, []);
    assert.deepEqual(
      result.problems.map((p) => [p.severity, p.code, p.key]),
      [
        ['warning', 'DEPLOY_UNSUPPORTED_FLAG', 'controller.extraArgs.no-such-flag'],
        ['error', 'DEPLOY_CONTROLLER_ARGS_INVALID', 'controller.extraArgs.election-ttl'],
        ['error', 'DEPLOY_CONTROLLER_ARGS_INVALID', 'controller.extraArgs.http-port'],
        ['error', 'DEPLOY_CONTROLLER_ARGS_INVALID', 'controller.extraArgs.status-update-interval'],
      ],
    );
    assert.match(
      result.problems.find((p) => p.key === 'controller.extraArgs.election-ttl')!.message,
      /controller\.extraArgs\.election-ttl: keepip controller would exit at start-up: --election-ttl: "30" is not a positive duration/,
    );
  });

  it('values the chart turns into arguments are checked the same way', async () => {
    const result = await render({ controller: { electionTTL: '30', healthCheckHost: '10.0.0.1' } });
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.key]),
      [['DEPLOY_CONTROLLER_ARGS_INVALID', 'controller.electionTTL']],
    );
  });
});

describe('controller.extraArgs values', () => {
  it('a list or map is an error naming the key, not a bare flag', async () => {
    const result = await render({
      controller: {
        extraArgs: { 'publish-status-address': ['192.0.2.1', '192.0.2.2'], 'update-status': 'false' },
      },
    });
    assert.deepEqual(result.objects, []);
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.key]),
      [['DEPLOY_VALUES_INVALID', 'controller.extraArgs.publish-status-address']],
    );
  });
});

describe('labels that would move the pods out of their own selector', () => {
  it('commonLabels, controller.labels or controller.podLabels changing a selector label: an error naming it', async () => {
    const result = await render({
      commonLabels: { 'app.kubernetes.io/instance': 'edge' },
      controller: {
        labels: { team: 'platform' },
        podLabels: { 'app.kubernetes.io/component': 'ingress', 'app.kubernetes.io/name': 'ingress-nginx' },
      },
    });
    assert.deepEqual(result.objects, []);
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.key]),
      [
        ['DEPLOY_VALUES_INVALID', 'commonLabels.app.kubernetes.io/instance'],
        ['DEPLOY_VALUES_INVALID', 'controller.podLabels.app.kubernetes.io/component'],
      ],
    );
    assert.match(
      result.problems[1]!.message,
      /the Deployment's selector needs app\.kubernetes\.io\/component=controller/,
    );
  });
});

describe('controller.config keys keepip accepts without effect', () => {
  it('are warnings naming the key (proxy-buffer-size: keepip streams, it has no nginx buffers); large-client-header-buffers is honoured', async () => {
    const result = await render(readValues(join(FIXTURES, 'custom-class.yaml')));
    assert.deepEqual(
      result.problems.map((p) => [p.severity, p.code, p.key]),
      [
        ['warning', 'DEPLOY_VALUES_IGNORED', 'controller.admissionWebhooks.patch'],
        ['warning', 'DEPLOY_CONFIG_WARNING', 'controller.config.proxy-buffer-size'],
      ],
    );
    assert.match(
      result.problems[1]!.message,
      /controller\.config\.proxy-buffer-size: CONFIGMAP_KEY_NO_EFFECT: .*accepted, no effect/,
    );
  });
});

describe('object names a cluster refuses', () => {
  it('a Service name over 63 characters (a long release name plus -admission) is an error, not YAML to apply', async () => {
    const release = 'platform-edge-ingress-prod-eu-west-1';
    const result = await render(
      { controller: { service: { internal: { enabled: true, annotations: { a: 'b' } } } } },
      release,
    );
    assert.deepEqual(result.objects, []);
    assert.deepEqual(
      result.problems.map((p) => [p.code, p.message]),
      [
        [
          'DEPLOY_NAME_TOO_LONG',
          'Service platform-edge-ingress-prod-eu-west-1-ingress-nginx-controller-internal: 70 characters, a Service name has at most 63 (shorten the release name, or set fullnameOverride)',
        ],
        [
          'DEPLOY_NAME_TOO_LONG',
          'Service platform-edge-ingress-prod-eu-west-1-ingress-nginx-controller-admission: 71 characters, a Service name has at most 63 (shorten the release name, or set fullnameOverride)',
        ],
      ],
    );
    assert.deepEqual((await render({ fullnameOverride: 'edge' }, release)).problems, []);
  });
});

describe('ports keepip does not listen on', () => {
  it('a metrics port or a probe port that is not --healthz-port is a warning naming the key', async () => {
    const moved = await render({ controller: { metrics: { enabled: true, port: 9913 } } });
    assert.deepEqual(
      moved.problems.map((p) => [p.severity, p.code, p.key]),
      [['warning', 'DEPLOY_PORT_MISMATCH', 'controller.metrics.port']],
    );
    assert.match(
      moved.problems[0]!.message,
      /serves \/healthz and \/metrics on --healthz-port 10254, not 9913: the metrics Service/,
    );
    const healthz = await render({
      controller: { extraArgs: { 'healthz-port': '9913' }, metrics: { enabled: true, port: 9913 } },
    });
    assert.deepEqual(
      healthz.problems.map((p) => p.key),
      ['controller.livenessProbe.httpGet.port', 'controller.readinessProbe.httpGet.port'],
    );
    const both = { httpGet: { path: '/healthz', port: 9913 } };
    const fixed = await render({
      controller: {
        extraArgs: { 'healthz-port': 9913 },
        metrics: { enabled: true, port: 9913 },
        livenessProbe: both,
        readinessProbe: both,
      },
    });
    assert.deepEqual(fixed.problems, []);
  });
});

describe('the election Lease the Role names', () => {
  it('is the one keepip controller uses: controller.extraArgs.election-id wins over electionID, as the last flag does', async () => {
    const objects = await renderOk({
      controller: { electionID: 'edge-leader', extraArgs: { 'election-id': 'edge-leader-v2' } },
    });
    const args: string[] = workload(objects).spec.template.spec.containers[0].args;
    const used = args.filter((a) => a.startsWith('--election-id=')).at(-1);
    assert.equal(used, '--election-id=edge-leader-v2');
    const role = objects.find((o) => o.kind === 'Role') as Json;
    const lease = role.rules.find((r: Json) => r.resources[0] === 'leases' && r.resourceNames);
    assert.deepEqual(lease.resourceNames, ['edge-leader-v2']);
  });
});
