// The doctor's table test: one fixture set of manifests per rule (test/fixtures/doctor/<rule>/), each
// asserting the verdict, the address at every hop and the findings; then every fix is applied to the
// manifests and the doctor must find no error and see the client's own address.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Topology } from '../../src/config/model.ts';
import { type DiagnoseOptions, diagnose } from '../../src/doctor/diagnose.ts';
import { applyPatches } from '../../src/doctor/fix.ts';
import { errorPatches } from '../../src/doctor/follow-fix.ts';
import type { DoctorReport, Outcome } from '../../src/doctor/types.ts';
import { buildTopology, loadManifests, type ManifestObject } from '../../src/k8s/index.ts';
import { manifestObject } from '../helpers/manifest-object.ts';

const fixtures = fileURLToPath(new URL('../fixtures/doctor/', import.meta.url));
const seed = fileURLToPath(new URL('../../examples/seed/', import.meta.url));

async function load(dir: string): Promise<{ objects: ManifestObject[]; topology: Topology }> {
  const loaded = await loadManifests([dir]);
  assert.deepEqual(
    loaded.issues.filter((i) => i.severity === 'error'),
    [],
    `${dir} must load without errors`,
  );
  return { objects: loaded.objects, topology: buildTopology(loaded.objects) };
}

function run(topology: Topology, options: DiagnoseOptions): DoctorReport {
  const result = diagnose(topology, options);
  assert.ok(result.ok, result.ok ? '' : result.error.message);
  return result.report;
}

const hopsOf = (report: DoctorReport) => Object.fromEntries(report.hops.map((h) => [h.name, h.sees]));
const idsOf = (report: DoctorReport) => report.findings.map((f) => `${f.id}:${f.severity}`).sort();
const errorsOf = (report: DoctorReport) => report.findings.filter((f) => f.severity === 'error');

/** Applies the fixes of every error finding to the objects and rebuilds the topology. */
function applyErrorFixes(objects: ManifestObject[], report: DoctorReport): Topology {
  const patches = errorPatches(report.findings);
  assert.ok(patches.length > 0, 'every error finding here comes with a fix');
  const applied = applyPatches(objects, patches, (raw) => manifestObject(raw));
  assert.ok(applied.ok, applied.ok ? '' : applied.error.message);
  return buildTopology(applied.objects);
}

interface Case {
  fixture: string;
  request: DiagnoseOptions & { client: string };
  outcome: Outcome;
  status: number | null;
  decidedBy: RegExp;
  hops: Record<string, string | null>;
  findings: string[];
  /** After the error fixes: the outcome (the client is then always seen with its own address). */
  fixed?: Outcome;
}

const host = 'app.example.com';
const laptop = '127.0.20.10'; // on the allowlist
const other = '127.0.20.66'; // on no list

