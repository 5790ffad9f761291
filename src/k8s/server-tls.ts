// What TLS does for a host. ssl-passthrough: with passthrough enabled (--enable-ssl-passthrough), the
// host's TLS connections go unread to the backend of its "/" path, as ingress-nginx's does (a host
// without such a backend is reported and keeps keepip's TLS, as ingress-nginx ignores it too).
//
// What a TLS handshake with the gateway may negotiate: the ConfigMap's ssl-ciphers and ssl-protocols
// for every TLS host and the default certificate, and per host the ssl-ciphers and
// ssl-prefer-server-ciphers annotations of the first Ingress of the host that sets them (as
// ingress-nginx fills its server block). ingress-nginx's defaults: TLSv1.2 TLSv1.3, its Mozilla
// intermediate cipher list, the server's cipher order.
//
// A value that cannot be used is never widened to the defaults (ingress-nginx drops an annotation that
// fails its regex and serves the defaults): it is an error, INVALID_TLS_SETTINGS, and the handshakes it
// applies to are refused. OpenSSL itself checks the cipher list when the gateway builds its snapshot
// (src/gateway/tls.ts), with the same outcome.
import type { ConfigIssue, Origin, ServerTlsModel } from '../config/model.ts';
import { annotationField, formatFieldPath } from './field-path.ts';
import { describeOrigin } from './reader.ts';
import { annotationSource, readBool } from './scalar-readers.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';

/** The annotations this module reads (without the prefix). */
export const SERVER_TLS_ANNOTATIONS: readonly string[] = [
  'ssl-ciphers',
  'ssl-prefer-server-ciphers',
  'ssl-passthrough',
];
/** The ConfigMap keys this module reads. */
export const SERVER_TLS_CONFIGMAP_KEYS: readonly string[] = [
  'ssl-ciphers',
  'ssl-protocols',
  'ssl-ecdh-curve',
  'ssl-dh-param',
];

/** nginx's ssl_ecdh_curve: `auto`, or OpenSSL group names separated by colons (OpenSSL checks the names). */
const CURVES = /^[A-Za-z0-9_-]+(?::[A-Za-z0-9_-]+)*$/;

/** ingress-nginx's default ssl-ciphers (Mozilla intermediate). */
export const DEFAULT_SSL_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256';
export const DEFAULT_SSL_PROTOCOLS: readonly string[] = ['TLSv1.2', 'TLSv1.3'];

/**
 * ingress-nginx's sslcipher validator: OpenSSL cipher-string characters, @STRENGTH, @SECLEVEL=0-5, in
 * any order. Go's pattern (a star of stars) is linear in RE2; in JavaScript it backtracks
 * exponentially, so the same language is written unambiguously here.
 */
