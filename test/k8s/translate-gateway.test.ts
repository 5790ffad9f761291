import assert from 'node:assert/strict';
import { test } from 'node:test';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import { codes, configMap, find, ingress, service, topologyOf } from './helpers.ts';

const P = 'nginx.ingress.kubernetes.io/';

test('class filter: spec.ingressClassName, then the legacy annotation, then the default IngressClass', () => {
  const yaml = [
    ingress({ name: 'by-spec', host: 'a.test' }),
    ingress({ name: 'other-class', host: 'b.test', className: 'traefik' }),
    ingress({
      name: 'by-annotation',
      host: 'c.test',
      className: null,
      annotations: { 'kubernetes.io/ingress.class': 'nginx' },
    }),
    ingress({ name: 'no-class', host: 'd.test', className: null }),
  ].join('');
  const withoutDefault = topologyOf(yaml);
  assert.deepEqual(
    withoutDefault.gateway.virtualHosts.map((v) => v.host),
    ['a.test', 'c.test'],
  );
  assert.equal(codes(withoutDefault.issues).filter((c) => c === 'INGRESS_NOT_SERVED').length, 2);

  const defaultClass =
    'apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\n  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}\nspec: {controller: k8s.io/ingress-nginx}\n---\n';
  const withDefault = topologyOf(defaultClass + yaml);
  assert.deepEqual(
    withDefault.gateway.virtualHosts.map((v) => v.host),
    ['a.test', 'c.test', 'd.test'],
  );

  const other = topologyOf(yaml, { ingressClass: 'traefik' });
  assert.equal(other.gateway.ingressClass, 'traefik');
  assert.deepEqual(
    other.gateway.virtualHosts.map((v) => v.host),
    ['b.test'],
  );
});

test("the default IngressClass is given by name, as admission sets spec.ingressClassName: another controller's class of our name is served, with its warning", () => {
  const yaml =
    'apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\n  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}\nspec: {controller: example.com/other}\n---\n' +
    ingress({ name: 'no-class', className: null });
  const t = topologyOf(yaml);
  assert.equal(t.gateway.virtualHosts.length, 1);
  assert.ok(codes(t.issues).includes('INGRESS_CLASS_OTHER_CONTROLLER'));
});

test("several default IngressClasses: the newest is given, equal times by name, as the API server does (any controller's)", () => {
  const cls = (name: string, controller: string, created: string | null) =>
    `apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: ${name}\n${created === null ? '' : `  creationTimestamp: "${created}"\n`}  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}\nspec: {controller: ${controller}}\n---\n`;
  const noClass = ingress({ name: 'no-class', className: null });
  // traefik's class is newer: the Ingress is traefik's, not served.
  const traefikNewer = topologyOf(
    cls('nginx', 'k8s.io/ingress-nginx', '2025-01-01T00:00:00Z') +
      cls('traefik', 'traefik.io/ingress-controller', '2025-06-01T00:00:00Z') +
      noClass,
  );
  assert.deepEqual(traefikNewer.gateway.virtualHosts, []);
  const warning = traefikNewer.issues.find((i) => i.code === 'MULTIPLE_DEFAULT_INGRESS_CLASSES');
  assert.match(
    warning?.message ?? '',
    /2 IngressClasses are marked default \(traefik, nginx\); Ingresses without a class get "traefik", the newest/,
  );
  assert.ok(codes(traefikNewer.issues).includes('INGRESS_NOT_SERVED'));
  // ingress-nginx's class is newer: served.
  const nginxNewer = topologyOf(
    cls('nginx', 'k8s.io/ingress-nginx', '2025-06-01T00:00:00Z') +
      cls('traefik', 'traefik.io/ingress-controller', '2025-01-01T00:00:00Z') +
      noClass,
  );
  assert.equal(nginxNewer.gateway.virtualHosts.length, 1);
  // No times: by name ("nginx" before "traefik"), and the warning says the order is a guess.
  const undated = topologyOf(
    cls('traefik', 'traefik.io/ingress-controller', null) +
      cls('nginx', 'k8s.io/ingress-nginx', null) +
      noClass,
  );
  assert.equal(undated.gateway.virtualHosts.length, 1);
  assert.match(
    undated.issues.find((i) => i.code === 'MULTIPLE_DEFAULT_INGRESS_CLASSES')?.message ?? '',
    /without creationTimestamp counts as the oldest/,
  );
});

