// docs/doctor.md and docs/rules.md: the claims no other test checks, and the doctor attacked with the
// input an operator really writes, its verdict held against what the real gateway / keepip up / keepip lb
// do with the same manifests (clients bound to distinct 127.x sources, or ::1).
//
// Claims quoted (docs/doctor.md unless said otherwise):
//  D1 "| 0 | the client gets through (200, or a redirect) |" (exit codes, with --client)
//  D2 "| 2 | usage error |" -- `--scheme http|https` (the synopsis; nothing else is a scheme)
//  D3 "Manifests that cannot be read (bad YAML, missing files) give exit 1 and name the file and document."
//  D4 "`request`, `gatewayLogsAddress` and `clientAnswer` are null in audit mode, and `hops` is then empty."
//  D5 "load balancer: the LoadBalancer Service in front of the controller (`--lb`, else the controller's
//     Service, else the first one)" + simulate.test's DOCTOR_UNKNOWN_LB: through the CLI an unknown --lb
//     is exit 1 naming the known ones.
//  D6 "Findings about a lost or forgeable client address are errors only when some allow, deny or block
//     list depends on the address. Otherwise they are warnings."
//  D7 "| `unreachable` | none | `loadBalancerSourceRanges`, `A8 hairpin`, `no-ready-endpoint` |"
//  D8 "`--proxy-header-for IP` … after the LB's own header it is a bad request line (400)."
//  D9 "`IN_CLUSTER_BYPASS` | … | error for `--via in-cluster`, else warning"
//  D10 "`error` is `CLOSED_WITHOUT_RESPONSE` when the connection closed without an answer (G3)" and the
//     probe JSON `{ schema: "keepip.doctor.probe/v1", url, probes: [{ from, status, error, backendSaw,
//     source, matches, predicted, agrees, explainedBy, text }], exitCode }`; "| 1 | at least one probe did not |"
//  D11 "client-ip, route, policy: the gateway's own modules decide these steps … The doctor does not have
//     its own copy of these rules, so it cannot drift from what the gateway does." and rules.md G9 "An
//     allow or deny list with a bad entry makes its location answer 503 to everyone"; README "deny beats
//     allow, invalid lists fail closed with 503"; architecture I4 "IPv4-mapped IPv6 matches IPv4 rules
//     and zone ids or non-canonical forms never slip a rule".
//  D12 "| 0 | … | no finding is an error |" (without --client) and "`keepip doctor` reads the same manifests
//     as `keepip gateway`, `keepip lb` and `keepip up`" -- attacked with the ingress-nginx chart's second
//     (internal) LoadBalancer Service, and with a loadBalancerSourceRanges entry that is not a CIDR
//     (docs/lb.md: "An entry that is not a CIDR or an IP refuses the start-up … the list never fails open").
//  D13 rules.md G5 / doctor.md PEER_NOT_TRUSTED, with a proxy-real-ip-cidr holding a bad entry: "A list that
//     trusts everyone is replaced; a narrowed list is extended" (the fix must not extend a bad list).
//
// Where the other claims are checked (claim -> covering test):
//   verdict line, hops, text fix ........................ test/doctor/cli.test.ts "the seed: the text …"
//   JSON schema (client mode), exit 0 ................... cli.test.ts "--json follows the documented schema"
//   audit JSON, exit 1 while an error stands ............ cli.test.ts "without --client: audit JSON …"
//   --via over keepip.dev/client-path ................... cli.test.ts "--via overrides the annotation"
//   usage errors (--client, --via, --from, --probe, flag) cli.test.ts "usage errors exit 2 …"
//   missing file -> exit 1 naming it .................... cli.test.ts "unreadable manifests …"
//   afterFix / "Once those fixes are applied" ........... cli.test.ts "a fault the first one hides …"
//   --proxy-header-for believed where nothing writes one  cli.test.ts "--proxy-header-for: …"
//   every finding id, outcome and fix per fixture ....... test/doctor/fixtures.test.ts (table)
//   seed fix == examples/seed/after ..................... fixtures.test.ts "the seed: 403 …"
//   audit recognised / seenInstead ...................... fixtures.test.ts, security/doctor-audit-differential
//   loadBalancerSourceRanges, 404 + refused Ingress, A4 IPv6, privatelink/A10, gateway peers (K1/K4/A2),
//   proxySwitch per provider, default host, INVALID_SOURCE_RANGE fix, G6 ranged, alias/redirect/www/
//   canary in hops ...................................... test/doctor/simulate.test.ts
//   HTTP/2 offered, gRPC answer ......................... test/doctor/client-answer.test.ts
//   limits / auth in policy hops ........................ test/doctor/access-trace.test.ts, limit-key.test.ts
//   ssl-passthrough on/off/unknown, G10/G11, controllers  test/doctor/ssl-passthrough*.test.ts
//   tcp/udp-services, $(POD_NAMESPACE) ConfigMap ........ test/doctor/stream-services.test.ts
//   --probe (lost at LB, PROXY both ends, 400, no -f) ... test/doctor/probe.test.ts
//   --probe ETIMEDOUT / RESPONSE_TOO_LARGE / 101 ........ test/security/doctor-whoami-attack.test.ts
//   prediction == keepip up for every fixture ........... test/e2e/doctor-agrees-with-up.test.ts
//   prediction and fix over generated chains ............ test/security/doctor-prediction-differential.test.ts
//   kubectl / YAML / merge patch ........................ test/doctor/fix.test.ts
//   rules.md ids cited by the source .................... test/docs-rules.test.ts
//
// ALLOWED (the table below, each entry checked to still be what is seen): differences between the
// doctor and the runtimes that are acceptable, with the reason.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Topology } from '../../src/config/model.ts';
import { diagnose } from '../../src/doctor/diagnose.ts';
import { type RunningGateway, startGateway } from '../../src/gateway/gateway.ts';
import { loadTopology } from '../../src/k8s/index.ts';
import http from '../../src/node-http.ts';
import { type RunningChain, startChain as startUp, UpError } from '../../src/up/run.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { memorySink } from '../fixtures/gateway/harness.ts';
import {
  backendManifests,
  type ChainCase,
  controllerManifests,
  GW,
  LB,
  WHOAMI,
} from '../helpers/doctor-chain.ts';
import { runKeepip } from '../helpers/process.ts';

