// The doctor with two controllers (docs/doctor.md, "ssl-passthrough"; G10, G11): the controller that
// serves each Ingress's class decides --enable-ssl-passthrough, not the first one in the manifests; a
// class no controller serves stays unknown with the reason. Fixture: test/fixtures/doctor-parts/two-controllers
// (external controller, class nginx, passthrough off, first in the file; internal one, class
// internal-nginx, passthrough on; IngressClass other served by none). It completes
// doctor/ssl-passthrough's manifests, so it is not a fixture of its own: test/fixtures/doctor/ holds
// only complete chains, each also played through keepip up (test/e2e/doctor-agrees-with-up.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { diagnose } from '../../src/doctor/diagnose.ts';
import { controllersFor, controllerWorkloads } from '../../src/doctor/controllers.ts';
import { passthroughFlagOf, passthroughFlagsOf } from '../../src/doctor/passthrough.ts';
import { renderJson } from '../../src/doctor/report.ts';
import type { DoctorReport } from '../../src/doctor/types.ts';
import { parseManifestText } from '../../src/k8s/load.ts';
import type { ManifestObject } from '../../src/k8s/objects.ts';
import { buildTopology } from '../../src/k8s/translate.ts';
import { runKeepip } from '../helpers/process.ts';

const fixtures = fileURLToPath(new URL('../fixtures/doctor/', import.meta.url));
const read = (f: string) => readFileSync(`${fixtures}${f}`, 'utf8');
const parts = fileURLToPath(new URL('../fixtures/doctor-parts/', import.meta.url));
const readPart = (f: string) => readFileSync(`${parts}${f}`, 'utf8');
const CHAIN = read('ssl-passthrough/ingress-nginx.yaml');
const TWO = `${CHAIN}---\n${readPart('two-controllers/controllers.yaml')}---\n${readPart('two-controllers/apps.yaml')}`;
const LAPTOP = '127.0.20.10';
const EXTERNAL = 'Deployment ingress-nginx/ingress-nginx-controller';
const INTERNAL = 'Deployment ingress-nginx/ingress-nginx-internal-controller';

function objects(yaml: string): ManifestObject[] {
  const loaded = parseManifestText(yaml, 'test.yaml');
  assert.deepEqual(loaded.issues, []);
  return loaded.objects;
}

/** What the doctor CLI does: each Ingress's flag from its controller, the topology built with them. */
function doctor(yaml: string, ingressClass: string, host: string, client?: string): DoctorReport {
  const all = objects(yaml);
  const flags = passthroughFlagsOf(all);
  const topology = buildTopology(all, {
    ingressClass,
    enableSslPassthrough: (ingress) => flags(ingress).enabled === true,
  });
  const result = diagnose(topology, { host, sslPassthrough: flags, ...(client ? { client } : {}) });
  assert.ok(result.ok);
  return result.report;
}

const ids = (r: DoctorReport) => r.findings.map((f) => `${f.id}:${f.severity}`);

test("two controllers: the internal class's Ingress gets the internal controller's answer (on), though the external one comes first", () => {
  const r = doctor(TWO, 'internal-nginx', 'secrets.internal.example.com', LAPTOP);
  assert.equal(r.simulation?.passthrough, true);
  assert.equal(r.verdict, 'allowed');
  assert.equal(r.decidedBy, 'ssl-passthrough allowlist 127.0.20.10/32');
  const route = r.hops.find((h) => h.name === 'route');
  assert.match(
    route!.detail,
    new RegExp(`passes through \\(ssl-passthrough, app/secrets, on the controller ${INTERNAL}, G10\\)`),
  );
  assert.deepEqual(ids(r), ['SSL_PASSTHROUGH_BACKEND_SEES_GATEWAY:info']);
  assert.match(r.findings[0]!.message, new RegExp(`on the controller ${INTERNAL}`));
  assert.equal(r.exitCode, 0);
});

test("two controllers: the default class's Ingress gets the external controller's answer (off), with its name and its fix", () => {
  const r = doctor(TWO, 'nginx', 'vault.example.com', LAPTOP);
  assert.equal(r.simulation?.passthrough, undefined, 'TLS terminated by keepip');
  assert.equal(r.status, 200);
  assert.deepEqual(ids(r), ['SSL_PASSTHROUGH_NOT_ENABLED:warning']);
  const f = r.findings[0]!;
  assert.match(
    f.message,
    new RegExp(
      `but the controller ${EXTERNAL} runs without --enable-ssl-passthrough \\(${EXTERNAL} args: the controller of Ingress app/vault's IngressClass "nginx" with spec\\.controller k8s\\.io/ingress-nginx\\)`,
    ),
  );
  assert.match(
    f.fix!.summary,
    /kubectl -n ingress-nginx patch deployment ingress-nginx-controller --type=json/,
  );
  assert.doesNotMatch(f.message, /internal/);
});

