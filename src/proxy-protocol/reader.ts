// The one I/O edge of the PROXY protocol module: read the header off an accepted socket under a
// trust policy, a deadline and a size cap, then hand the socket on with every later byte intact.
import type { Server as HttpServer } from 'node:http';
import net from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { foldMappedIpv4 } from '../net/ip.ts';
import type { PpError } from './errors.ts';
import { parseProxyHeader } from './parse.ts';
import type { ProxyHeader } from './types.ts';

/** The codec's name for net/ip.ts's folder of IPv4-mapped socket addresses. */
export { foldMappedIpv4 as foldMappedIPv4 };

export type RejectReason = 'untrusted' | 'timeout' | 'oversize' | 'malformed' | 'closed';

export const REJECT_REASONS: readonly RejectReason[] = [
  'untrusted',
  'timeout',
  'oversize',
  'malformed',
  'closed',
];

export const DEFAULT_MAX_HEADER_BYTES = 4096;

export interface RejectEvent {
  reason: RejectReason;
  /** The immediate TCP peer, IPv4-mapped IPv6 folded to IPv4. */
  peer: string;
  detail: string;
  /** The codec's error for 'malformed'. */
  error?: PpError;
  /** For 'malformed': the first bytes read (at most 64), which nginx quotes in its `broken header` line. */
  head?: Uint8Array;
}

export interface AcceptEvent {
  peer: string;
  info: ProxyInfo;
}

/** Closes by reason and accepted headers; shared by every connection that is given the same object. */
export interface ProxyReaderStats {
  accepted: number;
  closed: Record<RejectReason, number>;
}

export interface ProxyReaderOptions {
  /** Whether this peer may send a header. Peers for which it returns false are closed unread. */
  isTrusted(peerAddress: string): boolean;
  /** The whole header must have arrived within this many milliseconds of the call. */
  timeoutMs: number;
  /** Largest header accepted (v2 may declare up to 65551 bytes). Default 4096. */
  maxHeaderBytes?: number;
  onReject?(event: RejectEvent): void;
  onAccept?(event: AcceptEvent): void;
  /** Where to count; see createProxyReaderStats(). */
  stats?: ProxyReaderStats;
}

export interface ProxyInfo {
  header: ProxyHeader;
  /** The client as the header names it; the socket's peer for LOCAL, UNSPEC, UNKNOWN and UNIX. */
  clientAddress: string;
  clientPort: number;
  destinationAddress: string;
  destinationPort: number;
  /** True when client/destination come from the header, false when they are the socket's own. */
  fromHeader: boolean;
  /** The immediate TCP peer (the proxy that sent the header), IPv4-mapped folded. */
  peerAddress: string;
  peerPort: number;
}

export type ReadOutcome =
  | { ok: true; info: ProxyInfo }
  | { ok: false; reason: RejectReason; detail: string; error?: PpError };

export function createProxyReaderStats(): ProxyReaderStats {
  return { accepted: 0, closed: { untrusted: 0, timeout: 0, oversize: 0, malformed: 0, closed: 0 } };
}

const infoBySocket = new WeakMap<object, ProxyInfo>();

/**
 * The PROXY information of a connection, from the socket a request handler sees: the net.Socket
 * itself, http's req.socket, or the TLSSocket a tls/https server wraps around it.
 */
export function getProxyInfo(socket: net.Socket | TLSSocket): ProxyInfo | undefined {
  const own = infoBySocket.get(socket);
  if (own !== undefined) return own;
  // A TLSSocket created by tls.Server over our socket keeps it as its parent.
  const parent = (socket as { _parent?: unknown })._parent;
  return typeof parent === 'object' && parent !== null ? infoBySocket.get(parent) : undefined;
}

function infoFor(header: ProxyHeader, socket: net.Socket, peerAddress: string): ProxyInfo {
  const peerPort = socket.remotePort ?? 0;
  const { source, destination } = header;
  // A datagram transport (UDP4, UDP6) on this TCP connection names no client of it: nginx ignores its
  // addresses ("unsupported transport"), HAProxy refuses it; keepip keeps the peer, as for UNSPEC.
  if (
    header.command === 'PROXY' &&
    (header.protocol === 'TCP4' || header.protocol === 'TCP6') &&
    source !== null &&
    destination !== null &&
    'address' in source &&
    'address' in destination
  ) {
    return {
      header,
      clientAddress: source.address,
      clientPort: source.port,
      destinationAddress: destination.address,
      destinationPort: destination.port,
      fromHeader: true,
      peerAddress,
      peerPort,
    };
  }
  return {
    header,
    clientAddress: peerAddress,
    clientPort: peerPort,
    destinationAddress: foldMappedIpv4(socket.localAddress ?? ''),
    destinationPort: socket.localPort ?? 0,
    fromHeader: false,
    peerAddress,
    peerPort,
  };
}

