// The error registry (src/errors.ts, merging each module's errors.ts table) against the sources and
// docs/errors.md: a code a module emits without registering it fails here, and so does a registered code
// nothing uses. Most codes are held by the type checker (ConfigIssue.code and the modules' own code unions
// below); the literal scan covers the codes still passed as plain strings.
// docs/errors.md is generated from the registry: KEEPIP_WRITE_ERRORS_DOC=1 node --test test/errors.test.ts
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import type { ConfigIssueCode } from '../src/config/model.ts';
import type {
  CatchAllRefusal,
  MalformedRefusal,
  OverlapRefusal,
  NotSyncedRefusal,
  PrefixRefusal,
  RegexRefusal,
  ReviewOutcome,
} from '../src/controller/admission.ts';
import type { ControllerCode } from '../src/controller/errors.ts';
import type { ApiError } from '../src/controller/reflector.ts';
import type { WebhookRefusal } from '../src/controller/servers.ts';
import type { SnapshotFailure } from '../src/controller/serving.ts';
import type { TcpServiceProblem } from '../src/controller/tcp-services.ts';
import type { applyPatches } from '../src/doctor/fix.ts';
import type { DoctorCode } from '../src/doctor/errors.ts';
import { RULES } from '../src/doctor/rules/index.ts';
import {
  describeErrorCode,
  ERROR_MODULES,
  ERROR_REGISTRY,
  type ErrorEntry,
  isErrorCode,
} from '../src/errors.ts';
import type { GatewayCode, GatewayIssueCode } from '../src/gateway/errors.ts';
import type { RequestFailure } from '../src/gateway/handler.ts';
import type { RequestParseErrorCode } from '../src/gateway/h1-request.ts';
import type { H2Code } from '../src/gateway/h2-server.ts';
import type { OcspErrorCode } from '../src/gateway/ocsp.ts';
import type { ReopenFailure } from '../src/gateway/line-sink.ts';
import type { UpstreamTlsProblem } from '../src/gateway/upstream.ts';
import type { ProxyFailureCode } from '../src/gateway/proxy.ts';
import type { RequestTargetErrorCode } from '../src/gateway/request-target.ts';
import type { RouteError } from '../src/gateway/rewrite.ts';
import type { CaptureRefusal, RouteDecision } from '../src/gateway/router.ts';
import type { SnapshotErrorCode } from '../src/gateway/snapshot.ts';
import type { K8sCode } from '../src/k8s/errors.ts';
import type { LbConfigInvalid } from '../src/lb/balancer.ts';
import type { LbConfigError } from '../src/lb/config.ts';
import type { LbCode } from '../src/lb/errors.ts';
import type { PlanProblem } from '../src/lb/manifest.ts';
import type { CidrErrorCode } from '../src/net/cidr.ts';
import type { CidrSetBuildResult } from '../src/net/cidr-set.ts';
import type { ClientCertificateCode } from '../src/gateway/access/client-cert.ts';
import type { ClientHelloErrorCode } from '../src/gateway/client-hello.ts';
import type { ClientIpErrorCode } from '../src/net/client-ip.ts';
import type { NetCode } from '../src/net/errors.ts';
import { PP_ERROR_MESSAGES, type PpErrorCode } from '../src/proxy-protocol/errors.ts';

const ROOT = join(import.meta.dirname, '..');
const SRC = join(ROOT, 'src');
const DOC = join(ROOT, 'docs', 'errors.md');
const UPPER_SNAKE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/;

// The code unions the modules declare themselves, against their module's table. A module whose codes
// all have a declared type must equal the union of those types, so a code cannot be in the table and
// not in a producer's type, or the other way round; elsewhere each declared union must be in the table.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Within<A, B> = [A] extends [B] ? true : false;
type Holds<T extends true> = T;
type FailureCode<R> = R extends { ok: false; error: { code: infer C } } ? C : never;
type RefusalCode<R> = R extends { ok: false; code: infer C } ? C : never;
type BadRequestCode = Extract<RouteDecision, { kind: 'bad-request' }>['code'];
export type ModuleUnionsMatchTheirTables = [
  Holds<Same<PpErrorCode, keyof typeof PP_ERROR_MESSAGES>>,
  Holds<Same<NetCode, CidrErrorCode | FailureCode<CidrSetBuildResult> | ClientIpErrorCode>>,
  Holds<Same<K8sCode | GatewayIssueCode, ConfigIssueCode>>,
  Holds<
    Same<
      ControllerCode,
      | ApiError['code']
      | RefusalCode<ReviewOutcome>
      | RegexRefusal['code']
      | CatchAllRefusal['code']
      | OverlapRefusal['code']
      | MalformedRefusal['code']
      | PrefixRefusal['code']
      | NotSyncedRefusal['code']
      | WebhookRefusal['code']
      | SnapshotFailure['code']
      | TcpServiceProblem['code']
    >
  >,
  Holds<
    Same<
      GatewayCode,
      | GatewayIssueCode
      | RouteError['code']
      | SnapshotErrorCode
      | ProxyFailureCode
      | RequestParseErrorCode
      | RequestTargetErrorCode
      | BadRequestCode
      | CaptureRefusal['code']
      | H2Code
      | ClientHelloErrorCode
      | ClientCertificateCode
      | RequestFailure['code']
      | OcspErrorCode
      | ReopenFailure['code']
      | UpstreamTlsProblem['code']
    >
  >,
  Holds<Same<LbCode, LbConfigError['code'] | PlanProblem['code'] | LbConfigInvalid['code']>>,
  Holds<Within<FailureCode<ReturnType<typeof applyPatches>>, DoctorCode>>,
];

