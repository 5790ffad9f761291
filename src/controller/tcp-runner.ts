// Runs the tcp-services plan: one listener per entry on keepip's L4 engine (src/lb: the balancer, or
// its flows behind the PROXY reader for `:PROXY` entries), targets re-registered on every snapshot,
// listeners opened and closed as entries come and go.
import type { Registry } from 'prom-client';
import { startLoadBalancer } from '../lb/balancer.ts';
import { type DecodeSettings, startDecodingListener } from './tcp-decode.ts';
import type { TcpServicePlan } from './tcp-services.ts';

export interface TcpRunner {
  apply(plans: readonly TcpServicePlan[], settings: DecodeSettings): Promise<void>;
  listeners(): { port: number; address: string; actualPort: number }[];
  close(): Promise<void>;
}

interface Listener {
  signature: string;
  address: { address: string; port: number };
  update(plan: TcpServicePlan, settings: DecodeSettings): void;
  close(): Promise<void>;
}

const signature = (p: TcpServicePlan) =>
  `${p.service.namespace}/${p.service.name}:${p.servicePort}:${p.decode}:${p.encode}`;

async function open(
  plan: TcpServicePlan,
  settings: DecodeSettings,
  deps: { host: string; registry: Registry; log: (line: string) => void },
): Promise<Listener> {
  if (plan.decode) {
    const decoding = await startDecodingListener({
      host: deps.host,
      port: plan.port,
      targets: plan.targets,
      encode: plan.encode,
      settings,
      log: deps.log,
    });
    return {
      signature: signature(plan),
      address: decoding.address,
      update(next, nextSettings) {
        decoding.setTargets(next.targets);
        decoding.setSettings(nextSettings);
      },
      close: () => decoding.close(),
    };
  }
  const lb = await startLoadBalancer({
    listen: { host: deps.host, port: plan.port },
    targets: plan.targets,
    proxyProtocol: plan.encode ? 'v1' : null,
    sourceAddress: null,
    preserveClientIp: false,
    algorithm: 'round-robin',
    healthCheck: null,
    deregistrationDelayMs: 0,
    registry: deps.registry,
    name: `tcp-services-${plan.port}`,
    log: deps.log,
  });
  return {
    signature: signature(plan),
    address: lb.address,
    update: (next) => lb.setTargets(next.targets),
    close: () => lb.close(),
  };
}

export function createTcpRunner(deps: {
  host: string;
  registry: Registry;
  log: (line: string) => void;
}): TcpRunner {
  const running = new Map<number, Listener>();
  return {
    async apply(plans, settings) {
      const wanted = new Map(plans.map((p) => [p.port, p]));
      for (const [port, listener] of running) {
        const plan = wanted.get(port);
        if (plan && signature(plan) === listener.signature) continue;
        running.delete(port);
        await listener.close();
        deps.log(`tcp-services ${port}: stopped`);
      }
      for (const [port, plan] of wanted) {
        const existing = running.get(port);
        if (existing) {
          existing.update(plan, settings);
          continue;
        }
        try {
          const listener = await open(plan, settings, deps);
          running.set(port, listener);
          const proxy = [plan.decode ? 'reads PROXY from clients' : '', plan.encode ? 'sends PROXY v1' : '']
            .filter((s) => s !== '')
            .join(', ');
          deps.log(
            `tcp-services ${port}: listening ${listener.address.address}:${listener.address.port} -> ${plan.service.namespace}/${plan.service.name}:${plan.servicePort} (${plan.targets.length} endpoints${proxy ? `, ${proxy}` : ''})`,
          );
        } catch (error) {
          deps.log(`tcp-services ${port}: cannot listen (${(error as Error).message})`);
        }
      }
    },
    listeners: () =>
      [...running].map(([port, l]) => ({ port, address: l.address.address, actualPort: l.address.port })),
    async close() {
      for (const listener of running.values()) await listener.close();
      running.clear();
    },
  };
}
