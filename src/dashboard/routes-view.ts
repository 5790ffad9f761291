// The Routes page's data: hosts, paths, backends with their endpoints, each location's lists and the
// settings its annotations gave it, the configuration version and the issues of the last load.
// Every field is picked by name: certificates, keys, htpasswd entries, CA bundles and header values
// from Secrets or ConfigMaps never leave the process (they stay in the model, not here).
import { describeIssue } from '../config/issue-text.ts';
import { findService } from '../config/lookup.ts';
import type { BackendRef, LocationModel, Topology, VirtualHostModel } from '../config/model.ts';
import type { GatewaySnapshot } from '../gateway/snapshot.ts';
import { listView } from './decision-view.ts';

/** A URL without user:password@ (auth-url may carry credentials; the password may hold an `@`). */
export function withoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1');
}

function backendView(
  topology: Topology,
  backend: BackendRef | null,
  snap: GatewaySnapshot,
  location: LocationModel | null,
) {
  if (backend === null) return null;
  const service = findService(topology.services, backend.service);
  const port = service?.ports.find((p) => p.port === backend.port || p.name === backend.port);
  const endpoints = service && port ? (service.endpoints[port.name] ?? []) : [];
  const upstream = location === null ? snap.defaultUpstream : (snap.upstreamFor(location) ?? null);
  return {
    service: `${backend.service.namespace}/${backend.service.name}`,
    port: backend.port,
    upstream: backend.upstreamName,
    found: service !== undefined,
    endpoints: endpoints.map((e) => ({ address: e.address, port: e.port, ready: e.ready })),
    ready: endpoints.filter((e) => e.ready).length,
    /** Where the gateway actually connects (keepip up maps endpoints onto free ports). */
    members: upstream?.members.map((m) => m.hostPort) ?? [],
  };
}

/** Only named, non-secret fields of the access model (rate limits, auth); shape-checked, as it is still growing. */
function accessView(location: LocationModel) {
  const access = (location as { access?: unknown }).access as Record<string, unknown> | undefined | null;
  if (access === undefined || access === null) return null;
  const rate = access.rateLimit as Record<string, unknown> | null | undefined;
  const basic = access.basicAuth as Record<string, unknown> | null | undefined;
  const external = access.externalAuth as Record<string, unknown> | null | undefined;
  const denied = access.denied as { annotation?: unknown; reason?: unknown } | null | undefined;
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    rateLimit: rate
      ? {
          rps: rate.rps ?? null,
          rpm: rate.rpm ?? null,
          connections: rate.connections ?? null,
          burstMultiplier: rate.burstMultiplier ?? null,
          exempt: listView((rate.exempt as LocationModel['allow']) ?? null),
        }
      : null,
    basicAuth: basic
      ? {
          realm: text(basic.realm),
          secret: text(basic.secret),
          secretType: text(basic.secretType),
          users: Array.isArray(basic.users) ? basic.users.length : 0,
        }
      : null,
    externalAuth: external
      ? {
          url: text(external.url) === null ? null : withoutCredentials(external.url as string),
          method: text(external.method),
          signin: text(external.signin) === null ? null : withoutCredentials(external.signin as string),
          global: external.global === true,
        }
      : null,
    satisfy: text(access.satisfy),
    denied: denied ? { annotation: text(denied.annotation), reason: text(denied.reason) } : null,
  };
}

function locationView(topology: Topology, snap: GatewaySnapshot, location: LocationModel) {
  return {
    ingress: `${location.ingress.namespace}/${location.ingress.name}`,
    path: location.path,
    pathType: location.pathType,
    regex: location.regex,
    backend: backendView(topology, location.backend, snap, location),
    allow: listView(location.allow),
    deny: listView(location.deny),
    annotations: {
      'rewrite-target': location.rewriteTarget,
      'app-root': location.appRoot,
      'ssl-redirect': location.sslRedirect,
      'force-ssl-redirect': location.forceSslRedirect,
      'service-upstream': location.serviceUpstream,
      'backend-protocol': location.backendProtocol,
      'proxy-body-size': location.proxyBodySizeBytes,
      'proxy-connect-timeout': location.proxyConnectTimeoutMs / 1000,
      'proxy-read-timeout': location.proxyReadTimeoutMs / 1000,
      'proxy-send-timeout': location.proxySendTimeoutMs / 1000,
    },
    access: accessView(location),
  };
}

function hostView(topology: Topology, snap: GatewaySnapshot, vhost: VirtualHostModel) {
  const cert = vhost.clientCertificate ?? null;
  return {
    host: vhost.host === '' ? '*' : vhost.host,
    tls: vhost.tls
      ? { secret: `${vhost.tls.secret.namespace}/${vhost.tls.secret.name}`, hosts: vhost.tls.hosts }
      : null,
    clientCertificate: cert
      ? { secret: cert.secret, verifyClient: cert.verifyClient, error: cert.error }
      : null,
    locations: vhost.locations.map((l) => locationView(topology, snap, l)),
  };
}

export function routesView(snap: GatewaySnapshot) {
  const topology = snap.topology;
  const { gateway } = topology;
  const settings = snap.settings;
  const issues = [...topology.issues, ...snap.routes.issues].map((issue) => ({
    severity: issue.severity,
    code: issue.code,
    message: describeIssue(issue),
  }));
  return {
    configVersion: snap.version,
    ingressClass: gateway.ingressClass,
    clientAddress: {
      useProxyProtocol: settings.useProxyProtocol,
      useForwardedHeaders: settings.useForwardedHeaders,
      enableRealIp: settings.enableRealIp,
      forwardedForHeader: settings.forwardedForHeader,
      trusted: snap.trustedCidrs,
      trustSource: snap.trustSource,
    },
    blockCidrs: listView(settings.blockCidrs),
    defaultAllow: listView(settings.defaultAllow),
    defaultDeny: listView(settings.defaultDeny),
    hosts: gateway.virtualHosts.map((v) => hostView(topology, snap, v)),
    defaultBackend: backendView(topology, gateway.defaultBackend, snap, null),
    emptyUpstreams: snap.emptyUpstreams,
    issues,
  };
}
