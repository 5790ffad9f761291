// RBAC as the API server applies it to the requests a fake API server saw: each request as a verb on a
// resource, and whether a set of rendered rules allows it (tests of the rendered ClusterRole and Roles).
import assert from 'node:assert/strict';
import type { SeenRequest } from '../fixtures/fake-apiserver.ts';

export interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface ApiCall {
  group: string;
  resource: string;
  namespace: string;
  name: string;
  verb: string;
}

/**
 * A request as RBAC sees it: API group, resource[/subresource], namespace, name and verb; a list or
 * watch with fieldSelector metadata.name=X is authorized as X, as the API server does.
 */
export function apiCall(r: SeenRequest): ApiCall {
  const m =
    /^\/(?:api\/v1|apis\/([a-z0-9.-]+)\/v1)(?:\/namespaces\/([^/]+))?\/([a-z]+)(?:\/([^/]+))?(?:\/(status))?$/.exec(
      r.path,
    );
  assert.ok(m, `not an API path: ${r.path}`);
  const [, group = '', namespace = '', plural, name = '', sub] = m;
  const watch = r.query.get('watch') === '1' || r.query.get('watch') === 'true';
  const verbs: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
  const verb = r.method === 'GET' ? (name ? 'get' : watch ? 'watch' : 'list') : (verbs[r.method] ?? r.method);
  const selected = /^metadata\.name=([^,]+)$/.exec(r.query.get('fieldSelector') ?? '')?.[1];
  return {
    group,
    resource: sub ? `${plural}/${sub}` : plural!,
    namespace,
    name: name || (selected ?? ''),
    verb,
  };
}

export function allows(rules: readonly Rule[], call: ApiCall): boolean {
  return rules.some(
    (rule) =>
      rule.apiGroups.includes(call.group) &&
      rule.resources.includes(call.resource) &&
      rule.verbs.includes(call.verb) &&
      (rule.resourceNames === undefined || rule.resourceNames.includes(call.name)),
  );
}
