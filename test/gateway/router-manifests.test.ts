// Routing end to end from Ingress manifests: the translator's model through compileRoutes and
// routeRequest, as `keepip gateway` and the doctor use them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseManifestText } from '../../src/k8s/load.ts';
import { buildTopology } from '../../src/k8s/translate.ts';
import { compileRoutes, type RouteDecision, routeRequest } from '../../src/gateway/router.ts';

const MANIFESTS = `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: rewrite
  namespace: apps
  creationTimestamp: "2025-01-01T00:00:00Z"
  annotations:
    nginx.ingress.kubernetes.io/use-regex: "true"
    nginx.ingress.kubernetes.io/rewrite-target: /$2
spec:
  ingressClassName: nginx
  rules:
  - host: rewrite.bar.com
    http:
      paths:
      - path: /something(/|$)(.*)
        pathType: ImplementationSpecific
        backend: { service: { name: http-svc, port: { number: 80 } } }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: gitea
  namespace: gitea
  creationTimestamp: "2025-01-02T00:00:00Z"
  annotations:
    nginx.ingress.kubernetes.io/rewrite-target: /
    nginx.ingress.kubernetes.io/whitelist-source-range: 10.1.0.0/16
    nginx.ingress.kubernetes.io/app-root: /explore
spec:
  ingressClassName: nginx
  tls:
  - hosts: [gitea.example.com]
    secretName: gitea-tls
  rules:
  - host: gitea.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: { service: { name: gitea-http, port: { number: 3000 } } }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: wild
  namespace: apps
  creationTimestamp: "2025-01-03T00:00:00Z"
spec:
  ingressClassName: nginx
  rules:
  - host: "*.apps.example.com"
    http:
      paths:
      - path: /api
        pathType: Prefix
        backend: { service: { name: api, port: { name: http } } }
      - path: /api/health
        pathType: Exact
        backend: { service: { name: health, port: { number: 8080 } } }
---
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata:
  name: gitea-tls
  namespace: gitea
stringData:
  tls.crt: "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"
  tls.key: "-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\\n"
`;

function summary(d: RouteDecision): string {
  switch (d.kind) {
    case 'proxy':
      return `proxy ${d.route.upstreamName} ${d.upstreamPath}`;
    case 'redirect':
    case 'host-redirect':
      return `redirect ${d.status} ${d.location}`;
    case 'not-found':
      return `404 ${d.serverName} ${d.backend?.upstreamName ?? '-'}`;
    case 'bad-request':
      return `400 ${d.code}`;
  }
}

describe('routing from manifests', () => {
  const loaded = parseManifestText(MANIFESTS, 'ingresses.yaml');
  assert.deepEqual(loaded.issues, []);
  const topology = buildTopology(loaded.objects);
  const routes = compileRoutes(topology.gateway);

  it('compiles without routing issues', () => assert.deepEqual(routes.issues, []));

  const cases: Array<[string, string, 'http' | 'https', string]> = [
    ['rewrite.bar.com', '/something', 'http', 'proxy apps-http-svc-80 /'],
    ['rewrite.bar.com', '/something/new?x=1', 'http', 'proxy apps-http-svc-80 /new?x=1'],
    // No rule for "/": ingress-nginx's root location, with the Ingress's annotations (its rewrite
    // too), behind the default backend.
    ['rewrite.bar.com', '/other', 'http', 'proxy upstream-default-backend /'],
    // The seed's Ingress: rewrite-target `/` on path `/` is no rewrite at all (ingress-nginx's needsRewrite).
    [
      'gitea.example.com',
      '/assets/css/index.css?v=1.23.5',
      'https',
      'proxy gitea-gitea-http-3000 /assets/css/index.css?v=1.23.5',
    ],
    ['gitea.example.com', '/user/login', 'http', 'redirect 308 https://gitea.example.com/user/login'],
    ['gitea.example.com', '/', 'http', 'redirect 302 http://gitea.example.com/explore'],
    ['x.apps.example.com', '/api/v1', 'http', 'proxy apps-api-http /api/v1'],
    ['x.apps.example.com', '/api/health', 'http', 'proxy apps-health-8080 /api/health'],
    ['x.y.apps.example.com', '/api/v1', 'http', '404 _ -'],
  ];
  for (const [host, path, scheme, expected] of cases) {
    it(`${scheme} ${host}${path} -> ${expected}`, () =>
      assert.equal(summary(routeRequest(routes, { host, path, scheme })), expected));
  }

  it('applies the whitelist of the seed: the NLB address is refused, the client allowed', () => {
    const d = routeRequest(routes, { host: 'gitea.example.com', path: '/', scheme: 'https' });
    assert.equal(d.kind, 'redirect'); // app-root comes first
    const p = routeRequest(routes, { host: 'gitea.example.com', path: '/x', scheme: 'https' });
    assert.ok(p.kind === 'proxy');
    assert.equal(p.route.policy.decide('10.1.4.4').outcome, 'allow');
    assert.equal(p.route.policy.decide('10.200.0.7').outcome, 'deny');
  });
});