/**
 * UPPER_SNAKE string literals in src/ that are not keepip codes, each with the reason. Anything else
 * of that shape must be registered, so a new literal forces a decision one way or the other.
 */
const NOT_CODES: Readonly<Record<string, string>> = {
  SSL_CIPHER: 'PROXY v2 SSL sub-TLV name (src/proxy-protocol/tlv.ts)',
  SSL_CLIENT_CERT: 'PROXY v2 SSL client flag name',
  SSL_CN: 'PROXY v2 SSL sub-TLV name',
  SSL_GROUP: 'PROXY v2 SSL sub-TLV name',
  SSL_KEY_ALG: 'PROXY v2 SSL sub-TLV name',
  SSL_SIG_ALG: 'PROXY v2 SSL sub-TLV name',
  SSL_SIG_SCHEME: 'PROXY v2 SSL sub-TLV name',
  SSL_VERSION: 'PROXY v2 SSL sub-TLV name',
  UNIQUE_ID: 'PROXY v2 TLV name',
  CERT_CHAIN_TOO_LONG:
    "OpenSSL's X509_V_ERR_ name of a client certificate's verify error (src/gateway/access/client-cert.ts)",
  CERT_UNTRUSTED: "OpenSSL's X509_V_ERR_ name",
  DEPTH_ZERO_SELF_SIGNED_CERT: "OpenSSL's X509_V_ERR_ name",
  SELF_SIGNED_CERT_IN_CHAIN: "OpenSSL's X509_V_ERR_ name",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "OpenSSL's X509_V_ERR_ name",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "OpenSSL's X509_V_ERR_ name",
  UNIX_STREAM: 'PROXY v2 transport name',
  UNIX_DGRAM: 'PROXY v2 transport name',
  AUTO_HTTP: "an ingress-nginx backend-protocol value (the client's scheme towards the backend)",
  QUOTE_DOUBLE: "the yaml package's string style option",
  ERR_HTTP_REQUEST_TIMEOUT: "Node's HTTP server error code (answered 408)",
  ERR_SSL: "prefix of Node's TLS error codes",
  HPE_HEADER_OVERFLOW: "Node's HTTP parser error code (answered 431)",
  UND_ERR_BODY_TIMEOUT: "undici's error code (mapped to UPSTREAM_READ_TIMEOUT)",
  UND_ERR_CONNECT_TIMEOUT: "undici's error code (mapped to UPSTREAM_CONNECT_TIMEOUT)",
  UND_ERR_HEADERS_TIMEOUT: "undici's error code (mapped to UPSTREAM_READ_TIMEOUT)",
  UND_ERR_SOCKET: "undici's error code (mapped to UPSTREAM_CLOSED)",
  EAI_AGAIN:
    "getaddrinfo's error code, a name member that did not resolve (mapped to UPSTREAM_CONNECT_REFUSED)",
  EAI_FAIL:
    "getaddrinfo's error code, a name member that did not resolve (mapped to UPSTREAM_CONNECT_REFUSED)",
};

type Sources = ReadonlyMap<string, string>;