test('merge per host: oldest Ingress first, a duplicate path keeps the first and warns', () => {
  const yaml = [
    ingress({ name: 'newer', created: '2025-02-01T00:00:00Z', paths: [{ path: '/app', service: 'new' }] }),
    ingress({
      name: 'older',
      created: '2025-01-01T00:00:00Z',
      paths: [{ path: '/app', service: 'old' }, { path: '/old' }],
    }),
    ingress({ name: 'undated', paths: [{ path: '/undated' }] }),
  ].join('');
  const t = topologyOf(yaml);
  const [vhost] = t.gateway.virtualHosts;
  const app = vhost!.locations.find((l) => l.path === '/app')!;
  assert.equal(app.ingress.name, 'older');
  assert.equal(app.backend!.service.name, 'old');
  const dup = find(t.issues, 'DUPLICATE_PATH');
  assert.equal(dup.origin!.name, 'newer');
  assert.equal(dup.field, 'spec.rules[0].http.paths[0]');
  assert.match(dup.message, /test\.yaml, document 2 \(Ingress default\/older\)/);
});

test('priority: Exact before Prefix, longer paths first, ImplementationSpecific as Prefix', () => {
  const yaml = ingress({
    name: 'x',
    paths: [
      { path: '/' },
      { path: '/api', pathType: 'ImplementationSpecific' },
      { path: '/api/v1' },
      { path: '/api', pathType: 'Exact' },
      { path: '/z', pathType: 'Exact' },
    ],
  });
  const t = topologyOf(yaml);
  assert.deepEqual(
    t.gateway.virtualHosts[0]!.locations.map((l) => `${l.pathType}:${l.path}`),
    ['Exact:/api', 'Exact:/z', 'Prefix:/api/v1', 'Prefix:/api', 'Prefix:/'],
  );
  assert.ok(t.gateway.virtualHosts[0]!.locations.every((l) => l.regex === null));
});

test('use-regex on one Ingress makes every path of the host a regex, ordered by length', () => {
  const yaml = [
    ingress({
      name: 'a',
      created: '2025-01-01T00:00:00Z',
      paths: [
        { path: '/', pathType: 'Prefix' },
        { path: '/x', pathType: 'Exact' },
      ],
    }),
    ingress({
      name: 'b',
      created: '2025-01-02T00:00:00Z',
      annotations: { [`${P}use-regex`]: 'true' },
      paths: [{ path: '/api/v[0-9]+/.*', pathType: 'ImplementationSpecific' }],
    }),
    ingress({ name: 'c', host: 'plain.test', paths: [{ path: '/p' }] }),
  ].join('');
  const t = topologyOf(yaml);
  const regexHost = t.gateway.virtualHosts.find((v) => v.host === 'example.com')!;
  assert.deepEqual(
    regexHost.locations.map((l) => l.regex),
    ['/api/v[0-9]+/.*', '/x', '/'],
  );
  const plain = t.gateway.virtualHosts.find((v) => v.host === 'plain.test')!;
  assert.equal(plain.locations[0]!.regex, null);
});

test('a rewrite-target different from the path turns the host into regexes; one equal to the path is no rewrite', () => {
  const rewrite = topologyOf(
    ingress({
      name: 'r',
      annotations: { [`${P}rewrite-target`]: '/$2' },
      paths: [{ path: '/something(/|$)(.*)', pathType: 'ImplementationSpecific' }],
    }),
  );
  const loc = rewrite.gateway.virtualHosts[0]!.locations[0]!;
  assert.equal(loc.regex, '/something(/|$)(.*)');
  assert.equal(loc.rewriteTarget, '/$2');

  const same = topologyOf(
    ingress({ name: 's', annotations: { [`${P}rewrite-target`]: '/' }, paths: [{ path: '/' }] }),
  );
  const root = same.gateway.virtualHosts[0]!.locations[0]!;
  assert.equal(root.regex, null);
  assert.equal(root.rewriteTarget, null);
});

