// Every call `keepip controller` makes to the API server, as (resource, verbs, where): the one list the
// rendered RBAC is made from (rbac.ts). test/deploy/rbac.test.ts runs the controller against a fake API
// server and checks every request it sends against the rules rendered from this list, so a call the
// controller starts making without a line here fails that test.
import { RESOURCES, type ResourceType } from '../controller/resources.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch';

/**
 * - `watched`: in every namespace the controller watches (all, or `--watch-namespace`);
 * - `own`: in the controller's own namespace (its pods, its Lease);
 * - `cluster`: a cluster-scoped resource;
 * - `named`: objects a flag names by namespace/name, in the namespaces those flags name (rbac.ts
 *   `namedNamespaces`): with --watch-namespace they often lie outside the watched one.
 */
export type AccessScope = 'watched' | 'own' | 'cluster' | 'named';

export interface ApiAccess {
  resource: ResourceType;
  subresource?: 'status';
  verbs: readonly Verb[];
  scope: AccessScope;
  /** Only the Lease named by --election-id (plus `create`, which cannot be limited by name). */
  onlyElectionLease?: true;
  why: string;
}

export const API_ACCESS: readonly ApiAccess[] = [
  {
    resource: RESOURCES.ingress,
    verbs: ['get', 'list', 'watch'],
    scope: 'watched',
    why: 'the Ingresses it serves; get: a fresh read before a status write retried after 409, and before the status is cleared on shutdown',
  },
  {
    resource: RESOURCES.ingress,
    subresource: 'status',
    verbs: ['update'],
    scope: 'watched',
    why: 'status.loadBalancer of served Ingresses (leader only)',
  },
  {
    resource: RESOURCES.ingressClass,
    verbs: ['list', 'watch'],
    scope: 'cluster',
    why: 'which classes it serves',
  },
  {
    resource: RESOURCES.service,
    verbs: ['get', 'list', 'watch'],
    scope: 'watched',
    why: 'backends, and --publish-service for the status',
  },
  { resource: RESOURCES.endpointSlice, verbs: ['list', 'watch'], scope: 'watched', why: 'backend endpoints' },
  {
    resource: RESOURCES.secret,
    verbs: ['list', 'watch'],
    scope: 'watched',
    why: 'TLS certificates and the Secrets of auth-secret, auth-tls-secret, proxy-ssl-secret (every type but helm.sh/release.v1)',
  },
  {
    resource: RESOURCES.configMap,
    verbs: ['list', 'watch'],
    scope: 'watched',
    why: 'the ConfigMaps add-headers, proxy-set-headers, custom-headers and auth-proxy-set-headers name (every one but Helm 2 releases, OWNER!=TILLER)',
  },
  {
    resource: RESOURCES.configMap,
    verbs: ['list', 'watch'],
    scope: 'named',
    why: '--configmap, --tcp-services-configmap and --udp-services-configmap, each by name',
  },
  {
    resource: RESOURCES.secret,
    verbs: ['list', 'watch'],
    scope: 'named',
    why: '--default-ssl-certificate, by name, when it is outside the watched namespace',
  },
  {
    resource: RESOURCES.service,
    verbs: ['get'],
    scope: 'named',
    why: '--publish-service, by name, when it is outside the watched namespace (its addresses are the status)',
  },
  {
    resource: RESOURCES.namespace,
    verbs: ['list', 'watch'],
    scope: 'cluster',
    why: '--watch-namespace-selector',
  },
  {
    resource: RESOURCES.pod,
    verbs: ['get', 'list'],
    scope: 'own',
    why: 'its own pod and its peers, for the status from node addresses',
  },
  { resource: RESOURCES.node, verbs: ['get'], scope: 'cluster', why: 'node addresses for the status' },
  {
    resource: RESOURCES.lease,
    verbs: ['get', 'update'],
    scope: 'own',
    onlyElectionLease: true,
    why: 'leader election (--election-id)',
  },
  { resource: RESOURCES.lease, verbs: ['create'], scope: 'own', why: 'creating the election Lease' },
  {
    resource: RESOURCES.event,
    verbs: ['create', 'patch'],
    scope: 'watched',
    why: 'Events on Ingresses (deduplicated by patching the count)',
  },
];

/** The API group of a resource type ('' for the core group). */
export function apiGroup(resource: ResourceType): string {
  const slash = resource.apiVersion.indexOf('/');
  return slash === -1 ? '' : resource.apiVersion.slice(0, slash);
}
