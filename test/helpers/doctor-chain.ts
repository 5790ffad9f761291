// The bench of the doctor's differentials (test/security/doctor-*-differential.test.ts): a chain the
// generated manifests describe, run as `keepip up` runs it (the keepip lb in the cloud LB's role, the
// NodePort hop for instance targets) in front of one in-process gateway, and the manifests' controller
// half (the LB Service with its provider annotations, the ConfigMap, the controller pod, a node).
import assert from 'node:assert/strict';
import type { Topology } from '../../src/config/model.ts';
import { type RunningL4, startL4 } from '../../src/up/l4.ts';
import { type Endpoint, type L4Component, planUp } from '../../src/up/plan.ts';

/** The LB's source address, the node, the controller pod, the backend (whoami). */
export const LB = '127.0.10.1';
export const NODE = '127.0.1.1';
export const GW = '127.0.30.1';
export const WHOAMI = '127.0.40.11';

/** nlb-*: AWS LB Controller NLB; elb: in-tree Classic ELB (PROXY v1); linode (v1 / none); generic (no switch). */
export type LbKind = 'nlb-ip' | 'nlb-ip-preserve' | 'nlb-instance' | 'elb' | 'linode' | 'generic';
export type TrustOption = 'lb' | 'node' | 'other' | 'everyone' | 'absent' | 'wide';

export const TRUST: Record<TrustOption, string | null> = {
  lb: `${LB}/32`,
  node: `${NODE}/32`,
  other: '127.0.30.0/24', // contains neither the LB nor the node
  everyone: '0.0.0.0/0',
  absent: null, // ingress-nginx's default: 0.0.0.0/0
  wide: '127.0.0.0/8', // the LB, the node and every client (a "VPC CIDR")
};

/** What a configuration says of the LB and the gateway's client-address settings. */
export interface ChainCase {
  lb: LbKind;
  /** The Service's PROXY switch (ignored for generic, which has none). */
  proxy: boolean;
  etp: 'Cluster' | 'Local';
  /** keepip.dev/client-path: transit-gateway (the seed's path; AWS only) instead of direct. */
  transit: boolean;
  useProxyProtocol: boolean;
  trust: TrustOption;
  useForwardedHeaders: boolean;
  computeFull?: boolean;
  enableRealIp: boolean;
}

export const isAws = (c: ChainCase) => c.lb.startsWith('nlb') || c.lb === 'elb';
export const sendsProxy = (c: ChainCase) => c.proxy && c.lb !== 'generic';

/** The case's LB and client-address settings, as words for a failure message. */
export function describeChain(c: ChainCase): (string | null)[] {
  const lb = `${c.lb}${sendsProxy(c) ? (c.lb === 'elb' || c.lb === 'linode' ? '+pp1' : '+pp2') : ''}`;
  return [
    `lb=${lb}`,
    c.lb === 'nlb-ip' || c.lb === 'nlb-ip-preserve' ? null : `etp=${c.etp}`,
    isAws(c) && c.transit ? 'via=transit-gateway' : null,
    `use-proxy-protocol=${c.useProxyProtocol}`,
    `proxy-real-ip-cidr=${TRUST[c.trust] ?? '(absent)'}`,
    c.useForwardedHeaders ? 'use-forwarded-headers' : null,
    c.computeFull ? 'compute-full-forwarded-for' : null,
    c.enableRealIp ? 'enable-real-ip' : null,
  ];
}

/** The phases of a case that ran: before the fix, and after it when a fix was applied. */
export function phasesOf<P>(r: { before: P | null; after: P | null }): [string, P][] {
  const out: [string, P][] = [];
  if (r.before !== null) out.push(['before the fix', r.before]);
  if (r.after !== null) out.push(['after the fix', r.after]);
  return out;
}

/** The LB Service's annotations: the provider's own, as docs/manifests.md lists them. */
export function lbAnnotations(c: ChainCase): string[] {
  const aws = 'service.beta.kubernetes.io/aws-load-balancer';
  const out: string[] = [];
  if (c.lb.startsWith('nlb')) {
    out.push(`${aws}-type: "external"`, `${aws}-scheme: "internal"`);
    out.push(`${aws}-nlb-target-type: "${c.lb === 'nlb-instance' ? 'instance' : 'ip'}"`);
    if (c.lb === 'nlb-ip-preserve')
      out.push(`${aws}-target-group-attributes: "preserve_client_ip.enabled=true"`);
    if (c.proxy) out.push(`${aws}-proxy-protocol: "*"`);
  } else if (c.lb === 'elb') {
    out.push(`${aws}-internal: "true"`);
    if (c.proxy) out.push(`${aws}-proxy-protocol: "*"`);
  } else if (c.lb === 'linode') {
    out.push(
      `service.beta.kubernetes.io/linode-loadbalancer-default-proxy-protocol: "${c.proxy ? 'v1' : 'none'}"`,
    );
  }
  if (isAws(c) && c.transit) out.push('keepip.dev/client-path: "transit-gateway"');
  out.push(`keepip.dev/lb-source-address: "${LB}"`);
  return out;
}

