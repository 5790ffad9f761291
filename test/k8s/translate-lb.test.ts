import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoadBalancerModel } from '../../src/config/model.ts';
import { codes, find, topologyOf } from './helpers.ts';

const AWS = 'service.beta.kubernetes.io/aws-load-balancer-';

interface LbSpec {
  name?: string;
  namespace?: string;
  annotations?: Record<string, string>;
  spec?: string;
  status?: string;
}

function lbYaml(o: LbSpec = {}): string {
  const ann = Object.entries(o.annotations ?? {})
    .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)
    .join('\n');
  return [
    'apiVersion: v1',
    'kind: Service',
    'metadata:',
    `  name: ${o.name ?? 'lb'}`,
    `  namespace: ${o.namespace ?? 'ingress-nginx'}`,
    ann ? `  annotations:\n${ann}` : '',
    'spec:',
    '  type: LoadBalancer',
    '  selector: {app.kubernetes.io/name: ingress-nginx}',
    '  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]',
    o.spec ?? '',
    o.status ?? '',
    '---',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n')
    .concat('\n');
}

function lb(o: LbSpec = {}): { model: LoadBalancerModel; issues: ReturnType<typeof topologyOf>['issues'] } {
  const t = topologyOf(lbYaml(o));
  assert.equal(t.loadBalancers.length, 1);
  return { model: t.loadBalancers[0]!, issues: t.issues };
}

test('AWS NLB via the controller: type external, instance targets by default, internal, preserve on (A1)', () => {
  const { model, issues } = lb({ annotations: { [`${AWS}type`]: 'external' } });
  assert.equal(model.provider, 'aws-nlb');
  assert.equal(model.targetType, 'instance');
  assert.equal(model.scheme, 'internal');
  assert.equal(model.proxyProtocol, null);
  assert.equal(model.preserveClientIp, true);
  assert.deepEqual(model.healthCheck, {
    protocol: 'tcp',
    port: 'traffic-port',
    path: '/',
    intervalMs: 10_000,
    timeoutMs: 10_000,
    healthyThreshold: 3,
    unhealthyThreshold: 3,
  });
  assert.deepEqual(codes(issues, 'warning'), []);
});

test('AWS NLB ip targets: preserve off by default (A1); nlb-ip means ip; loadBalancerClass means NLB', () => {
  assert.equal(
    lb({ annotations: { [`${AWS}type`]: 'external', [`${AWS}nlb-target-type`]: 'ip' } }).model
      .preserveClientIp,
    false,
  );
  const nlbIp = lb({ annotations: { [`${AWS}type`]: 'nlb-ip' } }).model;
  assert.equal(nlbIp.targetType, 'ip');
  assert.equal(nlbIp.preserveClientIp, false);
  const byClass = lb({ spec: '  loadBalancerClass: service.k8s.aws/nlb' }).model;
  assert.equal(byClass.provider, 'aws-nlb');
  assert.equal(byClass.targetType, 'instance');
  assert.equal(byClass.scheme, 'internal');
});

test('in-tree NLB (type nlb) defaults to internet-facing; the scheme annotation and the legacy internal one', () => {
  assert.equal(lb({ annotations: { [`${AWS}type`]: 'nlb' } }).model.scheme, 'internet-facing');
  assert.equal(
    lb({ annotations: { [`${AWS}type`]: 'nlb', [`${AWS}internal`]: 'true' } }).model.scheme,
    'internal',
  );
  const both = lb({
    annotations: {
      [`${AWS}type`]: 'external',
      [`${AWS}internal`]: 'true',
      [`${AWS}scheme`]: 'internet-facing',
    },
  });
  assert.equal(both.model.scheme, 'internet-facing');
  assert.equal(
    find(both.issues, 'CONFLICTING_LB_ANNOTATIONS').field,
    `metadata.annotations["${AWS}internal"]`,
  );
});

test('AWS PROXY v2: proxy-protocol "*" or the target-group attribute; "*" wins over proxy_protocol_v2.enabled=false', () => {
  assert.equal(
    lb({ annotations: { [`${AWS}type`]: 'external', [`${AWS}proxy-protocol`]: '*' } }).model.proxyProtocol,
    'v2',
  );
  assert.equal(
    lb({
      annotations: {
        [`${AWS}type`]: 'external',
        [`${AWS}target-group-attributes`]: 'proxy_protocol_v2.enabled=true',
      },
    }).model.proxyProtocol,
    'v2',
  );
  const conflict = lb({
    annotations: {
      [`${AWS}type`]: 'external',
      [`${AWS}proxy-protocol`]: '*',
      [`${AWS}target-group-attributes`]: 'proxy_protocol_v2.enabled=false',
    },
  });
  assert.equal(conflict.model.proxyProtocol, 'v2');
  assert.match(find(conflict.issues, 'CONFLICTING_LB_ANNOTATIONS').message, /proxy-protocol annotation wins/);
  const notStar = lb({ annotations: { [`${AWS}type`]: 'external', [`${AWS}proxy-protocol`]: 'true' } });
  assert.equal(notStar.model.proxyProtocol, null);
  assert.equal(
    find(notStar.issues, 'CONFLICTING_LB_ANNOTATIONS').field,
    `metadata.annotations["${AWS}proxy-protocol"]`,
  );
});

