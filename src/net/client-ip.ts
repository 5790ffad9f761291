// Who is the client? (Invariants I2, I3.) Composable strategies, each refining the previous answer
// (traefik's pkg/ip idea: the strategy decides the address, the CidrSet decides trust, the access
// policy combines them):
//
//   socket  ->  PROXY header (use-proxy-protocol)  ->  forwarded header walk (use-forwarded-headers or
//   enable-real-ip; X-Forwarded-For-style lists, or RFC 7239 Forwarded when that is the header name)
//
// A later strategy only acts when the address the previous one settled on is trusted. That one rule
// gives ingress-nginx's semantics: the PROXY header counts only from a trusted peer, a forwarded header
// only from a trusted peer, and with both on (the v1.13 rule) the forwarded header counts only when the
// PROXY address is itself trusted, else the PROXY address stands. Forwarded lists are walked right to
// left past trusted addresses (nginx real_ip_recursive on): the first untrusted address is the client;
// when every entry is trusted, the left-most one. Pure: no sockets.
import type { CidrSet } from './cidr-set.ts';
import { canonicalIp, formatIp, type IpAddress, ipv4, parseIp, parseIpv4Value } from './ip.ts';

export type ClientIpProvenance =
  | { kind: 'socket' }
  | { kind: 'proxy-protocol' }
  /** index: 0-based position of the entry in the header, counted from the left, empty entries skipped. */
  | { kind: 'forwarded-header'; header: string; index: number }
  | { kind: 'forwarded-rfc7239'; index: number };

export type ClientIpErrorCode =
  | 'CLIENT_IP_BAD_PEER'
  | 'CLIENT_IP_BAD_PROXY_SOURCE'
  | 'CLIENT_IP_MALFORMED_ENTRY'
  | 'CLIENT_IP_MALFORMED_FORWARDED'
  | 'CLIENT_IP_UNTRUSTED_RELAY';

export interface ClientIp {
  /**
   * The client address in canonical form. '' when the client cannot be known (see `error`): a trusted
   * hop handed over something that is not an address. '' matches no rule, so any access rule denies.
   */
  address: string;
  provenance: ClientIpProvenance;
  /** Whether the TCP peer itself is in the trusted set (proxy-real-ip-cidr). */
  peerTrusted: boolean;
  /**
   * Whether the hop that sent this request's HTTP headers is trusted: the PROXY header's client when
   * one was accepted (the load balancer only relays bytes), else the TCP peer. Decided once per
   * request; every forwarded header (X-Forwarded-For, -Host, -Proto, -Port, Forwarded) is believed
   * only when this is true.
   */
  headersTrusted: boolean;
  error?: { code: ClientIpErrorCode; message: string };
}

/** Node's IncomingHttpHeaders: lowercase names, a string (repeated headers joined with ", ") or a list. */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

export interface ClientIpInput {
  peerAddress: string;
  /** The PROXY header's source address when the listener accepted one (null for LOCAL/UNKNOWN or none). */
  proxySource: string | null;
  /** The connection began with a PROXY header (any command), accepted under the configuration of then. */
  proxied?: boolean;
  headers: RequestHeaders;
}

/** Refines the answer so far; returns `current` unchanged when it has nothing to say. */
export type ClientIpStrategy = (input: ClientIpInput, current: ClientIp, trusted: CidrSet) => ClientIp;

export interface ClientIpSettings {
  useProxyProtocol: boolean;
  trusted: CidrSet;
  useForwardedHeaders: boolean;
  enableRealIp: boolean;
  /** e.g. 'X-Forwarded-For', 'X-Real-IP', or 'Forwarded' (RFC 7239). Case-insensitive. */
  forwardedForHeader: string;
}

export interface ClientIpResolver {
  resolve(input: ClientIpInput): ClientIp;
  /** The strategy names in order, e.g. ["socket", "proxy-protocol", "x-forwarded-for"], for start-up lines. */
  readonly strategies: readonly string[];
}

