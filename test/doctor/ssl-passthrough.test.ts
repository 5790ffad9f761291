// The doctor on ssl-passthrough hosts (docs/doctor.md, "ssl-passthrough"; G10, G11): TLS passed
// through, decided at connection time on the client the gateway knows (PROXY header or TCP peer), the
// backend seeing the gateway pod; the annotation without --enable-ssl-passthrough; the flag unknown.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type DiagnoseOptions, diagnose } from '../../src/doctor/diagnose.ts';
import { type PassthroughFlag, passthroughFlagOf } from '../../src/doctor/passthrough.ts';
import { renderJson, renderText } from '../../src/doctor/report.ts';
import type { DoctorReport } from '../../src/doctor/types.ts';
import { parseManifestText } from '../../src/k8s/load.ts';
import { buildTopology } from '../../src/k8s/translate.ts';

const dir = fileURLToPath(new URL('../fixtures/doctor/ssl-passthrough/', import.meta.url));
/** The fixture: an NLB sending PROXY v2 to a gateway that expects it; vault.example.com passes through. */
const FIXTURE = ['ingress-nginx.yaml', 'app.yaml']
  .map((f) => readFileSync(`${dir}${f}`, 'utf8'))
  .join('---\n');
const LAPTOP = '127.0.20.10'; // on the allowlist
const STRANGER = '127.0.20.99';
const HOST = 'vault.example.com';
const ON: PassthroughFlag = { enabled: true, source: 'test' };

/** An LB without PROXY protocol: the gateway sees the NLB's address (A3) at connection time too. */
const WITHOUT_PROXY = FIXTURE.replace(
  /\n {4}service\.beta\.kubernetes\.io\/aws-load-balancer-proxy-protocol: "\*"/,
  '',
).replace('use-proxy-protocol: "true"', 'use-proxy-protocol: "false"');

/** The controller's Deployment, with these args. */
function deployment(args: string[]): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
spec:
  template:
    spec:
      containers:
        - name: controller
          args: ${JSON.stringify(['/nginx-ingress-controller', '--publish-service=ingress-nginx/ingress-nginx-controller', ...args])}