test('AWS preserve_client_ip.enabled explicit beats the target-type default', () => {
  const on = lb({
    annotations: {
      [`${AWS}type`]: 'external',
      [`${AWS}nlb-target-type`]: 'ip',
      [`${AWS}target-group-attributes`]:
        'preserve_client_ip.enabled=true, deregistration_delay.timeout_seconds=30',
    },
  });
  assert.equal(on.model.preserveClientIp, true);
  const off = lb({
    annotations: {
      [`${AWS}type`]: 'external',
      [`${AWS}target-group-attributes`]: 'preserve_client_ip.enabled=false',
    },
  });
  assert.equal(off.model.preserveClientIp, false);
  // Connection termination of unhealthy targets: on unless the attribute turns it off.
  assert.equal(on.model.unhealthyConnectionTermination, undefined);
  const keep = lb({
    annotations: {
      [`${AWS}type`]: 'external',
      [`${AWS}target-group-attributes`]: 'target_health_state.unhealthy.connection_termination.enabled=false',
    },
  });
  assert.equal(keep.model.unhealthyConnectionTermination, false);
  const bad = lb({
    annotations: {
      [`${AWS}type`]: 'external',
      [`${AWS}target-group-attributes`]: 'preserve_client_ip.enabled=yes,garbage',
    },
  });
  assert.equal(bad.model.preserveClientIp, true);
  assert.deepEqual(codes(bad.issues, 'warning'), ['INVALID_LB_ANNOTATION', 'INVALID_LB_ANNOTATION']);
});

test('AWS health-check annotations, their defaults, and externalTrafficPolicy Local with instance targets', () => {
  const custom = lb({
    annotations: {
      [`${AWS}type`]: 'external',
      [`${AWS}healthcheck-protocol`]: 'HTTP',
      [`${AWS}healthcheck-port`]: '10254',
      [`${AWS}healthcheck-path`]: '/healthz',
      [`${AWS}healthcheck-interval`]: '5',
      [`${AWS}healthcheck-healthy-threshold`]: '2',
      [`${AWS}healthcheck-unhealthy-threshold`]: '4',
    },
  }).model.healthCheck;
  assert.deepEqual(custom, {
    protocol: 'http',
    port: 10254,
    path: '/healthz',
    intervalMs: 5000,
    timeoutMs: 6000,
    healthyThreshold: 2,
    unhealthyThreshold: 4,
  });
  const local = lb({
    annotations: { [`${AWS}type`]: 'external' },
    spec: '  externalTrafficPolicy: Local\n  healthCheckNodePort: 32000',
  }).model;
  assert.equal(local.externalTrafficPolicy, 'Local');
  assert.equal(local.healthCheckNodePort, 32000);
  assert.deepEqual(local.healthCheck, {
    protocol: 'http',
    port: 32000,
    path: '/healthz',
    intervalMs: 10_000,
    timeoutMs: 6000,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
  });
  const bad = lb({
    annotations: {
      [`${AWS}type`]: 'external',
      [`${AWS}healthcheck-interval`]: '1',
      [`${AWS}healthcheck-port`]: 'http',
    },
  });
  assert.equal(bad.model.healthCheck.intervalMs, 10_000);
  assert.equal(bad.model.healthCheck.port, 'traffic-port');
  assert.equal(codes(bad.issues, 'warning').filter((c) => c === 'INVALID_LB_ANNOTATION').length, 2);
});

test('legacy in-tree Classic ELB: any aws annotation without a type; proxy-protocol "*" is PROXY v1', () => {
  const { model, issues } = lb({
    annotations: { [`${AWS}proxy-protocol`]: '*', [`${AWS}connection-idle-timeout`]: '60' },
  });
  assert.equal(model.provider, 'aws-elb');
  assert.equal(model.proxyProtocol, 'v1');
  assert.equal(model.preserveClientIp, false);
  assert.equal(model.scheme, 'internet-facing');
  assert.deepEqual(codes(issues, 'warning'), []);
  const nlbOnly = lb({
    annotations: { [`${AWS}target-group-attributes`]: 'proxy_protocol_v2.enabled=true' },
  });
  assert.equal(nlbOnly.model.provider, 'aws-elb');
  assert.equal(nlbOnly.model.proxyProtocol, null);
  assert.equal(
    find(nlbOnly.issues, 'CONFLICTING_LB_ANNOTATIONS').field,
    `metadata.annotations["${AWS}target-group-attributes"]`,
  );
});

