// Multi-tenant Ingress conflicts: tenant B, who may create Ingresses, Services and Secrets in its own
// namespace (team-b), tries to take over, shadow or weaken tenant A's (team-a) hosts and paths. Each
// outcome is checked on real sockets (which backend answered, which certificate came back) against
// ingress-nginx's merge rules (internal/ingress/controller/controller.go: sortIngressSlice,
// createServers, getBackendServers, mergeAlternativeBackends, updateServerLocations, checkOverlap);
// the webhook through reviewAdmission. Where ingress-nginx itself lets B do it, the test says "as
// ingress-nginx" and pins what keepip does.
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { reviewAdmission } from '../../src/controller/admission.ts';
import type { ClusterObjects } from '../../src/controller/snapshot.ts';
import { DEFAULT_SNAPSHOT_OPTIONS, EMPTY_CLUSTER, ingressReview, keyPair } from '../controller/harness.ts';
import { testCertificate } from '../fixtures/gateway/harness.ts';
import {
  ingress,
  type K8sObject,
  type PathSpec,
  serviceWithEndpoints,
  tlsSecret,
  toYaml,
  opaqueSecret,
} from '../fixtures/gateway/manifests.ts';
import { rawExchange } from '../helpers/net.ts';
import {
  type SecurityGateway,
  startSecurityGateway,
  topologyFromYaml,
  type NamedBackends,
  startNamedBackends,
} from './helpers.ts';

const ALLOWED = '127.0.0.70';
const STRANGER = '127.0.0.71';
const OLD = '2025-01-01T00:00:00Z';
const NEW = '2025-02-01T00:00:00Z';
const A = 'team-a';
const B = 'team-b';

type Backends = NamedBackends;

function startBackends(names: readonly string[]) {
  return startNamedBackends(names, (_name, url) => (url.includes('missing') ? 404 : 200));
}

interface Answer {
  status: number;
  /** x-backend of the answer: the backend that produced it; null for the gateway's own answers. */
  backend: string | null;
  text: string;
}

function answerOf(raw: Buffer): Answer {
  const text = raw.toString('latin1');
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
    backend: /\r\nx-backend: (\S+)/i.exec(text)?.[1] ?? null,
    text,
  };
}

/** One plain HTTP GET from `from`, on a fresh connection. */
async function get(port: number, from: string, host: string, target: string, extra = ''): Promise<Answer> {
  const reply = await rawExchange({
    host: '127.0.0.1',
    port,
    localAddress: from,
    payload: `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`,
    timeoutMs: 10_000,
  });
  return answerOf(reply.received);
}

/** A TLS connection with SNI `servername`: the certificate served, then (when `target`) one GET's answer. */
function tlsGet(
  port: number,
  servername: string,
  target: string | null,
): Promise<{ fingerprint: string; answer: Answer | null }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let fingerprint = '';
    const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      fingerprint = socket.getPeerCertificate().fingerprint256;
      if (target === null) {
        socket.end();
        return;
      }
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
    });
    const timer = setTimeout(() => socket.destroy(new Error('no answer within 10 s')), 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ fingerprint, answer: target === null ? null : answerOf(Buffer.concat(chunks)) });
    });
  });
}

function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** A Secret with string data (base64-encoded here). */

/** An Ingress of `namespace` for `host`, created at `createdAt`. */
function tenantIngress(
  namespace: string,
  name: string,
  host: string,
  paths: PathSpec[],
  createdAt: string,
  annotations: Record<string, string> = {},
  tls?: string,
): K8sObject {
  return ingress({
    namespace,
    name,
    host,
    paths,
    createdAt,
    annotations,
    ...(tls !== undefined ? { tlsSecret: tls } : {}),
  });
}

const to = (service: string, path = '/', pathType: PathSpec['pathType'] = 'Prefix'): PathSpec => ({
  path,
  pathType,
  service,
  port: 80,
});

/** alice:wonderland, as htpasswd's {SHA} line. */
const HTPASSWD = `alice:{SHA}${createHash('sha1').update('wonderland').digest('base64')}\n`;
const ALICE = `Authorization: Basic ${Buffer.from('alice:wonderland').toString('base64')}\r\n`;
const allowOnly = { 'whitelist-source-range': `${ALLOWED}/32` };