test('invalid paths: a regex in a Prefix path is refused; a regex path is kept for the router to compile', () => {
  const t = topologyOf(
    ingress({
      name: 'bad',
      annotations: { [`${P}use-regex`]: 'true' },
      paths: [
        { path: '/a(.*)', pathType: 'Prefix' },
        { path: '/b(', pathType: 'ImplementationSpecific' },
        { path: '/ok' },
      ],
    }),
  );
  // The host's root location (no rule covers "/") is a regex too on a host with regex paths; equal
  // lengths in ingress-nginx's order, the greater path first.
  assert.deepEqual(
    t.gateway.virtualHosts[0]!.locations.map((l) => l.regex),
    ['/ok', '/b(', '/'],
  );
  assert.equal(find(t.issues, 'INVALID_PATH').field, 'spec.rules[0].http.paths[0].path');
});

test('backends: upstream name <namespace>-<service>-<port>, by number or by name; missing Service warns', () => {
  const yaml =
    ingress({
      name: 'x',
      namespace: 'shop',
      paths: [
        { path: '/a', service: 'web', port: 8080 },
        { path: '/b', service: 'web', port: 'http' },
        { path: '/c', service: 'ghost' },
      ],
    }) + service('web', 'shop', '[{name: http, port: 8080}]');
  const t = topologyOf(yaml);
  const byPath = Object.fromEntries(t.gateway.virtualHosts[0]!.locations.map((l) => [l.path, l.backend]));
  assert.deepEqual(byPath['/a'], {
    service: { namespace: 'shop', name: 'web' },
    port: 8080,
    upstreamName: 'shop-web-8080',
  });
  assert.deepEqual(byPath['/b'], {
    service: { namespace: 'shop', name: 'web' },
    port: 'http',
    upstreamName: 'shop-web-http',
  });
  assert.equal(byPath['/c']!.upstreamName, 'shop-ghost-80');
  assert.equal(find(t.issues, 'SERVICE_NOT_FOUND').field, 'spec.rules[0].http.paths[2].backend.service.name');
});

test('spec.defaultBackend: an Ingress without rules sets the catch-all; with rules it backs the root of its hosts', () => {
  const catchAll =
    'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: fallback}\nspec:\n  ingressClassName: nginx\n  defaultBackend:\n    service: {name: errors, port: {number: 8080}}\n---\n';
  const t = topologyOf(catchAll);
  assert.deepEqual(t.gateway.defaultBackend, {
    service: { namespace: 'default', name: 'errors' },
    port: 8080,
    upstreamName: 'default-errors-8080',
  });

  const withRules =
    'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: site}\nspec:\n  ingressClassName: nginx\n  defaultBackend:\n    service: {name: home, port: {number: 80}}\n  rules:\n    - host: site.test\n      http:\n        paths:\n          - path: /api\n            pathType: Prefix\n            backend: {service: {name: api, port: {number: 80}}}\n';
  const r = topologyOf(withRules);
  assert.equal(r.gateway.defaultBackend, null);
  assert.deepEqual(
    r.gateway.virtualHosts[0]!.locations.map((l) => `${l.path}->${l.backend?.service.name}`),
    ['/api->api', '/->home'],
  );
});

