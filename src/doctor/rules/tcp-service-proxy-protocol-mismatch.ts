// TCP_SERVICE_PROXY_PROTOCOL_MISMATCH: the LB's PROXY switch covers every port, tcp-services entries
// choose per entry (`:PROXY`). An SSH entry without it hands the LB's header to sshd, which refuses the
// connection (kubernetes/kubernetes#42616); an entry with it, behind an LB that sends none, refuses
// every client (keepip's stream log: 400).
import type { LoadBalancerModel } from '../../config/model.ts';
import type { Chain } from '../chain.ts';
import { entriesToSwitch, proxyProtocolPlan, tcpServicesProxyPatch } from '../plans.ts';
import { entryValue, type StreamEntry, type StreamServiceSet } from '../stream-services.ts';
import type { Finding, Fix } from '../types.ts';
import { describeLb, describeLbStart } from './common.ts';
import type { Rule, RuleContext } from './types.ts';

const ID = 'TCP_SERVICE_PROXY_PROTOCOL_MISMATCH';

function describeEntry(set: StreamServiceSet, entry: StreamEntry): string {
  const lbPort = entry.lbPort === null ? '' : ` (LB port ${entry.lbPort.port})`;
  return `tcp-services entry "${entry.port}": "${entryValue(entry, entry.decode)}"${lbPort} of ConfigMap ${set.configMap.namespace}/${set.configMap.name} (${set.source})`;
}

function finding(set: StreamServiceSet, message: string, fix: Fix | null): Finding {
  return {
    id: ID,
    severity: 'error',
    hops: ['load-balancer', 'gateway', 'backend'],
    message,
    fix,
    subject: { kind: 'ConfigMap', ...set.configMap },
  };
}

/** The LB sends PROXY; these entries pass it on to their backend as if the client had sent it. */
function sentNotRead(chain: Chain, lb: LoadBalancerModel, set: StreamServiceSet): Finding[] {
  const patch = tcpServicesProxyPatch(chain, true);
  const fix =
    patch === null
      ? null
      : { summary: 'Read the PROXY header on these entries (:PROXY).', patches: [patch.patch] };
  return entriesToSwitch(chain, true).map((entry) =>
    finding(
      set,
      `${describeLbStart(lb)} starts every connection on every port with a PROXY ${lb.proxyProtocol} header, but ${describeEntry(set, entry)} does not read one (no :PROXY). ` +
        `keepip passes the header on to ${entry.service.namespace}/${entry.service.name} as the first bytes of the client's stream, so the backend's own protocol fails at once: sshd logs "Bad protocol version identification" or "invalid format" and closes, and ssh says "Connection closed by remote host". ` +
        `With :PROXY keepip reads the header (the client's address goes to the stream log) and passes only the client's bytes; a second :PROXY sends a v1 header on, for backends that read one.`,
      fix,
    ),
  );
}

/**
 * The LB sends no PROXY; these entries refuse every connection that does not start with one. The entry
 * asks for the client's address, so the fix is PROXY end to end (the plan every PROXY finding shares,
 * so fixes applied together agree); only an LB without a PROXY switch gets `:PROXY` dropped.
 */
function expectedNotSent(
  chain: Chain,
  lb: LoadBalancerModel,
  set: StreamServiceSet,
  context: RuleContext,
): Finding[] {
  const patch = tcpServicesProxyPatch(chain, false);
  const drop =
    patch === null
      ? null
      : { summary: 'Stop expecting a PROXY header on these entries.', patches: [patch.patch] };
  const fix = proxyProtocolPlan(chain, { lbAnnotations: context.lbAnnotations }) ?? drop;
  return entriesToSwitch(chain, false).map((entry) =>
    finding(
      set,
      `${describeEntry(set, entry)} expects every connection to start with a PROXY header (:PROXY), but ${describeLb(lb)} sends none. ` +
        `keepip refuses each connection through the LB before dialling the backend: the client's own first bytes (an SSH banner, a TLS ClientHello) are not a PROXY header, and the stream log shows status 400 ("PROXY header refused"). ` +
        `Either the LB sends PROXY on every port (the gateway must then expect it too), or the entry stops expecting it: "${entry.port}": "${entryValue(entry, false)}".`,
      fix,
    ),
  );
}

export const rule: Rule = {
  id: ID,
  severity: 'error',
  check(_topology, context) {
    const { chain } = context;
    const { lb } = chain;
    const set = chain.streamServices.tcp;
    if (lb === null || set === null) return [];
    return lb.proxyProtocol !== null ? sentNotRead(chain, lb, set) : expectedNotSent(chain, lb, set, context);
  },
};
