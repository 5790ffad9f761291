// Does `keepip doctor -f <manifests>` WITHOUT --client (the access-list audit, src/doctor/audit.ts and
// diagnose.ts auditReport) tell the truth about the chain those manifests describe, and does its fix
// work? A generated differential on 127.0.0.0/8, on the bench of doctor-prediction-differential.test.ts:
//
//   clients bound to 127.0.20.x (the audit's listed client, or an address of the same lists on 127/8;
//   a stranger on no list)
//   -> the keepip lb engine and kube-proxy's NodePort hop, exactly as `keepip up` plans them from the
//      Service's provider annotations (planUp + startL4; PROXY v1/v2/none, preservation)
//   -> ONE in-process keepip gateway (the controller pod 127.0.30.1), reloaded per configuration; its
//      access log ($remote_addr) tells which address the policy saw, also for a refused request
//   -> keepip whoami (X-Real-IP: the address the backend saw)
//
// Each configuration has several Ingresses (several hosts and paths) with allowlists, denylists, the
// legacy whitelist annotation, a ConfigMap-level whitelist/denylist, and invalid entries. Per audited
// location: the listed client's and the stranger's statuses are the audit's listedOutcome/otherOutcome,
// `recognised` is true iff the policy saw the listed client's own address, `seenInstead` is the address
// seen for both when it is not. The verdict is "ok" only when every list recognises its clients and no
// error is found, and then the real chain must honour every list. Then the error fixes and the afterFix
// fixes are applied (applyPatches + patchedManifestObject, as the CLI's follow-fix does), the chain is
// rebuilt, and every location must answer each client as its lists say of its OWN address, with no
// forged X-Forwarded-For / X-Real-IP / PROXY header letting a refused client in.
//
// AUDIT_SEED=<n> replays another sample, AUDIT_SEED=random explores (AUDIT_RUNS=<n> for more cases).
//
// The chain's bench (the LB kinds, the ConfigMap switches, startChain) is test/helpers/doctor-chain.ts,
// shared with doctor-prediction-differential.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Topology } from '../../src/config/model.ts';
import { diagnose } from '../../src/doctor/diagnose.ts';
import { applyPatches } from '../../src/doctor/fix.ts';
import { addAfterFix, patchedManifestObject, patchesToApply } from '../../src/doctor/follow-fix.ts';
import { doctorInputs } from '../../src/doctor/inputs.ts';
import { backendView } from '../../src/doctor/probe.ts';
import type { AccessAudit, DoctorReport, FixPatch, Outcome } from '../../src/doctor/types.ts';
import { type RunningGateway, startGateway } from '../../src/gateway/gateway.ts';
import { type ManifestObject, parseManifestText } from '../../src/k8s/index.ts';
import { CidrSet } from '../../src/net/cidr-set.ts';
import { encodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import type { Endpoint } from '../../src/up/plan.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { type MemorySink, memorySink } from '../fixtures/gateway/harness.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import {
  assertNone,
  backendManifests,
  block,
  type ChainCase,
  controllerManifests,
  describeChain,
  GW,
  LB,
  phasesOf,
  type LbKind,
  startChain,
  type TrustOption,
  WHOAMI,
} from '../helpers/doctor-chain.ts';
import { decodeChunked, rawExchange, splitResponse } from '../helpers/net.ts';

/** On no generated list (they stay within 127.0.20.0/28, the LB and documentation ranges). */
const STRANGER = '127.0.20.250';
const RUNS = Number(process.env.AUDIT_RUNS ?? 14);
const DEFAULT_SEED = 20260412;

// ---------------------------------------------------------------------------------------------------
// The configurations
// ---------------------------------------------------------------------------------------------------

/** An Ingress's allow list value (sorted by the reader: the audit's listed client is the first entry). */
type AllowOption = 'none' | 'one' | 'range' | 'mixed' | 'lb' | 'outside' | 'invalid' | 'invalid-only';
type AllowName = 'allowlist' | 'whitelist' | 'both';
type DenyOption = 'none' | 'other' | 'listed' | 'invalid';

interface IngressCase {
  host: 'a' | 'b';
  allow: AllowOption;
  allowName: AllowName;
  deny: DenyOption;
}

interface Case extends ChainCase {
  /** ConfigMap whitelist-source-range / denylist-source-range: defaults of locations without annotations. */
  cmAllow: 'none' | 'range' | 'invalid';
  cmDeny: boolean;
  ingresses: IngressCase[];
}

const ALLOW: Record<AllowOption, string | null> = {
  none: null,
  one: '127.0.20.1',
  range: '127.0.20.0/29',
  mixed: '10.9.0.0/16, 127.0.20.3', // the first entry is not on 127/8: a substitute is bound
  lb: `127.0.20.2,${LB}/32`, // sorted: the LB first, so the audit's listed client is the LB's address
  outside: '192.0.2.0/24', // nothing on 127/8: the listed client cannot be played here
  invalid: '127.0.20.1, not-an-ip',
  'invalid-only': 'nope',
};
const DENY: Record<DenyOption, string | null> = {
  none: null,
  other: '127.0.20.9',
  listed: '127.0.20.1', // also on some allowlists: deny beats allow
  invalid: '127.0.20.9,10.0.0.0/99',
};
const CM_ALLOW = { none: null, range: '127.0.20.0/28', invalid: '127.0.20.4, 300.1.1.1' } as const;
const CM_DENY = '127.0.20.9';

const ingressArb: fc.Arbitrary<IngressCase> = fc.record({
  host: fc.constantFrom<'a' | 'b'>('a', 'b'),
  allow: fc.constantFrom<AllowOption>(
    'none',
    'one',
    'one',
    'range',
    'mixed',
    'lb',
    'outside',
    'invalid',
    'invalid-only',
  ),
  allowName: fc.constantFrom<AllowName>('allowlist', 'allowlist', 'whitelist', 'both'),
  deny: fc.constantFrom<DenyOption>('none', 'none', 'other', 'listed', 'invalid'),
});

const caseArb: fc.Arbitrary<Case> = fc.record({
  lb: fc.constantFrom<LbKind>('nlb-ip', 'nlb-ip-preserve', 'nlb-instance', 'elb', 'linode', 'generic'),
  proxy: fc.boolean(),
  etp: fc.constantFrom<'Cluster' | 'Local'>('Cluster', 'Local'),
  transit: fc.boolean(),
  useProxyProtocol: fc.boolean(),
  trust: fc.constantFrom<TrustOption>('lb', 'node', 'other', 'everyone', 'absent', 'wide'),
  useForwardedHeaders: fc.boolean(),
  enableRealIp: fc.boolean(),
  cmAllow: fc.constantFrom<'none' | 'range' | 'invalid'>('none', 'none', 'range', 'invalid'),
  cmDeny: fc.boolean(),
  ingresses: fc.array(ingressArb, { minLength: 2, maxLength: 4 }),
});

const ing = (
  allow: AllowOption,
  deny: DenyOption = 'none',
  more: Partial<IngressCase> = {},
): IngressCase => ({
  host: 'a',
  allow,
  allowName: 'allowlist',
  deny,
  ...more,
});

const plain: Case = {
  lb: 'nlb-ip',
  proxy: false,
  etp: 'Cluster',
  transit: false,
  useProxyProtocol: false,
  trust: 'absent',
  useForwardedHeaders: false,
  enableRealIp: false,
  cmAllow: 'none',
  cmDeny: false,
  ingresses: [ing('one'), ing('range', 'other', { host: 'b' }), ing('none')],
};

/** Always run, before the generated ones. */
const FIXED: Case[] = [
  { ...plain, lb: 'nlb-ip-preserve' }, // a working chain: the audit should say ok
  { ...plain, proxy: true, useProxyProtocol: true, trust: 'lb' }, // PROXY end to end: ok
  plain, // the LB's own address for everyone (CLIENT_IP_LOST_AT_LB)
  { ...plain, transit: true, cmAllow: 'range', cmDeny: true }, // ConfigMap lists, transit gateway
  { ...plain, lb: 'elb', proxy: true, trust: 'node' }, // v1 sent, not expected (G2)
  { ...plain, useProxyProtocol: true, trust: 'lb' }, // PROXY expected, not sent (G3)
  {
    ...plain,
    lb: 'nlb-ip-preserve',
    cmAllow: 'invalid',
    ingresses: [
      ing('invalid'),
      ing('invalid-only', 'none', { host: 'b' }),
      ing('mixed', 'invalid', { allowName: 'whitelist' }),
      ing('none'),
    ],
  },
  {
    ...plain,
    lb: 'nlb-ip-preserve',
    useForwardedHeaders: true,
    trust: 'wide',
    ingresses: [ing('lb'), ing('one', 'listed', { allowName: 'both' }), ing('outside', 'other')],
  },
  { ...plain, lb: 'generic', etp: 'Cluster', ingresses: [ing('lb'), ing('none', 'other', { host: 'b' })] },
  // G2 hides the rest; the fix (PROXY expected, Cluster) leaves a trust range holding the clients with
  // forwarded headers read (AUDIT_SEED=3 found it).
  {
    ...plain,
    lb: 'nlb-instance',
    proxy: true,
    etp: 'Local',
    trust: 'wide',
    useForwardedHeaders: true,
    enableRealIp: true,
    ingresses: [ing('mixed'), ing('one', 'none', { allowName: 'whitelist' })],
  },
];

function describeIngress(i: IngressCase, n: number): string {
  const allow = ALLOW[i.allow] === null ? '' : ` ${i.allowName}=${JSON.stringify(ALLOW[i.allow])}`;
  const deny = DENY[i.deny] === null ? '' : ` deny=${JSON.stringify(DENY[i.deny])}`;
  return `[i${n} ${i.host}${pathOf(n)}${allow}${deny}]`;
}

function describeCase(c: Case): string {
  const parts = [
    ...describeChain(c),
    CM_ALLOW[c.cmAllow] === null ? null : `cm-whitelist=${JSON.stringify(CM_ALLOW[c.cmAllow])}`,
    c.cmDeny ? `cm-denylist=${CM_DENY}` : null,
    c.ingresses.map(describeIngress).join(''),
  ];
  return parts.filter((p) => p !== null).join(' ');
}

function ingressAnnotations(i: IngressCase): string[] {
  const p = 'nginx.ingress.kubernetes.io';
  const out: string[] = [];
  const allow = ALLOW[i.allow];
  if (allow !== null) {
    if (i.allowName !== 'whitelist') out.push(`${p}/allowlist-source-range: "${allow}"`);
    // 'both': the legacy name too, with another client; allowlist-source-range wins.
    const legacy = i.allowName === 'both' ? '127.0.20.5' : i.allowName === 'whitelist' ? allow : null;
    if (legacy !== null) out.push(`${p}/whitelist-source-range: "${legacy}"`);
  }
  const deny = DENY[i.deny];
  if (deny !== null) out.push(`${p}/denylist-source-range: "${deny}"`);
  return out;
}

const hostOf = (i: IngressCase) => `${i.host}.example.com`;
const pathOf = (n: number) => `/p${n}`;

function ingressYaml(i: IngressCase, n: number): string {
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web-${n}
  namespace: app
  annotations:${block(ingressAnnotations(i), '    ')}
spec:
  ingressClassName: nginx
  rules:
    - host: ${hostOf(i)}
      http:
        paths:
          - {path: ${pathOf(n)}, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`;
}

/** The ConfigMap's default access lists of the case (beside its client-address keys). */
function configMapLists(c: Case): string[] {
  const data: string[] = [];
  const cmAllow = CM_ALLOW[c.cmAllow];
  if (cmAllow !== null) data.push(`whitelist-source-range: "${cmAllow}"`);
  if (c.cmDeny) data.push(`denylist-source-range: "${CM_DENY}"`);
  return data;
}

/** The controller's half (test/helpers/doctor-chain.ts) with the ConfigMap's lists, the Ingresses and their one backend. */
function manifests(c: Case, whoamiPort: number): string {
  return `${controllerManifests(c, configMapLists(c))}---
${c.ingresses.map(ingressYaml).join('---\n')}---
${backendManifests(whoamiPort)}`;
}

// ---------------------------------------------------------------------------------------------------
// The audit, as the CLI runs it
// ---------------------------------------------------------------------------------------------------

interface Audited {
  topology: Topology;
  report: DoctorReport;
}

/** `keepip doctor -f` without --client: doctorInputs, diagnose, then addAfterFix (as src/cli/doctor.ts runDiagnosis). */
function runAudit(objects: readonly ManifestObject[]): Audited | string {
  try {
    const inputs = doctorInputs(objects);
    const result = diagnose(inputs.topology, {
      sslPassthrough: inputs.passthrough,
      streamServices: inputs.streamServices,
      ...(inputs.loadBalancer !== null ? { loadBalancer: inputs.loadBalancer } : {}),
    });
    if (!result.ok) return `doctor error ${result.error.code}: ${result.error.message}`;
    const report = result.report;
    if (report.mode !== 'audit') return `doctor answered in ${report.mode} mode without --client`;
    return { topology: inputs.topology, report: addAfterFix(objects, report, {}, {}) };
  } catch (error) {
    return `doctor crashed: ${(error as Error).stack ?? String(error)}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// The real chain
// ---------------------------------------------------------------------------------------------------

/** A request: from `source`, optionally claiming `claim` by a forged header or its own PROXY header. */
interface Request {
  source: string;
  host: string;
  path: string;
  forge?: { how: Forgery; claim: string };
}
type Forgery = 'xff' | 'xri' | 'pp1' | 'pp2';
const FORGERIES: readonly Forgery[] = ['xff', 'xri', 'pp1', 'pp2'];

interface Answer {
  /** null: no HTTP answer (closed or reset). */
  status: number | null;
  /** The address the policy saw: the gateway's access-log $remote_addr (null without a log line). */
  seen: string | null;
  /** For a 200: the client the backend saw (X-Real-IP). */
  backendSaw: string | null;
}

let marker = 0;
const counts = { requests: 0 };

function requestBytes(r: Request, id: string): Buffer {
  const lines = [
    `GET ${r.path} HTTP/1.1`,
    `Host: ${r.host}`,
    `User-Agent: ${id}`,
    'Accept: application/json',
    'Connection: close',
  ];
  if (r.forge?.how === 'xff') lines.push(`X-Forwarded-For: ${r.forge.claim}`);
  if (r.forge?.how === 'xri') lines.push(`X-Real-IP: ${r.forge.claim}`);
  const http = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  if (r.forge?.how !== 'pp1' && r.forge?.how !== 'pp2') return http;
  const forged = encodeProxyHeader({
    version: r.forge.how === 'pp1' ? 1 : 2,
    source: { address: r.forge.claim, port: 40001 },
    destination: { address: LB, port: 80 },
  });
  return Buffer.concat([forged, http]);
}

function backendSawOf(received: Buffer): string | null {
  const { head, body } = splitResponse(received);
  const data = /\r\ntransfer-encoding: *chunked/i.test(head) ? decodeChunked(body).data : body;
  const view = backendView(data.toString('utf8'));
  return view.source === 'x-real-ip' ? view.backendSaw : `(${view.source}) ${view.backendSaw}`;
}

/**
 * One request through the LB; waits for the chain to close it, then for the gateway's access-log line
 * (requests run one at a time, so the next line is this request's; a 400 for an unparsed request has
 * no User-Agent to match).
 */
async function send(entry: Endpoint, log: MemorySink, r: Request): Promise<Answer> {
  const id = `audit-probe-${++marker}`;
  const start = log.lines.length;
  let received: Buffer;
  try {
    const reply = await rawExchange({
      host: entry.host,
      port: entry.port,
      payload: requestBytes(r, id),
      localAddress: r.source,
      timeoutMs: 20_000, // a safety net: every answer here ends with the chain closing the connection
    });
    assert.ok(reply.closedByServer, `${r.source}: the chain neither answered nor closed within 20 s`);
    received = reply.received;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EPIPE')
      return { status: null, seen: null, backendSaw: null };
    throw error;
  }
  const status = /^HTTP\/1\.[01] (\d{3}) /.exec(received.toString('latin1'))?.[1];
  if (status === undefined) return { status: null, seen: null, backendSaw: null };
  assert.ok(await log.untilCount(start + 1, 20_000), `${id}: no access-log line for status ${status}`);
  const fresh = log.lines.slice(start);
  const line = fresh.find((l) => l.includes(id)) ?? fresh[0]!;
  return {
    status: Number(status),
    seen: line.split(' ')[0] ?? null,
    backendSaw: status === '200' ? backendSawOf(received) : null,
  };
}

// ---------------------------------------------------------------------------------------------------
// One phase: the audit, the chain, and per audited location what the chain does
// ---------------------------------------------------------------------------------------------------

/** Per-location skip reasons, counted (the listed client cannot be played on 127/8). */
const SKIPPED: Record<string, number> = {};
const skip = (reason: string) => {
  SKIPPED[reason] = (SKIPPED[reason] ?? 0) + 1;
};

const setOf = (list: readonly string[] | null) => {
  if (list === null) return null;
  const built = CidrSet.build([...list]);
  assert.ok(built.ok, `the audit's list ${list.join(',')} builds`);
  return built.set;
};

/**
 * The status an admitted request gets: the generated paths reach whoami; the root location ingress-nginx
 * adds to each host (with the first Ingress's annotations, lists included) goes to the default backend.
 */
const admittedStatus = (a: AccessAudit) => (/^\/p\d+$/.test(a.path) ? 200 : 404);

/** What a location's lists give an address seen as itself: the answer a working chain gives. */
function ownAnswer(a: AccessAudit, address: string): { status: number; seen: string } {
  if (!a.valid) return { status: 503, seen: address };
  const allow = setOf(a.allow);
  const deny = setOf(a.deny);
  const admitted = (allow === null || allow.has(address)) && !(deny?.has(address) ?? false);
  return { status: admitted ? admittedStatus(a) : 403, seen: address };
}

const membership = (a: AccessAudit, address: string) =>
  `${setOf(a.allow)?.has(address) ?? '-'}/${setOf(a.deny)?.has(address) ?? '-'}`;

/** The listed client to bind: the audit's own when on 127/8, else a 127/8 entry of the same lists and membership. */
function playable(a: AccessAudit): string | null {
  if (a.listedClient === null) return null;
  if (a.listedClient.startsWith('127.')) return a.listedClient;
  const wanted = membership(a, a.listedClient);
  for (const entry of [...(a.allow ?? []), ...(a.deny ?? [])]) {
    const address = entry.slice(0, entry.lastIndexOf('/'));
    if (address.startsWith('127.') && membership(a, address) === wanted) return address;
  }
  skip('the list has no entry on 127/8 that is listed as the audit listed client is');
  return null;
}

interface LocationRun {
  audit: AccessAudit;
  /** The address played as the listed client (null: none to play). */
  listed: string | null;
  listedAnswer: Answer | null;
  stranger: Answer;
  /** Forged requests from the refused one of (listed, stranger) claiming the admitted one. */
  forged: { label: string; answer: Answer }[];
}

/** The refused and the admitted client of a location, when exactly one of them is admitted. */
function forgeryPair(a: AccessAudit, listed: string | null): { from: string; claim: string } | null {
  if (listed === null) return null;
  const l = ownAnswer(a, listed).status === admittedStatus(a);
  const s = ownAnswer(a, STRANGER).status === admittedStatus(a);
  if (l === s) return null;
  return l ? { from: STRANGER, claim: listed } : { from: listed, claim: STRANGER };
}

async function runLocation(entry: Endpoint, log: MemorySink, a: AccessAudit): Promise<LocationRun> {
  const host = a.host;
  const path = a.path;
  const listed = playable(a);
  const listedAnswer = listed === null ? null : await send(entry, log, { source: listed, host, path });
  const stranger = await send(entry, log, { source: STRANGER, host, path });
  const forged: LocationRun['forged'] = [];
  const pair = forgeryPair(a, listed);
  if (pair !== null) {
    for (const how of FORGERIES) {
      const answer = await send(entry, log, {
        source: pair.from,
        host,
        path,
        forge: { how, claim: pair.claim },
      });
      forged.push({ label: `${pair.from} forging ${how} naming ${pair.claim}`, answer });
    }
  }
  return { audit: a, listed, listedAnswer, stranger, forged };
}

interface Phase {
  audited: Audited;
  locations: LocationRun[];
}

interface Bench {
  gateway: RunningGateway;
  whoami: RunningWhoami;
  access: MemorySink;
}

async function runPhase(bench: Bench, objects: readonly ManifestObject[]): Promise<Phase | string> {
  const audited = runAudit(objects);
  if (typeof audited === 'string') return audited;
  const reloaded = bench.gateway.reload(audited.topology);
  if (!reloaded.ok) return `the gateway refused the topology: ${JSON.stringify(reloaded)}`;
  const chain = await startChain(audited.topology, bench.gateway.httpAddress!.port);
  try {
    counts.requests -= marker;
    const locations = await mapLimited(audited.report.audit, 1, (a) =>
      runLocation(chain.entry, bench.access, a),
    );
    counts.requests += marker;
    return { audited, locations };
  } finally {
    await chain.close();
  }
}

interface CaseResult {
  c: Case;
  failure: string | null;
  before: Phase | null;
  fix: FixPatch[];
  after: Phase | null;
}

async function runCase(bench: Bench, c: Case): Promise<CaseResult> {
  const loaded = parseManifestText(manifests(c, bench.whoami.address.port), 'generated.yaml');
  const result: CaseResult = { c, failure: null, before: null, fix: [], after: null };
  const before = await runPhase(bench, loaded.objects);
  if (typeof before === 'string') return { ...result, failure: before };
  result.before = before;
  result.fix = patchesToApply(before.audited.report);
  if (result.fix.length === 0) return result;
  const patched = applyPatches(loaded.objects, result.fix, (raw) => patchedManifestObject(raw));
  if (!patched.ok) return { ...result, failure: `applyPatches: ${patched.error.message}` };
  const after = await runPhase(bench, patched.objects);
  if (typeof after === 'string') return { ...result, failure: `after the fix: ${after}` };
  result.after = after;
  return result;
}

// ---------------------------------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------------------------------

/** The HTTP status an outcome means (null: no HTTP answer). */
const STATUS: Record<Outcome, number | null> = {
  allowed: 200,
  redirected: 308,
  'denied-403': 403,
  'rejected-400': 400,
  'connection-closed': null,
  'fail-closed-503': 503,
  unreachable: null,
  'not-found-404': 404,
};

const show = (a: Answer | null) =>
  a === null
    ? 'nothing'
    : `${a.status ?? 'no answer'}${a.seen !== null ? ` seen as ${a.seen}` : ''}${a.backendSaw !== null && a.backendSaw !== a.seen ? ` (backend saw ${a.backendSaw})` : ''}`;
/** What the policy saw: the backend's X-Real-IP for a 200 (as the brief asks), else the access log. */
const seenBy = (a: Answer) => (a.status === 200 ? a.backendSaw : a.seen);

const where = (r: CaseResult, phase: string, l: LocationRun) =>
  `${describeCase(r.c)}${phase === 'after the fix' ? ` + fix {${r.fix.map((p) => `${p.target.kind} ${JSON.stringify(p.patch)}`).join(' ')}}` : ''} [${phase}] ${l.audit.ingress.name} ${l.audit.host}${l.audit.path}`;

/** Every audited location of every phase, with where it is. */
function locationsOf(results: readonly CaseResult[]): { at: string; l: LocationRun; phase: Phase }[] {
  return results.flatMap((r) =>
    phasesOf(r).flatMap(([name, phase]) => phase.locations.map((l) => ({ at: where(r, name, l), l, phase }))),
  );
}

/**
 * Whether STRANGER plays the audit's other client faithfully: both trusted by proxy-real-ip-cidr or
 * neither (a trusted peer's PROXY header is read, an untrusted one's closes the connection).
 */
function standsInFor(phase: Phase, other: string | null): boolean {
  if (other === null) return true;
  const trusted = CidrSet.build([...phase.audited.topology.gateway.settings.trustedCidrs]);
  return !trusted.ok || trusted.set.has(STRANGER) === trusted.set.has(other);
}

/** The audit's listedOutcome / otherOutcome against the statuses the listed client and the stranger get. */
function wrongOutcomes(results: readonly CaseResult[]): string[] {
  const out: string[] = [];
  for (const { at, l, phase } of locationsOf(results)) {
    const a = l.audit;
    if (
      l.listedAnswer !== null &&
      a.listedOutcome !== null &&
      STATUS[a.listedOutcome] !== l.listedAnswer.status
    )
      out.push(
        `${at}: listed ${a.listedClient}${l.listed !== a.listedClient ? ` (played by ${l.listed})` : ''}: the audit says ${a.listedOutcome}, the chain answers ${show(l.listedAnswer)}`,
      );
    if (a.otherOutcome !== null && !standsInFor(phase, a.otherClient)) {
      skip("the stranger 127.0.20.250 and the audit's other client are on either side of proxy-real-ip-cidr");
      continue;
    }
    if (a.otherOutcome !== null && STATUS[a.otherOutcome] !== l.stranger.status)
      out.push(
        `${at}: other client (${a.otherClient}, played by ${STRANGER}): the audit says ${a.otherOutcome}, the chain answers ${show(l.stranger)}`,
      );
  }
  return out;
}

/**
 * A request the policy decides: no 400 (here only the G2 wall, where the gateway reads the LB's PROXY
 * header as a request line and answers before any routing or policy) and an HTTP answer at all.
 */
const reachesPolicy = (a: Answer) => a.status !== null && a.status !== 400;

/**
 * `recognised` and `seenInstead` against the address the policy really saw; `onlyUnreached` selects
 * the listed clients whose requests never reach the policy, else those whose requests do.
 */
function wrongRecognition(results: readonly CaseResult[], onlyUnreached: boolean): string[] {
  const out: string[] = [];
  for (const { at, l } of locationsOf(results)) {
    if (l.listedAnswer === null || l.listed === null) continue;
    const a = l.audit;
    if (!reachesPolicy(l.listedAnswer) !== onlyUnreached) continue;
    const saw = seenBy(l.listedAnswer);
    // docs/doctor.md: recognised means the listed client "reaches the policy with its own address".
    const recognised = reachesPolicy(l.listedAnswer) && saw === l.listed;
    const strangerSaw = seenBy(l.stranger);
    // What the policy saw instead: nothing, when the request never reaches it (a 400 before routing).
    const policySaw = reachesPolicy(l.listedAnswer) ? saw : null;
    const seenInstead = !recognised && policySaw !== null && policySaw === strangerSaw ? policySaw : null;
    if (a.recognised !== recognised)
      out.push(
        `${at}: the audit says the listed client is ${a.recognised ? '' : 'not '}recognised; ${l.listed} gets ${show(l.listedAnswer)}`,
      );
    else if (a.seenInstead !== seenInstead)
      out.push(
        `${at}: the audit says seenInstead=${a.seenInstead}; the chain: listed ${show(l.listedAnswer)}, stranger ${show(l.stranger)}`,
      );
  }
  return out;
}

/** Where the chain lets a listed client down or lets a refused client in (as anyone). */
function chainTrouble(l: LocationRun): string[] {
  const out: string[] = [];
  const check = (who: string, answer: Answer) => {
    const own = ownAnswer(l.audit, who);
    if (answer.status !== own.status || seenBy(answer) !== who)
      out.push(`${who} gets ${show(answer)}, its own address gives ${own.status} seen as ${who}`);
  };
  if (l.listed !== null && l.listedAnswer !== null) check(l.listed, l.listedAnswer);
  check(STRANGER, l.stranger);
  const admitted = admittedStatus(l.audit);
  for (const f of l.forged) if (f.answer.status === admitted) out.push(`${f.label} gets ${show(f.answer)}`);
  return out;
}

/** The verdict and exit code as the report's own data says, and an "ok" only on a chain that works. */
function wrongVerdicts(results: readonly CaseResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    for (const [name, phase] of phasesOf(r)) {
      const report = phase.audited.report;
      const errors = report.findings.filter((f) => f.severity === 'error').map((f) => f.id);
      const unrecognised = report.audit.filter((a) => !a.recognised).map((a) => `${a.ingress.name}${a.path}`);
      const ok = errors.length === 0 && unrecognised.length === 0;
      const at = `${describeCase(r.c)} [${name}]`;
      if ((report.verdict === 'ok') !== ok || (report.exitCode === 0) !== ok)
        out.push(
          `${at}: verdict ${report.verdict}, exit ${report.exitCode}; errors: ${errors.join(',') || 'none'}; unrecognised lists: ${unrecognised.join(',') || 'none'}`,
        );
      if (report.verdict !== 'ok') continue;
      const trouble = phase.locations.flatMap((l) =>
        chainTrouble(l).map((t) => `${l.audit.ingress.name}${l.audit.path}: ${t}`),
      );
      if (trouble.length > 0) out.push(`${at}: the audit says ok, but ${trouble.join('; ')}`);
    }
  }
  return out;
}

/** After the fix: every location answers the listed client and the stranger as their own addresses say. */
function brokenFixes(results: readonly CaseResult[], forgeries: boolean): string[] {
  return results.flatMap((r) =>
    (r.after?.locations ?? []).flatMap((l) => {
      const trouble = chainTrouble(l).filter((t) => t.includes(' forging ') === forgeries);
      const errors = r.after!.audited.report.findings.filter((f) => f.severity === 'error').map((f) => f.id);
      const left = errors.length > 0 ? ` (errors left after the fix: ${errors.join(', ')})` : '';
      return trouble.map((t) => `${where(r, 'after the fix', l)}: ${t}${left}`);
    }),
  );
}

describe('keepip doctor without --client: the access-list audit against the real chain, and its fix', () => {
  const results: CaseResult[] = [];
  let bench: Bench;
  const chosen = process.env.AUDIT_SEED;
  const seed = chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? DEFAULT_SEED);

  before(async () => {
    const whoami = await startWhoami({ host: WHOAMI, port: 0 });
    const first = parseManifestText(manifests(plain, whoami.address.port), 'generated.yaml');
    const access = memorySink();
    const gateway = await startGateway({
      topology: doctorInputs(first.objects).topology,
      http: { host: GW, port: 0 },
      accessLog: access,
      errorLog: memorySink(),
      drainTimeoutMs: 1_000,
    });
    bench = { gateway, whoami, access };
    const cases = [...FIXED, ...fc.sample(caseArb, { numRuns: RUNS, seed })];
    // One gateway, reloaded per configuration: the configurations run one after the other.
    const started = performance.now();
    results.push(...(await mapLimited(cases, 1, (c) => runCase(bench, c))));
    if (process.env.AUDIT_DEBUG)
      console.error(
        `${counts.requests} requests, ${cases.length} cases, ${Math.round(performance.now() - started)} ms`,
      );
  });

  after(async () => {
    await bench?.gateway.close();
    await bench?.whoami.close();
  });

  it('the audit answers every configuration in audit mode, and the gateway takes it', () => {
    const failures = results
      .filter((r) => r.failure !== null)
      .map((r) => `${describeCase(r.c)}: ${r.failure}`);
    assertNone(failures, 'configurations the doctor or the gateway could not take', `AUDIT_SEED=${seed}`);
    const played = locationsOf(results).filter(({ l }) => l.listedAnswer !== null).length;
    assert.ok(played >= 40, `enough listed clients were played (${played})`);
  });

  it("each audited location: the listed and the other client's statuses are the audit's outcomes", () => {
    assertNone(wrongOutcomes(results), 'audit outcomes the chain contradicts', `AUDIT_SEED=${seed}`);
  });

  it('each audited location: `recognised` and `seenInstead` are what the policy really saw', () => {
    assertNone(
      wrongRecognition(results, false),
      'recognition claims the chain contradicts',
      `AUDIT_SEED=${seed}`,
    );
  });

  it('a listed client whose request never reaches the policy (400 at the gateway) is not "recognised"', () => {
    assertNone(
      wrongRecognition(results, true),
      'recognition claims for requests the policy never sees',
      `AUDIT_SEED=${seed}`,
    );
  });

  it('the verdict is "ok" (exit 0) only when every list recognises its clients, no error, and the chain honours the lists', () => {
    assert.ok(
      results.some((r) => r.before?.audited.report.verdict === 'ok'),
      'some configuration is ok',
    );
    assertNone(wrongVerdicts(results), 'wrong verdicts', `AUDIT_SEED=${seed}`);
  });

  it('after the fix: every listed client passes as itself and strangers are still refused', () => {
    assert.ok(results.filter((r) => r.after !== null).length >= 5, 'the fixes were exercised');
    assertNone(brokenFixes(results, false), 'fixes that do not work', `AUDIT_SEED=${seed}`);
  });

  it('after the fix: no forged X-Forwarded-For, X-Real-IP or PROXY header gets a refused client in', () => {
    assertNone(brokenFixes(results, true), 'forgeries the fixed chain lets through', `AUDIT_SEED=${seed}`);
  });

  it('the skipped locations have their reason and are met', () => {
    for (const [reason, count] of Object.entries(SKIPPED)) assert.ok(reason.length > 30 && count > 0, reason);
    assert.ok(Object.keys(SKIPPED).length > 0, 'the unplayable listed client is met by some case');
  });
});
