// TLS for the HTTPS listener: one secure context per virtual host that has a certificate, looked up by
// SNI (exact name, then a single leading wildcard label), and a generated self-signed default certificate
// for everything else, as ingress-nginx's "Fake Certificate".
//
// What a handshake may negotiate (ssl-protocols, ssl-ciphers, ssl-prefer-server-ciphers: the ConfigMap's,
// or a host's own) is fixed by the context the TLS socket is created with: OpenSSL keeps that context's
// versions and cipher list when the SNI callback swaps the certificate. So the listener reads the
// ClientHello first (client-hello.ts) and starts the handshake with `initialContext(serverName)`: the
// certificate the SNI lookup picks, with the settings of that name. Settings that cannot be used refuse
// the handshake (null), never fall back to the defaults.
import { constants, createHash } from 'node:crypto';
import tls, { type SecureContext, type SecureContextOptions } from 'node:tls';
import type {
  DefaultCertificateModel,
  ServerTlsModel,
  TlsSessionModel,
  VirtualHostModel,
} from '../config/model.ts';
import { certificateCovers } from '../k8s/certificate-names.ts';
import { defaultServerTls } from '../k8s/server-tls.ts';
import { DEFAULT_TLS_SESSIONS } from '../k8s/tls-sessions.ts';

export interface KeyPair {
  key: string;
  cert: string;
}

/** ingress-nginx's fake certificate's name: alerts and runbooks look for it to spot a host without its own. */
export const DEFAULT_CERTIFICATE_CN = 'Kubernetes Ingress Controller Fake Certificate';

/**
 * Generates the default certificate, named as ingress-nginx's (O=Acme Co, the CN above, DNS
 * ingress.local); EC P-256 rather than its RSA 2048 (fast to make, fast to handshake), so the key
 * usage is digitalSignature only.
 */
export async function generateDefaultCertificate(): Promise<KeyPair> {
  const subject = [
    { name: 'organizationName', value: 'Acme Co' },
    { name: 'commonName', value: DEFAULT_CERTIFICATE_CN },
  ];
  // Loaded here: the x509 library costs a start ~130 ms, and only a TLS listener without
  // --default-ssl-certificate needs it.
  const { generate } = await import('selfsigned');
  const result = await generate(subject, {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 365 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'ingress.local' }] },
    ],
  });
  return { key: result.private, cert: result.cert };
}

/**
 * The pair a TLS listener falls back on: --default-ssl-certificate's, else a generated fake one; null
 * without a TLS listener (a plain-HTTP gateway never pays for the x509 library and a key).
 */
export async function listenerDefaultCertificate(options: {
  https?: unknown;
  defaultCertificate?: KeyPair;
}): Promise<KeyPair | null> {
  if (options.https === undefined || options.https === null) return null;
  return options.defaultCertificate ?? (await generateDefaultCertificate());
}

export interface CertificateProblem {
  host: string;
  secret: string;
  message: string;
}

export interface TlsSettingsProblem {
  /** `the ConfigMap` or `host example.com`. */
  scope: string;
  message: string;
}

export interface CertificateStore {
  /** The context for `servername`, or undefined for the default certificate. */
  lookup(servername: string): SecureContext | undefined;
  /**
   * --default-ssl-certificate's pair and context (GatewayModel.defaultCertificate); null without one or
   * when it cannot be used: the generated certificate the listeners hold is served instead.
   */
  readonly defaultPair: KeyPair | null;
  readonly defaultContext: SecureContext | null;
  /** The ssl-session-* options every server context of this snapshot is made with. */
  readonly session: SessionOptions;
  /** The context of the generated certificate the listeners hold, with this snapshot's session options. */
  fallbackContext(fallback: KeyPair): SecureContext;
  /**
   * The context a handshake for `servername` (null: no SNI) starts with: the certificate `lookup` picks
   * (else `fallback`, the default certificate) with the TLS settings of that name; null when those
   * settings cannot be used: the handshake is refused.
   */
  initialContext(servername: string | null, fallback: KeyPair): SecureContext | null;
  /** TLS settings that cannot be used (invalid in the manifests, or refused by OpenSSL). */
  readonly settingsProblems: readonly TlsSettingsProblem[];
  /** Host names with their own certificate, for the start-up line. */
  readonly hosts: readonly string[];
  /**
   * Certificates that could not be loaded (those hosts get the default certificate, as in
   * ingress-nginx); host '' is --default-ssl-certificate's (the generated one is served).
   */
  readonly problems: readonly CertificateProblem[];
}

/** server-alias exact names and the from-to-www-redirect twin of a host: served with its certificate. */
function otherNames(vhost: VirtualHostModel): string[] {
  const names = (vhost.aliases ?? []).filter((a) => !a.startsWith('~') && !a.startsWith('*.'));
  if (vhost.redirectFrom !== undefined) names.push(vhost.redirectFrom);
  return names.map((n) => n.toLowerCase());
}

