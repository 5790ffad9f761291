// simulate() on variations of the fixtures' models: the hops that the table test does not reach.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LoadBalancerModel, Topology } from '../../src/config/model.ts';
import { buildChain, gatewayPeers } from '../../src/doctor/chain.ts';
import { diagnose } from '../../src/doctor/diagnose.ts';
import { proxySwitch } from '../../src/doctor/plans.ts';
import { defaultHost, simulate } from '../../src/doctor/simulate.ts';
import { loadTopology } from '../../src/k8s/index.ts';
import { parseManifestText } from '../../src/k8s/load.ts';
import { buildTopology } from '../../src/k8s/translate.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/doctor/${name}`, import.meta.url));
const host = 'app.example.com';

function withLb(topology: Topology, change: Partial<LoadBalancerModel>): Topology {
  return { ...topology, loadBalancers: topology.loadBalancers.map((lb) => ({ ...lb, ...change })) };
}

test('loadBalancerSourceRanges: a client outside them never reaches the gateway', async () => {
  const topology = withLb(await loadTopology([fixture('clean')]), {
    loadBalancerSourceRanges: ['127.0.20.0/24'],
  });
  const inside = simulate(topology, { client: '127.0.20.10', host });
  assert.equal(inside.outcome, 'allowed');
  const outside = simulate(topology, { client: '127.0.21.1', host });
  assert.equal(outside.outcome, 'unreachable');
  assert.equal(outside.status, null);
  assert.equal(outside.decidedBy, 'loadBalancerSourceRanges');
  assert.equal(outside.gatewayLogsAddress, null);
  assert.deepEqual(
    outside.hops.map((h) => h.name),
    ['client', 'load-balancer'],
  );
});

test('an unknown host is a 404 from the gateway, not access-logged (enable-access-log-for-default-backend off)', async () => {
  const topology = await loadTopology([fixture('clean')]);
  const sim = simulate(topology, { client: '127.0.20.10', host: 'nobody.example.com' });
  assert.equal(sim.outcome, 'not-found-404');
  assert.equal(sim.status, 404);
  assert.equal(sim.gatewayLogsAddress, null);
  assert.match(sim.hops.at(-1)!.detail, /not access-logged: enable-access-log-for-default-backend is off/);
  const on = {
    ...topology,
    gateway: {
      ...topology.gateway,
      settings: { ...topology.gateway.settings, enableAccessLogForDefaultBackend: true },
    },
  };
  const logged = simulate(on, { client: '127.0.20.10', host: 'nobody.example.com' });
  assert.equal(logged.gatewayLogsAddress, '127.0.20.10');
});

