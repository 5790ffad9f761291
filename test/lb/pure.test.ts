// The pure pieces of the load balancer: health thresholds, source-address choice, the PROXY header
// a flow gets, config validation, and the runtime config a modelled NLB turns into.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoadBalancerModel, Topology } from '../../src/config/model.ts';
import { buildTopology, parseManifestText } from '../../src/k8s/index.ts';
import { lbConfigFromModel, validateLbConfig } from '../../src/lb/config.ts';
import { initialHealth, recordCheck } from '../../src/lb/health-state.ts';
import { planFromTopology } from '../../src/lb/manifest.ts';
import { createHeaderBuilder } from '../../src/lb/proxy-header.ts';
import { chooseSourceAddress, isLoopbackAddress } from '../../src/lb/source-address.ts';
import { parseProxyHeader } from '../../src/proxy-protocol/index.ts';
import { lbConfig } from './helpers.ts';

test('health: unhealthy after N consecutive failures, healthy again after M consecutive successes', () => {
  const thresholds = { healthyThreshold: 2, unhealthyThreshold: 3 };
  let state = initialHealth();
  assert.equal(state.status, 'healthy');
  const fail = { ok: false as const, reason: 'ECONNREFUSED' };
  const pass = { ok: true as const };
  const steps: [typeof fail | typeof pass, string, boolean][] = [
    [fail, 'healthy', false],
    [pass, 'healthy', false], // a success resets the failure count
    [fail, 'healthy', false],
    [fail, 'healthy', false],
    [fail, 'unhealthy', true],
    [pass, 'unhealthy', false],
    [fail, 'unhealthy', false], // resets the success count
    [pass, 'unhealthy', false],
    [pass, 'healthy', true],
  ];
  for (const [result, status, changed] of steps) {
    const next = recordCheck(state, result, thresholds);
    assert.equal(next.state.status, status);
    assert.equal(next.changed, changed);
    state = next.state;
  }
  assert.equal(state.checks, steps.length);
  assert.equal(state.lastError, 'ECONNREFUSED');
});

test('source address: preservation uses the client address when it is local, else falls back and says why', () => {
  const base = {
    targetAddress: '127.0.20.1',
    sourceAddress: '127.0.11.1',
    isLocalAddress: isLoopbackAddress,
  };
  assert.deepEqual(chooseSourceAddress({ ...base, clientAddress: '127.0.0.77', preserveClientIp: false }), {
    localAddress: '127.0.11.1',
    preserved: false,
    preservationFallback: null,
    hairpin: false,
  });
  assert.deepEqual(chooseSourceAddress({ ...base, clientAddress: '127.0.0.77', preserveClientIp: true }), {
    localAddress: '127.0.0.77',
    preserved: true,
    preservationFallback: null,
    hairpin: false,
  });
  assert.deepEqual(chooseSourceAddress({ ...base, clientAddress: '203.0.113.9', preserveClientIp: true }), {
    localAddress: '127.0.11.1',
    preserved: false,
    preservationFallback: 'client-not-local',
    hairpin: false,
  });
  const v6 = chooseSourceAddress({
    ...base,
    targetAddress: '::1',
    clientAddress: '127.0.0.77',
    preserveClientIp: true,
  });
  assert.equal(v6.preservationFallback, 'family-mismatch');
  assert.equal(v6.localAddress, undefined, 'an IPv4 source address cannot reach an IPv6 target');
  const hairpin = chooseSourceAddress({ ...base, clientAddress: '127.0.20.1', preserveClientIp: true });
  assert.equal(hairpin.hairpin, true);
  assert.equal(isLoopbackAddress('127.255.0.1'), true);
  assert.equal(isLoopbackAddress('::1'), true);
  assert.equal(isLoopbackAddress('::2'), false);
  assert.equal(isLoopbackAddress('128.0.0.1'), false);
});