const NO_VERSION: Readonly<Record<string, number>> = {
  TLSv1: constants.SSL_OP_NO_TLSv1,
  'TLSv1.1': constants.SSL_OP_NO_TLSv1_1,
  'TLSv1.2': constants.SSL_OP_NO_TLSv1_2,
  'TLSv1.3': constants.SSL_OP_NO_TLSv1_3,
};
const VERSION_ORDER = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;

type TlsOptions = Pick<
  SecureContextOptions,
  'ciphers' | 'minVersion' | 'maxVersion' | 'secureOptions' | 'honorCipherOrder' | 'ecdhCurve' | 'dhparam'
>;

/** A snapshot's TLS session settings: the ConfigMap's, and the key tickets are sealed with when it names none. */
export interface SessionSettings {
  readonly model: TlsSessionModel;
  /** 48 random bytes the gateway made at start, shared by its workers and kept across reloads. */
  readonly gatewayKey: Buffer;
}

/** What ssl-session-* add to every server context; `noTicket` is OR-ed into its secureOptions. */
export interface SessionOptions {
  readonly sessionTimeout: number;
  readonly ticketKeys?: Buffer;
  readonly noTicket: number;
}

export function sessionOptions(sessions: SessionSettings | undefined): SessionOptions {
  const model = sessions?.model ?? DEFAULT_TLS_SESSIONS;
  // Without tickets OpenSSL still issues TLS 1.3 ones bound to a server-side cache, which keepip has
  // not: such a ticket is never accepted (docs/gateway.md, TLS sessions).
  if (!model.tickets || sessions === undefined)
    return { sessionTimeout: model.timeoutSeconds, noTicket: constants.SSL_OP_NO_TICKET };
  const key = model.ticketKey === null ? sessions.gatewayKey : Buffer.from(model.ticketKey, 'base64');
  return { sessionTimeout: model.timeoutSeconds, ticketKeys: key, noTicket: 0 };
}

/**
 * A server context with the session settings. Its session id context names the certificate and the
 * client CA, as nginx's does: a session resumes only where the same certificate (and CA) would serve it.
 */
export function serverContext(
  options: SecureContextOptions & { cert: string; key: string },
  session: SessionOptions,
): SecureContext {
  // A session is its server certificate's, CA's and CRL's: a new CRL does not resume a revoked one's.
  const id = createHash('sha256')
    .update(options.cert)
    .update('\0')
    .update(String(options.ca ?? ''))
    .update('\0')
    .update(String(options.crl ?? ''));
  // A context that asks for client certificates issues no tickets (and its sessions are not cached:
  // tls-session-cache.ts): a resumed session brings the client's certificate without the chain it was
  // verified with, so auth-tls-verify-depth could not be checked again.
  const asksForCertificates = options.ca !== undefined;
  return tls.createSecureContext({
    ...options,
    ...(typeof options.crl === 'string' ? { crl: crlBlocks(options.crl) } : {}),
    sessionTimeout: session.sessionTimeout,
    ...(session.ticketKeys === undefined || asksForCertificates ? {} : { ticketKeys: session.ticketKeys }),
    secureOptions:
      (options.secureOptions ?? 0) | (asksForCertificates ? constants.SSL_OP_NO_TICKET : session.noTicket),
    sessionIdContext: id.digest('hex').slice(0, 32),
  });
}

/**
 * The CRLs of a PEM text, one block each: OpenSSL, through Node, reads only the first CRL of a string,
 * so a ca.crl with the root's and an intermediate's lists refused every client under the intermediate.
 */
function crlBlocks(pem: string): string[] {
  // indexOf, not a lazy regex: that one is quadratic in BEGIN lines without an END (a Secret's text).
  const begin = '-----BEGIN X509 CRL-----';
  const end = '-----END X509 CRL-----';
  const blocks: string[] = [];
  for (let at = pem.indexOf(begin); at >= 0; ) {
    const stop = pem.indexOf(end, at + begin.length);
    if (stop < 0) break;
    blocks.push(pem.slice(at, stop + end.length));
    at = pem.indexOf(begin, stop + end.length);
  }
  return blocks.length > 0 ? blocks : [pem];
}

/**
 * Context options for TLS settings, checked by OpenSSL; a reason when they cannot be used. The versions
 * are a range (minVersion..maxVersion) with the ones not listed inside it switched off, so a list with
 * a gap is honoured exactly.
 */
