// The seed write-up's manifests (Gitea behind ingress-nginx behind an internal NLB), as files.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadTopology } from '../../src/k8s/index.ts';

const SEED = join(import.meta.dirname, '../fixtures/manifests/seed');

test('the seed loads into the model the write-up describes', async () => {
  const t = await loadTopology([SEED]);

  // Nothing is wrong with these manifests except what keepip must warn about: PROXY protocol with
  // the default proxy-real-ip-cidr (0.0.0.0/0) lets anyone who reaches the pod forge the address.
  assert.deepEqual(
    t.issues.filter((i) => i.severity !== 'info').map((i) => `${i.severity} ${i.code} ${i.field}`),
    ['warning TRUSTS_EVERYONE data["proxy-real-ip-cidr"]'],
  );

  const [lb] = t.loadBalancers;
  assert.equal(t.loadBalancers.length, 1);
  assert.equal(lb!.id, 'ingress-nginx/ingress-nginx-controller');
  assert.equal(lb!.provider, 'aws-nlb');
  assert.equal(lb!.scheme, 'internal');
  assert.equal(lb!.targetType, 'instance');
  assert.equal(lb!.proxyProtocol, 'v2');
  assert.equal(lb!.preserveClientIp, true);
  assert.equal(lb!.externalTrafficPolicy, 'Cluster');
  assert.equal(lb!.listenAddress, '127.0.10.1');
  assert.equal(lb!.sourceAddress, '127.0.11.1');
  assert.equal(lb!.statusHasHostnameOrProxyMode, true);
  assert.equal(lb!.healthCheck.protocol, 'tcp');
  assert.deepEqual(
    lb!.ports.map((p) => [p.name, p.port, p.targetPort, p.nodePort]),
    [
      ['http', 80, 'http', 31080],
      ['https', 443, 'https', 31443],
    ],
  );

  assert.deepEqual(t.nodes, [{ name: 'ip-10-0-12-1.ec2.internal', address: '10.0.12.1' }]);

  const gitea = t.services.find((s) => s.ref.name === 'gitea-http')!;
  assert.equal(gitea.clusterIP, '172.20.91.4');
  assert.deepEqual(gitea.endpoints, {
    http: [{ address: '10.0.12.34', port: 3000, ready: true, nodeName: 'ip-10-0-12-1.ec2.internal' }],
  });

  const g = t.gateway;
  assert.equal(g.ingressClass, 'nginx');
  assert.deepEqual(g.controllerServices, [{ namespace: 'ingress-nginx', name: 'ingress-nginx-controller' }]);
  assert.deepEqual(g.settings.configMap, { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' });
  assert.equal(g.settings.useProxyProtocol, true);
  assert.deepEqual(g.settings.trustedCidrs, ['0.0.0.0/0']);
  assert.equal(g.settings.trustedCidrsDefaulted, true);

  assert.equal(g.virtualHosts.length, 1);
  const host = g.virtualHosts[0]!;
  assert.equal(host.host, 'gitea.example.com');
  assert.equal(host.tls, null);
  assert.equal(host.locations.length, 1);
  const loc = host.locations[0]!;
  assert.equal(loc.path, '/');
  assert.equal(loc.pathType, 'Prefix');
  // rewrite-target "/" on path "/" is no rewrite in ingress-nginx: no regex, nothing rewritten.
  assert.equal(loc.regex, null);
  assert.equal(loc.rewriteTarget, null);
  assert.deepEqual(loc.allow, {
    valid: true,
    cidrs: ['10.10.5.21/32', '10.20.7.9/32'],
    raw: '10.10.5.21/32,10.20.7.9/32',
    from: 'annotation',
  });
  assert.equal(loc.deny, null);
  assert.equal(loc.sslRedirect, false);
  assert.equal(loc.serviceUpstream, true);
  // The upstream name the seed's access log shows: [gitea-gitea-http-3000]
  assert.equal(loc.backend!.upstreamName, 'gitea-gitea-http-3000');
  assert.equal(loc.ingressOrigin.file, join(SEED, 'gitea.yaml'));
  assert.equal(loc.ingressOrigin.document, 1);
});

test('the examples/seed manifests (before and after) load without errors', async () => {
  for (const dir of ['before', 'after']) {
    const t = await loadTopology([join(import.meta.dirname, '../../examples/seed', dir)]);
    assert.deepEqual(
      t.issues.filter((i) => i.severity === 'error'),
      [],
      dir,
    );
    assert.equal(t.loadBalancers[0]!.proxyProtocol, dir === 'after' ? 'v2' : null);
    assert.equal(t.loadBalancers[0]!.clientPath, 'transit-gateway');
    assert.equal(t.gateway.settings.useProxyProtocol, dir === 'after');
  }
});