test('PROXY header of a flow: client as source, listener as destination, TLVs as configured', () => {
  let n = 0;
  const v2 = createHeaderBuilder(
    'v2',
    { uniqueId: true, crc32c: true, awsVpcEndpointId: 'vpce-08d2bf15fac5001c9' },
    () => new Uint8Array(16).fill(++n),
  );
  const flow = {
    client: { address: '127.0.0.77', port: 40000 },
    listener: { address: '127.0.10.1', port: 443 },
  };
  const a = v2.forFlow(flow);
  const b = v2.forFlow(flow);
  assert.ok(a.ok && b.ok);
  const parsed = parseProxyHeader(a.value);
  assert.equal(parsed.kind, 'header');
  if (parsed.kind !== 'header') return;
  assert.equal(parsed.consumed, a.value.length);
  assert.equal(parsed.header.command, 'PROXY');
  assert.equal(parsed.header.protocol, 'TCP4');
  assert.deepEqual(parsed.header.source, { address: '127.0.0.77', port: 40000 });
  assert.deepEqual(parsed.header.destination, { address: '127.0.10.1', port: 443 });
  assert.equal(parsed.header.awsVpcEndpointId, 'vpce-08d2bf15fac5001c9');
  assert.ok(
    parsed.header.tlvs.some((t) => t.type === 0x03),
    'CRC32C present (and verified by the parser)',
  );
  assert.notDeepEqual(a.value, b.value, 'each connection has its own UNIQUE_ID');

  const v1 = createHeaderBuilder('v1', {}, () => new Uint8Array(16));
  const line = v1.forFlow(flow);
  assert.ok(line.ok);
  assert.equal(line.value.toString('latin1'), 'PROXY TCP4 127.0.0.77 127.0.10.1 40000 443\r\n');
  const mixed = v1.forFlow({ client: flow.client, listener: { address: '::1', port: 443 } });
  assert.ok(mixed.ok);
  assert.equal(mixed.value.toString('latin1'), 'PROXY TCP6 ::ffff:127.0.0.77 ::1 40000 443\r\n');
});

test('health-check headers are LOCAL: v2 LOCAL (with the endpoint TLV), v1 PROXY UNKNOWN', () => {
  const v2 = createHeaderBuilder('v2', { awsVpcEndpointId: 'vpce-1' }, () => new Uint8Array(16));
  const parsed = parseProxyHeader(v2.local());
  assert.ok(parsed.kind === 'header');
  assert.equal(parsed.header.command, 'LOCAL');
  assert.equal(parsed.header.source, null);
  assert.equal(parsed.header.awsVpcEndpointId, 'vpce-1');
  assert.equal(
    createHeaderBuilder('v1', {}, () => new Uint8Array())
      .local()
      .toString(),
    'PROXY UNKNOWN\r\n',
  );
});

test('config validation reports every problem with a stable code', () => {
  const result = validateLbConfig(
    lbConfig({
      listen: { host: 'example.com', port: 80 },
      targets: [{ host: '127.0.0.1', port: 0 }],
      sourceAddress: '10.0.0.256',
      proxyProtocol: 'v1',
      tlvs: { uniqueId: true },
      healthCheck: {
        protocol: 'http',
        port: 'traffic-port',
        path: 'healthz',
        intervalMs: 0,
        timeoutMs: 5,
        healthyThreshold: 0,
        unhealthyThreshold: 3,
      },
      idleTimeoutMs: -1,
    }),
  );
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.deepEqual(result.errors.map((e) => e.code).sort(), [
    'LB_BAD_HEALTH_CHECK',
    'LB_BAD_LISTEN_ADDRESS',
    'LB_BAD_SOURCE_ADDRESS',
    'LB_BAD_TARGET',
    'LB_BAD_TIMEOUT',
    'LB_TLVS_NEED_V2',
  ]);
  assert.equal(validateLbConfig(lbConfig({ targets: [{ host: '::1', port: 80 }] })).ok, true);
  // Past setTimeout's longest delay, a removed target's flows would be cut at once, not kept 30 days.
  const month = validateLbConfig(
    lbConfig({ targets: [{ host: '::1', port: 80 }], deregistrationDelayMs: 30 * 86_400_000 }),
  );
  assert.deepEqual(month.ok ? [] : month.errors.map((e) => e.code), ['LB_BAD_TIMEOUT']);
  assert.equal(
    validateLbConfig(lbConfig({ targets: [{ host: '::1', port: 80 }], deregistrationDelayMs: 2 ** 31 - 1 }))
      .ok,
    true,
  );
});