const LISTED = '127.0.20.10';
const OTHER = '127.0.20.66';
const INTERNAL_LB = '127.0.11.1';
const HOST = 'app.example.com';
const P = 'nginx.ingress.kubernetes.io/';

/** The clean chain of test/fixtures/doctor/clean: an internal NLB, ip targets, PROXY v2 both ends, trust the NLB. */
const CLEAN: ChainCase = {
  lb: 'nlb-ip',
  proxy: true,
  etp: 'Cluster',
  transit: false,
  useProxyProtocol: true,
  trust: 'lb',
  useForwardedHeaders: false,
  enableRealIp: false,
};

/** One Ingress `app/<name>` for `host`, path `/` Prefix, to Service app/web port 80. */
function ingress(name: string, host: string, annotations: Record<string, string> = {}): string {
  const entries = Object.entries(annotations);
  const block =
    entries.length === 0
      ? ' {}'
      : `\n${entries.map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join('\n')}`;
  return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${name}
  namespace: app
  creationTimestamp: "2025-03-19T09:00:00Z"
  annotations:${block}
spec:
  ingressClassName: nginx
  rules:
    - host: ${host}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: {service: {name: web, port: {number: 80}}}
`;
}

/** The ingress-nginx chart's second Service (controller.service.internal): same pods, no PROXY switch. */
const INTERNAL_LB_SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: ingress-nginx-controller-internal
  namespace: ingress-nginx
  annotations:
    service.beta.kubernetes.io/aws-load-balancer-type: "external"
    service.beta.kubernetes.io/aws-load-balancer-scheme: "internal"
    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: "ip"
    keepip.dev/lb-source-address: "${INTERNAL_LB}"
spec:
  type: LoadBalancer
  selector: {app.kubernetes.io/name: ingress-nginx, app.kubernetes.io/component: controller}
  ports: [{name: http, port: 80, targetPort: 80}]
status: {loadBalancer: {ingress: [{ip: ${INTERNAL_LB}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ingress-nginx-controller-internal-abcde
  namespace: ingress-nginx
  labels: {kubernetes.io/service-name: ingress-nginx-controller-internal}
addressType: IPv4
ports: [{name: http, port: 80}]
endpoints: [{addresses: ["${GW}"], conditions: {ready: true}, nodeName: node-1}]
`;

/**
 * Differences between the doctor and the runtimes that are acceptable, with the reason. Each is checked
 * by the test named after its key (which marks it seen), and the last test checks every one was seen.
 */
const ALLOWED = {
  'one LB with --client':
    "with --client and no --lb the doctor answers for the controller's Service only: docs/doctor.md says so " +
    '("`--lb`, else the controller\'s Service, else the first one"), and --lb asks about any other LB',
  'bad proxy-real-ip-cidr':
    'a proxy-real-ip-cidr with a bad entry: the doctor simulates what the ConfigMap reader makes of it ' +
    '("keepip trusts no peer": connection-closed, G5) where keepip gateway / keepip up refuse to start; ' +
    'both fail closed, and the doctor reports INVALID_TRUSTED_CIDR with a fix that replaces the list',
  'G3 named, G5 logged':
    'a peer outside proxy-real-ip-cidr that sends no PROXY header: the doctor decides by the missing header ' +
    '(G3, PROXY_PROTOCOL_EXPECTED_NOT_SENT) where the gateway checks the peer first and logs "not a trusted ' +
    'proxy" (G5, invariant I2); the outcome is the same (closed, no response) and the fix sets both the ' +
    "LB's PROXY switch and the trust of its address",
} as const;
const allowedSeen = new Set<keyof typeof ALLOWED>();

const dirs: string[] = [];

/** A temporary manifest directory holding `files` (name -> YAML). */
async function manifestDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keepip-doctor-claims-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

interface Cli {
  code: number;
  stdout: string;
  stderr: string;
  // biome-ignore lint/suspicious/noExplicitAny: the report is the documented JSON, read field by field
  json: any;
}

async function doctor(args: string[]): Promise<Cli> {
  const run = await runKeepip(['doctor', ...args]);
  let json: unknown = null;
  if (args.includes('--json') && run.stdout.trim().startsWith('{')) json = JSON.parse(run.stdout);
  return { ...run, json };
}

/** One GET from `from`; the status, or null when the connection closed or reset without a response. */
function send(target: { host: string; port: number }, from: string, host: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: target.host,
      port: target.port,
      localAddress: from,
      path: '/',
      headers: { host, accept: 'application/json' },
      agent: false,
      timeout: 30_000,
    });
    request.on('response', (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? null));
      response.on('error', () => resolve(response.statusCode ?? null));
    });
    request.on('timeout', () => {
      request.destroy();
      reject(new Error(`no response and no close within 30 s from ${target.host}:${target.port}`));
    });
    request.on('error', () => resolve(null));
    request.end();
  });
}

