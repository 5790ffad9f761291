// A safety net under the views' field picking: the values the model holds from Secrets (TLS keys and
// certificates, CA bundles, proxy-ssl client keys, htpasswd users and hashes, credentials in auth URLs) are blanked out of
// any text the dashboard sends, such as an issue message that quotes an htpasswd user.
import type { Topology } from '../config/model.ts';

const REDACTED = '[redacted]';

/** Strings from Secrets in `topology`, longest first; PEMs by their base64 lines. */
export function secretValues(topology: Topology): string[] {
  const found = new Set<string>();
  const pem = (text: string | null | undefined) => {
    for (const line of (text ?? '').split('\n'))
      if (line.length >= 16 && !line.startsWith('-----')) found.add(line.trim());
  };
  const add = (text: unknown) => {
    if (typeof text === 'string' && text.length >= 3) found.add(text);
  };
  pem(topology.gateway.defaultCertificate?.certPem);
  pem(topology.gateway.defaultCertificate?.keyPem);
  for (const vhost of topology.gateway.virtualHosts) {
    pem(vhost.tls?.certPem);
    pem(vhost.tls?.keyPem);
    pem(vhost.clientCertificate?.caPem);
    pem(vhost.clientCertificate?.crlPem);
    for (const location of vhost.locations) {
      pem(location.proxySsl?.caPem);
      pem(location.proxySsl?.certPem);
      pem(location.proxySsl?.keyPem);
      const access = (location as { access?: Record<string, unknown> }).access;
      const basic = access?.basicAuth as { users?: { user?: unknown; hash?: unknown }[] } | null | undefined;
      for (const entry of basic?.users ?? []) {
        add(entry.user);
        add(entry.hash);
      }
      for (const key of ['externalAuth'] as const) {
        const url = (access?.[key] as { url?: unknown } | null | undefined)?.url;
        // The userinfo ends at the authority's last `@` (a password may hold one), the authority at `/?#`.
        const userinfo =
          typeof url === 'string' ? /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url)?.[1] : undefined;
        if (userinfo) {
          const colon = userinfo.indexOf(':');
          const parts = colon < 0 ? [] : [userinfo.slice(0, colon), userinfo.slice(colon + 1)];
          for (const part of [userinfo, ...parts, ...userinfo.split(/[:@]/)]) add(part);
        }
      }
    }
  }
  return [...found].sort((a, b) => b.length - a.length);
}

// The scheme bounded (RFC 3986 schemes are short): unbounded, a long run of letters made it quadratic.
const SCHEME = /\b[a-z][a-z0-9+.-]{0,31}:\/\//gi;
/** What ends a quoted URL's authority: `/ ? #`, a quote, a backslash, white space. */
const AUTHORITY_END = /[/?#"'\\\s]/;

/**
 * user:password@ in any URL, wherever it is quoted (an issue about an invalid auth-url quotes it), up to
 * the authority's last `@`: a password may hold one (`user:p@ss@host`). Scanned by hand: a regex that
 * lets `@` into the run before the last one backtracks.
 */
function withoutUserinfo(text: string): string {
  let out = '';
  let from = 0;
  for (const scheme of text.matchAll(SCHEME)) {
    const start = scheme.index + scheme[0].length;
    if (start < from) continue;
    let at = -1;
    for (let i = start; i < text.length && !AUTHORITY_END.test(text[i]!); i++) if (text[i] === '@') at = i;
    if (at < 0) continue;
    out += text.slice(from, start) + REDACTED;
    from = at;
  }
  return out + text.slice(from);
}

function redactText(text: string, secrets: readonly string[]): string {
  let out = text.includes('@') ? withoutUserinfo(text) : text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

/** A copy of a JSON value with every secret blanked out of its strings (keys included). */
export function redactDeep(value: unknown, secrets: readonly string[]): unknown {
  if (typeof value === 'string') return redactText(value, secrets);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [redactText(k, secrets), redactDeep(v, secrets)]),
    );
  return value;
}

/** Marks stand in for the client's text while the rest is blanked: private-use characters no Secret holds. */
const MARK = /\uE000(\d+)\uE001/g;

/**
 * `render(record)` with the secrets blanked out of what the configuration put in it, never out of
 * what the client wrote (`fields`, shown as sent): blanking a client's text where it equals a Secret
 * value would tell anyone who can send a request and read the dashboard that the guess was right.
 * Each word of a field is marked apart, so list-shaped values (a forwarded-for header) keep their commas.
 */
export function redactAround<T extends object>(
  record: T,
  fields: readonly (keyof T)[],
  render: (record: T) => unknown,
  secrets: readonly string[],
): unknown {
  const originals: string[] = [];
  const mark = (word: string) => `\uE000${originals.push(word) - 1}\uE001`;
  const masked = { ...record };
  for (const field of fields) {
    const value = record[field];
    if (typeof value === 'string') masked[field] = value.replace(/[^, ]+/g, mark) as T[keyof T];
  }
  return restore(redactDeep(render(masked), secrets), originals);
}

function restore(value: unknown, originals: readonly string[]): unknown {
  if (typeof value === 'string') return value.replace(MARK, (_, i: string) => originals[Number(i)] ?? '');
  if (Array.isArray(value)) return value.map((v) => restore(v, originals));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, restore(v, originals)]));
  return value;
}
