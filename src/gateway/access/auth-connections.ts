// The connections keepip keeps to auth services (auth-url): one pool per protocol and auth-keepalive
// setting. Without auth-keepalive keepip keeps them anyway (64 idle per service, 60 s, no limit on
// subrequests), where ingress-nginx opens one per check; with it, as nginx's upstream `keepalive N;
// keepalive_requests R; keepalive_timeout T;`: N idle connections, each closed after R subrequests or T
// idle. A subrequest whose auth-url host comes from a variable gets a connection of its own.
import type { Agent } from 'node:http';
import http from '../../node-http.ts';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { AuthKeepaliveModel } from '../../config/model.ts';

const DEFAULT_POOL: AuthKeepaliveModel = {
  connections: 64,
  requests: Number.POSITIVE_INFINITY,
  timeoutMs: 60_000,
};

type AuthAgent = Agent | https.Agent;

/** Counts the subrequests of each connection and closes it after `maxRequests` (keepSocketAlive). */
function withRequestLimit<A extends AuthAgent>(agent: A, maxRequests: number): A {
  if (!Number.isFinite(maxRequests)) return agent;
  const served = new WeakMap<Socket, number>();
  const keep = agent.keepSocketAlive.bind(agent);
  agent.keepSocketAlive = (socket: Socket) => {
    const count = (served.get(socket) ?? 0) + 1;
    served.set(socket, count);
    return count < maxRequests && keep(socket);
  };
  return agent;
}

function poolAgent(protocol: 'http:' | 'https:', pool: AuthKeepaliveModel): AuthAgent {
  const options = { keepAlive: true, maxFreeSockets: pool.connections, timeout: pool.timeoutMs };
  // nginx's proxy_ssl_verify is off by default, for auth-url as for backends.
  const agent =
    protocol === 'https:'
      ? new https.Agent({ ...options, rejectUnauthorized: false })
      : new http.Agent(options);
  return withRequestLimit(agent, pool.requests);
}

const pools = new Map<string, AuthAgent>();
// Without reuse: a connection per subrequest, closed after it (Connection: close).
const oneShot = {
  'http:': new http.Agent({ keepAlive: false }),
  'https:': new https.Agent({ keepAlive: false, rejectUnauthorized: false }),
};

/** The agent of a subrequest: `pool` undefined is keepip's default pool, null a connection of its own. */
export function authAgent(
  protocol: 'http:' | 'https:',
  pool: AuthKeepaliveModel | null | undefined,
): AuthAgent {
  if (pool === null) return oneShot[protocol];
  const settings = pool ?? DEFAULT_POOL;
  const key = `${protocol}|${settings.connections}|${settings.requests}|${settings.timeoutMs}`;
  let agent = pools.get(key);
  if (agent === undefined) {
    agent = poolAgent(protocol, settings);
    pools.set(key, agent);
  }
  return agent;
}