const ids = (findings: { id: string; severity: string }[]) => findings.map((f) => `${f.id}:${f.severity}`);

// ---------------------------------------------------------------------------------------------------
// D1-D9: documented CLI behaviour, one doctor run each (run together)
// ---------------------------------------------------------------------------------------------------

describe('keepip doctor: documented outcomes and exit codes no other test checks', () => {
  const runs: Record<string, Cli> = {};
  before(async () => {
    const lostNoList = { ...CLEAN, proxy: false, useProxyProtocol: false, trust: 'absent' as const };
    const redirect = await manifestDir({
      'app.yaml': `${backendManifests(8080)}---\n${ingress('moved', 'moved.example', { [`${P}permanent-redirect`]: 'https://new.example/' })}`,
    });
    const lost = await manifestDir({
      'controller.yaml': controllerManifests(lostNoList),
      'app.yaml': `${backendManifests(8080)}---\n${ingress('web', HOST)}`,
    });
    const notReady = await manifestDir({
      'controller.yaml': controllerManifests(CLEAN).replace(
        'conditions: {ready: true}',
        'conditions: {ready: false}',
      ),
      'app.yaml': `${backendManifests(8080)}---\n${ingress('web', HOST, { [`${P}allowlist-source-range`]: `${LISTED}/32` })}`,
    });
    const clean = await manifestDir({
      'controller.yaml': controllerManifests(CLEAN),
      'app.yaml': `${backendManifests(8080)}---\n${ingress('web', HOST, { [`${P}allowlist-source-range`]: `${LISTED}/32` })}`,
    });
    const broken = await manifestDir({
      'app.yaml': backendManifests(8080),
      'broken.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: y}\n---\nkind: [unclosed\n',
    });
    const asks: Record<string, string[]> = {
      redirect: ['-f', redirect, '--client', LISTED, '--host', 'moved.example', '--json'],
      scheme: ['-f', clean, '--client', LISTED, '--scheme', 'ftp'],
      broken: ['-f', broken, '--client', LISTED],
      unknownLb: ['-f', clean, '--client', LISTED, '--lb', 'nope/nope'],
      lostNoList: ['-f', lost, '--json'],
      notReady: ['-f', notReady, '--client', LISTED, '--host', HOST, '--json'],
      headerAfterLb: ['-f', clean, '--client', OTHER, '--host', HOST, '--proxy-header-for', LISTED, '--json'],
      inClusterAudit: ['-f', 'test/fixtures/doctor/in-cluster-bypass', '--json'],
    };
    const done = await Promise.all(Object.entries(asks).map(async ([k, a]) => [k, await doctor(a)] as const));
    for (const [k, r] of done) runs[k] = r;
  });

  test('D1: a redirect is exit 0 with --client (outcome redirected, 301)', () => {
    const { code, json } = runs.redirect!;
    assert.equal(json.verdict, 'redirected', json.summary);
    assert.equal(json.status, 301);
    assert.equal(json.decidedBy, 'redirect 301');
    assert.equal(code, 0);
    assert.equal(json.exitCode, 0);
  });

  test('D2: --scheme other than http|https is a usage error (exit 2)', () => {
    const { code, stderr } = runs.scheme!;
    assert.equal(code, 2);
    assert.match(stderr, /--scheme must be http or https/);
  });

  test('D3: bad YAML is exit 1 naming the file and the document', () => {
    const { code, stderr, stdout } = runs.broken!;
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /broken\.yaml, document 2: invalid YAML/);
  });

  test('D5: an unknown --lb through the CLI is exit 1 naming the known LBs', () => {
    const { code, stderr } = runs.unknownLb!;
    assert.equal(code, 1);
    assert.match(stderr, /DOCTOR_UNKNOWN_LB: .*nope\/nope.*known: ingress-nginx\/ingress-nginx-controller/);
  });

  test('D6: the client lost at the LB with no list depending on it is a warning, exit 0', () => {
    const { code, json } = runs.lostNoList!;
    assert.deepEqual(ids(json.findings), ['CLIENT_IP_LOST_AT_LB:warning']);
    assert.equal(json.verdict, 'ok');
    assert.equal(code, 0);
  });

  test('D7: no ready gateway endpoint: unreachable, decided by no-ready-endpoint, exit 1', () => {
    const { code, json } = runs.notReady!;
    assert.equal(json.verdict, 'unreachable');
    assert.equal(json.status, null);
    assert.equal(json.decidedBy, 'no-ready-endpoint');
    assert.equal(json.gatewayLogsAddress, null);
    assert.equal(code, 1);
  });

  test("D8: the client's own PROXY header after the LB's is a 400, whatever it claims", () => {
    const { code, json } = runs.headerAfterLb!;
    assert.equal(json.verdict, 'rejected-400');
    assert.equal(json.status, 400);
    assert.match(json.decidedBy, /client PROXY header after the LB header/);
    assert.equal(code, 1);
  });

  test('D9: IN_CLUSTER_BYPASS without --via in-cluster is a warning', () => {
    const { json } = runs.inClusterAudit!;
    const finding = json.findings.find((f: { id: string }) => f.id === 'IN_CLUSTER_BYPASS');
    assert.ok(finding, ids(json.findings).join(', '));
    assert.equal(finding.severity, 'warning');
  });
});

