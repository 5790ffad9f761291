// The webhook and use-regex paths: a path the gateway cannot compile (it would answer 503) is refused
// as ingress-nginx's `nginx -t` refuses it, and a path with a nested unbounded quantifier, on which
// JavaScript's backtracking engine can spend minutes per request (nginx's PCRE stops at its match
// limit; V8 has none), is refused with ADMISSION_REGEX_BACKTRACKS. Pure.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { verdictFor } from '../../src/controller/admission.ts';
import { nestedQuantifier } from '../../src/config/regex-backtracking.ts';
import type { KubeObject } from '../../src/controller/resources.ts';
import { EMPTY_CLUSTER, DEFAULT_SNAPSHOT_OPTIONS as options } from './harness.ts';

const cluster = EMPTY_CLUSTER;

function regexIngress(name: string, path: string, useRegex = true): KubeObject {
  const annotations: Record<string, string> = useRegex
    ? { 'nginx.ingress.kubernetes.io/use-regex': 'true' }
    : {};
  return {
    metadata: {
      namespace: 'default',
      name,
      annotations,
    },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host: 'regex.example.com',
          http: {
            paths: [
              {
                path,
                pathType: 'ImplementationSpecific',
                backend: { service: { name: 'web', port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  };
}

describe('admission of use-regex paths', () => {
  it('refuses a path the gateway cannot compile (it would answer 503 to everyone)', () => {
    const verdict = verdictFor(regexIngress('broken', '/api/(v1'), cluster, options);
    assert.equal(verdict.allowed, false);
    assert.match(
      verdict.message,
      /^error ROUTE_INVALID_REGEX: cluster \(Ingress default\/broken\) spec\.rules\[\]\.http\.paths\[\]\.path: path "\/api\/\(v1" is not a valid regular expression/,
    );
  });

  it('refuses a nested unbounded quantifier, naming the group', () => {
    for (const path of ['/api/(a+)+$', '/(.*)*', '/x/(\\w+\\s?)*$', '/((ab)*c)+']) {
      const verdict = verdictFor(regexIngress('redos', path), cluster, options);
      assert.equal(verdict.allowed, false, path);
      assert.match(
        verdict.message,
        /^error ROUTE_REGEX_BACKTRACKS: cluster \(Ingress default\/redos\) spec\.rules\[\]\.http\.paths\[\]\.path: path ".*" repeats ".*", a group that itself repeats without bound/,
        path,
      );
    }
  });

  it('allows the regex paths ingress-nginx documents, and paths that are not regexes', () => {
    for (const path of [
      '/api(/|$)(.*)',
      '/foo/(.+)',
      '/(v1|v2)/(.*)',
      '/docs/[a-z]+/?',
      '/x{2,}',
      '/(a+)?b',
    ]) {
      const verdict = verdictFor(regexIngress('fine', path), cluster, options);
      assert.equal(verdict.allowed, true, path);
      assert.equal(verdict.message, '', path);
    }
    assert.equal(verdictFor(regexIngress('plain', '/a', false), cluster, options).allowed, true);
  });
});

describe('admission of the regexes annotations match against what clients send', () => {
  const withAnnotations = (annotations: Record<string, string>): KubeObject => {
    const base = regexIngress('ann', '/', false);
    return { ...base, metadata: { ...base.metadata, annotations } };
  };
  const P = 'nginx.ingress.kubernetes.io/';

  it('refuses a nested repeat in server-alias (Host), canary-by-header-pattern and auth-tls-match-cn', () => {
    const cases: [Record<string, string>, string][] = [
      [{ [`${P}server-alias`]: 'www.example.com, ~^(a+)+\\.example\\.com$' }, 'server-alias'],
      [
        { [`${P}canary`]: 'true', [`${P}canary-by-header`]: 'x', [`${P}canary-by-header-pattern`]: '(a+)+$' },
        'canary-by-header-pattern',
      ],
      [{ [`${P}auth-tls-match-cn`]: 'CN=(.*)*$' }, 'auth-tls-match-cn'],
    ];
    for (const [annotations, name] of cases) {
      const verdict = verdictFor(withAnnotations(annotations), cluster, options);
      assert.equal(verdict.allowed, false, name);
      assert.match(
        verdict.message,
        new RegExp(
          `error ADMISSION_REGEX_BACKTRACKS: cluster \\(Ingress default/ann\\) metadata\\.annotations\\["nginx\\.ingress\\.kubernetes\\.io/${name}"\\]`,
        ),
        name,
      );
    }
  });

  it('reads them under --annotations-prefix, and allows plain regexes', () => {
    const custom = { ...options, annotationsPrefix: 'custom.example.com' };
    const alias = (key: string) => withAnnotations({ [key]: '~^(a+)+$' });
    assert.equal(verdictFor(alias('custom.example.com/server-alias'), cluster, custom).allowed, false);
    // Not this prefix: not read (refused as such, as ingress-nginx does, not for its regex).
    assert.match(
      verdictFor(alias(`${P}server-alias`), cluster, custom).message,
      /^error ADMISSION_ANNOTATION_PREFIX: [^\n]*$/,
    );
    const plain = withAnnotations({
      [`${P}server-alias`]: '~^api[0-9]+\\.example\\.com$',
      [`${P}auth-tls-match-cn`]: 'CN=(client|admin)$',
    });
    assert.equal(verdictFor(plain, cluster, options).message, '');
  });
});

describe('nestedQuantifier', () => {
  it('finds a repeated group that itself repeats something unboundedly', () => {
    assert.equal(nestedQuantifier('^/(a+)+$'), '(a+)+');
    assert.equal(nestedQuantifier('(?<x>[a-z]*)*'), '(?<x>[a-z]*)*');
    assert.equal(nestedQuantifier('((a{2,})x){1,9}'), '((a{2,})x){1,9}');
    assert.equal(nestedQuantifier('(?:(?:a)+)+'), '(?:(?:a)+)+');
  });

  it('is not fooled by escapes, classes, bounded repeats or lazy quantifiers', () => {
    for (const source of [
      '\\(a+\\)+',
      '[(a+)]+',
      '(a{2})+',
      '(a?)+',
      '(a+?)?',
      '(a|b)*',
      '(ab)+c*',
      '(a+){1}',
      '(a+)\\+',
      '(a+){x}',
      '[\\]a+]+',
    ]) {
      assert.equal(nestedQuantifier(source), null, source);
    }
  });
});
