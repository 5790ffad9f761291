// TCP_SERVICE_CLIENT_NOT_BELIEVED: a `:PROXY:PROXY` tcp-services entry reads the load balancer's header
// and sends one on, but without enable-real-ip the header's client is not believed (ingress-nginx's
// stream block has set_real_ip_from only with it): the backend's header names the load balancer, so
// Gitea's SSH logs and limits the NLB's address. keepip does the same, so the fix is the ConfigMap's.
import { patchConfigMap } from '../fix.ts';
import { entryValue } from '../stream-services.ts';
import type { Finding } from '../types.ts';
import { configMapSubject } from './common.ts';
import type { Rule } from './types.ts';

const ID = 'TCP_SERVICE_CLIENT_NOT_BELIEVED';

export const rule: Rule = {
  id: ID,
  severity: 'warning',
  check(topology, context) {
    const set = context.chain.streamServices.tcp;
    if (set === null || topology.gateway.settings.enableRealIp) return [];
    const entries = set.entries.filter((e) => e.decode && e.encode);
    if (entries.length === 0) return [];
    const named = entries.map((e) => `"${e.port}": "${entryValue(e, true)}"`).join(', ');
    const finding: Finding = {
      id: ID,
      severity: 'warning',
      hops: ['gateway', 'backend'],
      message:
        `tcp-services ${named} of ConfigMap ${set.configMap.namespace}/${set.configMap.name} read the PROXY header the load balancer sends and send one on to the backend, but enable-real-ip is off, so the header's client is not believed (as ingress-nginx: its stream block has set_real_ip_from only with enable-real-ip). ` +
        'The backend gets a header naming the load balancer (or the node) for every connection: its logs, limits and fail2ban see one address. The stream log has the client as $proxy_protocol_addr only.',
      fix: {
        summary:
          'Believe the PROXY header of trusted peers on tcp-services (proxy-real-ip-cidr should be the load balancer).',
        patches: [patchConfigMap(context.configMap, { 'enable-real-ip': 'true' })],
      },
      ...configMapSubject(context),
    };
    return [finding];
  },
};
