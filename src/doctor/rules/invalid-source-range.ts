// INVALID_SOURCE_RANGE: an allow, deny or block list with a bad entry is rejected whole and the location
// fails closed: 503 for everyone (G9). The fix keeps the valid entries.
import type { ConfigIssue, LocationModel, SourceRangeModel, Topology } from '../../config/model.ts';
import { parseSourceRange } from '../../k8s/source-range.ts';
import { annotate, patchConfigMap, patchService } from '../fix.ts';
import type { Finding } from '../types.ts';
import type { Rule } from './types.ts';

const PREFIX = 'nginx.ingress.kubernetes.io/';

function splitEntries(raw: string): { valid: string[]; invalid: string[] } {
  const valid: string[] = [];
  const invalid: string[] = [];
  for (const entry of raw.split(',')) {
    const trimmed = entry.trim();
    const parsed = trimmed === '' ? null : parseSourceRange(trimmed);
    if (parsed?.ok) valid.push(trimmed);
    else invalid.push(JSON.stringify(entry));
  }
  return { valid, invalid };
}

/** The annotation the manifest reader blamed, else the one that wins (allowlist over whitelist). */
function annotationName(
  issues: readonly ConfigIssue[],
  location: LocationModel,
  which: 'allow' | 'deny',
): string {
  const issue = issues.find(
    (i) =>
      i.code === 'INVALID_SOURCE_RANGE' &&
      i.origin?.kind === 'Ingress' &&
      i.origin.namespace === location.ingress.namespace &&
      i.origin.name === location.ingress.name &&
      (i.field ?? '').includes(which === 'allow' ? 'list-source-range' : 'denylist'),
  );
  const named = issue?.field ? /nginx\.ingress\.kubernetes\.io\/([a-z-]+)/.exec(issue.field)?.[1] : undefined;
  if (named && (which === 'deny') === named.startsWith('deny')) return `${PREFIX}${named}`;
  return `${PREFIX}${which === 'allow' ? 'allowlist-source-range' : 'denylist-source-range'}`;
}

function explain(
  range: Extract<SourceRangeModel, { valid: false }>,
  where: string,
): { text: string; valid: string[] } {
  const { valid, invalid } = splitEntries(range.raw);
  const bad =
    invalid.length > 0 ? `bad entr${invalid.length === 1 ? 'y' : 'ies'} ${invalid.join(', ')}` : range.error;
  return {
    text: `${where} is ${JSON.stringify(range.raw)}: ${bad}. ingress-nginx rejects the whole value and the location fails closed, so everyone gets 503, listed clients included (G9). ${range.error}`,
    valid,
  };
}

export const rule: Rule = {
  id: 'INVALID_SOURCE_RANGE',
  severity: 'error',
  check(topology, context) {
    const findings: Finding[] = [];
    const seen = new Set<string>();
    for (const vhost of topology.gateway.virtualHosts) {
      for (const location of vhost.locations) {
        for (const which of ['allow', 'deny'] as const) {
          const range = location[which];
          if (range === null || range.valid || range.from !== 'annotation') continue;
          const name = annotationName(topology.issues, location, which);
          const key = `${location.ingress.namespace}/${location.ingress.name} ${name}`;
          if (seen.has(key)) continue;
          seen.add(key);
          const { text, valid } = explain(
            range,
            `The ${name.slice(PREFIX.length)} annotation of Ingress ${location.ingress.namespace}/${location.ingress.name}`,
          );
          findings.push({
            id: 'INVALID_SOURCE_RANGE',
            severity: 'error',
            hops: ['policy'],
            message: text,
            fix:
              valid.length > 0
                ? {
                    summary: `Keep only the valid entries: ${valid.join(',')} (add back the intended ones, corrected).`,
                    patches: [annotate('Ingress', location.ingress, { [name]: valid.join(',') })],
                  }
                : null,
            subject: { kind: 'Ingress', ...location.ingress },
            origin: location.ingressOrigin,
          });
        }
      }
    }
    const settings = topology.gateway.settings;
    const keys = [
      ['whitelist-source-range', settings.defaultAllow],
      ['denylist-source-range', settings.defaultDeny],
      ['block-cidrs', settings.blockCidrs],
    ] as const;
    for (const [key, range] of keys) {
      if (range === null || range.valid) continue;
      const { text, valid } = explain(range, `ConfigMap key ${key}`);
      findings.push({
        id: 'INVALID_SOURCE_RANGE',
        severity: 'error',
        hops: ['policy'],
        message: `${text} It applies to every location it covers.`,
        fix:
          valid.length > 0
            ? {
                summary: `Keep only the valid entries: ${valid.join(',')}.`,
                patches: [patchConfigMap(context.configMap, { [key]: valid.join(',') })],
              }
            : null,
        subject: { kind: 'ConfigMap', ...context.configMap },
      });
    }
    findings.push(...loadBalancerFindings(topology));
    return findings;
  },
};

const LB_ANNOTATION = 'service.beta.kubernetes.io/load-balancer-source-ranges';

/** An LB whose source ranges have an entry that is not a CIDR is never set up: nobody reaches it. */
function loadBalancerFindings(topology: Topology): Finding[] {
  return topology.loadBalancers.flatMap((lb) => {
    const invalid = lb.invalidSourceRanges ?? [];
    if (invalid.length === 0) return [];
    // The issue names the field the entry came from: the spec, or the older annotation.
    const fromAnnotation = topology.issues.some(
      (i) =>
        i.code === 'INVALID_LB_SOURCE_RANGE' &&
        i.origin?.kind === 'Service' &&
        i.origin.namespace === lb.service.namespace &&
        i.origin.name === lb.service.name &&
        (i.field ?? '').includes(LB_ANNOTATION),
    );
    const where = fromAnnotation ? `annotation ${LB_ANNOTATION}` : 'spec.loadBalancerSourceRanges';
    const valid = lb.loadBalancerSourceRanges;
    const patch = fromAnnotation
      ? annotate('Service', lb.service, { [LB_ANNOTATION]: valid.join(',') })
      : patchService(lb.service, { loadBalancerSourceRanges: valid });
    return [
      {
        id: 'INVALID_SOURCE_RANGE',
        severity: 'error',
        hops: ['load-balancer'],
        message: `The ${where} of Service ${lb.id} has ${invalid.map((e) => JSON.stringify(e)).join(', ')}, not a CIDR. The API server refuses such a spec, a cloud controller cannot create the load balancer from the annotation, and keepip lb and keepip up refuse to start (INVALID_LB_SOURCE_RANGE): nobody reaches this load balancer.`,
        // With no valid entry left, dropping the list would open the LB to everyone: no automatic fix.
        fix:
          valid.length > 0
            ? {
                summary: `Keep only the valid entries: ${valid.join(',')} (add back the intended ones, corrected).`,
                patches: [patch],
              }
            : null,
        subject: { kind: 'Service', ...lb.service },
        origin: lb.origin,
      } satisfies Finding,
    ];
  });
}
