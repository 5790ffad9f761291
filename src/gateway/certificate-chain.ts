// The length of a verified peer's certificate chain, as OpenSSL's verify depth counts it: the
// client certificates of auth-tls-verify-depth and the backend certificates of proxy-ssl-verify-depth.
import type { DetailedPeerCertificate } from 'node:tls';

/** Certificates from the peer's own to the trust anchor (Node links each to its issuer; a root to itself). */
export function chainLength(peer: DetailedPeerCertificate): number {
  let cert: DetailedPeerCertificate | undefined = peer;
  const seen = new Set<string>();
  while (cert !== undefined && cert.fingerprint256 !== undefined && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    cert = cert.issuerCertificate;
  }
  return seen.size;
}

/**
 * Whether the chain is longer than OpenSSL's verify depth allows: the depth counts the CAs between the
 * peer's certificate and the trust anchor, so depth 1 takes a leaf, one intermediate and the root.
 */
export function exceedsVerifyDepth(peer: DetailedPeerCertificate, depth: number): boolean {
  return chainLength(peer) - 2 > depth;
}