/** Tenant A's hosts and tenant B's attempts on them, one host per attack. */
function plainObjects(backends: Backends): K8sObject[] {
  const svc = (namespace: string, name: string, backend: string) =>
    serviceWithEndpoints({ namespace, name, ports: [backends.port(backend)] });
  return [
    ...svc(A, 'a-web', 'a-web'),
    // The canary's main Service: a canary attaches to the Service's upstream, every host of it included.
    ...svc(A, 'a-shared', 'a-web'),
    ...svc(B, 'b-web', 'b-web'),
    ...svc('shop', 'api-v1', 'shop'),
    ...svc('shop-api', 'v1', 'shopapi'),
    opaqueSecret('a-basic', { auth: HTPASSWD }, A),
    // Same host and path: the older Ingress (A) keeps it, annotations included.
    tenantIngress(A, 'a-same', 'same.example', [to('a-web')], OLD, allowOnly),
    tenantIngress(B, 'b-same', 'same.example', [to('b-web')], NEW, {
      'whitelist-source-range': '127.0.0.0/8',
      'ssl-redirect': 'false',
    }),
    // Equal timestamps: namespace/name descending (sortIngressSlice: `in > jn`).
    tenantIngress(A, 'web', 'tie.example', [to('a-web')], OLD),
    tenantIngress(B, 'web', 'tie.example', [to('b-web')], OLD),
    // A's /admin (allowlisted); B's "/admin/" is the same nginx location `/admin/`.
    tenantIngress(A, 'a-slash-admin', 'slash.example', [to('a-web', '/admin')], OLD, allowOnly),
    tenantIngress(A, 'a-slash-root', 'slash.example', [to('a-web')], OLD),
    tenantIngress(B, 'b-slash', 'slash.example', [to('b-web', '/admin/')], NEW),
    // A more specific path under A's "/".
    tenantIngress(A, 'a-sub', 'sub.example', [to('a-web')], OLD, allowOnly),
    tenantIngress(B, 'b-sub', 'sub.example', [to('b-web', '/admin')], NEW),
    // server-alias on B's own hosts naming A's.
    tenantIngress(A, 'a-alias', 'alias.example', [to('a-web')], OLD),
    tenantIngress(A, 'a-wild', '*.wild-a.example', [to('a-web')], OLD),
    ...['alias.example', 'ALIAS.EXAMPLE', '*.wild-a.example', '~^alias\\.example$', 'x.wild-a.example'].map(
      (alias, i) =>
        tenantIngress(B, `b-alias-${i}`, `b-alias-${i}.example`, [to('b-web')], NEW, {
          'server-alias': alias,
        }),
    ),
    // Error pages from another namespace's Service.
    tenantIngress(B, 'b-errors-ns', 'errors.example', [to('b-web')], NEW, {
      'custom-http-errors': '404',
      'default-backend': `${A}/a-web`,
    }),
    tenantIngress(B, 'b-errors-local', 'errors2.example', [to('b-web')], NEW, {
      'custom-http-errors': '404',
      'default-backend': 'a-web',
    }),
    // Secrets of another namespace.
    tenantIngress(A, 'a-basic', 'basic-a.example', [to('a-web')], OLD, {
      'auth-type': 'basic',
      'auth-secret': 'a-basic',
    }),
    tenantIngress(B, 'b-basic', 'secrets.example', [to('b-web', '/basic')], NEW, {
      'auth-type': 'basic',
      'auth-secret': `${A}/a-basic`,
    }),
    tenantIngress(B, 'b-pssl', 'secrets.example', [to('b-web', '/pssl')], NEW, {
      'backend-protocol': 'HTTPS',
      'proxy-ssl-secret': `${A}/a-basic`,
    }),
    // A canary of B's on A's host and path.
    tenantIngress(A, 'a-canary', 'canary.example', [to('a-shared')], OLD),
    tenantIngress(A, 'a-canary-other', 'canary-other.example', [to('a-shared', '/app')], OLD, allowOnly),
    tenantIngress(B, 'b-canary', 'canary.example', [to('b-web')], NEW, {
      canary: 'true',
      'canary-weight': '100',
    }),
    // Upstream names `<namespace>-<service>-<port>`: shop/api-v1 and shop-api/v1 are both shop-api-v1-80.
    tenantIngress('shop', 'shop', 'zz-shop.example', [to('api-v1')], OLD),
    tenantIngress('shop-api', 'tenant', 'aa-shop.example', [to('v1')], NEW),
    // use-regex from B makes every path of A's host a regex, tried longest first.
    tenantIngress(A, 'a-regex', 'regex.example', [to('a-web', '/admin')], OLD, allowOnly),
    tenantIngress(B, 'b-regex', 'regex.example', [to('b-web', '/.{0,100}', 'ImplementationSpecific')], NEW, {
      'use-regex': 'true',
    }),
  ];
}