// ---------------------------------------------------------------------------------------------------
// D11: source lists as operators write them; the doctor's verdict against the real gateway
// ---------------------------------------------------------------------------------------------------

interface ListCase {
  name: string;
  annotations: Record<string, string>;
  /** The status each client gets: 127.0.20.10, 127.0.20.66, ::1. */
  expect: [number, number, number];
}

const A = `${P}allowlist-source-range`;
const D = `${P}denylist-source-range`;
const W = `${P}whitelist-source-range`;

const LIST_CASES: ListCase[] = [
  { name: 'spaces', annotations: { [A]: ' 127.0.20.10/32 ,  127.0.20.11 ' }, expect: [200, 403, 403] },
  { name: 'tabs', annotations: { [A]: '127.0.20.11,\t127.0.20.10/32\t' }, expect: [200, 403, 403] },
  {
    name: 'dupes',
    annotations: { [A]: '127.0.20.10, 127.0.20.10/32,127.0.20.10/32' },
    expect: [200, 403, 403],
  },
  // Host bits are masked, as ingress-nginx's net.ParseCIDR: the /24 lets 127.0.20.66 in too.
  { name: 'host-bits', annotations: { [A]: '127.0.20.10/24' }, expect: [200, 200, 403] },
  { name: 'bad-octet', annotations: { [A]: '127.0.20.10/32, 127.0.20.300' }, expect: [503, 503, 503] },
  { name: 'leading-zero', annotations: { [A]: '127.0.20.10/32, 127.0.020.66' }, expect: [503, 503, 503] },
  { name: 'prefix-33', annotations: { [A]: '127.0.20.10/33' }, expect: [503, 503, 503] },
  { name: 'empty-entry', annotations: { [A]: '127.0.20.10/32,,127.0.20.11' }, expect: [503, 503, 503] },
  { name: 'trailing-comma', annotations: { [A]: '127.0.20.10/32,' }, expect: [503, 503, 503] },
  { name: 'space-separated', annotations: { [A]: '127.0.20.10/32 127.0.20.66/32' }, expect: [503, 503, 503] },
  { name: 'blank', annotations: { [A]: '   ' }, expect: [503, 503, 503] },
  { name: 'zone-id', annotations: { [A]: '127.0.20.10/32, ::1%lo' }, expect: [503, 503, 503] },
  { name: 'legacy-alias', annotations: { [A]: '', [W]: '127.0.20.10' }, expect: [200, 403, 403] },
  {
    name: 'deny-wins',
    annotations: { [A]: '127.0.20.0/24, ::1', [D]: ' 127.0.20.66 , ::1' },
    expect: [200, 403, 403],
  },
  {
    name: 'deny-invalid',
    annotations: { [A]: '127.0.20.0/24', [D]: '127.0.20.66, nope' },
    expect: [503, 503, 503],
  },
  { name: 'v6', annotations: { [A]: '::1' }, expect: [403, 403, 200] },
  { name: 'v6-long', annotations: { [A]: '0:0:0:0:0:0:0:1/128, 127.0.20.10' }, expect: [200, 403, 200] },
  // I4: an IPv4-mapped entry matches the IPv4 client it maps.
  { name: 'v4-mapped', annotations: { [A]: '::ffff:127.0.20.10/128' }, expect: [200, 403, 403] },
];

const CLIENTS = [LISTED, OTHER, '::1'] as const;

