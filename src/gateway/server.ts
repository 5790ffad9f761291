// The listeners. Each --http/--https address is a net.Server of ours; every accepted connection goes
// through the same steps before a request is parsed:
//   PROXY header (only when use-proxy-protocol is on, only from trusted peers; never guessed: I1, I2)
//   -> for the HTTPS listener: the whole TLS ClientHello is read first (client-hello.ts, bounded, within
//      the header timeout), then TLS starts with the context of its server name (certificate and
//      ssl-protocols / ssl-ciphers: tls.ts), the SNI callback picking the certificate as before (or
//      nginx's 400 when the first bytes are plain HTTP);
//      ALPN `h2` (use-http2) goes to the HTTP/2 side (h2-server.ts), the same pipeline per stream
//   -> for the HTTP listener with use-http2: a connection that opens with the HTTP/2 preface (prior
//      knowledge, as nginx's `http2 on`) goes to the HTTP/2 side too
//   -> keepip's HTTP/1.1 server side (h1-server.ts: request parsing, keep-alive, the client-side
//      deadlines) -> the request pipeline (handler.ts).
// The PROXY mode, the trusted peers, the certificates and the client deadlines are read from the
// current snapshot for each new connection, so a reload changes them without re-binding.
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { http2SettingsOf } from '../config/http2.ts';
import { DEFAULT_TLS_SESSIONS } from '../k8s/tls-sessions.ts';
import { formatHostPort } from '../net/host-port.ts';
import { canonicalIp } from '../net/ip.ts';
import { type ReadOutcome, readProxyHeader } from '../proxy-protocol/reader.ts';
import { requestClientCertificate } from './access/client-cert.ts';
import { type ClientHello, type ClientHelloError, readClientHello } from './client-hello.ts';
import type { ClientTimeouts, ConnectionCloseReason } from './client-timeouts.ts';
import { acceptWithBorrowedReads } from './borrowed-reads.ts';
import { attachConnection, type ConnectionInfo } from './connection.ts';
import { brokenHeaderText, type ErrorLog } from './error-log.ts';
import { createH1Server, type H1Server } from './h1-server.ts';
import { HeldBytes } from './held-bytes.ts';
import { createH2Server, type H2Server, serveByAlpn } from './h2-server.ts';
import { hostForServerName, knownServerName } from './router.ts';
import type { RequestHandler } from './handler.ts';
import type { LineSink } from './line-sink.ts';
import type { GatewayMetrics } from './metrics.ts';
import { passThrough, passthroughTarget } from './passthrough.ts';
import type { GatewaySnapshot } from './snapshot.ts';
import type { KeyPair } from './tls.ts';
import { createOcspStapler } from './ocsp-stapler.ts';
import { TlsSessionCache } from './tls-session-cache.ts';

export type ListenerKind = 'http' | 'https';

export interface ListenerSpec {
  kind: ListenerKind;
  host: string;
  port: number;
  /** Share the port with other processes (SO_REUSEPORT): the workers of src/workers/. */
  reusePort?: boolean;
}

export interface ListenerContext {
  current(): GatewaySnapshot;
  handler: RequestHandler;
  metrics: GatewayMetrics;
  errorLog: ErrorLog;
  /** The access log: passthrough connections get a line each (passthrough.ts). */
  accessLog: LineSink;
  /** The TLS listener's fallback pair; null when there is no TLS listener (startListeners checks). */
  defaultCertificate: KeyPair | null;
}

export interface RunningListeners {
  readonly addresses: Readonly<Record<ListenerKind, AddressInfo | null>>;
  /** Stops accepting new connections at once (open ones continue, for the drain to end). */
  stopAccepting(): Promise<void>;
  /** Closes keep-alive connections that are between requests. */
  closeIdle(): void;
  /** Destroys every connection. */
  destroyAll(): void;
  /** Client connections open now. */
  openConnections(): number;
  /** Of those, HTTP/1.1 connections with part of a request head read (nginx's `reading`). */
  readingConnections(): number;
}

