// What the gateway knows about a client connection before any request on it: who the TCP peer is,
// what an accepted PROXY header said, which listener and scheme. Stored on the socket the request
// handler sees (the net.Socket, or the TLSSocket wrapped around it) under a private symbol.
import type { Duplex } from 'node:stream';

export interface ConnectionInfo {
  /** nginx's connection number (*N in error log lines). */
  id: number;
  /** The immediate TCP peer, canonical (IPv4-mapped folded). */
  peerAddress: string;
  peerPort: number;
  /** The client address and port from an accepted PROXY header; null without one (or LOCAL/UNKNOWN). */
  proxySource: string | null;
  /** The connection began with a PROXY header the listener accepted (any command): its peer is a relay. */
  proxied: boolean;
  proxyPort: number | null;
  /** The destination port of an accepted PROXY header (what the client connected to at the load balancer). */
  proxyDestinationPort: number | null;
  /** The local end of the TCP connection (the listener). */
  serverAddress: string;
  serverPort: number;
  scheme: 'http' | 'https';
  /**
   * The port of the gateway's HTTPS listener (ingress-nginx's --https-port), null without one or before
   * it is bound: X-Forwarded-Port names it 443, as ingress-nginx's $pass_port does.
   */
  httpsPort: number | null;
  /** Requests begun on the connection so far ($connection_requests); HTTP/2 streams count each. */
  requests: number;
}

const kConnection = Symbol('keepip.gateway.connection');

type Tagged = Duplex & { [kConnection]?: ConnectionInfo };

export function attachConnection(socket: Duplex, info: ConnectionInfo): void {
  (socket as Tagged)[kConnection] = info;
}

export function connectionOf(socket: Duplex): ConnectionInfo | undefined {
  return (socket as Tagged)[kConnection];
}