describe('tenant B against tenant A on one gateway (plain HTTP, real sockets)', () => {
  let backends: Backends;
  let gw: SecurityGateway;
  let issues: string[] = [];

  before(async () => {
    backends = await startBackends(['a-web', 'b-web', 'shop', 'shopapi']);
    const topology = topologyFromYaml(toYaml(plainObjects(backends)));
    issues = topology.issues.map((i) => `${i.code} ${i.message}`);
    gw = await startSecurityGateway(topology);
  });
  after(async () => {
    await gw?.close();
    await backends?.close();
  });

  /** The requests `backend` served for `url` since `from`. */
  const servedSince = (mark: number, backend: string) =>
    backends.seen.slice(mark).filter((s) => s.backend === backend);

  it('same host and path: the newer Ingress (B) loses, and its looser allowlist does not apply to A', async () => {
    const mark = backends.seen.length;
    const stranger = await get(gw.port, STRANGER, 'same.example', '/');
    assert.equal(stranger.status, 403, stranger.text);
    const allowed = await get(gw.port, ALLOWED, 'same.example', '/');
    assert.equal(allowed.status, 200);
    assert.equal(allowed.backend, 'a-web');
    assert.equal(servedSince(mark, 'b-web').length, 0);
    assert.ok(issues.some((i) => /^DUPLICATE_PATH .*Ingress team-b\/b-same/.test(i)));
  });

  it('as ingress-nginx: equal creationTimestamps go by namespace/name descending, so team-b/web wins over team-a/web', async () => {
    const answer = await get(gw.port, STRANGER, 'tie.example', '/');
    assert.equal(answer.backend, 'b-web');
  });

  it("a newer Prefix path /admin/ does not take A's Prefix /admin (one nginx location `/admin/`): A's allowlist still answers", async () => {
    const mark = backends.seen.length;
    for (const target of ['/admin/users', '/admin/', '/admin']) {
      const answer = await get(gw.port, STRANGER, 'slash.example', target);
      assert.equal(answer.status, 403, `${target}: ${answer.status} from ${answer.backend}`);
    }
    assert.deepEqual(
      servedSince(mark, 'b-web').map((s) => s.url),
      [],
      "tenant B's backend answered A's /admin paths",
    );
  });

  it("as ingress-nginx: a more specific path (/admin) under A's / is B's, without A's allowlist; the rest stays A's", async () => {
    const admin = await get(gw.port, STRANGER, 'sub.example', '/admin/x');
    assert.equal(admin.backend, 'b-web');
    const other = await get(gw.port, STRANGER, 'sub.example', '/other');
    assert.equal(other.status, 403);
    assert.equal(other.backend, null);
  });

  it("server-alias on B's own hosts never takes a name of A's (exact, another case, the same wildcard, a ~regex)", async () => {
    for (const host of ['alias.example', 'ALIAS.EXAMPLE', 'alias.example.', 'y.wild-a.example']) {
      const answer = await get(gw.port, STRANGER, host, '/');
      assert.equal(answer.backend, 'a-web', host);
    }
  });

  it("as ingress-nginx: B's exact server-alias x.wild-a.example beats A's *.wild-a.example (an exact name before a wildcard)", async () => {
    const answer = await get(gw.port, STRANGER, 'x.wild-a.example', '/');
    assert.equal(answer.backend, 'b-web');
  });

  it("default-backend naming A's Service (team-a/a-web, or a-web from team-b) never sends B's error pages to A's backend", async () => {
    const mark = backends.seen.length;
    for (const host of ['errors.example', 'errors2.example']) {
      const answer = await get(gw.port, STRANGER, host, '/missing');
      assert.notEqual(answer.backend, 'a-web', host);
    }
    assert.deepEqual(servedSince(mark, 'a-web'), []);
    assert.ok(issues.some((i) => /Ingress team-b\/b-errors-local.*Service team-b\/a-web/.test(i)));
  });

  it("auth-secret and proxy-ssl-secret naming A's Secret from team-b deny B's locations (503); A's credentials open only A's host", async () => {
    const mark = backends.seen.length;
    for (const target of ['/basic', '/pssl']) {
      const answer = await get(gw.port, STRANGER, 'secrets.example', target, ALICE);
      assert.equal(answer.status, 503, target);
    }
    assert.deepEqual(servedSince(mark, 'b-web'), []);
    const own = await get(gw.port, STRANGER, 'basic-a.example', '/', ALICE);
    assert.equal(own.backend, 'a-web');
    assert.ok(issues.some((i) => /^ACCESS_CONFIG_DENIED .*team-b\/b-basic.*another namespace/.test(i)));
  });

  it("as ingress-nginx (mergeAlternativeBackends checks no namespace): B's canary with weight 100 takes A's Service, on A's every host", async () => {
    const canary = await get(gw.port, STRANGER, 'canary.example', '/');
    assert.equal(canary.backend, 'b-web');
    // A's other host of the same Service: its allowlist still applies, then the canary serves.
    assert.equal((await get(gw.port, STRANGER, 'canary-other.example', '/app')).status, 403);
    const other = await get(gw.port, ALLOWED, 'canary-other.example', '/app');
    assert.equal(other.backend, 'b-web');
  });

  it("a Service whose upstream name collides (shop-api/v1 and shop/api-v1: shop-api-v1-80) never gets the older tenant's traffic", async () => {
    const older = await get(gw.port, STRANGER, 'zz-shop.example', '/');
    assert.equal(older.backend, 'shop', 'zz-shop.example (Ingress shop/shop, Service shop/api-v1)');
    const newer = await get(gw.port, STRANGER, 'aa-shop.example', '/');
    assert.equal(newer.backend, 'shopapi', 'aa-shop.example (Ingress shop-api/tenant, Service shop-api/v1)');
  });

  it("as ingress-nginx: B's use-regex path on A's host, longer than A's, answers A's /admin (every path of the host becomes a regex)", async () => {
    const answer = await get(gw.port, STRANGER, 'regex.example', '/admin');
    assert.equal(answer.backend, 'b-web');
  });
});

