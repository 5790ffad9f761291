// annotations-risk-level and annotation-value-word-blocklist: an Ingress over the administrator's limits
// is not served at all (and refused at admission, test/security/admission-differential-ingress-nginx),
// as ingress-nginx 1.12+ does; the other Ingresses are served as before.
import assert from 'node:assert/strict';
import http from '../../src/node-http.ts';
import { after, before, describe, it } from 'node:test';
import {
  ANNOTATION_RISK,
  annotationPolicyRefusals,
  readRiskLevel,
  readWordBlocklist,
} from '../../src/k8s/annotation-risk.ts';
import { ANNOTATION_CATALOG } from '../../src/k8s/annotation-catalog.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf as fixtureTopology,
} from '../fixtures/gateway/manifests.ts';
import { listenTracked } from '../helpers/net.ts';
import { configMap, configMapSettings, ingress as ingressYaml, service, topologyOf } from './helpers.ts';

const P = 'nginx.ingress.kubernetes.io/';

/** The hosts the topology serves, sorted. */
function servedHosts(yaml: string): { hosts: string[]; codes: string[]; fields: (string | null)[] } {
  const t = topologyOf(yaml);
  const risky = t.issues.filter(
    (i) => i.code === 'ANNOTATION_TOO_RISKY' || i.code === 'ANNOTATION_VALUE_BLOCKED',
  );
  return {
    hosts: t.gateway.virtualHosts.map((h) => h.host).sort(),
    codes: risky.map((i) => `${i.severity} ${i.code} ${i.origin?.name}`),
    fields: risky.map((i) => i.field ?? null),
  };
}

function two(data: Record<string, string> | null, risky: Record<string, string>): string {
  return (
    (data === null ? '' : configMap(data)) +
    ingressYaml({ name: 'plain', host: 'plain.test', annotations: { [`${P}ssl-redirect`]: 'false' } }) +
    ingressYaml({ name: 'risky', host: 'risky.test', annotations: risky }) +
    service('svc')
  );
}

describe('annotations-risk-level', () => {
  it("rates every ingress-nginx annotation keepip knows, and nothing else (ingress-nginx's parsers rate each)", () => {
    const catalog = ANNOTATION_CATALOG.flatMap((e) => e.names).sort();
    assert.deepEqual(Object.keys(ANNOTATION_RISK).sort(), catalog);
    for (const snippet of ['configuration-snippet', 'server-snippet', 'auth-snippet', 'stream-snippet'])
      assert.equal(ANNOTATION_RISK[snippet], 'Critical', snippet);
  });

  it('by default (High) an Ingress with a snippet is not served, with an error naming the annotation; the others are', () => {
    const r = servedHosts(two(null, { [`${P}configuration-snippet`]: 'allow 10.0.0.0/8; deny all;' }));
    assert.deepEqual(r.hosts, ['plain.test']);
    assert.deepEqual(r.codes, ['error ANNOTATION_TOO_RISKY risky']);
    assert.deepEqual(r.fields, [`metadata.annotations["${P}configuration-snippet"]`]);
    const refused = topologyOf(two(null, { [`${P}configuration-snippet`]: 'x' })).gateway.refusedIngresses;
    assert.deepEqual(refused, [
      {
        ingress: { namespace: 'default', name: 'risky' },
        hosts: ['risky.test'],
        code: 'ANNOTATION_TOO_RISKY',
        annotation: `${P}configuration-snippet`,
      },
    ]);
    // High annotations pass the default level.
    assert.deepEqual(servedHosts(two(null, { [`${P}auth-url`]: 'http://auth.test/' })).hosts, [
      'plain.test',
      'risky.test',
    ]);
  });

  it('each level refuses exactly the annotations rated above it, aliases included, in any case', () => {
    const cases: [string, string, boolean][] = [
      ['Medium', 'auth-url', false],
      ['medium', 'rewrite-target', true],
      ['MEDIUM', 'server-alias', false],
      ['Low', 'whitelist-source-range', false],
      ['Low', 'allowlist-source-range', false],
      ['Low', 'limit-whitelist', true],
      ['Low', 'ssl-redirect', true],
      ['Critical', 'server-snippet', true],
      ['High', 'mirror-target', true],
    ];
    for (const [level, name, served] of cases) {
      const value = name.includes('source-range') || name === 'limit-whitelist' ? '10.0.0.0/8' : '/x';
      const r = servedHosts(two({ 'annotations-risk-level': level }, { [P + name]: value }));
      assert.equal(r.hosts.includes('risky.test'), served, `${level} ${name}`);
      assert.ok(r.hosts.includes('plain.test'), `${level}: the other Ingress`);
    }
  });

  it('any other word is Low, as ingress-nginx reads it (warned): a Medium annotation keeps the Ingress out', () => {
    assert.deepEqual(readRiskLevel('hihg'), { level: 'Low', known: false });
    const { s, issues } = configMapSettings({ 'annotations-risk-level': 'hihg' });
    assert.equal(s.annotationsRiskLevel, 'Low');
    assert.match(
      issues.find((i) => i.code === 'INVALID_CONFIGMAP_VALUE')?.message ?? '',
      /"hihg".*read as Low \(not the default High\)/,
    );
    const r = servedHosts(two({ 'annotations-risk-level': 'hihg' }, { [`${P}rewrite-target`]: '/' }));
    assert.deepEqual(r.hosts, ['plain.test']);
  });

  it('a risk is checked only under the controller prefix, whatever the value', () => {
    const refusals = annotationPolicyRefusals(
      { 'example.com/configuration-snippet': 'x', [`${P}server-snippet`]: '' },
      { annotationsRiskLevel: 'High' },
    );
    assert.deepEqual(
      refusals.map((r) => [r.code, r.key]),
      [['ANNOTATION_TOO_RISKY', `${P}server-snippet`]],
    );
  });
});

