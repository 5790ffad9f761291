// The doctor and the controller's tcp-services/udp-services: the LB's PROXY switch covers every port,
// so an SSH entry without :PROXY breaks when PROXY is turned on for HTTP (kubernetes/kubernetes#42616),
// and an entry with it refuses everyone behind an LB that sends none. The fixture is a chart release
// named after itself, so the controller's own --configmap is read from its args, not assumed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { diagnose } from '../../src/doctor/diagnose.ts';
import { annotate, applyPatches, patchConfigMap } from '../../src/doctor/fix.ts';
import { type DoctorInputOptions, doctorInputs } from '../../src/doctor/inputs.ts';
import type { DoctorReport, FixPatch, Severity } from '../../src/doctor/types.ts';
import { loadManifests, type ManifestObject } from '../../src/k8s/index.ts';
import { manifestObject } from '../helpers/manifest-object.ts';

const run = promisify(execFile);
const fixture = fileURLToPath(new URL('../fixtures/doctor-parts/tcp-services/', import.meta.url));
const keepip = fileURLToPath(new URL('../../bin/keepip', import.meta.url));
const laptop = '127.0.20.10';
const host = 'git.example.com';
const AWS_PROXY = 'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol';
const lbRef = { namespace: 'ingress', name: 'gitea-ingress-nginx-controller' };
const tcpRef = { namespace: 'ingress', name: 'gitea-ingress-nginx-tcp' };

async function objects(): Promise<ManifestObject[]> {
  const loaded = await loadManifests([fixture]);
  assert.deepEqual(
    loaded.issues.filter((i) => i.severity === 'error'),
    [],
  );
  return loaded.objects;
}

function patched(list: readonly ManifestObject[], patches: readonly FixPatch[]): ManifestObject[] {
  const applied = applyPatches(list, patches, (raw) => manifestObject(raw));
  assert.ok(applied.ok);
  return applied.objects;
}

function report(
  list: readonly ManifestObject[],
  options: DoctorInputOptions = {},
  client: string | null = laptop,
): DoctorReport {
  const inputs = doctorInputs(list, options);
  const result = diagnose(inputs.topology, {
    ...(client !== null ? { client, host } : {}),
    sslPassthrough: inputs.passthrough,
    streamServices: inputs.streamServices,
    ...(inputs.loadBalancer !== null ? { loadBalancer: inputs.loadBalancer } : {}),
  });
  assert.ok(result.ok);
  return result.report;
}

const ids = (r: DoctorReport) => r.findings.map((f) => `${f.id}:${f.severity}`).sort();
const fixesOf = (r: DoctorReport, severity: Severity) =>
  r.findings.filter((f) => f.severity === severity).flatMap((f) => f.fix?.patches ?? []);

test("a release's own ConfigMaps from the controller's args: HTTP passes, SSH lacks :PROXY, UDP 53 has no LB port", async () => {
  const list = await objects();
  const r = report(list);
  // The ConfigMap the doctor used to assume (ingress-nginx/ingress-nginx-controller) is not there: it
  // would say the gateway does not expect PROXY (400 for everyone). The controller's own one says it does.
  assert.equal(r.simulation?.outcome, 'allowed');
  assert.equal(r.simulation?.gatewayLogsAddress, laptop);
  assert.deepEqual(ids(r), [
    'STREAM_SERVICE_NOT_EXPOSED:warning',
    'TCP_SERVICE_PROXY_PROTOCOL_MISMATCH:error',
  ]);
  const mismatch = r.findings.find((f) => f.id === 'TCP_SERVICE_PROXY_PROTOCOL_MISMATCH')!;
  assert.match(mismatch.message, /"22": "gitea\/gitea-ssh:22" \(LB port 22\)/);
  assert.match(
    mismatch.message,
    /--tcp-services-configmap of Deployment ingress\/gitea-ingress-nginx-controller/,
  );
  assert.deepEqual(mismatch.subject, { kind: 'ConfigMap', ...tcpRef });
  assert.deepEqual(
    mismatch.fix?.patches.map((p) => [p.target.name, p.patch]),
    [[tcpRef.name, { data: { '22': 'gitea/gitea-ssh:22:PROXY' } }]],
  );
  const exposed = r.findings.find((f) => f.id === 'STREAM_SERVICE_NOT_EXPOSED')!;
  assert.match(exposed.message, /serves UDP port 53 for gitea\/gitea-dns/);

  const fixed = report(patched(list, [...fixesOf(r, 'error'), ...fixesOf(r, 'warning')]));
  assert.deepEqual(ids(fixed), []);
  assert.equal(fixed.simulation?.outcome, 'allowed');
});