/** First byte of a TLS record carrying a handshake (0x16), or of an SSLv2-style hello (0x80). */
function looksLikeTls(byte: number): boolean {
  return byte === 0x16 || byte === 0x80;
}

/** The server sides a connection can end up on, and what they share. */
interface ServerSides {
  h1: H1Server;
  /** A plain HTTP request on the HTTPS port gets nginx's 400 from a side that closes after one answer. */
  plainH1: H1Server;
  h2: H2Server;
  onDeadline(reason: ConnectionCloseReason): void;
  /** ssl-session-cache: the TLS 1.2 sessions of this process (tls-session-cache.ts). */
  sessionCache: TlsSessionCache;
  sniCallback(
    this: tls.TLSSocket,
    servername: string,
    callback: (error: Error | null, context?: tls.SecureContext) => void,
  ): void;
}

/** The fallback pair of a TLS listener (startListeners starts none without one). */
function fakeCertificate(ctx: ListenerContext): KeyPair {
  if (ctx.defaultCertificate === null) throw new TypeError('a TLS listener without a default certificate');
  return ctx.defaultCertificate;
}

function createServerSides(ctx: ListenerContext): ServerSides {
  const { handler, metrics, errorLog } = ctx;
  const onDeadline = (reason: ConnectionCloseReason) => metrics.connectionClosed(reason);
  const plainHandler = {
    onRequest: handler.onPlainHttpOnHttps,
    onUpgrade: (_req: unknown, socket: { destroy(): unknown }) => socket.destroy(),
    onClientError: handler.onClientError,
  };
  return {
    h1: createH1Server(handler, { onDeadline }),
    plainH1: createH1Server(plainHandler, { closeAfterResponse: true, onDeadline }),
    h2: createH2Server(handler, { onDeadline, errorLog, registry: metrics.registry }),
    onDeadline,
    sessionCache: sessionCacheWithStapling(ctx),
    // `this` is the TLS socket: a host with auth-tls-* asks it for a client certificate (access/client-cert.ts).
    sniCallback(servername, callback) {
      const snap = ctx.current();
      const vhost = hostForServerName(snap.routes, servername);
      const { certificates } = snap;
      const pair = certificates.defaultPair ?? fakeCertificate(ctx);
      const withCa = requestClientCertificate(this, vhost, pair, certificates.session);
      const own = certificates.lookup(servername) ?? certificates.defaultContext;
      callback(null, withCa ?? own ?? certificates.fallbackContext(fakeCertificate(ctx)));
    },
  };
}

/**
 * The object Node's TLS sockets take as their server: TLS 1.2 sessions by id, and (enable-ocsp) the
 * certificate status for a client that asks (ocsp-stapler.ts).
 */
function sessionCacheWithStapling(ctx: ListenerContext): TlsSessionCache {
  const cache = new TlsSessionCache(() => ctx.current().settings.tlsSessions ?? DEFAULT_TLS_SESSIONS);
  const stapler = createOcspStapler({
    enabled: () => ctx.current().settings.enableOcsp === true,
    log: (level, message) => ctx.errorLog.write(level, null, message),
  });
  cache.on('OCSPRequest', stapler.onOcspRequest);
  return cache;
}

/**
 * TLS on the HTTPS listener, starting with `context` (what the handshake may negotiate is fixed by it),
 * then HTTP/1.1 or, by ALPN (use-http2), HTTP/2.
 */
