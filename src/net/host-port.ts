// ADDR:PORT text as users type it (`--listen 127.0.0.1:8080`, `--target [::1]:80`, `:8080`) and as
// start-up lines and logs print it. Address checks use the strict parser of ip.ts; a listen address
// may also carry an IPv6 zone (`[fe80::1%eth0]:80`), which the socket layer accepts.
import type { Result } from '../result.ts';
import { parseIpUnfolded, parseIpv4Value } from './ip.ts';

export interface HostPort {
  host: string;
  port: number;
}

/** The error is the message alone: every caller is a command line that prints it after the flag. */
export type HostPortResult = Result<HostPort, string>;

/** A listen address as a flag takes it: `ADDR:PORT`, or a bare `PORT` meaning 127.0.0.1:PORT. */
export function parseListenAddress(text: string): HostPortResult {
  if (/^\d{1,5}$/.test(text)) {
    const port = Number(text);
    return port <= 65535
      ? { ok: true, value: { host: '127.0.0.1', port } }
      : { ok: false, error: `bad port ${text}` };
  }
  return parseHostPort(text);
}

/** Parses `host:port`, `[v6]:port` or `:port` (host defaults to `defaultHost`). Port 0 means "any free port". */
export function parseHostPort(text: string, defaultHost = '127.0.0.1'): HostPortResult {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!match) return { ok: false, error: `"${text}" is not ADDR:PORT (IPv6 as [ADDR]:PORT)` };
  const host = match[1] ?? (match[2] === '' ? defaultHost : match[2]!);
  const port = Number(match[3]);
  if (port > 65535) return { ok: false, error: `port ${port} in "${text}" is out of range (0-65535)` };
  if (match[1] !== undefined && !isIpv6Host(host))
    return { ok: false, error: `"${host}" is not an IPv6 address` };
  if (match[1] === undefined && host !== 'localhost' && !isIpv4Host(host)) {
    return { ok: false, error: `"${host}" is not an IPv4 address (write IPv6 as [ADDR]:PORT)` };
  }
  return { ok: true, value: { host, port } };
}

/** Formats a host and port the way users type them: IPv6 in brackets. */
export function formatHostPort(host: string, port: number): string {
  return isIpv6Host(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A dotted quad, strictly (no leading zeros). */
export function isIpv4Host(host: string): boolean {
  return parseIpv4Value(host, 0, host.length) >= 0;
}

/** IPv6 text, mapped forms included, optionally with a zone (`%eth0`) as socket addresses carry one. */
export function isIpv6Host(host: string): boolean {
  const percent = host.indexOf('%');
  const address = percent < 0 ? host : host.slice(0, percent);
  if (percent >= 0 && !ZONE.test(host.slice(percent + 1))) return false;
  return parseIpUnfolded(address)?.family === 6;
}

/** The zone characters node:net's isIPv6 accepts. */
const ZONE = /^[0-9a-zA-Z\-.:]+$/;

/** A host name or [IPv6], and a port of digits: what nginx's ngx_parse_url takes for an authority. */
export const NGINX_AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?$/;
