// The webhook and overlapping paths (ingress-nginx test/e2e/admission/admission.go, checkOverlap): an
// Ingress whose host and path another served Ingress already defines is refused, in any of its
// rules, unless it is a canary (a canary adds no location of its own). The older Ingress keeps the
// path, so without the refusal the new one's path would silently not be served; the candidate is
// checked as the newest (ingress-nginx's CheckIngress appends it), so an update of an older Ingress
// cannot take a path either. Paths compare as nginx locations (a Prefix /admin is /admin/). Pure.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { verdictFor } from '../../src/controller/admission.ts';
import type { KubeObject } from '../../src/controller/resources.ts';
import { EMPTY_CLUSTER, DEFAULT_SNAPSHOT_OPTIONS as options } from './harness.ts';

function ingress(
  name: string,
  paths: string[],
  created: string,
  annotations: Record<string, string> = {},
  pathType = 'Prefix',
  service = 'echo',
): KubeObject {
  return {
    metadata: { namespace: 'admission', name, annotations, creationTimestamp: created },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host: 'admission-test',
          http: {
            paths: paths.map((path) => ({
              path,
              pathType,
              backend: { service: { name: service, port: { number: 80 } } },
            })),
          },
        },
      ],
    },
  };
}

const FIRST = '2026-01-01T00:00:00Z';
const LATER = '2026-01-02T00:00:00Z';

describe('admission of overlapping host and paths', () => {
  it('refuses a second Ingress with the same host and path, naming the Ingress that has it', () => {
    const cluster = { ...EMPTY_CLUSTER, ingresses: [ingress('first-ingress', ['/'], FIRST)] };
    for (const created of [LATER, undefined]) {
      const second = ingress('second-ingress', ['/'], LATER);
      if (created === undefined) delete (second.metadata as Record<string, unknown>).creationTimestamp;
      const verdict = verdictFor(second, cluster, options);
      assert.equal(verdict.allowed, false);
      assert.match(
        verdict.message,
        /^error ADMISSION_PATH_OVERLAP: cluster \(Ingress admission\/second-ingress\) spec\.rules\[0\]\.http\.paths\[0\]: host "admission-test" and path "\/" \(Prefix\) is already defined in Ingress admission\/first-ingress/,
      );
    }
  });

  it('refuses an overlap in any rule, and names only the conflicting path', () => {
    const cluster = {
      ...EMPTY_CLUSTER,
      ingresses: [ingress('first-ingress', ['/safe-path-1', '/conflict-path'], FIRST)],
    };
    const verdict = verdictFor(
      ingress('second-ingress', ['/safe-path-2', '/conflict-path'], LATER),
      cluster,
      options,
    );
    assert.equal(verdict.allowed, false);
    assert.equal(verdict.message.split('\n').length, 1);
    assert.match(verdict.message, /paths\[1\]: host "admission-test" and path "\/conflict-path"/);
  });

  it('allows a canary on the same host and path, the Ingress itself (an update), and other paths', () => {
    const first = ingress('first-ingress', ['/'], FIRST);
    const cluster = { ...EMPTY_CLUSTER, ingresses: [first] };
    const canary = ingress(
      'second-ingress',
      ['/'],
      LATER,
      {
        'nginx.ingress.kubernetes.io/canary': 'true',
        'nginx.ingress.kubernetes.io/canary-by-header': 'CanaryByHeader',
      },
      'Prefix',
      'slow-echo',
    );
    assert.equal(verdictFor(canary, cluster, options).allowed, true);
    assert.equal(verdictFor(first, cluster, options).allowed, true);
    assert.equal(verdictFor(ingress('other', ['/other'], LATER), cluster, options).allowed, true);
  });

  it('compares nginx location paths, as ingress-nginx after updateServerLocations: the pathType is not compared', () => {
    const cluster = {
      ...EMPTY_CLUSTER,
      ingresses: [ingress('first-ingress', ['/'], FIRST), ingress('admin', ['/admin'], FIRST)],
    };
    const allowed = (paths: string[], pathType: string) =>
      verdictFor(ingress('second-ingress', paths, LATER, {}, pathType), cluster, options).allowed;
    // An Exact `/` is the location `/` the Prefix `/` already is.
    assert.equal(allowed(['/'], 'Exact'), false);
    // Prefix /admin is `location /admin/` and its exact twin `= /admin`.
    assert.equal(allowed(['/admin/'], 'Prefix'), false);
    assert.equal(allowed(['/admin'], 'ImplementationSpecific'), false);
    // An Exact /admin takes the twin's place: ingress-nginx writes no `= /admin` for the Prefix then.
    assert.equal(allowed(['/admin'], 'Exact'), true);
    assert.equal(allowed(['/admin/x'], 'Prefix'), true);
  });

  it("refuses an Ingress whose update would take another's path by its age: the candidate merges last, as ingress-nginx", () => {
    const cluster = { ...EMPTY_CLUSTER, ingresses: [ingress('newer', ['/'], LATER)] };
    const verdict = verdictFor(ingress('older', ['/'], FIRST), cluster, options);
    assert.equal(verdict.allowed, false);
    assert.match(verdict.message, /already defined in Ingress admission\/newer/);
  });
});