function serveTls(
  ctx: ListenerContext,
  sides: ServerSides,
  socket: net.Socket,
  info: ConnectionInfo,
  timeouts: ClientTimeouts,
  context: tls.SecureContext,
): void {
  const http2 = http2SettingsOf(ctx.current().settings);
  const secure = new tls.TLSSocket(socket, {
    isServer: true,
    secureContext: context,
    SNICallback: sides.sniCallback,
    ALPNProtocols: http2.enabled ? ['h2', 'http/1.1'] : ['http/1.1'],
    // Node asks its server object for TLS 1.2 sessions by id: the gateway's cache is that object.
    server: sides.sessionCache as unknown as net.Server,
  });
  secure.on('error', () => secure.destroy());
  attachConnection(secure, { ...info, scheme: 'https' });
  if (!http2.enabled) {
    sides.h1.serve(secure, timeouts);
    return;
  }
  serveByAlpn(
    secure,
    timeouts.headerMs,
    (protocol) =>
      protocol === 'h2' ? sides.h2.serve(secure, http2, timeouts) : sides.h1.serve(secure, timeouts),
    () => sides.onDeadline('header_timeout'),
  );
}

/** `, client: …, server: …` of a connection's error log lines: the PROXY client when there is one. */
function connectionContext(info: ConnectionInfo): string {
  const server = formatHostPort(info.serverAddress, info.serverPort);
  return `, client: ${info.proxySource ?? info.peerAddress}, server: ${server}`;
}

/** A ClientHello that cannot be served: closed without an answer, one error log line with the code. */
function refuseHello(
  ctx: ListenerContext,
  socket: net.Socket,
  info: ConnectionInfo,
  error: ClientHelloError,
): void {
  ctx.errorLog.write(
    'error',
    info.id,
    `${error.code}: ${error.message} while reading the TLS ClientHello, connection closed${connectionContext(info)}`,
  );
  socket.destroy();
}

/** A fatal TLS alert, unrecognized_name (112), as nginx's ssl_reject_handshake answers. */
const UNRECOGNIZED_NAME_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);

/** ssl-reject-handshake: a name no server has (or no name) gets the alert, an info line, and the close. */
function rejectHandshake(
  ctx: ListenerContext,
  socket: net.Socket,
  info: ConnectionInfo,
  serverName: string | null,
): void {
  const name = serverName === null ? 'without SNI' : `for "${serverName}"`;
  ctx.errorLog.write(
    'info',
    info.id,
    `TLS handshake ${name} rejected: no server has that name (ssl-reject-handshake)${connectionContext(info)}`,
  );
  // Closed once the alert is out: a client that keeps its side open holds nothing here.
  socket.end(UNRECOGNIZED_NAME_ALERT, () => socket.destroy());
}

/**
 * The whole ClientHello is in (`bytes`, nothing else read): a passthrough host's connection goes raw to
 * its backend (passthrough.ts); any other gets TLS with the context of its server name.
 */
function dispatchHello(
  ctx: ListenerContext,
  sides: ServerSides,
  socket: net.Socket,
  info: ConnectionInfo,
  timeouts: ClientTimeouts,
  hello: ClientHello,
  bytes: Buffer,
): void {
  const snap = ctx.current();
  const target = passthroughTarget(snap, hello.serverName);
  if (target !== null) {
    passThrough(ctx, snap, target, socket, bytes, info);
    return;
  }
  if (snap.settings.sslRejectHandshake === true && !knownServerName(snap.routes, hello.serverName)) {
    rejectHandshake(ctx, socket, info, hello.serverName);
    return;
  }
  socket.unshift(bytes);
  const context = snap.certificates.initialContext(hello.serverName, fakeCertificate(ctx));
  if (context === null) {
    const name = hello.serverName === null ? 'a client without SNI' : `"${hello.serverName}"`;
    ctx.errorLog.write(
      'error',
      info.id,
      `INVALID_TLS_SETTINGS: the TLS settings (ssl-ciphers, ssl-protocols) for ${name} cannot be used, handshake refused${connectionContext(info)}`,
    );
    socket.destroy();
    return;
  }
  serveTls(ctx, sides, socket, info, timeouts, context);
}

/**
 * nginx's info line for a client that closes before `readFirstBytes` decided: the TLS listener's (a
 * ClientHello cut short); null for the plain listener, where HTTP/1.1's own idle close says nothing either.
 */
type FirstBytesPhase = 'SSL handshaking' | null;