describe('annotation-value-word-blocklist', () => {
  it('reads words as ingress-nginx admission does: trimmed, cut at commas, each trimmed, an empty one kept', () => {
    assert.deepEqual(readWordBlocklist(''), []);
    assert.deepEqual(readWordBlocklist(' load_module, lua_package ,'), ['load_module', 'lua_package', '']);
  });

  it('an annotation value with a blocked word keeps its Ingress out; other prefixes and clean values do not', () => {
    const data = { 'annotation-value-word-blocklist': 'load_module, evil' };
    const r = servedHosts(two(data, { [`${P}rewrite-target`]: '/evil/$1' }));
    assert.deepEqual(r.hosts, ['plain.test']);
    assert.deepEqual(r.codes, ['error ANNOTATION_VALUE_BLOCKED risky']);
    const other = servedHosts(two(data, { 'example.com/note': 'evil', [`${P}rewrite-target`]: '/ok' }));
    assert.deepEqual(other.hosts, ['plain.test', 'risky.test']);
  });

  it('an empty entry blocks every Ingress with an annotation of the prefix (strings.Contains(v, "") is true); one without is served', () => {
    const yaml =
      configMap({ 'annotation-value-word-blocklist': 'evil,' }) +
      ingressYaml({ name: 'bare', host: 'bare.test' }) +
      ingressYaml({
        name: 'annotated',
        host: 'annotated.test',
        annotations: { [`${P}ssl-redirect`]: 'false' },
      }) +
      service('svc');
    const r = servedHosts(yaml);
    assert.deepEqual(r.hosts, ['bare.test']);
    assert.deepEqual(r.codes, ['error ANNOTATION_VALUE_BLOCKED annotated']);
  });
});

describe('a live gateway under annotations-risk-level Medium', () => {
  let gw: TestGateway;
  let backend: Awaited<ReturnType<typeof listenTracked>>;
  before(async () => {
    backend = await listenTracked(http.createServer((_req, res) => res.end('backend')));
    const port = backend.port;
    gw = await startTestGateway(
      fixtureTopology([
        controllerConfigMap({ 'annotations-risk-level': 'Medium' }),
        ...serviceWithEndpoints({ name: 'app', ports: [port] }),
        ingress({ name: 'open', host: 'open.test', paths: [{ path: '/', service: 'app', port: 80 }] }),
        ingress({
          name: 'aliased',
          host: 'aliased.test',
          paths: [{ path: '/', service: 'app', port: 80 }],
          annotations: { 'server-alias': 'alias.test' },
        }),
      ]),
    );
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  it("the High (server-alias) Ingress's host and alias answer 404; the other host reaches its backend", async () => {
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.get(
          { host: '127.0.0.1', port: gw.httpPort, path: '/', headers: { host } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
      });
    assert.equal(await status('open.test'), 200);
    assert.equal(await status('aliased.test'), 404);
    assert.equal(await status('alias.test'), 404);
  });
});
