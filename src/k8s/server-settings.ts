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
import { configMapSource, readBool, type ScalarSource } from './scalar-readers.ts';
import { isHeaderName, parseUint } from './values.ts';

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

/** ingress-nginx splits these keys on `,` and trims each entry; empty entries are dropped. */
function list(data: Readonly<Record<string, string>>, key: string): string[] | null {
  const v = data[key];
  if (v === undefined) return null;
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function hstsValue(source: ScalarSource): string | null {
  if (!readBool(source, 'hsts', true)) return null;
  let maxAge = '31536000';
  const age = source.get('hsts-max-age');
  if (age !== undefined) {
    // The text as written (leading zeros too), as nginx puts it in the header.
    if (parseUint(age.trim()) !== null) maxAge = age.trim();
    else source.invalid('hsts-max-age', age, 'a whole number of seconds', maxAge);
  }
  let value = `max-age=${maxAge}`;
  if (readBool(source, 'hsts-include-subdomains', true)) value += '; includeSubDomains';
  if (readBool(source, 'hsts-preload', false)) value += '; preload';
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
  const source = configMapSource(data, (...report) => sink.invalid(...report));
  const agents = blockList(data, 'block-user-agents', sink);
  const referers = blockList(data, 'block-referers', sink);
  const settings: ServerSettings = {
    hsts: hstsValue(source),
    forceSslRedirect: readBool(source, 'force-ssl-redirect', d.forceSslRedirect),
    // As written: isLocationInLocationList trims each entry as ingress-nginx does (spaces only).
    noTlsRedirectLocations: data['no-tls-redirect-locations']?.split(',') ?? d.noTlsRedirectLocations,
    blockUserAgents: agents.entries,
    blockReferers: referers.entries,
    skipAccessLogUrls: skipList(data, sink),
    blockListError: agents.error ?? referers.error,
    // nginx: underscores_in_headers off marks such names invalid; ignore_invalid_headers on drops them.
    underscoresInHeaders:
      readBool(source, 'enable-underscores-in-headers', false) ||
      !readBool(source, 'ignore-invalid-headers', true),
    generateRequestId: readBool(source, 'generate-request-id', d.generateRequestId),
    proxyAddOriginalUriHeader: readBool(source, 'proxy-add-original-uri-header', d.proxyAddOriginalUriHeader),
    hideHeaders: headerNames(data, 'hide-headers', sink),
    allowBackendServerHeader: readBool(source, 'allow-backend-server-header', d.allowBackendServerHeader),
    serverTokens: readBool(source, 'server-tokens', d.serverTokens),
  };
  return settings;
}