test('TLS: the Secret is looked up in the Ingress namespace; ssl-redirect defaults on only for TLS hosts', async () => {
  const pair = await certificateFor('secure.test');
  const cert = Buffer.from(pair.cert).toString('base64');
  const secret = `apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {name: site-tls, namespace: web}\ndata:\n  tls.crt: ${cert}\nstringData:\n  tls.key: ${JSON.stringify(pair.key)}\n---\n`;
  const yaml =
    secret +
    ingress({
      name: 'secure',
      namespace: 'web',
      host: 'secure.test',
      tls: [{ hosts: ['secure.test'], secretName: 'site-tls' }],
    }) +
    ingress({ name: 'plain', namespace: 'web', host: 'plain.test' }) +
    ingress({
      name: 'lost',
      namespace: 'web',
      host: 'lost.test',
      tls: [{ hosts: ['lost.test'], secretName: 'missing' }],
    });
  const t = topologyOf(yaml);
  const host = (h: string) => t.gateway.virtualHosts.find((v) => v.host === h)!;
  assert.equal(host('secure.test').tls!.secret.name, 'site-tls');
  assert.match(host('secure.test').tls!.certPem, /BEGIN CERTIFICATE/);
  assert.match(host('secure.test').tls!.keyPem, /BEGIN PRIVATE KEY/);
  assert.equal(host('secure.test').locations[0]!.sslRedirect, true);
  assert.equal(host('plain.test').tls, null);
  assert.equal(host('plain.test').locations[0]!.sslRedirect, false);
  // The Secret is missing: default certificate, but the host is still a TLS host for ssl-redirect.
  assert.equal(host('lost.test').tls, null);
  assert.equal(host('lost.test').locations[0]!.sslRedirect, true);
  const w = find(t.issues, 'TLS_SECRET_NOT_FOUND');
  assert.equal(w.severity, 'warning');
  assert.equal(w.field, 'spec.tls[0].secretName');
});

test("TLS as ingress-nginx's createServers: every rule host of an Ingress with a TLS section, its Secret by listed host or by the certificate's names; not a TLS section of another Ingress", async () => {
  const { cert, key } = await certificateFor(['a.test', 'c.test']);
  const secret = `apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {name: s}\nstringData:\n  tls.crt: ${JSON.stringify(cert)}\n  tls.key: ${JSON.stringify(key)}\n---\n`;
  const rule = (host: string) =>
    `    - host: ${host}\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend: {service: {name: svc, port: {number: 80}}}\n`;
  const twoRules =
    'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: two}\nspec:\n  ingressClassName: nginx\n' +
    '  tls:\n    - hosts: [b.test]\n      secretName: s\n  rules:\n' +
    rule('b.test') +
    rule('c.test') +
    rule('d.test') +
    '---\n';
  const t = topologyOf(
    secret +
      // A TLS section without hosts: the Secret whose certificate names the host (extractTLSSecretName).
      ingress({ name: 'nohosts', host: 'a.test', tls: [{ hosts: [], secretName: 's' }] }) +
      twoRules +
      // Listed under spec.tls of an Ingress without a rule for it: no TLS host in ingress-nginx.
      ingress({ name: 'lister', host: 'other.test', tls: [{ hosts: ['e.test'], secretName: 's' }] }) +
      ingress({ name: 'e', host: 'e.test' }) +
      service('svc'),
  );
  const host = (h: string) => t.gateway.virtualHosts.find((v) => v.host === h)!;
  assert.equal(host('a.test').tls?.secret.name, 's');
  assert.equal(host('a.test').locations[0]!.sslRedirect, true);
  assert.equal(host('b.test').locations[0]!.sslRedirect, true);
  // c.test is not listed, but the Ingress's Secret names it; d.test gets the default certificate.
  assert.equal(host('c.test').tls?.secret.name, 's');
  assert.equal(host('c.test').locations[0]!.sslRedirect, true);
  assert.equal(host('d.test').tls, null);
  assert.equal(host('d.test').locations[0]!.sslRedirect, true);
  assert.equal(host('e.test').tls, null);
  assert.equal(host('e.test').locations[0]!.sslRedirect, false);
});

