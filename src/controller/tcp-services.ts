// --tcp-services-configmap and --udp-services-configmap entries as ingress-nginx reads them —
// `"22": "gitea/gitea-ssh:22"`, with `:PROXY` (expect a PROXY header from the client) and `::PROXY`
// (send one to the backend) for TCP — turned into listeners with their current targets from the
// topology's endpoints (an ExternalName Service's target is its name, which the runner resolves). Pure.
import { externalNamePort } from '../config/lookup.ts';
import type { Topology } from '../config/model.ts';
import type { KubeObject } from './resources.ts';

export type StreamProtocol = 'TCP' | 'UDP';

export interface TcpServicePlan {
  /** TCP (tcp-services; the default) or UDP (udp-services). */
  protocol?: StreamProtocol;
  port: number;
  service: { namespace: string; name: string };
  servicePort: string;
  /** `:PROXY`: clients send a PROXY header first. */
  decode: boolean;
  /** `::PROXY`: a PROXY header (v1, as nginx's stream module) goes to the backend. */
  encode: boolean;
  targets: { host: string; port: number }[];
}

export interface TcpServiceProblem {
  code: 'TCP_SERVICE_INVALID' | 'UDP_SERVICE_INVALID' | 'UDP_SERVICE_PROXY_IGNORED';
  message: string;
}

// `PROXY` in any case: ingress-nginx compares it with strings.EqualFold.
const ENTRY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?):([A-Za-z0-9-]+)(?::([Pp][Rr][Oo][Xx][Yy])?(?::([Pp][Rr][Oo][Xx][Yy]))?)?$/;

function targetsFor(
  topology: Topology,
  protocol: StreamProtocol,
  { namespace, name, port }: { namespace: string; name: string; port: string },
) {
  const svc = topology.services.find((s) => s.ref.namespace === namespace && s.ref.name === name);
  if (!svc) return null;
  // The entry's protocol only: a Service often has the same number over both (DNS), as ingress-nginx matches it.
  const spec = svc.ports.find((p) => p.protocol === protocol && (String(p.port) === port || p.name === port));
  if (!spec) return null;
  if (svc.type === 'ExternalName') {
    // ingress-nginx's one endpoint: the name on the port's targetPort; the runner resolves it.
    if (!svc.externalName) return [];
    return [{ host: svc.externalName, port: externalNamePort(spec) }];
  }
  return (svc.endpoints[spec.name] ?? [])
    .filter((e) => e.ready)
    .map((e) => ({ host: e.address, port: e.port }));
}

export function planTcpServices(
  configMap: KubeObject | undefined,
  topology: Topology,
  reserved: readonly number[],
  protocol: StreamProtocol = 'TCP',
): { plans: TcpServicePlan[]; problems: TcpServiceProblem[] } {
  const plans: TcpServicePlan[] = [];
  const problems: TcpServiceProblem[] = [];
  const data = (configMap?.data ?? {}) as Record<string, unknown>;
  const where = `ConfigMap ${configMap?.metadata?.namespace ?? ''}/${configMap?.metadata?.name ?? ''}`;
  for (const [key, value] of Object.entries(data).sort(([a], [b]) => Number(a) - Number(b))) {
    const port = Number(key);
    const invalid = (why: string) =>
      problems.push({
        code: protocol === 'TCP' ? 'TCP_SERVICE_INVALID' : 'UDP_SERVICE_INVALID',
        message: `${where} data["${key}"]: ${why}; not served`,
      });
    if (!/^\d{1,5}$/.test(key) || port < 1 || port > 65535) {
      invalid('the key must be a port number 1-65535');
      continue;
    }
    if (reserved.includes(port)) {
      invalid(`port ${port} is one of the controller's own ports (HTTP, HTTPS, health, webhook, dashboard)`);
      continue;
    }
    const m = typeof value === 'string' ? ENTRY.exec(value.trim()) : null;
    if (!m) {
      invalid(`${JSON.stringify(value)} is not "namespace/service:port[:PROXY][:PROXY]"`);
      continue;
    }
    const [namespace, name, servicePort] = [m[1]!, m[3]!, m[5]!];
    const targets = targetsFor(topology, protocol, { namespace, name, port: servicePort });
    if (targets === null) {
      invalid(`Service ${namespace}/${name} with ${protocol} port ${servicePort} does not exist`);
      continue;
    }
    const proxy = m[6] !== undefined || m[7] !== undefined;
    if (protocol === 'UDP' && proxy)
      problems.push({
        code: 'UDP_SERVICE_PROXY_IGNORED',
        message: `${where} data["${key}"]: PROXY applies to TCP entries only; served without it, as ingress-nginx`,
      });
    plans.push({
      protocol,
      port,
      service: { namespace, name },
      servicePort,
      decode: protocol === 'TCP' && m[6] !== undefined,
      encode: protocol === 'TCP' && m[7] !== undefined,
      targets,
    });
  }
  return { plans, problems };
}
