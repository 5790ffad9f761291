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
import {
  buildTopology,
  loadTopologyAndObjects,
  type ManifestObject,
  type ManifestSource,
  type TopologyOptions,
} from '../k8s/index.ts';
import { formatHostPort } from '../net/host-port.ts';
import { type RunningWhoami, startWhoami } from '../whoami/server.ts';
import { type RunningL4, startL4 } from './l4.ts';
import {
  type Component,
  type Endpoint,
  type GatewayComponent,
  type L4Component,
  planUp,
  type UpPlan,
} from './plan.ts';

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
  /** The manifests the topology was translated from, and the translation (the dashboard's Chain page). */
  manifests(): ManifestSource;
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

const key = (e: Endpoint): string => formatHostPort(e.host, e.port);

/** A balancer's line in the chain's log: it names its listener first, which the log names already. */
export function l4Line(component: string, line: string): string {
  const own = `${component}: `;
  return line.startsWith(own) ? line.slice(own.length) : line;
}

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

/** Logical listener -> actual port. Fixed for the life of the chain so reloads keep addresses. */
interface PortMap {
  /** The port to bind: the logical one ('exact'), the one it got before, or 0 for a free one. */
  bindPort(logical: Endpoint): number;
  remember(logical: Endpoint, address: AddressInfo): void;
  actual(logical: Endpoint): Endpoint;
}

/** What a running chain is: the model, its plan, where things listen, and what runs. */
interface ChainState {
  readonly options: UpOptions;
  readonly topologyOptions: TopologyOptions;
  topology: Topology;
  objects: readonly ManifestObject[];
  plan: UpPlan;
  readonly ports: PortMap;
  /** By component name, in start order. */
  readonly instances: Map<string, Instance>;
  gateway: RunningGateway | null;
}

export async function startChain(options: UpOptions): Promise<RunningChain> {
  const topologyOptions: TopologyOptions = {
    ...(options.ingressClass !== undefined ? { ingressClass: options.ingressClass } : {}),
    ...(options.configMap !== undefined ? { configMap: options.configMap } : {}),
  };
  const first = await loadRunnable(options.paths, topologyOptions);
  if ('error' in first)
    throw new UpError('UP_CONFIG_INVALID', `the manifests cannot run:\n  ${first.error.join('\n  ')}`);
  const state: ChainState = {
    options,
    topologyOptions,
    topology: first.topology,
    objects: first.objects,
    plan: planUp(first.topology),
    ports: createPortMap(options.ports),
    instances: new Map(),
    gateway: null,
  };
  for (const issue of state.topology.issues) options.log('config', describeIssue(issue));
  for (const note of state.plan.notes) options.log('up', note);
  await startFirst(state);
  const reloads = createReloader(state);
  const watcher =
    options.watch === false
      ? null
      : await watchConfig(options.paths, async () => void (await reloads.reload()), {
          onError: (error) => options.log('up', `watching the manifests: ${(error as Error).message}`),
        });
  return {
    get plan() {
      return state.plan;
    },
    get topology() {
      return state.topology;
    },
    manifests: () => ({
      objects: state.objects,
      translate: (objects) => buildTopology(objects, topologyOptions),
    }),
    actual: state.ports.actual,
    reload: reloads.reload,
    nextReload: reloads.nextReload,
    gateway: () => state.gateway,
    loadBalancers: () =>
      [...state.instances.values()].flatMap((i) =>
        i.l4 !== undefined && i.component.kind !== 'gateway' && i.component.kind !== 'whoami'
          ? [{ component: i.component, running: i.l4 }]
          : [],
      ),
    async close() {
      watcher?.close();
      await closeAll(state);
    },
  };
}

/** The topology, unless it has errors the gateway would refuse (those it contains, such as an invalid allowlist answering 503, do not stop the chain). */
async function loadRunnable(
  paths: string[],
  topologyOptions: TopologyOptions,
): Promise<{ topology: Topology; objects: readonly ManifestObject[] } | { error: string[] }> {
  const loaded = await loadTopologyAndObjects(paths, topologyOptions);
  const blocking = blockingIssues(loaded.topology.issues);
  if (blocking.length > 0) return { error: blocking.map(describeIssue) };
  return loaded;
}

function createPortMap(mode: UpOptions['ports']): PortMap {
  const ports = new Map<string, number>();
  return {
    bindPort: (logical) => (mode === 'exact' ? logical.port : (ports.get(key(logical)) ?? 0)),
    remember: (logical, address) => void ports.set(key(logical), address.port),
    actual: (logical) => {
      const port = ports.get(key(logical));
      return port === undefined ? logical : { host: logical.host, port };
    },
  };
}

