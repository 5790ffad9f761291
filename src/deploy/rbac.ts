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

function rule(access: ApiAccess, electionId: string): PolicyRule {
  const resource = access.subresource
    ? `${access.resource.plural}/${access.subresource}`
    : access.resource.plural;
  const out: PolicyRule = {
    apiGroups: [apiGroup(access.resource)],
    resources: [resource],
    verbs: [...access.verbs],
  };
  if (access.onlyElectionLease) out.resourceNames = [electionId];
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
};

/** Where the objects a `named` line reads live: the ConfigMaps' namespaces, the default certificate's. */
export function namedNamespaces(ctx: RenderContext, access: ApiAccess): string[] {
  const flag = NAMING_FLAGS[access.resource.plural];
  if (flag === undefined) return [];
  const refs = controllerArgs(ctx)
    .filter((a) => flag.test(a))
    .map((a) => a.slice(a.indexOf('=') + 1));
  return [...new Set(refs.map((r) => namespaceOf(ctx, r)).filter((n) => n !== null))];
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
  watched: string,
  rulesFor: (lines: readonly ApiAccess[]) => PolicyRule[],
  lines: readonly ApiAccess[],
): Map<string, PolicyRule[]> {
  const byNamespace = new Map<string, ApiAccess[]>();
  const add = (namespace: string, access: ApiAccess) => {
    const list = byNamespace.get(namespace) ?? [];
    if (!list.includes(access)) list.push(access);
    byNamespace.set(namespace, list);
  };
  for (const access of lines) {
    if (access.scope === 'own') add(ctx.names.namespace, access);
    else if (access.scope === 'watched') add(watched, access);
    else if (access.scope === 'named') {
      for (const ns of namedNamespaces(ctx, access))
        if (!(ns === watched && coveredByWatched(access))) add(ns, access);
    }
  }
  // Home first, as before; its Role exists even with nothing in it besides its own lines.
  const ordered = [ctx.names.namespace, ...[...byNamespace.keys()].filter((n) => n !== ctx.names.namespace)];
  return new Map(ordered.map((ns) => [ns, rulesFor(byNamespace.get(ns) ?? [])]));
}

export function renderRbac(ctx: RenderContext): K8sObject[] {
  if (!ctx.v.bool('rbac.create')) return [];
  const electionId = ctx.names.electionId;
  const watched = watchedNamespace(ctx);
  const selector = ctx.v.str('controller.scope.namespaceSelector') !== '' && watched === null;
  const lines = API_ACCESS.filter((a) => a.resource.plural !== 'namespaces' || selector);
  const rulesFor = (chosen: readonly ApiAccess[]) => chosen.map((a) => rule(a, electionId));
  // rbac.scope asks for no ClusterRole; IngressClasses and Nodes are cluster-scoped, so the controller
  // still gets a ClusterRole for those alone. Watching every namespace, the ClusterRole holds the
  // watched lines and the named ones they do not already grant.
  const cluster = lines.filter(
    (a) =>
      a.scope === 'cluster' ||
      (watched === null && (a.scope === 'watched' || (a.scope === 'named' && !coveredByWatched(a)))),
  );
  const objects: K8sObject[] = [...role(ctx, 'ClusterRole', null, rulesFor(cluster))];
  const namespaced = watched === null ? lines.filter((a) => a.scope === 'own') : lines;
  for (const [namespace, rules] of roleRules(ctx, watched ?? ctx.names.namespace, rulesFor, namespaced))
    objects.push(...role(ctx, 'Role', namespace, rules));
  return objects;
}
