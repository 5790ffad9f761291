// A generated differential of Ingress regex paths against real nginx 1.22 (PCRE2), configured as
// ingress-nginx writes a regex location: `location ~* "^<path>"`. fast-check builds patterns from the
// PCRE constructs people write in Ingress paths (literals, `.`, classes with `]`/`^`/`-` in odd places,
// escapes, POSIX classes, anchors mid-pattern, groups, alternation, quantifiers, `(?i)`, `(?P<n>…)`),
// each with paths that probe it. One nginx holds one `server_name pN.test` per pattern; for every
// (pattern, path) nginx's 200/404 must equal keepip's compileIngressRegex(pattern, true).regex.test($uri),
// $uri being the path decoded as keepip's router decodes it (normalizePath: bytes, one char each).
// keepip refusing a pattern nginx accepts is allowed (the location fails closed) and counted; a
// pattern nginx refuses (`nginx -t`) is skipped and counted, and listed when keepip accepts it.
// The first difference is shrunk by fast-check (one nginx per candidate). PCRE_SEED=<n>|random explores.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { normalizePath } from '../../src/gateway/request-target.ts';
import { compileIngressRegex } from '../../src/gateway/rewrite.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { rawExchange } from '../helpers/net.ts';
import { startNginx } from '../helpers/nginx.ts';
import { requireBinary } from '../helpers/process.ts';

/** How many examples each generated piece carries (each becomes a probe path). */
const K = 3;
const RUNS = 160;
const DEFAULT_SEED = 20261205;

interface Piece {
  /** PCRE source text. */
  src: string;
  /** K percent-encoded strings meant to (roughly) match it. */
  ex: string[];
}

interface Case {
  pattern: string;
  paths: string[];
}

/** Path tokens, percent-encoded as sent. */
const ALPHABET = [
  'a',
  'b',
  'x',
  'A',
  'B',
  'X',
  'P',
  'q',
  '0',
  '1',
  '9',
  '/',
  '.',
  '-',
  '_',
  ']',
  '[',
  '%0A',
  '%0D',
  '%09',
  '%20',
  '%0B',
  '%0C',
  '%C3%A9',
  '%A0',
  '%C9',
  '%E9',
  '%85',
  '%FF',
];
const token = fc.constantFrom(...ALPHABET);

/** K examples from one arbitrary. */
const exs = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: K, maxLength: K });
const piece = (src: string, arb: fc.Arbitrary<string>) => exs(arb).map((ex): Piece => ({ src, ex }));

/** Literal characters: [source, what they match (encoded)]. */
const LITERALS: readonly [string, string[]][] = [
  ['a', ['a', 'A']],
  ['x', ['x', 'X']],
  ['B', ['b', 'B']],
  ['P', ['p', 'P']],
  ['0', ['0']],
  ['9', ['9']],
  ['/', ['/']],
  ['-', ['-']],
  ['_', ['_']],
  [']', [']']],
  ['}', ['%7D']],
  ['{', ['%7B']],
  ['é', ['%C3%A9', '%C3%89', '%E9']],
  ['\\.', ['.', 'a']],
  ['\\-', ['-']],
  ['\\]', [']']],
  ['\\[', ['[']],
  ['\\/', ['/']],
  ['\\(?P<a', ['P%3Ca', '%3Ca']],
];

/** Escapes outside a class: [source, examples]. */
const ESCAPES: readonly [string, string[]][] = [
  ['\\d', ['0', '9', 'a']],
  ['\\D', ['a', '0']],
  ['\\w', ['a', '_', '-']],
  ['\\W', ['-', '%E9']],
  ['\\s', ['%20', '%0B', '%A0', '%85']],
  ['\\S', ['a', '%A0', '%20', '%85']],
  ['\\b', ['']],
  ['\\B', ['']],
  ['\\h', ['%09', '%A0', '%20']],
  ['\\v', ['%0A', '%0B', '%85', 'v']],
  ['\\x41', ['a', 'A']],
  ['\\xe9', ['%E9', '%C9']],
  ['\\xc9', ['%E9', '%C9']],
  ['\\xa0', ['%A0']],
  ['\\xff', ['%FF']],
  ['\\x4', ['%04', '4']],
  ['\\x2f', ['/']],
  ['\\A', ['']],
  ['\\z', ['', '%0A']],
  ['\\Z', ['', '%0A']],
  ['\\c1', ['q', 'Q']],
  ['\\cA', ['%01']],
  ['\\t', ['%09']],
  ['\\n', ['%0A']],
  ['\\r', ['%0D']],
  ['\\1', ['', 'a']],
  ['\\k<a>', ['', 'a']],
];

