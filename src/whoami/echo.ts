// What the whoami backend tells a client about its request: the JSON record (a contract: the doctor's
// --probe and the end-to-end tests parse it) and a traefik/whoami-style text rendering. Pure: the
// server fills in the socket facts, this module only shapes them.
import { parseDurationMs } from '../config/duration.ts';
import { formatHostPort } from '../net/host-port.ts';
import { foldMappedIpv4 } from '../net/ip.ts';

export { foldMappedIpv4 };

export interface WhoamiBody {
  bytes: number;
  sha256: string;
}

export interface WhoamiEcho {
  name: string;
  hostname: string;
  /** Canonical: an IPv4-mapped IPv6 peer (::ffff:a.b.c.d) is folded to a.b.c.d. */
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  method: string;
  /** The raw request target, query included. */
  url: string;
  /** The Host header as received ('' when absent). */
  host: string;
  /** The request target without its query. */
  path: string;
  protocol: string;
  /** Lower-case names; a repeated header's values joined with ", " in arrival order. */
  headers: Record<string, string>;
  body?: WhoamiBody;
}

export interface RequestFacts {
  name: string;
  hostname: string;
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  method: string;
  url: string;
  httpVersion: string;
  /** Node's rawHeaders: [name, value, name, value, ...] as received. */
  rawHeaders: readonly string[];
  body?: WhoamiBody;
}

/** Joins repeated headers with ", " under their lower-case name, keeping arrival order. */
export function collectHeaders(rawHeaders: readonly string[]): Record<string, string> {
  // A null-prototype object: a header named __proto__ must be echoed, not reach Object.prototype.
  const headers: Record<string, string> = Object.create(null);
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    const previous = headers[name];
    headers[name] = previous === undefined ? value : `${previous}, ${value}`;
  }
  return headers;
}

export function describeRequest(facts: RequestFacts): WhoamiEcho {
  const headers = collectHeaders(facts.rawHeaders);
  const queryAt = facts.url.indexOf('?');
  const echo: WhoamiEcho = {
    name: facts.name,
    hostname: facts.hostname,
    remoteAddress: foldMappedIpv4(facts.remoteAddress),
    remotePort: facts.remotePort,
    localAddress: foldMappedIpv4(facts.localAddress),
    localPort: facts.localPort,
    method: facts.method,
    url: facts.url,
    host: headers.host ?? '',
    path: queryAt === -1 ? facts.url : facts.url.slice(0, queryAt),
    protocol: `HTTP/${facts.httpVersion}`,
    headers: { ...headers },
  };
  if (facts.body !== undefined) echo.body = facts.body;
  return echo;
}

/** The text form, like traefik/whoami: who answered, who asked, then the request as received. */
export function renderText(echo: WhoamiEcho, rawHeaders: readonly string[]): string {
  const lines = [
    `Name: ${echo.name}`,
    `Hostname: ${echo.hostname}`,
    `IP: ${echo.localAddress}`,
    `RemoteAddr: ${formatHostPort(echo.remoteAddress, echo.remotePort)}`,
    `${echo.method} ${echo.url} ${echo.protocol}`,
  ];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) lines.push(`${rawHeaders[i]}: ${rawHeaders[i + 1]}`);
  if (echo.body !== undefined) lines.push('', `Body: ${echo.body.bytes} bytes, sha256 ${echo.body.sha256}`);
  return `${lines.join('\n')}\n`;
}

/** JSON when the client asks for it (Accept: application/json, or ?format=json), text otherwise. */
export function wantsJson(url: string, accept: string | undefined): boolean {
  const queryAt = url.indexOf('?');
  if (queryAt !== -1) {
    const format = new URLSearchParams(url.slice(queryAt + 1)).get('format');
    if (format === 'json') return true;
    if (format === 'text') return false;
  }
  return accept !== undefined && /\bapplication\/json\b/i.test(accept);
}

export type WaitResult = { ok: true; ms: number } | { ok: false; error: { code: string; message: string } };

/** Upper bound of ?wait=, so a test cannot park a connection for ever. */
export const MAX_WAIT_MS = 30_000;

/** Parses ?wait= values: "250ms", "1.5s", "2" (seconds, as every duration in keepip), at most MAX_WAIT_MS. */
export function parseWait(value: string): WaitResult {
  const ms = parseDurationMs(value);
  if (ms === null) {
    return {
      ok: false,
      error: { code: 'WHOAMI_BAD_WAIT', message: `wait "${value}" is not a duration (e.g. 250ms, 2s)` },
    };
  }
  if (ms > MAX_WAIT_MS) {
    return {
      ok: false,
      error: { code: 'WHOAMI_WAIT_TOO_LONG', message: `wait ${value} exceeds ${MAX_WAIT_MS} ms` },
    };
  }
  return { ok: true, ms };
}
