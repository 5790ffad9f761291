// What `keepip manifests` renders for a cluster and what the image recipe (scripts/image/) builds, read
// as an attacker reads them: against the ingress-nginx chart (charts/ingress-nginx in the mirror) for the
// same values, keepip must be at least as locked down by default, honour the values that tighten it, and
// keep hostile values as data. The container security context, RBAC (the chart's clusterrole.yaml and
// controller-role.yaml are written out below, line by line), the webhook and what is exposed, values
// that try to add YAML fields, and the image statically (no image is built here; the NET_BIND_SERVICE
// rule the recipe meets is shown on this host's kernel with setpriv, as root).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ENTRYPOINT } from '../../scripts/image/build.ts';
import { DEBIAN, IMAGE_USER } from '../../scripts/image/pins.ts';
import type { Values } from '../../src/deploy/chart-defaults.ts';
import { renderManifests } from '../../src/deploy/render.ts';
import { repoRoot, runKeepip } from '../helpers/process.ts';

const OPTIONS = { release: 'ingress-nginx', namespace: 'ingress-nginx', image: 'keepip:test', version: '0' };
const FIXTURES = join(repoRoot, 'test/fixtures/helm-values');
const EXAMPLES = join(repoRoot, 'examples/helm-values');

interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  readOnlyRootFilesystem?: boolean;
  seccompProfile?: { type?: string; localhostProfile?: string };
  capabilities?: { drop?: string[]; add?: string[] };
}
interface Port {
  name: string;
  containerPort: number;
  protocol: string;
  hostPort?: number;
}
interface Container {
  name: string;
  args?: string[];
  command?: string[];
  lifecycle?: unknown;
  securityContext?: SecurityContext;
  ports?: Port[];
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  hostNetwork?: boolean;
  automountServiceAccountToken?: boolean;
  volumes?: { name: string; emptyDir?: unknown; secret?: unknown }[];
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface ServiceSpec {
  type: string;
  ports: { name: string; port: number; nodePort?: number }[];
  externalIPs?: string[];
}
interface Obj {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: unknown;
  rules?: Rule[];
  webhooks?: Webhook[];
  data?: Record<string, string>;
  automountServiceAccountToken?: boolean;
}
interface Webhook {
  failurePolicy?: string;
  timeoutSeconds?: number;
  sideEffects?: string;
  rules: { operations: string[]; resources: string[] }[];
  clientConfig: { url?: string; service?: unknown };
}

/** The objects for `values` as `keepip manifests` prints them (yaml stringify), parsed back. */
async function rendered(values: Values): Promise<Obj[]> {
  const result = await renderManifests(values, { ...OPTIONS });
  const errors = result.problems.filter((p) => p.severity === 'error');
  assert.deepEqual(errors, [], 'no values errors');
  const text = result.objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
  return parseAllDocuments(text).map((d) => d.toJS() as Obj);
}

const readValues = (file: string): Values => (parse(readFileSync(file, 'utf8')) as Values | null) ?? {};

function one(objects: readonly Obj[], kind: string, name?: string): Obj {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.ok(found, `no ${kind} ${name ?? ''}`);
  return found;
}

function podSpec(objects: readonly Obj[]): PodSpec {
  const workload = objects.find((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet');
  assert.ok(workload, 'no workload');
  return (workload.spec as { template: { spec: PodSpec } }).template.spec;
}

const controller = (objects: readonly Obj[]): Container => podSpec(objects).containers[0]!;

// ---------------------------------------------------------------------------------------------------
// The chart's RBAC for its default values, as charts/ingress-nginx/templates renders it.

/** clusterrole.yaml:18-99 (rbac.scope false, controller.scope.enabled false). */
const CHART_CLUSTER_ROLE: readonly Rule[] = [
  {
    apiGroups: [''],
    resources: ['configmaps', 'endpoints', 'nodes', 'pods', 'secrets', 'namespaces'],
    verbs: ['list', 'watch'],
  },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list', 'watch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses/status'], verbs: ['update'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ingressclasses'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch', 'get'] },
];

/** controller-role.yaml:14-93, in the release namespace; ingresses/status only unless update-status is "false" (:48). */
const CHART_ROLE: readonly Rule[] = [
  { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
  {
    apiGroups: [''],
    resources: ['configmaps', 'pods', 'secrets', 'endpoints'],
    verbs: ['get', 'list', 'watch'],
  },
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses/status'], verbs: ['update'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ingressclasses'], verbs: ['get', 'list', 'watch'] },
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    resourceNames: ['ingress-nginx-leader'],
    verbs: ['get', 'update'],
  },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch', 'get'] },
];

interface Grant {
  where: string;
  group: string;
  resource: string;
  verb: string;
  names?: readonly string[];
}

/** Every (group, resource, verb) a Role or ClusterRole grants, with where ('cluster' or the namespace). */
function grants(objects: readonly Obj[]): Grant[] {
  const out: Grant[] = [];
  for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
    const where = o.kind === 'ClusterRole' ? 'cluster' : (o.metadata.namespace ?? '');
    for (const r of o.rules ?? [])
      for (const group of r.apiGroups)
        for (const resource of r.resources)
          for (const verb of r.verbs)
            out.push({
              where,
              group,
              resource,
              verb,
              ...(r.resourceNames ? { names: r.resourceNames } : {}),
            });
  }
  return out;
}