/** Starts the plan; on failure stops what did start, and names a listen failure UP_LISTEN_FAILED. */
async function startFirst(state: ChainState): Promise<void> {
  try {
    await startAll(state, state.plan.components);
  } catch (error) {
    await closeAll(state);
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'EACCES' || err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL') {
      const hint =
        state.options.ports === 'exact' ? ' (try --ephemeral-ports: every listener on a free port)' : '';
      throw new UpError('UP_LISTEN_FAILED', `${err.message}${hint}`);
    }
    throw error;
  }
}

/** Starts, in plan order, the components not running yet. */
async function startAll(state: ChainState, components: readonly Component[]): Promise<void> {
  for (const component of components) {
    if (state.instances.has(component.name)) continue;
    state.instances.set(component.name, await startComponent(state, component));
  }
}

async function closeAll(state: ChainState): Promise<void> {
  // Outside in: the LBs first, so nothing new enters while the inner hops close.
  for (const instance of [...state.instances.values()].reverse()) await instance.close();
  state.instances.clear();
}

async function startComponent(state: ChainState, component: Component): Promise<Instance> {
  const signature = JSON.stringify(component);
  const { options, ports } = state;
  if (component.kind === 'whoami') {
    const running: RunningWhoami = await startWhoami({
      host: component.listen.host,
      port: ports.bindPort(component.listen),
      name: component.name,
    });
    ports.remember(component.listen, running.address);
    options.log(component.name, `listening on http://${key(ports.actual(component.listen))}`);
    return { component, signature, close: () => running.close() };
  }
  if (component.kind === 'gateway') {
    const running = state.gateway ?? (await startGatewayComponent(state, component));
    return { component, signature, close: () => running.close() };
  }
  const l4: RunningL4 = await startL4(component, {
    port: ports.bindPort(component.listen),
    targets: component.targets.map(ports.actual),
    log: (line) => options.log(component.name, l4Line(component.name, line)),
  });
  ports.remember(component.listen, l4.address);
  options.log(component.name, describeL4(component, ports.actual));
  return { component, signature, l4, close: () => l4.close() };
}

/** The one gateway: it sends to the backends where they actually listen, and logs through the chain. */
async function startGatewayComponent(
  state: ChainState,
  component: GatewayComponent,
): Promise<RunningGateway> {
  const { options, ports } = state;
  const gateway = await startGateway({
    topology: state.topology,
    http: component.http ? { host: component.http.host, port: ports.bindPort(component.http) } : null,
    https: component.https ? { host: component.https.host, port: ports.bindPort(component.https) } : null,
    accessLog: componentSink(options.log, 'gateway'),
    errorLog: componentSink(options.log, 'gateway'),
    ...(options.decisions ? { decisions: options.decisions } : {}),
    // A local chain stops within 10 s (Ctrl-C), not the ConfigMap's worker-shutdown-timeout (240 s).
    drainTimeoutMs: 10_000,
    upstreamAddress: (address, port) => {
      const mapped = ports.actual({ host: address, port });
      return { address: mapped.host, port: mapped.port };
    },
  });
  state.gateway = gateway;
  if (component.http && gateway.httpAddress) ports.remember(component.http, gateway.httpAddress);
  if (component.https && gateway.httpsAddress) ports.remember(component.https, gateway.httpsAddress);
  for (const event of snapshotEvents(gateway.snapshot())) options.log('gateway', event.message);
  const listening = [
    component.http ? `http ${key(ports.actual(component.http))}` : null,
    component.https ? `https ${key(ports.actual(component.https))}` : null,
  ].filter((x) => x !== null);
  options.log('gateway', `listening ${listening.join(', ')}`);
  return gateway;
}

/** One reload at a time; every caller of a reload in flight, and every nextReload() waiter, gets its outcome. */
function createReloader(state: ChainState): Pick<RunningChain, 'reload' | 'nextReload'> {
  const waiters: Array<(outcome: ReloadOutcome) => void> = [];
  let reloading: Promise<ReloadOutcome> | null = null;
  const reload = (): Promise<ReloadOutcome> => {
    reloading ??= applyReload(state)
      .catch((error: Error): ReloadOutcome => ({ ok: false, messages: [`reload failed: ${error.message}`] }))
      .then((outcome) => {
        reloading = null;
        for (const line of outcome.messages) state.options.log('up', line);
        for (const resolve of waiters.splice(0)) resolve(outcome);
        return outcome;
      });
    return reloading;
  };
  return { reload, nextReload: () => new Promise((resolve) => waiters.push(resolve)) };
}

