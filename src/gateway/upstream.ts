// Upstream pools. A backend (ingress-nginx's $proxy_upstream_name) is a list of endpoints taken in
// round-robin order; each endpoint has one pool of keep-alive connections: keepip's lean HTTP/1.1
// client for plain HTTP (h1-client.ts), an undici Pool for HTTPS backends. Pools live in a
// registry shared by every config snapshot, reference-counted, so a reload that keeps an endpoint keeps
// its warm connections, and a pool is closed (gracefully: queued requests finish) only when the last
// snapshot that named it retires.
import { createHash } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { IdleConnections, type KeepaliveLimits } from './upstream-keepalive.ts';
import tls, {
  type ConnectionOptions,
  checkServerIdentity,
  type DetailedPeerCertificate,
  type PeerCertificate,
  type SecureVersion,
} from 'node:tls';
import type { Readable } from 'node:stream';
import type { buildConnector, Dispatcher, Pool } from 'undici';
import type { LocationModel, ProxySslModel } from '../config/model.ts';
import { formatHostPort } from '../net/host-port.ts';
import { exceedsVerifyDepth } from './certificate-chain.ts';
import {
  H1Pool,
  type UpstreamController,
  type UpstreamDispatcher,
  type UpstreamDispatchOptions,
  type UpstreamHandler,
} from './h1-client.ts';
import { H2Pool } from './h2-client.ts';

export interface PoolSpec {
  protocol: LocationModel['backendProtocol'];
  address: string;
  port: number;
  connectTimeoutMs: number;
  /** proxy-ssl-* of an HTTPS backend; absent: ingress-nginx's defaults (no verification, no SNI). */
  tls?: ProxySslModel;
  /** upstream-keepalive-* of an HTTPS backend (its undici pool's); absent: 60 s idle, no request limit. */
  keepalive?: KeepaliveLimits;
}

export interface UpstreamMember {
  /** "address:port" as nginx prints it in $upstream_addr. */
  readonly hostPort: string;
  readonly address: string;
  readonly port: number;
  readonly protocol: LocationModel['backendProtocol'];
  readonly connectTimeoutMs: number;
  readonly pool: UpstreamDispatcher;
  /** For error log lines: `http://10.0.0.1:80`. */
  readonly url: string;
  /** Resolves a name member (ExternalName) at each new connection; an IP member never calls it. */
  readonly lookup: LookupFunction;
  /** proxy-ssl-* of an HTTPS member (upstreamTlsOptions), for connections outside its pool (upgrades). */
  readonly tls: ProxySslModel | undefined;
}

/** One backend as a location sees it: members in round-robin order, sharing the cursor of their upstream name. */
export interface BalancedUpstream {
  readonly name: string;
  readonly members: readonly UpstreamMember[];
  readonly cursor: { value: number };
}

/** Index of the member to try first; advances the shared cursor (ingress-nginx's default round robin). */
export function firstMember(upstream: BalancedUpstream): number {
  const count = upstream.members.length;
  if (count === 0) return -1;
  const index = upstream.cursor.value % count;
  upstream.cursor.value = index + 1;
  return index;
}

function poolKey(spec: PoolSpec): string {
  const tls = spec.tls === undefined ? '' : `|${tlsKey(spec.tls)}`;
  const k = spec.keepalive;
  // Other keep-alive limits, other pools: an undici pool's are fixed when it is made.
  const keepalive = k === undefined ? '' : `|${k.maxIdle > 0}:${k.idleTimeoutMs}:${k.maxRequests}`;
  return `${spec.protocol}|${formatHostPort(spec.address, spec.port)}|${spec.connectTimeoutMs}${tls}${keepalive}`;
}

/** Pools (and balanced upstreams) with other TLS settings (proxy-ssl-*, every field) are other ones. */
export function tlsKey(tls: ProxySslModel): string {
  const digest = createHash('sha256');
  for (const part of [
    tls.caPem,
    tls.certPem ?? '',
    tls.keyPem ?? '',
    tls.name ?? '',
    tls.ciphers,
    ...tls.protocols,
  ])
    digest.update(part).update('\0');
  return `${tls.verify}|${tls.verifyDepth}|${tls.serverName}|${digest.digest('hex').slice(0, 16)}`;
}

/**
 * proxy-ssl-* as tls.connect options, for every TLS connection to a backend (the HTTPS pools and
 * upgrades): the CA to verify against (proxy-ssl-verify on, the name proxy-ssl-name or nginx's
 * default `upstream_balancer`, the chain within proxy-ssl-verify-depth), the client certificate, SNI
 * only with proxy-ssl-server-name on, the TLS versions and ciphers.
 */