/**
 * Reads a new connection's first bytes until `decide` knows where they go: it returns what to do then
 * (reading stops first), or null to wait for more. A client that says nothing, or not enough, is dropped
 * after the header timeout.
 */
function readFirstBytes(
  ctx: ListenerContext,
  sides: ServerSides,
  socket: net.Socket,
  conn: { info: ConnectionInfo; timeouts: ClientTimeouts; phase: FirstBytesPhase },
  decide: (bytes: Buffer) => (() => void) | null,
): void {
  const held = new HeldBytes();
  const stop = () => {
    clearTimeout(timer);
    // Nothing of this reading may stay reachable from the socket for the connection's life: a
    // listener left on it kept the held bytes' buffer (a slice of an 8 KiB pool) and the timer, about
    // 4 KiB per idle keep-alive connection (10,000 idle connections: +40 MB RSS).
    held.clear();
    socket.off('readable', onReadable);
    socket.off('end', onGone);
    socket.off('close', onClose);
  };
  const onReadable = () => {
    // The first read is kept as it is (most connections decide on it); later ones are copied after it.
    for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null)
      if (held.length === 0) held.replace(chunk);
      else held.append(chunk);
    if (held.length === 0) return;
    const next = decide(held.view());
    if (next === null) return;
    stop();
    next();
  };
  const onGone = () => {
    if (conn.phase !== null)
      ctx.errorLog.write(
        'info',
        conn.info.id,
        `client closed connection while ${conn.phase}${connectionContext(conn.info)}`,
      );
    socket.destroy();
  };
  const timer = setTimeout(() => {
    sides.onDeadline('header_timeout');
    socket.destroy();
  }, conn.timeouts.headerMs);
  const onClose = () => clearTimeout(timer);
  socket.once('close', onClose);
  socket.on('readable', onReadable);
  socket.once('end', onGone);
}

/**
 * The HTTPS listener reads the first bytes: a TLS handshake goes to TLS once its whole ClientHello is in
 * (at most MAX_HELLO_INPUT bytes; anything else is refused with its code), other bytes are plain HTTP
 * sent to the HTTPS port.
 */
function serveHttpsListener(
  ctx: ListenerContext,
  sides: ServerSides,
  socket: net.Socket,
  info: ConnectionInfo,
  timeouts: ClientTimeouts,
): void {
  readFirstBytes(ctx, sides, socket, { info, timeouts, phase: 'SSL handshaking' }, (bytes) => {
    if (!looksLikeTls(bytes[0] as number))
      return () => {
        socket.unshift(bytes);
        attachConnection(socket, { ...info, scheme: 'http' });
        sides.plainH1.serve(socket, timeouts);
      };
    const read = readClientHello(bytes);
    if (read.kind === 'incomplete') return null;
    if (read.kind === 'error') return () => refuseHello(ctx, socket, info, read.error);
    return () => dispatchHello(ctx, sides, socket, info, timeouts, read.hello, bytes);
  });
}

/** The HTTP/2 connection preface (RFC 9113 §3.4), which a client with prior knowledge opens with. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * The HTTP listener with use-http2, as nginx's `http2 on` on a plain listener: a connection that opens
 * with the whole HTTP/2 preface goes to the HTTP/2 side (prior knowledge: gRPC clients without TLS),
 * anything else to HTTP/1.1 as soon as a byte differs from the preface.
 */
function servePlainListener(
  ctx: ListenerContext,
  sides: ServerSides,
  socket: net.Socket,
  info: ConnectionInfo,
  timeouts: ClientTimeouts,
): void {
  readFirstBytes(ctx, sides, socket, { info, timeouts, phase: null }, (bytes) => {
    const n = Math.min(bytes.length, H2_PREFACE.length);
    const h2 = bytes.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
    if (h2 && n < H2_PREFACE.length) return null;
    return () => {
      socket.unshift(bytes);
      attachConnection(socket, info);
      if (h2) sides.h2.serve(socket, http2SettingsOf(ctx.current().settings), timeouts);
      else sides.h1.serve(socket, timeouts);
    };
  });
}