/** No client can be known from the connection itself: nothing trusted, every rule denies. */
function unknownAtSocket(code: ClientIpErrorCode, message: string): ClientIp {
  return {
    address: '',
    provenance: { kind: 'socket' },
    peerTrusted: false,
    headersTrusted: false,
    error: { code, message },
  };
}

/** The start of every chain: the TCP peer. */
export function socketStrategy(input: ClientIpInput, trusted: CidrSet): ClientIp {
  const ip = parseIp(input.peerAddress);
  if (ip === null) {
    return unknownAtSocket(
      'CLIENT_IP_BAD_PEER',
      `peer address ${quote(input.peerAddress)} is not an IP address`,
    );
  }
  const peerTrusted = trusted.has(ip);
  return { address: formatIp(ip), provenance: { kind: 'socket' }, peerTrusted, headersTrusted: peerTrusted };
}

/**
 * The PROXY header's source, when the peer that sent it is trusted. A header without one (LOCAL,
 * UNKNOWN, UNSPEC, UNIX) keeps the peer as the client, and nobody vouches for the request's forwarded
 * headers: ingress-nginx's $proxy_protocol_addr is then empty, so its forwarded-for reading falls back
 * to that empty address and realip keeps the peer.
 */
export const proxyProtocolStrategy: ClientIpStrategy = (input, current, trusted) => {
  if (!current.peerTrusted || current.provenance.kind !== 'socket') return current;
  if (input.proxySource === null) return { ...current, headersTrusted: false };
  const address = canonicalIp(input.proxySource);
  if (address === null) {
    return {
      address: '',
      provenance: { kind: 'proxy-protocol' },
      peerTrusted: current.peerTrusted,
      headersTrusted: false,
      error: {
        code: 'CLIENT_IP_BAD_PROXY_SOURCE',
        message: `PROXY source ${quote(input.proxySource)} is not an IP address`,
      },
    };
  }
  return {
    address,
    provenance: { kind: 'proxy-protocol' },
    peerTrusted: current.peerTrusted,
    headersTrusted: trusted.has(address),
  };
};

