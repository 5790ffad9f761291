// INVALID_SOURCE_RANGE: an allow, deny or block list with a bad entry is rejected whole and the location
// fails closed: 503 for everyone (G9). The fix keeps the valid entries.
import type { ConfigIssue, LocationModel, SourceRangeModel } from '../../config/model.ts';
import { parseSourceRange } from '../../k8s/source-range.ts';
import { annotate, patchConfigMap } from '../fix.ts';
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
    return findings;
  },
};
