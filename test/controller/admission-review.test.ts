// What the webhook accepts as a review, as ingress-nginx's server does: only AdmissionReview
// admission.k8s.io/v1 (a v1beta1 review answered with a v1 response would be refused by the API server
// anyway), and bodies up to 9 MiB: a larger one is answered 413 at once from its Content-Length,
// without reading it. Real TLS sockets on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generate } from 'selfsigned';
import { reviewAdmission } from '../../src/controller/admission.ts';
import { MAX_REVIEW_BYTES, type SmallServer, startWebhookServer } from '../../src/controller/servers.ts';
import { DEFAULT_SNAPSHOT_OPTIONS, EMPTY_CLUSTER, postWebhook } from './harness.ts';

const review = (apiVersion: string) =>
  JSON.stringify({
    apiVersion,
    kind: 'AdmissionReview',
    request: {
      uid: 'u1',
      kind: { group: 'networking.k8s.io', version: 'v1', kind: 'Ingress' },
      operation: 'DELETE',
      namespace: 'default',
      object: null,
    },
  });

describe('the webhook server and what it takes as a review', () => {
  let server: SmallServer;
  const lines: string[] = [];

  before(async () => {
    const pair = await generate([{ name: 'commonName', value: 'webhook' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
    });
    const dir = mkdtempSync(join(tmpdir(), 'keepip-review-'));
    writeFileSync(join(dir, 'tls.crt'), pair.cert);
    writeFileSync(join(dir, 'tls.key'), pair.private);
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      review: (body) => reviewAdmission(body, EMPTY_CLUSTER, DEFAULT_SNAPSHOT_OPTIONS),
      log: (line) => lines.push(line),
    });
  });
  after(() => server?.close());

  it('answers an admission.k8s.io/v1 review', async () => {
    const answer = await postWebhook(server.address.port, review('admission.k8s.io/v1'));
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.body).response, { uid: 'u1', allowed: true });
  });

  it('refuses a v1beta1 review (400 ADMISSION_BAD_REVIEW), as ingress-nginx', async () => {
    const answer = await postWebhook(server.address.port, review('admission.k8s.io/v1beta1'));
    assert.equal(answer.status, 400);
    assert.match(answer.body, /ADMISSION_BAD_REVIEW/);
    assert.match(answer.body, /admission\.k8s\.io\/v1/);
  });

  it('answers 413 to a body announced larger than 9 MiB, without waiting for it', async () => {
    assert.equal(MAX_REVIEW_BYTES, 9 * 1024 * 1024);
    const answer = await postWebhook(server.address.port, null, {
      'content-length': String(MAX_REVIEW_BYTES + 1),
    });
    assert.equal(answer.status, 413);
    assert.match(answer.body, /ADMISSION_BODY_TOO_LARGE/);
    assert.ok(lines.some((l) => /ADMISSION_BODY_TOO_LARGE/.test(l)));
  });
});
