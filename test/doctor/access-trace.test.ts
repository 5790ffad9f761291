// The doctor's decision trace names the limit and auth annotations that run after the source-range
// verdict, and a location denied by its annotations ends 503 by that annotation.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simulate } from '../../src/doctor/simulate.ts';
import { ingress, type K8sObject, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';

const secret: K8sObject = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'pw', namespace: 'default' },
  stringData: { auth: 'dev:{PLAIN}x' },
};

function run(annotations: Record<string, string>) {
  const topology = topologyOf([
    ...serviceWithEndpoints({ name: 'web', ports: [8080] }),
    secret,
    ingress({
      name: 'web',
      host: 'web.example',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations,
    }),
  ]);
  return simulate(topology, { client: '127.0.0.9', host: 'web.example' });
}

test('limits and basic auth are named in the decision and the policy hops', () => {
  const sim = run({ 'limit-rps': '5', 'auth-type': 'basic', 'auth-secret': 'pw', 'auth-realm': 'r' });
  assert.equal(sim.outcome, 'allowed');
  assert.match(
    sim.decidedBy,
    /then nginx\.ingress\.kubernetes\.io\/limit-rps; nginx\.ingress\.kubernetes\.io\/auth-type basic$/,
  );
  const details = sim.hops.filter((h) => h.name === 'policy').map((h) => h.detail);
  assert.ok(
    details.some((d) => /limit-rps 5 \(burst 25\) in zone default\/web, keyed by 127\.0\.0\.9/.test(d)),
  );
  assert.ok(
    details.some((d) =>
      /auth-type basic \(Secret default\/pw, realm "r"\): 401 without valid credentials/.test(d),
    ),
  );
});

test('satisfy any with an allowlist match: auth is skipped, and the trace says so', () => {
  const sim = run({
    'allowlist-source-range': '127.0.0.9',
    satisfy: 'any',
    'auth-url': 'http://auth.example/',
  });
  assert.equal(sim.outcome, 'allowed');
  assert.match(
    sim.decidedBy,
    /^allowlist 127\.0\.0\.9\/32; then nginx\.ingress\.kubernetes\.io\/satisfy any$/,
  );
});

test('a location denied by its annotations: 503, decided by that annotation', () => {
  const sim = run({ 'auth-type': 'basic', 'auth-secret': 'missing' });
  assert.equal(sim.outcome, 'fail-closed-503');
  assert.equal(sim.status, 503);
  assert.equal(sim.decidedBy, 'nginx.ingress.kubernetes.io/auth-secret');
});
