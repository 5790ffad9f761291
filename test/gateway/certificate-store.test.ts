// The certificate store's default certificate: --default-ssl-certificate's Secret when the snapshot
// carries one that OpenSSL accepts, else the generated certificate the listeners hold. Checked by a
// real handshake on 127.0.0.1 (Node's TLS client reads the certificate served).
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import type { DefaultCertificateModel } from '../../src/config/model.ts';
import { buildCertificateStore } from '../../src/gateway/tls.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';

/** The CN of the certificate a server with `context` presents to a client sending `servername`. */
async function servedName(context: tls.SecureContext, servername: string): Promise<string> {
  const server = tls.createServer({ SNICallback: (_name, done) => done(null, context) }, (socket) =>
    socket.end(),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await new Promise<string>((resolve, reject) => {
      const port = (server.address() as AddressInfo).port;
      const socket = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
        resolve(String(socket.getPeerCertificate().subject?.CN ?? ''));
        socket.destroy();
      });
      socket.on('error', reject);
    });
  } finally {
    server.close();
  }
}

function model(pair: { cert: string; key: string }): DefaultCertificateModel {
  return { secret: { namespace: 'ingress', name: 'wildcard' }, certPem: pair.cert, keyPem: pair.key };
}

describe('certificate store: the default certificate', () => {
  it('serves --default-ssl-certificate to names without their own, in the initial and the SNI context', async () => {
    const generated = await certificateFor('generated');
    const custom = await certificateFor('custom-default');
    const store = buildCertificateStore([], undefined, model(custom));
    assert.deepEqual(store.problems, []);
    assert.equal(store.defaultPair?.cert, custom.cert);
    const initial = store.initialContext('unknown.example.com', generated);
    assert.ok(initial !== null);
    assert.equal(await servedName(initial, 'unknown.example.com'), 'custom-default');
    assert.ok(store.defaultContext !== null);
    assert.equal(await servedName(store.defaultContext, 'unknown.example.com'), 'custom-default');
  });

  it('without one, or with one OpenSSL refuses, the generated certificate; the refusal is a problem', async () => {
    const generated = await certificateFor('generated');
    const without = buildCertificateStore([]);
    assert.equal(without.defaultPair, null);
    assert.equal(await servedName(without.initialContext(null, generated)!, 'x.example.com'), 'generated');
    // A certificate with another certificate's key (a half-renewed Secret).
    const a = await certificateFor('a');
    const b = await certificateFor('b');
    const mismatched = buildCertificateStore([], undefined, model({ cert: a.cert, key: b.key }));
    assert.equal(mismatched.defaultPair, null);
    assert.equal(mismatched.defaultContext, null);
    assert.equal(mismatched.problems.length, 1);
    assert.equal(mismatched.problems[0]?.host, '');
    assert.equal(mismatched.problems[0]?.secret, 'ingress/wildcard');
    assert.equal(await servedName(mismatched.initialContext(null, generated)!, 'x.example.com'), 'generated');
  });
});
