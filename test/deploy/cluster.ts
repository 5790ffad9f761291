// What the API server checks beyond the OpenAPI schemas (schema.ts), and what the objects of one install
// must agree on, for a set of rendered objects: names, label keys and values (metadata, selectors,
// affinity), a workload's selector matching its pod template, Service and ServiceMonitor selectors
// reaching the pods and Services they mean, container port names (IANA service names), Service ports
// distinct by name and by port and protocol, every named targetPort (of the same protocol), volume and
// RBAC reference resolving, and the controller's arguments parsing as
// `keepip controller` parses them at start-up.
import { parseControllerFlags } from '../../src/controller/flags.ts';
import type { K8sObject } from '../../src/deploy/context.ts';

// biome-ignore lint/suspicious/noExplicitAny: rendered objects are read as plain JSON
type Json = any;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

function qualifiedNameProblem(key: string): string | null {
  const slash = key.lastIndexOf('/');
  const prefix = slash === -1 ? '' : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (slash !== -1 && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return `bad prefix in key ${key}`;
  if (name.length > 63 || !LABEL_NAME.test(name)) return `bad key ${JSON.stringify(key)}`;
  return null;
}

function labelValueProblem(value: unknown): string | null {
  if (typeof value !== 'string') return `label value ${JSON.stringify(value)} is not a string`;
  if (value === '') return null;
  return value.length <= 63 && LABEL_NAME.test(value) ? null : `bad label value ${JSON.stringify(value)}`;
}

function labelMapProblems(where: string, map: unknown): string[] {
  if (map === undefined) return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(map as Record<string, unknown>)) {
    const p = qualifiedNameProblem(key) ?? labelValueProblem(value);
    if (p !== null) out.push(`${where}: ${p}`);
  }
  return out;
}

/** Every matchLabels and matchExpressions anywhere in an object (selectors, affinity, spread). */
function selectorProblems(where: string, node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap((n, i) => selectorProblems(`${where}[${i}]`, n));
  if (typeof node !== 'object' || node === null) return [];
  const out: string[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'matchLabels') out.push(...labelMapProblems(`${where}.matchLabels`, value));
    else if (key === 'matchExpressions') {
      for (const e of value as Json[]) {
        const p = qualifiedNameProblem(e.key);
        if (p !== null) out.push(`${where}.matchExpressions: ${p}`);
        if (e.operator === 'In' || e.operator === 'NotIn')
          for (const v of e.values ?? []) {
            const q = labelValueProblem(v);
            if (q !== null) out.push(`${where}.matchExpressions: ${q}`);
          }
      }
    } else out.push(...selectorProblems(`${where}.${key}`, value));
  }
  return out;
}

const selects = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

function metadataProblems(o: K8sObject): string[] {
  const where = `${o.kind} ${o.metadata.name}`;
  const out: string[] = [];
  const name = o.metadata.name;
  const nameOk = o.kind === 'Service' ? DNS_LABEL.test(name) && name.length <= 63 : DNS_SUBDOMAIN.test(name);
  if (!nameOk) out.push(`${where}: invalid name`);
  out.push(...labelMapProblems(`${where} labels`, o.metadata.labels));
  for (const key of Object.keys((o.metadata.annotations as object | undefined) ?? {})) {
    const p = qualifiedNameProblem(key);
    if (p !== null) out.push(`${where} annotations: ${p}`);
  }
  return out;
}

function podProblems(o: K8sObject): string[] {
  const where = `${o.kind} ${o.metadata.name}`;
  const spec = o.spec as Json;
  const template = spec.template;
  const out = labelMapProblems(`${where} pod labels`, template.metadata.labels);
  if (!selects(spec.selector.matchLabels, template.metadata.labels))
    out.push(`${where}: selector does not match template labels`);
  out.push(...selectorProblems(`${where} pod spec`, template.spec));
  const volumes = new Set((template.spec.volumes ?? []).map((v: Json) => v.name));
  for (const c of [...template.spec.containers, ...(template.spec.initContainers ?? [])]) {
    const names = new Set<string>();
    for (const p of c.ports ?? []) {
      if (p.name === undefined) continue;
      if (p.name.length > 15 || !IANA_SVC_NAME.test(p.name) || !/[a-z]/.test(p.name) || p.name.includes('--'))
        out.push(`${where} ${c.name}: port name ${p.name} is not an IANA service name`);
      if (names.has(p.name)) out.push(`${where} ${c.name}: port name ${p.name} twice`);
      names.add(p.name);
    }
    for (const m of c.volumeMounts ?? [])
      if (!volumes.has(m.name)) out.push(`${where} ${c.name}: no volume ${m.name}`);
  }
  return out;
}

function controllerArgsProblems(o: K8sObject, objects: readonly K8sObject[]): string[] {
  const c = (o.spec as Json).template.spec.containers[0];
  // The downward API's values as the kubelet gives them to this pod.
  const field: Record<string, string> = {
    'metadata.namespace': o.metadata.namespace ?? '',
    'metadata.name': 'pod-0',
  };
  const env = Object.fromEntries(
    (c.env as Json[]).map((e) => [e.name, e.value ?? field[e.valueFrom?.fieldRef?.fieldPath] ?? '']),
  );
  const parsed = parseControllerFlags(c.args.slice(1), env);
  if (parsed.ok === true && !parsed.options.disableLeaderElection) {
    // The Role in its namespace must let it get and update the Lease it elects with.
    const lease = objects
      .filter((r) => r.kind === 'Role' && r.metadata.namespace === o.metadata.namespace)
      .flatMap((r) => r.rules as Json[])
      .find((rule) => rule.resources.includes('leases') && rule.verbs.includes('update'));
    if (objects.some((r) => r.kind === 'Role') && !lease?.resourceNames?.includes(parsed.options.electionId))
      return [`${o.kind} ${o.metadata.name}: the Role does not name the Lease ${parsed.options.electionId}`];
  }
  return parsed.ok === true
    ? []
    : [`${o.kind} ${o.metadata.name}: keepip controller refuses its args: ${JSON.stringify(parsed)}`];
}

