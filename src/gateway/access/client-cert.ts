// auth-tls-*: client certificates, per host as nginx's ssl_verify_client is per server block.
// - In the TLS handshake (server.ts's SNI callback): a host with auth-tls-secret and verify-client other
//   than "off" asks the client for a certificate, with its CA as the trust store; the handshake never
//   fails on the certificate (nginx completes it and answers per request). Other hosts and clients
//   without SNI are not asked.
// - Per request (admission.ts): verify "on" without a certificate is 400 (nginx's 496), a certificate
//   that does not verify is 400 (495) except with optional_no_ca, both a 302 to auth-tls-error-page when
//   set; auth-tls-match-cn refuses a subject DN it does not match with 403; an unusable CA Secret makes
//   every request to the host 403. The backend (and the auth service) get ssl-client-verify,
//   ssl-client-subject-dn, ssl-client-issuer-dn and, with auth-tls-pass-certificate-to-upstream,
//   ssl-client-cert (the PEM, URL-escaped).
// Node has no public per-SNI verify mode: the TLS wrap's setVerifyMode and verifyError are used.
import { exceedsVerifyDepth } from '../certificate-chain.ts';
import type { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { ClientCertificateModel, VirtualHostModel } from '../../config/model.ts';
import { pcreRegExp } from '../../config/pcre-translate.ts';
import { normalizeHost } from '../host.ts';
import { type SessionOptions, serverContext } from '../tls.ts';
import { certificateNames } from './distinguished-name.ts';
import { escapeUriComponent } from './nginx-vars.ts';

interface TlsHandle {
  setVerifyMode?(requestCert: boolean, rejectUnauthorized: boolean): void;
  verifyError?(): (Error & { code?: string }) | null;
}

type TlsSocketInternals = tls.TLSSocket & { _handle?: TlsHandle | null };

const contexts = new WeakMap<ClientCertificateModel, tls.SecureContext | null>();

/** The code of the refusal verifiedUnderOtherTrust leads to (registered in src/gateway/errors.ts). */
export type ClientCertificateCode = 'TLS_CLIENT_CA_CHANGED';

/** The settings a connection's handshake verified its client certificate under (a symbol: HTTP/2 streams see the socket through a view). */
const VERIFIED_UNDER = Symbol('keepip.clientCertificateVerifiedUnder');
type VerifiedSocket = { [VERIFIED_UNDER]?: ClientCertificateModel };

/** The secure context of a host with a CA: its certificate (or the default one) and the CA to verify against. */
function contextFor(
  model: ClientCertificateModel,
  keyPair: { key: string; cert: string },
  session: SessionOptions,
): tls.SecureContext | null {
  if (contexts.has(model)) return contexts.get(model) ?? null;
  let context: tls.SecureContext | null = null;
  try {
    context = serverContext(
      { key: keyPair.key, cert: keyPair.cert, ca: model.caPem ?? undefined, crl: model.crlPem ?? undefined },
      session,
    );
  } catch {
    context = null;
  }
  contexts.set(model, context);
  return context;
}

/**
 * In the SNI callback: when `servername`'s host verifies client certificates, asks for one and returns
 * the context that trusts its CA; otherwise returns null (the caller's context applies).
 */
export function requestClientCertificate(
  socket: tls.TLSSocket,
  vhost: VirtualHostModel | null,
  defaultKeyPair: { key: string; cert: string },
  session: SessionOptions,
): tls.SecureContext | null {
  const model = vhost?.clientCertificate ?? null;
  if (vhost === null || model === null || model.caPem === null || model.verifyClient === 'off') return null;
  const handle = (socket as TlsSocketInternals)._handle;
  const own = vhost.tls;
  const context = contextFor(model, own ? { key: own.keyPem, cert: own.certPem } : defaultKeyPair, session);
  if (context === null || typeof handle?.setVerifyMode !== 'function') return null;
  handle.setVerifyMode(true, false);
  (socket as VerifiedSocket)[VERIFIED_UNDER] = model;
  return context;
}

/**
 * Whether the connection's certificate was verified, in its handshake, against another CA or CRL than
 * the host's now (a reload changed auth-tls-secret): its verdict no longer says anything. nginx closes
 * the connections of the configuration before; here the request is answered 421 on a connection that
 * then closes, and the client's next one is verified against the CA of now.
 */
export function verifiedUnderOtherTrust(socket: unknown, model: ClientCertificateModel): boolean {
  const under = (socket as VerifiedSocket | null)?.[VERIFIED_UNDER];
  if (under === undefined || under === model) return false;
  return under.caPem !== model.caPem || under.crlPem !== model.crlPem;
}

export interface ClientCertificateView {
  /** $ssl_client_verify: SUCCESS, NONE or FAILED:<OpenSSL's reason text>, as nginx writes it. */
  verify: string;
  /** OpenSSL's name of the verify error (UNABLE_TO_GET_ISSUER_CERT_LOCALLY…), null when verified. */
  verifyCode: string | null;
  subjectDn: string;
  issuerDn: string;
  pem: string | null;
  present: boolean;
}

const NODE_HINT = '; if the root CA is installed locally';

/** What the connection's client certificate is, for the checks and the ssl-client-* headers. */
export function clientCertificateView(socket: unknown, model: ClientCertificateModel): ClientCertificateView {
  const none = { verify: 'NONE', verifyCode: null, subjectDn: '', issuerDn: '', pem: null, present: false };
  if (!(socket instanceof tls.TLSSocket)) return none;
  let x509: X509Certificate | undefined;
  try {
    x509 = socket.getPeerX509Certificate();
  } catch {
    x509 = undefined;
  }
  if (x509 === undefined) return none;
  // Node's verifyError carries OpenSSL's X509_verify_cert_error_string as its message (the text
  // nginx puts after FAILED:), Node 24 a hint about --use-system-ca after it, and the name as code.
  const error = (socket as TlsSocketInternals)._handle?.verifyError?.() ?? null;
  let verify = error === null ? 'SUCCESS' : `FAILED:${error.message.split(NODE_HINT)[0]}`;
  let verifyCode = error === null ? null : (error.code ?? 'UNSPECIFIED');
  const chain = socket.getPeerCertificate(true) as tls.DetailedPeerCertificate;
  // The depth is the handshake's (the SNI host's settings verified the chain), not the requested host's:
  // a stream coalesced onto another host must carry the verdict its connection got, as nginx's does.
  const verifiedUnder = (socket as VerifiedSocket)[VERIFIED_UNDER] ?? model;
  if (error === null && exceedsVerifyDepth(chain, verifiedUnder.verifyDepth)) {
    verify = 'FAILED:certificate chain too long';
    verifyCode = 'CERT_CHAIN_TOO_LONG';
  }
  // nginx's $ssl_client_s_dn / _i_dn, from the DER; a certificate OpenSSL verified is always readable.
  const names = certificateNames(new Uint8Array(x509.raw)) ?? { subject: '', issuer: '' };
  return {
    verify,
    verifyCode,
    subjectDn: names.subject,
    issuerDn: names.issuer,
    pem: x509.toString(),
    present: true,
  };
}

export type ClientCertificateCheck =
  | { ok: true; headers: Record<string, string> }
  | { ok: false; status: 400 | 403 | 421; reason: string; location: string | null };

/**
 * Whether the request named another server than its TLS handshake did, where that matters: the
 * handshake chose the client-certificate settings by SNI, the request its host by Host. As nginx
 * (ngx_http_set_virtual_server): when the Host (port and trailing dot aside, any case) is not the SNI
 * name and the Host's server verifies client certificates (any mode but off), 421, whichever server
 * the SNI chose (the same one by another name, a host without auth-tls). Without SNI, nothing to compare.
 */
export function misdirected(socket: unknown, rawHost: string, model: ClientCertificateModel): boolean {
  if (model.verifyClient === 'off' || !(socket instanceof tls.TLSSocket)) return false;
  const servername = (socket as tls.TLSSocket & { servername?: string | false }).servername;
  if (typeof servername !== 'string') return false;
  return normalizeHost(servername) !== normalizeHost(rawHost);
}

/**
 * What optional_no_ca lets through, as nginx's ngx_ssl_verify_error_optional: a certificate whose
 * issuer is unknown or untrusted. Expired, revoked or badly signed certificates are refused still.
 */
const ISSUER_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
]);