function readSources(): Sources {
  const out = new Map<string, string>();
  for (const entry of readdirSync(SRC, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    // The registry and the modules' tables name every code; they are what is checked, not evidence.
    if (entry.name === 'errors.ts') continue;
    out.set(relative(ROOT, path), readFileSync(path, 'utf8'));
  }
  return out;
}

/** Every quoted UPPER_SNAKE literal ('X_Y', "X_Y", `X_Y`) and the files it appears in. */
function codeLiterals(sources: Sources): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const literal = /(['"`])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\1/g;
  for (const [file, text] of sources) {
    for (const match of text.matchAll(literal)) {
      const code = match[2]!;
      const files = found.get(code) ?? [];
      if (!files.includes(file)) files.push(file);
      found.set(code, files);
    }
  }
  return found;
}

interface Drift {
  /** Literals that look like codes but are neither registered nor declared not to be codes. */
  unregistered: string[];
  /** Registered codes no source file mentions. */
  dead: string[];
  /** NOT_CODES entries no source file mentions any more. */
  staleExclusions: string[];
}

function registryDrift(
  literals: ReadonlyMap<string, readonly string[]>,
  registry: readonly Pick<ErrorEntry, 'code'>[],
  notCodes: Readonly<Record<string, string>>,
): Drift {
  const registered = new Set(registry.map((e) => e.code));
  return {
    unregistered: [...literals.keys()].filter((c) => !registered.has(c) && !(c in notCodes)).sort(),
    dead: [...registered].filter((c) => !literals.has(c)).sort(),
    staleExclusions: Object.keys(notCodes)
      .filter((c) => !literals.has(c))
      .sort(),
  };
}

const escapeCell = (text: string): string => text.replaceAll('|', '\\|');

/** docs/errors.md, generated: one section per module, one row per code. */
function renderErrorsDoc(registry: readonly ErrorEntry[]): string {
  const lines = [
    '# Error codes',
    '',
    '<!-- Generated from src/errors.ts; test/errors.test.ts fails when this file and the registry differ.',
    '     Regenerate: KEEPIP_WRITE_ERRORS_DOC=1 node --test test/errors.test.ts -->',
    '',
    'Every stable code keepip reports, grouped by the module that reports it. Codes never change meaning;',
    'messages may add detail (which field, which file, which offset) after the fixed text. Kinds:',
    '',
    '- **error**: an error value from a parser or a check (`{ ok: false, error: { code, message } }`);',
    '  the CLI prints it and exits 1 (2 for usage errors).',
    '- **thrown**: an exception with a `code` property, for invalid input handed to a programmatic API.',
    '- **issue**: a configuration issue found while loading manifests (severity error, warning or info),',
    '  printed at start-up and reload, and by `keepip doctor` under `configIssues`.',
    '- **finding**: a `keepip doctor` finding id (see docs/doctor.md for the fix plans).',
    '- **outcome**: what happened to a request or a probe, as written to logs and probe results.',
  ];
  const modules = [...new Set(registry.map((e) => e.module))];
  for (const module of modules) {
    lines.push(
      '',
      `## ${module}: ${ERROR_MODULES[module]}`,
      '',
      '| Code | Kind | Meaning | Fix |',
      '|---|---|---|---|',
    );
    for (const e of registry.filter((x) => x.module === module)) {
      lines.push(`| \`${e.code}\` | ${e.kind} | ${escapeCell(e.summary)} | ${escapeCell(e.fix)} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The codes a markdown table lists: the first cell of each row, when it is a single code in backticks. */
function documentedCodes(markdown: string): string[] {
  const codes: string[] = [];
  for (const line of markdown.split('\n')) {
    const m = /^\| `([A-Z][A-Z0-9_]*)` \|/.exec(line);
    if (m) codes.push(m[1]!);
  }
  return codes;
}

const difference = (a: Iterable<string>, b: ReadonlySet<string>): string[] =>
  [...a].filter((x) => !b.has(x)).sort();

describe('error registry', () => {
  const sources = readSources();
  const literals = codeLiterals(sources);

  it('(a) every code literal in src/ is registered (or declared not to be a code)', () => {
    const drift = registryDrift(literals, ERROR_REGISTRY, NOT_CODES);
    const where = drift.unregistered.map((c) => `${c} (${literals.get(c)!.join(', ')})`);
    assert.deepEqual(
      where,
      [],
      'add these to the errors.ts table of the module that reports them, or to NOT_CODES here if they are not keepip codes',
    );
  });

  it('(b) every registered code appears in src/ (no dead entries)', () => {
    assert.deepEqual(registryDrift(literals, ERROR_REGISTRY, NOT_CODES).dead, []);
  });

  it('every NOT_CODES exclusion still appears in src/', () => {
    assert.deepEqual(registryDrift(literals, ERROR_REGISTRY, NOT_CODES).staleExclusions, []);
  });

  it('(c) docs/errors.md lists exactly the registry codes, and is the generated text', () => {
    const expected = renderErrorsDoc(ERROR_REGISTRY);
    if (process.env.KEEPIP_WRITE_ERRORS_DOC === '1') writeFileSync(DOC, expected);
    const doc = readFileSync(DOC, 'utf8');
    const listed = documentedCodes(doc);
    const registered = new Set(ERROR_REGISTRY.map((e) => e.code));
    assert.deepEqual(difference(registered, new Set(listed)), [], 'registered but not in docs/errors.md');
    assert.deepEqual(difference(listed, registered), [], 'in docs/errors.md but not registered');
    assert.equal(listed.length, new Set(listed).size, 'docs/errors.md lists a code twice');
    assert.equal(
      doc,
      expected,
      'docs/errors.md is stale: KEEPIP_WRITE_ERRORS_DOC=1 node --test test/errors.test.ts',
    );
  });

  it('(d) codes are unique UPPER_SNAKE, each module listed in one block, every line filled in', () => {
    const codes = ERROR_REGISTRY.map((e) => e.code);
    assert.equal(
      new Set(codes).size,
      codes.length,
      `duplicates: ${codes.filter((c, i) => codes.indexOf(c) !== i)}`,
    );
    for (const e of ERROR_REGISTRY) {
      assert.match(e.code, UPPER_SNAKE);
      assert.ok(e.summary.trim() !== '' && !e.summary.includes('\n'), `${e.code}: summary is one line`);
      assert.ok(e.fix.trim() !== '' && !e.fix.includes('\n'), `${e.code}: fix is one line`);
    }
    const order = ERROR_REGISTRY.map((e) => e.module).filter((m, i, all) => i === 0 || all[i - 1] !== m);
    assert.equal(new Set(order).size, order.length, `modules split into several blocks: ${order.join(', ')}`);
    assert.deepEqual([...new Set(order)].sort(), Object.keys(ERROR_MODULES).sort());
  });

  it("PROXY protocol codes are exactly the codec's own table, with its messages", () => {
    const pp = ERROR_REGISTRY.filter((e) => e.module === 'proxy-protocol');
    assert.deepEqual(
      pp.map((e) => e.code),
      Object.keys(PP_ERROR_MESSAGES),
    );
    for (const e of pp) assert.equal(e.summary, PP_ERROR_MESSAGES[e.code as PpErrorCode]);
  });

  it("doctor findings are the doctor's rules (INVALID_SOURCE_RANGE is registered once, as its issue)", () => {
    const rules = new Set(RULES.map((r) => r.id));
    const findings = ERROR_REGISTRY.filter((e) => e.kind === 'finding').map((e) => e.code);
    assert.deepEqual(difference(findings, rules), [], 'finding entries without a rule');
    assert.deepEqual(
      difference(rules, new Set(ERROR_REGISTRY.map((e) => e.code))),
      [],
      'rules not registered',
    );
    assert.deepEqual(difference(rules, new Set(findings)), ['INVALID_SOURCE_RANGE']);
  });

  it('looks codes up', () => {
    assert.equal(isErrorCode('PP_V1_BAD_PORT'), true);
    assert.equal(isErrorCode('SSL_CIPHER'), false);
    assert.equal(describeErrorCode('INVALID_SOURCE_RANGE')?.module, 'k8s');
    assert.equal(describeErrorCode('nope'), undefined);
  });
});

describe('registry drift check (on made-up sources)', () => {
  const registry = [{ code: 'KNOWN_CODE' }, { code: 'UNUSED_CODE' }];
  const sources = new Map([
    ['src/a.ts', "return { ok: false, error: { code: 'KNOWN_CODE', message } };"],
    ['src/b.ts', 'push(issues, "warning", `NEW_CODE`, field); const tlv = \'TLV_NAME\';'],
  ]);

  it('reports a new literal, a registered code nothing uses, and a stale exclusion', () => {
    const drift = registryDrift(codeLiterals(sources), registry, { TLV_NAME: 'tlv', GONE_NAME: 'gone' });
    assert.deepEqual(drift, {
      unregistered: ['NEW_CODE'],
      dead: ['UNUSED_CODE'],
      staleExclusions: ['GONE_NAME'],
    });
  });

  it('ignores lower-case strings, single words and unquoted mentions', () => {
    const only = new Map([
      ['src/c.ts', "// MENTIONED_IN_COMMENT\nconst a = 'ETIMEDOUT'; const b = 'lower_case';"],
    ]);
    assert.deepEqual([...codeLiterals(only).keys()], []);
  });

  it('finds the codes of a documentation table', () => {
    const doc = renderErrorsDoc([
      { code: 'A_ONE', module: 'net', kind: 'error', summary: 'a | b', fix: 'c' },
      { code: 'B_TWO', module: 'lb', kind: 'error', summary: 's', fix: 'f' },
    ]);
    assert.deepEqual(documentedCodes(doc), ['A_ONE', 'B_TWO']);
    assert.match(doc, /a \\\| b/);
  });
});