test("two controllers: each Ingress's flag comes from its own controller, and no single flag answers for both", () => {
  const all = objects(TWO);
  const flags = passthroughFlagsOf(all);
  assert.equal(flags({ namespace: 'app', name: 'vault' }).enabled, false);
  assert.equal(flags({ namespace: 'app', name: 'secrets' }).enabled, true);
  assert.deepEqual(flags({ namespace: 'app', name: 'secrets' }).workload, {
    kind: 'Deployment',
    namespace: 'ingress-nginx',
    name: 'ingress-nginx-internal-controller',
  });
  assert.equal(flags({ namespace: 'app', name: 'legacy' }).enabled, null);
  // The first controller alone no longer answers for everyone.
  assert.equal(passthroughFlagOf(all).enabled, null);
  assert.match(passthroughFlagOf(all).source, /the manifests hold 2 controllers/);
});

test('an Ingress whose class no controller serves: unknown, and the finding says why', () => {
  const r = doctor(TWO, 'other', 'legacy.example.com', LAPTOP);
  assert.equal(r.simulation?.passthrough, undefined);
  assert.deepEqual(ids(r), ['SSL_PASSTHROUGH_FLAG_UNKNOWN:info']);
  assert.match(
    r.findings[0]!.message,
    /which controller serves Ingress app\/legacy is not known: no controller in the manifests serves its IngressClass "other" with spec\.controller example\.com\/other-controller \(Deployment ingress-nginx\/ingress-nginx-controller: --controller-class=k8s\.io\/ingress-nginx --ingress-class=nginx; Deployment ingress-nginx\/ingress-nginx-internal-controller: --controller-class=k8s\.io\/internal-ingress-nginx --ingress-class=internal-nginx\)/,
  );
  const json = JSON.parse(renderJson(r)) as { findings: { id: string; message: string }[] };
  assert.deepEqual(
    json.findings.map((f) => f.id),
    ['SSL_PASSTHROUGH_FLAG_UNKNOWN'],
  );
});