export function serverTlsOptions(
  model: ServerTlsModel,
): { ok: true; value: TlsOptions } | { ok: false; reason: string } {
  const invalid = model.invalidProtocols ?? model.invalidCiphers ?? model.invalidEcdhCurve;
  if (invalid !== undefined) return { ok: false, reason: invalid };
  const listed = VERSION_ORDER.filter((v) => model.protocols.includes(v));
  const min = listed[0];
  const max = listed[listed.length - 1];
  if (min === undefined || max === undefined) return { ok: false, reason: 'no TLS version to offer' };
  let secureOptions = 0;
  for (const v of VERSION_ORDER.slice(VERSION_ORDER.indexOf(min), VERSION_ORDER.indexOf(max) + 1))
    if (!listed.includes(v)) secureOptions |= NO_VERSION[v] as number;
  const value: TlsOptions = {
    ciphers: model.ciphers,
    minVersion: min,
    maxVersion: max,
    honorCipherOrder: model.preferServerCiphers,
    ...(secureOptions === 0 ? {} : { secureOptions }),
    ...(model.ecdhCurve === undefined ? {} : { ecdhCurve: model.ecdhCurve }),
    ...(model.dhParam === undefined ? {} : { dhparam: model.dhParam }),
  };
  if (model.dhParam !== undefined) {
    try {
      tls.createSecureContext({ dhparam: model.dhParam });
    } catch (error) {
      return {
        ok: false,
        reason: `OpenSSL refuses the ssl-dh-param parameters: ${(error as Error).message}`,
      };
    }
  }
  if (model.ecdhCurve !== undefined) {
    try {
      tls.createSecureContext({ ecdhCurve: model.ecdhCurve });
    } catch (error) {
      return {
        ok: false,
        reason: `OpenSSL refuses ssl-ecdh-curve ${JSON.stringify(model.ecdhCurve)}: ${(error as Error).message}`,
      };
    }
  }
  try {
    tls.createSecureContext(value);
  } catch (error) {
    return {
      ok: false,
      reason: `OpenSSL refuses ${JSON.stringify(model.ciphers)}: ${(error as Error).message}`,
    };
  }
  return { ok: true, value };
}

/**
 * A name's entry: exact, then a single leading wildcard label. Lower case and without one trailing
 * dot, as ingress-nginx's certificate.lua looks names up (`foo.com.` is foo.com's certificate).
 */
function byServerName<T>(map: ReadonlyMap<string, T>, servername: string): T | undefined {
  const lower = servername.toLowerCase();
  const name = lower.endsWith('.') ? lower.slice(0, -1) : lower;
  const exact = map.get(name);
  if (exact !== undefined) return exact;
  const dot = name.indexOf('.');
  return dot > 0 ? map.get(`*${name.slice(dot)}`) : undefined;
}

interface HostCertificate extends KeyPair {
  /** The Secret: contexts are made once per Secret and settings. */
  id: string;
  context: SecureContext;
}

/** A host's client CA and CRL, and their hash (one initial context per distinct pair). */
interface ClientCa {
  id: string;
  pem: string;
  crl: string | null;
}

/** The client CA of every host that verifies client certificates, by name (a handshake's session id context). */
function clientCaByName(virtualHosts: readonly VirtualHostModel[]): Map<string, ClientCa> {
  const byName = new Map<string, ClientCa>();
  for (const vhost of virtualHosts) {
    const model = vhost.clientCertificate ?? null;
    if (model === null || model.caPem === null || model.verifyClient === 'off' || vhost.host === '') continue;
    const id = createHash('sha256')
      .update(model.caPem)
      .update('\0')
      .update(model.crlPem ?? '')
      .digest('hex');
    const entry = { id, pem: model.caPem, crl: model.crlPem };
    for (const name of [vhost.host.toLowerCase(), ...otherNames(vhost)])
      if (!byName.has(name)) byName.set(name, entry);
  }
  return byName;
}

/** Every host's certificate by name (aliases and the www twin when the certificate covers them). */
function certificatesByName(
  virtualHosts: readonly VirtualHostModel[],
  session: SessionOptions,
): {
  byName: Map<string, HostCertificate>;
  problems: CertificateProblem[];
} {
  const byName = new Map<string, HostCertificate>();
  const problems: CertificateProblem[] = [];
  // Secrets are often shared by several hosts: make each context once.
  const bySecret = new Map<string, HostCertificate | null>();
  for (const vhost of virtualHosts) {
    if (vhost.tls === null || vhost.host === '') continue;
    const secretId = `${vhost.tls.secret.namespace}/${vhost.tls.secret.name}`;
    let entry = bySecret.get(secretId);
    if (entry === undefined) {
      const pair = { key: vhost.tls.keyPem, cert: vhost.tls.certPem };
      try {
        entry = { ...pair, id: secretId, context: serverContext(pair, session) };
      } catch (error) {
        entry = null;
        problems.push({ host: vhost.host, secret: secretId, message: (error as Error).message });
      }
      bySecret.set(secretId, entry);
    }
    if (entry === null) continue;
    byName.set(vhost.host.toLowerCase(), entry);
    for (const name of otherNames(vhost)) {
      // As ingress-nginx: an alias or www twin gets the host's certificate only when it covers the name.
      if (!byName.has(name) && certificateCovers(vhost.tls.certPem, name)) byName.set(name, entry);
    }
  }
  return { byName, problems };
}

