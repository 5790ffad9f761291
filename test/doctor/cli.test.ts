// `keepip doctor` end to end through bin/keepip: verdict first, JSON schema, exit codes, usage errors.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HIDDEN_FAULT, hiddenFaultManifests } from '../helpers/hidden-fault.ts';
import { runKeepip } from '../helpers/process.ts';

const before = 'examples/seed/before';
const after = 'examples/seed/after';

test('the seed: the text starts with the verdict and shows the address at each hop; exit 1', async () => {
  const { code, stdout } = await runKeepip([
    'doctor',
    '-f',
    before,
    '--client',
    '127.0.20.10',
    '--host',
    'gitea.example.com',
  ]);
  assert.equal(code, 1);
  const lines = stdout.split('\n');
  assert.match(
    lines[0]!,
    /^keepip doctor: 403 Forbidden: denied by allowlist-miss, the gateway sees 127\.0\.10\.1$/,
  );
  assert.match(stdout, /^ {2}load-balancer +127\.0\.20\.10 /m);
  assert.match(stdout, /^ {2}gateway +127\.0\.10\.1 /m);
  assert.match(stdout, /x ERROR CLIENT_IP_LOST_AT_LB/);
  assert.match(stdout, /x ERROR CLIENT_VIA_TRANSIT_GATEWAY/);
  assert.match(stdout, /\$ kubectl -n ingress-nginx patch configmap ingress-nginx-controller --type merge/);
});

test('--json follows the documented schema; the fixed seed passes with exit 0', async () => {
  const { code, stdout } = await runKeepip(['doctor', '-f', after, '--client', '127.0.20.10', '--json']);
  assert.equal(code, 0);
  const report = JSON.parse(stdout);
  assert.equal(report.schema, 'keepip.doctor/v1');
  assert.equal(report.verdict, 'allowed');
  assert.equal(report.status, 200);
  assert.equal(report.request.host, 'gitea.example.com', 'the host with an access list is the default');
  assert.equal(report.gatewayLogsAddress, '127.0.20.10');
  assert.deepEqual(
    report.hops.map((h: { name: string; sees: string | null }) => [h.name, h.sees]),
    [
      ['client', '127.0.20.10'],
      ['network', '127.0.20.10'],
      ['load-balancer', '127.0.20.10'],
      ['gateway', '127.0.10.1'],
      ['client-ip', '127.0.20.10'],
      ['route', '127.0.20.10'],
      ['policy', '127.0.20.10'],
      ['backend', '127.0.20.10'],
    ],
  );
  assert.deepEqual(report.findings, []);
  for (const key of [
    'mode',
    'summary',
    'decidedBy',
    'via',
    'loadBalancer',
    'audit',
    'configIssues',
    'exitCode',
  ]) {
    assert.ok(key in report, key);
  }
});

test('without --client: audit JSON and exit 1 while an error finding stands', async () => {
  const { code, stdout } = await runKeepip(['doctor', '-f', before, '--json']);
  assert.equal(code, 1);
  const report = JSON.parse(stdout);
  assert.equal(report.mode, 'audit');
  assert.equal(report.verdict, 'problems');
  assert.equal(report.audit[0].recognised, false);
  const finding = report.findings.find((f: { id: string }) => f.id === 'CLIENT_IP_LOST_AT_LB');
  assert.equal(finding.severity, 'error');
  assert.ok(
    finding.fix.patches.every(
      (p: { yaml: string; kubectl: string }) => p.yaml && p.kubectl.startsWith('kubectl '),
    ),
  );
});

test('--via overrides the annotation', async () => {
  const { stdout } = await runKeepip([
    'doctor',
    '-f',
    before,
    '--client',
    '127.0.20.10',
    '--via',
    'direct',
    '--json',
  ]);
  const report = JSON.parse(stdout);
  assert.equal(report.via, 'direct');
  assert.ok(!report.findings.some((f: { id: string }) => f.id === 'CLIENT_VIA_TRANSIT_GATEWAY'));
  assert.ok(report.findings.some((f: { id: string }) => f.id === 'CLIENT_IP_LOST_AT_LB'));
});

