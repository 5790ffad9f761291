import assert from 'node:assert/strict';
import { test } from 'node:test';
import { find, topologyOf } from './helpers.ts';

const SERVICE = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: 8080}
    - {name: metrics, port: 9100, targetPort: metrics, protocol: TCP}
---
`;

const ENDPOINTS = `apiVersion: v1
kind: Endpoints
metadata: {name: web, namespace: shop}
subsets:
  - addresses:
      - {ip: 10.1.0.1, nodeName: n1}
    notReadyAddresses:
      - {ip: 10.1.0.2}
    ports:
      - {name: http, port: 8080}
      - {name: metrics, port: 9100}
---
`;

const SLICE = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
  - {name: http, port: 8080}
endpoints:
  - addresses: ["10.2.0.1"]
    conditions: {ready: true}
    nodeName: n2
  - addresses: ["10.2.0.2"]
    conditions: {ready: false}
  - addresses: ["10.2.0.3"]
---
`;

test('Services: type, clusterIP, ports (targetPort kept, number or name), selector', () => {
  const t = topologyOf(SERVICE);
  const svc = t.services[0]!;
  assert.deepEqual(svc.ref, { namespace: 'shop', name: 'web' });
  assert.equal(svc.type, 'ClusterIP');
  assert.equal(svc.clusterIP, '10.96.0.10');
  assert.deepEqual(svc.selector, { app: 'web' });
  assert.deepEqual(svc.ports, [
    { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: null },
    { name: 'metrics', protocol: 'TCP', port: 9100, targetPort: 'metrics', nodePort: null },
  ]);
  assert.deepEqual(svc.endpoints, {});
});

test('Endpoints: ready and not-ready addresses keyed by service port name', () => {
  const t = topologyOf(SERVICE + ENDPOINTS);
  assert.deepEqual(t.services[0]!.endpoints, {
    http: [
      { address: '10.1.0.1', port: 8080, ready: true, nodeName: 'n1' },
      { address: '10.1.0.2', port: 8080, ready: false, nodeName: null },
    ],
    metrics: [
      { address: '10.1.0.1', port: 9100, ready: true, nodeName: 'n1' },
      { address: '10.1.0.2', port: 9100, ready: false, nodeName: null },
    ],
  });
});

test('EndpointSlices win over Endpoints; a missing ready condition counts as ready', () => {
  const t = topologyOf(SERVICE + ENDPOINTS + SLICE);
  assert.deepEqual(t.services[0]!.endpoints, {
    http: [
      { address: '10.2.0.1', port: 8080, ready: true, nodeName: 'n2' },
      { address: '10.2.0.2', port: 8080, ready: false, nodeName: null },
      { address: '10.2.0.3', port: 8080, ready: true, nodeName: null },
    ],
  });
});

test('endpoint addresses are canonical; a bad one is an error naming the field and is skipped', () => {
  const slice = SLICE.replace('"10.2.0.3"', '"::ffff:10.2.0.3", "010.2.0.4"');
  const t = topologyOf(SERVICE + slice);
  assert.deepEqual(
    t.services[0]!.endpoints.http!.map((e) => e.address),
    ['10.2.0.1', '10.2.0.2', '10.2.0.3'],
  );
  const e = find(t.issues, 'MANIFEST_INVALID_FIELD');
  assert.equal(e.field, 'endpoints[2].addresses[1]');
  assert.equal(e.origin!.kind, 'EndpointSlice');
});

test('an unnamed port is keyed by the empty string', () => {
  const t = topologyOf(
    'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: s}\nsubsets: [{addresses: [{ip: 10.0.0.1}], ports: [{port: 80}]}]\n',
  );
  assert.deepEqual(Object.keys(t.services[0]!.endpoints), ['']);
});

test('Nodes: InternalIP of each Node; one default node-1 at 127.0.1.1 when there is none', () => {
  assert.deepEqual(topologyOf(SERVICE).nodes, [{ name: 'node-1', address: '127.0.1.1' }]);
  const nodes = topologyOf(
    'apiVersion: v1\nkind: Node\nmetadata: {name: b}\nstatus: {addresses: [{type: Hostname, address: b}, {type: InternalIP, address: 127.0.1.2}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: a}\nstatus: {addresses: [{type: InternalIP, address: 127.0.1.1}]}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: c}\nstatus: {addresses: [{type: ExternalIP, address: 1.2.3.4}]}\n',
  );
  assert.deepEqual(nodes.nodes, [
    { name: 'a', address: '127.0.1.1' },
    { name: 'b', address: '127.0.1.2' },
  ]);
  assert.equal(find(nodes.issues, 'NODE_WITHOUT_ADDRESS').origin!.name, 'c');
});

test('the same object twice: the later one wins, with a warning', () => {
  const t = topologyOf(SERVICE + SERVICE.replace('10.96.0.10', '10.96.0.11'));
  assert.equal(t.services.length, 1);
  assert.equal(t.services[0]!.clusterIP, '10.96.0.11');
  assert.equal(find(t.issues, 'DUPLICATE_OBJECT').origin!.document, 2);
});

const EXTERNAL = (name: string, externalName: string) => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: shop}
spec:
  type: ExternalName
  externalName: "${externalName}"
