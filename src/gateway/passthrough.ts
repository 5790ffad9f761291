// ssl-passthrough: a TLS connection whose ClientHello names a passthrough host (exactly, as ingress-nginx's
// TCP proxy compares names) is not terminated: its bytes, the hello first, go unread to the backend of
// the host's "/" location, and the backend's bytes come back, with backpressure both ways and
// half-closes passed on. Unlike ingress-nginx, whose passthrough proxy cannot apply them, the client
// (the PROXY header's when there is one) first goes through that location's source-address rules
// (block-cidrs, denylist, allowlist; invalid lists fail closed): a refused client is closed before a
// byte reaches the backend. Endpoints are taken round robin (the location's upstream cursor), the next
// one when a connection cannot be made. One access log line per connection, stream-style.
import type net from 'node:net';
import type { LocationModel } from '../config/model.ts';
import { type DialTarget, dialInTurn } from '../lb/dial.ts';
import { type PreparedRelay, prepareRelay } from '../lb/flow.ts';
import { type AccessDecision, type AccessPolicy, compileAccessPolicy } from '../net/access-policy.ts';
import { formatHostPort } from '../net/host-port.ts';
import { formatMsAsSeconds, formatTimeLocal } from './nginx-time.ts';
import type { ConnectionInfo } from './connection.ts';
import { type ErrorLog, logSafe } from './error-log.ts';
import type { LineSink } from './line-sink.ts';
import { EndpointRotation, EVERY_ENDPOINT_ONCE } from './next-upstream.ts';
import type { GatewaySnapshot } from './snapshot.ts';
import type { BalancedUpstream } from './upstream.ts';

/** nginx's stream proxy_timeout default: a connection idle both ways this long is closed. */
export const PASSTHROUGH_IDLE_TIMEOUT_MS = 600_000;

export interface PassthroughTarget {
  host: string;
  location: LocationModel;
  upstream: BalancedUpstream | undefined;
  policy: AccessPolicy;
}

const targetsBySnapshot = new WeakMap<GatewaySnapshot, ReadonlyMap<string, PassthroughTarget>>();

/** The passthrough host a server name selects on this snapshot, or null (keepip terminates TLS). */
export function passthroughTarget(
  snap: GatewaySnapshot,
  serverName: string | null,
): PassthroughTarget | null {
  if (serverName === null) return null;
  let targets = targetsBySnapshot.get(snap);
  if (targets === undefined) {
    const built = new Map<string, PassthroughTarget>();
    for (const vhost of snap.topology.gateway.virtualHosts) {
      if (vhost.sslPassthrough !== true) continue;
      const location = vhost.locations.find((l) => l.path === '/' && l.backend !== null);
      if (location === undefined) continue; // the translation reported it
      const rules = { block: snap.settings.blockCidrs, deny: location.deny, allow: location.allow };
      const policy = compileAccessPolicy(rules);
      built.set(vhost.host, { host: vhost.host, location, upstream: snap.upstreamFor(location), policy });
    }
    targets = built;
    targetsBySnapshot.set(snap, targets);
  }
  return targets.get(serverName) ?? null;
}

export interface PassthroughContext {
  errorLog: ErrorLog;
  accessLog: LineSink;
}

/** One passthrough connection: what its access log line says. */
interface Session {
  readonly started: number;
  readonly client: string;
  readonly serverName: string;
  readonly target: PassthroughTarget;
  status: number;
  bytesToClient: number;
  bytesFromClient: number;
  upstreams: string[];
  logged: boolean;
}

/**
 * Stream-style, as ingress-nginx's log-format-stream with the name and upstream added:
 * `[client] [time] TCP status bytes_sent bytes_received session_time "sni" "upstream" ssl-passthrough ns/ingress`.
 */
function logSession(ctx: PassthroughContext, snap: GatewaySnapshot, s: Session): void {
  if (s.logged) return;
  s.logged = true;
  if (snap.settings.disableAccessLog === true) return;
  const upstream = s.upstreams.length === 0 ? '-' : s.upstreams.join(', ');
  const { ingress } = s.target.location;
  ctx.accessLog.write(
    `[${s.client}] [${formatTimeLocal(s.started)}] TCP ${s.status} ${s.bytesToClient} ${s.bytesFromClient} ` +
      `${formatMsAsSeconds(Date.now() - s.started)} "${logSafe(s.serverName)}" "${upstream}" ssl-passthrough ${ingress.namespace}/${ingress.name}`,
  );
}

function errorContext(info: ConnectionInfo, s: Session): string {
  const server = formatHostPort(info.serverAddress, info.serverPort);
  return `, client: ${s.client}, server: ${server}, host: "${logSafe(s.serverName)}"`;
}

