// The length of a verified peer's certificate chain, as OpenSSL's verify depth counts it: the
// client certificates of auth-tls-verify-depth and the backend certificates of proxy-ssl-verify-depth.
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate } from 'node:tls';

/**
 * Certificates from the peer's own to its self-signed trust anchor, along the chain Node links (each
 * certificate to an issuer of the same name and key id, the last one from the trust store); null when
 * that chain is not one OpenSSL could have verified: a link whose signature does not verify or that is
 * not valid now, or an end that is not a self-signed anchor. Node links by names alone, so a peer that
 * sends an expired or forged "intermediate" of the right name gets a chain shorter than the one OpenSSL
 * verified through the real intermediates: it must not pass for a short one.
 */
export function chainLength(peer: DetailedPeerCertificate, nowMs = Date.now()): number | null {
  let cert = parse(peer);
  let node: DetailedPeerCertificate = peer;
  let length = 1;
  for (;;) {
    if (cert === null || !validAt(cert, nowMs)) return null;
    const next = node.issuerCertificate as DetailedPeerCertificate | undefined;
    if (next === undefined || next.fingerprint256 === undefined) return null;
    if (next.fingerprint256 === node.fingerprint256)
      return cert.checkIssued(cert) && cert.verify(cert.publicKey) ? length : null;
    const issuer = parse(next);
    if (issuer === null || !cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return null;
    if (length > MAX_CHAIN) return null;
    [cert, node, length] = [issuer, next, length + 1];
  }
}

// OpenSSL's own bound (its default verify depth is 100).
const MAX_CHAIN = 100;

function parse(cert: DetailedPeerCertificate): X509Certificate | null {
  try {
    return cert.raw === undefined ? null : new X509Certificate(cert.raw);
  } catch {
    return null;
  }
}

function validAt(cert: X509Certificate, nowMs: number): boolean {
  return Date.parse(cert.validFrom) <= nowMs && nowMs <= Date.parse(cert.validTo);
}

/**
 * Whether the chain is longer than OpenSSL's verify depth allows: the depth counts the CAs between the
 * peer's certificate and the trust anchor, so depth 1 takes a leaf, one intermediate and the root. A
 * chain that cannot be counted (see chainLength) is too long: never a pass.
 */
export function exceedsVerifyDepth(peer: DetailedPeerCertificate, depth: number): boolean {
  const length = chainLength(peer);
  return length === null || length - 2 > depth;
}
