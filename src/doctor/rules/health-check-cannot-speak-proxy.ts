// HEALTH_CHECK_CANNOT_SPEAK_PROXY: with PROXY on, the LB's health checks carry a header too (A6). With
// instance targets and externalTrafficPolicy: Local they go to kube-proxy's healthCheckNodePort, which
// cannot parse it (A7); an HTTP check on another port only works if that port speaks PROXY.
import { isAwsProvider } from '../../config/providers.ts';
import { annotate } from '../fix.ts';
import { proxyProtocolPlan } from '../plans.ts';
import type { FixPatch } from '../types.ts';
import { describeLbStart, lbSubject } from './common.ts';
import type { Rule } from './types.ts';

const AWS_HC = 'service.beta.kubernetes.io/aws-load-balancer-healthcheck-';

export const rule: Rule = {
  id: 'HEALTH_CHECK_CANNOT_SPEAK_PROXY',
  severity: 'error',
  check(_topology, context) {
    const lb = context.chain.lb;
    if (lb === null || lb.proxyProtocol === null) return [];
    const findings = [];
    if (lb.targetType === 'instance' && lb.externalTrafficPolicy === 'Local') {
      findings.push({
        id: 'HEALTH_CHECK_CANNOT_SPEAK_PROXY',
        severity: 'error' as const,
        hops: ['load-balancer' as const, 'kube-proxy' as const],
        message:
          `${describeLbStart(lb)} sends PROXY ${lb.proxyProtocol} and the Service has externalTrafficPolicy: Local, so the LB health-checks kube-proxy's healthCheckNodePort${lb.healthCheckNodePort ? ` ${lb.healthCheckNodePort}` : ''}. ` +
          'Health checks carry a PROXY header as well (A6) and kube-proxy cannot parse it, so targets turn unhealthy and traffic depends on the LB failing open (A7). ' +
          'With externalTrafficPolicy: Cluster the checks go to the traffic port, where the gateway reads the header; PROXY protocol carries the client address, so Cluster loses nothing.',
        // Cluster moves the peer to the node addresses: the plan also widens proxy-real-ip-cidr to them.
        fix: proxyProtocolPlan(context.chain, { lbAnnotations: context.lbAnnotations }),
        ...lbSubject(lb),
      });
    }
    const hc = lb.healthCheck;
    const trafficPorts = new Set<number>();
    for (const p of lb.ports) {
      if (p.nodePort !== null) trafficPorts.add(p.nodePort);
      if (typeof p.targetPort === 'number') trafficPorts.add(p.targetPort);
    }
    // The Local case (checks to healthCheckNodePort) is the A7 finding above.
    const localCheck = lb.externalTrafficPolicy === 'Local' && hc.port === lb.healthCheckNodePort;
    if (hc.protocol === 'http' && hc.port !== 'traffic-port' && !trafficPorts.has(hc.port) && !localCheck) {
      const patches: FixPatch[] = isAwsProvider(lb.provider)
        ? [
            annotate('Service', lb.service, {
              [`${AWS_HC}protocol`]: 'tcp',
              [`${AWS_HC}port`]: 'traffic-port',
              [`${AWS_HC}path`]: null,
            }),
          ]
        : [];
      findings.push({
        id: 'HEALTH_CHECK_CANNOT_SPEAK_PROXY',
        severity: 'error' as const,
        hops: ['load-balancer' as const, 'gateway' as const],
        message:
          `${describeLbStart(lb)} sends PROXY ${lb.proxyProtocol} and health-checks HTTP ${hc.path} on port ${hc.port}, which is not the traffic port. ` +
          'Health-check connections carry a PROXY header too (A6); a status port that does not read PROXY protocol answers 400 and the targets turn unhealthy. Check the traffic port, where the gateway reads the header.',
        fix: patches.length > 0 ? { summary: 'Health-check the traffic port over TCP.', patches } : null,
        ...lbSubject(lb),
      });
    }
    return findings;
  },
};
