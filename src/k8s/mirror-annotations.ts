// mirror-target, mirror-host and mirror-request-body, read per Ingress as ingress-nginx 1.15 reads them
// (internal/ingress/annotations/mirror): target and host must pass its server-name check (IsValidRegex:
// [-._~a-zA-Z0-9/:] and the regex characters ^$[](){}*+?|&=\, spaces trimmed); the request body is
// "on" unless the value is exactly "off"; the Host defaults to the target's host name without its port.
// Its template then writes `proxy_pass <target>` only when the target is a URL with a host, and nginx
// only takes http:// and https:// there; keepip reports anything else as invalid (no mirror) instead of
// writing a location nginx would refuse or never use. Stricter than ingress-nginx, for safety: the
// target's scheme and authority must be written out (a variable there would let a client choose where
// its copy goes). Pure.
import type { MirrorModel } from '../config/model.ts';
import { IS_VALID_REGEX } from './validators.ts';

export const MIRROR_ANNOTATIONS: readonly string[] = ['mirror-target', 'mirror-host', 'mirror-request-body'];

/** ingress-nginx's ValidateServerName applies IsValidRegex. */
const SERVER_NAME = IS_VALID_REGEX;
const ORIGIN = /^(https?):\/\/([^/?$]*)/i;
const AUTHORITY = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$/;

export interface MirrorSink {
  invalid(name: string, value: string, expected: string, kept: string): void;
}

type Origin = Pick<MirrorModel, 'origin' | 'scheme' | 'hostname' | 'port'> & { hostHeader: string };

/** The literal `scheme://authority` that starts a target, or null when it has none keepip can use. */
export function mirrorOrigin(target: string): Origin | null {
  const m = ORIGIN.exec(target);
  if (m === null) return null;
  // `http://a.example$var`: the variable may extend the host; the request-time check refuses that.
  const authority = AUTHORITY.exec(m[2]!);
  if (authority === null || m[2]!.includes('..')) return null;
  const scheme = m[1]!.toLowerCase() as 'http' | 'https';
  const port = authority[2] === undefined ? (scheme === 'https' ? 443 : 80) : Number(authority[2]);
  if (port < 1 || port > 65535) return null;
  const bracketed = authority[1]!;
  const hostname = bracketed.startsWith('[') ? bracketed.slice(1, -1) : bracketed;
  return { origin: `${scheme}://${m[2]!}`, scheme, hostname, port, hostHeader: bracketed };
}

const TARGET_TEXT =
  'an http:// or https:// URL whose host is written out, made of [-._~a-zA-Z0-9/:?&=] and nginx variables (e.g. https://mirror.example$request_uri)';

/** The mirror of one Ingress's locations, or null (no mirror-target, or an invalid one: warned). */
export function readMirror(get: (name: string) => string | undefined, sink: MirrorSink): MirrorModel | null {
  const body = get('mirror-request-body');
  if (body !== undefined && !/^(on|off)$/.test(body.replaceAll(' ', '')))
    sink.invalid('mirror-request-body', body, '"on" or "off"', '"on"');
  const raw = get('mirror-target');
  if (raw === undefined) return null;
  const target = raw.trim();
  const origin = SERVER_NAME.test(target) ? mirrorOrigin(target) : null;
  if (origin === null) {
    sink.invalid('mirror-target', raw, TARGET_TEXT, 'no mirror');
    return null;
  }
  let host = origin.hostHeader;
  const rawHost = get('mirror-host');
  if (rawHost !== undefined) {
    const trimmed = rawHost.trim();
    if (trimmed !== '' && SERVER_NAME.test(trimmed)) host = trimmed;
    else sink.invalid('mirror-host', rawHost, 'a host name (server-name characters)', `Host ${host}`);
  }
  const { hostHeader: _, ...where } = origin;
  return { target, ...where, host, requestBody: body?.replaceAll(' ', '') !== 'off' };
}