/** The ConfigMap's client-address keys of the case. */
export function configMapData(c: ChainCase): string[] {
  const data: string[] = [];
  if (c.useProxyProtocol) data.push('use-proxy-protocol: "true"');
  const trust = TRUST[c.trust];
  if (trust !== null) data.push(`proxy-real-ip-cidr: "${trust}"`);
  if (c.useForwardedHeaders) data.push('use-forwarded-headers: "true"');
  if (c.computeFull) data.push('compute-full-forwarded-for: "true"');
  if (c.enableRealIp) data.push('enable-real-ip: "true"');
  return data;
}

/** YAML lines under a key: ` {}` when there are none. */
export const block = (lines: readonly string[], indent: string) =>
  lines.length === 0 ? ' {}' : `\n${lines.map((l) => `${indent}${l}`).join('\n')}`;

/** The controller's half of the manifests: its LB Service, ConfigMap (with `moreData`), pod and node. */
export function controllerManifests(c: ChainCase, moreData: readonly string[] = []): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
  annotations:${block(lbAnnotations(c), '    ')}
spec:
  type: LoadBalancer
  externalTrafficPolicy: ${c.etp}
  selector: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
  ports: [{name: http, port: 80, targetPort: 80, nodePort: 30080}]
status: {loadBalancer: {ingress: [{ip: ${LB}}]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
data:${block([...configMapData(c), ...moreData], '  ')}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ingress-nginx-controller-xyz12
  namespace: ingress-nginx
  labels: {kubernetes.io/service-name: ingress-nginx-controller}
addressType: IPv4
ports: [{name: http, port: 80}]
endpoints: [{addresses: ["${GW}"], conditions: {ready: true}, nodeName: node-1}]
---
apiVersion: v1
kind: Node
metadata: {name: node-1}
status: {addresses: [{type: InternalIP, address: ${NODE}}]}
`;
}

/** The backend Service `app/web` and its one endpoint, whoami at `whoamiPort`. */
export function backendManifests(whoamiPort: number): string {
  return `apiVersion: v1
kind: Service
metadata: {name: web, namespace: app}
spec:
  type: ClusterIP
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: ${whoamiPort}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abcde
  namespace: app
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: ${whoamiPort}}]
endpoints: [{addresses: ["${WHOAMI}"], conditions: {ready: true}, nodeName: node-1}]
`;
}

const endpointKey = (e: Endpoint) => `${e.host}:${e.port}`;

export interface RunningChain {
  entry: Endpoint;
  /** The PROXY version the running LB sends. */
  lbSends: 'v1' | 'v2' | null;
  close(): Promise<void>;
}

/** The LB (and NodePort hops) `keepip up` would run for the topology, in front of the one gateway. */
export async function startChain(topology: Topology, gatewayPort: number): Promise<RunningChain> {
  const actual = new Map<string, Endpoint>([[`${GW}:80`, { host: GW, port: gatewayPort }]]);
  const running: RunningL4[] = [];
  const close = async () => {
    for (const r of running.reverse()) await r.close();
  };
  let entry: Endpoint | null = null;
  let lbSends: RunningChain['lbSends'] = null;
  try {
    for (const component of planUp(topology).components) {
      if (component.kind !== 'node-port' && component.kind !== 'load-balancer') continue;
      const l4: L4Component = component; // as `keepip up` runs it, on the port the system picks
      const targets = l4.targets.map((t) => actual.get(endpointKey(t)) ?? t);
      const started = await startL4(l4, { port: 0, targets, log: () => {} });
      running.push(started);
      const listen = { host: l4.listen.host, port: started.address.port };
      actual.set(endpointKey(l4.listen), listen);
      if (l4.kind === 'load-balancer') {
        entry = listen;
        lbSends = l4.model?.proxyProtocol ?? l4.proxyProtocol;
      }
    }
  } catch (error) {
    await close();
    throw error;
  }
  assert.ok(entry !== null, 'the plan has a load balancer');
  return { entry, lbSends, close };
}

/** Fails with the first problems of a kind, naming the seed (`<ENV_VAR>=<seed>`) that replays them. */
export function assertNone(problems: readonly string[], what: string, seed: string): void {
  assert.equal(
    problems.length,
    0,
    `${problems.length} ${what} (${seed}):\n${problems.slice(0, 8).join('\n')}`,
  );
}
