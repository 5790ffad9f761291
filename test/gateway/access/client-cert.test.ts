// The checks of auth-tls-* on one request (src/gateway/access/client-cert.ts checkClientCertificate).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClientCertificateModel } from '../../../src/config/model.ts';
import { checkClientCertificate } from '../../../src/gateway/access/client-cert.ts';

test('auth-tls-match-cn is tested against $ssl_client_s_dn as PCRE: \\z is the end, not a letter z', () => {
  const model: ClientCertificateModel = {
    ingress: { namespace: 'default', name: 'web' },
    secret: 'default/ca',
    caPem: null,
    crlPem: null,
    verifyClient: 'on',
    verifyDepth: 1,
    errorPage: null,
    passCertificate: false,
    matchCn: 'CN=[[:alpha:]]+\\z',
    error: null,
  };
  const view = (subjectDn: string) => ({
    verify: 'SUCCESS',
    subjectDn,
    issuerDn: 'CN=ca',
    pem: null,
    present: true,
  });
  assert.equal(checkClientCertificate(model, view('CN=admin'), true).ok, true);
  assert.equal(checkClientCertificate(model, view('CN=admin1'), true).ok, false);
  assert.equal(checkClientCertificate(model, view('CN=adminz'), true).ok, true);
  assert.equal(checkClientCertificate(model, view('CN=1'), true).ok, false);
});