test("TLS: a listed Secret whose certificate does not name the host is reported, and the host gets the default certificate (ingress-nginx's VerifyHostname)", async () => {
  const { cert, key } = await certificateFor(['not.foo.test', '*.wild.test']);
  const yaml =
    `apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {name: s}\nstringData:\n  tls.crt: ${JSON.stringify(cert)}\n  tls.key: ${JSON.stringify(key)}\n---\n` +
    ingress({ name: 'foo', host: 'foo.test', tls: [{ hosts: ['foo.test'], secretName: 's' }] }) +
    ingress({ name: 'wild', host: 'a.wild.test', tls: [{ hosts: ['a.wild.test'], secretName: 's' }] }) +
    service('svc');
  const t = topologyOf(yaml);
  const host = (h: string) => t.gateway.virtualHosts.find((v) => v.host === h)!;
  assert.equal(host('foo.test').tls, null);
  assert.equal(host('foo.test').locations[0]!.sslRedirect, true);
  assert.equal(host('a.wild.test').tls?.secret.name, 's');
  const w = find(t.issues, 'TLS_SECRET_HOST_MISMATCH');
  assert.equal(w.severity, 'warning');
  assert.equal(w.field, 'spec.tls[0].secretName');
  assert.match(w.message, /does not name foo\.test/);
  assert.equal(t.issues.filter((i) => i.code === 'TLS_SECRET_HOST_MISMATCH').length, 1);
});

test('TLS: a Secret without PEM data is reported and not used', () => {
  const yaml =
    'apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata: {name: s}\nstringData: {tls.crt: x, tls.key: y}\n---\n' +
    ingress({ name: 'i', tls: [{ hosts: ['example.com'], secretName: 's' }] });
  const t = topologyOf(yaml);
  assert.equal(t.gateway.virtualHosts[0]!.tls, null);
  assert.match(find(t.issues, 'TLS_SECRET_INVALID').message, /no PEM certificate in tls\.crt/);
});

test('TLS: a Secret of any type with tls.crt and tls.key serves its hosts, as in ingress-nginx', async () => {
  const { cert, key } = await certificateFor(['example.com']);
  for (const type of ['Opaque', 'kubernetes.io/tls', 'cert-manager.io/custom']) {
    const yaml =
      `apiVersion: v1\nkind: Secret\ntype: ${type}\nmetadata: {name: s}\nstringData:\n  tls.crt: ${JSON.stringify(cert)}\n  tls.key: ${JSON.stringify(key)}\n---\n` +
      ingress({ name: 'i', tls: [{ hosts: ['example.com'], secretName: 's' }] });
    const t = topologyOf(yaml);
    assert.equal(t.gateway.virtualHosts[0]!.tls?.secret.name, 's', type);
    assert.equal(
      t.issues.find((i) => i.code === 'TLS_SECRET_INVALID'),
      undefined,
      type,
    );
  }
});

test('per-location annotations come from the Ingress that defines the path, ConfigMap defaults elsewhere', () => {
  const yaml =
    configMap({
      'proxy-body-size': '8m',
      'proxy-read-timeout': '120',
      'whitelist-source-range': '10.0.0.0/8',
    }) +
    ingress({
      name: 'a',
      created: '2025-01-01T00:00:00Z',
      paths: [{ path: '/a' }],
      annotations: { [`${P}proxy-body-size`]: '1g', [`${P}allowlist-source-range`]: '192.0.2.1' },
    }) +
    ingress({ name: 'b', created: '2025-01-02T00:00:00Z', paths: [{ path: '/b' }] });
  const t = topologyOf(yaml);
  const loc = (p: string) => t.gateway.virtualHosts[0]!.locations.find((l) => l.path === p)!;
  assert.equal(loc('/a').proxyBodySizeBytes, 1024 ** 3);
  assert.deepEqual(loc('/a').allow, {
    valid: true,
    cidrs: ['192.0.2.1/32'],
    raw: '192.0.2.1',
    from: 'annotation',
  });
  assert.equal(loc('/b').proxyBodySizeBytes, 8 * 1024 ** 2);
  assert.equal(loc('/b').proxyReadTimeoutMs, 120_000);
  assert.equal(loc('/b').allow!.from, 'configmap');
});

