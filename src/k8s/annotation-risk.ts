// The ConfigMap's annotations-risk-level and annotation-value-word-blocklist: an administrator's limits
// on what Ingress authors may ask for. As ingress-nginx (annotations/parser CheckAnnotationRisk and
// store.go checkBadAnnotationValue), an Ingress that uses an annotation riskier than the level, or whose
// annotation value contains a blocked word, is not served at all (and refused at admission): serving it
// without the annotation could drop an access rule the author meant. Pure.
import type { GatewaySettings } from '../config/model.ts';
import { DEFAULT_ANNOTATIONS_PREFIX } from './annotation-prefix.ts';
import { trimGoSpace } from './values.ts';
import { wordFinder } from './word-search.ts';

export const ANNOTATION_RISKS = ['Low', 'Medium', 'High', 'Critical'] as const;
export type AnnotationRisk = (typeof ANNOTATION_RISKS)[number];

export const ANNOTATION_RISK_CONFIGMAP_KEYS = ['annotations-risk-level', 'annotation-value-word-blocklist'];

/** ingress-nginx's default since 1.12: everything but the Critical annotations (the snippets). */
export const DEFAULT_ANNOTATIONS_RISK_LEVEL: AnnotationRisk = 'High';

const L = 'Low';
const M = 'Medium';
const H = 'High';
const C = 'Critical';

/**
 * The risk each annotation parser of ingress-nginx declares (internal/ingress/annotations/<parser>/
 * main.go, `Risk: parser.AnnotationRisk…`), aliases included. A name not here is checked by no
 * parser there, so no level refuses it.
 */
export const ANNOTATION_RISK: Readonly<Record<string, AnnotationRisk>> = {
  affinity: L,
  'affinity-canary-behavior': L,
  'affinity-mode': M,
  'allowlist-source-range': M,
  'whitelist-source-range': M,
  'app-root': M,
  'auth-always-set-cookie': L,
  'auth-cache-duration': M,
  'auth-cache-key': M,
  'auth-keepalive': L,
  'auth-keepalive-requests': L,
  'auth-keepalive-share-vars': L,
  'auth-keepalive-timeout': L,
  'auth-method': L,
  'auth-proxy-set-headers': M,
  'auth-realm': M,
  'auth-request-redirect': M,
  'auth-response-headers': M,
  'auth-secret': M,
  'auth-secret-type': L,
  'auth-signin': H,
  'auth-signin-redirect-param': M,
  'auth-snippet': C,
  'auth-tls-error-page': H,
  'auth-tls-match-cn': H,
  'auth-tls-pass-certificate-to-upstream': L,
  'auth-tls-secret': M,
  'auth-tls-verify-client': M,
  'auth-tls-verify-depth': L,
  'auth-type': L,
  'auth-url': H,
  'backend-protocol': L,
  canary: L,
  'canary-by-cookie': M,
  'canary-by-header': M,
  'canary-by-header-pattern': M,
  'canary-by-header-value': M,
  'canary-weight': L,
  'canary-weight-total': L,
  'client-body-buffer-size': L,
  'configuration-snippet': C,
  'connection-proxy-header': L,
  'cors-allow-credentials': L,
  'cors-allow-headers': M,
  'cors-allow-methods': M,
  'cors-allow-origin': M,
  'cors-expose-headers': M,
  'cors-max-age': L,
  'custom-headers': M,
  'custom-http-errors': L,
  'default-backend': L,
  'denylist-source-range': M,
  'disable-proxy-intercept-errors': L,
  'enable-access-log': L,
  'enable-cors': L,
  'enable-global-auth': L,
  'enable-modsecurity': L,
  'enable-opentelemetry': L,
  'enable-owasp-core-rules': L,
  'enable-rewrite-log': L,
  'fastcgi-index': M,
  'fastcgi-params-configmap': M,
  'force-ssl-redirect': M,
  'from-to-www-redirect': L,
  'http2-push-preload': L,
  'limit-allowlist': L,
  'limit-whitelist': L,
  'limit-burst-multiplier': L,
  'limit-connections': L,
  'limit-rate': L,
  'limit-rate-after': L,
  'limit-rpm': L,
  'limit-rps': L,
  'load-balance': L,
  'mirror-host': H,
  'mirror-request-body': L,
  'mirror-target': H,
  'modsecurity-snippet': C,
  'modsecurity-transaction-id': H,
  'opentelemetry-operation-name': M,
  'opentelemetry-trust-incoming-span': L,
  'permanent-redirect': M,
  'permanent-redirect-code': L,
  'preserve-trailing-slash': M,
  'proxy-body-size': M,
  'proxy-buffer-size': L,
  'proxy-buffering': L,
  'proxy-buffers-number': L,
  'proxy-busy-buffers-size': L,
  'proxy-connect-timeout': L,
  'proxy-cookie-domain': M,
  'proxy-cookie-path': M,
  'proxy-http-version': L,
  'proxy-max-temp-file-size': L,
  'proxy-next-upstream': M,
  'proxy-next-upstream-timeout': L,
  'proxy-next-upstream-tries': L,
  'proxy-read-timeout': L,
  'proxy-redirect-from': M,
  'proxy-redirect-to': M,
  'proxy-request-buffering': L,
  'proxy-send-timeout': L,
  'proxy-ssl-ciphers': M,
  'proxy-ssl-name': H,
  'proxy-ssl-protocols': L,
  'proxy-ssl-secret': M,
  'proxy-ssl-server-name': L,
  'proxy-ssl-verify': L,
  'proxy-ssl-verify-depth': L,
  'relative-redirects': L,
  'rewrite-target': M,
  satisfy: L,
  'server-alias': H,
  'server-snippet': C,
  'service-upstream': L,
  'session-cookie-change-on-failure': L,
  'session-cookie-conditional-samesite-none': L,
  'session-cookie-domain': M,
  'session-cookie-expires': M,
  'session-cookie-max-age': M,
  'session-cookie-name': M,
  'session-cookie-path': M,
  'session-cookie-samesite': L,
  'session-cookie-secure': L,
  'ssl-ciphers': L,
  'ssl-passthrough': L,
  'ssl-prefer-server-ciphers': L,
  'ssl-redirect': L,
  'stream-snippet': C,
  'temporal-redirect': M,
  'temporal-redirect-code': L,
  'upstream-hash-by': H,
  'upstream-hash-by-subset': L,
  'upstream-hash-by-subset-size': L,
  'upstream-vhost': L,
  'use-port-in-redirects': L,
  'use-regex': L,
  'x-forwarded-prefix': M,
};