const SERVICE = (annotations: string, extra = '') => `
apiVersion: v1
kind: Service
metadata:
  name: edge
  namespace: web
  annotations:
${annotations}
spec:
  type: LoadBalancer
  selector: { app: gw }
  ports:
    - name: http
      port: 80
      targetPort: 8080
      nodePort: 30080
      protocol: TCP
${extra}
---
apiVersion: v1
kind: Endpoints
metadata: { name: edge, namespace: web }
subsets:
  - addresses: [{ ip: 127.0.30.1 }, { ip: 127.0.30.2 }]
    ports: [{ name: http, port: 8080 }]
---
apiVersion: v1
kind: Node
metadata: { name: node-a }
status: { addresses: [{ type: InternalIP, address: 127.0.1.1 }] }
---
apiVersion: v1
kind: Node
metadata: { name: node-b }
status: { addresses: [{ type: InternalIP, address: 127.0.1.2 }] }
`;

function topologyOf(text: string): Topology {
  const loaded = parseManifestText(text, 'service.yaml');
  assert.deepEqual(
    loaded.issues.filter((i) => i.severity === 'error'),
    [],
  );
  return buildTopology(loaded.objects);
}

test('manifest: ip targets are the ready endpoints; status.loadBalancer gives the listen address', () => {
  const topology = topologyOf(
    SERVICE(
      `    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip
    service.beta.kubernetes.io/aws-load-balancer-proxy-protocol: "*"
    keepip.dev/lb-source-address: 127.0.11.9`,
      `status:
  loadBalancer:
    ingress: [{ ip: 127.0.10.7 }]`,
    ),
  );
  const plan = planFromTopology(topology);
  assert.ok(plan.ok);
  const [only] = plan.plans;
  assert.deepEqual(only!.config.listen, { host: '127.0.10.7', port: 80 });
  assert.deepEqual(only!.config.targets, [
    { host: '127.0.30.1', port: 8080 },
    { host: '127.0.30.2', port: 8080 },
  ]);
  assert.equal(only!.config.proxyProtocol, 'v2');
  assert.equal(only!.config.sourceAddress, '127.0.11.9');
  assert.equal(only!.config.preserveClientIp, false, 'ip targets: preservation off by default (A1)');
  assert.equal(only!.config.algorithm, 'flow-hash');
  assert.equal(validateLbConfig(only!.config).ok, true);
});

test('manifest: instance targets are every node on the nodePort; --listen and --target override', () => {
  const topology = topologyOf(
    SERVICE(`    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: instance`),
  );
  const plan = planFromTopology(topology);
  assert.ok(plan.ok);
  assert.deepEqual(plan.plans[0]!.config.targets, [
    { host: '127.0.1.1', port: 30080 },
    { host: '127.0.1.2', port: 30080 },
  ]);
  assert.equal(plan.plans[0]!.config.preserveClientIp, true, 'instance targets: preservation on (A1)');
  const pinned = planFromTopology(topology, {
    listen: { host: '127.0.0.5', port: 8080 },
    targets: [{ host: '127.0.0.9', port: 9000 }],
  });
  assert.ok(pinned.ok);
  assert.deepEqual(pinned.plans[0]!.config.listen, { host: '127.0.0.5', port: 8080 });
  assert.deepEqual(pinned.plans[0]!.config.targets, [{ host: '127.0.0.9', port: 9000 }]);
  const missing = planFromTopology(topology, { service: 'web/other' });
  assert.equal(missing.ok, false);
  if (!missing.ok) assert.equal(missing.errors[0]!.code, 'LB_SERVICE_NOT_FOUND');
});

test('lbConfigFromModel: the VPC endpoint TLV only rides on v2', () => {
  const topology = topologyOf(
    SERVICE(`    service.beta.kubernetes.io/aws-load-balancer-type: external
    service.beta.kubernetes.io/aws-load-balancer-target-group-attributes: proxy_protocol_v2.enabled=true
    keepip.dev/vpc-endpoint-id: vpce-0abc`),
  );
  const model: LoadBalancerModel = topology.loadBalancers[0]!;
  const config = lbConfigFromModel(model, [{ host: '127.0.0.1', port: 1 }]);
  assert.deepEqual(config.tlvs, { awsVpcEndpointId: 'vpce-0abc' });
  const v1 = lbConfigFromModel({ ...model, proxyProtocol: 'v1' }, [{ host: '127.0.0.1', port: 1 }]);
  assert.deepEqual(v1.tlvs, {});
  assert.equal(validateLbConfig(v1).ok, true);
});