describe('tenant B against tenant A over TLS (certificates and client certificates, real sockets)', () => {
  let backends: Backends;
  let gw: SecurityGateway;
  let httpsPort = 0;
  const pairs = new Map<string, { cert: string; key: string }>();

  before(async () => {
    backends = await startBackends(['a-web', 'b-web']);
    for (const [name, cn] of [
      ['a', 'tls-a.example'],
      ['b', 'tls-a.example'],
      ['b2', 'tls-missing.example'],
      ['ca', 'tenant-ca'],
    ] as const)
      pairs.set(name, await keyPair(cn));
    const pair = (name: string) => pairs.get(name) as { cert: string; key: string };
    const objects: K8sObject[] = [
      ...serviceWithEndpoints({ namespace: A, name: 'a-web', ports: [backends.port('a-web')] }),
      ...serviceWithEndpoints({ namespace: B, name: 'b-web', ports: [backends.port('b-web')] }),
      tlsSecret('a-cert', pair('a').cert, pair('a').key, A),
      tlsSecret('b-cert', pair('b').cert, pair('b').key, B),
      tlsSecret('b-cert2', pair('b2').cert, pair('b2').key, B),
      opaqueSecret('a-ca', { 'ca.crt': pair('ca').cert }, A),
      opaqueSecret('b-ca', { 'ca.crt': pair('ca').cert }, B),
      tenantIngress(A, 'a-tls', 'tls-a.example', [to('a-web')], OLD, {}, 'a-cert'),
      tenantIngress(B, 'b-tls', 'tls-a.example', [to('b-web', '/b')], NEW, {}, 'b-cert'),
      // A's Secret is not there yet (cert-manager has not issued it).
      tenantIngress(A, 'a-missing', 'tls-missing.example', [to('a-web')], OLD, {}, 'not-issued-yet'),
      tenantIngress(B, 'b-missing', 'tls-missing.example', [to('b-web', '/b')], NEW, {}, 'b-cert2'),
      tenantIngress(A, 'a-mtls', 'mtls.example', [to('a-web')], OLD, { 'auth-tls-secret': `${A}/a-ca` }),
      tenantIngress(B, 'b-mtls', 'mtls.example', [to('b-web', '/b')], NEW, {
        'auth-tls-secret': `${B}/b-ca`,
        'auth-tls-verify-client': 'optional_no_ca',
      }),
      tenantIngress(A, 'a-xmtls', 'xmtls.example', [to('a-web')], OLD),
      tenantIngress(B, 'b-xmtls', 'xmtls.example', [to('b-web', '/b')], NEW, {
        'auth-tls-secret': `${A}/a-ca`,
      }),
    ];
    gw = await startSecurityGateway(topologyFromYaml(toYaml(objects)), {
      https: { host: '127.0.0.1', port: 0 },
    });
    httpsPort = gw.gateway.httpsAddress?.port ?? 0;
  });
  after(async () => {
    await gw?.close();
    await backends?.close();
  });

  it("A's host keeps A's certificate when a newer Ingress of B lists the host with its own Secret", async () => {
    const { fingerprint } = await tlsGet(httpsPort, 'tls-a.example', null);
    assert.equal(fingerprint, fingerprintOf(pairs.get('a')!.cert));
  });

  it("A's host whose Secret is missing gets the default certificate, not B's (createServers pins the first Ingress's choice)", async () => {
    const { fingerprint } = await tlsGet(httpsPort, 'tls-missing.example', null);
    assert.notEqual(
      fingerprint,
      fingerprintOf(pairs.get('b2')!.cert),
      "tenant B's certificate was served for A's host",
    );
    assert.equal(fingerprint, fingerprintOf((await testCertificate()).cert));
  });

  it("auth-tls is A's for the whole host: B's optional_no_ca on its newer path does not let a client without a certificate in", async () => {
    const mark = backends.seen.length;
    for (const target of ['/b', '/']) {
      const { answer } = await tlsGet(httpsPort, 'mtls.example', target);
      assert.equal(answer?.status, 400, `${target}: ${answer?.text.slice(0, 200)}`);
    }
    assert.deepEqual(backends.seen.slice(mark), []);
  });

  it("as ingress-nginx (the server's AuthTLSError): B's auth-tls-secret naming team-a/a-ca is refused, and A's host answers 403", async () => {
    const mark = backends.seen.length;
    for (const target of ['/', '/b']) {
      const { answer } = await tlsGet(httpsPort, 'xmtls.example', target);
      assert.equal(answer?.status, 403, target);
    }
    assert.deepEqual(backends.seen.slice(mark), []);
  });
});

