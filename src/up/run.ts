// `keepip up`, the I/O half: binds what the plan (plan.ts) says, in order, on this machine. With
// `ports: 'ephemeral'` every listener takes a free port and the hops behind it are told the real one,
// so several chains (tests, a demo beside a running one) never collide; with 'exact' the manifests'
// ports are used as written.
import type { AddressInfo } from 'node:net';
import { describeIssue } from '../config/issue-text.ts';
import type { Topology } from '../config/model.ts';
import type { DecisionSink } from '../gateway/exchange.ts';
import { type RunningGateway, snapshotEvents, startGateway } from '../gateway/gateway.ts';
import type { LineSink } from '../gateway/line-sink.ts';
import { watchConfig } from '../gateway/reload.ts';
import { blockingIssues } from '../gateway/snapshot.ts';
import { loadTopology, type TopologyOptions } from '../k8s/index.ts';
import { type RunningWhoami, startWhoami } from '../whoami/server.ts';
import { type RunningL4, startL4 } from './l4.ts';
import { type Component, type Endpoint, type L4Component, planUp, type UpPlan } from './plan.ts';

export interface UpOptions extends TopologyOptions {
  paths: string[];
  ports: 'exact' | 'ephemeral';
  /** Every line any component logs, with the component's name. */
  log: (component: string, line: string) => void;
  /** Reload when the manifests change (default true). */
  watch?: boolean;
  /** Told of every request the gateway finishes (the dashboard's decision log). */
  decisions?: DecisionSink;
}

export interface ReloadOutcome {
  ok: boolean;
  /** What changed or why nothing did. */
  messages: string[];
}

export interface RunningChain {
  readonly plan: UpPlan;
  readonly topology: Topology;
  /** Where a listener the manifests name (e.g. the LB's 127.0.10.1:80) actually listens. */
  actual(logical: Endpoint): Endpoint;
  /** Reads the manifests again and applies the difference; a bad change keeps the running chain. */
  reload(): Promise<ReloadOutcome>;
  /** Resolves with the outcome of the next reload, however it was triggered (file change or reload()). */
  nextReload(): Promise<ReloadOutcome>;
  /** The gateway, once started (the dashboard's Routes page). */
  gateway(): RunningGateway | null;
  /** The L4 hops running now, in start order (the dashboard's Load balancer page). */
  loadBalancers(): { component: L4Component; running: RunningL4 }[];
  close(): Promise<void>;
}

export class UpError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const key = (e: Endpoint): string => `${e.host}:${e.port}`;

/** A LineSink that hands each line to the chain's log with the component's name. */
function componentSink(log: UpOptions['log'], component: string): LineSink {
  return {
    write: (line) => log(component, line),
    flush: async () => {},
    close: async () => {},
    dropped: 0,
  };
}

interface Instance {
  component: Component;
  /** JSON of the component as planned: a different one after a reload means restart it. */
  signature: string;
  l4?: RunningL4;
  close(): Promise<void>;
}