function forgiven(model: ClientCertificateModel, verifyCode: string | null): boolean {
  return model.verifyClient === 'optional_no_ca' && verifyCode !== null && ISSUER_ERRORS.has(verifyCode);
}

/** auth-tls-match-cn compiled once per model (nginx tests `$ssl_client_s_dn !~ "<cn>"`: PCRE). */
const matchCnRegExps = new WeakMap<ClientCertificateModel, RegExp>();

function matchesCn(model: ClientCertificateModel, cn: string, subjectDn: string): boolean {
  let regex = matchCnRegExps.get(model);
  if (regex === undefined) {
    regex = pcreRegExp(cn);
    matchCnRegExps.set(model, regex);
  }
  // nginx tests the DN's UTF-8 bytes (its regexes run without UTF; pcre-translate.ts writes bytes).
  return regex.test(Buffer.from(subjectDn, 'utf8').toString('latin1'));
}

/** The per-request decision (see the module comment). `https` false: plain HTTP, where nginx verifies nothing. */
export function checkClientCertificate(
  model: ClientCertificateModel,
  view: ClientCertificateView,
  https: boolean,
): ClientCertificateCheck {
  if (model.error !== null) return { ok: false, status: 403, reason: model.error, location: null };
  if (https && model.verifyClient !== 'off') {
    const page = model.errorPage;
    if (model.verifyClient === 'on' && !view.present)
      return { ok: false, status: 400, reason: 'client sent no required SSL certificate', location: page };
    if (view.present && view.verify !== 'SUCCESS' && !forgiven(model, view.verifyCode))
      return {
        ok: false,
        status: 400,
        // nginx writes (<number>:<text>); Node gives the error's name where OpenSSL its number.
        reason: `client SSL certificate verify error: (${view.verifyCode}:${view.verify.slice('FAILED:'.length)})`,
        location: page,
      };
  }
  if (model.matchCn !== null && !matchesCn(model, model.matchCn, view.subjectDn))
    return {
      ok: false,
      status: 403,
      reason: 'client certificate unauthorized (auth-tls-match-cn)',
      location: null,
    };
  // Over plain HTTP nginx's $ssl_client_verify is empty, so the header is not sent ('' removes it).
  const headers: Record<string, string> = {
    'ssl-client-verify': https ? view.verify : '',
    'ssl-client-subject-dn': view.subjectDn,
    'ssl-client-issuer-dn': view.issuerDn,
  };
  if (model.passCertificate && view.pem !== null) headers['ssl-client-cert'] = escapeUriComponent(view.pem);
  return { ok: true, headers };
}