test('an invalid allowlist keeps the Ingress served, fails closed and is an error naming the annotation', () => {
  const t = topologyOf(
    ingress({ name: 'g', annotations: { [`${P}whitelist-source-range`]: '10.0.0.0/8, ww' } }),
  );
  const loc = t.gateway.virtualHosts[0]!.locations[0]!;
  assert.equal(loc.allow!.valid, false);
  assert.ok(loc.backend);
  const e = find(t.issues, 'INVALID_SOURCE_RANGE');
  assert.equal(e.severity, 'error');
  assert.equal(e.field, `metadata.annotations["${P}whitelist-source-range"]`);
});

test('backend-protocol FCGI is refused: an error, and the locations get no backend (503), not HTTP', () => {
  const t = topologyOf(ingress({ name: 'g', annotations: { [`${P}backend-protocol`]: 'FCGI' } }));
  assert.equal(t.gateway.virtualHosts[0]!.locations[0]!.backend, null);
  assert.equal(find(t.issues, 'UNSUPPORTED_BACKEND_PROTOCOL').severity, 'error');
});

test('backend-protocol GRPC and GRPCS keep their backend and say so on the location', () => {
  for (const protocol of ['GRPC', 'GRPCS'] as const) {
    const t = topologyOf(ingress({ name: 'g', annotations: { [`${P}backend-protocol`]: protocol } }));
    const location = t.gateway.virtualHosts[0]!.locations[0]!;
    assert.notEqual(location.backend, null);
    assert.equal(location.backendProtocol, protocol);
    assert.equal(t.issues.filter((i) => i.severity === 'error').length, 0);
  }
});

test('controllerServices: LoadBalancer/NodePort Services in the ConfigMap namespace or selecting the controller', () => {
  const svc = (name: string, ns: string, type: string, selector: string) =>
    `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  type: ${type}\n  selector: ${selector}\n  ports: [{port: 80}]\n---\n`;
  const yaml =
    svc(
      'ingress-nginx-controller',
      'ingress-nginx',
      'LoadBalancer',
      '{app.kubernetes.io/name: ingress-nginx}',
    ) +
    svc(
      'ingress-nginx-controller-admission',
      'ingress-nginx',
      'ClusterIP',
      '{app.kubernetes.io/name: ingress-nginx}',
    ) +
    svc(
      'edge',
      'edge',
      'NodePort',
      '{app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}',
    ) +
    svc('shop', 'shop', 'LoadBalancer', '{app: shop}');
  const t = topologyOf(yaml);
  assert.deepEqual(t.gateway.controllerServices, [
    { namespace: 'edge', name: 'edge' },
    { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
  ]);
});

test('the snapshot is deeply immutable', () => {
  const t = topologyOf(ingress({ name: 'x' }));
  assert.ok(Object.isFrozen(t));
  assert.ok(Object.isFrozen(t.gateway.virtualHosts[0]!.locations[0]!));
  assert.throws(() => {
    (t.gateway.settings as { useProxyProtocol: boolean }).useProxyProtocol = true;
  }, TypeError);
});

test('wrong types in an Ingress are issues naming the field, never a crash', () => {
  const yaml =
    'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: weird\n  annotations: {nginx.ingress.kubernetes.io/ssl-redirect: false}\nspec:\n  ingressClassName: nginx\n  rules:\n    - host: example.com\n      http:\n        paths: {not: a list}\n    - host: [x]\n    - http:\n        paths:\n          - path: /\n            pathType: Sideways\n            backend: {service: {name: svc, port: {number: 99999}}}\n';
  const t = topologyOf(yaml);
  const fields = t.issues.map((i) => i.field);
  assert.ok(fields.includes('spec.rules[0].http.paths'));
  assert.ok(fields.includes('spec.rules[1].host'));
  assert.ok(fields.includes('spec.rules[2].http.paths[0].pathType'));
  assert.ok(fields.includes('spec.rules[2].http.paths[0].backend.service.port.number'));
  assert.ok(fields.includes('metadata.annotations["nginx.ingress.kubernetes.io/ssl-redirect"]'));
});

test('unknown kinds are an info issue; Ingress of an old apiVersion is a warning', () => {
  const t = topologyOf(
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: old}\nspec: {}\n',
  );
  assert.equal(find(t.issues, 'UNSUPPORTED_KIND').severity, 'info');
  assert.equal(find(t.issues, 'UNSUPPORTED_API_VERSION').severity, 'warning');
});