export function upstreamTlsOptions(tls: ProxySslModel | undefined): ConnectionOptions {
  // ingress-nginx's default: no verification (proxy_ssl_verify off) and no SNI.
  if (tls === undefined) return { rejectUnauthorized: false };
  const name = tls.name ?? 'upstream_balancer';
  const versions = [...tls.protocols].sort() as SecureVersion[];
  // nginx checks the name with X509_check_host, host names as written: an IP address never matches
  // (Node's check would take an IP SAN), nor a name with a final dot (Node drops the dot).
  const literalName = isIP(name) !== 0 || name.endsWith('.');
  const identity = (_host: string, cert: PeerCertificate): Error | undefined =>
    (literalName
      ? new Error(`proxy-ssl-name ${name} is not a host name a certificate can match`)
      : checkServerIdentity(name, cert)) ??
    (exceedsVerifyDepth(cert as DetailedPeerCertificate, tls.verifyDepth)
      ? new Error(`upstream certificate chain longer than proxy-ssl-verify-depth ${tls.verifyDepth}`)
      : undefined);
  return {
    rejectUnauthorized: tls.verify,
    ca: tls.caPem,
    ...(tls.certPem !== null && tls.keyPem !== null ? { cert: tls.certPem, key: tls.keyPem } : {}),
    checkServerIdentity: identity,
    minVersion: versions[0],
    maxVersion: versions[versions.length - 1],
    ciphers: tls.ciphers,
    // As nginx, no SNI for an IP address (RFC 6066 allows only host names there).
    ...(tls.serverName && isIP(name) === 0 ? { servername: name } : {}),
  };
}

export interface UpstreamTlsProblem {
  code: 'UPSTREAM_TLS_SETTINGS_INVALID';
  /** The proxy-ssl-secret the settings came with. */
  secret: string;
  message: string;
}

/**
 * OpenSSL's verdict on proxy-ssl-protocols / -ciphers (null: usable), so that a list nothing can use
 * is said when the configuration loads, not only as a 502 per request.
 */
export function upstreamTlsProblem(model: ProxySslModel): UpstreamTlsProblem | null {
  const { minVersion, maxVersion, ciphers } = upstreamTlsOptions(model);
  try {
    tls.createSecureContext({ minVersion, maxVersion, ciphers });
    return null;
  } catch (error) {
    return { code: 'UPSTREAM_TLS_SETTINGS_INVALID', secret: model.secret, message: (error as Error).message };
  }
}

/** undici, loaded with the first HTTPS pool: it costs every start ~150 ms, and only HTTPS backends use it. */
let undici: Promise<typeof import('undici')> | undefined;

/** What a request that never went out is told: there is no connection to abort, pause or resume. */
const NO_CONNECTION: UpstreamController = { abort() {}, pause() {}, resume() {} };

function dispatchTo(pool: Pool, options: UpstreamDispatchOptions, handler: UpstreamHandler): void {
  // undici streams async iterables (its types only list Readable).
  pool.dispatch(
    { ...options, body: options.body as unknown as Readable | null },
    handler as unknown as Dispatcher.DispatchHandler,
  );
}

/** undici's Pool behind the dispatcher interface (HTTPS backends), once undici is loaded. */
function undiciDispatcher(created: Promise<Pool>): UpstreamDispatcher {
  let pool: Pool | null = null;
  created.then(
    (ready) => {
      pool = ready;
    },
    () => {},
  );
  const whenCreated = (use: (ready: Pool) => Promise<void>) => created.then(use, () => {});
  return {
    dispatch(options, handler) {
      if (pool !== null) {
        dispatchTo(pool, options, handler);
        return;
      }
      // The first requests wait for undici; what would have thrown to the caller is the handler's error.
      const failed = (error: Error) => handler.onResponseError?.(NO_CONNECTION, error);
      created.then((ready) => {
        try {
          dispatchTo(ready, options, handler);
        } catch (error) {
          failed(error as Error);
        }
      }, failed);
    },
    close: () => whenCreated((ready) => ready.close()),
    destroy: () => whenCreated((ready) => ready.destroy()),
  };
}

/**
 * The HTTPS pool's connector: tls.connect with upstreamTlsOptions, so SNI is sent only as nginx's
 * proxy_ssl_server_name says (undici's own connector falls back to the pool's host name), one TLS
 * session kept for resumption (a pool has one host; the session of a failed connection is dropped).
 */
