// The controller ConfigMap keys for ingress-nginx's http- and server-level behaviours
// (src/config/server-settings.ts): hsts, hsts-max-age, hsts-include-subdomains, hsts-preload,
// force-ssl-redirect, no-tls-redirect-locations, block-user-agents, block-referers,
// skip-access-log-urls, enable-underscores-in-headers, ignore-invalid-headers, generate-request-id,
// proxy-add-original-uri-header, hide-headers, allow-backend-server-header and server-tokens. A bad
// value keeps the default with a warning, except a block list entry that is not a usable regular
// expression: nginx would refuse the whole configuration, keepip fails closed (every request answers
// 503 until it is fixed), as for an invalid block-cidrs.
import { readMapEntry } from '../config/nginx-map.ts';
import { DEFAULT_SERVER_SETTINGS, type ServerSettings } from '../config/server-settings.ts';
import { isHeaderName, parseGoBool, parseUint } from './values.ts';

export const SERVER_SETTINGS_KEYS: readonly string[] = [
  'hsts',
  'hsts-max-age',
  'hsts-include-subdomains',
  'hsts-preload',
  'force-ssl-redirect',
  'no-tls-redirect-locations',
  'block-user-agents',
  'block-referers',
  'skip-access-log-urls',
  'enable-underscores-in-headers',
  'ignore-invalid-headers',
  'generate-request-id',
  'proxy-add-original-uri-header',
  'hide-headers',
  'allow-backend-server-header',
  'server-tokens',
];

export interface ServerSettingsSink {
  invalid(key: string, value: string, expected: string, kept: string): void;
  /** A value that makes the settings unusable: reported as an error; the result fails closed. */
  failClosed(key: string, message: string): void;
}

function bool(
  data: Readonly<Record<string, string>>,
  key: string,
  fallback: boolean,
  sink: ServerSettingsSink,
) {
  const v = data[key];
  if (v === undefined) return fallback;
  const b = parseGoBool(v);
  if (b === null) sink.invalid(key, v, 'a boolean', String(fallback));
  return b ?? fallback;
}

/** ingress-nginx splits these keys on `,` and trims each entry; empty entries are dropped. */
function list(data: Readonly<Record<string, string>>, key: string): string[] | null {
  const v = data[key];
  if (v === undefined) return null;
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function hstsValue(data: Readonly<Record<string, string>>, sink: ServerSettingsSink): string | null {
  if (!bool(data, 'hsts', true, sink)) return null;
  let maxAge = '31536000';
  const age = data['hsts-max-age'];
  if (age !== undefined) {
    if (parseUint(age.trim()) !== null) maxAge = age.trim();
    else sink.invalid('hsts-max-age', age, 'a whole number of seconds', maxAge);
  }
  let value = `max-age=${maxAge}`;
  if (bool(data, 'hsts-include-subdomains', true, sink)) value += '; includeSubDomains';
  if (bool(data, 'hsts-preload', false, sink)) value += '; preload';
  return value;
}

function blockList(
  data: Readonly<Record<string, string>>,
  key: string,
  sink: ServerSettingsSink,
): { entries: string[]; error: string | null } {
  const entries = list(data, key) ?? [];
  for (const entry of entries) {
    const read = readMapEntry(entry);
    if (read.ok) continue;
    const error = `${key}: ${read.error}`;
    sink.failClosed(key, `${read.error}; fails closed: every request answers 503`);
    return { entries, error };
  }
  return { entries, error: null };
}

/** hide-headers: header names, lower-cased; one that is not a header name is left out with a warning. */
function headerNames(
  data: Readonly<Record<string, string>>,
  key: string,
  sink: ServerSettingsSink,
): string[] {
  return (list(data, key) ?? []).flatMap((name) => {
    if (isHeaderName(name)) return [name.toLowerCase()];
    sink.invalid(key, name, 'an HTTP header name', 'to pass it');
    return [];
  });
}

/** skip-access-log-urls: an unusable regular expression is left out with a warning (nothing to fail closed). */
function skipList(data: Readonly<Record<string, string>>, sink: ServerSettingsSink): string[] {
  const entries = list(data, 'skip-access-log-urls') ?? [];
  return entries.filter((entry) => {
    const read = readMapEntry(entry);
    if (!read.ok) sink.invalid('skip-access-log-urls', entry, 'a URI or a regular expression', 'to log it');
    return read.ok;
  });
}

export function readServerSettings(
  data: Readonly<Record<string, string>>,
  sink: ServerSettingsSink,
): ServerSettings {
  const d = DEFAULT_SERVER_SETTINGS;
  const agents = blockList(data, 'block-user-agents', sink);
  const referers = blockList(data, 'block-referers', sink);
  const settings: ServerSettings = {
    hsts: hstsValue(data, sink),
    forceSslRedirect: bool(data, 'force-ssl-redirect', d.forceSslRedirect, sink),
    noTlsRedirectLocations: list(data, 'no-tls-redirect-locations') ?? d.noTlsRedirectLocations,
    blockUserAgents: agents.entries,
    blockReferers: referers.entries,
    skipAccessLogUrls: skipList(data, sink),
    blockListError: agents.error ?? referers.error,
    // nginx: underscores_in_headers off marks such names invalid; ignore_invalid_headers on drops them.
    underscoresInHeaders:
      bool(data, 'enable-underscores-in-headers', false, sink) ||
      !bool(data, 'ignore-invalid-headers', true, sink),
    generateRequestId: bool(data, 'generate-request-id', d.generateRequestId, sink),
    proxyAddOriginalUriHeader: bool(data, 'proxy-add-original-uri-header', d.proxyAddOriginalUriHeader, sink),
    hideHeaders: headerNames(data, 'hide-headers', sink),
    allowBackendServerHeader: bool(data, 'allow-backend-server-header', d.allowBackendServerHeader, sink),
    serverTokens: bool(data, 'server-tokens', d.serverTokens, sink),
  };
  return settings;
}
