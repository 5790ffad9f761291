// OCSP for stapling (the ConfigMap's enable-ocsp), as ingress-nginx's certificate.lua does it with
// lua-resty-core's ngx.ocsp: the responder named by the certificate's Authority Information Access, a
// request for the certificate (SHA-1 CertID, no nonce), and a response used only when it is a
// successful response, signed by the issuer or a responder it delegated to, saying "good" for this
// certificate now. ASN.1 and signatures by pkijs over Node's WebCrypto.
import { webcrypto, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

export type OcspErrorCode =
  | 'OCSP_NO_RESPONDER'
  | 'OCSP_NO_ISSUER'
  | 'OCSP_BAD_CERTIFICATE'
  | 'OCSP_BAD_RESPONSE'
  | 'OCSP_NOT_SUCCESSFUL'
  | 'OCSP_SIGNATURE_INVALID'
  | 'OCSP_NOT_GOOD'
  | 'OCSP_NOT_CURRENT'
  | 'OCSP_FETCH_FAILED';

export interface OcspError {
  code: OcspErrorCode;
  message: string;
}

export type OcspResult<T> = { ok: true; value: T } | { ok: false; error: OcspError };

const engine = new pkijs.CryptoEngine({
  name: 'node',
  crypto: webcrypto as unknown as pkijs.CryptoEngineParameters['crypto'],
});
const AUTHORITY_INFO_ACCESS = '1.3.6.1.5.5.7.1.1';
const AD_OCSP = '1.3.6.1.5.5.7.48.1';
/** GeneralName's uniformResourceIdentifier. */
const URI_NAME = 6;
/** A response's times may be this far in the future (clocks differ), as OpenSSL's default leeway. */
const CLOCK_SKEW_MS = 5 * 60_000;

const fail = <T>(code: OcspErrorCode, message: string): OcspResult<T> => ({
  ok: false,
  error: { code, message },
});

/** What to ask and where: the responder's URL and the DER request for `certificate`. */
export interface OcspQuery {
  url: string;
  request: Buffer;
}

function parseCertificate(der: Buffer, what: string): OcspResult<pkijs.Certificate> {
  try {
    return { ok: true, value: pkijs.Certificate.fromBER(der) };
  } catch (error) {
    return fail('OCSP_BAD_CERTIFICATE', `the ${what} cannot be read: ${(error as Error).message}`);
  }
}

/** The first http(s) OCSP responder of the certificate's Authority Information Access, or null. */
function responderUrl(certificate: pkijs.Certificate): string | null {
  const aia = certificate.extensions?.find((e) => e.extnID === AUTHORITY_INFO_ACCESS);
  const descriptions = (aia?.parsedValue as pkijs.InfoAccess | undefined)?.accessDescriptions ?? [];
  for (const d of descriptions) {
    const location = d.accessLocation;
    if (d.accessMethod !== AD_OCSP || location.type !== URI_NAME) continue;
    const url = String(location.value);
    if (/^https?:\/\//i.test(url)) return url;
  }
  return null;
}

/** The responder and the request for `certificateDer`, issued by `issuerDer` (null: not in the chain). */
export async function ocspQuery(
  certificateDer: Buffer,
  issuerDer: Buffer | null,
): Promise<OcspResult<OcspQuery>> {
  if (issuerDer === null || issuerDer.length === 0)
    return fail('OCSP_NO_ISSUER', "the certificate's issuer is not in the Secret's chain (tls.crt)");
  const certificate = parseCertificate(certificateDer, 'certificate');
  if (!certificate.ok) return certificate;
  const issuer = parseCertificate(issuerDer, 'issuer certificate');
  if (!issuer.ok) return issuer;
  const url = responderUrl(certificate.value);
  if (url === null)
    return fail(
      'OCSP_NO_RESPONDER',
      'the certificate names no OCSP responder (Authority Information Access)',
    );
  try {
    const request = new pkijs.OCSPRequest();
    await request.createForCertificate(
      certificate.value,
      { hashAlgorithm: 'SHA-1', issuerCertificate: issuer.value },
      engine,
    );
    return { ok: true, value: { url, request: Buffer.from(request.toSchema(true).toBER()) } };
  } catch (error) {
    return fail('OCSP_BAD_CERTIFICATE', `no OCSP request can be made for it: ${(error as Error).message}`);
  }
}

const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';

/** The first embedded certificate the issuer signed directly for OCSP signing and valid now, if any. */
function directDelegate(
  embedded: readonly pkijs.Certificate[],
  issuerDer: Buffer,
  nowMs: number,
): pkijs.Certificate[] {
  const issuer = new X509Certificate(issuerDer);
  for (const candidate of embedded.slice(0, 8)) {
    try {
      const x509 = new X509Certificate(Buffer.from(candidate.toSchema().toBER()));
      const current = Date.parse(x509.validFrom) <= nowMs && nowMs <= Date.parse(x509.validTo);
      const forOcsp = Array.isArray(x509.keyUsage) && x509.keyUsage.includes(OCSP_SIGNING);
      if (current && forOcsp && x509.checkIssued(issuer) && x509.verify(issuer.publicKey)) return [candidate];
    } catch {
      // Not a certificate Node reads: never a delegate.
    }
  }
  return [];
}

/** A response fit to staple: the DER as received, and until when (nextUpdate; null: none given). */
export interface CheckedResponse {
  der: Buffer;
  nextUpdateMs: number | null;
}

function basicResponse(der: Buffer): OcspResult<pkijs.BasicOCSPResponse> {
  try {
    const response = pkijs.OCSPResponse.fromBER(der);
    const status = response.responseStatus.valueBlock.valueDec;
    if (status !== 0)
      return fail('OCSP_NOT_SUCCESSFUL', `the responder answered status ${status}, not successful (0)`);
    const bytes = response.responseBytes;
    if (bytes === undefined || bytes.responseType !== pkijs.id_PKIX_OCSP_Basic)
      return fail('OCSP_BAD_RESPONSE', 'the response carries no basic OCSP response');
    const schema = asn1js.fromBER(bytes.response.valueBlock.valueHexView);
    if (schema.offset === -1) return fail('OCSP_BAD_RESPONSE', 'the basic OCSP response is not DER');
    return { ok: true, value: new pkijs.BasicOCSPResponse({ schema: schema.result }) };
  } catch (error) {
    return fail('OCSP_BAD_RESPONSE', `the response cannot be read: ${(error as Error).message}`);
  }
}

/**
 * `der` checked for `certificateDer` (issued by `issuerDer`) at `nowMs`: successful, signed by the
 * issuer or a delegated responder, "good" for this certificate, thisUpdate not ahead, nextUpdate not past.
 */
export async function checkOcspResponse(
  der: Buffer,
  certificateDer: Buffer,
  issuerDer: Buffer,
  nowMs: number,
): Promise<OcspResult<CheckedResponse>> {
  const basic = basicResponse(der);
  if (!basic.ok) return basic;
  const certificate = parseCertificate(certificateDer, 'certificate');
  const issuer = parseCertificate(issuerDer, 'issuer certificate');
  if (!certificate.ok) return certificate;
  if (!issuer.ok) return issuer;
  // pkijs would build a path through every certificate the response embeds, and two that issue each
  // other send it round for ever: it only sees the issuer and at most one delegate the issuer signed
  // itself for OCSP signing (RFC 6960 4.2.2.2), current. A response without certificates is the
  // issuer's own (Let's Encrypt's): the issuer stands in the list for it.
  basic.value.certs = [issuer.value, ...directDelegate(basic.value.certs ?? [], issuerDer, nowMs)];
  let signed = false;
  try {
    signed = await basic.value.verify({ trustedCerts: [issuer.value] }, engine);
  } catch {
    signed = false;
  }
  if (!signed)
    return fail(
      'OCSP_SIGNATURE_INVALID',
      'the response is not signed by the issuer or a responder it delegated to',
    );
  const single = basic.value.tbsResponseData.responses.find((r) =>
    r.certID.serialNumber.isEqual(certificate.value.serialNumber),
  );
  let status: { isForCertificate: boolean; status: number };
  try {
    status = await basic.value.getCertificateStatus(certificate.value, issuer.value, engine);
  } catch (error) {
    return fail('OCSP_BAD_RESPONSE', `the response cannot be matched: ${(error as Error).message}`);
  }
  if (single === undefined || !status.isForCertificate)
    return fail('OCSP_BAD_RESPONSE', 'the response is not about this certificate');
  if (status.status !== 0)
    return fail(
      'OCSP_NOT_GOOD',
      `the responder says ${status.status === 1 ? 'revoked' : 'unknown'}, not good`,
    );
  const thisUpdate = single.thisUpdate.getTime();
  const nextUpdate = single.nextUpdate?.getTime() ?? null;
  // No leeway past nextUpdate: a response that is no longer current would be fetched again at once.
  if (thisUpdate > nowMs + CLOCK_SKEW_MS || (nextUpdate !== null && nextUpdate <= nowMs))
    return fail(
      'OCSP_NOT_CURRENT',
      `the response is for ${single.thisUpdate.toISOString()}..${single.nextUpdate?.toISOString() ?? ''}, not now`,
    );
  return { ok: true, value: { der, nextUpdateMs: nextUpdate } };
}