function headerValue(headers: RequestHeaders, lowerName: string): string | undefined {
  const value = headers[lowerName];
  return Array.isArray(value) ? value.join(', ') : value;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 61)}...` : text);
}

// nginx splits X-Forwarded-For on spaces and commas only (ngx_http_get_forwarded_addr).
function isListSeparator(c: number): boolean {
  return c === 32 || c === 44;
}

function parsePort(text: string, start: number, end: number): boolean {
  if (end - start < 1 || end - start > 5) return false;
  let port = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    port = port * 10 + (c - 48);
  }
  return port >= 1 && port <= 65535;
}

/**
 * One X-Forwarded-For entry, strictly: an address, or as nginx's ngx_parse_addr_port also accepts,
 * "a.b.c.d:port" or "[v6]:port". Zone ids, leading zeros, obfuscated or "unknown" entries: null.
 */
export function parseForwardedEntry(token: string): IpAddress | null {
  const ip = parseIp(token);
  if (ip !== null) return ip;
  const length = token.length;
  if (length === 0 || length > 64) return null;
  if (token.charCodeAt(0) === 91 /* [ */) {
    const close = token.indexOf(']');
    if (close < 0 || token.charCodeAt(close + 1) !== 58 || !parsePort(token, close + 2, length)) return null;
    const inner = parseIp(token.slice(1, close));
    // Brackets are for IPv6 text only; "[10.0.0.1]:80" is not a form nginx or RFC 3986 writes.
    return inner !== null && token.slice(1, close).includes(':') ? inner : null;
  }
  const colon = token.indexOf(':');
  if (colon < 0 || !parsePort(token, colon + 1, length)) return null;
  const v4 = parseIpv4Value(token, 0, colon);
  return v4 < 0 ? null : ipv4(v4);
}

/** Counts the non-empty entries of a separator-delimited list before `position`. */
function entriesBefore(value: string, position: number): number {
  let count = 0;
  let inEntry = false;
  for (let i = 0; i < position; i++) {
    const separator = isListSeparator(value.charCodeAt(i));
    if (!separator && !inEntry) count++;
    inEntry = !separator;
  }
  return count;
}

/** Whether a forwarded header may refine `current`: its sender is trusted, and so is the address settled so far. */
function readsOn(current: ClientIp, trusted: CidrSet): boolean {
  return current.address !== '' && current.headersTrusted && trusted.has(current.address);
}

/** Walks an X-Forwarded-For-style list (the configured header name) right to left. */
export function forwardedForStrategy(headerName: string): ClientIpStrategy {
  const lowerName = headerName.toLowerCase();
  return (input, current, trusted) => {
    if (!readsOn(current, trusted)) return current;
    const value = headerValue(input.headers, lowerName);
    if (value === undefined) return current;
    let end = value.length;
    let lastTrusted: IpAddress | null = null;
    let lastStart = 0;
    for (;;) {
      while (end > 0 && isListSeparator(value.charCodeAt(end - 1))) end--;
      if (end === 0) break;
      let start = end;
      while (start > 0 && !isListSeparator(value.charCodeAt(start - 1))) start--;
      const token = value.slice(start, end);
      const ip = parseForwardedEntry(token);
      if (ip === null) {
        // nginx keeps the last good address here, which is a trusted proxy's: an open door when that
        // proxy is allowlisted. The client is unknown instead, and unknown clients match no rule.
        const index = entriesBefore(value, start);
        return {
          address: '',
          provenance: { kind: 'forwarded-header', header: headerName, index },
          peerTrusted: current.peerTrusted,
          headersTrusted: current.headersTrusted,
          error: {
            code: 'CLIENT_IP_MALFORMED_ENTRY',
            message: `${headerName} entry ${index} (${quote(token)}) is not an IP address`,
          },
        };
      }
      if (!trusted.has(ip)) {
        return {
          address: formatIp(ip),
          provenance: { kind: 'forwarded-header', header: headerName, index: entriesBefore(value, start) },
          peerTrusted: current.peerTrusted,
          headersTrusted: current.headersTrusted,
        };
      }
      lastTrusted = ip;
      lastStart = start;
      end = start;
    }
    if (lastTrusted === null) {
      // Present but without entries: no proxy writes that, so the client is unknown (nginx would keep
      // the trusted peer's own address).
      return {
        address: '',
        provenance: { kind: 'forwarded-header', header: headerName, index: 0 },
        peerTrusted: current.peerTrusted,
        headersTrusted: current.headersTrusted,
        error: {
          code: 'CLIENT_IP_MALFORMED_ENTRY',
          message: `${headerName} header has no entries: ${quote(value)}`,
        },
      };
    }
    return {
      address: formatIp(lastTrusted),
      provenance: { kind: 'forwarded-header', header: headerName, index: entriesBefore(value, lastStart) },
      peerTrusted: current.peerTrusted,
      headersTrusted: current.headersTrusted,
    };
  };
}

// ---------------------------------------------------------------------------------------------
// RFC 7239 Forwarded

function isTchar(c: number): boolean {
  // RFC 9110 token characters: ALPHA DIGIT and !#$%&'*+-.^_`|~
  if ((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return true;
  return (
    c === 33 ||
    (c >= 35 && c <= 39) ||
    c === 42 ||
    c === 43 ||
    c === 45 ||
    c === 46 ||
    c === 94 ||
    c === 95 ||
    c === 96 ||
    c === 124 ||
    c === 126
  );
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** The forwarded elements of a Forwarded header, each a map of lowercase parameter -> value; null if malformed. */
export function parseForwardedHeader(value: string): Map<string, string>[] | null {
  const elements: Map<string, string>[] = [];
  let element = new Map<string, string>();
  let i = 0;
  const n = value.length;
  for (;;) {
    while (i < n && isOws(value.charCodeAt(i))) i++;
    if (i < n && value.charCodeAt(i) !== 44 && value.charCodeAt(i) !== 59) {
      const nameStart = i;
      while (i < n && isTchar(value.charCodeAt(i))) i++;
      if (i === nameStart || i >= n || value.charCodeAt(i) !== 61 /* = */) return null;
      const name = value.slice(nameStart, i).toLowerCase();
      i++;
      let parameter: string;
      if (i < n && value.charCodeAt(i) === 34 /* " */) {
        i++;
        parameter = '';
        for (;;) {
          if (i >= n) return null;
          const c = value.charCodeAt(i);
          if (c === 34) break;
          if (c === 92 /* \ */) {
            i++;
            if (i >= n) return null;
          } else if (c < 32 && c !== 9) {
            return null;
          }
          parameter += value[i];
          i++;
        }
        i++;
      } else {
        const valueStart = i;
        while (i < n && isTchar(value.charCodeAt(i))) i++;
        if (i === valueStart) return null;
        parameter = value.slice(valueStart, i);
      }
      // RFC 7239 section 4: a parameter must not occur more than once per element.
      if (element.has(name)) return null;
      element.set(name, parameter);
      while (i < n && isOws(value.charCodeAt(i))) i++;
    }
    if (i >= n) break;
    const c = value.charCodeAt(i);
    i++;
    if (c === 59 /* ; */) continue;
    if (c !== 44 /* , */) return null;
    if (element.size > 0) elements.push(element);
    element = new Map();
  }
  if (element.size > 0) elements.push(element);
  return elements;
}

/** A Forwarded node ("for=" value, unquoted): IPv4 or "[IPv6]", each with an optional port. */
export function parseForwardedNode(node: string): IpAddress | null {
  let host = node;
  let portStart = -1;
  if (node.charCodeAt(0) === 91 /* [ */) {
    const close = node.indexOf(']');
    if (close < 0) return null;
    host = node.slice(1, close);
    if (!host.includes(':')) return null;
    if (close + 1 < node.length) {
      if (node.charCodeAt(close + 1) !== 58) return null;
      portStart = close + 2;
    }
  } else {
    const colon = node.indexOf(':');
    if (colon >= 0) {
      host = node.slice(0, colon);
      portStart = colon + 1;
    }
    // Unbracketed text must be IPv4: "for=2001:db8::1" is not valid RFC 7239.
    if (parseIpv4Value(host, 0, host.length) < 0) return null;
  }
  if (portStart >= 0 && !isNodePort(node, portStart)) return null;
  return parseIp(host);
}

function isNodePort(node: string, start: number): boolean {
  if (parsePort(node, start, node.length)) return true;
  // obfport = "_" 1*(ALPHA / DIGIT / "." / "_" / "-")
  if (node.charCodeAt(start) !== 95 || node.length - start < 2) return false;
  for (let i = start + 1; i < node.length; i++) {
    const c = node.charCodeAt(i);
    const ok =
      (c >= 48 && c <= 57) ||
      (c >= 65 && c <= 90) ||
      (c >= 97 && c <= 122) ||
      c === 46 ||
      c === 95 ||
      c === 45;
    if (!ok) return false;
  }
  return true;
}

/** Walks RFC 7239 Forwarded elements right to left by their for= parameter. */
export function forwardedRfc7239Strategy(headerName = 'Forwarded'): ClientIpStrategy {
  const lowerName = headerName.toLowerCase();
  return (input, current, trusted) => {
    if (!readsOn(current, trusted)) return current;
    const value = headerValue(input.headers, lowerName);
    if (value === undefined) return current;
    const elements = parseForwardedHeader(value);
    if (elements === null || elements.length === 0) {
      return {
        address: '',
        provenance: { kind: 'forwarded-rfc7239', index: 0 },
        peerTrusted: current.peerTrusted,
        headersTrusted: current.headersTrusted,
        error: {
          code: 'CLIENT_IP_MALFORMED_FORWARDED',
          message: `${headerName} header is malformed: ${quote(value)}`,
        },
      };
    }
    let lastTrusted: IpAddress | null = null;
    let lastIndex = 0;
    for (let index = elements.length - 1; index >= 0; index--) {
      const node = elements[index]!.get('for');
      const ip = node === undefined ? null : parseForwardedNode(node);
      if (ip === null) {
        // "unknown", an obfuscated node or no for= at all: a trusted hop could not say who came before.
        return {
          address: '',
          provenance: { kind: 'forwarded-rfc7239', index },
          peerTrusted: current.peerTrusted,
          headersTrusted: current.headersTrusted,
          error: {
            code: 'CLIENT_IP_MALFORMED_ENTRY',
            message: `${headerName} element ${index} has ${node === undefined ? 'no for= parameter' : `for=${quote(node)}, not an IP address`}`,
          },
        };
      }
      if (!trusted.has(ip)) {
        return {
          address: formatIp(ip),
          provenance: { kind: 'forwarded-rfc7239', index },
          peerTrusted: current.peerTrusted,
          headersTrusted: current.headersTrusted,
        };
      }
      lastTrusted = ip;
      lastIndex = index;
    }
    return {
      address: formatIp(lastTrusted!),
      provenance: { kind: 'forwarded-rfc7239', index: lastIndex },
      peerTrusted: current.peerTrusted,
      headersTrusted: current.headersTrusted,
    };
  };
}

/**
 * Whether the forwarded-for header is read at all, as ingress-nginx's template picks real_ip_header:
 * with use-proxy-protocol it is the PROXY header alone unless use-forwarded-headers is on as well
 * (enable-real-ip then changes nothing: the client would write the header itself).
 */
export function readsForwardedHeader(
  settings: Pick<ClientIpSettings, 'useProxyProtocol' | 'useForwardedHeaders' | 'enableRealIp'>,
): boolean {
  return settings.useForwardedHeaders || (settings.enableRealIp && !settings.useProxyProtocol);
}

/** Builds the chain ingress-nginx's ConfigMap settings describe. */
export function createClientIpResolver(settings: ClientIpSettings): ClientIpResolver {
  const steps: ClientIpStrategy[] = [];
  const names = ['socket'];
  if (settings.useProxyProtocol) {
    steps.push(proxyProtocolStrategy);
    names.push('proxy-protocol');
  }
  if (readsForwardedHeader(settings)) {
    const header = settings.forwardedForHeader.trim() || 'X-Forwarded-For';
    if (header.toLowerCase() === 'forwarded') {
      steps.push(forwardedRfc7239Strategy(header));
      names.push('forwarded-rfc7239');
    } else {
      steps.push(forwardedForStrategy(header));
      names.push(`forwarded-header:${header}`);
    }
  }
  const trusted = settings.trusted;
  return {
    strategies: names,
    resolve(input) {
      let result = socketStrategy(input, trusted);
      if (input.proxied === true && (!settings.useProxyProtocol || !result.peerTrusted))
        return relayNoLongerTrusted(input, result);
      for (const step of steps) result = step(input, result, trusted);
      return result;
    },
  };
}

/**
 * A connection that began with a PROXY header, judged under a configuration (reloaded since) that no
 * longer reads PROXY headers or trusts its peer. The peer is a relay, never the client: taking it for
 * one would let every client of a load balancer inside an allowlist through. Unknown: every rule denies.
 */
function relayNoLongerTrusted(input: ClientIpInput, peer: ClientIp): ClientIp {
  return unknownAtSocket(
    'CLIENT_IP_UNTRUSTED_RELAY',
    `the connection from ${quote(peer.address || input.peerAddress)} began with a PROXY header the configuration no longer accepts (use-proxy-protocol or proxy-real-ip-cidr changed by a reload); its client is unknown`,
  );
}