test('unknown aws-load-balancer-* annotations are warned about by name; listener attributes are known', () => {
  const { issues } = lb({
    annotations: {
      [`${AWS}type`]: 'external',
      [`${AWS}proxy-protocoll`]: '*',
      [`${AWS}listener-attributes.TCP-80`]: 'tcp.idle_timeout.seconds=400',
    },
  });
  const unknown = issues.filter((i) => i.code === 'UNKNOWN_LB_ANNOTATION');
  assert.equal(unknown.length, 1);
  assert.equal(unknown[0]!.field, `metadata.annotations["${AWS}proxy-protocoll"]`);
  assert.equal(unknown[0]!.severity, 'warning');
});

test('other providers: each PROXY switch exactly as documented', () => {
  const cases: [Record<string, string>, LoadBalancerModel['provider'], LoadBalancerModel['proxyProtocol']][] =
    [
      [{ 'service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol': 'true' }, 'digitalocean', 'v1'],
      [{ 'service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol': 'false' }, 'digitalocean', null],
      [{ 'load-balancer.hetzner.cloud/uses-proxyprotocol': 'true' }, 'hetzner', 'v1'],
      [{ 'service.beta.kubernetes.io/linode-loadbalancer-default-proxy-protocol': 'v2' }, 'linode', 'v2'],
      [{ 'service.beta.kubernetes.io/linode-loadbalancer-default-proxy-protocol': 'v1' }, 'linode', 'v1'],
      [{ 'service.beta.kubernetes.io/linode-loadbalancer-default-proxy-protocol': 'none' }, 'linode', null],
      [{ 'service.beta.kubernetes.io/scw-loadbalancer-proxy-protocol-v2': 'true' }, 'scaleway', 'v2'],
      [{ 'service.beta.kubernetes.io/scw-loadbalancer-proxy-protocol-v1': 'true' }, 'scaleway', 'v1'],
      [{ 'loadbalancer.openstack.org/proxy-protocol': 'v2' }, 'openstack', 'v2'],
      [{ 'loadbalancer.openstack.org/proxy-protocol': 'true' }, 'openstack', 'v1'],
      [
        { 'service.beta.kubernetes.io/oci-load-balancer-connection-proxy-protocol-version': '2' },
        'oracle',
        'v2',
      ],
      [
        { 'service.beta.kubernetes.io/oci-load-balancer-connection-proxy-protocol-version': '1' },
        'oracle',
        'v1',
      ],
      [{ 'service.beta.kubernetes.io/azure-pls-proxy-protocol': 'true' }, 'azure', 'v2'],
      [{ 'networking.gke.io/load-balancer-type': 'Internal' }, 'gke', null],
      [{ 'metallb.universe.tf/address-pool': 'lan' }, 'metallb', null],
      [{}, 'generic', null],
    ];
  for (const [annotations, provider, proxy] of cases) {
    const { model } = lb({ annotations });
    assert.equal(model.provider, provider, JSON.stringify(annotations));
    assert.equal(model.proxyProtocol, proxy, JSON.stringify(annotations));
  }
});

test('preservation: pass-through LBs without PROXY keep the client address, proxies do not', () => {
  assert.equal(
    lb({ annotations: { 'networking.gke.io/load-balancer-type': 'Internal' } }).model.preserveClientIp,
    true,
  );
  assert.equal(
    lb({ annotations: { 'networking.gke.io/load-balancer-type': 'Internal' } }).model.scheme,
    'internal',
  );
  assert.equal(
    lb({ annotations: { 'metallb.universe.tf/address-pool': 'lan' } }).model.preserveClientIp,
    true,
  );
  assert.equal(lb().model.preserveClientIp, true);
  assert.equal(
    lb({ annotations: { 'service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol': 'true' } }).model
      .preserveClientIp,
    false,
  );
  assert.equal(
    lb({ annotations: { 'service.beta.kubernetes.io/linode-loadbalancer-default-proxy-protocol': 'none' } })
      .model.preserveClientIp,
    false,
  );
});

test('invalid provider switch values and mixed providers are warned about', () => {
  const linode = lb({
    annotations: { 'service.beta.kubernetes.io/linode-loadbalancer-default-proxy-protocol': 'v3' },
  });
  assert.equal(linode.model.proxyProtocol, null);
  assert.deepEqual(codes(linode.issues, 'warning'), ['INVALID_LB_ANNOTATION']);
  const mixed = lb({
    annotations: {
      'service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol': 'true',
      'load-balancer.hetzner.cloud/uses-proxyprotocol': 'true',
    },
  });
  assert.equal(mixed.model.provider, 'digitalocean');
  assert.match(find(mixed.issues, 'CONFLICTING_LB_ANNOTATIONS').message, /digitalocean, hetzner/);
});