/** Reads the manifests again and applies the difference; a bad change keeps the running chain. */
async function applyReload(state: ChainState): Promise<ReloadOutcome> {
  const { options } = state;
  const next = await loadRunnable(options.paths, state.topologyOptions);
  if ('error' in next) {
    for (const line of next.error) options.log('config', line);
    return {
      ok: false,
      messages: ['the change is invalid; the running chain keeps its configuration', ...next.error],
    };
  }
  const previous: Runnable = { topology: state.topology, objects: state.objects, plan: state.plan };
  const nextPlan = planUp(next.topology);
  const messages: string[] = [];
  try {
    await switchTo(state, { topology: next.topology, objects: next.objects, plan: nextPlan }, messages);
  } catch (error) {
    // A hop that cannot start (its address taken, or not on this machine): the chain it replaced comes
    // back, rather than a chain without it.
    messages.push(`reload failed: ${(error as Error).message}; the running chain keeps its configuration`);
    await switchTo(state, previous, []);
    return { ok: false, messages };
  }
  for (const note of nextPlan.notes) options.log('up', note);
  return { ok: true, messages };
}

interface Runnable {
  topology: Topology;
  objects: readonly ManifestObject[];
  plan: UpPlan;
}

/**
 * Switches the running chain to `target` without a moment where the gateway routes to a hop that is not
 * there: hops it changes restart first (on the same address), its new backends start before the
 * gateway routes to them, and the hops it drops stop only once the gateway no longer does.
 */
async function switchTo(state: ChainState, target: Runnable, messages: string[]): Promise<void> {
  messages.push(...(await stopChanged(state, target.plan, 'changed')));
  state.topology = target.topology;
  state.objects = target.objects;
  state.plan = target.plan;
  const components = target.plan.components;
  const gatewayAt = components.findIndex((c) => c.kind === 'gateway');
  await startAll(state, gatewayAt < 0 ? [] : components.slice(0, gatewayAt));
  if (state.gateway !== null) {
    const result = state.gateway.reload(target.topology);
    if (!result.ok) throw new Error(`the gateway refused the configuration: ${result.error.message}`);
    messages.push(`gateway reloaded (configuration version ${result.version})`);
    for (const event of snapshotEvents(result.snapshot)) state.options.log('gateway', event.message);
  }
  await startAll(state, components);
  messages.push(...(await stopChanged(state, target.plan, 'dropped')));
}

/**
 * Stops, outside in, the hops the next plan changes (`changed`: they restart; a dropped hop whose
 * address a new one takes counts, it must free it first) or drops (`dropped`). The gateway reloads in
 * place instead, unless its pods moved: then it listens anew.
 */
async function stopChanged(
  state: ChainState,
  nextPlan: UpPlan,
  which: 'changed' | 'dropped',
): Promise<string[]> {
  const messages: string[] = [];
  const wanted = new Map(nextPlan.components.map((c) => [c.name, c]));
  const addresses = new Set(nextPlan.components.flatMap(listenKeys));
  for (const [name, instance] of [...state.instances.entries()].reverse()) {
    const component = wanted.get(name);
    if (component !== undefined && JSON.stringify(component) === instance.signature) continue;
    if (component?.kind === 'gateway' && sameListeners(component, instance.component)) continue;
    const freesAnAddress = listenKeys(instance.component).some((k) => addresses.has(k));
    const stopNow = which === 'changed' ? component !== undefined || freesAnAddress : component === undefined;
    if (!stopNow) continue;
    await instance.close();
    state.instances.delete(name);
    if (instance.component.kind === 'gateway') state.gateway = null;
    messages.push(component === undefined ? `stopped ${name}` : `restarted ${name}`);
  }
  return messages;
}

/** The logical addresses a component listens on. */
function listenKeys(component: Component): string[] {
  if (component.kind !== 'gateway') return [key(component.listen)];
  return [component.http, component.https].flatMap((e) => (e ? [key(e)] : []));
}

function sameListeners(next: GatewayComponent, running: Component): boolean {
  return (
    running.kind === 'gateway' &&
    JSON.stringify([next.http, next.https]) === JSON.stringify([running.http, running.https])
  );
}

function describeL4(component: L4Component, actual: (e: Endpoint) => Endpoint): string {
  const targets = component.targets.map((t) => key(actual(t))).join(', ') || 'no targets';
  const source = component.preserveClientIp
    ? "keeps the client's address"
    : `connects from ${component.sourceAddress ?? 'the OS-chosen address'}`;
  const proxy = component.proxyProtocol ? `, sends PROXY ${component.proxyProtocol}` : '';
  return `listening on ${key(actual(component.listen))} -> ${targets} (${source}${proxy})`;
}
