// Manifests are untrusted input: whatever shape the objects have, translation reports issues and
// never throws.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { ManifestObject } from '../../src/k8s/load.ts';
import { parseManifestText } from '../../src/k8s/load.ts';
import { buildTopology } from '../../src/k8s/translate.ts';

const KINDS = [
  'Ingress',
  'IngressClass',
  'Service',
  'Endpoints',
  'EndpointSlice',
  'ConfigMap',
  'Secret',
  'Node',
];
const VERSIONS: Record<string, string> = {
  Ingress: 'networking.k8s.io/v1',
  IngressClass: 'networking.k8s.io/v1',
  EndpointSlice: 'discovery.k8s.io/v1',
};

// Values that look a little like Kubernetes fields, so the fuzzer reaches deep into the readers.
const key = fc.constantFrom(
  'spec',
  'rules',
  'http',
  'paths',
  'path',
  'pathType',
  'backend',
  'service',
  'name',
  'port',
  'number',
  'host',
  'tls',
  'hosts',
  'secretName',
  'type',
  'ports',
  'targetPort',
  'nodePort',
  'selector',
  'status',
  'loadBalancer',
  'ingress',
  'ip',
  'subsets',
  'addresses',
  'endpoints',
  'conditions',
  'ready',
  'data',
  'stringData',
  'annotations',
  'labels',
  'externalTrafficPolicy',
  'loadBalancerSourceRanges',
  'ingressClassName',
  'defaultBackend',
  'controller',
);
const scalar = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer({ min: -5, max: 70000 }),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('/', 'Prefix', 'Exact', 'LoadBalancer', '10.0.0.1', '*', 'true', 'nginx', 'Local'),
);
const value = fc.letrec((tie) => ({
  node: fc.oneof(
    { maxDepth: 5 },
    scalar,
    fc.array(tie('node'), { maxLength: 3 }),
    fc.dictionary(key, tie('node'), { maxKeys: 4 }),
  ),
})).node;

test('random objects of every kind never make buildTopology throw', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          kind: fc.constantFrom(...KINDS),
          name: fc.constantFrom('a', 'b', 'ingress-nginx-controller'),
          namespace: fc.constantFrom('default', 'ingress-nginx'),
          body: fc.dictionary(key, value, { maxKeys: 5 }),
          annotations: fc.dictionary(
            fc.constantFrom(
              'nginx.ingress.kubernetes.io/use-regex',
              'nginx.ingress.kubernetes.io/rewrite-target',
              'nginx.ingress.kubernetes.io/whitelist-source-range',
              'service.beta.kubernetes.io/aws-load-balancer-type',
              'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol',
              'keepip.dev/lb-source-address',
            ),
            value,
            { maxKeys: 3 },
          ),
        }),
        { maxLength: 6 },
      ),
      (items) => {
        const objects: ManifestObject[] = items.map((item, i) => ({
          apiVersion: VERSIONS[item.kind] ?? 'v1',
          kind: item.kind,
          origin: {
            file: 'fuzz.yaml',
            document: i + 1,
            kind: item.kind,
            namespace: item.namespace,
            name: item.name,
          },
          raw: {
            ...item.body,
            metadata: { name: item.name, namespace: item.namespace, annotations: item.annotations },
          },
        }));
        const topology = buildTopology(objects);
        assert.ok(Object.isFrozen(topology));
        for (const issue of topology.issues) assert.match(issue.code, /^[A-Z][A-Z0-9_]+$/);
      },
    ),
    { numRuns: 300 },
  );
});

test('random text never makes the loader throw', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (text) => {
      const { objects, issues } = parseManifestText(text, 'fuzz.yaml');
      assert.ok(Array.isArray(objects) && Array.isArray(issues));
    }),
    { numRuns: 300 },
  );
});