function serviceProblems(s: K8sObject, pods: K8sObject[]): string[] {
  const where = `Service ${s.metadata.name}`;
  const spec = s.spec as Json;
  const out = labelMapProblems(`${where} selector`, spec.selector);
  const targets = pods.filter((w) => selects(spec.selector, (w.spec as Json).template.metadata.labels));
  if (targets.length === 0) out.push(`${where}: selects no rendered pods`);
  const nodePorts = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
  const seen = new Set<string>();
  for (const p of spec.ports as Json[]) {
    const protocol = p.protocol ?? 'TCP';
    // The API server refuses a second port with the same name, or the same port and protocol.
    for (const key of [`name ${p.name}`, `port ${p.port}/${protocol}`]) {
      if (seen.has(key)) out.push(`${where}: ${key} twice`);
      seen.add(key);
    }
    if (p.nodePort !== undefined && !nodePorts) out.push(`${where}: nodePort on a ${spec.type} Service`);
    if (typeof p.targetPort !== 'string') continue;
    for (const w of targets) {
      // A named targetPort is the container port of that name and the Service port's protocol.
      const ports = (w.spec as Json).template.spec.containers.flatMap((c: Json) => c.ports ?? []);
      if (!ports.some((cp: Json) => cp.name === p.targetPort && (cp.protocol ?? 'TCP') === protocol))
        out.push(
          `${where}: targetPort ${p.targetPort} is no ${protocol} container port of ${w.metadata.name}`,
        );
    }
  }
  return out;
}

function referenceProblems(objects: readonly K8sObject[]): string[] {
  const has = (kind: string, name: string, namespace?: string) =>
    objects.some(
      (o) =>
        o.kind === kind &&
        o.metadata.name === name &&
        (namespace === undefined || o.metadata.namespace === namespace),
    );
  const out: string[] = [];
  for (const o of objects) {
    const spec = o.spec as Json;
    if (o.kind === 'Deployment' || o.kind === 'DaemonSet') {
      // The webhook's certificate comes from a rendered Secret or a cert-manager Certificate.
      const secret = spec.template.spec.volumes.find((v: Json) => v.name === 'webhook-cert')?.secret;
      const made = (x: K8sObject) =>
        (x.kind === 'Secret' && x.metadata.name === secret?.secretName) ||
        (x.kind === 'Certificate' && (x.spec as Json).secretName === secret?.secretName);
      if (secret !== undefined && !objects.some(made))
        out.push(`no Secret ${secret.secretName} for the webhook`);
    }
    if (o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') {
      const ref = o.roleRef as Json;
      if (!has(ref.kind, ref.name)) out.push(`${o.kind} ${o.metadata.name}: no ${ref.kind} ${ref.name}`);
    }
    if (o.kind === 'HorizontalPodAutoscaler' && !has(spec.scaleTargetRef.kind, spec.scaleTargetRef.name))
      out.push(`HPA ${o.metadata.name}: no ${spec.scaleTargetRef.kind} ${spec.scaleTargetRef.name}`);
    if (o.kind === 'ValidatingWebhookConfiguration') {
      for (const w of o.webhooks as Json[]) {
        const svc = w.clientConfig.service;
        const target = objects.find(
          (s) =>
            s.kind === 'Service' && s.metadata.name === svc.name && s.metadata.namespace === svc.namespace,
        );
        if (!target || !(target.spec as Json).ports.some((p: Json) => p.port === svc.port))
          out.push(`webhook ${w.name}: no Service ${svc.namespace}/${svc.name} port ${svc.port}`);
      }
    }
    if (o.kind === 'ServiceMonitor') {
      const matched = objects.filter(
        (s) =>
          s.kind === 'Service' &&
          selects(spec.selector.matchLabels, s.metadata.labels as Record<string, string>) &&
          (s.spec as Json).ports.some((p: Json) => p.name === spec.endpoints[0].port),
      );
      if (matched.length === 0)
        out.push(`ServiceMonitor ${o.metadata.name}: no Service with port ${spec.endpoints[0].port}`);
    }
  }
  return out;
}

/** Every problem a cluster would have with these objects ([] when none). */
export function clusterProblems(objects: readonly K8sObject[]): string[] {
  const pods = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'DaemonSet');
  const out = objects.flatMap(metadataProblems);
  for (const w of pods) out.push(...podProblems(w), ...controllerArgsProblems(w, objects));
  for (const s of objects.filter((o) => o.kind === 'Service')) out.push(...serviceProblems(s, pods));
  for (const o of objects.filter((x) => x.kind === 'PodDisruptionBudget'))
    if (
      !pods.some((w) =>
        selects((o.spec as Json).selector.matchLabels, (w.spec as Json).template.metadata.labels),
      )
    )
      out.push(`PodDisruptionBudget ${o.metadata.name}: selects no rendered pods`);
  out.push(...referenceProblems(objects));
  return out;
}