const CIPHERS = /^(?:[A-Za-z0-9!:+\-_]|@STRENGTH|@SECLEVEL=[0-5])*$/;
const VERSIONS: readonly string[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
/** nginx accepts them; OpenSSL 3 has neither, so they add nothing. */
const UNAVAILABLE: readonly string[] = ['SSLv2', 'SSLv3'];

/** nginx's ssl_ciphers default, where no ssl_ciphers line is written. */
const NGINX_DEFAULT_CIPHERS = 'HIGH:!aNULL:!MD5';

export function defaultServerTls(): ServerTlsModel {
  return { ciphers: DEFAULT_SSL_CIPHERS, protocols: DEFAULT_SSL_PROTOCOLS, preferServerCiphers: true };
}

type Report = (severity: ConfigIssue['severity'], code: ConfigIssue['code'], message: string) => void;

function reporter(origin: Origin | null, field: string, issues: ConfigIssue[]): Report {
  return (severity, code, message) => {
    const where = origin ? `${describeOrigin(origin)} ${field}` : field;
    issues.push({ severity, code, message: `${where}: ${message}`, ...(origin ? { origin } : {}), field });
  };
}

/** A cipher list: the value, or why it cannot be used. */
function readCiphers(value: string, report: Report): { ciphers: string } | { invalid: string } {
  const text = value.trim();
  if (CIPHERS.test(text) && text !== '') return { ciphers: text };
  const invalid = `${JSON.stringify(value)} is not an OpenSSL cipher list ([A-Za-z0-9!:+-_], @STRENGTH, @SECLEVEL=0-5)`;
  report('error', 'INVALID_TLS_SETTINGS', `${invalid}; TLS handshakes it applies to are refused`);
  return { invalid };
}

/** ssl-protocols: nginx's space-separated versions; SSLv2/SSLv3 are skipped with a warning. */
function readProtocols(value: string, report: Report): { protocols: string[] } | { invalid: string } {
  const tokens = value.split(/\s+/).filter((t) => t !== '');
  const unknown = tokens.filter((t) => !VERSIONS.includes(t) && !UNAVAILABLE.includes(t));
  const skipped = tokens.filter((t) => UNAVAILABLE.includes(t));
  const protocols = VERSIONS.filter((v) => tokens.includes(v));
  let invalid: string | null = null;
  if (unknown.length > 0)
    invalid = `${unknown.map((t) => JSON.stringify(t)).join(', ')} is not a TLS version`;
  else if (protocols.length === 0) invalid = `${JSON.stringify(value)} names no TLS version keepip can offer`;
  if (invalid !== null) {
    report(
      'error',
      'INVALID_TLS_SETTINGS',
      `${invalid} (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3); every TLS handshake is refused`,
    );
    return { invalid };
  }
  if (skipped.length > 0)
    report(
      'warning',
      'INVALID_CONFIGMAP_VALUE',
      `${skipped.join(', ')} cannot be offered (OpenSSL 3 has none); ${protocols.join(' ')} apply`,
    );
  return { protocols };
}

/** ssl-ecdh-curve: the groups, or why they cannot be used (`auto`, the default, is none). */
function readCurves(value: string, report: Report): { curves: string | null } | { invalid: string } {
  const text = value.trim();
  if (text === '' || text === 'auto') return { curves: null };
  if (CURVES.test(text)) return { curves: text };
  const invalid = `${JSON.stringify(value)} is not auto or OpenSSL group names separated by ":"`;
  report('error', 'INVALID_TLS_SETTINGS', `${invalid}; every TLS handshake is refused`);
  return { invalid };
}

/** The ConfigMap's ssl-ciphers, ssl-protocols and ssl-ecdh-curve over ingress-nginx's defaults; undefined when none is set. */
export function readServerTlsConfigMap(
  data: Readonly<Record<string, string>>,
  origin: Origin | null,
  issues: ConfigIssue[],
): ServerTlsModel | undefined {
  const ciphersText = data['ssl-ciphers'];
  const protocolsText = data['ssl-protocols'];
  const curvesText = data['ssl-ecdh-curve'];
  if (ciphersText === undefined && protocolsText === undefined && curvesText === undefined) return undefined;
  const model: ServerTlsModel = defaultServerTls();
  const field = (key: string) => formatFieldPath(['data', key]);
  if (ciphersText !== undefined && ciphersText.trim() === '') {
    // ingress-nginx then writes neither ssl_ciphers nor ssl_prefer_server_ciphers: nginx's own defaults.
    model.ciphers = NGINX_DEFAULT_CIPHERS;
    model.preferServerCiphers = false;
  } else if (ciphersText !== undefined) {
    const read = readCiphers(ciphersText, reporter(origin, field('ssl-ciphers'), issues));
    if ('ciphers' in read) model.ciphers = read.ciphers;
    else model.invalidCiphers = `ConfigMap ssl-ciphers: ${read.invalid}`;
  }
  if (protocolsText !== undefined) {
    const read = readProtocols(protocolsText, reporter(origin, field('ssl-protocols'), issues));
    if ('protocols' in read) model.protocols = read.protocols;
    else model.invalidProtocols = `ConfigMap ssl-protocols: ${read.invalid}`;
  }
  if (curvesText !== undefined) {
    const read = readCurves(curvesText, reporter(origin, field('ssl-ecdh-curve'), issues));
    if (!('curves' in read)) model.invalidEcdhCurve = `ConfigMap ssl-ecdh-curve: ${read.invalid}`;
    else if (read.curves !== null) model.ecdhCurve = read.curves;
  }
  return model;
}

/** What one Ingress's ssl-ciphers, ssl-prefer-server-ciphers and ssl-passthrough say; null: not set. */
export interface IngressServerTls {
  ciphers: { ciphers: string } | { invalid: string } | null;
  preferServerCiphers: boolean | null;
  passthrough: boolean;
}

export function readServerTlsAnnotations(
  annotations: Readonly<Record<string, string>>,
  origin: Origin,
  issues: ConfigIssue[],
): IngressServerTls {
  const report = (name: string) => reporter(origin, annotationField(PREFIX + name), issues);
  const ciphersText = annotations[`${PREFIX}ssl-ciphers`];
  const ciphers =
    ciphersText === undefined || ciphersText.trim() === ''
      ? null
      : readCiphers(ciphersText, report('ssl-ciphers'));
  const values = annotationSource(annotations, { origin, issues });
  const bool = (name: string, kept: string) =>
    readBool(values, name, null, { expected: 'a boolean ("true" or "false")', kept: `ignored, ${kept}` });
  const preferServerCiphers = bool('ssl-prefer-server-ciphers', "the server's order applies");
  const passthrough = bool('ssl-passthrough', 'keepip terminates TLS for the host') === true;
  return { ciphers, preferServerCiphers, passthrough };
}

/**
 * ssl-passthrough for a host: any of its Ingresses asks for it (as ingress-nginx's server block), it is
 * enabled for that Ingress (its controller's --enable-ssl-passthrough), and the host has a "/" location
 * with a backend. Otherwise each asking Ingress is told why not.
 */
export function hostPassthrough(
  ingresses: readonly { origin: Origin; tls: IngressServerTls; passthroughEnabled: boolean }[],
  hasRootBackend: boolean,
  issues: ConfigIssue[],
): boolean {
  const asking = ingresses.filter((i) => i.tls.passthrough);
  if (asking.length === 0) return false;
  const enabled = asking.some((i) => i.passthroughEnabled);
  if (enabled && hasRootBackend) return true;
  const why = enabled
    ? 'the host has no "/" path with a backend'
    : 'SSL passthrough is not enabled (--enable-ssl-passthrough)';
  for (const { origin } of asking)
    reporter(origin, annotationField(`${PREFIX}ssl-passthrough`), issues)(
      'warning',
      'SSL_PASSTHROUGH_IGNORED',
      `${why}; keepip terminates TLS for the host, as ingress-nginx does`,
    );
  return false;
}

/**
 * A host's TLS settings: the ssl-ciphers (and, apart, ssl-prefer-server-ciphers) of the first Ingress of
 * the host that sets them, over the ConfigMap's; undefined when none sets either (the ConfigMap's apply).
 */
export function hostServerTls(
  ingresses: readonly { name: string; tls: IngressServerTls }[],
  global: ServerTlsModel | undefined,
): ServerTlsModel | undefined {
  const ciphersFrom = ingresses.find((i) => i.tls.ciphers !== null);
  const preferFrom = ingresses.find((i) => i.tls.preferServerCiphers !== null);
  if (ciphersFrom === undefined && preferFrom === undefined) return undefined;
  const base = global ?? defaultServerTls();
  const model: ServerTlsModel = { ...base };
  if (preferFrom !== undefined) model.preferServerCiphers = preferFrom.tls.preferServerCiphers as boolean;
  const own = ciphersFrom?.tls.ciphers ?? null;
  if (own !== null) {
    delete model.invalidCiphers;
    if ('ciphers' in own) model.ciphers = own.ciphers;
    else model.invalidCiphers = `Ingress ${ciphersFrom?.name} ssl-ciphers: ${own.invalid}`;
  }
  return model;
}

/**
 * ssl-dh-param: `namespace/name` of a Secret whose `dhparam.pem` holds DH parameters, as ingress-nginx
 * reads it; the PEM, or null with a warning when the Secret, the key or the PEM is missing (no DHE
 * suite then, as nginx without ssl_dhparam). OpenSSL checks the parameters themselves (src/gateway/tls.ts).
 */
export function readDhParam(
  value: string | undefined,
  secretNamed: (namespace: string, name: string) => Readonly<Record<string, string>> | null,
  warn: (message: string) => void,
): string | null {
  const text = value?.trim() ?? '';
  if (text === '') return null;
  const parts = text.split('/');
  if (parts.length !== 2 || parts.some((p) => p === '')) {
    warn(`${JSON.stringify(text)} is not "namespace/name" of a Secret; no DHE suite is offered`);
    return null;
  }
  const data = secretNamed(parts[0]!, parts[1]!);
  const pem = data?.['dhparam.pem'] ?? '';
  if (data === null) warn(`Secret ${text} not found; no DHE suite is offered`);
  else if (!pem.includes('BEGIN DH PARAMETERS'))
    warn(`Secret ${text} has no PEM DH parameters in dhparam.pem; no DHE suite is offered`);
  else return pem;
  return null;
}

/** The ConfigMap's ssl-dh-param as the Secret it names, added to the TLS settings. */
export function applyDhParam(
  data: Readonly<Record<string, string>>,
  settings: { serverTls?: ServerTlsModel },
  secretNamed: (namespace: string, name: string) => Readonly<Record<string, string>> | null,
  warn: (message: string) => void,
): void {
  const pem = readDhParam(data['ssl-dh-param'], secretNamed, warn);
  if (pem !== null) settings.serverTls = { ...(settings.serverTls ?? defaultServerTls()), dhParam: pem };
}