/** The level as ingress-nginx's StringRiskToRisk reads it: any other word is Low (the strictest). */
export function readRiskLevel(value: string): { level: AnnotationRisk; known: boolean } {
  const known = ANNOTATION_RISKS.find((r) => r.toLowerCase() === value.toLowerCase());
  return known === undefined ? { level: 'Low', known: false } : { level: known, known: true };
}

/**
 * The blocklist as ingress-nginx's admission splits it: the value trimmed, cut at commas, each word
 * trimmed (Go's strings.TrimSpace: NEL is a space there, U+FEFF is not). An empty word is kept: Go's
 * strings.Contains finds it in every value, so it blocks every Ingress with an annotation (as there).
 */
export function readWordBlocklist(value: string): string[] {
  if (value === '') return [];
  return trimGoSpace(value).split(',').map(trimGoSpace);
}

/**
 * Reads the two ConfigMap keys into the settings; an unknown level is reported and read as Low (not
 * the default High: Low is what ingress-nginx applies to it, so the warning says so).
 */
export function applyAnnotationRiskSettings(
  data: Readonly<Record<string, string>>,
  settings: GatewaySettings,
  warn: (key: string, message: string) => void,
): void {
  const level = data['annotations-risk-level'];
  if (level !== undefined) {
    const read = readRiskLevel(level);
    if (!read.known)
      warn(
        'annotations-risk-level',
        `${JSON.stringify(level)} is not Critical, High, Medium or Low; read as Low (not the default High), ` +
          'as ingress-nginx reads any other word: Ingresses with Medium or higher annotations are not served',
      );
    settings.annotationsRiskLevel = read.level;
  }
  const blocklist = data['annotation-value-word-blocklist'];
  if (blocklist !== undefined) settings.annotationValueWordBlocklist = readWordBlocklist(blocklist);
}

/** Why an Ingress is not served under the settings' limits: one line per annotation, or none. */
export interface AnnotationPolicyRefusal {
  code: 'ANNOTATION_TOO_RISKY' | 'ANNOTATION_VALUE_BLOCKED';
  /** The annotation's full key, `nginx.ingress.kubernetes.io/<name>`. */
  key: string;
  message: string;
}

const PREFIX = `${DEFAULT_ANNOTATIONS_PREFIX}/`;
const NO_WORDS: readonly string[] = [];

/** The refusals of one Ingress's annotations (a custom prefix already folded), in key order. */
export function annotationPolicyRefusals(
  annotations: Readonly<Record<string, string>>,
  limits: Pick<GatewaySettings, 'annotationsRiskLevel' | 'annotationValueWordBlocklist'>,
): AnnotationPolicyRefusal[] {
  const max = ANNOTATION_RISKS.indexOf(limits.annotationsRiskLevel ?? DEFAULT_ANNOTATIONS_RISK_LEVEL);
  const blocked = wordFinder(limits.annotationValueWordBlocklist ?? NO_WORDS);
  const refusals: AnnotationPolicyRefusal[] = [];
  for (const key of Object.keys(annotations).sort()) {
    if (!key.startsWith(PREFIX)) continue;
    const value = annotations[key] ?? '';
    const word = blocked(value);
    if (word !== undefined) {
      const what =
        word === ''
          ? 'an empty word (the blocklist has an empty entry, which every value contains)'
          : `the blocked word ${JSON.stringify(word)}`;
      refusals.push({
        code: 'ANNOTATION_VALUE_BLOCKED',
        key,
        message: `contains ${what} (annotation-value-word-blocklist): the Ingress is not served`,
      });
    }
    const risk = ANNOTATION_RISK[key.slice(PREFIX.length)];
    if (risk !== undefined && ANNOTATION_RISKS.indexOf(risk) > max) {
      const level = ANNOTATION_RISKS[max];
      refusals.push({
        code: 'ANNOTATION_TOO_RISKY',
        key,
        message: `is a ${risk} risk annotation and annotations-risk-level is ${level}: the Ingress is not served (raise the level in the controller ConfigMap, or remove the annotation)`,
      });
    }
  }
  return refusals;
}
