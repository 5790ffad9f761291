// The admission webhook's serving certificate when cert-manager is not used: a CA and a certificate it
// signs for the webhook Service's names, made at render time (the API server trusts the CA through the
// caBundle), or a pair the user keeps (`--webhook-certs DIR`) and that is checked here.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import type { WebhookCertificate } from './context.ts';

/** The names the API server may use for the webhook Service. */
export function webhookDnsNames(service: string, namespace: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`];
}

const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

export async function generateWebhookCertificate(
  dnsNames: readonly string[],
  now = new Date(),
): Promise<WebhookCertificate> {
  const notAfterDate = new Date(now.getTime() + TEN_YEARS_MS);
  const ca = await generate([{ name: 'commonName', value: 'keepip-admission-ca' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: 'commonName', value: dnsNames.at(-1) ?? 'keepip-admission' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: dnsNames.map((value) => ({ type: 2 as const, value })) },
    ],
  });
  return { ca: ca.cert, cert: leaf.cert, key: leaf.private };
}

/** Why a kept certificate cannot serve the webhook, or null when it can. */
export function checkWebhookCertificate(
  c: WebhookCertificate,
  dnsName: string,
  now = new Date(),
): string | null {
  try {
    const ca = new X509Certificate(c.ca);
    const cert = new X509Certificate(c.cert);
    if (!cert.verify(ca.publicKey)) return 'the certificate is not signed by the CA';
    if (!cert.checkPrivateKey(createPrivateKey(c.key))) return 'the key does not belong to the certificate';
    if (cert.checkHost(dnsName) === undefined) return `the certificate does not name ${dnsName}`;
    // The API server verifies the chain as TLS does: both certificates in their validity, a CA that is one.
    if (!ca.ca) return 'the CA certificate is not a CA (basicConstraints CA:FALSE or absent)';
    for (const [what, x509] of [
      ['the certificate', cert],
      ['the CA certificate', ca],
    ] as const) {
      if (new Date(x509.validTo).getTime() <= now.getTime()) return `${what} expired on ${x509.validTo}`;
      if (new Date(x509.validFrom).getTime() > now.getTime())
        return `${what} is not valid before ${x509.validFrom}`;
    }
    return null;
  } catch (err) {
    return `not a PEM certificate and key: ${(err as Error).message}`;
  }
}
