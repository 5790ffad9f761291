// The codes src/net/ reports (CIDRs, CIDR sets, client-IP resolution), with what each means and what
// the user does about it. src/errors.ts merges this table into the registry behind docs/errors.md;
// test/errors.test.ts holds each module's own code union (CidrErrorCode, ClientIpErrorCode…) equal
// to its part of the table.
import type { CodeTable } from '../error-table.ts';

export const NET_CODES = {
  CIDR_EMPTY: {
    kind: 'error',
    summary: 'a CIDR entry is empty',
    fix: 'remove the empty entry (a doubled or trailing comma)',
  },
  CIDR_BAD_ADDRESS: {
    kind: 'error',
    summary: 'the address part of a CIDR is not a strict IPv4/IPv6 address',
    fix: 'write the address canonically: no leading zeros, no zone id, no hex or integer forms',
  },
  CIDR_BAD_PREFIX: {
    kind: 'error',
    summary: 'the prefix length of a CIDR is not a decimal 0-32 (IPv4) or 0-128 (IPv6)',
    fix: 'correct the /prefix',
  },
  CIDR_SET_BAD_ENTRY: {
    kind: 'error',
    summary: 'a list of CIDRs holds an entry that is not a CIDR or an IP; the whole list is refused',
    fix: 'fix or remove the entry named in the message (its index is given)',
  },
  CLIENT_IP_BAD_PEER: {
    kind: 'error',
    summary: 'the TCP peer address is not an IP address, so no client address can be resolved',
    fix: 'none for users; report it, the listener handed over an unexpected socket address',
  },
  CLIENT_IP_BAD_PROXY_SOURCE: {
    kind: 'error',
    summary:
      'a trusted PROXY header carried a source that is not a valid address; the client is unknown and every access rule denies',
    fix: 'fix the sender of the PROXY header (the load balancer)',
  },
  CLIENT_IP_UNTRUSTED_RELAY: {
    kind: 'error',
    summary:
      'a connection that began with a PROXY header, after a reload that turned use-proxy-protocol off or stopped trusting its peer (proxy-real-ip-cidr): the peer is a relay, not the client; the client is unknown and every access rule denies',
    fix: 'none needed: the client reconnects, and a new connection is judged by the new configuration alone',
  },
  CLIENT_IP_MALFORMED_ENTRY: {
    kind: 'error',
    summary:
      'while walking X-Forwarded-For (or X-Real-IP) from a trusted hop, an entry was not an address; the client is unknown and every access rule denies',
    fix: 'make every trusted proxy append plain addresses, or trust fewer hops (proxy-real-ip-cidr)',
  },
  CLIENT_IP_MALFORMED_FORWARDED: {
    kind: 'error',
    summary:
      'a Forwarded (RFC 7239) header from a trusted hop cannot be parsed; the client is unknown and every access rule denies',
    fix: 'make the trusted proxy send a well-formed Forwarded header, or use X-Forwarded-For',
  },
} as const satisfies CodeTable;

export type NetCode = keyof typeof NET_CODES;