function connectionInfoOf(
  kind: ListenerKind,
  socket: net.Socket,
  id: number,
  httpsPort: number | null,
): ConnectionInfo {
  return {
    id,
    peerAddress: canonicalIp(socket.remoteAddress ?? '') ?? socket.remoteAddress ?? '',
    peerPort: socket.remotePort ?? 0,
    proxySource: null,
    proxied: false,
    proxyPort: null,
    proxyDestinationPort: null,
    serverAddress: canonicalIp(socket.localAddress ?? '') ?? socket.localAddress ?? '',
    serverPort: socket.localPort ?? 0,
    scheme: kind,
    httpsPort: kind === 'https' ? (socket.localPort ?? null) : httpsPort,
    requests: 0,
  };
}

/** nginx's error log line for a refused PROXY header. */
function proxyRejectText(event: { reason: string; peer: string; detail: string; head?: Uint8Array }): string {
  if (event.reason === 'untrusted') {
    return `PROXY protocol peer ${event.peer} is not a trusted proxy (proxy-real-ip-cidr), connection closed`;
  }
  if (event.reason === 'timeout') return `broken header: "" while reading PROXY protocol (${event.detail})`;
  // nginx quotes what it read: `broken header: "GET / HTTP/1.1\x0D\x0A…"` (a load balancer not sending PROXY).
  if (event.head !== undefined)
    return `broken header: "${brokenHeaderText(event.head)}" while reading PROXY protocol (${event.detail})`;
  return `broken header while reading PROXY protocol (${event.reason}: ${event.detail})`;
}

/** use-proxy-protocol: the PROXY header first (only from trusted peers), its client onto `info`, then `next`. */
function readProxyThen(
  ctx: ListenerContext,
  snap: GatewaySnapshot,
  socket: net.Socket,
  info: ConnectionInfo,
  next: () => void,
): void {
  const { metrics, errorLog } = ctx;
  const server = formatHostPort(info.serverAddress, info.serverPort);
  void readProxyHeader(socket, {
    isTrusted: (peer) => snap.trusted.has(peer),
    timeoutMs: snap.settings.proxyProtocolHeaderTimeoutMs,
    onReject: (event) => {
      metrics.proxyHeader('rejected', event.reason);
      errorLog.write(
        'error',
        info.id,
        `${proxyRejectText(event)}, client: ${info.peerAddress}, server: ${server}`,
      );
    },
  }).then((outcome: ReadOutcome) => {
    if (!outcome.ok) return;
    const { fromHeader, header, clientAddress } = outcome.info;
    metrics.proxyHeader('accepted', fromHeader ? 'ok' : `local-${header.protocol.toLowerCase()}`);
    info.proxied = true;
    if (fromHeader) {
      info.proxySource = canonicalIp(clientAddress) ?? clientAddress;
      info.proxyPort = outcome.info.clientPort;
      info.proxyDestinationPort = outcome.info.destinationPort;
    }
    next();
  });
}

const SERVER_OPTIONS = { allowHalfOpen: true, noDelay: true };

/** At most one "worker_connections are not enough" line a second: a flood must not flood the log too. */
const LIMIT_ALERT_INTERVAL_MS = 1000;

/**
 * max-worker-connections (nginx's worker_connections): a connection accepted while this process holds
 * that many is closed at once, counted and alerted, as nginx does when it has no free connection.
 */
function connectionLimit(ctx: ListenerContext): (open: number, socket: net.Socket) => boolean {
  let lastAlert = 0;
  return (open, socket) => {
    const limit = ctx.current().settings.maxWorkerConnections;
    if (limit === 0 || open < limit) return false;
    // The peer is read before destroy(), which forgets it.
    const peer = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    socket.on('error', () => {});
    socket.destroy();
    ctx.metrics.connectionClosed('max_connections');
    const now = Date.now();
    if (now - lastAlert >= LIMIT_ALERT_INTERVAL_MS) {
      lastAlert = now;
      ctx.errorLog.write(
        'alert',
        null,
        `${limit} worker_connections are not enough, connection from ${peer} closed`,
      );
    }
    return true;
  };
}

