// SSL_PASSTHROUGH_BACKEND_SEES_GATEWAY: TLS to a passthrough host goes unread to its backend (G10), so
// keepip cannot tell the backend who the client is: the backend's peer is the gateway pod. Informational:
// it matters when the backend itself filters or logs by address; keepip's own check sees the client.
import { describeWorkload } from '../controllers.ts';
import { describeIngresses, type PassthroughHost } from '../passthrough.ts';
import { gatewayPodAddress } from '../simulate-passthrough.ts';
import type { Finding } from '../types.ts';
import { passthroughHostsFor, passthroughSubject } from './common.ts';
import type { Rule, RuleContext } from './types.ts';

function guard(host: PassthroughHost): string {
  const l = host.location;
  if (l?.allow || l?.deny)
    return `keepip checks the "/" path's lists (${[l.allow ? `allow ${l.allow.raw}` : null, l.deny ? `deny ${l.deny.raw}` : null].filter((p) => p !== null).join('; ')}) at connection time on the client it resolves, so put address rules there`;
  return `no allow or deny list guards ${host.host}: every client that reaches the gateway reaches the backend. Address rules belong on the "/" path's Ingress (whitelist-source-range, denylist-source-range), which keepip checks at connection time on the client it resolves`;
}

/** ", on the controller Deployment ns/name" when the manifests name the controller that enables it. */
function onController(host: PassthroughHost): string {
  const w = host.flag.workload;
  return w === undefined ? '' : `, on the controller ${describeWorkload(w)}`;
}

function finding(context: RuleContext, host: PassthroughHost): Finding {
  const pod = gatewayPodAddress(context.chain);
  const backend = host.location?.backend?.upstreamName ?? '-';
  return {
    id: 'SSL_PASSTHROUGH_BACKEND_SEES_GATEWAY',
    severity: 'info',
    hops: ['gateway', 'backend'],
    message:
      `TLS for ${host.host} passes through unread to ${backend} (ssl-passthrough, ${describeIngresses(host.ingresses)}${onController(host)}, G10): keepip cannot add X-Forwarded-For, X-Real-IP or a PROXY header without terminating TLS, so the backend sees the gateway pod${pod === null ? '' : ` (${pod})`} as the peer of every connection, as with ingress-nginx. ` +
      `IP rules and logs in the backend see that address; ${guard(host)} (ingress-nginx's passthrough applies no such rules). For the backend to see the client, let keepip terminate TLS instead (remove ssl-passthrough; backend-protocol: HTTPS re-encrypts to the backend).`,
    fix: null,
    ...passthroughSubject(host),
    ...(host.location !== null ? { origin: host.location.ingressOrigin } : {}),
  };
}

export const rule: Rule = {
  id: 'SSL_PASSTHROUGH_BACKEND_SEES_GATEWAY',
  severity: 'info',
  check(_topology, context) {
    // With --client: only when the simulated connection reaches the backend through passthrough.
    const sim = context.simulation;
    if (sim !== null && !(sim.passthrough === true && sim.outcome === 'allowed')) return [];
    return passthroughHostsFor(context, ['active']).map((h) => finding(context, h));
  },
};