---
`;
}

/** What the doctor CLI does: the flag from the manifests (or given), the topology built with it. */
function doctor(yaml: string, options: DiagnoseOptions, given?: PassthroughFlag): DoctorReport {
  const loaded = parseManifestText(yaml, 'test.yaml');
  assert.deepEqual(loaded.issues, []);
  const flag = given ?? passthroughFlagOf(loaded.objects);
  const topology = buildTopology(loaded.objects, { enableSslPassthrough: flag.enabled === true });
  const result = diagnose(topology, { host: HOST, ...options, sslPassthrough: flag });
  assert.ok(result.ok);
  return result.report;
}

const hop = (r: DoctorReport, name: string) => r.hops.filter((h) => h.name === name).at(-1);
const ids = (r: DoctorReport) => r.findings.map((f) => `${f.id}:${f.severity}`);

test('enabled, via an LB with PROXY protocol: an allowlisted client passes through; the backend sees the gateway pod', () => {
  const r = doctor(FIXTURE, { client: LAPTOP }, ON);
  assert.equal(r.verdict, 'allowed');
  assert.equal(r.status, null, 'the backend answers, not keepip');
  assert.equal(r.simulation?.scheme, 'https', 'a passthrough host is asked about over TLS by default');
  assert.equal(r.simulation?.passthrough, true);
  assert.equal(r.decidedBy, 'ssl-passthrough allowlist 127.0.20.10/32');
  assert.equal(r.simulation?.gatewayLogsAddress, LAPTOP);
  assert.equal(hop(r, 'gateway')?.sees, '127.0.10.1');
  assert.equal(hop(r, 'client-ip')?.sees, LAPTOP);
  assert.match(hop(r, 'client-ip')!.detail, /at connection time, from the PROXY header/);
  assert.match(hop(r, 'route')!.detail, /passes through .* to app-vault-8200.*do not apply/);
  assert.equal(hop(r, 'backend')?.sees, '127.0.30.1', "the gateway pod's address");
  assert.match(
    r.summary,
    /^TLS passes through to the backend \(ssl-passthrough allowlist 127\.0\.20\.10\/32\), the gateway sees 127\.0\.20\.10/,
  );
  assert.deepEqual(ids(r), ['SSL_PASSTHROUGH_BACKEND_SEES_GATEWAY:info']);
  assert.deepEqual(r.clientAnswer, { protocols: [], grpc: null });
  assert.equal(r.exitCode, 0);
});

test('enabled: a client outside the allowlist is closed at connection time, before the backend', () => {
  const r = doctor(FIXTURE, { client: STRANGER }, ON);
  assert.equal(r.verdict, 'connection-closed');
  assert.equal(r.status, null);
  assert.equal(r.decidedBy, 'ssl-passthrough allowlist-miss');
  assert.equal(r.simulation?.gatewayLogsAddress, STRANGER, 'the stream access log line names the client');
  assert.equal(hop(r, 'backend'), undefined, 'nothing reaches the backend');
  assert.match(
    hop(r, 'policy')!.detail,
    /^deny at connection time: .*closed before any byte reaches app-vault-8200 \(logged with status 403\)/,
  );
  assert.deepEqual(ids(r), [], 'the backend is not reached: its view does not matter here');
  assert.equal(r.exitCode, 1);
  assert.doesNotMatch(renderText(r), /offered:/);
});

test('enabled, via an LB without PROXY protocol: the connection-time check sees the NLB, so the listed client is refused', () => {
  const r = doctor(WITHOUT_PROXY, { client: LAPTOP }, ON);
  assert.equal(r.verdict, 'connection-closed');
  assert.equal(hop(r, 'client-ip')?.sees, '127.0.10.1');
  assert.match(hop(r, 'client-ip')!.detail, /the TCP peer \(no PROXY header\)/);
  assert.equal(r.decidedBy, 'ssl-passthrough allowlist-miss');
  assert.ok(ids(r).includes('CLIENT_IP_LOST_AT_LB:error'), 'the same chain reasoning as for HTTP');
  // A forged X-Forwarded-For cannot help: there is no HTTP to read it from.
  const forged = doctor(WITHOUT_PROXY, { client: STRANGER, forwardedFor: LAPTOP }, ON);
  assert.equal(forged.verdict, 'connection-closed');
});

test('enabled: other paths, plain HTTP and other hosts', () => {
  const deep = doctor(FIXTURE, { client: LAPTOP, path: '/v1/sys/health' }, ON);
  assert.equal(deep.simulation?.passthrough, true);
  assert.match(hop(deep, 'route')!.detail, /\/v1\/sys\/health travels inside the TLS stream/);
  const plain = doctor(FIXTURE, { client: STRANGER, scheme: 'http' }, ON);
  assert.equal(plain.simulation?.passthrough, undefined);
  assert.equal(plain.verdict, 'denied-403', 'plain HTTP is served as for any host, with its lists');
  assert.ok(
    plain.hops.some((h) => /applies to TLS only: plain HTTP is served as for any host/.test(h.detail)),
  );
  // SNI is compared exactly: another name is not passed through.
  const other = doctor(FIXTURE, { client: LAPTOP, host: 'other.example.com', scheme: 'https' }, ON);
  assert.equal(other.simulation?.passthrough, undefined);
  assert.equal(other.verdict, 'not-found-404');
});

test('annotated but the Deployment runs without --enable-ssl-passthrough: TLS terminated, a warning with the fix', () => {
  const r = doctor(deployment(['--election-id=x']) + FIXTURE, { client: LAPTOP });
  assert.equal(r.simulation?.passthrough, undefined);
  assert.equal(r.verdict, 'allowed');
  assert.equal(r.status, 200, "keepip's own HTTP answer after terminating TLS");
  assert.match(hop(r, 'backend')!.detail, /X-Real-IP and X-Forwarded-For 127\.0\.20\.10/);
  assert.deepEqual(ids(r), ['SSL_PASSTHROUGH_NOT_ENABLED:warning']);
  const f = r.findings[0]!;
  assert.match(
    f.message,
    /runs without --enable-ssl-passthrough \(Deployment ingress-nginx\/ingress-nginx-controller args\)/,
  );
  assert.match(f.message, /G11/);
  assert.match(f.fix!.summary, /controller\.extraArgs: \{enable-ssl-passthrough: ""\}/);
  assert.match(
    f.fix!.summary,
    /kubectl -n ingress-nginx patch deployment ingress-nginx-controller --type=json/,
  );
  assert.deepEqual(f.subject, { kind: 'Ingress', namespace: 'app', name: 'vault' });
  // The audit (no --client) reports it too.
  const audit = doctor(deployment([]) + FIXTURE, { host: undefined } as DiagnoseOptions);
  assert.ok(ids(audit).includes('SSL_PASSTHROUGH_NOT_ENABLED:warning'));
});

test("the controller's args: bare flag and =true enable it, =false and absence do not, no workload is unknown", () => {
  const flag = (yaml: string) => passthroughFlagOf(parseManifestText(yaml, 't.yaml').objects).enabled;
  assert.equal(flag(deployment(['--enable-ssl-passthrough'])), true);
  assert.equal(flag(deployment(['--enable-ssl-passthrough=true'])), true);
  assert.equal(flag(deployment(['--enable-ssl-passthrough=false'])), false);
  assert.equal(flag(deployment(['--enable-ssl-passthrough=bogus'])), false);
  assert.equal(flag(deployment([])), false);
  assert.equal(flag(FIXTURE), null);
  // keepip's own manifests: `controller` and its flags.
  const keepip = deployment(['--enable-ssl-passthrough']).replace('/nginx-ingress-controller', 'controller');
  assert.equal(flag(keepip), true);
  const r = doctor(deployment(['--enable-ssl-passthrough']) + FIXTURE, { client: LAPTOP });
  assert.equal(r.simulation?.passthrough, true, 'the Deployment says it is on');
});

test('the flag unknown: the default (terminated) is simulated and the passthrough case is told, for this client', () => {
  const denied = doctor(FIXTURE, { client: STRANGER });
  assert.equal(denied.verdict, 'denied-403');
  assert.deepEqual(ids(denied), ['SSL_PASSTHROUGH_FLAG_UNKNOWN:info']);
  const m = denied.findings[0]!.message;
  assert.match(m, /the controller's flags are unknown/);
  assert.match(m, /Without --enable-ssl-passthrough \(the default, and what the doctor simulates\)/);
  assert.match(
    m,
    /127\.0\.20\.99, checked as 127\.0\.20\.99, is refused at connection time \(ssl-passthrough allowlist-miss\)/,
  );
  const allowed = doctor(FIXTURE, { client: LAPTOP });
  assert.match(allowed.findings[0]!.message, /is admitted at connection time .* sees the gateway pod/);
  const json = JSON.parse(renderJson(allowed)) as { findings: { id: string; severity: string }[] };
  assert.deepEqual(
    json.findings.map((f) => f.id),
    ['SSL_PASSTHROUGH_FLAG_UNKNOWN'],
  );
});
