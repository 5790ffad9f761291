// `keepip up`'s live reload never lets the gateway route to a hop that is not there: a new backend
// listens before the gateway's configuration names it, a dropped one stops only after the gateway no
// longer does, and a backend that moves to another Service (same address) is handed over, not refused.
// Observed through what the chain reports in order (the component lines, the reload's messages) and
// through requests sent right after each reload: never a 502.
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import http from '../../src/node-http.ts';
import { type RunningChain, startChain } from '../../src/up/run.ts';

const SEED = fileURLToPath(new URL('../../examples/seed/after', import.meta.url));
const CLIENT = '127.0.20.77';
const WIKI_ENDPOINT = '127.0.40.21';

/** An Ingress for wiki.example.com to Service `service` (its one endpoint at WIKI_ENDPOINT:3000). */
function wikiManifest(service: string): string {
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: wiki
  namespace: gitea
spec:
  ingressClassName: nginx
  rules:
    - host: wiki.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: ${service}
                port:
                  number: 3000
---
apiVersion: v1
kind: Service
metadata:
  name: ${service}
  namespace: gitea
spec:
  type: ClusterIP
  clusterIP: 127.0.40.2
  ports:
    - name: http
      port: 3000
      targetPort: 3000
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${service}-abcde
  namespace: gitea
  labels:
    kubernetes.io/service-name: ${service}
addressType: IPv4
ports:
  - name: http
    port: 3000
endpoints:
  - addresses: ["${WIKI_ENDPOINT}"]
    conditions:
      ready: true
`;
}

/** GET / for `host` through the chain's NLB; the status and the body (whoami names its backend). */
function get(chain: RunningChain, host: string): Promise<{ status: number; body: string }> {
  const at = chain.actual({ host: '127.0.10.1', port: 80 });
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: at.host, port: at.port, localAddress: CLIENT, path: '/', agent: false, headers: { host } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('keepip up: a reload adds, moves and drops backends without a 502', { concurrency: false }, () => {
  let dir: string;
  let chain: RunningChain;
  /** Each component line with the gateway's configuration version when it was logged. */
  const lines: { component: string; line: string; version: number | null }[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keepip-up-reload-'));
    await cp(SEED, dir, { recursive: true });
    chain = await startChain({
      paths: [dir],
      ports: 'ephemeral',
      watch: false,
      log: (component, line) =>
        lines.push({ component, line, version: chain?.gateway()?.snapshot().version ?? null }),
    });
  });

  after(async () => {
    await chain?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a new backend listens before the gateway routes to it', async () => {
    const before = chain.gateway()!.snapshot().version;
    await writeFile(join(dir, 'wiki.yaml'), wikiManifest('wiki-http'));
    const outcome = await chain.reload();
    assert.equal(outcome.ok, true, outcome.messages.join('\n'));
    const started = lines.find((l) => l.component === 'whoami/wiki-http' && /^listening on /.test(l.line));
    assert.ok(started, lines.map((l) => `${l.component} | ${l.line}`).join('\n'));
    assert.equal(started.version, before, 'the gateway still served the old configuration when it started');
    assert.ok(chain.gateway()!.snapshot().version > before);
    const answer = await get(chain, 'wiki.example.com');
    assert.equal(answer.status, 200, answer.body);
    assert.match(answer.body, /wiki-http/);
  });

  test('a backend whose address moves to another Service is handed over (the old one freed first)', async () => {
    await writeFile(join(dir, 'wiki.yaml'), wikiManifest('wiki-v2'));
    const outcome = await chain.reload();
    assert.equal(outcome.ok, true, outcome.messages.join('\n'));
    assert.ok(outcome.messages.includes('stopped whoami/wiki-http'), outcome.messages.join('\n'));
    const answer = await get(chain, 'wiki.example.com');
    assert.equal(answer.status, 200, answer.body);
    assert.match(answer.body, /wiki-v2/);
  });

  test('a dropped backend stops only after the gateway no longer routes to it', async () => {
    await rm(join(dir, 'wiki.yaml'));
    const outcome = await chain.reload();
    assert.equal(outcome.ok, true, outcome.messages.join('\n'));
    const reloaded = outcome.messages.findIndex((m) => /^gateway reloaded /.test(m));
    const stopped = outcome.messages.indexOf('stopped whoami/wiki-v2');
    assert.ok(reloaded >= 0 && stopped > reloaded, outcome.messages.join('\n'));
    assert.equal((await get(chain, 'wiki.example.com')).status, 404, 'no Ingress for the host any more');
    assert.equal(
      (await get(chain, 'gitea.example.com')).status,
      403,
      'the seed keeps serving (its allowlist)',
    );
  });
});