describe('the admission webhook: tenant B claiming what A serves', () => {
  // A serves app.example / and /admin; B has an Ingress created before A's, on its own host.
  // On CREATE the API server has set creationTimestamp (now) before validating admission runs.
  const aApp = tenantIngress(A, 'a-app', 'app.example', [to('a-web'), to('a-web', '/admin')], OLD);
  const bOld = tenantIngress(B, 'b-old', 'b.example', [to('b-web')], '2024-06-01T00:00:00Z');
  const cluster: ClusterObjects = { ...EMPTY_CLUSTER, ingresses: [aApp, bOld] };

  /** The webhook's answer to `operation` of `object` in team-b: allowed, and the refusal's message. */
  function review(object: K8sObject, operation: 'CREATE' | 'UPDATE'): { allowed: boolean; message: string } {
    const request = { uid: 'tenant-b', operation, namespace: B };
    const outcome = reviewAdmission(ingressReview(object, request), cluster, DEFAULT_SNAPSHOT_OPTIONS);
    assert.ok(outcome.ok);
    const response = outcome.response.response as { allowed: boolean; status?: { message: string } };
    return { allowed: response.allowed, message: response.status?.message ?? '' };
  }

  it("refuses an UPDATE of B's older Ingress that adds A's host and path (ingress-nginx checks the candidate as the newest)", () => {
    const claimed = tenantIngress(B, 'b-old', 'b.example', [to('b-web')], '2024-06-01T00:00:00Z');
    const spec = claimed.spec as { rules: unknown[] };
    const aRule = (aApp.spec as { rules: unknown[] }).rules[0];
    spec.rules.push(JSON.parse(JSON.stringify(aRule).replaceAll('a-web', 'b-web')));
    const verdict = review(claimed, 'UPDATE');
    assert.equal(
      verdict.allowed,
      false,
      'team-b/b-old (older) took app.example / and /admin from team-a/a-app',
    );
    assert.match(verdict.message, /ADMISSION_PATH_OVERLAP.*team-a\/a-app/);
  });

  it("refuses B's Prefix /admin/ on A's host (ingress-nginx's Prefix /admin is the location /admin/ it checks against)", () => {
    const verdict = review(
      tenantIngress(B, 'b-slash', 'app.example', [to('b-web', '/admin/')], NEW),
      'CREATE',
    );
    assert.equal(verdict.allowed, false);
    assert.match(verdict.message, /ADMISSION_PATH_OVERLAP/);
  });

  it("refuses B's Exact / on A's Prefix / (ingress-nginx's ingressForHostPath compares the path, not the pathType)", () => {
    const verdict = review(
      tenantIngress(B, 'b-exact', 'app.example', [to('b-web', '/', 'Exact')], NEW),
      'CREATE',
    );
    assert.equal(verdict.allowed, false);
    assert.match(verdict.message, /ADMISSION_PATH_OVERLAP/);
  });

  it('canary: "false" does not skip the overlap check (ingress-nginx\'s checkOverlap does: the annotation is present)', () => {
    const verdict = review(
      tenantIngress(B, 'b-not-canary', 'app.example', [to('b-web')], NEW, { canary: 'false' }),
      'CREATE',
    );
    assert.equal(verdict.allowed, false);
    assert.match(verdict.message, /ADMISSION_PATH_OVERLAP.*team-a\/a-app/);
  });
});
