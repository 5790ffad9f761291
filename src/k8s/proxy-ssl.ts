// proxy-ssl-*: TLS towards HTTPS backends, as ingress-nginx 1.15's proxyssl parser reads it. Nothing
// applies without proxy-ssl-secret (a Secret of the Ingress's namespace with ca.crt, and tls.crt /
// tls.key for a client certificate); a Secret that cannot be used denies the locations (503), as
// ingress-nginx does. Defaults: verify off, depth 1, no SNI, TLSv1.2, ciphers DEFAULT.
import type { ConfigIssue, ObjectRef, Origin, ProxySslModel } from '../config/model.ts';
import type { SecretView } from './objects.ts';
import { annotationIssue, readWhole, type ScalarSource, warnAnnotation } from './scalar-readers.ts';
import { IS_VALID_REGEX as SERVER_NAME } from './validators.ts';
import { goAnnotationString, isPem } from './values.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';

/** The annotations this module reads (without the prefix). */
export const PROXY_SSL_ANNOTATIONS: readonly string[] = [
  'proxy-ssl-secret',
  'proxy-ssl-verify',
  'proxy-ssl-verify-depth',
  'proxy-ssl-name',
  'proxy-ssl-server-name',
  'proxy-ssl-protocols',
  'proxy-ssl-ciphers',
];

const ON_OFF = /^(on|off)$/;
const PROTOCOLS = /^(TLSv1\.2|TLSv1\.3| )*$/;
const CIPHERS = /^[A-Za-z0-9+:_\-!]*$/;

/**
 * The proxy-ssl-* of one Ingress: the model, a denial (the reason), or null without proxy-ssl-secret.
 */
export function readProxySsl(
  annotations: Readonly<Record<string, string>>,
  ingress: ObjectRef,
  origin: Origin,
  secrets: ReadonlyMap<string, SecretView>,
  issues: ConfigIssue[],
  allowCrossNamespace = false,
): { ssl: ProxySslModel } | { denied: string } | null {
  const get = (name: string) => annotations[PREFIX + name];
  const sink = { origin, issues };
  const ref = get('proxy-ssl-secret');
  if (ref === undefined || ref.trim() === '') return null;
  const deny = (reason: string) => {
    annotationIssue(
      sink,
      'error',
      'ACCESS_CONFIG_DENIED',
      'proxy-ssl-secret',
      `${reason}; the locations of this Ingress answer 503, as ingress-nginx denies them`,
    );
    return { denied: `proxy-ssl-secret: ${reason}` };
  };
  const parts = ref.trim().split('/');
  if (parts.length !== 2 || parts.some((p) => p === ''))
    return deny(`${JSON.stringify(ref)} is not "namespace/name"`);
  if (parts[0] !== ingress.namespace && !allowCrossNamespace)
    return deny('cross namespace secrets are not supported (allow-cross-namespace-resources is false)');
  const secret = secrets.get(ref.trim());
  if (secret === undefined) return deny(`Secret ${ref.trim()} is not in the manifests`);
  const ca = secret.data['ca.crt'];
  if (!isPem(ca, 'CERTIFICATE')) return deny(`Secret ${ref.trim()} has no PEM ca.crt`);
  const cert = secret.data['tls.crt'];
  const key = secret.data['tls.key'];
  const warn = (name: string, v: string, kept: string) =>
    warnAnnotation(sink, name, `${JSON.stringify(v)} is not accepted; ${kept} applies`);
  // Read as ingress-nginx's parser: each line trimmed (normalizeString), so " on" is on; an empty value
  // is the default, white space alone a refused one.
  const pick = (name: string, valid: RegExp, fallback: string): string => {
    const given = get(name);
    if (given === undefined || given === '') return fallback;
    const v = goAnnotationString(given);
    if (v !== '' && valid.test(v)) return v;
    warn(name, given, fallback);
    return fallback;
  };
  const depth = verifyDepth({ get, invalid: (name, v, _expected, kept) => warn(name, v, kept) });
  const protocols = pick('proxy-ssl-protocols', PROTOCOLS, 'TLSv1.2')
    .split(' ')
    .filter((p) => p !== '');
  const name = pick('proxy-ssl-name', SERVER_NAME, '');
  const protocol = (get('backend-protocol') ?? '').trim().toUpperCase();
  if (protocol === 'GRPC' || protocol === 'GRPCS')
    annotationIssue(
      sink,
      'warning',
      'PROXY_SSL_NOT_FOR_GRPC',
      'proxy-ssl-secret',
      `backend-protocol ${protocol}: proxy-ssl-* do not apply to gRPC backends (as ingress-nginx's grpc_pass): the backend is not verified and gets no client certificate`,
    );
  return {
    ssl: {
      secret: ref.trim(),
      caPem: ca,
      certPem: isPem(cert, 'CERTIFICATE') && isPem(key, 'PRIVATE KEY') ? cert : null,
      keyPem: isPem(cert, 'CERTIFICATE') && isPem(key, 'PRIVATE KEY') ? key : null,
      verify: pick('proxy-ssl-verify', ON_OFF, 'off') === 'on',
      verifyDepth: depth,
      name: name === '' ? null : name,
      serverName: pick('proxy-ssl-server-name', ON_OFF, 'off') === 'on',
      protocols: protocols.length > 0 ? protocols : ['TLSv1.2'],
      ciphers: pick('proxy-ssl-ciphers', CIPHERS, 'DEFAULT'),
    },
  };
}

/**
 * proxy-ssl-verify-depth as ingress-nginx reads it: Go's Atoi (no space), 0 and a refused value are
 * its default 1 (proxyssl/main.go:246-249); keepip refuses a negative depth or one over 999 too.
 */
function verifyDepth(source: ScalarSource): number {
  // An empty value is never validated there, and is the default without a word.
  if (source.get('proxy-ssl-verify-depth') === '') return 1;
  const rule = { max: 999, expected: 'a depth of 0-999', kept: '1' };
  const n = readWhole(source, 'proxy-ssl-verify-depth', null, rule);
  return n === null || n === 0 ? 1 : n;
}
