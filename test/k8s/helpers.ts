// Builds a Topology from inline YAML, the way `keepip -f` would from a file.
import type { ConfigIssue, GatewaySettings, Topology } from '../../src/config/model.ts';
import { parseControllerConfigMap } from '../../src/k8s/annotations.ts';
import { parseManifestText } from '../../src/k8s/load.ts';
import { buildTopology, type TopologyOptions } from '../../src/k8s/translate.ts';

export function topologyOf(yaml: string, options: TopologyOptions = {}): Topology {
  const loaded = parseManifestText(yaml, 'test.yaml');
  if (loaded.issues.length > 0)
    throw new Error(`fixture does not load: ${loaded.issues.map((i) => i.message).join('; ')}`);
  return buildTopology(loaded.objects, options);
}

/** The controller ConfigMap `data` read into gateway settings, with the issues it raised. */
export function configMapSettings(data: Record<string, string>): {
  s: GatewaySettings;
  issues: ConfigIssue[];
} {
  const issues: ConfigIssue[] = [];
  return {
    s: parseControllerConfigMap(data, { namespace: 'ingress-nginx', name: 'c' }, null, issues),
    issues,
  };
}

export function codes(issues: readonly ConfigIssue[], severity?: ConfigIssue['severity']): string[] {
  return issues.filter((i) => severity === undefined || i.severity === severity).map((i) => i.code);
}

export function find(issues: readonly ConfigIssue[], code: string): ConfigIssue {
  const found = issues.find((i) => i.code === code);
  if (!found) throw new Error(`no ${code} issue among: ${issues.map((i) => i.code).join(', ') || 'none'}`);
  return found;
}

export interface IngressSpec {
  name: string;
  namespace?: string;
  created?: string;
  className?: string | null;
  annotations?: Record<string, string>;
  host?: string;
  paths?: { path: string; pathType?: string; service?: string; port?: number | string }[];
  tls?: { hosts: string[]; secretName: string }[];
}

/** An Ingress as YAML; nginx class, one rule, backend svc:80 unless told otherwise. */
export function ingress(spec: IngressSpec): string {
  const lines = [
    'apiVersion: networking.k8s.io/v1',
    'kind: Ingress',
    'metadata:',
    `  name: ${spec.name}`,
    `  namespace: ${spec.namespace ?? 'default'}`,
  ];
  if (spec.created) lines.push(`  creationTimestamp: "${spec.created}"`);
  if (spec.annotations) {
    lines.push('  annotations:');
    for (const [k, v] of Object.entries(spec.annotations)) lines.push(`    ${k}: ${JSON.stringify(v)}`);
  }
  lines.push('spec:');
  if (spec.className !== null) lines.push(`  ingressClassName: ${spec.className ?? 'nginx'}`);
  if (spec.tls) {
    lines.push('  tls:');
    for (const t of spec.tls)
      lines.push(`    - hosts: ${JSON.stringify(t.hosts)}`, `      secretName: ${t.secretName}`);
  }
  lines.push(
    '  rules:',
    `    - host: ${JSON.stringify(spec.host ?? 'example.com')}`,
    '      http:',
    '        paths:',
  );
  for (const p of spec.paths ?? [{ path: '/' }]) {
    const port = p.port ?? 80;
    lines.push(
      `          - path: ${JSON.stringify(p.path)}`,
      `            pathType: ${p.pathType ?? 'Prefix'}`,
      '            backend:',
      '              service:',
      `                name: ${p.service ?? 'svc'}`,
      '                port:',
      typeof port === 'number' ? `                  number: ${port}` : `                  name: ${port}`,
    );
  }
  return `${lines.join('\n')}\n---\n`;
}

export function service(name: string, namespace = 'default', ports = '[{name: http, port: 80}]'): string {
  return `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n  ports: ${ports}\n---\n`;
}

export function configMap(
  data: Record<string, string>,
  ref = 'ingress-nginx/ingress-nginx-controller',
): string {
  const [ns, name] = ref.split('/');
  const body = Object.entries(data)
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`)
    .join('\n');
  return `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: ${ns}}\ndata:\n${body || '  {}'}\n---\n`;
}