function allowedBy(rules: readonly Rule[], g: Grant): boolean {
  return rules.some(
    (r) =>
      r.apiGroups.includes(g.group) &&
      r.resources.includes(g.resource) &&
      r.verbs.includes(g.verb) &&
      (r.resourceNames === undefined || (g.names?.every((n) => r.resourceNames?.includes(n)) ?? false)),
  );
}

const grantText = (g: Grant) =>
  `${g.where}: ${g.verb} ${g.group || 'core'}/${g.resource}${g.names ? ` [${g.names.join(',')}]` : ''}`;

const WRITE_VERBS = ['create', 'update', 'patch', 'delete', 'deletecollection'];
const FORBIDDEN_RESOURCES = [
  'pods/exec',
  'pods/attach',
  'pods/portforward',
  'pods/ephemeralcontainers',
  'serviceaccounts',
  'serviceaccounts/token',
  'nodes/proxy',
  'roles',
  'clusterroles',
  'rolebindings',
  'clusterrolebindings',
  'validatingwebhookconfigurations',
  'mutatingwebhookconfigurations',
  'certificatesigningrequests',
];

describe('the controller container and pod: at least as locked down as the chart', () => {
  it("for the chart's defaults: non-root 101, no escalation, drop ALL + NET_BIND_SERVICE only, RuntimeDefault, read-only root, no host namespaces or ports", async () => {
    const objects = await rendered({});
    const sc = controller(objects).securityContext;
    // _helpers.tpl:48-66 with values.yaml:36-47 (runAsUser 101, runAsGroup 82, readOnlyRootFilesystem false).
    assert.deepEqual(sc, {
      runAsNonRoot: true,
      runAsUser: 101,
      runAsGroup: 82,
      allowPrivilegeEscalation: false,
      seccompProfile: { type: 'RuntimeDefault' },
      capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
      readOnlyRootFilesystem: true,
    });
    assert.equal(sc?.runAsUser, IMAGE_USER.uid, "the image's own user");
    const spec = podSpec(objects);
    assert.equal(
      spec.securityContext,
      undefined,
      'no pod securityContext, as the chart (podSecurityContext: {})',
    );
    assert.equal(spec.hostNetwork, undefined);
    assert.deepEqual(
      controller(objects).ports?.filter((p) => p.hostPort !== undefined),
      [],
      'no hostPort unless controller.hostPort.enabled',
    );
    assert.equal(spec.containers.length, 1);
    assert.equal(spec.initContainers, undefined);
  });

  it("controller.image.chroot: true adds no SYS_CHROOT or SYS_ADMIN and no privilege escalation (the chart's would, _helpers.tpl:51,60-65)", async () => {
    const sc = controller(
      await rendered({ controller: { image: { chroot: true, allowPrivilegeEscalation: false } } }),
    ).securityContext;
    assert.deepEqual(sc?.capabilities, { drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
    assert.equal(sc?.allowPrivilegeEscalation, false);
  });

  it('values that tighten are honoured: a Localhost seccomp profile, another uid, a pod securityContext, no token automount', async () => {
    const podSecurityContext = {
      runAsNonRoot: true,
      fsGroup: 101,
      seccompProfile: { type: 'RuntimeDefault' },
      supplementalGroups: [4000],
    };
    const objects = await rendered({
      serviceAccount: { automountServiceAccountToken: false },
      controller: {
        image: {
          runAsUser: 65532,
          runAsGroup: 65532,
          seccompProfile: { type: 'Localhost', localhostProfile: 'profiles/keepip.json' },
        },
        podSecurityContext,
      },
    });
    const sc = controller(objects).securityContext;
    assert.equal(sc?.runAsUser, 65532);
    assert.equal(sc?.runAsGroup, 65532);
    assert.deepEqual(sc?.seccompProfile, { type: 'Localhost', localhostProfile: 'profiles/keepip.json' });
    assert.deepEqual(podSpec(objects).securityContext, podSecurityContext);
    assert.equal(podSpec(objects).automountServiceAccountToken, false);
    assert.equal(one(objects, 'ServiceAccount').automountServiceAccountToken, false);
  });

  it('the read-only root leaves a writable emptyDir where keepip writes (os.tmpdir(): /tmp), also under a replaced containerSecurityContext', async () => {
    for (const values of [{}, { controller: { containerSecurityContext: { runAsNonRoot: true } } }]) {
      const objects = await rendered(values);
      const c = controller(objects);
      assert.equal(
        c.env?.find((e) => e.name === 'TMPDIR'),
        undefined,
        'bodies are buffered under $TMPDIR, else /tmp',
      );
      const mount = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
      assert.ok(mount && mount.readOnly !== true, 'a writable /tmp');
      const volume = podSpec(objects).volumes?.find((v) => v.name === mount.name);
      assert.ok(volume?.emptyDir !== undefined, '/tmp is an emptyDir, not the root filesystem');
      const certs = c.volumeMounts?.find((m) => m.mountPath === '/usr/local/certificates/');
      assert.equal(certs?.readOnly, true, 'the webhook key is mounted read-only');
    }
  });
});

const BASE_RECIPE = readFileSync(join(repoRoot, 'scripts/image/base.ts'), 'utf8');
const APP_RECIPE = readFileSync(join(repoRoot, 'scripts/image/app.ts'), 'utf8');
const BUILD_RECIPE = readFileSync(join(repoRoot, 'scripts/image/build.ts'), 'utf8');

/** The file capabilities the base image's hook sets, by path in the image. */
function fileCapabilities(): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of BASE_RECIPE.matchAll(/setcap\s+(\S+)\s+"\$root([^"]+)"/g)) out.set(m[2]!, m[1]!);
  return out;
}

