import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadTopology } from '../../src/k8s/index.ts';
import { type L4Component, planUp } from '../../src/up/plan.ts';

const seed = (variant: string) => fileURLToPath(new URL(`../../examples/seed/${variant}`, import.meta.url));

test("the seed's plan: whoami for Gitea, a ClusterIP hop, the gateway on the controller pod, the NLB to the pod", async () => {
  const plan = planUp(await loadTopology([seed('before')]));
  const summary = plan.components.map((c) =>
    c.kind === 'gateway'
      ? `gateway http ${c.http?.host}:${c.http?.port}`
      : c.kind === 'whoami'
        ? `${c.name} ${c.listen.host}:${c.listen.port}`
        : `${c.name} ${c.listen.host}:${c.listen.port} -> ${c.targets.map((t) => `${t.host}:${t.port}`).join(',')}`,
  );
  assert.deepEqual(summary, [
    'whoami/gitea-http 127.0.40.11:3000',
    'cluster-ip/gitea-http:3000 127.0.40.1:3000 -> 127.0.40.11:3000',
    'gateway http 127.0.30.1:80',
    'lb/ingress-nginx-controller:80 127.0.10.1:80 -> 127.0.30.1:80',
  ]);
  const lb = plan.components.at(-1) as L4Component;
  assert.equal(lb.sourceAddress, '127.0.10.1');
  assert.equal(lb.preserveClientIp, false);
  assert.equal(lb.proxyProtocol, null);
  assert.deepEqual(plan.notes, []);
});

test('the fixed seed sends PROXY v2 from the NLB', async () => {
  const plan = planUp(await loadTopology([seed('after')]));
  const lb = plan.components.find((c) => c.kind === 'load-balancer') as L4Component;
  assert.equal(lb.proxyProtocol, 'v2');
});

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/up/${name}`, import.meta.url));

for (const [name, policy] of [
  ['instance-cluster', 'Cluster'],
  ['instance-local', 'Local'],
] as const) {
  test(`instance targets with externalTrafficPolicy: ${policy} go through a kube-proxy NodePort hop`, async () => {
    const plan = planUp(await loadTopology([fixture(name)]));
    const lb = plan.components.find((c) => c.kind === 'load-balancer') as L4Component;
    const hop = plan.components.find((c) => c.kind === 'node-port') as L4Component;
    assert.deepEqual(lb.targets, [{ host: '127.0.1.1', port: 30080 }]);
    assert.equal(lb.preserveClientIp, true, 'instance targets keep the client address (A1)');
    assert.deepEqual(hop.listen, { host: '127.0.1.1', port: 30080 });
    assert.deepEqual(hop.targets, [{ host: '127.0.30.1', port: 80 }]);
    if (policy === 'Cluster') {
      assert.equal(hop.preserveClientIp, false);
      assert.equal(hop.sourceAddress, '127.0.1.1', 'kube-proxy SNATs to the node address (K1)');
    } else {
      assert.equal(hop.preserveClientIp, true, 'Local keeps the address the node received (K2)');
    }
    const order = plan.components.map((c) => c.kind);
    assert.ok(order.indexOf('node-port') < order.indexOf('load-balancer'), 'hops start before the LB');
  });
}
