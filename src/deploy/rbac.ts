// The ServiceAccount's RBAC, made from API_ACCESS alone: a ClusterRole for cluster-scoped resources and
// (unless the controller watches one namespace) the watched ones, a Role in the controller's namespace
// for its pods and its Lease, and when scoped a Role in the watched namespace and in each namespace
// holding an object a flag names (its ConfigMaps, the default certificate), and their bindings. Pure.
import { API_ACCESS, type ApiAccess, apiGroup } from './api-access.ts';
import { controllerArgs, POD_NAMESPACE_REF } from './args.ts';
import { controllerLabels, type K8sObject, meta, type RenderContext } from './context.ts';

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

function rule(access: ApiAccess, electionId: string, names?: readonly string[]): PolicyRule {
  const resource = access.subresource
    ? `${access.resource.plural}/${access.subresource}`
    : access.resource.plural;
  const out: PolicyRule = {
    apiGroups: [apiGroup(access.resource)],
    resources: [resource],
    verbs: [...access.verbs],
  };
  if (access.onlyElectionLease) out.resourceNames = [electionId];
  // A named object is listed and watched with fieldSelector metadata.name, which RBAC checks as its name.
  if (names !== undefined) out.resourceNames = [...names];
  return out;
}

/** The namespace the controller watches, or null for all. */
export function watchedNamespace(ctx: RenderContext): string | null {
  if (!ctx.v.bool('controller.scope.enabled')) return null;
  return ctx.v.str('controller.scope.namespace') || ctx.names.namespace;
}

function subjects(ctx: RenderContext) {
  return [{ kind: 'ServiceAccount', name: ctx.names.serviceAccount, namespace: ctx.names.namespace }];
}

function role(
  ctx: RenderContext,
  kind: 'Role' | 'ClusterRole',
  namespace: string | null,
  rules: PolicyRule[],
): K8sObject[] {
  const name = ctx.names.fullname;
  const labels = kind === 'Role' ? controllerLabels(ctx) : ctx.v.strings('controller.labels');
  const metadata = (n: string) => {
    const m = meta(ctx, n, { namespaced: namespace !== null, labels });
    if (namespace !== null) m.namespace = namespace;
    return m;
  };
  const binding = kind === 'Role' ? 'RoleBinding' : 'ClusterRoleBinding';
  return [
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind, metadata: metadata(name), rules },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: binding,
      metadata: metadata(name),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name },
      subjects: subjects(ctx),
    },
  ];
}

/** `namespace/name` values' namespace, with $(POD_NAMESPACE) as the release's. */
function namespaceOf(ctx: RenderContext, ref: string): string | null {
  const ns = ref.split('/')[0] ?? '';
  if (ns === POD_NAMESPACE_REF) return ctx.names.namespace;
  return ns === '' || ns.includes('$') ? null : ns;
}

/** The flags naming the objects a `named` line reads, by resource. */
const NAMING_FLAGS: Readonly<Record<string, RegExp>> = {
  configmaps: /^--(configmap|tcp-services-configmap|udp-services-configmap)=/,
  secrets: /^--default-ssl-certificate=/,
  services: /^--publish-service=/,
};

/** The objects a `named` line reads, by namespace: the ConfigMaps' names, the default certificate's. */
export function namedObjects(ctx: RenderContext, access: ApiAccess): Map<string, string[]> {
  const byNamespace = new Map<string, string[]>();
  const flag = NAMING_FLAGS[access.resource.plural];
  if (flag === undefined) return byNamespace;
  for (const arg of controllerArgs(ctx).filter((a) => flag.test(a))) {
    const ref = arg.slice(arg.indexOf('=') + 1);
    const ns = namespaceOf(ctx, ref);
    const name = ref.slice(ref.indexOf('/') + 1);
    if (ns === null || name === '' || name.includes('$')) continue;
    const names = byNamespace.get(ns) ?? [];
    if (!names.includes(name)) names.push(name);
    byNamespace.set(ns, names);
  }
  return byNamespace;
}

/** A `named` line a `watched` one already grants (same resource, its verbs). */
function coveredByWatched(access: ApiAccess): boolean {
  return API_ACCESS.some(
    (w) =>
      w.scope === 'watched' &&
      w.resource === access.resource &&
      w.subresource === undefined &&
      access.verbs.every((v) => w.verbs.includes(v)),
  );
}

/** The Roles' rules by namespace: own lines at home, watched ones in the watched namespace, named ones where they point. */
function roleRules(
  ctx: RenderContext,
  watched: string | null,
  lines: readonly ApiAccess[],
): Map<string, PolicyRule[]> {
  const byNamespace = new Map<string, PolicyRule[]>();
  const add = (namespace: string, rule: PolicyRule) =>
    byNamespace.set(namespace, [...(byNamespace.get(namespace) ?? []), rule]);
  const electionId = ctx.names.electionId;
  for (const access of lines) {
    if (access.scope === 'own') add(ctx.names.namespace, rule(access, electionId));
    else if (access.scope === 'watched' && watched !== null) add(watched, rule(access, electionId));
    else if (access.scope === 'named' && !coveredByWatched(access))
      for (const [ns, names] of namedObjects(ctx, access)) add(ns, rule(access, electionId, names));
    else if (access.scope === 'named')
      for (const [ns, names] of namedObjects(ctx, access))
        if (watched !== null && ns !== watched) add(ns, rule(access, electionId, names));
  }
  // Home first, as before; its Role exists even with nothing in it besides its own lines.
  const ordered = [ctx.names.namespace, ...[...byNamespace.keys()].filter((n) => n !== ctx.names.namespace)];
  return new Map(ordered.map((ns) => [ns, byNamespace.get(ns) ?? []]));
}

/** `--update-status=false`: the controller never writes an Ingress status, so it is not granted. */
function writesStatus(ctx: RenderContext): boolean {
  return !controllerArgs(ctx).includes('--update-status=false');
}

export function renderRbac(ctx: RenderContext): K8sObject[] {
  if (!ctx.v.bool('rbac.create')) return [];
  const watched = watchedNamespace(ctx);
  const selector = ctx.v.str('controller.scope.namespaceSelector') !== '' && watched === null;
  const lines = API_ACCESS.filter(
    (a) =>
      (a.resource.plural !== 'namespaces' || selector) && (a.subresource !== 'status' || writesStatus(ctx)),
  );
  // rbac.scope asks for no ClusterRole; IngressClasses and Nodes are cluster-scoped, so the controller
  // still gets a ClusterRole for those alone. Watching every namespace, the ClusterRole holds the
  // watched lines; named objects always get a Role where they live, limited to their names.
  const cluster = lines.filter((a) => a.scope === 'cluster' || (watched === null && a.scope === 'watched'));
  const objects: K8sObject[] = [
    ...role(
      ctx,
      'ClusterRole',
      null,
      cluster.map((a) => rule(a, ctx.names.electionId)),
    ),
  ];
  for (const [namespace, rules] of roleRules(ctx, watched, lines))
    objects.push(...role(ctx, 'Role', namespace, rules));
  return objects;
}
