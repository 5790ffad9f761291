// Runs the tcp-services plan on keepip's L4 engine (src/lb): one listener per entry, its targets
// re-registered on every snapshot, listeners opened and closed as entries come and go.
import type { Registry } from 'prom-client';
import { type RunningLb, startLoadBalancer } from '../lb/balancer.ts';
import type { TcpServicePlan } from './tcp-services.ts';

export interface TcpRunner {
  apply(plans: readonly TcpServicePlan[]): Promise<void>;
  listeners(): { port: number; address: string; actualPort: number }[];
  close(): Promise<void>;
}

export function createTcpRunner(deps: {
  host: string;
  registry: Registry;
  log: (line: string) => void;
}): TcpRunner {
  const running = new Map<number, { lb: RunningLb; signature: string }>();
  const signature = (p: TcpServicePlan) =>
    `${p.service.namespace}/${p.service.name}:${p.servicePort}:${p.decode}:${p.encode}`;
  return {
    async apply(plans) {
      const wanted = new Map<number, TcpServicePlan>();
      for (const plan of plans) {
        if (plan.decode) {
          deps.log(
            `tcp-services ${plan.port}: decoding a PROXY header from clients (":PROXY") is not supported yet; not served`,
          );
          continue;
        }
        wanted.set(plan.port, plan);
      }
      for (const [port, entry] of running) {
        const plan = wanted.get(port);
        if (plan && signature(plan) === entry.signature) continue;
        running.delete(port);
        await entry.lb.close();
        deps.log(`tcp-services ${port}: stopped`);
      }
      for (const [port, plan] of wanted) {
        const existing = running.get(port);
        if (existing) {
          existing.lb.setTargets(plan.targets);
          continue;
        }
        try {
          const lb = await startLoadBalancer({
            listen: { host: deps.host, port },
            targets: plan.targets,
            proxyProtocol: plan.encode ? 'v1' : null,
            sourceAddress: null,
            preserveClientIp: false,
            algorithm: 'round-robin',
            healthCheck: null,
            deregistrationDelayMs: 0,
            registry: deps.registry,
            name: `tcp-services-${port}`,
            log: deps.log,
          });
          running.set(port, { lb, signature: signature(plan) });
          deps.log(
            `tcp-services ${port}: listening ${lb.address.address}:${lb.address.port} -> ${plan.service.namespace}/${plan.service.name}:${plan.servicePort} (${plan.targets.length} endpoints${plan.encode ? ', sends PROXY v1' : ''})`,
          );
        } catch (error) {
          deps.log(`tcp-services ${port}: cannot listen (${(error as Error).message})`);
        }
      }
    },
    listeners: () =>
      [...running].map(([port, { lb }]) => ({
        port,
        address: lb.address.address,
        actualPort: lb.address.port,
      })),
    async close() {
      for (const { lb } of running.values()) await lb.close();
      running.clear();
    },
  };
}