/** Each host's own TLS settings by name (aliases and the www twin too), checked once per settings. */
function settingsByName(
  virtualHosts: readonly VirtualHostModel[],
  global: ServerTlsModel,
): {
  byName: Map<string, ServerTlsModel>;
  options: Map<ServerTlsModel, ReturnType<typeof serverTlsOptions>>;
  problems: TlsSettingsProblem[];
} {
  const byName = new Map<string, ServerTlsModel>();
  const options = new Map<ServerTlsModel, ReturnType<typeof serverTlsOptions>>();
  const problems: TlsSettingsProblem[] = [];
  const check = (model: ServerTlsModel, scope: string) => {
    const checked = serverTlsOptions(model);
    options.set(model, checked);
    if (!checked.ok) problems.push({ scope, message: checked.reason });
  };
  check(global, 'every TLS host without its own ssl-ciphers, and the default certificate');
  for (const vhost of virtualHosts) {
    if (vhost.serverTls === undefined || vhost.host === '') continue;
    check(vhost.serverTls, `host ${vhost.host}`);
    for (const name of [vhost.host.toLowerCase(), ...otherNames(vhost)])
      if (!byName.has(name)) byName.set(name, vhost.serverTls);
  }
  return { byName, options, problems };
}

/** --default-ssl-certificate's pair with its context, or a problem when OpenSSL refuses it. */
function loadDefaultCertificate(
  model: DefaultCertificateModel | undefined,
  problems: CertificateProblem[],
  session: SessionOptions,
): HostCertificate | null {
  if (model === undefined) return null;
  const id = `${model.secret.namespace}/${model.secret.name}`;
  const pair = { key: model.keyPem, cert: model.certPem };
  try {
    return { ...pair, id, context: serverContext(pair, session) };
  } catch (error) {
    problems.push({ host: '', secret: id, message: (error as Error).message });
    return null;
  }
}

export function buildCertificateStore(
  virtualHosts: readonly VirtualHostModel[],
  serverTls: ServerTlsModel = defaultServerTls(),
  defaultCertificate?: DefaultCertificateModel,
  sessions?: SessionSettings,
): CertificateStore {
  const session = sessionOptions(sessions);
  const certificates = certificatesByName(virtualHosts, session);
  const ownDefault = loadDefaultCertificate(defaultCertificate, certificates.problems, session);
  const clientCas = clientCaByName(virtualHosts);
  let fallbackContext: { pair: KeyPair; context: SecureContext } | null = null;
  const settings = settingsByName(virtualHosts, serverTls);
  // Contexts a handshake starts with, per certificate and settings, made on first use.
  const initial = new Map<string, SecureContext | null>();
  const settingsIds = new Map<ServerTlsModel, number>();
  return {
    hosts: [...certificates.byName.keys()].sort(),
    problems: certificates.problems,
    settingsProblems: settings.problems,
    defaultPair: ownDefault === null ? null : { key: ownDefault.key, cert: ownDefault.cert },
    defaultContext: ownDefault?.context ?? null,
    session,
    fallbackContext(fallback) {
      if (fallbackContext?.pair !== fallback)
        fallbackContext = { pair: fallback, context: serverContext(fallback, session) };
      return fallbackContext.context;
    },
    lookup: (servername) => byServerName(certificates.byName, servername)?.context,
    initialContext(servername, fallback) {
      const model =
        (servername === null ? undefined : byServerName(settings.byName, servername)) ?? serverTls;
      const checked = settings.options.get(model);
      if (checked === undefined || !checked.ok) return null;
      const own = servername === null ? undefined : byServerName(certificates.byName, servername);
      const pair = own ?? ownDefault ?? { ...fallback, id: '' };
      if (!settingsIds.has(model)) settingsIds.set(model, settingsIds.size);
      // A host that asks for client certificates: its sessions are its CA's (serverContext).
      const ca = servername === null ? undefined : byServerName(clientCas, servername);
      const key = `${pair.id}|${settingsIds.get(model)}|${ca?.id ?? ''}`;
      let context = initial.get(key);
      if (context === undefined) {
        try {
          const options = { key: pair.key, cert: pair.cert, ...checked.value };
          context = serverContext(
            ca === undefined
              ? options
              : { ...options, ca: ca.pem, ...(ca.crl === null ? {} : { crl: ca.crl }) },
            session,
          );
        } catch {
          context = null; // a certificate that loaded alone would not fail here; fail closed anyway
        }
        initial.set(key, context);
      }
      return context;
    },
  };
}
