// The ServiceAccount's RBAC, made from API_ACCESS alone: a ClusterRole for cluster-scoped resources and
// (unless the controller watches one namespace) the watched ones, a Role in the controller's namespace
// for its pods and its Lease, a Role in the watched namespace when scoped, and their bindings. Pure.
import { API_ACCESS, type ApiAccess, apiGroup } from './api-access.ts';
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

export function renderRbac(ctx: RenderContext): K8sObject[] {
  if (!ctx.v.bool('rbac.create')) return [];
  const electionId = ctx.names.electionId;
  const watched = watchedNamespace(ctx);
  const selector = ctx.v.str('controller.scope.namespaceSelector') !== '' && watched === null;
  const use = (a: ApiAccess) => a.resource.plural !== 'namespaces' || selector;
  const rulesFor = (scopes: readonly string[]) =>
    API_ACCESS.filter((a) => scopes.includes(a.scope) && use(a)).map((a) => rule(a, electionId));
  const objects: K8sObject[] = [];
  // rbac.scope asks for no ClusterRole; IngressClasses and Nodes are cluster-scoped, so the controller
  // still gets a ClusterRole for those alone.
  const clusterScopes = watched === null ? ['cluster', 'watched'] : ['cluster'];
  objects.push(...role(ctx, 'ClusterRole', null, rulesFor(clusterScopes)));
  objects.push(
    ...role(
      ctx,
      'Role',
      ctx.names.namespace,
      rulesFor(watched === ctx.names.namespace ? ['own', 'watched'] : ['own']),
    ),
  );
  if (watched !== null && watched !== ctx.names.namespace) {
    objects.push(...role(ctx, 'Role', watched, rulesFor(['watched'])));
  }
  return objects;
}
