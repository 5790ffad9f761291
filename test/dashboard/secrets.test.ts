// No Secret value ever leaves through the dashboard: a gateway serving a TLS Secret (certificate and
// key), a basic-auth Secret (htpasswd), an auth-url with credentials in it, and requests carrying
// credentials in Authorization and Cookie. Every page, asset and API answer (the live stream
// included) is read and searched for each secret value, raw and base64.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDecisionLog, type DecisionLog } from '../../src/gateway/decision-log.ts';
import { redactDeep, secretValues } from '../../src/dashboard/redact.ts';
import { withoutCredentials } from '../../src/dashboard/routes-view.ts';
import { type RunningDashboard, startDashboard } from '../../src/dashboard/server.ts';
import { type RunningGateway, startGateway } from '../../src/gateway/gateway.ts';
import { generateDefaultCertificate } from '../../src/gateway/tls.ts';
import { loadTopology } from '../../src/k8s/index.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import { rawExchange } from '../helpers/net.ts';

const HTPASSWD_USER = 'dashboard-secret-user';
const HTPASSWD_HASH = 'plain-secret-password-0451';
const AUTH_URL_PASSWORD = 'auth-url-password-9317';
const BEARER = 'bearer-credential-7730';
const COOKIE = 'session-cookie-2291';

const b64 = (text: string) => Buffer.from(text).toString('base64');

function manifests(cert: string, key: string): string {
  return `
apiVersion: v1
kind: Secret
metadata: { name: web-tls, namespace: default }
type: kubernetes.io/tls
data:
  tls.crt: ${b64(cert)}
  tls.key: ${b64(key)}
---
apiVersion: v1
kind: Secret
metadata: { name: web-users, namespace: default }
data:
  auth: ${b64(`${HTPASSWD_USER}:${HTPASSWD_HASH}\n`)}
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { ports: [{ port: 80 }] }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: default
  annotations:
    nginx.ingress.kubernetes.io/whitelist-source-range: 127.0.50.1/32
    nginx.ingress.kubernetes.io/auth-type: basic
    nginx.ingress.kubernetes.io/auth-secret: web-users
spec:
  ingressClassName: nginx
  tls: [{ hosts: [web.example], secretName: web-tls }]
  rules:
    - host: web.example
      http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ext
  namespace: default
  annotations:
    nginx.ingress.kubernetes.io/auth-url: http://auth-user:${AUTH_URL_PASSWORD}@127.0.0.1:9/check
spec:
  ingressClassName: nginx
  rules:
    - host: ext.example
      http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] }
`;
}