---
`;

test('ExternalName: the name (trailing dot trimmed) or IP literal; localhost, loopback and invalid names refused', () => {
  const t = topologyOf(
    EXTERNAL('short', 'echo') +
      EXTERNAL('dotted', 'api.example.com.') +
      EXTERNAL('ip', '10.0.0.5') +
      EXTERNAL('v6', '2001:db8::0:1') +
      EXTERNAL('localhost', 'localhost') +
      EXTERNAL('loop4', '127.1.2.3') +
      EXTERNAL('loop6', '::1') +
      EXTERNAL('mapped', '::ffff:127.0.0.1') +
      EXTERNAL('any4', '0.0.0.0') +
      EXTERNAL('any6', '::') +
      EXTERNAL('upper', 'Api.Example.com') +
      EXTERNAL('empty', ''),
  );
  const names = Object.fromEntries(t.services.map((s) => [s.ref.name, s.externalName]));
  assert.deepEqual(names, {
    short: 'echo',
    dotted: 'api.example.com',
    ip: '10.0.0.5',
    v6: '2001:db8::1',
    localhost: null,
    loop4: null,
    loop6: null,
    mapped: null,
    any4: null,
    any6: null,
    upper: null,
    empty: null,
  });
  const refused = t.issues.filter((i) => i.code === 'EXTERNAL_NAME_REFUSED');
  assert.deepEqual(refused.map((i) => i.origin?.name).sort(), [
    'any4',
    'any6',
    'empty',
    'localhost',
    'loop4',
    'loop6',
    'mapped',
    'upper',
  ]);
  assert.ok(refused.every((i) => i.severity === 'warning' && i.field === 'spec.externalName'));
});

test('ExternalName with --disable-svc-external-name: no name, one warning per Service', () => {
  const t = topologyOf(EXTERNAL('short', 'echo') + SERVICE, { disableServiceExternalName: true });
  assert.equal(t.services.find((s) => s.ref.name === 'short')?.externalName, null);
  assert.equal(t.services.find((s) => s.ref.name === 'web')?.externalName, undefined);
  assert.deepEqual(
    t.issues.filter((i) => i.code === 'EXTERNAL_NAME_DISABLED').map((i) => i.origin?.name),
    ['short'],
  );
});

test('ExternalName without the Ingress port number: no SERVICE_PORT_NOT_FOUND (the Ingress port is used); a port name still needs the port', () => {
  const ing = (port: string) => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: i-${port}, namespace: shop}
spec:
  ingressClassName: nginx
  rules:
    - host: ${port}.example
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: short, port: {${port === 'number' ? 'number: 8443' : 'name: web'}}}}}]}
---
`;
  const t = topologyOf(EXTERNAL('short', 'echo') + ing('number') + ing('name'));
  const missing = t.issues.filter((i) => i.code === 'SERVICE_PORT_NOT_FOUND').map((i) => i.origin?.name);
  assert.deepEqual(missing, ['i-name']);
});

/** A Service (with `extra` in its spec and annotations) and one slice of three endpoints in zones a, b and none. */
function zoned(options: {
  annotations?: string;
  spec?: string;
  hints?: [string | null, string | null, string | null];
}) {
  const [a, b, c] = options.hints ?? ['zone-a', 'zone-b', 'zone-a'];
  const hint = (zone: string | null) => (zone === null ? '' : `, hints: {forZones: [{name: ${zone}}]}`);
  return `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, annotations: {${options.annotations ?? ''}}}
spec:
  ${options.spec ?? 'type: ClusterIP'}
  ports:
    - {name: http, port: 80, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
  - {name: http, port: 8080}
endpoints:
  - {addresses: ["10.3.0.1"]${hint(a)}}
  - {addresses: ["10.3.0.2"]${hint(b)}}
  - {addresses: ["10.3.0.3"]${hint(c)}}
`;
}

const addresses = (yaml: string, zone?: string) =>
  topologyOf(yaml, zone === undefined ? {} : { zone }).services[0]!.endpoints.http!.map((e) => e.address);

test("--enable-topology-aware-routing: a Service that asks for it keeps the endpoints hinted for the controller's zone", () => {
  const all = ['10.3.0.1', '10.3.0.2', '10.3.0.3'];
  const auto = zoned({ annotations: 'service.kubernetes.io/topology-mode: Auto' });
  const preferClose = zoned({ spec: 'trafficDistribution: PreferClose' });
  // Without the flag (no zone), or a Service that does not ask: every endpoint.
  assert.deepEqual(addresses(auto), all);
  assert.deepEqual(addresses(zoned({}), 'zone-a'), all);
  // topology-mode auto (any case) or PreferClose: the zone's endpoints.
  assert.deepEqual(addresses(auto, 'zone-a'), ['10.3.0.1', '10.3.0.3']);
  assert.deepEqual(addresses(zoned({ annotations: 'service.kubernetes.io/topology-mode: auto' }), 'zone-b'), [
    '10.3.0.2',
  ]);
  assert.deepEqual(addresses(preferClose, 'zone-a'), ['10.3.0.1', '10.3.0.3']);
  // An endpoint without hints: the slice is not picked by zone (as ingress-nginx).
  assert.deepEqual(
    addresses(
      zoned({ annotations: 'service.kubernetes.io/topology-mode: Auto', hints: ['zone-a', null, 'zone-a'] }),
      'zone-a',
    ),
    all,
  );
  // No endpoint for the zone: PreferClose falls back to every endpoint; Auto keeps the hints (none).
  assert.deepEqual(addresses(preferClose, 'zone-c'), all);
  assert.equal(topologyOf(auto, { zone: 'zone-c' }).services[0]!.endpoints.http, undefined);
});