test('a 404 on a host an Ingress names but the annotation limits left out says which Ingress and why', async () => {
  const topology = await loadTopology([fixture('clean')]);
  const refused = {
    ...topology,
    gateway: {
      ...topology.gateway,
      refusedIngresses: [
        {
          ingress: { namespace: 'team', name: 'snippety' },
          hosts: ['*.example.org'],
          code: 'ANNOTATION_TOO_RISKY' as const,
          annotation: 'nginx.ingress.kubernetes.io/configuration-snippet',
        },
      ],
    },
  };
  const sim = simulate(refused, { client: '127.0.20.10', host: 'app.example.org' });
  assert.equal(sim.outcome, 'not-found-404');
  assert.match(
    sim.hops.at(-1)!.detail,
    /Ingress team\/snippety names app\.example\.org but is not served \(ANNOTATION_TOO_RISKY: nginx\.ingress\.kubernetes\.io\/configuration-snippet/,
  );
  // A wildcard covers one label only, as ingress-nginx's server_name regex: no note for another host.
  const deeper = simulate(refused, { client: '127.0.20.10', host: 'a.b.example.org' });
  assert.doesNotMatch(deeper.hops.at(-1)!.detail, /snippety/);
});

test('A4: an IPv6 client of an IPv4 NLB is translated and loses its address even with preservation', async () => {
  const topology = withLb(await loadTopology([fixture('client-ip-lost-at-kube-proxy')]), {
    externalTrafficPolicy: 'Local',
  });
  const v4 = simulate(topology, { client: '127.0.20.10', host });
  assert.equal(v4.gatewayLogsAddress, '127.0.20.10', 'Local + preservation keeps an IPv4 client');
  const v6 = simulate(topology, { client: '2001:db8::5', host });
  assert.equal(v6.gatewayLogsAddress, '127.0.10.1');
  assert.match(v6.hops.find((h) => h.name === 'load-balancer')!.detail, /A4/);
  assert.equal(
    simulate(topology, { client: '::ffff:127.0.20.10', host }).client,
    '127.0.20.10',
    'mapped folds',
  );
});

test('--via privatelink is the default when the LB emulates a VPC endpoint; --via wins over it', async () => {
  const topology = withLb(await loadTopology([fixture('client-ip-lost-at-lb')]), {
    vpcEndpointId: 'vpce-0abc',
  });
  const chain = buildChain(topology);
  assert.ok(chain.ok);
  assert.equal(chain.chain.via, 'privatelink');
  assert.equal(chain.chain.viaSource, 'vpc-endpoint');
  const report = diagnose(topology, {});
  assert.ok(report.ok);
  assert.ok(
    report.report.findings.some((f) => f.id === 'CLIENT_VIA_TRANSIT_GATEWAY' && /A10/.test(f.message)),
  );
  const direct = buildChain(topology, { via: 'direct' });
  assert.ok(direct.ok);
  assert.equal(direct.chain.via, 'direct');
});

test('gateway peers: node addresses under Cluster, the LB address for ip targets, the client with Local + preservation', async () => {
  const kube = buildChain(await loadTopology([fixture('client-ip-lost-at-kube-proxy')]));
  assert.ok(kube.ok);
  assert.deepEqual(gatewayPeers(kube.chain), {
    kind: 'fixed',
    addresses: ['127.0.1.1'],
    why: 'kube-proxy SNATs to a node address (K1)',
  });
  const ip = buildChain(await loadTopology([fixture('clean')]));
  assert.ok(ip.ok);
  const peers = gatewayPeers(ip.chain);
  assert.equal(peers.kind, 'fixed');
  assert.deepEqual(peers.kind === 'fixed' ? peers.addresses : null, ['127.0.10.1']);
  const local = buildChain(
    withLb(await loadTopology([fixture('client-ip-lost-at-kube-proxy')]), { externalTrafficPolicy: 'Local' }),
  );
  assert.ok(local.ok);
  assert.equal(gatewayPeers(local.chain).kind, 'client');
});

test('an unknown --lb is an error value naming the known ones', async () => {
  const topology = await loadTopology([fixture('clean')]);
  const result = diagnose(topology, { loadBalancer: 'nope/nope' });
  assert.ok(!result.ok);
  assert.equal(result.error.code, 'DOCTOR_UNKNOWN_LB');
  assert.match(result.error.message, /ingress-nginx\/ingress-nginx-controller/);
});

test("fixes use each provider's own PROXY switch; pass-through LBs have none", () => {
  assert.deepEqual(proxySwitch('hetzner')?.annotations, {
    'load-balancer.hetzner.cloud/uses-proxyprotocol': 'true',
  });
  assert.equal(proxySwitch('aws-elb')?.version, 'v1');
  assert.equal(proxySwitch('metallb'), null);
  assert.equal(proxySwitch('gke'), null);
});

test('the default host is the first one with an access list', async () => {
  const topology = await loadTopology([fixture('clean')]);
  assert.equal(defaultHost(topology), host);
});

test('INVALID_SOURCE_RANGE: the fix keeps the valid entries of the same annotation', async () => {
  const topology = await loadTopology([fixture('invalid-source-range')]);
  const result = diagnose(topology, {});
  assert.ok(result.ok);
  const finding = result.report.findings.find((f) => f.id === 'INVALID_SOURCE_RANGE')!;
  assert.match(finding.message, /"ww"/);
  assert.deepEqual(finding.fix!.patches[0]!.patch, {
    metadata: { annotations: { 'nginx.ingress.kubernetes.io/allowlist-source-range': '127.0.20.10/32' } },
  });
  assert.equal(result.report.audit[0]!.valid, false);
});

test('FORWARDED_HEADERS_SPOOFABLE is found with a client the LB lets in, and not once the header is off', async () => {
  const base = await loadTopology([fixture('forwarded-headers-spoofable')]);
  const ranged = withLb(base, { loadBalancerSourceRanges: ['127.0.20.0/24'] });
  const found = diagnose(ranged, {});
  assert.ok(found.ok);
  const finding = found.report.findings.find((f) => f.id === 'FORWARDED_HEADERS_SPOOFABLE');
  assert.ok(finding, 'found');
  assert.match(finding.message, /a client at 127\.0\.20\.0 sending/);
  const off: Topology = {
    ...base,
    gateway: { ...base.gateway, settings: { ...base.gateway.settings, useForwardedHeaders: false } },
  };
  const clean = diagnose(off, {});
  assert.ok(clean.ok);
  assert.ok(!clean.report.findings.some((f) => f.id === 'FORWARDED_HEADERS_SPOOFABLE'));
});

test('issue 20: a server-alias, a permanent-redirect and a www twin in the hop-by-hop explanation', () => {
  const P = 'nginx.ingress.kubernetes.io/';
  const yaml = [
    'apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: default}\nspec: {ports: [{name: http, port: 80}]}',
    ...[
      ['main', 'main.example', `${P}server-alias: alias.example\n    ${P}from-to-www-redirect: "true"`],
      ['moved', 'moved.example', `${P}permanent-redirect: https://new.example/`],
    ].map(
      ([name, host, annotations]) =>
        `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: ${name}\n  namespace: default\n  annotations:\n    ${annotations}\nspec:\n  ingressClassName: nginx\n  rules:\n    - host: ${host}\n      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: svc, port: {number: 80}}}}]}`,
    ),
  ].join('\n---\n');
  const topology = buildTopology(parseManifestText(yaml, 'issue20.yaml').objects);
  const alias = simulate(topology, { client: '127.0.20.10', host: 'alias.example' });
  assert.match(
    alias.hops.find((h) => h.name === 'route')!.detail,
    /\(alias\.example is a server-alias of main\.example\) -> default-svc-80/,
  );
  const moved = simulate(topology, { client: '127.0.20.10', host: 'moved.example', path: '/x' });
  assert.equal(moved.status, 301);
  assert.match(moved.hops.at(-1)!.detail, /redirect 301 to https:\/\/new\.example\//);
  const www = simulate(topology, { client: '127.0.20.10', host: 'www.main.example' });
  assert.equal(www.status, 308);
  assert.match(
    www.hops.at(-1)!.detail,
    /www twin of a host with from-to-www-redirect: redirect 308 to http:\/\/main\.example:80/,
  );
});

test("a Prefix path ending in `/` asked without it: nginx's auto_redirect, before the access rules", () => {
  const yaml = [
    'apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: default}\nspec: {ports: [{name: http, port: 80}]}',
    'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: slash\n  namespace: default\n  annotations: {nginx.ingress.kubernetes.io/allowlist-source-range: 10.0.0.0/8}\nspec:\n  ingressClassName: nginx\n  rules:\n    - host: slash.example\n      http: {paths: [{path: /foo/, pathType: Prefix, backend: {service: {name: svc, port: {number: 80}}}}]}',
  ].join('\n---\n');
  const topology = buildTopology(parseManifestText(yaml, 'slash.yaml').objects);
  const bare = simulate(topology, { client: '127.0.20.10', host: 'slash.example', path: '/foo' });
  assert.equal(bare.status, 301);
  assert.match(bare.hops.at(-1)!.detail, /redirect 301 to \/foo\/ \(\/foo lacks its trailing slash/);
  const slashed = simulate(topology, { client: '127.0.20.10', host: 'slash.example', path: '/foo/' });
  assert.equal(slashed.status, 403);
});

test('issue 20: a canary in the backend hop', () => {
  const P = 'nginx.ingress.kubernetes.io/';
  const svc = (name: string) =>
    `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: default}\nspec: {ports: [{name: http, port: 80}]}`;
  const ing = (name: string, service: string, annotations: string) =>
    `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: ${name}\n  namespace: default\n  annotations: {${annotations}}\nspec:\n  ingressClassName: nginx\n  rules:\n    - host: shop.example\n      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: ${service}, port: {number: 80}}}}]}`;
  const yaml = [
    svc('web'),
    svc('web-next'),
    ing('web', 'web', ''),
    ing(
      'web-next',
      'web-next',
      `"${P}canary": "true", "${P}canary-by-header": X-Canary, "${P}canary-weight": "10"`,
    ),
  ].join('\n---\n');
  const topology = buildTopology(parseManifestText(yaml, 'canary.yaml').objects);
  const sim = simulate(topology, { client: '127.0.20.10', host: 'shop.example' });
  assert.match(
    sim.hops.at(-1)!.detail,
    /default-web-80: .*; canary default\/web-next -> default-web-next-80 takes header X-Canary: always, 10 of 100 others by weight/,
  );
});
