// `keepip doctor` on a passthrough host through bin/keepip: the text and --json, with and without
// --enable-ssl-passthrough (the fixture holds no controller Deployment, so the flag is unknown).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runKeepip } from '../helpers/process.ts';

const FIXTURE = 'test/fixtures/doctor/ssl-passthrough';
const ASK = ['doctor', '-f', FIXTURE, '--host', 'vault.example.com'];

test('--enable-ssl-passthrough: the text says TLS passes through, the check is at connection time, the backend sees the pod', async () => {
  const allowed = await runKeepip([...ASK, '--client', '127.0.20.10', '--enable-ssl-passthrough']);
  assert.equal(allowed.code, 0, allowed.stderr);
  const lines = allowed.stdout.split('\n');
  assert.match(
    lines[0]!,
    /^keepip doctor: TLS passes through to the backend \(ssl-passthrough allowlist 127\.0\.20\.10\/32\), the gateway sees 127\.0\.20\.10; the backend sees the gateway pod, not the client$/,
  );
  assert.match(lines[1]!, /request: https:\/\/vault\.example\.com\/ from 127\.0\.20\.10/);
  assert.match(allowed.stdout, /^ {2}backend +127\.0\.30\.1 +app-vault-8200 terminates the TLS itself/m);
  assert.match(allowed.stdout, /=> the backend's own answer \(allowed\)/);
  assert.match(allowed.stdout, /i INFO SSL_PASSTHROUGH_BACKEND_SEES_GATEWAY/);
  const denied = await runKeepip([...ASK, '--client', '127.0.20.99', '--enable-ssl-passthrough', '--json']);
  assert.equal(denied.code, 1);
  const report = JSON.parse(denied.stdout);
  assert.equal(report.schema, 'keepip.doctor/v1');
  assert.equal(report.verdict, 'connection-closed');
  assert.equal(report.status, null);
  assert.equal(report.decidedBy, 'ssl-passthrough allowlist-miss');
  assert.equal(report.request.scheme, 'https');
  assert.equal(report.gatewayLogsAddress, '127.0.20.99');
  assert.deepEqual(
    report.hops.map((h: { name: string; sees: string | null }) => [h.name, h.sees]),
    [
      ['client', '127.0.20.99'],
      ['load-balancer', '127.0.20.99'],
      ['gateway', '127.0.10.1'],
      ['client-ip', '127.0.20.99'],
      ['route', '127.0.20.99'],
      ['policy', '127.0.20.99'],
    ],
  );
  assert.deepEqual(report.clientAnswer, { protocols: [], grpc: null });
});

test('without the flag: TLS terminated as today, and an info finding tells the passthrough case (text and JSON)', async () => {
  const text = await runKeepip([...ASK, '--client', '127.0.20.99']);
  assert.equal(text.code, 1);
  assert.match(
    text.stdout.split('\n')[0]!,
    /^keepip doctor: 403 Forbidden: denied by allowlist-miss, the gateway sees 127\.0\.20\.99$/,
  );
  assert.match(text.stdout, /i INFO SSL_PASSTHROUGH_FLAG_UNKNOWN/);
  assert.match(text.stdout, /SSL_PASSTHROUGH_IGNORED/);
  const json = await runKeepip([...ASK, '--client', '127.0.20.10', '--json']);
  assert.equal(json.code, 0);
  const report = JSON.parse(json.stdout);
  assert.equal(report.status, 200);
  const finding = report.findings.find((f: { id: string }) => f.id === 'SSL_PASSTHROUGH_FLAG_UNKNOWN');
  assert.equal(finding.severity, 'info');
  assert.match(
    finding.message,
    /is admitted at connection time \(ssl-passthrough allowlist 127\.0\.20\.10\/32\)/,
  );
  assert.deepEqual(finding.subject, { kind: 'Ingress', namespace: 'app', name: 'vault' });
  assert.equal(finding.fix, null);
});