test('loopback mapping: status IP, else 127.0.10.N; keepip.dev/lb-source-address, else 127.0.11.N', () => {
  const yaml =
    lbYaml({
      name: 'b-second',
      namespace: 'x',
      annotations: { 'keepip.dev/lb-source-address': '::ffff:127.0.99.1' },
    }) +
    lbYaml({
      name: 'a-first',
      namespace: 'x',
      status: 'status:\n  loadBalancer:\n    ingress: [{ip: 127.0.50.5}]',
    }) +
    lbYaml({
      name: 'c-third',
      namespace: 'x',
      status: 'status:\n  loadBalancer:\n    ingress: [{hostname: abc.elb.amazonaws.com}]',
    }) +
    lbYaml({
      name: 'd-fourth',
      namespace: 'x',
      status: 'status:\n  loadBalancer:\n    ingress: [{ip: 127.0.50.6, ipMode: Proxy}]',
    });
  const t = topologyOf(yaml);
  assert.deepEqual(
    t.loadBalancers.map((l) => [l.id, l.listenAddress, l.sourceAddress, l.statusHasHostnameOrProxyMode]),
    [
      ['x/a-first', '127.0.50.5', '127.0.11.1', false],
      ['x/b-second', '127.0.10.2', '127.0.99.1', false],
      ['x/c-third', '127.0.10.3', '127.0.11.3', true],
      ['x/d-fourth', '127.0.50.6', '127.0.11.4', true],
    ],
  );
});

test('keepip.dev annotations: VPC endpoint id, client path, bad values and unknown names', () => {
  const good = lb({
    annotations: {
      'keepip.dev/vpc-endpoint-id': 'vpce-0abc123',
      'keepip.dev/client-path': 'transit-gateway',
    },
  });
  assert.equal(good.model.vpcEndpointId, 'vpce-0abc123');
  assert.equal(good.model.clientPath, 'transit-gateway');
  const bad = lb({
    annotations: {
      'keepip.dev/vpc-endpoint-id': 'endpoint',
      'keepip.dev/client-path': 'carrier-pigeon',
      'keepip.dev/lb-source-address': 'lb.local',
      'keepip.dev/lb-sauce': 'x',
    },
  });
  assert.equal(bad.model.vpcEndpointId, null);
  assert.equal(bad.model.clientPath, null);
  assert.equal(bad.model.sourceAddress, '127.0.11.1');
  assert.deepEqual(
    bad.issues
      .filter((i) => i.severity !== 'info')
      .map((i) => i.code)
      .sort(),
    [
      'INVALID_KEEPIP_ANNOTATION',
      'INVALID_KEEPIP_ANNOTATION',
      'INVALID_KEEPIP_ANNOTATION',
      'UNKNOWN_KEEPIP_ANNOTATION',
    ].sort(),
  );
});

test('loadBalancerSourceRanges from the spec (normalised) or the annotation; a bad entry is an error', () => {
  assert.deepEqual(
    lb({ spec: '  loadBalancerSourceRanges: ["10.0.0.1/8", "192.0.2.1"]' }).model.loadBalancerSourceRanges,
    ['10.0.0.0/8', '192.0.2.1/32'],
  );
  assert.deepEqual(
    lb({
      annotations: { 'service.beta.kubernetes.io/load-balancer-source-ranges': '10.1.0.0/16, 10.2.0.0/16' },
    }).model.loadBalancerSourceRanges,
    ['10.1.0.0/16', '10.2.0.0/16'],
  );
  const bad = lb({ spec: '  loadBalancerSourceRanges: ["10.0.0.0/8", "nope"]' });
  assert.deepEqual(bad.model.loadBalancerSourceRanges, ['10.0.0.0/8']);
  const e = find(bad.issues, 'INVALID_LB_SOURCE_RANGE');
  assert.equal(e.severity, 'error');
  assert.equal(e.field, 'spec.loadBalancerSourceRanges[1]');
});

test('ports, selector and externalTrafficPolicy are carried over; targetPort defaults to port', () => {
  const { model } = lb({ spec: '  externalTrafficPolicy: Cluster' });
  assert.deepEqual(model.ports, [
    { name: 'http', protocol: 'TCP', port: 80, targetPort: 'http', nodePort: 30080 },
  ]);
  assert.deepEqual(model.selector, { 'app.kubernetes.io/name': 'ingress-nginx' });
  const t = topologyOf(
    'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type: LoadBalancer\n  ports: [{port: 443}]\n',
  );
  assert.equal(t.loadBalancers[0]!.ports[0]!.targetPort, 443);
});