const cases: Case[] = [
  {
    fixture: 'clean',
    request: { client: laptop, host },
    outcome: 'allowed',
    status: 200,
    decidedBy: /^allowlist 127\.0\.20\.10\/32$/,
    hops: {
      client: laptop,
      'load-balancer': laptop,
      gateway: '127.0.10.1',
      'client-ip': laptop,
      policy: laptop,
      backend: laptop,
    },
    findings: [],
  },
  {
    fixture: 'client-ip-lost-at-lb',
    request: { client: laptop, host },
    outcome: 'denied-403',
    status: 403,
    decidedBy: /^allowlist-miss/,
    hops: {
      client: laptop,
      'load-balancer': laptop,
      gateway: '127.0.10.1',
      'client-ip': '127.0.10.1',
      policy: '127.0.10.1',
    },
    findings: ['CLIENT_IP_LOST_AT_LB:error'],
    fixed: 'allowed',
  },
  {
    // Limits key on the NLB's address: every client shares one bucket (issue 17).
    fixture: 'access-keyed-on-shared-address',
    request: { client: laptop, host },
    outcome: 'denied-403',
    status: 403,
    decidedBy: /^allowlist-miss/,
    hops: { client: laptop, gateway: '127.0.10.1', 'client-ip': '127.0.10.1', policy: '127.0.10.1' },
    findings: ['ACCESS_KEYED_ON_SHARED_ADDRESS:error', 'CLIENT_IP_LOST_AT_LB:error'],
    fixed: 'allowed',
  },
  {
    fixture: 'client-via-transit-gateway',
    request: { client: laptop, host },
    outcome: 'denied-403',
    status: 403,
    decidedBy: /^allowlist-miss/,
    hops: {
      client: laptop,
      network: laptop,
      'load-balancer': laptop,
      gateway: '127.0.10.1',
      policy: '127.0.10.1',
    },
    findings: ['CLIENT_IP_LOST_AT_LB:error', 'CLIENT_VIA_TRANSIT_GATEWAY:error', 'HAIRPIN_TIMEOUT:warning'],
    fixed: 'allowed',
  },
  {
    fixture: 'client-ip-lost-at-kube-proxy',
    request: { client: laptop, host },
    outcome: 'denied-403',
    status: 403,
    decidedBy: /^allowlist-miss/,
    hops: {
      client: laptop,
      'load-balancer': laptop,
      'kube-proxy': laptop,
      gateway: '127.0.1.1',
      policy: '127.0.1.1',
    },
    findings: ['CLIENT_IP_LOST_AT_KUBE_PROXY:error', 'HAIRPIN_TIMEOUT:warning'],
    fixed: 'allowed',
  },
  {
    fixture: 'proxy-protocol-sent-not-expected',
    request: { client: laptop, host },
    outcome: 'rejected-400',
    status: 400,
    decidedBy: /^G2$/,
    hops: { client: laptop, 'load-balancer': laptop, gateway: '127.0.10.1' },
    findings: ['PROXY_PROTOCOL_SENT_NOT_EXPECTED:error'],
    fixed: 'allowed',
  },
  {
    fixture: 'proxy-protocol-expected-not-sent',
    request: { client: laptop, host },
    outcome: 'connection-closed',
    status: null,
    decidedBy: /^G3$/,
    hops: { client: laptop, 'load-balancer': laptop, gateway: '127.0.10.1' },
    findings: ['PROXY_PROTOCOL_EXPECTED_NOT_SENT:error'],
    fixed: 'allowed',
  },
  {
    fixture: 'proxy-protocol-trusts-everyone',
    request: { client: laptop, host },
    outcome: 'allowed',
    status: 200,
    decidedBy: /^allowlist /,
    hops: { client: laptop, gateway: '127.0.10.1', 'client-ip': laptop, policy: laptop },
    findings: ['PROXY_PROTOCOL_TRUSTS_EVERYONE:error'],
    fixed: 'allowed',
  },
  {
    // A client on no list passes by writing the allowlisted address into X-Forwarded-For.
    fixture: 'forwarded-headers-spoofable',
    request: { client: other, host, forwardedFor: laptop },
    outcome: 'allowed',
    status: 200,
    decidedBy: /^allowlist 127\.0\.20\.10\/32$/,
    hops: {
      client: other,
      'load-balancer': other,
      'kube-proxy': other,
      gateway: other,
      'client-ip': laptop,
      policy: laptop,
    },
    findings: ['FORWARDED_HEADERS_SPOOFABLE:error'],
    fixed: 'denied-403',
  },
  {
    fixture: 'peer-not-trusted',
    request: { client: laptop, host },
    outcome: 'connection-closed',
    status: null,
    decidedBy: /^G5/,
    hops: { client: laptop, 'load-balancer': laptop, 'kube-proxy': laptop, gateway: '127.0.1.1' },
    findings: ['HAIRPIN_TIMEOUT:warning', 'PEER_NOT_TRUSTED:error'],
    fixed: 'allowed',
  },
  {
    // Traffic works; the health checks are what break (A7).
    fixture: 'health-check-cannot-speak-proxy',
    request: { client: laptop, host },
    outcome: 'allowed',
    status: 200,
    decidedBy: /^allowlist /,
    hops: {
      client: laptop,
      'load-balancer': laptop,
      'kube-proxy': '127.0.10.1',
      gateway: '127.0.10.1',
      'client-ip': laptop,
    },
    findings: ['HEALTH_CHECK_CANNOT_SPEAK_PROXY:error'],
    fixed: 'allowed',
  },
  {
    fixture: 'invalid-source-range',
    request: { client: laptop, host },
    outcome: 'fail-closed-503',
    status: 503,
    decidedBy: /^invalid-rules/,
    hops: { client: laptop, gateway: '127.0.10.1', 'client-ip': laptop, policy: laptop },
    findings: ['INVALID_SOURCE_RANGE:error'],
    fixed: 'allowed',
  },
  {
    // The node calls its own NLB by its DNS name and is sent back to itself.
    fixture: 'hairpin-timeout',
    request: { client: '127.0.1.1', host, via: 'in-cluster' },
    outcome: 'unreachable',
    status: null,
    decidedBy: /^A8/,
    hops: { client: '127.0.1.1', 'load-balancer': '127.0.1.1' },
    findings: ['HAIRPIN_TIMEOUT:error'],
    fixed: 'denied-403', // reaches the gateway as itself; it is not on the allowlist
  },
  {
    fixture: 'in-cluster-bypass',
    request: { client: '127.0.50.5', host, via: 'in-cluster' },
    outcome: 'connection-closed',
    status: null,
    decidedBy: /^K3$/,
    hops: { client: '127.0.50.5', 'load-balancer': null, gateway: '127.0.50.5' },
    findings: ['IN_CLUSTER_BYPASS:error'],
    fixed: 'denied-403',
  },
];