/** The result of binding a privileged port on a loopback address as uid 101 via setpriv. */
function bindAs101(node: string, setprivArgs: readonly string[]): string {
  const host = `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}`;
  // EACCES is the privileged-port check, made before the address is looked up: anything else
  // (bound, or in use by someone else) means the capability was there.
  const script = `const s=require('net').createServer();s.on('error',e=>{console.log(e.code);process.exit(0)});s.listen(1023,'${host}',()=>{console.log('BOUND');s.close()})`;
  const result = spawnSync(
    'setpriv',
    [
      '--reuid=101',
      '--regid=101',
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all,+net_bind_service',
      ...setprivArgs,
      '/usr/bin/env',
      node,
      '-e',
      script,
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  return `${result.stdout}${result.stderr}`.trim();
}

describe('NET_BIND_SERVICE with allowPrivilegeEscalation: false (no_new_privs)', () => {
  it('every binary the entrypoint execs on the way to node carries the file capability (ingress-nginx sets it on dumb-init too)', () => {
    const caps = fileCapabilities();
    assert.equal(caps.get('/usr/local/bin/node'), 'cap_net_bind_service=+ep');
    // The entrypoint is tini, then the #!/usr/local/bin/node launcher: tini runs first as uid 101 and,
    // without a file capability, holds no capability at all; under no_new_privs (the rendered
    // allowPrivilegeEscalation: false) node's file capability then grants nothing beyond what tini
    // had, and binding :80/:443 fails with EACCES wherever ip_unprivileged_port_start is 1024.
    // ingress-nginx's rootfs/Dockerfile:72-77 sets cap_net_bind_service=+ep on dumb-init, the
    // controller and nginx for exactly this.
    const chain = [ENTRYPOINT[0]!, '/usr/local/bin/node'];
    assert.deepEqual(
      chain.filter((path) => caps.get(path) !== 'cap_net_bind_service=+ep'),
      [],
      `binaries of the exec chain ${chain.join(' -> ')} without cap_net_bind_service=+ep (base.ts hook sets it on ${[...caps.keys()].join(', ')})`,
    );
  });

  it("the kernel rule behind it: under no_new_privs node's file capability is lost behind a capability-less exec (env standing in for tini)", (t) => {
    const unprivileged = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    const tools = ['/usr/bin/setpriv', '/usr/sbin/setcap', '/usr/bin/env'].every((p) => existsSync(p));
    if (process.getuid?.() !== 0 || !tools || unprivileged <= 1023) {
      t.skip('needs root, setpriv and setcap, and ip_unprivileged_port_start above 1023');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'keepip-nnp-'));
    try {
      chmodSync(dir, 0o755);
      const node = join(dir, 'node');
      copyFileSync(process.execPath, node);
      chmodSync(node, 0o755);
      const setcap = spawnSync('/usr/sbin/setcap', ['cap_net_bind_service=+ep', node], { encoding: 'utf8' });
      assert.equal(setcap.status, 0, setcap.stderr);
      assert.notEqual(bindAs101(node, []), 'EACCES', 'without no_new_privs the file capability works');
      assert.equal(bindAs101(node, ['--no-new-privs']), 'EACCES', 'with no_new_privs it is lost');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Value sets the RBAC invariants are checked on: defaults, production, scoped, selector, named objects. */
const RBAC_VALUES: readonly [string, Values][] = [
  ['defaults', {}],
  ['kitchen-sink', readValues(join(FIXTURES, 'kitchen-sink.yaml'))],
  ['daemonset-scoped', readValues(join(FIXTURES, 'daemonset-scoped.yaml'))],
  ['scope apps', { controller: { scope: { enabled: true, namespace: 'apps' } } }],
  ['namespaceSelector', { controller: { scope: { namespaceSelector: 'team=a' } } }],
  [
    'named objects elsewhere',
    {
      rbac: { scope: true },
      tcp: { '2222': 'default/web:80' },
      controller: {
        scope: { enabled: true, namespace: 'apps' },
        tcp: { configMapNamespace: 'streams' },
        extraArgs: { 'default-ssl-certificate': 'certs/wildcard' },
      },
    },
  ],
];

/** What no rendered rule may grant, whatever the values. */
function rbacViolations(objects: readonly Obj[]): string[] {
  const out: string[] = [];
  for (const g of grants(objects)) {
    const text = grantText(g);
    if (g.group === '*' || g.resource === '*' || g.verb === '*') out.push(`wildcard: ${text}`);
    if (FORBIDDEN_RESOURCES.includes(g.resource)) out.push(`forbidden resource: ${text}`);
    if (['escalate', 'bind', 'impersonate', 'delete', 'deletecollection'].includes(g.verb))
      out.push(`forbidden verb: ${text}`);
    const write = WRITE_VERBS.includes(g.verb);
    if (write && !['events', 'ingresses/status', 'leases'].includes(g.resource)) out.push(`write: ${text}`);
    if (g.resource === 'ingresses/status' && g.verb !== 'update') out.push(`status: ${text}`);
    if (g.resource === 'leases') {
      if (g.where !== OPTIONS.namespace) out.push(`lease outside the controller namespace: ${text}`);
      if (g.verb !== 'create' && g.names === undefined) out.push(`lease without resourceNames: ${text}`);
    }
  }
  return out;
}

describe('RBAC: never more than the chart grants', () => {
  it("for the chart's defaults every rule keepip renders is one the chart renders (clusterrole.yaml:18-99, controller-role.yaml:14-93)", async () => {
    const objects = await rendered({});
    const excess = grants(objects).filter((g) =>
      g.where === 'cluster'
        ? !allowedBy(CHART_CLUSTER_ROLE, g)
        : !allowedBy([...CHART_CLUSTER_ROLE, ...(g.where === OPTIONS.namespace ? CHART_ROLE : [])], g),
    );
    assert.deepEqual(excess.map(grantText), []);
  });

  it('no wildcard, no Secret or ConfigMap write, no exec/attach/RBAC/webhook resources, Leases only at home and by name', async () => {
    for (const [name, values] of RBAC_VALUES) {
      const objects = await rendered(values);
      assert.deepEqual(rbacViolations(objects), [], name);
      const bindings = objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding');
      for (const b of bindings) {
        const subjects = (b as Obj & { subjects: { kind: string; name: string }[] }).subjects;
        assert.deepEqual(
          subjects.map((s) => `${s.kind}/${s.name}`),
          [`ServiceAccount/${name === 'kitchen-sink' ? 'edge' : 'ingress-nginx'}`],
          `${name}: ${b.kind} ${b.metadata.name} binds the controller's ServiceAccount only`,
        );
      }
    }
  });

  it('controller.scope.enabled without rbac.scope: every namespaced resource in a Role, the ClusterRole holds IngressClasses and Nodes only (the chart keeps cluster-wide Secrets, clusterrole.yaml:7-31)', async () => {
    const objects = await rendered({ controller: { scope: { enabled: true, namespace: 'apps' } } });
    const cluster = grants(objects).filter((g) => g.where === 'cluster');
    assert.deepEqual([...new Set(cluster.map((g) => g.resource))].sort(), ['ingressclasses', 'nodes']);
    const apps = grants(objects).filter((g) => g.where === 'apps');
    for (const resource of ['ingresses', 'secrets', 'services', 'endpointslices'])
      assert.ok(
        apps.some((g) => g.resource === resource && g.verb === 'list'),
        `${resource} listed in apps`,
      );
    assert.ok(
      !grants(objects).some((g) => g.where !== 'cluster' && g.where !== 'apps' && g.resource === 'secrets'),
    );
  });

  it('extraArgs update-status: "false" with namespaced RBAC: no rule grants ingresses/status (the chart drops it, controller-role.yaml:47-55)', async () => {
    const objects = await rendered({
      rbac: { scope: true },
      controller: { scope: { enabled: true }, extraArgs: { 'update-status': 'false' } },
    });
    assert.ok(controller(objects).args?.includes('--update-status=false'));
    assert.deepEqual(
      grants(objects)
        .filter((g) => g.resource === 'ingresses/status')
        .map(grantText),
      [],
    );
  });

  it('a Role keepip adds outside the chart for one named object (--default-ssl-certificate certs/wildcard) names that object', async () => {
    const objects = await rendered({
      rbac: { scope: true },
      controller: { scope: { enabled: true }, extraArgs: { 'default-ssl-certificate': 'certs/wildcard' } },
    });
    const certs = grants(objects).filter((g) => g.where === 'certs');
    assert.deepEqual(
      certs.map((g) => `${g.resource}:${g.verb}`),
      ['secrets:list', 'secrets:watch'],
      'read-only, Secrets only',
    );
    // The controller lists and watches it with fieldSelector metadata.name=wildcard
    // (src/controller/informers.ts:82-89); the API server takes that name as the request's name, so
    // resourceNames [wildcard] suffices. Without it the controller can read every Secret in "certs"
    // (the chart's Role grants nothing there).
    assert.deepEqual(
      certs.filter((g) => g.names === undefined || g.names.join() !== 'wildcard').map(grantText),
      [],
    );
  });
});

/** Every privilege a rendered object asks for, wherever it is nested. */
function privileges(node: unknown, path = ''): string[] {
  if (Array.isArray(node)) return node.flatMap((n, i) => privileges(n, `${path}[${i}]`));
  if (typeof node !== 'object' || node === null) return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(node)) {
    const here = `${path}.${key}`;
    if (['privileged', 'hostPID', 'hostIPC', 'hostNetwork', 'allowPrivilegeEscalation'].includes(key)) {
      if (value === true) out.push(`${here}: true`);
    } else if (key === 'hostPath' || key === 'procMount') out.push(here);
    else if (key === 'runAsNonRoot' && value === false) out.push(`${here}: false`);
    else if (key === 'runAsUser' && value === 0) out.push(`${here}: 0`);
    else if (key === 'add' && path.endsWith('.capabilities')) {
      const extra = (value as string[]).filter((c) => c !== 'NET_BIND_SERVICE');
      if (extra.length > 0) out.push(`${here}: ${extra.join(',')}`);
    }
    out.push(...privileges(value, here));
  }
  return out;
}

describe('what is exposed: webhook, metrics, host ports, privileges', () => {
  it('the webhook: failurePolicy Fail, the API default timeout, Ingress CREATE/UPDATE only, a ClusterIP Service; no certgen Job, hook or RBAC, no CA key', async () => {
    const objects = await rendered({});
    const webhook = one(objects, 'ValidatingWebhookConfiguration').webhooks?.[0];
    assert.ok(webhook);
    assert.equal(webhook.failurePolicy, 'Fail', 'validating-webhook.yaml:35');
    assert.equal(webhook.timeoutSeconds, undefined, 'unset as the chart (values.yaml:772): 10 s');
    assert.equal(webhook.sideEffects, 'None');
    assert.deepEqual(webhook.rules, [
      {
        apiGroups: ['networking.k8s.io'],
        apiVersions: ['v1'],
        operations: ['CREATE', 'UPDATE'],
        resources: ['ingresses'],
      },
    ]);
    assert.equal(webhook.clientConfig.url, undefined, 'through the Service, not a URL');
    const service = one(objects, 'Service', 'ingress-nginx-controller-admission').spec as ServiceSpec;
    assert.equal(service.type, 'ClusterIP');
    assert.ok(service.ports.every((p) => p.nodePort === undefined) && service.externalIPs === undefined);
    // The chart's kube-webhook-certgen Jobs run as Helm hooks with a ClusterRole that updates
    // validatingwebhookconfigurations and a Role that creates Secrets (job-patch/clusterrole.yaml:15-22,
    // role.yaml:16-23); keepip makes the certificate at render time and needs none of it.
    assert.deepEqual(
      objects.filter((o) => ['Job', 'CronJob', 'Pod'].includes(o.kind)).map((o) => o.kind),
      [],
    );
    assert.ok(
      !objects.some((o) =>
        Object.keys(o.metadata.annotations ?? {}).some((k) => k.startsWith('helm.sh/hook')),
      ),
    );
    const secret = one(objects, 'Secret', 'ingress-nginx-admission').data ?? {};
    const pem = (key: string) => Buffer.from(secret[key] ?? '', 'base64').toString('utf8');
    assert.doesNotMatch(pem('ca'), /PRIVATE KEY/, 'the CA key is not rendered');
    assert.doesNotMatch(pem('cert'), /PRIVATE KEY/);
    assert.match(pem('key'), /PRIVATE KEY/);
  });

  it('metrics never on the LoadBalancer Service; hostPort only when asked and only on the traffic ports', async () => {
    const objects = await rendered({
      controller: { metrics: { enabled: true }, hostPort: { enabled: true } },
      tcp: { '2222': 'default/ssh:22' },
    });
    const lb = one(objects, 'Service', 'ingress-nginx-controller').spec as ServiceSpec;
    assert.equal(lb.type, 'LoadBalancer');
    assert.deepEqual(
      lb.ports.map((p) => p.name),
      ['http', 'https', '2222-tcp'],
    );
    assert.equal(
      (one(objects, 'Service', 'ingress-nginx-controller-metrics').spec as ServiceSpec).type,
      'ClusterIP',
    );
    assert.deepEqual(
      controller(objects).ports?.map((p) => `${p.name}:${p.hostPort ?? '-'}`),
      ['http:80', 'https:443', 'metrics:-', 'webhook:-', '2222-tcp:2222'],
      'the chart: controller-deployment.yaml:121-155',
    );
  });

  it('no privileged container, host namespace, hostPath, root user or added capability anywhere, for every example values file', async () => {
    const files = [
      join(EXAMPLES, 'seed.yaml'),
      join(EXAMPLES, 'chart-defaults.yaml'),
      join(FIXTURES, 'seed-writeup.yaml'),
      join(FIXTURES, 'kitchen-sink.yaml'),
      join(FIXTURES, 'cert-manager.yaml'),
      join(FIXTURES, 'daemonset-scoped.yaml'),
    ];
    // The walker itself sees what a user may add (extraContainers are the user's, as in the chart).
    const planted = await rendered({
      controller: {
        extraContainers: [
          {
            name: 'x',
            image: 'y',
            securityContext: { privileged: true, capabilities: { add: ['SYS_ADMIN'] } },
          },
        ],
      },
    });
    assert.equal(privileges(planted).length, 2);
    for (const file of files) {
      const found = privileges(await rendered(readValues(file)));
      // daemonset-scoped.yaml asks for the host network itself (controller.hostNetwork: true).
      const asked = file.endsWith('daemonset-scoped.yaml') ? ['.spec.template.spec.hostNetwork: true'] : [];
      assert.deepEqual(
        found.map((p) => p.replace(/^\[\d+\]/, '')),
        asked,
        file.slice(repoRoot.length),
      );
    }
  });
});

/** Every key of every map in a parsed document, with its path. */
function keyPaths(node: unknown, path = ''): string[] {
  if (Array.isArray(node)) return node.flatMap((n, i) => keyPaths(n, `${path}[${i}]`));
  if (typeof node !== 'object' || node === null) return [];
  return Object.entries(node).flatMap(([k, v]) => [`${path}.${k}`, ...keyPaths(v, `${path}.${k}`)]);
}

const HOSTILE_VALUES = `
commonLabels:
  "team: x\\nprivileged": "true"
controller:
  podAnnotations:
    a: "x\\nprivileged: true\\nhostNetwork: true"
    "b: c\\n  hostPID": "true"
  service:
    annotations:
      lb: "y\\n  type: NodePort\\n  externalIPs: [203.0.113.9]"
  extraArgs:
    ingress-class: "nginx; rm -rf / $(id) \`id\`\\n- --enable-ssl-passthrough"
`;

describe('values that try to add YAML fields stay data', () => {
  it('newlines in annotation values, ":" and newlines in label and annotation keys, shell metacharacters in extraArgs: `keepip manifests` output parses back to the same strings, no extra field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keepip-hostile-values-'));
    try {
      const file = join(dir, 'values.yaml');
      writeFileSync(file, HOSTILE_VALUES);
      const out = await runKeepip(['manifests', '--values', file]);
      assert.equal(out.code, 0, out.stderr);
      const docs = parseAllDocuments(out.stdout)
        .map((d) => d.toJS() as Obj | null)
        .filter((d): d is Obj => d !== null);
      const workload = one(docs, 'Deployment').spec as { template: { metadata: Obj['metadata'] } };
      const meta = workload.template.metadata;
      assert.equal(meta.annotations?.a, 'x\nprivileged: true\nhostNetwork: true');
      assert.equal(meta.annotations?.['b: c\n  hostPID'], 'true');
      assert.equal(meta.labels?.['team: x\nprivileged'], 'true');
      const lb = one(docs, 'Service', 'ingress-nginx-controller');
      assert.equal(lb.metadata.annotations?.lb, 'y\n  type: NodePort\n  externalIPs: [203.0.113.9]');
      assert.equal((lb.spec as ServiceSpec).type, 'LoadBalancer');
      assert.equal((lb.spec as ServiceSpec).externalIPs, undefined);
      const c = controller(docs);
      assert.equal(c.args?.at(-1), '--ingress-class=nginx; rm -rf / $(id) `id`\n- --enable-ssl-passthrough');
      assert.ok(!c.args?.includes('--enable-ssl-passthrough'), 'no argument of its own');
      // No key anywhere that the values only wrote inside a string (the chart's controller-deployment.yaml:37
      // writes podAnnotations keys unquoted, _params.tpl:74 extraArgs values unquoted).
      const keys = docs.flatMap((d) => keyPaths(d)).map((k) => k.split('.').at(-1));
      for (const smuggled of ['privileged', 'hostNetwork', 'hostPID', 'externalIPs'])
        assert.ok(!keys.includes(smuggled), `${smuggled} became a key`);
      assert.deepEqual(privileges(docs), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('no container runs a shell: no command, no lifecycle hook; controller.lifecycle and extraModules (sh -c in the chart) are refused as ignored', async () => {
    const result = await renderManifests(
      {
        controller: {
          lifecycle: { preStop: { exec: { command: ['/bin/sh', '-c', 'sleep 5'] } } },
          extraModules: [{ name: 'otel', image: { registry: 'r', image: 'i', tag: 't' } }],
        },
      },
      { ...OPTIONS },
    );
    assert.deepEqual(result.problems.map((p) => `${p.code} ${p.key}`).sort(), [
      'DEPLOY_VALUES_IGNORED controller.extraModules',
      'DEPLOY_VALUES_IGNORED controller.lifecycle',
    ]);
    const spec = podSpec(result.objects as unknown as Obj[]);
    for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
      assert.equal(c.command, undefined, `${c.name}: the image's entrypoint`);
      assert.equal(c.lifecycle, undefined);
      assert.ok(!(c.args ?? []).some((a) => /^(\/bin\/)?(ba)?sh$|^-c$/.test(a)));
    }
  });

  it('a values path that never ends (/dev/zero) is a coded error once past the cap, not a hang', async () => {
    const endless = await runKeepip(['manifests', '--values', '/dev/zero'], { timeoutMs: 30_000 });
    assert.equal(endless.code, 1, endless.stderr);
    assert.equal(endless.stdout, '');
    assert.match(endless.stderr, /error DEPLOY_VALUES_READ_ERROR: \/dev\/zero: more than \d+ bytes/);
  });
});

describe('the image recipe (scripts/image/), statically', () => {
  it('runs as uid:gid 101:101, numeric, never root; no shell package, no shell on the way to keepip; nologin accounts', () => {
    assert.ok(IMAGE_USER.uid > 0 && IMAGE_USER.gid > 0);
    assert.match(BUILD_RECIPE, /`--user=\$\{IMAGE_USER\.uid\}:\$\{IMAGE_USER\.gid\}`/, 'a numeric User');
    const shells = [
      'bash',
      'dash',
      'busybox',
      'busybox-static',
      'zsh',
      'ksh',
      'mksh',
      'yash',
      'posh',
      'sash',
    ];
    const interpreters = ['coreutils', 'util-linux', 'perl-base', 'python3', 'apt', 'dpkg', 'login'];
    assert.deepEqual(
      Object.keys(DEBIAN.packages).filter((p) => shells.includes(p) || interpreters.includes(p)),
      [],
    );
    assert.deepEqual(ENTRYPOINT, ['/usr/bin/tini', '--', '/usr/local/bin/keepip']);
    assert.match(APP_RECIPE, /const LAUNCHER = `#!\/usr\/local\/bin\/node\n/, 'the launcher is node, not sh');
    assert.match(BASE_RECIPE, /root:x:0:0:root:\/root:\/usr\/sbin\/nologin/);
    assert.match(
      BASE_RECIPE,
      /\$\{u\.name\}:x:\$\{u\.uid\}:\$\{u\.gid\}:keepip:\/nonexistent:\/usr\/sbin\/nologin/,
    );
  });

  it('the app and node are root-owned and not writable by the runtime user: chown 0:0, modes 0644/0755, nothing world-writable', () => {
    assert.match(BUILD_RECIPE, /'copy', '--quiet', '--chown', '0:0'/);
    assert.match(BASE_RECIPE, /install -D -m 0755 .* "\$root\/usr\/local\/bin\/node"/);
    assert.match(APP_RECIPE, /chmodSync\(path, 0o755\);\n\s+normaliseModes\(path\)/, 'directories 0755');
    assert.match(
      APP_RECIPE,
      /chmodSync\(path, statSync\(path\)\.mode & 0o111 \? 0o755 : 0o644\)/,
      'files 0644 or 0755',
    );
    assert.match(APP_RECIPE, /'--no-same-owner'/, "npm pack's owners are not kept");
    // No mode literal that gives group or others write, anywhere in the recipe.
    for (const [name, text] of [
      ['base.ts', BASE_RECIPE],
      ['app.ts', APP_RECIPE],
      ['build.ts', BUILD_RECIPE],
    ] as const)
      assert.deepEqual(
        [...text.matchAll(/0o?([0-7]{3,4})\b/g)]
          .map((m) => m[1]!)
          .filter((m) => /[2367]$|[2367].$/.test(m.slice(-2))),
        [],
        name,
      );
  });
});
