// Headers from ConfigMaps, as ingress-nginx 1.15 reads them: the controller ConfigMap's add-headers
// (response headers on every response) and proxy-set-headers (request headers to every backend), each
// naming another ConfigMap; and the custom-headers annotation (response headers of one Ingress's
// locations), allowed only for the names global-allowed-response-headers lists.
import type { ConfigIssue, GatewaySettings, ObjectRef, Origin } from '../config/model.ts';
import { isRequestVariable, variablesOf } from '../config/nginx-variables.ts';
import { annotationField, formatFieldPath } from './field-path.ts';
import { HOP_BY_HOP_FIELDS } from '../net/hop-by-hop.ts';
import { NOT_FIELD_VALUE } from '../net/http-field.ts';
import type { ConfigMapView } from './objects.ts';
import { describeOrigin } from './reader.ts';

/** The controller ConfigMap keys this module reads. */
export const HEADER_CONFIGMAP_KEYS: readonly string[] = [
  'add-headers',
  'proxy-set-headers',
  'global-allowed-response-headers',
];

// ingress-nginx's customheaders validators.
const HEADER_NAME = /^[a-zA-Z\d\-_]+$/;
const HEADER_VALUE = /^[a-zA-Z\d_ :;.,\\/"'?!(){}[\]@<>=\-+*#$&`|~^%]+$/;

export type ConfigMapLookup = (namespace: string, name: string) => ConfigMapView | undefined;

function push(
  issues: ConfigIssue[],
  origin: Origin | null,
  field: string,
  severity: ConfigIssue['severity'],
  code: ConfigIssue['code'],
  message: string,
): void {
  issues.push({
    severity,
    code,
    message: `${origin ? `${describeOrigin(origin)} ` : ''}${field}: ${message}`,
    ...(origin ? { origin } : {}),
    field,
  });
}

/** `namespace/name` (or `name` in `namespace`). */
function refOf(text: string, namespace: string): ObjectRef | null {
  const parts = text.trim().split('/');
  if (parts.length === 1 && parts[0] !== '') return { namespace, name: parts[0]! };
  if (parts.length === 2 && parts[0] !== '' && parts[1] !== '')
    return { namespace: parts[0]!, name: parts[1]! };
  return null;
}

/**
 * Fields that frame a message or belong to one connection: set from a ConfigMap, they would break
 * every answer (a Content-Length that is not the body's) or request. nginx sends them as written;
 * keepip leaves them out, with a warning.
 */
function framesTheMessage(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === 'content-length' || HOP_BY_HOP_FIELDS.has(lower);
}

/**
 * A value as nginx sends it: the ConfigMap's UTF-8 bytes, one character per byte (the gateway writes
 * heads as latin1), so `é` goes out as C3 A9, never as the single byte E9.
 */
function wireValue(value: string): string {
  return Buffer.from(value, 'utf8').toString('latin1');
}

type HeaderMap = { headers: Record<string, string>; framing: string[] } | { invalid: string };

/**
 * A header map from a ConfigMap, names lower-cased, values as their bytes; framing fields left out
 * (named in `framing`); invalid when a name is not a header name or a value holds a control byte (it
 * would make HTTP/2 peers refuse the whole answer; src/net/http-field.ts).
 */
function headerMap(data: Readonly<Record<string, string>>): HeaderMap {
  const headers: Record<string, string> = {};
  const framing: string[] = [];
  for (const [name, value] of Object.entries(data)) {
    if (!HEADER_NAME.test(name)) return { invalid: `${JSON.stringify(name)} is not a header name` };
    const wire = wireValue(value);
    if (NOT_FIELD_VALUE.test(wire))
      return { invalid: `the value of ${name} holds a control character (CR, LF, NUL…)` };
    if (framesTheMessage(name)) framing.push(name);
    else headers[name.toLowerCase()] = wire;
  }
  return { headers, framing };
}

/** The warning for framing fields a header ConfigMap names (they are left out). */
function warnFraming(
  framing: readonly string[],
  field: string,
  origin: Origin | null,
  issues: ConfigIssue[],
) {
  for (const name of framing)
    push(
      issues,
      origin,
      field,
      'warning',
      'INVALID_CONFIGMAP_VALUE',
      `${name} frames the message or belongs to one connection: not set (nginx would send it and break the message)`,
    );
}

/**
 * proxy-set-headers values are nginx strings: a variable keepip does not expand would be "" (and an
 * empty value sends no header), so each one is named at load rather than silently dropped.
 */
function warnUnexpandedVariables(
  headers: Readonly<Record<string, string>>,
  field: string,
  origin: Origin | null,
  issues: ConfigIssue[],
): void {
  for (const [name, value] of Object.entries(headers)) {
    const unknown = variablesOf(value).filter((v) => !isRequestVariable(v));
    if (unknown.length === 0) continue;
    const listed = unknown.map((v) => `$${v}`).join(', ');
    push(
      issues,
      origin,
      field,
      'warning',
      'INVALID_CONFIGMAP_VALUE',
      `${name}: ${listed} is not a variable keepip expands; it is sent as "" (no header when nothing else is left)`,
    );
  }
}

/**
 * add-headers, proxy-set-headers and global-allowed-response-headers into `settings`. A ConfigMap that
 * is missing or holds something that is not a header is a warning and adds nothing (ingress-nginx
 * logs it and goes on without).
 */
export function applyHeaderSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  lookup: ConfigMapLookup,
  origin: Origin | null,
  issues: ConfigIssue[],
): void {
  const namespace = settings.configMap?.namespace ?? 'ingress-nginx';
  for (const [key, target] of [
    ['add-headers', 'addHeaders'],
    ['proxy-set-headers', 'proxySetHeaders'],
  ] as const) {
    const value = data[key];
    if (value === undefined || value.trim() === '') continue;
    const field = formatFieldPath(['data', key]);
    const ref = refOf(value, namespace);
    const cm = ref === null ? undefined : lookup(ref.namespace, ref.name);
    const read = cm === undefined ? null : headerMap(cm.data);
    if (read === null || 'invalid' in read) {
      const why = read === null ? 'names no ConfigMap in the manifests' : read.invalid;
      push(
        issues,
        origin,
        field,
        'warning',
        'INVALID_CONFIGMAP_VALUE',
        `${JSON.stringify(value)} ${why}; no headers are added`,
      );
      continue;
    }
    const { headers, framing } = read;
    warnFraming(framing, field, origin, issues);
    if (target === 'proxySetHeaders') warnUnexpandedVariables(headers, field, origin, issues);
    if (Object.keys(headers).length > 0) settings[target] = Object.freeze(headers);
  }
  const allowed = data['global-allowed-response-headers'];
  if (allowed !== undefined)
    settings.allowedResponseHeaders = allowed
      .split(',')
      .map((h) => h.trim())
      .filter((h) => h !== '');
}