test("a host without a rule for / gets a root location with its creator's annotations; the catch-all host does not", () => {
  const t = topologyOf(
    ingress({
      name: 'named',
      host: 'a.test',
      annotations: { [`${P}whitelist-source-range`]: '10.0.0.0/8' },
      paths: [{ path: '/app' }],
    }) +
      ingress({
        name: 'hostless',
        host: '',
        annotations: { [`${P}whitelist-source-range`]: '10.0.0.0/8' },
        paths: [{ path: '/app' }],
      }),
  );
  const paths = (host: string) =>
    t.gateway.virtualHosts
      .find((v) => v.host === host)!
      .locations.map(
        (l) => `${l.path}${l.defaultBackendRoot ? ' root' : ''}${l.allow ? ' allowlisted' : ''}`,
      );
  assert.deepEqual(paths('a.test'), ['/app allowlisted', '/ root allowlisted']);
  assert.deepEqual(paths(''), ['/app allowlisted']);
});

test('ImplementationSpecific and a missing pathType are served as Prefix, as ingress-nginx (SetDefaultNGINXPathType)', () => {
  const t = topologyOf(
    ingress({ name: 'older', created: '2026-01-01T00:00:00Z', paths: [{ path: '/x', service: 'a' }] }) +
      ingress({
        name: 'newer',
        created: '2026-02-01T00:00:00Z',
        paths: [
          // The same nginx location as the older Prefix /x: the older Ingress keeps it.
          { path: '/x', pathType: 'ImplementationSpecific', service: 'b' },
          { path: '/y', pathType: 'ImplementationSpecific', service: 'b' },
        ],
      }) +
      service('a') +
      service('b'),
  );
  const locations = t.gateway.virtualHosts[0]!.locations;
  assert.deepEqual(
    locations.filter((l) => !l.defaultBackendRoot).map((l) => `${l.pathType}:${l.path}:${l.ingress.name}`),
    ['Prefix:/x:older', 'Prefix:/y:newer'],
  );
  assert.match(find(t.issues, 'DUPLICATE_PATH')!.message, /"\/x" \(Prefix\)/);
});

test('a path without a pathType is a Prefix path for strict-validate-path-type too; ImplementationSpecific alone may be a regex', () => {
  // ingress-nginx's ValidatePathType spares only an ImplementationSpecific path (a missing one is checked).
  const yaml = ingress({ name: 'x', paths: [{ path: '/placeholder' }] }).replace(
    / {8}paths:\n[\s\S]*$/,
    [
      '        paths:',
      '          - path: /plain',
      '            backend: { service: { name: web, port: { number: 80 } } }',
      '          - path: /re(.*)',
      '            backend: { service: { name: web, port: { number: 80 } } }',
      '          - path: /ok(.*)',
      '            pathType: ImplementationSpecific',
      '            backend: { service: { name: web, port: { number: 80 } } }',
      '---',
      '',
    ].join('\n'),
  );
  const t = topologyOf(yaml + service('web'));
  const paths = t.gateway.virtualHosts[0]!.locations.filter((l) => !l.defaultBackendRoot);
  assert.deepEqual(
    paths.map((l) => `${l.pathType}:${l.path}`),
    ['Prefix:/ok(.*)', 'Prefix:/plain'],
  );
  assert.match(
    find(t.issues, 'INVALID_PATH')!.message,
    /"\/re\(\.\*\)" is not a valid Prefix \(no pathType\) path/,
  );
});
