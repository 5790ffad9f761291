// Runs the tcp- and udp-services plans: one listener per entry (src/controller/tcp-proxy.ts and
// udp-proxy.ts, nginx's stream proxy), targets re-registered on every snapshot, listeners opened and
// closed as entries come and go. An ExternalName entry's target is a host name: the proxies
// connect to addresses, so names are resolved here, as tcp_udp_balancer.lua resolves
// ExternalName endpoints on its backend sync: on every apply and every RESOLVE_INTERVAL_MS after.
import { lookup as dnsLookup } from 'node:dns/promises';
import net from 'node:net';
import type { Registry } from 'prom-client';
import { LONGEST_TIMER_MS } from '../config/duration.ts';
import { type ConnectionBudget, entryLabel, type TcpServiceSettings } from './stream-entry.ts';
import { startTcpProxy } from './tcp-proxy.ts';
import type { StreamProtocol, TcpServicePlan } from './tcp-services.ts';
import { startUdpProxy } from './udp-proxy.ts';

export interface TcpRunner {
  apply(plans: readonly TcpServicePlan[], settings: TcpServiceSettings): Promise<void>;
  listeners(): { protocol: StreamProtocol; port: number; address: string; actualPort: number }[];
  close(): Promise<void>;
}

interface Listener {
  protocol: StreamProtocol;
  port: number;
  signature: string;
  /** `namespace/name:port` it forwards to, for the log. */
  service: string;
  address: { address: string; port: number };
  update(plan: TcpServicePlan, settings: TcpServiceSettings): void;
  close(): Promise<void>;
}

/** A name's addresses (all families); throws as dns.lookup does. */
export type TcpLookup = (host: string) => Promise<string[]>;

const RESOLVE_INTERVAL_MS = 30_000;

const systemLookup: TcpLookup = async (host) => (await dnsLookup(host, { all: true })).map((a) => a.address);

/** A target given by host name (an ExternalName entry), not by address. */
const isNamed = (target: { host: string }) => net.isIP(target.host) === 0;

/** The plan with each host-name target replaced by its addresses; a name that fails is logged and dropped. */
async function resolvePlan(
  plan: TcpServicePlan,
  lookup: TcpLookup,
  log: (line: string) => void,
): Promise<TcpServicePlan> {
  if (!plan.targets.some(isNamed)) return plan;
  const targets: { host: string; port: number }[] = [];
  for (const target of plan.targets) {
    if (!isNamed(target)) {
      targets.push(target);
      continue;
    }
    try {
      for (const address of await lookup(target.host)) targets.push({ host: address, port: target.port });
    } catch (error) {
      const e = error as NodeJS.ErrnoException;
      log(
        `${entryLabel({ protocol: plan.protocol ?? 'TCP', port: plan.port })}: ${plan.service.namespace}/${plan.service.name}: ${target.host} could not be resolved (${e.code ?? e.message})`,
      );
    }
  }
  return { ...plan, targets };
}

// What a listener cannot change in place: another Service or port only changes its targets, so the
// port keeps listening and open connections carry on, as over an nginx reload.
const signature = (p: TcpServicePlan) => `${p.decode}:${p.encode}`;
const serviceOf = (p: TcpServicePlan) => `${p.service.namespace}/${p.service.name}:${p.servicePort}`;
const protocolOf = (p: TcpServicePlan): StreamProtocol => p.protocol ?? 'TCP';
/** ingress-nginx's name of the stream upstream ($proxy_upstream_name): `tcp-gitea-gitea-ssh-22`. */
const upstreamNameOf = (p: TcpServicePlan) =>
  `${protocolOf(p).toLowerCase()}-${p.service.namespace}-${p.service.name}-${p.servicePort}`;
/** Where an entry is kept: TCP and UDP entries may share a port number (DNS on 53). */
const keyOf = (p: { protocol?: StreamProtocol; port: number }) => `${p.protocol ?? 'TCP'}/${p.port}`;

/**
 * How long open connections to a target that left (an endpoint gone, the entry moved to another
 * Service) may carry on: nginx's stream balancer never cuts them on a peer change, and a reload's
 * old worker keeps them for worker-shutdown-timeout (the ConfigMap's, 240 s by default).
 */
const bounded = (settings: TcpServiceSettings): TcpServiceSettings => ({
  ...settings,
  drainMs: Math.min(settings.drainMs, LONGEST_TIMER_MS),
});

