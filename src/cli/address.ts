// ADDR:PORT arguments of the command line (`--listen 127.0.0.1:8080`, `--target [::1]:80`, `:8080`).
import { isIP } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

export type HostPortResult = { ok: true; value: HostPort } | { ok: false; error: string };

/** Parses `host:port`, `[v6]:port` or `:port` (host defaults to `defaultHost`). Port 0 means "any free port". */
export function parseHostPort(text: string, defaultHost = '127.0.0.1'): HostPortResult {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!match) return { ok: false, error: `"${text}" is not ADDR:PORT (IPv6 as [ADDR]:PORT)` };
  const host = match[1] ?? (match[2] === '' ? defaultHost : match[2]!);
  const port = Number(match[3]);
  if (port > 65535) return { ok: false, error: `port ${port} in "${text}" is out of range (0-65535)` };
  if (match[1] !== undefined && isIP(host) !== 6)
    return { ok: false, error: `"${host}" is not an IPv6 address` };
  if (match[1] === undefined && host !== 'localhost' && isIP(host) !== 4) {
    return { ok: false, error: `"${host}" is not an IPv4 address (write IPv6 as [ADDR]:PORT)` };
  }
  return { ok: true, value: { host, port } };
}

/** Formats a host and port the way users type them: IPv6 in brackets. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
