// The RBAC keepip manifests renders, against what keepip controller really asks of the API server: the
// controller runs against the fake API server (leader election, status from its pod's node, events,
// the controller, tcp-services and udp-services ConfigMaps by name), and every request it sends must be
// allowed by the rendered ClusterRole or the Role of its namespace. The rules themselves come from
// API_ACCESS, one rule per line.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API_ACCESS, apiGroup } from '../../src/deploy/api-access.ts';
import type { K8sObject } from '../../src/deploy/context.ts';
import { renderManifests } from '../../src/deploy/render.ts';
import { type FakeApiServer, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { allows, apiCall, type Rule } from '../helpers/rbac.ts';
import { seedWeb, startBackend, startTestController } from '../controller/harness.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered objects are read as plain JSON
type Json = any;

/** The fake API server with the web app, the controller's pod and node and its ConfigMaps (empty: the
 * test is about the requests, not the ports they open), and the controller on `args`, once it has
 * taken the Lease and written the status from its pod's node. */
async function runController(args: string[], configMaps: readonly string[]) {
  const api = await startFakeApiServer();
  const web = await startBackend('web');
  seedWeb(api, web.port);
  api.apply({
    kind: 'Pod',
    metadata: {
      namespace: 'ingress-nginx',
      name: 'ctl-0',
      labels: { 'app.kubernetes.io/name': 'ingress-nginx' },
    },
    spec: { nodeName: 'node-0' },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  });
  api.apply({
    kind: 'Node',
    metadata: { name: 'node-0' },
    status: { addresses: [{ type: 'InternalIP', address: '10.9.0.1' }] },
  });
  for (const name of configMaps)
    api.apply({ kind: 'ConfigMap', metadata: { namespace: 'ingress-nginx', name }, data: {} });
  const controller = await startTestController(api, args, { POD_NAME: 'ctl-0' });
  await api.waitUntil(
    () => api.get('Ingress', 'default', 'web')?.status?.loadBalancer?.ingress?.length === 1,
    20_000,
  );
  let stopped = false;
  const stopController = async () => {
    if (!stopped) await controller.close();
    stopped = true;
  };
  return {
    api,
    /** Stops the controller alone (its shutdown: the status cleared), the API server kept for checks. */
    stopController,
    async close() {
      await stopController();
      await api.close();
      await web.close();
    },
  };
}

describe('RBAC: the rendered rules against the running controller', () => {
  let running: Awaited<ReturnType<typeof runController>> | null = null;
  let api: FakeApiServer;
  let objects: K8sObject[] = [];
  /** The rendered --tcp-services-configmap and --udp-services-configmap, in the pod's namespace. */
  let streamArgs: string[] = [];

  before(async () => {
    ({ objects } = await renderManifests(
      { tcp: { '2222': 'default/web:80' }, udp: { '5353': 'default/dns:53' } },
      { release: 'ingress-nginx', namespace: 'ingress-nginx', image: 'x', version: '0' },
    ));
    const args: string[] = (find(objects, 'Deployment').spec as Json).template.spec.containers[0].args;
    streamArgs = args
      .filter((a) => /^--(tcp|udp)-services-configmap=/.test(a))
      .map((a) => a.replace('$(POD_NAMESPACE)', 'ingress-nginx'));
    running = await runController(
      [
        '--election-id=ingress-nginx-leader',
        '--configmap=ingress-nginx/ingress-nginx-controller',
        ...streamArgs,
      ],
      ['ingress-nginx-controller', 'ingress-nginx-tcp', 'ingress-nginx-udp'],
    );
    api = running.api;
  });

  after(() => running?.close());

  it('allows every request the controller sent, in the namespace it sent it to', () => {
    const calls = api.requests.map(apiCall);
    assert.ok(
      calls.some((c) => c.resource === 'leases' && c.verb === 'create'),
      'the controller took the Lease',
    );
    assert.ok(
      calls.some((c) => c.resource === 'ingresses/status' && c.verb === 'update'),
      'it wrote the status',
    );
    assert.deepEqual(streamArgs, [
      '--tcp-services-configmap=ingress-nginx/ingress-nginx-tcp',
      '--udp-services-configmap=ingress-nginx/ingress-nginx-udp',
    ]);
    const configMapsRead = api.requests
      .filter((r) => r.path === '/api/v1/namespaces/ingress-nginx/configmaps')
      .map((r) => r.query.get('fieldSelector'));
    for (const name of ['ingress-nginx-controller', 'ingress-nginx-tcp', 'ingress-nginx-udp'])
      assert.ok(configMapsRead.includes(`metadata.name=${name}`), `it read the ConfigMap ${name}`);
    assert.deepEqual(deniedCalls(objects, api), []);
  });

  it('renders exactly one rule per API_ACCESS line, with its verbs', () => {
    const rules = [
      ...(find(objects, 'ClusterRole').rules as Rule[]),
      ...(find(objects, 'Role').rules as Rule[]),
    ];
    // Watching every namespace, the named lines (the default certificate, the controller and tcp-/udp-
    // services ConfigMaps) are the watched ones'.
    const expected = API_ACCESS.filter((a) => a.resource.plural !== 'namespaces' && a.scope !== 'named').map(
      (a) => ({
        apiGroups: [apiGroup(a.resource)],
        resources: [a.subresource ? `${a.resource.plural}/${a.subresource}` : a.resource.plural],
        verbs: [...a.verbs],
        ...(a.onlyElectionLease ? { resourceNames: ['ingress-nginx-leader'] } : {}),
      }),
    );
    assert.deepEqual(
      rules.map((r) => JSON.stringify(r)).sort(),
      expected.map((r) => JSON.stringify(r)).sort(),
    );
  });

  it('allows the shutdown too: the last replica reads each Ingress again and clears its status', async () => {
    await running!.stopController();
    assert.deepEqual(api.get('Ingress', 'default', 'web')?.status?.loadBalancer?.ingress ?? [], []);
    assert.ok(
      api.requests.some((r) => r.method === 'GET' && r.path.endsWith('/ingresses/web')),
      'it read the Ingress before clearing its status',
    );
    assert.deepEqual(deniedCalls(objects, api), []);
  });
});

/** The requests the controller sent that the rendered ClusterRole and (in its namespace) Role refuse. */
function deniedCalls(objects: K8sObject[], api: FakeApiServer): string[] {
  const clusterRules = find(objects, 'ClusterRole').rules as Rule[];
  const roleRules = find(objects, 'Role').rules as Rule[];
  const ownNamespace = find(objects, 'Role').metadata.namespace;
  const denied = api.requests
    .map(apiCall)
    .filter((c) => !allows(clusterRules, c) && !(c.namespace === ownNamespace && allows(roleRules, c)));
  return [...new Set(denied.map((c) => `${c.verb} ${c.group}/${c.resource} ${c.namespace}/${c.name}`))];
}

describe('RBAC scoped to another namespace than the release: the ConfigMaps and default certificate at home are readable', () => {
  // controller.scope.namespace "default" (where the apps are), release in "ingress-nginx": its ConfigMaps
  // and the default certificate stay in the release namespace, outside the watched one.
  let running: Awaited<ReturnType<typeof runController>> | null = null;
  let api: FakeApiServer;
  let objects: K8sObject[] = [];

  before(async () => {
    ({ objects } = await renderManifests(
      {
        controller: {
          scope: { enabled: true, namespace: 'default' },
          extraArgs: { 'default-ssl-certificate': 'ingress-nginx/default-tls' },
        },
        tcp: { '2222': 'default/web:80' },
        rbac: { scope: true },
      },
      { release: 'ingress-nginx', namespace: 'ingress-nginx', image: 'x', version: '0' },
    ));
    const rendered: string[] = (find(objects, 'Deployment').spec as Json).template.spec.containers[0].args;
    const args = rendered.filter((a) =>
      /^--(election-id|configmap|tcp-services-configmap|watch-namespace|default-ssl-certificate)=/.test(a),
    );
    running = await runController(args, ['ingress-nginx-controller', 'ingress-nginx-tcp']);
    api = running.api;
  });

  after(() => running?.close());

  it('allows every request by the ClusterRole or a Role in the namespace it went to', () => {
    const clusterRules = find(objects, 'ClusterRole').rules as Rule[];
    const roles = objects.filter((o) => o.kind === 'Role');
    const rulesIn = (ns: string) =>
      roles.filter((r) => r.metadata.namespace === ns).flatMap((r) => r.rules as Rule[]);
    const calls = api.requests.map(apiCall);
    for (const [resource, name] of [
      ['configmaps', 'ingress-nginx-controller'],
      ['configmaps', 'ingress-nginx-tcp'],
      ['secrets', 'default-tls'],
    ])
      assert.ok(
        api.requests.some(
          (r) =>
            r.path === `/api/v1/namespaces/ingress-nginx/${resource}` &&
            r.query.get('fieldSelector') === `metadata.name=${name}`,
        ),
        `it read ${resource} ${name} in ingress-nginx`,
      );
    const denied = calls.filter((c) => !allows(clusterRules, c) && !allows(rulesIn(c.namespace), c));
    assert.deepEqual(
      [...new Set(denied.map((c) => `${c.verb} ${c.group}/${c.resource} ${c.namespace}/${c.name}`))],
      [],
    );
    // Nothing beyond: no Secret or ConfigMap rule reaches a namespace the controller does not read.
    assert.deepEqual(roles.map((r) => r.metadata.namespace).sort(), ['default', 'ingress-nginx']);
    assert.ok(
      !clusterRules.some((r) => r.resources.includes('secrets') || r.resources.includes('configmaps')),
    );
  });
});

function find(objects: readonly K8sObject[], kind: string): K8sObject {
  const found = objects.find((o) => o.kind === kind);
  assert.ok(found, `no ${kind}`);
  return found;
}