async function open(
  plan: TcpServicePlan,
  settings: TcpServiceSettings,
  deps: RunnerContext,
): Promise<Listener> {
  const common = {
    host: deps.host,
    port: plan.port,
    upstreamName: upstreamNameOf(plan),
    targets: plan.targets,
    settings: bounded(settings),
    registry: deps.registry,
    log: deps.log,
    accessLog: deps.accessLog,
    budget: deps.budget,
  };
  const proxy =
    protocolOf(plan) === 'UDP'
      ? await startUdpProxy(common)
      : await startTcpProxy({ ...common, decode: plan.decode, encode: plan.encode });
  return {
    protocol: protocolOf(plan),
    port: plan.port,
    signature: signature(plan),
    service: serviceOf(plan),
    address: proxy.address,
    update(next, nextSettings) {
      // The new settings first: the targets this change removes drain for the new worker-shutdown-timeout.
      proxy.setSettings(bounded(nextSettings));
      proxy.setTargets(next.targets, upstreamNameOf(next));
    },
    close: () => proxy.close(),
  };
}

interface RunnerDeps {
  host: string;
  registry: Registry;
  /** Error and state lines. */
  log: (line: string) => void;
  /** The connection log of every entry (log-format-stream). */
  accessLog: (line: string) => void;
  /** Resolves ExternalName targets; default the system resolver (dns.lookup). */
  lookup?: TcpLookup;
}

/** The runner's own part: the connections of all its entries, against max-worker-connections. */
interface RunnerContext extends RunnerDeps {
  budget: ConnectionBudget;
}

export function createTcpRunner(options: RunnerDeps): TcpRunner {
  const deps: RunnerContext = { ...options, budget: { open: 0, lastAlertMs: 0 } };
  const running = new Map<string, Listener>();
  const lookup = deps.lookup ?? systemLookup;
  let last: { plans: readonly TcpServicePlan[]; settings: TcpServiceSettings } | null = null;
  let queue: Promise<void> = Promise.resolve();
  let closed = false;
  // One apply at a time: two would open the same port twice.
  const enqueue = (plans: readonly TcpServicePlan[], settings: TcpServiceSettings) => {
    last = { plans, settings };
    queue = queue
      .then(async () => {
        if (closed) return;
        const resolved = await Promise.all(plans.map((p) => resolvePlan(p, lookup, deps.log)));
        if (!closed) await applyResolved(running, resolved, settings, deps);
      })
      // A failed apply must not stop the ones after it.
      .catch((error: unknown) => deps.log(`tcp-services: apply failed (${(error as Error).message})`));
    return queue;
  };
  // Names are re-resolved while an entry has one (their addresses may change without a snapshot).
  const refresh = setInterval(() => {
    const named = last?.plans.some((p) => p.targets.some(isNamed));
    if (last && named) void enqueue(last.plans, last.settings);
  }, RESOLVE_INTERVAL_MS);
  refresh.unref();
  return {
    apply: enqueue,
    listeners: () =>
      [...running.values()].map((l) => ({
        protocol: l.protocol,
        port: l.port,
        address: l.address.address,
        actualPort: l.address.port,
      })),
    async close() {
      closed = true;
      clearInterval(refresh);
      await queue;
      for (const listener of running.values()) await listener.close();
      running.clear();
    },
  };
}

/** Closes listeners whose entry went or changed, updates the others' targets, opens the new ones. */
async function applyResolved(
  running: Map<string, Listener>,
  plans: readonly TcpServicePlan[],
  settings: TcpServiceSettings,
  deps: RunnerContext,
): Promise<void> {
  const wanted = new Map(plans.map((p) => [keyOf(p), p]));
  for (const [key, listener] of running) {
    const plan = wanted.get(key);
    if (plan && signature(plan) === listener.signature) continue;
    running.delete(key);
    await listener.close();
    deps.log(`${entryLabel(listener)}: stopped`);
  }
  for (const [key, plan] of wanted) {
    const label = entryLabel({ protocol: protocolOf(plan), port: plan.port });
    const existing = running.get(key);
    if (existing) {
      if (existing.service !== serviceOf(plan)) {
        existing.service = serviceOf(plan);
        deps.log(`${label}: now -> ${existing.service} (${plan.targets.length} endpoints)`);
      }
      existing.update(plan, settings);
      continue;
    }
    try {
      const listener = await open(plan, settings, deps);
      running.set(key, listener);
      const proxy = [plan.decode ? 'reads PROXY from clients' : '', plan.encode ? 'sends PROXY v1' : '']
        .filter((s) => s !== '')
        .join(', ');
      deps.log(
        `${label}: listening ${listener.address.address}:${listener.address.port} -> ${serviceOf(plan)} (${plan.targets.length} endpoints${proxy ? `, ${proxy}` : ''})`,
      );
    } catch (error) {
      deps.log(`${label}: cannot listen (${(error as Error).message})`);
    }
  }
}