for (const c of cases) {
  test(`doctor fixture ${c.fixture}: ${c.outcome}, ${c.findings.join(' ') || 'no findings'}`, async () => {
    const { objects, topology } = await load(`${fixtures}${c.fixture}`);
    const report = run(topology, c.request);
    assert.equal(report.verdict, c.outcome, report.summary);
    assert.equal(report.status, c.status);
    assert.match(report.decidedBy ?? '', c.decidedBy);
    assert.deepEqual(hopsOf(report), { ...hopsOf(report), ...c.hops }, 'hop addresses');
    for (const name of Object.keys(c.hops)) assert.ok(name in hopsOf(report), `hop ${name} is listed`);
    assert.deepEqual(idsOf(report), [...c.findings].sort());
    assert.equal(report.exitCode, c.outcome === 'allowed' ? 0 : 1);
    for (const f of report.findings) {
      assert.ok(f.message.length > 80, `${f.id} explains itself`);
      assert.ok(f.hops.length > 0);
    }

    // Without --client the same error findings stand (they come from the manifests, not the client);
    // the simulation-only ones (K3 and A8 for an in-cluster caller) drop to warnings.
    const audit = run(topology, c.request.via ? { via: c.request.via } : {});
    assert.equal(audit.mode, 'audit');
    const auditIds = new Set(audit.findings.map((f) => f.id));
    for (const id of c.findings) assert.ok(auditIds.has(id.split(':')[0]!), `${id} also without --client`);
    assert.equal(audit.exitCode, errorsOf(audit).length > 0 ? 1 : 0);

    if (c.fixed === undefined) return;
    const after = run(applyErrorFixes(objects, report), c.request);
    assert.deepEqual(
      errorsOf(after).map((f) => f.id),
      [],
      `after the fix: ${after.findings.map((f) => f.id).join(', ')}`,
    );
    assert.equal(after.verdict, c.fixed, after.summary);
    assert.equal(
      after.simulation?.gatewayLogsAddress,
      c.request.client,
      'the gateway sees the client itself',
    );
  });
}

test('the seed: 403 with CLIENT_IP_LOST_AT_LB and CLIENT_VIA_TRANSIT_GATEWAY; the fix gives 200, as examples/seed/after', async () => {
  const before = await load(`${seed}before`);
  const request = { client: '127.0.20.10', host: 'gitea.example.com' };
  const report = run(before.topology, request);
  assert.equal(report.verdict, 'denied-403');
  assert.equal(
    report.simulation?.gatewayLogsAddress,
    '127.0.10.1',
    "the NLB's address, as in the seed's log line",
  );
  assert.equal(report.via, 'transit-gateway', 'from keepip.dev/client-path');
  assert.deepEqual(
    errorsOf(report).map((f) => f.id),
    ['CLIENT_IP_LOST_AT_LB', 'CLIENT_VIA_TRANSIT_GATEWAY'],
  );
  const fix = errorsOf(report)[0]!.fix!;
  assert.deepEqual(
    fix.patches.map((p) => p.kubectl),
    [
      "kubectl -n ingress-nginx annotate service ingress-nginx-controller 'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol=*' --overwrite",
      'kubectl -n ingress-nginx patch configmap ingress-nginx-controller --type merge -p \'{"data":{"use-proxy-protocol":"true","proxy-real-ip-cidr":"127.0.10.1/32"}}\'',
    ],
  );

  const fixed = applyErrorFixes(before.objects, report);
  const afterFix = run(fixed, request);
  assert.equal(afterFix.verdict, 'allowed');
  assert.equal(afterFix.status, 200);
  assert.deepEqual(errorsOf(afterFix), []);
  assert.equal(run(fixed, { ...request, client: '127.0.20.66' }).verdict, 'denied-403', 'others stay out');

  // The patched manifests describe the same chain as the hand-written "after".
  const after = await load(`${seed}after`);
  const lbOf = (t: Topology) => t.loadBalancers[0]!;
  assert.equal(lbOf(fixed).proxyProtocol, lbOf(after.topology).proxyProtocol);
  assert.equal(fixed.gateway.settings.useProxyProtocol, after.topology.gateway.settings.useProxyProtocol);
  assert.deepEqual(fixed.gateway.settings.trustedCidrs, after.topology.gateway.settings.trustedCidrs);
  const afterReport = run(after.topology, request);
  assert.equal(afterReport.verdict, 'allowed');
  assert.deepEqual(errorsOf(afterReport), []);
});

test('the seed without --client: the allowlist cannot recognise anyone, the gateway sees the NLB', async () => {
  const { topology } = await load(`${seed}before`);
  const report = run(topology, {});
  assert.equal(report.verdict, 'problems');
  assert.equal(report.exitCode, 1);
  assert.equal(report.audit.length, 1);
  const [entry] = report.audit;
  assert.equal(entry!.recognised, false);
  assert.equal(entry!.seenInstead, '127.0.10.1');
  assert.equal(entry!.listedOutcome, 'denied-403');

  const after = run((await load(`${seed}after`)).topology, {});
  assert.equal(after.verdict, 'ok');
  assert.equal(after.exitCode, 0);
  assert.equal(after.audit[0]!.recognised, true);
  assert.equal(after.audit[0]!.listedOutcome, 'allowed');
  assert.equal(after.audit[0]!.otherOutcome, 'denied-403');
});

test('a clean configuration gives no findings, with or without a client', async () => {
  const { topology } = await load(`${fixtures}clean`);
  assert.deepEqual(run(topology, {}).findings, []);
  assert.deepEqual(run(topology, { client: other, host }).findings, []);
  assert.equal(run(topology, { client: other, host }).verdict, 'denied-403');
});
