// No regular expression of keepip backtracks without bound on what a tenant, a client or a backend
// writes (ReDoS). Go's RE2 runs ingress-nginx's patterns in linear time; the same text in JavaScript
// can take exponential or quadratic time, and one Ingress annotation then hangs every translation (the
// controller, its webhook, the doctor) or one header costs a worker seconds of CPU.
//
// Found here, fixed (each took seconds or more on the inputs below): cors-allow-methods and
// cors-expose-headers (`(word,?\s?)+`), ssl-ciphers (a star of stars), nginx times (`(\d+unit?\s*)+`:
// every proxy-*-timeout annotation), and quadratic trims: a Basic Authorization header's trailing blanks
// (per request), an Ingress path's trailing slashes, no-auth-locations' spaces, a CRL Secret's blocks, a
// backend's Refresh header, the dashboard's user:password@ scrub.
//
// 1. Every regex literal under src/ with more than one quantifier is checked by recheck (a maintained
//    ReDoS checker: automaton analysis, then fuzzing); ALLOWED names the few it flags whose input is the
//    operator's own or bounded, with the reason. 2. The inputs that hung the old patterns go through the
//    real readers; a hang would end at the test's timeout, so nothing here measures time.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkSync } from 'recheck';
import { SyntaxKind } from 'typescript/unstable/ast';
import { ngxParseTime, parseNginxTimeMs } from '../../src/config/duration.ts';
import { parseBasicCredentials } from '../../src/gateway/access/basic-credentials.ts';
import { withoutTrailingSlashes } from '../../src/gateway/router.ts';
import { isLocationInLocationList } from '../../src/k8s/location-list.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { tokenize } from '../helpers/import-scan.ts';

const SRC = new URL('../../src/', import.meta.url).pathname;

/** Flagged by recheck, kept: whose text it reads, and why that is safe. */
const ALLOWED: Record<string, string> = {
  'controller/kube-client.ts /\\/+$/': "the kubeconfig's server URL: the operator's own file",
  'dashboard/redact.ts /\\b[a-z][a-z0-9+.-]{0,31}:\\/\\//gi':
    'the scheme is at most 32 characters, so a character is scanned from at most 32 starts (linear; ' +
    'recheck counts the bounded repeat as polynomial); the authority after it is scanned by hand',
  'deploy/tpl.ts /(\\s*)\\{\\{(-\\s)?\\s*(.*?)\\s*(\\s-)?\\}\\}(\\s*)/gs': "keepip's own manifest templates",
};

/** Every regular expression literal of src/, as `file /pattern/flags`. */
function literals(): { key: string; source: string; flags: string }[] {
  const found: { key: string; source: string; flags: string }[] = [];
  for (const file of readdirSync(SRC, { recursive: true }) as string[]) {
    if (!file.endsWith('.ts')) continue;
    for (const token of tokenize(readFileSync(join(SRC, file), 'utf8'))) {
      if (token.kind !== SyntaxKind.RegularExpressionLiteral) continue;
      const end = token.value.lastIndexOf('/');
      found.push({
        key: `${file} ${token.value}`,
        source: token.value.slice(1, end),
        flags: token.value.slice(end + 1),
      });
    }
  }
  return found;
}

/** Backtracking needs two quantifiers that can trade characters: a pattern with one cannot blow up. */
const quantifiers = (source: string) => source.replace(/\\./g, '').match(/[+*]|\{\d+,\d*\}/g)?.length ?? 0;

describe('regular expressions against catastrophic backtracking', () => {
  test('every pattern of src/ that could backtrack is safe by recheck (or ALLOWED, with its reason)', () => {
    const all = literals();
    assert.ok(all.length > 150, `${all.length} literals found: the scan reads src/`);
    const flagged: string[] = [];
    const seenAllowed = new Set<string>();
    for (const { key, source, flags } of all) {
      if (ALLOWED[key] !== undefined) {
        seenAllowed.add(key);
        continue;
      }
      if (quantifiers(source) < 2) continue;
      const result = checkSync(source, flags, { timeout: 10_000 });
      if (result.status !== 'safe') flagged.push(`${key}: ${result.status}`);
    }
    assert.deepEqual(flagged, []);
    assert.deepEqual(
      [...seenAllowed].sort(),
      Object.keys(ALLOWED).sort(),
      'every ALLOWED pattern is still in src/',
    );
  });

  test('the inputs that hung the old patterns: each reader answers (and as before)', () => {
    // Per request: a Basic header with a long run of blanks not at its end.
    assert.equal(parseBasicCredentials(`Basic ${' \t'.repeat(100_000)}x`), null);
    assert.deepEqual(parseBasicCredentials('Basic dTpw \t '), { user: 'u', password: Buffer.from('p') });
    // Every nginx-time annotation and ConfigMap key.
    assert.equal(parseNginxTimeMs(`${'1'.repeat(5_000)}x`), null);
    assert.equal(parseNginxTimeMs('1h30m'), 5_400_000);
    assert.equal(parseNginxTimeMs('10m30s'), 630_000);
    assert.equal(parseNginxTimeMs(`${'1'.repeat(5_000)} `), null);
    assert.equal(ngxParseTime(`${'1 '.repeat(5_000)}x`, false), null);
    assert.equal(withoutTrailingSlashes(`${'/'.repeat(100_000)}x//`), `${'/'.repeat(100_000)}x`);
    assert.equal(isLocationInLocationList('/api', `${' '.repeat(100_000)}x ,/api`), true);
  });

  test('an Ingress whose CORS and TLS annotations are built to backtrack is translated, its values refused', () => {
    const word = `${'a'.repeat(5_000)}!`;
    const topology = topologyOf([
      controllerConfigMap({ 'ssl-ciphers': `${'A'.repeat(5_000)}~` }),
      ...serviceWithEndpoints({ name: 'app', ports: [8080] }),
      ingress({
        name: 'app',
        host: 'app.test',
        annotations: {
          'nginx.ingress.kubernetes.io/enable-cors': 'true',
          'nginx.ingress.kubernetes.io/cors-allow-methods': word,
          'nginx.ingress.kubernetes.io/cors-expose-headers': word,
          'nginx.ingress.kubernetes.io/proxy-read-timeout': `${'9'.repeat(5_000)}x`,
        },
        paths: [{ path: `/${'/'.repeat(50_000)}x/`, service: 'app', port: 80 }],
      }),
    ]);
    const text = topology.issues.map((i) => `${i.field ?? ''} ${i.message}`).join('\n');
    for (const key of ['cors-allow-methods', 'cors-expose-headers', 'ssl-ciphers', 'proxy-read-timeout'])
      assert.match(text, new RegExp(key), `${key} is reported`);
  });
});