/** The source-address verdict; a refusal is logged (error log and access log) and the client closed. */
function admitted(
  ctx: PassthroughContext,
  snap: GatewaySnapshot,
  client: net.Socket,
  info: ConnectionInfo,
  s: Session,
): boolean {
  const verdict: AccessDecision = s.target.policy.decide(s.client);
  if (verdict.outcome === 'allow') return true;
  const what =
    verdict.outcome === 'fail-closed' ? verdict.detail : `access forbidden by rule (${verdict.detail})`;
  ctx.errorLog.write(
    'error',
    info.id,
    `${what} while ssl-passthrough, connection closed${errorContext(info, s)}`,
  );
  s.status = verdict.outcome === 'fail-closed' ? 503 : 403;
  logSession(ctx, snap, s);
  client.destroy();
  return false;
}

/**
 * Hands `client` (its ClientHello read into `hello`, nothing else consumed) to the target's backend.
 * The caller has taken every listener of its own off the socket.
 */
export function passThrough(
  ctx: PassthroughContext,
  snap: GatewaySnapshot,
  target: PassthroughTarget,
  client: net.Socket,
  hello: Buffer,
  info: ConnectionInfo,
): void {
  const s: Session = {
    started: Date.now(),
    client: info.proxySource ?? info.peerAddress,
    serverName: target.host,
    target,
    status: 0,
    bytesToClient: 0,
    bytesFromClient: hello.length,
    upstreams: [],
    logged: false,
  };
  client.on('error', () => client.destroy());
  if (!admitted(ctx, snap, client, info, s)) return;
  const upstream = target.upstream;
  if (upstream === undefined || upstream.members.length === 0) {
    ctx.errorLog.write('error', info.id, `no live upstreams while ssl-passthrough${errorContext(info, s)}`);
    s.status = 502;
    logSession(ctx, snap, s);
    client.destroy();
    return;
  }
  // Each endpoint once: proxy-next-upstream does not apply to passthrough (nor does any annotation).
  const rotation = new EndpointRotation(upstream, EVERY_ENDPOINT_ONCE);
  dial(ctx, snap, { client, hello, info, s, rotation });
}

interface Dialing {
  client: net.Socket;
  hello: Buffer;
  info: ConnectionInfo;
  s: Session;
  rotation: EndpointRotation;
}

/** Connects to the next endpoint; on failure the one after it, until each was tried once. */
function dial(ctx: PassthroughContext, snap: GatewaySnapshot, d: Dialing): void {
  // The endpoint's bytes are read into the flow's own buffer; the client's as Node reads them.
  const prepared = prepareRelay(d.client);
  const clientGone = () => {
    dialing.cancel();
    prepared.release();
    if (d.s.status === 0) d.s.status = 499;
    logSession(ctx, snap, d.s);
  };
  d.client.once('close', clientGone);
  const dialing = dialInTurn<DialTarget & { hostPort: string }>({
    onread: prepared.onread,
    next() {
      const { member } = d.rotation.take();
      d.s.upstreams.push(member.hostPort);
      return {
        host: member.address,
        port: member.port,
        connectTimeoutMs: member.connectTimeoutMs,
        lookup: member.lookup,
        hostPort: member.hostPort,
      };
    },
    retry(target, error) {
      const why =
        error.code === 'ETIMEDOUT'
          ? 'upstream timed out'
          : `connect() failed (${error.code ?? error.message})`;
      ctx.errorLog.write(
        'error',
        d.info.id,
        `${why} while connecting to upstream for ssl-passthrough${errorContext(d.info, d.s)}, upstream: "${target.hostPort}"`,
      );
      return !d.client.destroyed && d.rotation.mayTakeNext();
    },
    connected(upstream) {
      d.client.off('close', clientGone);
      d.s.status = 200;
      pipe(ctx, snap, prepared, upstream, d.hello, d.s);
    },
    gaveUp() {
      d.client.off('close', clientGone);
      if (d.client.destroyed) return clientGone();
      prepared.release();
      d.s.status = 502;
      logSession(ctx, snap, d.s);
      d.client.destroy();
    },
  });
}

/**
 * Bytes both ways (the hello first) as an lb flow relays them (src/lb/flow.ts): each side paused while
 * the other cannot take more, an end passed on as an end (half-close), a reset or error as a reset,
 * idle both ways for PASSTHROUGH_IDLE_TIMEOUT_MS resets both. The access log line is written once
 * both sides are closed.
 */
function pipe(
  ctx: PassthroughContext,
  snap: GatewaySnapshot,
  prepared: PreparedRelay,
  upstream: net.Socket,
  hello: Buffer,
  s: Session,
): void {
  upstream.write(hello);
  const counters = { bytesToTarget: 0, bytesToClient: 0 };
  prepared.start(upstream, {
    // The client socket went through the ClientHello reader: Node's own reads keep what it put back.
    clientReads: 'node',
    idleTimeoutMs: PASSTHROUGH_IDLE_TIMEOUT_MS,
    counters,
    onEnd: () => {
      s.bytesFromClient += counters.bytesToTarget;
      s.bytesToClient = counters.bytesToClient;
      logSession(ctx, snap, s);
    },
  });
}
