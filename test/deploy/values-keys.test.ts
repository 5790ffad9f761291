// The table of chart values (src/deploy/values-keys.ts) against the chart's defaults and docs/deploy.md:
// every default value is governed by a row, every row is a chart value, and the documentation's table is
// the generated one. Regenerate it: KEEPIP_WRITE_DEPLOY_DOC=1 node --test test/deploy/values-keys.test.ts
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chartDefaults, type Values } from '../../src/deploy/chart-defaults.ts';
import { keyInfo, VALUES_KEYS } from '../../src/deploy/values-keys.ts';
import { checkValueKeys, isMap } from '../../src/deploy/values.ts';
import { repoRoot } from '../helpers/process.ts';

const DOC = join(repoRoot, 'docs/deploy.md');
const BEGIN =
  '<!-- values-keys: generated from src/deploy/values-keys.ts by test/deploy/values-keys.test.ts -->';
const END = '<!-- /values-keys -->';

/** Values the chart's templates read that its values.yaml leaves unset (commented out). */
const UNSET_IN_DEFAULTS = new Set([
  'nameOverride',
  'fullnameOverride',
  'controller.image.registry',
  'controller.image.repository',
  'controller.startupProbe',
  'controller.maxUnavailable',
  'controller.service.allocateLoadBalancerNodePorts',
  'controller.service.healthCheckNodePort',
  'controller.service.internal.allocateLoadBalancerNodePorts',
  'controller.service.internal.healthCheckNodePort',
  'controller.admissionWebhooks.timeoutSeconds',
  'controller.metrics.prometheusRule.namespace',
  'controller.admissionWebhooks.service.clusterIP',
  'controller.admissionWebhooks.service.loadBalancerIP',
  'controller.admissionWebhooks.certManager.issuerRef',
  'controller.metrics.service.clusterIP',
  'controller.metrics.service.loadBalancerIP',
  'controller.metrics.service.externalTrafficPolicy',
  'controller.metrics.service.nodePort',
  'controller.metrics.serviceMonitor.honorLabels',
  'controller.metrics.serviceMonitor.jobLabel',
]);

/** Dotted paths of the defaults down to the rows that govern them; paths no row governs. */
function ungoverned(node: Values, path: string[] = []): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(node)) {
    const here = [...path, key];
    if (keyInfo(here.join('.')) !== undefined) continue;
    if (isMap(value) && Object.keys(value).length > 0) out.push(...ungoverned(value, here));
    else out.push(here.join('.'));
  }
  return out;
}

function inDefaults(path: string): boolean {
  let node: unknown = chartDefaults();
  for (const part of path.split('.')) {
    if (!isMap(node) || !(part in node)) return false;
    node = node[part];
  }
  return true;
}

function renderKeysTable(): string {
  const lines = [BEGIN, '', '| values key | keepip | what keepip does with it |', '|---|---|---|'];
  for (const [key, info] of Object.entries(VALUES_KEYS)) {
    const status = info.status === 'rendered' ? 'rendered' : '**ignored** (warning)';
    const map = info.map ? ' (and everything under it)' : '';
    lines.push(`| \`${key}\` | ${status} | ${info.note.replaceAll('|', '\\|')}${map} |`);
  }
  lines.push('', END);
  return lines.join('\n');
}

describe('the table of chart values', () => {
  it("governs every value of the chart's defaults", () => {
    assert.deepEqual(ungoverned(chartDefaults()), []);
  });

  it('lists only chart values: in the defaults, or read by the templates while unset', () => {
    const stray = Object.keys(VALUES_KEYS).filter((key) => !inDefaults(key) && !UNSET_IN_DEFAULTS.has(key));
    assert.deepEqual(stray, []);
    for (const key of UNSET_IN_DEFAULTS) assert.ok(VALUES_KEYS[key], `${key} has no row`);
  });

  it("warns about nothing in the chart's own defaults, and about a changed ignored value", () => {
    assert.deepEqual(checkValueKeys(chartDefaults()), []);
    assert.deepEqual(
      checkValueKeys({
        controller: {
          keda: { enabled: true },
          lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
        },
      }).map((p) => p.key),
      ['controller.keda', 'controller.lifecycle'],
    );
    assert.deepEqual(
      checkValueKeys({ controller: { keda: { enabled: false } } }),
      [],
      'keda off as by default',
    );
  });

  it('docs/deploy.md shows the generated table', () => {
    const doc = readFileSync(DOC, 'utf8');
    const start = doc.indexOf(BEGIN);
    const end = doc.indexOf(END);
    assert.ok(start >= 0 && end > start, `docs/deploy.md has no ${BEGIN} … ${END} section`);
    const expected = `${doc.slice(0, start)}${renderKeysTable()}${doc.slice(end + END.length)}`;
    if (process.env.KEEPIP_WRITE_DEPLOY_DOC === '1') writeFileSync(DOC, expected);
    assert.equal(
      readFileSync(DOC, 'utf8'),
      expected,
      'stale: KEEPIP_WRITE_DEPLOY_DOC=1 node --test test/deploy/values-keys.test.ts',
    );
  });
});
