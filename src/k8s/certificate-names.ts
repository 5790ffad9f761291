// Which names a TLS certificate covers, as ingress-nginx checks them (ssl.IsValidHostname for aliases,
// VerifyHostname for a host no spec.tls entry lists). Pure: X509 parsing is computation, not I/O.
import { X509Certificate } from 'node:crypto';

/**
 * Whether a certificate (PEM) names `name`: exactly, or by a `*.` name of its own for one leading label
 * (a `*.suffix` name only when the certificate has that wildcard). False for a PEM that does not parse.
 */
export function certificateCovers(certPem: string, name: string): boolean {
  try {
    return new X509Certificate(certPem).checkHost(name) !== undefined;
  } catch {
    return false;
  }
}
