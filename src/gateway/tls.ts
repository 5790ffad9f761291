// TLS for the HTTPS listener: one secure context per virtual host that has a certificate, looked up by
// SNI (exact name, then a single leading wildcard label), and a generated self-signed default certificate
// for everything else, as ingress-nginx's "Fake Certificate".
import { X509Certificate } from 'node:crypto';
import tls, { type SecureContext } from 'node:tls';
import { generate } from 'selfsigned';
import type { VirtualHostModel } from '../config/model.ts';

export interface KeyPair {
  key: string;
  cert: string;
}

export const DEFAULT_CERTIFICATE_CN = 'keepip default certificate';

/** Generates the default certificate (EC P-256: fast to make, fast to handshake). */
export async function generateDefaultCertificate(): Promise<KeyPair> {
  const result = await generate([{ name: 'commonName', value: DEFAULT_CERTIFICATE_CN }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 365 * 24 * 3600 * 1000),
  });
  return { key: result.private, cert: result.cert };
}

export interface CertificateProblem {
  host: string;
  secret: string;
  message: string;
}

export interface CertificateStore {
  /** The context for `servername`, or undefined for the default certificate. */
  lookup(servername: string): SecureContext | undefined;
  /** Host names with their own certificate, for the start-up line. */
  readonly hosts: readonly string[];
  /** Certificates that could not be loaded (those hosts get the default certificate, as in ingress-nginx). */
  readonly problems: readonly CertificateProblem[];
}

/** server-alias exact names and the from-to-www-redirect twin of a host: served with its certificate. */
function otherNames(vhost: VirtualHostModel): string[] {
  const names = (vhost.aliases ?? []).filter((a) => !a.startsWith('~') && !a.startsWith('*.'));
  if (vhost.redirectFrom !== undefined) names.push(vhost.redirectFrom);
  return names.map((n) => n.toLowerCase());
}

function coversName(certPem: string, name: string): boolean {
  try {
    return new X509Certificate(certPem).checkHost(name) !== undefined;
  } catch {
    return false;
  }
}

export function buildCertificateStore(virtualHosts: readonly VirtualHostModel[]): CertificateStore {
  const byName = new Map<string, SecureContext>();
  const problems: CertificateProblem[] = [];
  // Secrets are often shared by several hosts: make each context once.
  const bySecret = new Map<string, SecureContext | null>();
  for (const vhost of virtualHosts) {
    if (vhost.tls === null || vhost.host === '') continue;
    const secretId = `${vhost.tls.secret.namespace}/${vhost.tls.secret.name}`;
    let context = bySecret.get(secretId);
    if (context === undefined) {
      try {
        context = tls.createSecureContext({ key: vhost.tls.keyPem, cert: vhost.tls.certPem });
      } catch (error) {
        context = null;
        problems.push({ host: vhost.host, secret: secretId, message: (error as Error).message });
      }
      bySecret.set(secretId, context);
    }
    if (context === null) continue;
    byName.set(vhost.host.toLowerCase(), context);
    for (const name of otherNames(vhost)) {
      // As ingress-nginx: an alias or www twin gets the host's certificate only when it covers the name.
      if (!byName.has(name) && coversName(vhost.tls.certPem, name)) byName.set(name, context);
    }
  }
  return {
    hosts: [...byName.keys()].sort(),
    problems,
    lookup(servername) {
      const name = servername.toLowerCase();
      const exact = byName.get(name);
      if (exact !== undefined) return exact;
      const dot = name.indexOf('.');
      return dot > 0 ? byName.get(`*${name.slice(dot)}`) : undefined;
    },
  };
}