/** Binds every listener, or none (a failure closes the ones already bound). */
async function listenAll(
  specs: readonly ListenerSpec[],
  onConnection: (kind: ListenerKind, socket: net.Socket) => void,
  addresses: Record<ListenerKind, AddressInfo | null>,
): Promise<net.Server[]> {
  const servers: net.Server[] = [];
  try {
    for (const spec of specs) {
      const server = net.createServer({ ...SERVER_OPTIONS, pauseOnConnect: true }, (socket) =>
        onConnection(spec.kind, socket),
      );
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(
          { host: spec.host, port: spec.port, backlog: 4096, reusePort: spec.reusePort === true },
          () => {
            server.off('error', reject);
            resolve();
          },
        );
      });
      // Plain HTTP reads into the gateway's own buffer (borrowed-reads.ts); TLS keeps Node's path.
      if (spec.kind === 'http')
        acceptWithBorrowedReads(server, SERVER_OPTIONS, (socket) => onConnection(spec.kind, socket));
      servers.push(server);
      addresses[spec.kind] = server.address() as AddressInfo;
    }
  } catch (error) {
    for (const server of servers) server.close();
    throw error;
  }
  return servers;
}

export async function startListeners(
  specs: readonly ListenerSpec[],
  ctx: ListenerContext,
): Promise<RunningListeners> {
  if (ctx.defaultCertificate === null && specs.some((spec) => spec.kind === 'https'))
    throw new TypeError('startListeners: an https listener needs defaultCertificate');
  const sides = createServerSides(ctx);
  const sockets = new Set<net.Socket>();
  // Filled as each listener binds, so connections on the first one already know the HTTPS port.
  const addresses: Record<ListenerKind, AddressInfo | null> = { http: null, https: null };
  let nextConnectionId = 0;
  const handOn = (kind: ListenerKind, socket: net.Socket, info: ConnectionInfo, timeouts: ClientTimeouts) => {
    if (kind === 'https') {
      serveHttpsListener(ctx, sides, socket, info, timeouts);
      return;
    }
    if (http2SettingsOf(ctx.current().settings).enabled) {
      servePlainListener(ctx, sides, socket, info, timeouts);
      return;
    }
    attachConnection(socket, info);
    sides.h1.serve(socket, timeouts);
  };
  const overLimit = connectionLimit(ctx);
  const counts = ctx.metrics.serving;
  const onConnection = (kind: ListenerKind, socket: net.Socket) => {
    counts.accepted += 1;
    if (overLimit(sockets.size, socket)) return;
    counts.handled += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const snap = ctx.current();
    const info = connectionInfoOf(kind, socket, ++nextConnectionId, addresses.https?.port ?? null);
    const next = () => handOn(kind, socket, info, snap.clientTimeouts);
    if (snap.settings.useProxyProtocol) readProxyThen(ctx, snap, socket, info, next);
    else next();
  };
  const servers = await listenAll(specs, onConnection, addresses);
  const { h1, plainH1, h2 } = sides;
  return {
    addresses,
    // Stops listening at once; open connections are the drain's to end (server.close's callback would
    // wait for every one of them, so a single stalled client would hold up the drain deadline).
    async stopAccepting() {
      for (const server of servers) server.close();
    },
    closeIdle() {
      h1.closeIdle();
      plainH1.closeIdle();
      h2.closeIdle();
    },
    openConnections: () => sockets.size,
    readingConnections: () => h1.readingHeads() + plainH1.readingHeads(),
    destroyAll() {
      // The HTTP layers first: they write what a connection holds of an answer before destroying it.
      h1.destroyAll();
      plainH1.destroyAll();
      h2.destroyAll();
      for (const socket of sockets) socket.destroy();
    },
  };
}