/**
 * custom-headers of one Ingress: the ConfigMap's headers, or why its locations are denied (503), as
 * ingress-nginx denies them: a missing ConfigMap, another namespace, a name or value it does not
 * accept, a name global-allowed-response-headers does not list.
 */
export function readCustomHeaders(
  annotations: Readonly<Record<string, string>>,
  ingress: ObjectRef,
  origin: Origin,
  settings: GatewaySettings,
  lookup: ConfigMapLookup,
  issues: ConfigIssue[],
): { headers: Readonly<Record<string, string>> } | { denied: string } | null {
  const key = 'nginx.ingress.kubernetes.io/custom-headers';
  const value = annotations[key];
  if (value === undefined || value.trim() === '') return null;
  const deny = (reason: string) => {
    push(
      issues,
      origin,
      annotationField(key),
      'error',
      'ACCESS_CONFIG_DENIED',
      `${reason}; the locations of this Ingress answer 503, as ingress-nginx denies them`,
    );
    return { denied: `custom-headers: ${reason}` };
  };
  const ref = refOf(value, ingress.namespace);
  if (ref === null) return deny(`${JSON.stringify(value)} is not "namespace/name"`);
  if (ref.namespace !== ingress.namespace)
    return deny(`ConfigMap ${ref.namespace}/${ref.name} is in another namespace`);
  const cm = lookup(ref.namespace, ref.name);
  if (cm === undefined) return deny(`unable to find ConfigMap ${ref.namespace}/${ref.name}`);
  const allowed = settings.allowedResponseHeaders ?? [];
  const headers: Record<string, string> = {};
  for (const [name, v] of Object.entries(cm.data)) {
    if (!HEADER_NAME.test(name)) return deny(`invalid header name ${JSON.stringify(name)} in the ConfigMap`);
    if (!HEADER_VALUE.test(v)) return deny(`invalid header value for ${name} in the ConfigMap`);
    if (!allowed.includes(name))
      return deny(
        `header ${name} is not allowed: list it in the ConfigMap key global-allowed-response-headers`,
      );
    if (framesTheMessage(name)) warnFraming([name], annotationField(key), origin, issues);
    else headers[name.toLowerCase()] = v;
  }
  return { headers: Object.freeze(headers) };
}
