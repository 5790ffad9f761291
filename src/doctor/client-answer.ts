// What the client sees of a simulated answer beyond its HTTP status: which protocols the listener
// offers (with use-http2: ALPN h2 and http/1.1 on the TLS listener, h2 with prior knowledge beside
// http/1.1 on the HTTP one), and, for a route to a gRPC backend
// (backend-protocol GRPC / GRPCS), the gRPC status a gRPC client reads — a 403 from the allowlist is
// PERMISSION_DENIED, a 503 UNAVAILABLE — since the gateway answers gRPC requests in gRPC's terms
// (src/gateway/grpc-status.ts). Pure: the route is found again with the gateway's own router.
import { http2SettingsOf } from '../config/http2.ts';
import type { LocationModel } from '../config/model.ts';
import { GRPC_STATUS, grpcStatusForHttp } from '../gateway/grpc-status.ts';
import { routeRequest } from '../gateway/router.ts';
import type { Chain } from './chain.ts';
import type { ClientAnswer, GrpcAnswer, Simulation } from './types.ts';

const GRPC_NAMES = new Map<number, string>(Object.entries(GRPC_STATUS).map(([name, code]) => [code, name]));

/** The location the simulated request routes to, or null (404, default backend, a refused target). */
function routedLocation(chain: Chain, sim: Simulation): LocationModel | null {
  const decision = routeRequest(chain.routes, { host: sim.host, path: sim.path, scheme: sim.scheme });
  return decision.kind === 'proxy' || decision.kind === 'redirect' ? decision.route.location : null;
}

function grpcAnswer(protocol: 'GRPC' | 'GRPCS', sim: Simulation): GrpcAnswer {
  if (sim.status === 200 && sim.outcome === 'allowed')
    return {
      backendProtocol: protocol,
      code: null,
      name: null,
      text: `a gRPC client gets the backend's own grpc-status (backend-protocol ${protocol}, HTTP/2 to the backend)`,
    };
  const code = sim.status === null ? GRPC_STATUS.UNAVAILABLE : grpcStatusForHttp(sim.status);
  const name = GRPC_NAMES.get(code) ?? 'UNKNOWN';
  const why =
    sim.status === null
      ? 'no answer: the call fails as'
      : `the gateway's ${sim.status} reaches a gRPC client as a trailers-only answer with`;
  return { backendProtocol: protocol, code, name, text: `${why} grpc-status ${code} ${name}` };
}

export function clientAnswer(chain: Chain, sim: Simulation): ClientAnswer {
  // ssl-passthrough: the backend answers the handshake (ALPN included); keepip offers nothing.
  if (sim.passthrough === true) return { protocols: [], grpc: null };
  const http2 = http2SettingsOf(chain.topology.gateway.settings);
  // use-http2: h2 by ALPN on the TLS listener, by its preface (prior knowledge) on the HTTP one.
  const protocols = !http2.enabled
    ? ['http/1.1']
    : sim.scheme === 'https'
      ? ['h2', 'http/1.1']
      : ['http/1.1', 'h2'];
  const location = routedLocation(chain, sim);
  const protocol = location?.backendProtocol;
  const grpc = protocol === 'GRPC' || protocol === 'GRPCS' ? grpcAnswer(protocol, sim) : null;
  return { protocols, grpc };
}