/** Class members, in any order (so `]`, `^` and `-` land in odd places). */
const CLASS_ITEMS = [
  'a',
  'b-x',
  '0-9',
  'A-Z',
  ']',
  '^',
  '-',
  '\\d',
  '\\s',
  '\\S',
  '\\w',
  '\\W',
  '\\D',
  '\\h',
  '\\v',
  '\\x41',
  '\\xe9',
  '\\xa0',
  '.',
  '[',
  '[:alpha:]',
  '[:digit:]',
  '[:space:]',
  '[:punct:]',
  '[:^digit:]',
  '[:word:]',
  '/',
  '_',
  '\\]',
  '\\-',
  '\\^',
  '\\b',
  'é',
  '(',
  '?',
  'P',
  '<',
];

const literal = fc.constantFrom(...LITERALS).chain(([src, ex]) => piece(src, fc.constantFrom(...ex)));
const escapeAtom = fc
  .constantFrom(...ESCAPES)
  .chain(([src, ex]) => piece(src, fc.oneof(fc.constantFrom(...ex), token)));
const dot = piece('.', token);
const anchor = fc.constantFrom('^', '$').chain((src) => piece(src, fc.constantFrom('', '%0A')));
const charClass = fc
  .tuple(fc.boolean(), fc.array(fc.constantFrom(...CLASS_ITEMS), { minLength: 1, maxLength: 4 }))
  .chain(([negated, items]) => piece(`[${negated ? '^' : ''}${items.join('')}]`, token));
const atom = fc.oneof(
  { weight: 4, arbitrary: literal },
  { weight: 3, arbitrary: escapeAtom },
  { weight: 2, arbitrary: dot },
  { weight: 1, arbitrary: anchor },
  { weight: 3, arbitrary: charClass },
);

const QUANTIFIERS = ['*', '+', '?', '{2}', '{1,}', '{0,2}', '{1,3}', '*?', '+?', '??', '{2,}?', '{,2}'];
const quantified = (arb: fc.Arbitrary<Piece>) =>
  fc.tuple(arb, fc.constantFrom(...QUANTIFIERS), exs(fc.integer({ min: 0, max: 3 }))).map(
    ([p, q, counts]): Piece => ({
      src: p.src + q,
      ex: p.ex.map((e, k) => e.repeat(counts[k]!)),
    }),
  );

const GROUPS = ['(', '(?:', '(?P<a>', '(?P<b>', '(?<a>', '(?=', '(?!', '(?i:', '(?-i:'];
const concat = (pieces: Piece[]): Piece => ({
  src: pieces.map((p) => p.src).join(''),
  ex: Array.from({ length: K }, (_, k) => pieces.map((p) => p.ex[k]).join('')),
});

const tree = fc.letrec<{ piece: Piece; group: Piece; seq: Piece; alt: Piece }>((tie) => ({
  piece: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'regex' },
    { weight: 5, arbitrary: atom },
    { weight: 2, arbitrary: quantified(atom) },
    { weight: 1, arbitrary: tie('group') },
    { weight: 1, arbitrary: quantified(tie('group')) },
  ),
  group: fc.tuple(fc.constantFrom(...GROUPS), tie('alt')).map(([open, inner]) => ({
    src: `${open}${inner.src})`,
    ex: inner.ex,
  })),
  seq: fc.array(tie('piece'), { minLength: 1, maxLength: 4 }).map(concat),
  alt: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'regex' },
    { weight: 3, arbitrary: tie('seq') },
    {
      weight: 1,
      arbitrary: fc.array(tie('seq'), { minLength: 2, maxLength: 3 }).map((branches) => ({
        src: branches.map((b) => b.src).join('|'),
        ex: Array.from({ length: K }, (_, k) => branches[k % branches.length]!.ex[k]!),
      })),
    },
  ),
})).alt;

