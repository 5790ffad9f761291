// The checks of auth-tls-* on one request (src/gateway/access/client-cert.ts checkClientCertificate).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientCertificateModel } from '../../../src/config/model.ts';
import { checkClientCertificate } from '../../../src/gateway/access/client-cert.ts';

/** A host that verifies client certificates and matches their DN against `matchCn`. */
function matching(matchCn: string): ClientCertificateModel {
  return {
    ingress: { namespace: 'default', name: 'web' },
    secret: 'default/ca',
    caPem: null,
    crlPem: null,
    verifyClient: 'on',
    verifyDepth: 1,
    errorPage: null,
    passCertificate: false,
    matchCn,
    error: null,
  };
}

/** Whether a verified certificate with this subject DN passes. */
function passes(model: ClientCertificateModel, subjectDn: string): boolean {
  const view = {
    verify: 'SUCCESS',
    verifyCode: null,
    subjectDn,
    issuerDn: 'CN=ca',
    pem: null,
    present: true,
  };
  return checkClientCertificate(model, view, true).ok;
}

test('auth-tls-match-cn is tested against $ssl_client_s_dn as PCRE: \\z is the end, not a letter z', () => {
  const model = matching('CN=[[:alpha:]]+\\z');
  assert.equal(passes(model, 'CN=admin'), true);
  assert.equal(passes(model, 'CN=admin1'), false);
  assert.equal(passes(model, 'CN=adminz'), true);
  assert.equal(passes(model, 'CN=1'), false);
});

test('auth-tls-match-cn beyond ASCII: the pattern and the DN compared as UTF-8 bytes, as nginx compares them', () => {
  const model = matching('CN=José$');
  assert.equal(passes(model, 'CN=José'), true);
  assert.equal(passes(model, 'CN=Jose'), false);
});