describe('D11: allow/deny lists with spaces, duplicates, bad entries and IPv6: the doctor says what the gateway does', () => {
  let whoami: RunningWhoami;
  let v4: RunningGateway;
  let v6: RunningGateway;
  let dir: string;
  let topology: Topology;
  const observed = new Map<string, number | null>();
  const cli: Record<string, Cli> = {};

  before(async () => {
    whoami = await startWhoami({ host: WHOAMI, port: 0 });
    dir = await manifestDir({
      'app.yaml': [
        backendManifests(whoami.address.port),
        ...LIST_CASES.map((c) => ingress(c.name, `${c.name}.example`, c.annotations)),
      ].join('---\n'),
    });
    topology = await loadTopology([dir]);
    const sinks = () => ({ accessLog: memorySink(), errorLog: memorySink() });
    v4 = await startGateway({ topology, http: { host: GW, port: 0 }, ...sinks() });
    v6 = await startGateway({ topology, http: { host: '::1', port: 0 }, ...sinks() });
    const sends: Promise<void>[] = [];
    for (const c of LIST_CASES) {
      for (const client of CLIENTS) {
        const target =
          client === '::1'
            ? { host: '::1', port: v6.httpAddress!.port }
            : { host: GW, port: v4.httpAddress!.port };
        sends.push(
          send(target, client, `${c.name}.example`).then((s) => void observed.set(`${c.name} ${client}`, s)),
        );
      }
    }
    const asks: [string, string[]][] = [
      ['bad-octet', ['-f', dir, '--client', LISTED, '--host', 'bad-octet.example', '--json']],
      ['v6', ['-f', dir, '--client', '::1', '--host', 'v6.example', '--json']],
      ['audit', ['-f', dir, '--json']],
    ];
    const [, ...done] = await Promise.all([
      Promise.all(sends),
      ...asks.map(async ([k, a]) => [k, await doctor(a)] as const),
    ]);
    for (const entry of done) {
      const [k, r] = entry as readonly [string, Cli];
      cli[k] = r;
    }
  });

  after(async () => {
    await v4?.close();
    await v6?.close();
    await whoami?.close();
  });

  test('every list, every client: the doctor (diagnose) and the running gateway answer alike, and as documented', () => {
    const problems: string[] = [];
    for (const c of LIST_CASES) {
      for (const [i, client] of CLIENTS.entries()) {
        const result = diagnose(topology, { client, host: `${c.name}.example` });
        assert.ok(result.ok);
        const predicted = result.report.status;
        const real = observed.get(`${c.name} ${client}`);
        const expected = c.expect[i];
        if (predicted !== real || real !== expected)
          problems.push(
            `${c.name} ${JSON.stringify(c.annotations)} from ${client}: doctor ${predicted} (${result.report.decidedBy}), gateway ${real}, documented ${expected}`,
          );
        // A list fails closed for everyone or for no one: the doctor never says 200 where the gateway says 503.
        if (predicted === 200 && real === 503)
          problems.push(`${c.name}: doctor allows what the gateway fails closed`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('the CLI says the same (a bad entry: 503, exit 1; an IPv6 client: as itself)', () => {
    const bad = cli['bad-octet']!;
    assert.equal(bad.json.verdict, 'fail-closed-503');
    assert.equal(bad.json.status, observed.get(`bad-octet ${LISTED}`));
    assert.equal(bad.code, 1);
    assert.equal(cli.v6!.json.status, observed.get('v6 ::1'));
    assert.equal(cli.v6!.json.gatewayLogsAddress, '::1');
  });

  test('D4: audit mode JSON: request, gatewayLogsAddress, clientAnswer null; hops empty', () => {
    const { json } = cli.audit!;
    assert.equal(json.mode, 'audit');
    assert.equal(json.request, null);
    assert.equal(json.gatewayLogsAddress, null);
    assert.equal(json.clientAnswer, null);
    assert.deepEqual(json.hops, []);
    assert.ok(['ok', 'problems'].includes(json.verdict));
    assert.ok(Array.isArray(json.afterFix));
  });

  test('the audit: every invalid list is an INVALID_SOURCE_RANGE error and is audited as invalid; exit 1', () => {
    const { json, code } = cli.audit!;
    assert.equal(code, 1);
    const invalid = LIST_CASES.filter((c) => c.expect.every((s) => s === 503)).map(
      (c) => `${c.name}.example`,
    );
    const auditedInvalid = json.audit
      .filter((a: { valid: boolean }) => !a.valid)
      .map((a: { host: string }) => a.host)
      .sort();
    assert.deepEqual(auditedInvalid, [...invalid].sort());
    const flagged = new Set(
      json.findings
        .filter((f: { id: string }) => f.id === 'INVALID_SOURCE_RANGE')
        .map((f: { subject: { name: string } }) => `${f.subject.name}.example`),
    );
    for (const host of invalid) assert.ok(flagged.has(host), `INVALID_SOURCE_RANGE names ${host}`);
  });
});

// ---------------------------------------------------------------------------------------------------
// D10, D12: the chart's second (internal) LoadBalancer Service in front of the same controller
// ---------------------------------------------------------------------------------------------------

describe("D10, D12: two LoadBalancer Services for one controller (the chart's internal one sends no PROXY)", () => {
  let dir: string;
  let chain: RunningChain;
  const gatewayLines: string[] = [];
  const lineWaiters = new Set<() => void>();
  /** The first gateway line matching `pattern`, written already or still to come (bounded: 30 s). */
  const gatewayLine = (pattern: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const line = gatewayLines.find((l) => pattern.test(l));
        if (line === undefined) return;
        lineWaiters.delete(check);
        clearTimeout(timer);
        resolve(line);
      };
      const timer = setTimeout(() => {
        lineWaiters.delete(check);
        reject(new Error(`no gateway line ${pattern}:\n${gatewayLines.join('\n')}`));
      }, 30_000);
      lineWaiters.add(check);
      check();
    });
  const real: Record<string, number | null> = {};
  const cli: Record<string, Cli> = {};

  before(async () => {
    dir = await manifestDir({
      'controller.yaml': `${controllerManifests(CLEAN)}---\n${INTERNAL_LB_SERVICE}`,
      'app.yaml': `${backendManifests(8080)}---\n${ingress('web', HOST, { [A]: `${LISTED}/32` })}`,
    });
    chain = await startUp({
      paths: [dir],
      ports: 'ephemeral',
      watch: false,
      log: (component, line) => {
        if (component === 'gateway') {
          gatewayLines.push(line);
          for (const wake of [...lineWaiters]) wake();
        }
      },
    });
    const external = chain.actual({ host: LB, port: 80 });
    const internal = chain.actual({ host: INTERNAL_LB, port: 80 });
    assert.notEqual(internal.port, 80, 'keepip up runs the internal LB too');
    const internalId = 'ingress-nginx/ingress-nginx-controller-internal';
    const probe = (extra: string[]) => [
      '--probe',
      `http://${INTERNAL_LB}:${internal.port}/`,
      '--host',
      HOST,
      '--from',
      LISTED,
      '-f',
      dir,
      '--json',
      ...extra,
    ];
    const asks: [string, string[]][] = [
      ['internal', ['-f', dir, '--client', LISTED, '--host', HOST, '--lb', internalId, '--json']],
      ['default', ['-f', dir, '--client', LISTED, '--host', HOST, '--json']],
      ['audit', ['-f', dir, '--json']],
      ['probe', probe(['--lb', internalId])],
    ];
    const [viaExternal, viaInternal, ...done] = await Promise.all([
      send(external, LISTED, HOST),
      send(internal, LISTED, HOST),
      ...asks.map(async ([k, a]) => [k, await doctor(a)] as const),
    ]);
    real.external = viaExternal as number | null;
    real.internal = viaInternal as number | null;
    for (const entry of done) {
      const [k, r] = entry as unknown as readonly [string, Cli];
      cli[k] = r;
    }
  });

  after(async () => {
    await chain?.close();
  });

  test('the real chain: 200 through the external LB, closed without a response through the internal one', async () => {
    assert.equal(real.external, 200);
    assert.equal(real.internal, null);
    // Closed by the gateway (not by an LB without targets): its error line names the internal LB.
    await gatewayLine(/\[error\].*PROXY protocol.*client: 127\.0\.11\.1,/);
  });

  test('--lb names the internal LB: connection-closed (G3), as the chain does; exit 1', () => {
    const { json, code } = cli.internal!;
    assert.equal(json.loadBalancer, 'ingress-nginx/ingress-nginx-controller-internal');
    assert.equal(json.verdict, 'connection-closed');
    assert.equal(json.decidedBy, 'G3');
    assert.equal(json.status, real.internal);
    assert.ok(json.findings.some((f: { id: string }) => f.id === 'PROXY_PROTOCOL_EXPECTED_NOT_SENT'));
    assert.equal(code, 1);
  });

  test(`ALLOWED 'G3 named, G5 logged': the doctor says "no header" (G3), the gateway logs the untrusted peer; the fix covers both`, async () => {
    const { json } = cli.internal!;
    assert.equal(json.decidedBy, 'G3');
    const line = await gatewayLine(/\[error\].*PROXY protocol.*client: 127\.0\.11\.1,/);
    assert.match(
      line,
      /PROXY protocol peer 127\.0\.11\.1 is not a trusted proxy \(proxy-real-ip-cidr\), connection closed/,
    );
    const fix = json.findings.find((f: { id: string }) => f.id === 'PROXY_PROTOCOL_EXPECTED_NOT_SENT').fix;
    const patches = fix.patches.map((p: { patch: unknown }) => p.patch);
    assert.deepEqual(patches, [
      { metadata: { annotations: { 'service.beta.kubernetes.io/aws-load-balancer-proxy-protocol': '*' } } },
      { data: { 'proxy-real-ip-cidr': `${LB}/32,${INTERNAL_LB}/32` } },
    ]);
    allowedSeen.add('G3 named, G5 logged');
  });

  test('D10: --probe through it: CLOSED_WITHOUT_RESPONSE, predicted and explained; the documented JSON; exit 1', () => {
    const { json, code } = cli.probe!;
    assert.equal(code, 1);
    assert.equal(json.schema, 'keepip.doctor.probe/v1');
    assert.match(json.url, new RegExp(`^http://${INTERNAL_LB.replaceAll('.', '\\.')}:\\d+/$`));
    assert.equal(json.exitCode, 1);
    assert.equal(json.probes.length, 1);
    const row = json.probes[0];
    assert.deepEqual(Object.keys(row).sort(), [
      'agrees',
      'backendSaw',
      'error',
      'explainedBy',
      'from',
      'matches',
      'predicted',
      'source',
      'status',
      'text',
    ]);
    assert.equal(row.from, LISTED);
    assert.equal(row.status, null);
    assert.equal(row.error, 'CLOSED_WITHOUT_RESPONSE');
    assert.equal(row.backendSaw, null);
    assert.deepEqual(Object.keys(row.predicted).sort(), [
      'decidedBy',
      'gatewayLogsAddress',
      'outcome',
      'status',
    ]);
    assert.equal(row.predicted.outcome, 'connection-closed');
    assert.equal(row.agrees, true);
    assert.equal(row.explainedBy, 'PROXY_PROTOCOL_EXPECTED_NOT_SENT');
  });

  test(`ALLOWED 'one LB with --client': the doctor answers for the controller Service only (documented choice)`, () => {
    const { json, code } = cli.default!;
    assert.equal(json.loadBalancer, 'ingress-nginx/ingress-nginx-controller');
    assert.equal(json.verdict, 'allowed');
    assert.equal(json.status, real.external);
    assert.equal(code, 0);
    allowedSeen.add('one LB with --client');
  });

  test('without --client the audit looks at every LB of the controller: the internal one without PROXY is an error, exit 1 (found here, fixed)', () => {
    const { json, code } = cli.audit!;
    const errors = json.findings.filter((f: { severity: string }) => f.severity === 'error');
    assert.ok(
      errors.length > 0 && code === 1,
      `the audit looked at ${json.loadBalancer} only and says "${json.summary}" (exit ${code}), while the real chain closes every request through ${INTERNAL_LB} (findings: ${ids(json.findings).join(', ') || 'none'})`,
    );
    const named = errors.find((f: { loadBalancer?: string }) => f.loadBalancer !== undefined);
    assert.equal(named?.id, 'PROXY_PROTOCOL_EXPECTED_NOT_SENT');
    assert.equal(named?.loadBalancer, 'ingress-nginx/ingress-nginx-controller-internal');
    assert.match(named?.message, /^Through ingress-nginx\/ingress-nginx-controller-internal: /);
  });
});

// ---------------------------------------------------------------------------------------------------
// D12, D13: CIDR lists the runtimes refuse
// ---------------------------------------------------------------------------------------------------

describe('D12, D13: a bad entry in loadBalancerSourceRanges or proxy-real-ip-cidr', () => {
  const cli: Record<string, Cli> = {};
  const refused: Record<string, string> = {};
  let lbRun: { code: number; stdout: string; stderr: string };

  /** What keepip up (in process, as `keepip up -f`) says of the manifests: the refusal's message, or 'ran'. */
  async function upRefusal(dir: string): Promise<string> {
    let chain: RunningChain | null = null;
    try {
      chain = await startUp({ paths: [dir], ports: 'ephemeral', watch: false, log: () => {} });
      return 'ran';
    } catch (error) {
      if (error instanceof UpError) return `${error.code}: ${error.message}`;
      throw error;
    } finally {
      await chain?.close();
    }
  }

  before(async () => {
    const app = `${backendManifests(8080)}---\n${ingress('web', HOST, { [A]: `${LISTED}/32` })}`;
    const lbAnnotation = (value: string) =>
      controllerManifests(CLEAN).replace(
        `keepip.dev/lb-source-address: "${LB}"`,
        `keepip.dev/lb-source-address: "${LB}"\n    service.beta.kubernetes.io/load-balancer-source-ranges: ${JSON.stringify(value)}`,
      );
    const someBad = await manifestDir({
      'controller.yaml': lbAnnotation(`${LISTED}/32, bogus`),
      'app.yaml': app,
    });
    const allBad = await manifestDir({ 'controller.yaml': lbAnnotation('bogus'), 'app.yaml': app });
    const trust = await manifestDir({
      'controller.yaml': controllerManifests(CLEAN).replace(
        `proxy-real-ip-cidr: "${LB}/32"`,
        `proxy-real-ip-cidr: "${LB}/32, bogus"`,
      ),
      'app.yaml': app,
    });
    const asks: [string, string[]][] = [
      ['someBad', ['-f', someBad, '--client', LISTED, '--host', HOST, '--json']],
      ['allBad', ['-f', allBad, '--client', LISTED, '--host', HOST, '--json']],
      ['someBadAudit', ['-f', someBad, '--json']],
      ['trust', ['-f', trust, '--client', LISTED, '--host', HOST, '--json']],
    ];
    const [lb, ...done] = await Promise.all([
      runKeepip(['lb', '-f', someBad, '--listen', `${LB}:0`], { timeoutMs: 30_000 }),
      ...asks.map(async ([k, a]) => [k, await doctor(a)] as const),
    ]);
    lbRun = lb as { code: number; stdout: string; stderr: string };
    for (const entry of done) {
      const [k, r] = entry as unknown as readonly [string, Cli];
      cli[k] = r;
    }
    refused.someBad = await upRefusal(someBad);
    refused.allBad = await upRefusal(allBad);
    refused.trust = await upRefusal(trust);
  });

  test('the runtimes refuse a loadBalancerSourceRanges entry that is not a CIDR (keepip lb -f, keepip up)', () => {
    assert.equal(lbRun.code, 1, lbRun.stderr);
    assert.match(lbRun.stderr, /INVALID_LB_SOURCE_RANGE/);
    assert.match(refused.someBad!, /^UP_CONFIG_INVALID: .*INVALID_LB_SOURCE_RANGE/s);
    assert.match(refused.allBad!, /^UP_CONFIG_INVALID: .*INVALID_LB_SOURCE_RANGE/s);
  });

  test('the doctor names the bad entry as a manifest error', () => {
    for (const key of ['someBad', 'allBad', 'someBadAudit']) {
      const issues = cli[key]!.json.configIssues;
      assert.ok(
        issues.some(
          (i: { code: string; severity: string }) =>
            i.code === 'INVALID_LB_SOURCE_RANGE' && i.severity === 'error',
        ),
        key,
      );
    }
  });

  test('a bad loadBalancerSourceRanges entry: unreachable, exit 1, and an INVALID_SOURCE_RANGE error in the audit (the LB never runs; found here, fixed: it said 200 allowed)', () => {
    const problems: string[] = [];
    for (const key of ['someBad', 'allBad']) {
      const { json, code } = cli[key]!;
      if (json.verdict === 'allowed' || code === 0)
        problems.push(
          `${key}: "${json.summary}", exit ${code}, while keepip lb / keepip up refuse these manifests`,
        );
    }
    const audit = cli.someBadAudit!;
    if (audit.code === 0)
      problems.push(`audit: "${audit.json.summary}", exit 0 with an error in configIssues`);
    assert.deepEqual(problems, []);
    assert.equal(cli.someBad!.json.verdict, 'unreachable');
    assert.equal(cli.someBad!.json.decidedBy, 'loadBalancerSourceRanges');
    const finding = audit.json.findings.find((f: { id: string }) => f.id === 'INVALID_SOURCE_RANGE');
    assert.equal(finding?.subject?.kind, 'Service');
    // The fix keeps the valid entry, in the field the bad one came from (the annotation here).
    assert.deepEqual(finding?.fix?.patches?.[0]?.patch, {
      metadata: { annotations: { 'service.beta.kubernetes.io/load-balancer-source-ranges': `${LISTED}/32` } },
    });
    // No valid entry left: no automatic fix (dropping the list would open the LB to everyone).
    const none = cli.allBad!.json.findings.find((f: { id: string }) => f.id === 'INVALID_SOURCE_RANGE');
    assert.ok(none);
    assert.equal(none.fix, null);
  });

  test(`ALLOWED 'bad proxy-real-ip-cidr': the doctor simulates "trust nobody" (closed, G5), keepip up refuses; both fail closed`, () => {
    const { json, code } = cli.trust!;
    assert.equal(json.verdict, 'connection-closed');
    assert.equal(json.decidedBy, 'G5 untrusted peer');
    assert.equal(code, 1);
    assert.ok(json.configIssues.some((i: { code: string }) => i.code === 'INVALID_TRUSTED_CIDR'));
    assert.match(refused.trust!, /^UP_CONFIG_INVALID: .*INVALID_TRUSTED_CIDR/s);
    allowedSeen.add('bad proxy-real-ip-cidr');
  });

  test('D13: the PEER_NOT_TRUSTED fix replaces the bad list with valid CIDRs (never extends it)', () => {
    const finding = cli.trust!.json.findings.find((f: { id: string }) => f.id === 'PEER_NOT_TRUSTED');
    assert.ok(finding);
    const patch = finding.fix.patches.find(
      (p: { target: { kind: string } }) => p.target.kind === 'ConfigMap',
    );
    assert.deepEqual(patch.patch, { data: { 'proxy-real-ip-cidr': `${LB}/32` } });
  });
});

describe('ALLOWED', () => {
  test('every allowed difference has its reason and was seen by its test above', () => {
    for (const [key, reason] of Object.entries(ALLOWED)) assert.ok(reason.length > 40, key);
    assert.deepEqual([...allowedSeen].sort(), Object.keys(ALLOWED).sort());
  });
});