test('the doctor given --configmap uses it, as before: the default name is missing, so PROXY looks unexpected', async () => {
  const r = report(await objects(), { configMap: 'ingress-nginx/ingress-nginx-controller' });
  assert.equal(r.simulation?.outcome, 'rejected-400');
  assert.ok(ids(r).includes('PROXY_PROTOCOL_SENT_NOT_EXPECTED:error'));
  // Its fix (use-proxy-protocol) comes with :PROXY for the SSH entry the same LB switch covers.
  const fix = r.findings.find((f) => f.id === 'PROXY_PROTOCOL_SENT_NOT_EXPECTED')!.fix!;
  assert.ok(fix.patches.some((p) => p.target.name === tcpRef.name));
});

test("the seed's fix (turn PROXY on at the LB) also makes the SSH entry read it, so SSH keeps working", async () => {
  // As the seed: the NLB sends no PROXY, the gateway expects none, the allowlist sees the NLB.
  const before = patched(await objects(), [
    annotate('Service', lbRef, { [AWS_PROXY]: null }),
    patchConfigMap(
      { namespace: 'ingress', name: 'gitea-ingress-nginx-controller' },
      { 'use-proxy-protocol': null },
    ),
  ]);
  const r = report(before);
  assert.equal(r.simulation?.outcome, 'denied-403');
  assert.ok(ids(r).includes('CLIENT_IP_LOST_AT_LB:error'));
  assert.ok(!ids(r).includes('TCP_SERVICE_PROXY_PROTOCOL_MISMATCH:error'), 'SSH works before the fix');
  const fix = r.findings.find((f) => f.id === 'CLIENT_IP_LOST_AT_LB')!.fix!;
  assert.match(fix.summary, /tcp-services entries it carries \(22: …:PROXY\)/);

  const after = report(patched(before, fixesOf(r, 'error')));
  assert.equal(after.simulation?.outcome, 'allowed');
  assert.ok(!ids(after).some((id) => id.endsWith(':error')), ids(after).join(' '));
});

test(":PROXY:PROXY without enable-real-ip: the backend's header would name the load balancer (as ingress-nginx); the fix turns enable-real-ip on", async () => {
  const both = patched(await objects(), [patchConfigMap(tcpRef, { '22': 'gitea/gitea-ssh:22:PROXY:PROXY' })]);
  const r = report(both);
  const finding = r.findings.find((f) => f.id === 'TCP_SERVICE_CLIENT_NOT_BELIEVED');
  assert.equal(finding?.severity, 'warning');
  assert.match(finding!.message, /"22": "gitea\/gitea-ssh:22:PROXY:PROXY".*enable-real-ip is off/);
  assert.deepEqual(finding!.fix!.patches, [
    patchConfigMap(
      { namespace: 'ingress', name: 'gitea-ingress-nginx-controller' },
      { 'enable-real-ip': 'true' },
    ),
  ]);
  const after = report(patched(both, finding!.fix!.patches));
  assert.ok(!ids(after).includes('TCP_SERVICE_CLIENT_NOT_BELIEVED:warning'), ids(after).join(' '));
  // An entry that only reads the header (no ::PROXY on) sends nothing on: no finding.
  const decodeOnly = report(
    patched(await objects(), [patchConfigMap(tcpRef, { '22': 'gitea/gitea-ssh:22:PROXY' })]),
  );
  assert.ok(!ids(decodeOnly).includes('TCP_SERVICE_CLIENT_NOT_BELIEVED:warning'));
});