describe('the dashboard never shows Secret data or credentials', () => {
  let dir: string;
  let gateway: RunningGateway;
  let log: DecisionLog;
  let board: RunningDashboard;
  let secrets: string[];

  before(async () => {
    // A certificate for the host (one that does not name it would not be served, nor kept in the model).
    const made = await certificateFor('web.example');
    const pair = { cert: made.cert, key: made.key };
    // Secret values as written and as the API could leak them: whole, base64, and lines of the PEMs.
    const pemLines = (pem: string) => pem.split('\n').filter((l) => l.length > 40 && !l.startsWith('-----'));
    secrets = [
      ...pemLines(pair.cert).slice(0, 3),
      ...pemLines(pair.key),
      b64(pair.cert).slice(0, 60),
      b64(pair.key).slice(0, 60),
      HTPASSWD_USER,
      HTPASSWD_HASH,
      b64(`${HTPASSWD_USER}:${HTPASSWD_HASH}\n`),
      AUTH_URL_PASSWORD,
      BEARER,
      COOKIE,
      b64(`someone:${BEARER}`),
    ];
    dir = await mkdtemp(join(tmpdir(), 'keepip-dashboard-secrets-'));
    await writeFile(join(dir, 'all.yaml'), manifests(pair.cert, pair.key));
    log = createDecisionLog();
    const quiet = { write: () => {}, flush: async () => {}, close: async () => {}, dropped: 0 };
    gateway = await startGateway({
      topology: await loadTopology([dir]),
      http: { host: '127.0.0.1', port: 0 },
      accessLog: quiet,
      errorLog: quiet,
      decisions: log.sink,
    });
    const topology = () => gateway.snapshot().topology;
    board = await startDashboard({
      listen: { host: '127.0.0.1', port: 0 },
      decisions: log,
      sources: { mode: 'gateway', snapshot: () => gateway.snapshot(), topology },
    });
    const port = gateway.httpAddress!.port;
    for (const [from, host] of [
      ['127.0.50.1', 'web.example'],
      ['127.0.50.2', 'web.example'],
      ['127.0.50.3', 'ext.example'],
    ] as const) {
      await rawExchange({
        host: '127.0.0.1',
        port,
        localAddress: from,
        payload:
          `GET /private?token=x HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Basic ${b64(`someone:${BEARER}`)}\r\n` +
          `Cookie: session=${COOKIE}\r\nX-Api-Key: ${BEARER}\r\nConnection: close\r\n\r\n`,
      });
    }
    const deadline = Date.now() + 15_000;
    while (log.counters.seen < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  });
  after(async () => {
    await board?.close();
    log?.close();
    await gateway?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the model holds the secrets (so the test can fail), the dashboard shows none of them', async () => {
    const snap = gateway.snapshot();
    const held = JSON.stringify(snap.topology);
    assert.ok(held.includes(secrets[0]!), 'the TLS certificate is in the model');
    assert.ok(held.includes(HTPASSWD_HASH), 'the htpasswd entry is in the model');
    assert.ok(held.includes(AUTH_URL_PASSWORD), 'the auth-url credentials are in the model');
    assert.equal(log.counters.seen, 3);

    const paths = [
      '/',
      '/decisions',
      '/routes',
      '/chain',
      '/lb',
      ...['app.css', 'common.js', 'decisions.js', 'charts.js', 'routes.js', 'chain.js', 'lb.js'].map(
        (a) => `/assets/${a}`,
      ),
      '/api/info',
      '/api/decisions',
      '/api/stats',
      '/api/routes',
      '/api/lb',
      '/api/chain?client=127.0.50.1&host=web.example',
      '/api/chain?client=127.0.50.3&host=ext.example',
      ...log.records().map((r) => `/api/decisions/${r.id}`),
    ];
    let read = '';
    for (const path of paths) {
      const response = await fetch(new URL(path, board.url));
      assert.ok(response.status < 500, `${path}: ${response.status}`);
      read += `${path}\n${await response.text()}\n`;
    }
    // The live stream's backlog too.
    const controller = new AbortController();
    const stream = await fetch(new URL('/api/decisions/stream', board.url), { signal: controller.signal });
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let events = '';
    while ((events.match(/event: decision/g) ?? []).length < 3) events += (await reader.read()).value ?? '';
    controller.abort();
    read += events;

    assert.match(read, /web\.example/, 'the dashboard did describe the routes and requests');
    assert.match(read, /default\/web-tls/, 'it names the TLS Secret, not its data');
    for (const secret of secrets) {
      const at = read.indexOf(secret);
      const where = read.slice(Math.max(0, at - 300), at + 60);
      assert.ok(at < 0, `a secret value leaked: ${secret.slice(0, 24)}… in ${JSON.stringify(where)}`);
    }
  });
});

test("secretValues: a proxy-ssl-secret's CA, client certificate and key are blanked too", async () => {
  const pair = await generateDefaultCertificate();
  const dir = await mkdtemp(join(tmpdir(), 'keepip-redact-'));
  try {
    await writeFile(
      join(dir, 'proxy-ssl.yaml'),
      `apiVersion: v1
kind: Secret
metadata: { name: upstream-client, namespace: default }
data:
  ca.crt: ${b64(pair.cert)}
  tls.crt: ${b64(pair.cert)}
  tls.key: ${b64(pair.key)}
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { ports: [{ port: 443 }] }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: tls-upstream
  namespace: default
  annotations:
    nginx.ingress.kubernetes.io/backend-protocol: HTTPS
    nginx.ingress.kubernetes.io/proxy-ssl-secret: default/upstream-client
spec:
  ingressClassName: nginx
  rules:
    - host: up.example
      http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 443 } } } }] }
`,
    );
    const topology = await loadTopology([dir]);
    const proxySsl = topology.gateway.virtualHosts[0]?.locations[0]?.proxySsl;
    assert.ok(proxySsl?.keyPem, 'the model holds the key (so the test can fail)');
    const blanked = redactDeep({ leaked: proxySsl.keyPem, cert: proxySsl.certPem }, secretValues(topology));
    const text = JSON.stringify(blanked);
    for (const line of pair.key.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----')))
      assert.ok(!text.includes(line), 'no line of the key survives');
    assert.ok(text.includes('[redacted]'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("secretValues: --default-ssl-certificate's key is blanked too", async () => {
  const pair = await generateDefaultCertificate();
  const base = await loadTopology([]);
  const topology = {
    ...base,
    gateway: {
      ...base.gateway,
      defaultCertificate: {
        secret: { namespace: 'ingress', name: 'wildcard' },
        certPem: pair.cert,
        keyPem: pair.key,
      },
    },
  };
  const text = JSON.stringify(redactDeep({ leaked: pair.key }, secretValues(topology)));
  for (const line of pair.key.split('\n').filter((l) => l.length >= 16 && !l.startsWith('-----')))
    assert.ok(!text.includes(line), 'no line of the key survives');
});

test('credentials in a URL are blanked up to the last @ of its authority: a password may hold one', () => {
  const quoted = 'auth-url "https://user:p@ss%27x@auth.example.net/check?next=a@b" is not a valid URL';
  const shown = redactDeep({ message: quoted }, []) as { message: string };
  assert.equal(
    shown.message,
    'auth-url "https://[redacted]@auth.example.net/check?next=a@b" is not a valid URL',
  );
  assert.equal(
    withoutCredentials('https://user:p@ss@auth.example.net/check?next=a@b'),
    'https://auth.example.net/check?next=a@b',
  );
  assert.equal(withoutCredentials('https://auth.example.net/a@b'), 'https://auth.example.net/a@b');
});

test('blanking credentials reads a long hostile text once (a hang would end at the test timeout)', () => {
  const many = 'a'.repeat(100_000);
  const cases: [string, string][] = [
    [`http://${'@'.repeat(200_000)}x`, 'http://[redacted]@x'],
    [`http://${'a:'.repeat(100_000)}`, `http://${'a:'.repeat(100_000)}`],
    ['a://'.repeat(50_000), 'a://'.repeat(50_000)],
    [`${many} http://${'b@'.repeat(50_000)}/`, `${many} http://[redacted]@/`],
  ];
  for (const [text, expected] of cases) assert.equal(redactDeep(text, []), expected, text.slice(0, 20));
});
