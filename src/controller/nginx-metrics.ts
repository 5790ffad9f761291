// ingress-nginx's controller metrics that are not the gateway's: leader_election_status (per Lease
// name, 1 while leading); for every TLS host served, ssl_expire_time_seconds and ssl_certificate_info,
// which the chart's certificate-expiry alert reads (`nginx_ingress_controller_ssl_expire_time_seconds
// < time() + 10 days`); and orphan_ingress, 1 for an Ingress whose Service is missing (no-service) or
// has no ready endpoint (no-endpoint). Redone on every snapshot served, so a host, certificate or
// Ingress that went leaves no series behind.
import { X509Certificate } from 'node:crypto';
import { Gauge, type Registry } from 'prom-client';
import { findService } from '../config/lookup.ts';
import type { Topology } from '../config/model.ts';
import { resolveBackendTargets } from '../gateway/snapshot.ts';

const PREFIX = 'nginx_ingress_controller_';

export interface NginxControllerMetrics {
  leading(isLeader: boolean): void;
  /** The snapshot now served: its TLS hosts' certificates and its Ingresses' backends. */
  served(topology: Topology): void;
}

/** What ingress-nginx's labels say of a certificate (Go's crypto/x509 names). */
export interface CertificateFacts {
  expiresSeconds: number;
  /** ingress-nginx's Identifier(): `<issuer serialNumber attribute>-<serial in decimal>`. */
  identifier: string;
  serialNumber: string;
  issuerOrganization: string;
  issuerCommonName: string;
  publicKeyAlgorithm: string;
}

const KEY_ALGORITHMS: Record<string, string> = {
  rsa: 'RSA',
  'rsa-pss': 'RSA',
  ec: 'ECDSA',
  ed25519: 'Ed25519',
};

/** The facts of a PEM certificate (its first), or null when it does not parse. */
export function certificateFacts(pem: string): CertificateFacts | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return null;
  }
  const issuer = new Map(
    cert.issuer.split('\n').map((line) => {
      const eq = line.indexOf('=');
      return [line.slice(0, eq), line.slice(eq + 1)] as const;
    }),
  );
  const serial = BigInt(`0x${cert.serialNumber}`).toString();
  return {
    expiresSeconds: Math.floor(Date.parse(cert.validTo) / 1000),
    identifier: `${issuer.get('serialNumber') ?? ''}-${serial}`,
    serialNumber: serial,
    issuerOrganization: issuer.get('O') ?? '',
    issuerCommonName: issuer.get('CN') ?? '',
    publicKeyAlgorithm: KEY_ALGORITHMS[cert.publicKey.asymmetricKeyType ?? ''] ?? 'Unknown',
  };
}

export function createNginxControllerMetrics(
  registry: Registry,
  o: { controllerClass: string; podNamespace: string; podName: string | null; electionId: string },
): NginxControllerMetrics {
  const constant = {
    controller_namespace: o.podNamespace,
    controller_class: o.controllerClass,
    controller_pod: o.podName ?? '',
  };
  const leader = new Gauge({
    name: `${PREFIX}leader_election_status`,
    help: "Gauge reporting status of the leader election, 0 indicates follower, 1 indicates leader. 'name' is the string used to identify the lease",
    labelNames: ['controller_namespace', 'controller_class', 'controller_pod', 'name'],
    registers: [registry],
  });
  const expire = new Gauge({
    name: `${PREFIX}ssl_expire_time_seconds`,
    help: 'Number of seconds since 1970 to the SSL Certificate expire.',
    labelNames: ['namespace', 'class', 'host', 'secret_name', 'identifier'],
    registers: [registry],
  });
  const info = new Gauge({
    name: `${PREFIX}ssl_certificate_info`,
    help: 'Hold all labels associated to a certificate',
    labelNames: [
      'namespace',
      'class',
      'host',
      'secret_name',
      'identifier',
      'issuer_organization',
      'issuer_common_name',
      'serial_number',
      'public_key_algorithm',
    ],
    registers: [registry],
  });
  const orphan = new Gauge({
    name: `${PREFIX}orphan_ingress`,
    help: "Gauge reporting status of ingress orphanity, 1 indicates orphaned ingress. 'namespace' is the string used to identify namespace of ingress, 'ingress' for ingress name and 'type' for 'no-service' or 'no-endpoint' of orphanity",
    labelNames: [
      'controller_namespace',
      'controller_class',
      'controller_pod',
      'namespace',
      'ingress',
      'type',
    ],
    registers: [registry],
  });
  let parsed = new Map<string, CertificateFacts | null>();
  const certificates = (topology: Topology) => {
    expire.reset();
    info.reset();
    const seen = new Map<string, CertificateFacts | null>();
    for (const vhost of topology.gateway.virtualHosts) {
      if (vhost.host === '' || vhost.tls === null) continue;
      const pem = vhost.tls.certPem;
      const facts = seen.get(pem) ?? parsed.get(pem) ?? certificateFacts(pem);
      seen.set(pem, facts);
      if (facts === null) continue;
      const labels = {
        namespace: vhost.tls.secret.namespace,
        class: o.controllerClass,
        host: vhost.host,
        secret_name: vhost.tls.secret.name,
        identifier: facts.identifier,
      };
      expire.set(labels, facts.expiresSeconds);
      info.set(
        {
          ...labels,
          issuer_organization: facts.issuerOrganization,
          issuer_common_name: facts.issuerCommonName,
          serial_number: facts.serialNumber,
          public_key_algorithm: facts.publicKeyAlgorithm,
        },
        1,
      );
    }
    // Only the certificates served now stay parsed.
    parsed = seen;
  };
  return {
    leading(isLeader) {
      leader.set({ ...constant, name: o.electionId }, isLeader ? 1 : 0);
    },
    served(topology) {
      certificates(topology);
      orphan.reset();
      for (const [ref, state] of orphansOf(topology)) {
        const labels = { ...constant, namespace: ref.namespace, ingress: ref.name };
        orphan.set({ ...labels, type: 'no-service' }, state === 'no-service' ? 1 : 0);
        if (state !== 'no-service')
          orphan.set({ ...labels, type: 'no-endpoint' }, state === 'no-endpoint' ? 1 : 0);
      }
    },
  };
}

type Orphanity = 'no-service' | 'no-endpoint' | 'served';

/** Each served Ingress with backends: a Service missing (worst), none ready, or served. */
function orphansOf(topology: Topology): Map<{ namespace: string; name: string }, Orphanity> {
  const byKey = new Map<string, { ref: { namespace: string; name: string }; state: Orphanity }>();
  const rank: Record<Orphanity, number> = { served: 0, 'no-endpoint': 1, 'no-service': 2 };
  for (const vhost of topology.gateway.virtualHosts) {
    for (const location of vhost.locations) {
      const backend = location.backend;
      if (backend === null) continue;
      const { namespace, name } = location.ingress;
      const state: Orphanity =
        findService(topology.services, backend.service) === undefined
          ? 'no-service'
          : resolveBackendTargets(topology.services, backend, false).length === 0
            ? 'no-endpoint'
            : 'served';
      const key = `${namespace}/${name}`;
      const entry = byKey.get(key);
      if (entry === undefined) byKey.set(key, { ref: { namespace, name }, state });
      else if (rank[state] > rank[entry.state]) entry.state = state;
    }
  }
  return new Map([...byKey.values()].map((e) => [e.ref, e.state]));
}