function tlsConnector(spec: PoolSpec, lookup: LookupFunction): buildConnector.connector {
  const options = upstreamTlsOptions(spec.tls);
  let session: Buffer | undefined;
  return (target, callback) => {
    const socket = tls.connect({
      ...options,
      host: target.hostname,
      port: Number(target.port) || 443,
      lookup,
      session,
      ALPNProtocols: ['http/1.1'],
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.on('session', (ticket: Buffer) => {
      session = ticket;
    });
    const timer = setTimeout(() => {
      socket.destroy(Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    }, spec.connectTimeoutMs);
    // The callback is undici's once: an error after the handshake is the pool's to see, not this one's.
    const failed = (error: Error) => {
      clearTimeout(timer);
      session = undefined;
      callback(error, null);
    };
    socket.once('error', failed).once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', failed);
      callback(null, socket);
    });
    return socket;
  };
}

/**
 * upstream-keepalive-* as an undici pool takes them: the idle timeout (also the cap on what a
 * backend's Keep-Alive header asks for), requests per connection, and none kept (one request a
 * connection) for upstream-keepalive-connections 0. undici has no count of idle connections over
 * all backends and no lifetime limit: those two stay HTTP-only.
 */
function undiciKeepalive(k: KeepaliveLimits | undefined) {
  if (k === undefined) return { keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 };
  return {
    keepAliveTimeout: k.idleTimeoutMs,
    keepAliveMaxTimeout: k.idleTimeoutMs,
    maxRequestsPerClient: k.maxIdle === 0 ? 1 : k.maxRequests,
  };
}

function httpsPool(
  scheme: string,
  hostPort: string,
  spec: PoolSpec,
  lookup: LookupFunction,
): UpstreamDispatcher {
  undici ??= import('undici');
  const created = undici.then(
    ({ Pool }) =>
      new Pool(`${scheme}://${hostPort}`, {
        // Unlimited concurrent connections like nginx; keep-alive reuse comes from the pool's idle clients.
        connections: null,
        pipelining: 1,
        ...undiciKeepalive(spec.keepalive),
        // Per-request headersTimeout/bodyTimeout (proxy-read-timeout) are given at dispatch time.
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: tlsConnector(spec, lookup),
      }),
  );
  return undiciDispatcher(created);
}

export interface RegistryOptions {
  /** How a member's host name becomes an address, per new connection; default node's dns.lookup (getaddrinfo). */
  lookup?: LookupFunction;
}

/**
 * A lookup that answers one address, the first, also when Node asks for all of them (autoSelectFamily
 * tries each in turn): a DNS answer of a thousand addresses is one connection attempt, not a scan of
 * them; a retry (proxy-next-upstream) looks the name up again.
 */
function firstAddressOnly(lookup: LookupFunction): LookupFunction {
  return (hostname, options, callback) =>
    lookup(hostname, options, (error, address, family) =>
      callback(error, Array.isArray(address) ? address.slice(0, 1) : address, family),
    );
}

export class ConnectionRegistry {
  readonly #pools = new Map<string, { pool: UpstreamDispatcher; refs: number; member: UpstreamMember }>();
  readonly #lookup: LookupFunction;
  /** Idle HTTP/1.1 backend connections over every pool, kept to the served snapshot's limits. */
  readonly idle = new IdleConnections();

  constructor(options: RegistryOptions = {}) {
    this.#lookup = firstAddressOnly(options.lookup ?? dnsLookup);
  }

  /** The member for `spec`, creating its pool on first use; pair every acquire with a release. */
  acquire(spec: PoolSpec): UpstreamMember {
    const key = poolKey(spec);
    const existing = this.#pools.get(key);
    if (existing !== undefined) {
      existing.refs += 1;
      return existing.member;
    }
    const hostPort = formatHostPort(spec.address, spec.port);
    const scheme = spec.protocol.toLowerCase();
    const { address, port, connectTimeoutMs } = spec;
    const lookup = this.#lookup;
    // gRPC backends: HTTP/2 sessions, multiplexed (h2-client.ts); error log lines say grpc:// as nginx's.
    const pool =
      spec.protocol === 'HTTPS'
        ? httpsPool(scheme, hostPort, spec, lookup)
        : spec.protocol === 'GRPC' || spec.protocol === 'GRPCS'
          ? new H2Pool({ address, port, tls: spec.protocol === 'GRPCS', connectTimeoutMs, lookup })
          : new H1Pool({ address, port, connectTimeoutMs, lookup, idle: this.idle });
    const member: UpstreamMember = {
      hostPort,
      address: spec.address,
      port: spec.port,
      protocol: spec.protocol,
      connectTimeoutMs: spec.connectTimeoutMs,
      pool,
      url: `${scheme}://${hostPort}`,
      lookup,
      tls: spec.tls,
    };
    this.#pools.set(key, { pool, refs: 1, member });
    return member;
  }

  release(spec: PoolSpec): void {
    const key = poolKey(spec);
    const entry = this.#pools.get(key);
    if (entry === undefined) return;
    entry.refs -= 1;
    if (entry.refs <= 0) {
      this.#pools.delete(key);
      entry.pool.close().catch(() => {});
    }
  }

  get size(): number {
    return this.#pools.size;
  }

  /** Closes every pool: graceful first, then destroyed after `graceMs`. */
  async closeAll(graceMs = 1_000): Promise<void> {
    const pools = [...this.#pools.values()].map((entry) => entry.pool);
    this.#pools.clear();
    await Promise.all(
      pools.map(async (pool) => {
        const timer = setTimeout(() => pool.destroy().catch(() => {}), graceMs);
        await pool.close().catch(() => {});
        clearTimeout(timer);
      }),
    );
  }
}