test(':PROXY on an entry behind an LB that sends none: every connection refused; the fix is PROXY end to end, or dropping :PROXY where the LB has no switch', async () => {
  const noProxy = patched(await objects(), [
    annotate('Service', lbRef, { [AWS_PROXY]: null }),
    patchConfigMap(
      { namespace: 'ingress', name: 'gitea-ingress-nginx-controller' },
      { 'use-proxy-protocol': null },
    ),
    patchConfigMap(tcpRef, { '22': 'gitea/gitea-ssh:22:PROXY:PROXY' }),
  ]);
  const r = report(noProxy, {}, null);
  const mismatch = r.findings.filter((f) => f.id === 'TCP_SERVICE_PROXY_PROTOCOL_MISMATCH');
  assert.equal(mismatch.length, 1);
  assert.match(mismatch[0]!.message, /expects every connection to start with a PROXY header .* sends none/);
  assert.match(mismatch[0]!.message, /status 400/);
  // The alternative keeps ::PROXY (the header keepip sends to the backend).
  assert.match(mismatch[0]!.message, /"22": "gitea\/gitea-ssh:22::PROXY"/);
  assert.deepEqual(
    mismatch[0]!.fix?.patches.map((p) => p.target.kind),
    ['Service', 'ConfigMap'],
  );
  // Every error fix applied together (CLIENT_IP_LOST_AT_LB's too): no error left, HTTP and SSH agree.
  const fixed = report(patched(noProxy, fixesOf(r, 'error')));
  assert.deepEqual(
    fixed.findings.filter((f) => f.severity === 'error'),
    [],
  );
  assert.equal(fixed.simulation?.outcome, 'allowed');

  // An LB that cannot send PROXY (a generic one): the entry stops expecting it.
  const generic = patched(noProxy, [
    annotate('Service', lbRef, {
      'service.beta.kubernetes.io/aws-load-balancer-type': null,
      'service.beta.kubernetes.io/aws-load-balancer-scheme': null,
      'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': null,
    }),
  ]);
  const g = report(generic, {}, null);
  const drop = g.findings.find((f) => f.id === 'TCP_SERVICE_PROXY_PROTOCOL_MISMATCH');
  assert.deepEqual(
    drop?.fix?.patches.map((p) => p.patch),
    [{ data: { '22': 'gitea/gitea-ssh:22::PROXY' } }],
  );
  assert.ok(
    !ids(report(patched(generic, [drop!.fix!.patches[0]!]), {}, null)).includes(
      'TCP_SERVICE_PROXY_PROTOCOL_MISMATCH:error',
    ),
  );
});

test('two controllers: the ConfigMaps of the one whose pods the LB Service selects', async () => {
  const list = await objects();
  // A second release, "other", first in the file: its own labels, ConfigMaps and name.
  const text = JSON.stringify(list.find((o) => o.kind === 'Deployment')!.raw)
    .replaceAll('gitea-ingress-nginx', 'other-ingress-nginx')
    .replaceAll('"app.kubernetes.io/instance":"gitea"', '"app.kubernetes.io/instance":"other"');
  const other = JSON.parse(text) as Record<string, unknown>;
  const two = [manifestObject(other, 'other.yaml'), ...list];
  const inputs = doctorInputs(two);
  assert.equal(inputs.topology.gateway.settings.configMap?.name, 'gitea-ingress-nginx-controller');
  assert.equal(inputs.streamServices(inputs.topology.loadBalancers[0]!).tcp?.configMap.name, tcpRef.name);
  assert.deepEqual(ids(report(two)), ids(report(list)));
});

/** keepip doctor --json; its exit code is 1 when there is an error finding. */
async function doctorJson(...args: string[]): Promise<DoctorReport> {
  const done = await run(process.execPath, [keepip, 'doctor', '-f', fixture, '--json', ...args]).catch(
    (e: { stdout: string }) => e,
  );
  return JSON.parse(done.stdout) as DoctorReport;
}

test('keepip doctor -f: the tcp-services finding in --json, and --tcp-services-configmap names another ConfigMap', async () => {
  const json = await doctorJson();
  assert.ok(
    json.findings.some((f) => f.id === 'TCP_SERVICE_PROXY_PROTOCOL_MISMATCH' && f.severity === 'error'),
  );
  assert.equal(json.exitCode, 1);
  const named = await doctorJson(
    '--tcp-services-configmap',
    'ingress/absent',
    '--udp-services-configmap',
    'ingress/absent',
  );
  assert.deepEqual(
    named.findings.map((f) => f.id),
    [],
  );
  assert.equal(named.exitCode, 0);
});