test('usage errors exit 2 with a message; --help exits 0', async () => {
  for (const [args, message] of [
    [['doctor'], /give manifests/],
    [['doctor', '-f', before, '--client', '010.0.0.1'], /not an IP address/],
    [['doctor', '-f', before, '--via', 'carrier-pigeon'], /--via must be one of/],
    [['doctor', '-f', before, '--from', '127.0.0.1'], /--from only applies to --probe/],
    [['doctor', '--probe', 'ftp://x'], /not an http\(s\) URL/],
    [['doctor', '--bogus'], /Unknown option/],
  ] as const) {
    const { code, stderr } = await runKeepip([...args]);
    assert.equal(code, 2, args.join(' '));
    assert.match(stderr, message);
  }
  const help = await runKeepip(['doctor', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--probe URL/);
});

test('unreadable manifests: exit 1 naming the file', async () => {
  const { code, stderr } = await runKeepip(['doctor', '-f', 'test/fixtures/doctor/does-not-exist']);
  assert.equal(code, 1);
  assert.match(stderr, /does-not-exist/);
});

test('a fault the first one hides (G2 400 before any X-Forwarded-For is read) is reported with its fix, as what the fix reveals', async () => {
  const dir = await hiddenFaultManifests();
  try {
    const args = ['doctor', '-f', dir, '--client', '127.0.20.10', '--host', 'gitea.example.com'];
    const text = await runKeepip(args);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /x ERROR PROXY_PROTOCOL_SENT_NOT_EXPECTED/);
    assert.match(
      text.stdout,
      /Once those fixes are applied, 1 more finding\(s\) show[\s\S]*x ERROR FORWARDED_HEADERS_SPOOFABLE/,
    );
    const json = JSON.parse((await runKeepip([...args, '--json'])).stdout);
    assert.deepEqual(
      json.findings.map((f: { id: string }) => f.id),
      HIDDEN_FAULT.findings,
    );
    assert.deepEqual(
      json.afterFix.map((f: { id: string; fix: { patches: { patch: unknown }[] } }) => [
        f.id,
        f.fix.patches[0]?.patch,
      ]),
      HIDDEN_FAULT.afterFix,
    );
    const clean = JSON.parse(
      (await runKeepip(['doctor', '-f', after, '--client', '127.0.20.10', '--json'])).stdout,
    );
    assert.deepEqual(clean.afterFix, []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('--proxy-header-for: a PROXY header the client writes itself is believed where nothing in front writes one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keepip-doctor-'));
  try {
    await cp(after, dir, { recursive: true });
    const file = join(dir, 'ingress-nginx.yaml');
    // The gateway still expects PROXY from the NLB, but the NLB no longer sends it.
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace(
        /^ +service\.beta\.kubernetes\.io\/aws-load-balancer-proxy-protocol: .*\n/m,
        '',
      ),
    );
    const ask = (extra: string[]) =>
      runKeepip([
        'doctor',
        '-f',
        dir,
        '--client',
        '127.0.20.99',
        '--host',
        'gitea.example.com',
        '--json',
        ...extra,
      ]);
    const honest = JSON.parse((await ask([])).stdout);
    assert.equal(honest.verdict, 'connection-closed');
    assert.match(
      honest.findings.find((f: { id: string }) => f.id === 'PROXY_PROTOCOL_EXPECTED_NOT_SENT').message,
      /a PROXY header of its own is believed/,
    );
    const forged = JSON.parse((await ask(['--proxy-header-for', '127.0.20.10'])).stdout);
    assert.equal(forged.status, 200, 'the allowlisted address, claimed by a stranger');
    assert.equal(forged.gatewayLogsAddress, '127.0.20.10');
    const bad = await ask(['--proxy-header-for', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--proxy-header-for "nope" is not an IP address/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('without --client: a manifest error (a location that fails closed) is a problem too, exit 1', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'keepip-doctor-manifest-error-'));
  try {
    await cp('test/fixtures/doctor/clean', dir, { recursive: true });
    const broken = `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: broken
  namespace: app
  annotations:
    nginx.ingress.kubernetes.io/limit-rps: "1.5"
spec:
  ingressClassName: nginx
  rules:
    - host: broken.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`;
    await writeFile(join(dir, 'broken.yaml'), broken);
    const clean = await runKeepip(['doctor', '-f', 'test/fixtures/doctor/clean', '--json']);
    assert.equal(clean.code, 0, 'the fixture alone is clean');
    const { code, stdout } = await runKeepip(['doctor', '-f', dir, '--json']);
    const report = JSON.parse(stdout);
    assert.equal(code, 1);
    assert.equal(report.verdict, 'problems');
    assert.deepEqual(report.findings, []);
    assert.match(report.summary, /1 manifest error/);
    assert.ok(report.configIssues.some((i: { code: string }) => i.code === 'ACCESS_CONFIG_DENIED'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