/** A path from an example: a leading `/` as a request-target needs. */
const asPath = (s: string) => (s.startsWith('/') ? s : `/${s}`);

const caseArb: fc.Arbitrary<Case> = fc
  .tuple(
    fc.constantFrom('', '', '', '(?i)'),
    fc.constantFrom('/', '/', '/', ''),
    tree,
    fc.array(fc.array(token, { maxLength: 3 }), { minLength: K, maxLength: K }),
  )
  .map(([flag, slash, body, extra]) => {
    const examples = body.ex.map((e) => asPath(slash + e));
    return {
      pattern: flag + slash + body.src,
      paths: [
        ...examples,
        ...examples.map((p, k) => p + extra[k]!.join('')),
        `${examples[0]}%0A`,
        asPath(extra[0]!.join('')),
      ],
    };
  });

// ---------------------------------------------------------------------------------------------
// nginx

const TEMP_DIRS = ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];

function serverBlock(pattern: string, i: number, port: number | string): string {
  return (
    `server { listen 127.0.0.1:${port}; server_name p${i}.test; ` +
    `location ~* "^${pattern}" { return 200 "match\\n"; } location / { return 404; } }`
  );
}

/** The indices of the patterns `nginx -t` refuses (one server a line, its line named in the error). */
function nginxRefusals(patterns: readonly string[]): Set<number> {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-pcre-t-'));
  const refused = new Set<number>();
  try {
    mkdirSync(join(dir, 'temp'));
    const head = [
      'events { }',
      'http {',
      ...TEMP_DIRS.map((t) => `${t === 'body' ? 'client_body' : t}_temp_path ${join(dir, 'temp', t)};`),
    ];
    for (let attempt = 0; attempt <= patterns.length; attempt++) {
      const lines = patterns.map((p, i) => (refused.has(i) ? '' : serverBlock(p, i, 'PORT')));
      const text = [...head, ...lines, '}', ''].join('\n').replaceAll('PORT', '1');
      writeFileSync(join(dir, 'nginx.conf'), text);
      const args = ['-t', '-q', '-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')];
      try {
        execFileSync(requireBinary('nginx'), args, { stdio: 'pipe' });
        return refused;
      } catch (error) {
        const stderr = String((error as { stderr?: Buffer }).stderr ?? '');
        const line = Number(/nginx\.conf:(\d+)/.exec(stderr)?.[1]);
        const index = line - head.length - 1;
        if (!(index >= 0 && index < patterns.length) || refused.has(index))
          throw new Error(`nginx -t failed outside a generated server:\n${stderr}`);
        refused.add(index);
      }
    }
    return refused;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Verdict =
  | { kind: 'nginx-refuses'; keepipAccepts: boolean }
  | { kind: 'keepip-refuses'; code: string }
  | { kind: 'compared'; differences: string[]; unreachable: number };

async function nginxStatus(port: number, host: string, path: string): Promise<number> {
  const answer = await rawExchange({
    host: '127.0.0.1',
    port,
    payload: `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
  });
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(answer.received.toString('latin1'))?.[1]);
}

/** Each case's verdict, all accepted patterns in one nginx (server p<i>.test for case i). */
async function judge(cases: readonly Case[]): Promise<Verdict[]> {
  const refusedByNginx = nginxRefusals(cases.map((c) => c.pattern));
  const compiled = cases.map((c) => compileIngressRegex(c.pattern, true));
  const verdicts: Verdict[] = cases.map((_, i) => {
    const regex = compiled[i]!;
    if (refusedByNginx.has(i)) return { kind: 'nginx-refuses', keepipAccepts: regex.ok };
    if (!regex.ok) return { kind: 'keepip-refuses', code: regex.error.code };
    return { kind: 'compared', differences: [], unreachable: 0 };
  });
  const live = cases.flatMap((_, i) => (verdicts[i]!.kind === 'compared' ? [i] : []));
  if (live.length === 0) return verdicts;
  const ngx = await startNginx({
    freePorts: 1,
    http: (_dir, [port]) => live.map((i) => serverBlock(cases[i]!.pattern, i, port!)).join('\n'),
    waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
  });
  try {
    const probes = live.flatMap((i) => cases[i]!.paths.map((path) => [i, path] as const));
    await mapLimited(probes, 16, async ([i, path]) => {
      const verdict = verdicts[i] as Extract<Verdict, { kind: 'compared' }>;
      const uri = normalizePath(path);
      const status = await nginxStatus(ngx.ports[0]!, `p${i}.test`, path);
      if (uri === null) {
        verdict.unreachable++; // keepip answers 400 before routing; so must nginx
        if (status !== 400) verdict.differences.push(`${path}: nginx ${status}, keepip 400`);
        return;
      }
      const regex = (compiled[i] as { ok: true; regex: RegExp }).regex;
      const keepip = regex.test(uri);
      if (status !== 200 && status !== 404) verdict.differences.push(`${path}: nginx answered ${status}`);
      else if (keepip !== (status === 200))
        verdict.differences.push(`${path} ($uri ${JSON.stringify(uri)}): nginx ${status}, keepip ${keepip}`);
    });
  } finally {
    await ngx.stop();
  }
  return verdicts;
}

function seedOf(): number {
  const chosen = process.env.PCRE_SEED;
  return chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? DEFAULT_SEED);
}

/** Summary lines of a batch: counts, and the patterns nginx refuses while keepip accepts them. */
function summary(cases: readonly Case[], verdicts: readonly Verdict[]): string {
  const count = (kind: Verdict['kind']) => verdicts.filter((v) => v.kind === kind).length;
  const lenient = cases.filter((_, i) => {
    const v = verdicts[i]!;
    return v.kind === 'nginx-refuses' && v.keepipAccepts;
  });
  const strict = cases.flatMap((c, i) => {
    const v = verdicts[i]!;
    return v.kind === 'keepip-refuses' ? [`${c.pattern} (${v.code})`] : [];
  });
  return [
    `patterns ${cases.length}: compared ${count('compared')}, refused by keepip only ${count('keepip-refuses')}, refused by nginx ${count('nginx-refuses')} (keepip accepts ${lenient.length} of them)`,
    `nginx refuses, keepip accepts: ${lenient.map((c) => c.pattern).join('   ')}`,
    `keepip refuses, nginx accepts: ${strict.join('   ')}`,
  ].join('\n');
}

test('generated Ingress regex paths: keepip matches as nginx 1.22 (PCRE) does', async (t) => {
  const seed = seedOf();
  const cases = fc.sample(caseArb, { numRuns: RUNS, seed });
  const verdicts = await judge(cases);
  t.diagnostic(`seed ${seed}\n${summary(cases, verdicts)}`);
  const compared = verdicts.filter((v) => v.kind === 'compared').length;
  assert.ok(compared >= RUNS / 2, `only ${compared} of ${RUNS} patterns compared: the run is vacuous`);
  const differing = cases.flatMap((c, i) => {
    const v = verdicts[i]!;
    return v.kind === 'compared' && v.differences.length > 0 ? [{ c, d: v.differences }] : [];
  });
  if (differing.length === 0) return;
  const all = differing.map(({ c, d }) => `  ${c.pattern}\n    ${d.join('\n    ')}`).join('\n');
  // fast-check replays the same sequence with the seed: the cases that agreed in the batch pass at
  // once, the first that differed is checked alone and shrunk (one nginx per candidate).
  const agreed = new Set(
    cases.filter((c) => !differing.some((d) => d.c === c)).map((c) => JSON.stringify(c)),
  );
  const details = await shrinkFirst(seed, agreed);
  assert.fail(`seed ${seed}: ${differing.length} patterns differ\n${details}\nall:\n${all}`);
});

async function shrinkFirst(seed: number, agreed: ReadonlySet<string>): Promise<string> {
  let smallest = '';
  try {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        if (agreed.has(JSON.stringify(c))) return true;
        const [v] = await judge([c]);
        if (v?.kind !== 'compared' || v.differences.length === 0) return true;
        smallest = `${c.pattern}: ${[...new Set(v.differences)].join('; ')}`;
        return false;
      }),
      { seed, numRuns: RUNS, interruptAfterTimeLimit: 8_000 },
    );
  } catch {
    // the counterexample is in `smallest`, the last candidate that still differed
  }
  return `first difference, shrunk: ${smallest || '(not reproduced alone)'}`;
}