export async function startChain(options: UpOptions): Promise<RunningChain> {
  const topologyOptions: TopologyOptions = {
    ...(options.ingressClass !== undefined ? { ingressClass: options.ingressClass } : {}),
    ...(options.configMap !== undefined ? { configMap: options.configMap } : {}),
  };
  const load = async (): Promise<{ topology: Topology } | { error: string[] }> => {
    const topology = await loadTopology(options.paths, topologyOptions);
    // The gateway's own rule: errors it contains (an invalid allowlist answers 503) do not stop the chain.
    const blocking = blockingIssues(topology.issues);
    if (blocking.length > 0) return { error: blocking.map(describeIssue) };
    return { topology };
  };

  const first = await load();
  if ('error' in first)
    throw new UpError('UP_CONFIG_INVALID', `the manifests cannot run:\n  ${first.error.join('\n  ')}`);
  let topology = first.topology;
  let plan = planUp(topology);

  // Logical listener -> actual port. Fixed for the life of the chain so reloads keep addresses.
  const ports = new Map<string, number>();
  const bindPort = (logical: Endpoint): number =>
    options.ports === 'exact' ? logical.port : (ports.get(key(logical)) ?? 0);
  const remember = (logical: Endpoint, address: AddressInfo) => ports.set(key(logical), address.port);
  const actual = (logical: Endpoint): Endpoint => {
    const port = ports.get(key(logical));
    return port === undefined ? logical : { host: logical.host, port };
  };

  const instances = new Map<string, Instance>();
  let gateway: RunningGateway | null = null;

  for (const issue of topology.issues) options.log('config', describeIssue(issue));
  for (const note of plan.notes) options.log('up', note);

  const startComponent = async (component: Component): Promise<Instance> => {
    const signature = JSON.stringify(component);
    if (component.kind === 'whoami') {
      const running: RunningWhoami = await startWhoami({
        host: component.listen.host,
        port: bindPort(component.listen),
        name: component.name,
      });
      remember(component.listen, running.address);
      options.log(component.name, `listening on http://${key(actual(component.listen))}`);
      return { component, signature, close: () => running.close() };
    }
    if (component.kind === 'gateway') {
      if (gateway === null) {
        gateway = await startGateway({
          topology,
          http: component.http ? { host: component.http.host, port: bindPort(component.http) } : null,
          https: component.https ? { host: component.https.host, port: bindPort(component.https) } : null,
          accessLog: componentSink(options.log, 'gateway'),
          errorLog: componentSink(options.log, 'gateway'),
          ...(options.decisions ? { decisions: options.decisions } : {}),
          upstreamAddress: (address, port) => {
            const mapped = actual({ host: address, port });
            return { address: mapped.host, port: mapped.port };
          },
        });
        if (component.http && gateway.httpAddress) remember(component.http, gateway.httpAddress);
        if (component.https && gateway.httpsAddress) remember(component.https, gateway.httpsAddress);
        for (const event of snapshotEvents(gateway.snapshot())) options.log('gateway', event.message);
        const listening = [
          component.http ? `http ${key(actual(component.http))}` : null,
          component.https ? `https ${key(actual(component.https))}` : null,
        ].filter((x) => x !== null);
        options.log('gateway', `listening ${listening.join(', ')}`);
      }
      const running = gateway;
      return { component, signature, close: () => running.close() };
    }
    const l4: RunningL4 = await startL4(component, {
      port: bindPort(component.listen),
      targets: component.targets.map(actual),
      log: (line) => options.log(component.name, line),
    });
    remember(component.listen, l4.address);
    options.log(component.name, describeL4(component, actual));
    return { component, signature, l4, close: () => l4.close() };
  };

  const startAll = async (components: readonly Component[]) => {
    for (const component of components) {
      if (instances.has(component.name)) continue;
      instances.set(component.name, await startComponent(component));
    }
  };

  const closeAll = async () => {
    // Outside in: the LBs first, so nothing new enters while the inner hops close.
    for (const instance of [...instances.values()].reverse()) await instance.close();
    instances.clear();
  };

  try {
    await startAll(plan.components);
  } catch (error) {
    await closeAll();
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'EACCES' || err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL') {
      throw new UpError(
        'UP_LISTEN_FAILED',
        `${err.message}${options.ports === 'exact' ? ' (try --ephemeral-ports: every listener on a free port)' : ''}`,
      );
    }
    throw error;
  }

  const waiters: Array<(outcome: ReloadOutcome) => void> = [];
  let reloading: Promise<ReloadOutcome> | null = null;

  const applyReload = async (): Promise<ReloadOutcome> => {
    const next = await load();
    if ('error' in next) {
      for (const line of next.error) options.log('config', line);
      return {
        ok: false,
        messages: ['the change is invalid; the running chain keeps its configuration', ...next.error],
      };
    }
    const messages: string[] = [];
    const nextPlan = planUp(next.topology);
    const wanted = new Map(nextPlan.components.map((c) => [c.name, c]));
    // Stop what is gone or changed (outside in), then start what is new or changed (inside out).
    for (const [name, instance] of [...instances.entries()].reverse()) {
      const component = wanted.get(name);
      if (component !== undefined && JSON.stringify(component) === instance.signature) continue;
      if (instance.component.kind === 'gateway' && component !== undefined) continue; // reloads in place
      await instance.close();
      instances.delete(name);
      messages.push(component === undefined ? `stopped ${name}` : `restarted ${name}`);
    }
    const previousGateway = gateway;
    if (previousGateway !== null) {
      const result = previousGateway.reload(next.topology);
      if (!result.ok) {
        messages.push(`gateway kept its configuration: ${result.error.message}`);
        return { ok: false, messages };
      }
      messages.push(`gateway reloaded (configuration version ${result.version})`);
      for (const event of snapshotEvents(result.snapshot)) options.log('gateway', event.message);
    }
    await startAll(nextPlan.components);
    for (const note of nextPlan.notes) options.log('up', note);
    topology = next.topology;
    plan = nextPlan;
    return { ok: true, messages };
  };

  const reload = (): Promise<ReloadOutcome> => {
    if (reloading === null) {
      reloading = applyReload()
        .catch(
          (error: Error): ReloadOutcome => ({ ok: false, messages: [`reload failed: ${error.message}`] }),
        )
        .then((outcome) => {
          reloading = null;
          for (const line of outcome.messages) options.log('up', line);
          for (const resolve of waiters.splice(0)) resolve(outcome);
          return outcome;
        });
    }
    return reloading;
  };

  const watcher =
    options.watch === false
      ? null
      : await watchConfig(options.paths, async () => void (await reload()), {
          onError: (error) => options.log('up', `watching the manifests: ${(error as Error).message}`),
        });

  return {
    get plan() {
      return plan;
    },
    get topology() {
      return topology;
    },
    actual,
    reload,
    nextReload: () => new Promise((resolve) => waiters.push(resolve)),
    gateway: () => gateway,
    loadBalancers: () =>
      [...instances.values()].flatMap((i) =>
        i.l4 !== undefined && i.component.kind !== 'gateway' && i.component.kind !== 'whoami'
          ? [{ component: i.component, running: i.l4 }]
          : [],
      ),
    async close() {
      watcher?.close();
      await closeAll();
    },
  };
}

function describeL4(component: L4Component, actual: (e: Endpoint) => Endpoint): string {
  const targets = component.targets.map((t) => key(actual(t))).join(', ') || 'no targets';
  const source = component.preserveClientIp
    ? "keeps the client's address"
    : `connects from ${component.sourceAddress ?? 'the OS-chosen address'}`;
  const proxy = component.proxyProtocol ? `, sends PROXY ${component.proxyProtocol}` : '';
  return `listening on ${key(actual(component.listen))} -> ${targets} (${source}${proxy})`;
}