/**
 * Reads the PROXY header at the start of `socket`. On success the bytes after the header are put
 * back (unshift) and the socket is left un-flowing for the next consumer; getProxyInfo(socket)
 * then returns the result. On failure the socket is destroyed, counted and reported; no byte of
 * it reaches anyone.
 */
export function readProxyHeader(socket: net.Socket, options: ProxyReaderOptions): Promise<ReadOutcome> {
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const peer = foldMappedIpv4(socket.remoteAddress ?? '');

  const reject = (reason: RejectReason, detail: string, error?: PpError, head?: Uint8Array): ReadOutcome => {
    socket.destroy();
    if (options.stats) options.stats.closed[reason]++;
    options.onReject?.({ reason, peer, detail, ...(error ? { error } : {}), ...(head ? { head } : {}) });
    return error ? { ok: false, reason, detail, error } : { ok: false, reason, detail };
  };

  if (peer === '' || socket.destroyed) return Promise.resolve(reject('closed', 'closed before the header'));
  let trusted: boolean;
  try {
    trusted = options.isTrusted(peer) === true;
  } catch {
    trusted = false; // a broken policy fails closed
  }
  if (!trusted) return Promise.resolve(reject('untrusted', `${peer} may not send a PROXY header`));

  return new Promise<ReadOutcome>((resolve) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;

    const finish = (outcome: () => ReadOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
      resolve(outcome());
    };
    const fail = (reason: RejectReason, detail: string, error?: PpError) =>
      finish(() => reject(reason, detail, error, error ? buffered.subarray(0, 64) : undefined));

    const onReadable = () => {
      let chunk: Buffer | null;
      // biome-ignore lint/suspicious/noAssignInExpressions: the stream read loop
      while ((chunk = socket.read() as Buffer | null) !== null) {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      }
      if (settled || buffered.length === 0) return;
      const result = parseProxyHeader(buffered);
      if (result.kind === 'error') {
        fail('malformed', `${result.error.code}: ${result.error.message}`, result.error);
      } else if (result.kind === 'incomplete') {
        if (result.need !== undefined && result.need > maxHeaderBytes) {
          fail('oversize', `the header declares ${result.need} bytes, the cap is ${maxHeaderBytes}`);
        } else if (buffered.length >= maxHeaderBytes) {
          fail('oversize', `no complete header within ${maxHeaderBytes} bytes`);
        }
      } else if (result.consumed > maxHeaderBytes) {
        fail('oversize', `the header has ${result.consumed} bytes, the cap is ${maxHeaderBytes}`);
      } else {
        const rest = buffered.subarray(result.consumed);
        const info = infoFor(result.header, socket, peer);
        finish(() => {
          // Put the application's bytes back in front of anything still to come from the kernel.
          if (rest.length > 0) socket.unshift(rest);
          infoBySocket.set(socket, info);
          if (options.stats) options.stats.accepted++;
          options.onAccept?.({ peer, info });
          return { ok: true, info };
        });
      }
    };
    const onEnd = () =>
      fail('closed', `the peer ended after ${buffered.length} byte(s), before a complete header`);
    const onClose = () => fail('closed', `closed after ${buffered.length} byte(s), before a complete header`);
    const onError = (error: Error) => fail('closed', `socket error before the header: ${error.message}`);
    const timer = setTimeout(
      () =>
        fail(
          'timeout',
          `no complete header within ${options.timeoutMs} ms (${buffered.length} byte(s) so far)`,
        ),
      options.timeoutMs,
    );

    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}

export type ProxyServer = net.Server & { readonly proxyStats: ProxyReaderStats };

/**
 * A net.Server to listen() in front of `target`: each connection has its header read under
 * `options`, then goes to `target` through its 'connection' event, as if target had accepted it.
 * Works for net.Server, http.Server, https.Server and tls.Server targets.
 */
export function acceptProxyProtocol(
  target: net.Server | HttpServer | TlsServer,
  options: ProxyReaderOptions,
): ProxyServer {
  const stats = options.stats ?? createProxyReaderStats();
  const readerOptions: ProxyReaderOptions = { ...options, stats };
  // http.Server sets allowHalfOpen on itself; keep the same behaviour for the sockets we accept.
  const allowHalfOpen = (target as { allowHalfOpen?: boolean }).allowHalfOpen === true;
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen }, (socket) => {
    void readProxyHeader(socket, readerOptions).then((outcome) => {
      if (outcome.ok) target.emit('connection', socket);
    });
  });
  Object.defineProperty(server, 'proxyStats', { value: stats, enumerable: true });
  return server as ProxyServer;
}