/** One Ingress asking for passthrough, with these class fields. */
function ingress(meta: string, spec: string): string {
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app, namespace: app${meta}}
spec: {${spec}rules: [{host: a.example.com}]}
`;
}
const CONTROLLERS = readPart('two-controllers/controllers.yaml');

function match(yaml: string): string {
  const all = objects(yaml);
  const controllers = controllerWorkloads(all);
  const ing = all.find((o) => o.kind === 'Ingress')!;
  const m = controllersFor(
    ing,
    all.filter((o) => o.kind === 'IngressClass'),
    controllers,
  );
  return m.kind === 'served' ? m.controllers.map((c) => c.name).join(',') : `unmatched: ${m.reason}`;
}

test("ingress-nginx's class rule over the manifests: ingressClassName, the legacy annotation, the default IngressClass, without class", () => {
  const internal = 'ingress-nginx-internal-controller';
  const external = 'ingress-nginx-controller';
  assert.equal(match(`${CONTROLLERS}---\n${ingress('', 'ingressClassName: internal-nginx, ')}`), internal);
  assert.equal(match(`${CONTROLLERS}---\n${ingress('', 'ingressClassName: nginx, ')}`), external);
  // The legacy annotation is matched against --ingress-class.
  const legacy = (v: string) => `, annotations: {kubernetes.io/ingress.class: ${v}}`;
  assert.equal(match(`${CONTROLLERS}---\n${ingress(legacy('internal-nginx'), '')}`), internal);
  assert.match(
    match(`${CONTROLLERS}---\n${ingress(legacy('gce'), '')}`),
    /^unmatched: .*kubernetes\.io\/ingress\.class: "gce"/,
  );
  // No class: the default IngressClass is set on it, as admission does.
  const defaulted = CONTROLLERS.replace(
    'name: internal-nginx\n',
    'name: internal-nginx\n  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}\n',
  );
  assert.equal(match(`${defaulted}---\n${ingress('', '')}`), internal);
  const twoDefaults = defaulted.replace(
    'name: nginx\n',
    'name: nginx\n  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}\n',
  );
  assert.match(
    match(`${twoDefaults}---\n${ingress('', '')}`),
    /^unmatched: .*2 IngressClasses are marked default \(internal-nginx, nginx\), not all with a creationTimestamp/,
  );
  // With creation times, the newest default is the one the API server sets.
  const dated = (newer: string) =>
    twoDefaults
      .replace(`name: ${newer}\n`, `name: ${newer}\n  creationTimestamp: "2025-06-01T00:00:00Z"\n`)
      .replace(/name: (nginx|internal-nginx)\n {2}annotations/g, (line, name) =>
        name === newer ? line : line.replace('\n', '\n  creationTimestamp: "2025-01-01T00:00:00Z"\n'),
      );
  assert.equal(match(`${dated('nginx')}---\n${ingress('', '')}`), external);
  assert.equal(match(`${dated('internal-nginx')}---\n${ingress('', '')}`), internal);
  // No class and no default: only --watch-ingress-without-class takes it.
  assert.match(
    match(`${CONTROLLERS}---\n${ingress('', '')}`),
    /^unmatched: no controller .* serves its no class/,
  );
  const watching = CONTROLLERS.replace(
    '- --enable-ssl-passthrough',
    '- --enable-ssl-passthrough\n            - --watch-ingress-without-class',
  );
  assert.equal(match(`${watching}---\n${ingress('', '')}`), internal);
  // An IngressClass the manifests do not hold, with two controllers: which one cannot be told.
  assert.match(
    match(`${CONTROLLERS}---\n${ingress('', 'ingressClassName: missing, ')}`),
    /^unmatched: IngressClass "missing" is not in the manifests, so which of the 2 controllers serves it cannot be told/,
  );
  // ... unless one controller takes it by name (--ingress-class-by-name).
  const byName = CONTROLLERS.replace(
    '--ingress-class=internal-nginx',
    '--ingress-class=missing\n            - --ingress-class-by-name',
  );
  assert.equal(match(`${byName}---\n${ingress('', 'ingressClassName: missing, ')}`), internal);
});

test('two controllers serving the same class: agreeing ones answer, disagreeing ones leave it unknown', () => {
  const same = CONTROLLERS.replace(
    '--controller-class=k8s.io/internal-ingress-nginx',
    '--controller-class=k8s.io/ingress-nginx',
  );
  const yaml = (controllers: string) => `${controllers}---\n${ingress('', 'ingressClassName: nginx, ')}`;
  const flag = (text: string) => passthroughFlagsOf(objects(text))({ namespace: 'app', name: 'app' });
  const disagree = flag(yaml(same));
  assert.equal(disagree.enabled, null);
  assert.match(
    disagree.source,
    /served by 2 controllers that disagree \(.*ingress-nginx-controller without it, .*ingress-nginx-internal-controller with it\)/,
  );
  const agree = flag(
    yaml(
      same.replace('--ingress-class=nginx', '--ingress-class=nginx\n            - --enable-ssl-passthrough'),
    ),
  );
  assert.equal(agree.enabled, true);
});

test('one controller: its args decide as before, also when the IngressClass is not in the manifests', () => {
  const single = CONTROLLERS.split('---\n')
    .filter((d) => !d.includes('internal-controller') && !d.includes('kind: IngressClass'))
    .join('---\n');
  const flag = passthroughFlagsOf(objects(`${single}---\n${ingress('', 'ingressClassName: nginx, ')}`))({
    namespace: 'app',
    name: 'app',
  });
  assert.equal(flag.enabled, false);
  assert.equal(flag.source, `${EXTERNAL} args`);
});

test('keepip doctor -f with two controllers: each class gets its own controller (text and --json)', async () => {
  const files = [
    '-f',
    'test/fixtures/doctor/ssl-passthrough/ingress-nginx.yaml',
    '-f',
    'test/fixtures/doctor-parts/two-controllers',
  ];
  const internal = await runKeepip([
    'doctor',
    ...files,
    '--ingress-class',
    'internal-nginx',
    '--host',
    'secrets.internal.example.com',
    '--client',
    LAPTOP,
  ]);
  assert.equal(internal.code, 0, internal.stderr);
  assert.match(internal.stdout.split('\n')[0]!, /^keepip doctor: TLS passes through to the backend/);
  assert.match(internal.stdout, /i INFO SSL_PASSTHROUGH_BACKEND_SEES_GATEWAY/);
  const external = await runKeepip(['doctor', ...files, '--host', 'vault.example.com', '--json']);
  assert.equal(external.code, 0, external.stderr);
  const report = JSON.parse(external.stdout);
  assert.equal(report.schema, 'keepip.doctor/v1');
  const warning = report.findings.find((f: { id: string }) => f.id === 'SSL_PASSTHROUGH_NOT_ENABLED');
  assert.match(
    warning.message,
    /but the controller Deployment ingress-nginx\/ingress-nginx-controller runs without/,
  );
  assert.deepEqual(warning.subject, { kind: 'Ingress', namespace: 'app', name: 'vault' });
  const other = await runKeepip(['doctor', ...files, '--ingress-class', 'other', '--json']);
  const unknown = JSON.parse(other.stdout).findings.find(
    (f: { id: string }) => f.id === 'SSL_PASSTHROUGH_FLAG_UNKNOWN',
  );
  assert.match(
    unknown.message,
    /which controller serves Ingress app\/legacy is not known: no controller in the manifests serves its IngressClass "other"/,
  );
});
