// Controller ConfigMap values: keepip's reading against ingress-nginx's, transcribed from Go.
//
// ingress-nginx (mirror /work/.mirror/kubernetes+ingress-nginx/repo, HEAD dbb11b92ddb77bee9c35e462479129354c84f939)
// reads its ConfigMap in internal/ingress/controller/template/configmap.go ReadConfig:
//   - the list keys are split by splitAndTrimSpace (configmap.go:496-507: strings.FieldsFunc on `,`, so
//     empty fields vanish, then TrimSpace, so a field of spaces stays as "") and written, unchecked,
//     into nginx.tmpl (set_real_ip_from :89-91, block-cidrs `deny` :567, location allow/deny
//     :1206-1213); an entry nginx cannot parse makes nginx -t fail, so the whole configuration is
//     refused (the controller keeps serving the previous one);
//   - proxy-real-ip-cidr absent is 0.0.0.0/0 (configmap.go:191-196);
//   - http-redirect-code is strconv.Atoi, then 301/302/307/308 only (configmap.go:229-241);
//   - everything else goes through mapstructure v1.5.0 WeaklyTypedInput (configmap.go:454-468) into
//     config.go / defaults/main.go: a bool is strconv.ParseBool, and "" is false (decodeBool); an int is
//     strconv.ParseInt(s, 0, 64) (base 0: "010" is octal 8, "0x10" is 16, "1_0" is 10), and "" is 0
//     (decodeInt); a string is taken as written. A value that fails leaves that key at its default.
//
// Each value goes to keepip through the real loader (topologyOf + controllerConfigMap) and the model.
// Equal: pass. keepip MORE permissive (trusts more proxies, a wider or absent allowlist, a block list
// not blocking, forwarded headers on, ssl-redirect/hsts off, a larger limit or deadline, snippets on):
// FINDING, the model's value is asserted and the test fails. keepip stricter where ingress-nginx takes
// the value, or keepip warning where ingress-nginx silently defaults or refuses its configuration:
// ALLOWED (table below, with the reason). Anything else is a compatibility difference: COMPAT (table
// below), asserted equal unless docs/ingress-nginx-compat.md documents it.
//
// Generated values: fast-check with a fixed seed; CONFIGMAP_SEED=<n> CONFIGMAP_RUNS=<n> explores more.
import assert from 'node:assert/strict';
import { BlockList, isIP } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import type { GatewaySettings, SourceRangeModel, Topology } from '../../src/config/model.ts';
import { BACKEND_DEADLINE_AT_ONCE_MS } from '../../src/k8s/annotations.ts';
import { controllerConfigMap, topologyOf } from '../fixtures/gateway/manifests.ts';
import { BOOL_VALUES, goBool, goParseInt0, INT_VALUES } from '../helpers/go-configmap.ts';
import { splitAndTrimSpace } from '../helpers/go-net.ts';

const SEED = Number(process.env.CONFIGMAP_SEED ?? 20240611);
const RUNS = Number(process.env.CONFIGMAP_RUNS ?? 40);

// ---------------------------------------------------------------------------------------------
// The Go side, transcribed (goBool, goParseInt0: test/helpers/go-configmap.ts; splitAndTrimSpace:
// test/helpers/go-net.ts).

/** nginx's ngx_ptocidr (allow, deny, set_real_ip_from): an address, or address/prefix with host bits masked. */
function nginxCidr(entry: string): { family: 'ipv4' | 'ipv6'; address: string; prefix: number } | null {
  const [address = '', prefixText, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return null;
  const bits = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^[0-9]+$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return null;
  return { family: family === 4 ? 'ipv4' : 'ipv6', address, prefix };
}

/** The IPv4-mapped IPv6 space (::ffff:0:0/96), by Node's own parser. */
const MAPPED = new BlockList();
MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/**
 * What nginx makes of a written list: the addresses, or null when nginx -t fails (config refused). An
 * IPv4-mapped entry (`allow ::ffff:10.0.0.1;`) is an IPv6 rule, and nginx matches an IPv4 client
 * (ingress-nginx listens on IPv4 and IPv6 sockets apart; a mapped client is turned into IPv4 when there
 * are IPv4 rules) against IPv4 rules only: it matches no client, which Node's BlockList would fold.
 */
function nginxList(entries: readonly string[]): BlockList | null {
  const list = new BlockList();
  for (const entry of entries) {
    const cidr = nginxCidr(entry);
    if (cidr === null) return null;
    if (cidr.family === 'ipv6' && MAPPED.check(cidr.address, 'ipv6')) continue;
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  return list;
}

// ---------------------------------------------------------------------------------------------
// Probing: which addresses a list covers (a set compared by sample addresses).

const PROBES = [
  '10.0.0.1',
  '10.1.2.3',
  '10.255.255.255',
  '11.0.0.1',
  '127.0.0.1',
  '192.168.1.1',
  '192.168.1.200',
  '192.168.2.1',
  '172.16.0.1',
  '8.8.8.8',
  '0.0.0.0',
  '255.255.255.255',
  '1.2.3.4',
  '2001:db8::1',
  '2001:db8:0:1::1',
  '2001:db9::1',
  '::1',
  'fe80::1',
  '::ffff:10.0.0.1',
];

function covered(list: BlockList | null, cidrs?: readonly string[]): string[] {
  let l = list;
  if (cidrs !== undefined) l = nginxList(cidrs);
  if (l === null) return [];
  return PROBES.filter((ip) => l.check(ip, isIP(ip) === 4 ? 'ipv4' : 'ipv6'));
}

// ---------------------------------------------------------------------------------------------
// keepip.

function load(data: Record<string, string>): { s: GatewaySettings; topology: Topology } {
  const topology = topologyOf([controllerConfigMap(data)]);
  assert.ok(topology.gateway, 'a gateway model');
  return { s: topology.gateway.settings, topology };
}

function reported(topology: Topology, key: string): boolean {
  return topology.issues.some(
    (i) => i.field === `data.${key}` || i.message.includes(`"${key}"`) || i.field?.includes(key),
  );
}

type Verdict =
  | { kind: 'equal' }
  | { kind: 'finding'; why: string }
  | { kind: 'allowed'; why: string }
  | { kind: 'compat'; why: string; documented: boolean };

interface Outcome {
  key: string;
  value: string;
  keepip: unknown;
  go: unknown;
  verdict: Verdict;
}

/** Failures grouped by kind and key, the values listed: one line per weakness, not per value. */
function grouped(messages: readonly string[]): string[] {
  const groups = new Map<string, string[]>();
  for (const m of messages) {
    const at = /^(\w+ [-a-z0-9]+):? (".*?"): (.*)$/.exec(m);
    const head = at ? `${at[1]}: ${at[3]!.replace(/[0-9]+/g, 'N').slice(0, 90)}` : m;
    groups.set(head, [...(groups.get(head) ?? []), at ? at[2]! : '']);
  }
  return [...groups].map(([head, values]) => `${head} <- ${values.join(' ')}`);
}

/** The assertion for one outcome: FINDING and undocumented COMPAT fail with the model's value. */
function check(o: Outcome): void {
  const where = `${o.key}: ${JSON.stringify(o.value)}`;
  if (o.verdict.kind === 'finding') assert.deepEqual(o.keepip, o.go, `FINDING ${where}: ${o.verdict.why}`);
  if (o.verdict.kind === 'compat' && !o.verdict.documented)
    assert.deepEqual(o.keepip, o.go, `COMPAT ${where}: ${o.verdict.why}`);
}

// ---------------------------------------------------------------------------------------------
// Booleans (config.go / defaults/main.go field, NewDefault value at config.go:751+).

type Lean = 'true-opens' | 'false-opens' | 'neutral';

interface BoolKey {
  key: string;
  where: string;
  goDefault: boolean;
  lean: Lean;
  read: (s: GatewaySettings) => boolean;
}

const BOOL_KEYS: readonly BoolKey[] = [
  {
    key: 'use-proxy-protocol',
    where: 'config.go:412',
    goDefault: false,
    lean: 'true-opens',
    read: (s) => s.useProxyProtocol,
  },
  {
    key: 'use-forwarded-headers',
    where: 'config.go:561',
    goDefault: false,
    lean: 'true-opens',
    read: (s) => s.useForwardedHeaders,
  },
  {
    key: 'enable-real-ip',
    where: 'config.go:564',
    goDefault: false,
    lean: 'true-opens',
    read: (s) => s.enableRealIp,
  },
  {
    key: 'compute-full-forwarded-for',
    where: 'config.go:582',
    goDefault: false,
    lean: 'neutral',
    read: (s) => s.computeFullForwardedFor,
  },
  {
    key: 'ssl-redirect',
    where: 'defaults/main.go:123',
    goDefault: true,
    lean: 'false-opens',
    read: (s) => s.sslRedirect,
  },
  {
    key: 'force-ssl-redirect',
    where: 'defaults/main.go:127',
    goDefault: false,
    lean: 'false-opens',
    read: (s) => s.server?.forceSslRedirect ?? false,
  },
  {
    key: 'hsts',
    where: 'config.go:248',
    goDefault: true,
    lean: 'false-opens',
    read: (s) => (s.server?.hsts ?? null) !== null,
  },
  {
    key: 'allow-cross-namespace-resources',
    where: 'config.go:100',
    goDefault: false,
    lean: 'true-opens',
    read: (s) => s.allowCrossNamespaceResources,
  },
  {
    key: 'strict-validate-path-type',
    where: 'config.go:742',
    goDefault: true,
    lean: 'false-opens',
    read: (s) => s.strictValidatePathType ?? true,
  },
  {
    key: 'ssl-reject-handshake',
    where: 'config.go:406',
    goDefault: false,
    lean: 'false-opens',
    read: (s) => s.sslRejectHandshake ?? false,
  },
  {
    key: 'enable-underscores-in-headers',
    where: 'config.go:210',
    goDefault: false,
    lean: 'true-opens',
    read: (s) => s.server?.underscoresInHeaders ?? false,
  },
  {
    key: 'allow-backend-server-header',
    where: 'config.go:118',
    goDefault: false,
    lean: 'true-opens',
    read: (s) => s.server?.allowBackendServerHeader ?? false,
  },
  {
    key: 'server-tokens',
    where: 'config.go:350',
    goDefault: false,
    lean: 'true-opens',
    read: (s) => s.server?.serverTokens ?? false,
  },
  {
    key: 'log-format-escape-json',
    where: 'config.go:285',
    goDefault: false,
    lean: 'neutral',
    read: (s) => s.logFormatEscapeJson,
  },
  {
    key: 'service-upstream',
    where: 'defaults/main.go:188',
    goDefault: false,
    lean: 'neutral',
    read: (s) => s.serviceUpstream ?? false,
  },
  {
    key: 'use-http2',
    where: 'config.go:451',
    goDefault: true,
    lean: 'neutral',
    read: (s) => s.http2?.enabled ?? true,
  },
  {
    key: 'generate-request-id',
    where: 'config.go:586',
    goDefault: true,
    lean: 'neutral',
    read: (s) => s.server?.generateRequestId ?? true,
  },
  // keepip never runs snippets: its effective value is false whatever the ConfigMap says.
  {
    key: 'allow-snippet-annotations',
    where: 'config.go:95',
    goDefault: false,
    lean: 'true-opens',
    read: () => false,
  },
];

function boolVerdict(k: BoolKey, value: string, keepip: boolean, go: boolean, warned: boolean): Verdict {
  if (keepip === go) return { kind: 'equal' };
  const opens = k.lean === 'true-opens' ? keepip : k.lean === 'false-opens' ? !keepip : null;
  if (opens === true) return { kind: 'finding', why: `keepip ${keepip}, ingress-nginx ${go} (${k.where})` };
  if (k.key === 'allow-snippet-annotations')
    return {
      kind: 'allowed',
      why: 'keepip never runs snippets; a value other than false is refused with a warning',
    };
  if (value === '' && warned)
    return {
      kind: 'allowed',
      why: 'mapstructure reads "" as false silently; keepip keeps the default with a warning',
    };
  if (opens === false && warned) return { kind: 'allowed', why: 'keepip stricter, with a warning' };
  return { kind: 'compat', why: `keepip ${keepip}, ingress-nginx ${go} (${k.where})`, documented: false };
}

test('boolean keys read as mapstructure reads them (ParseBool, "" is false, else the default)', () => {
  const failures: string[] = [];
  for (const k of BOOL_KEYS) {
    for (const value of BOOL_VALUES) {
      const { s, topology } = load({ [k.key]: value });
      const keepip = k.read(s);
      const go = goBool(value, k.goDefault);
      const verdict = boolVerdict(k, value, keepip, go, reported(topology, k.key));
      try {
        check({ key: k.key, value, keepip, go, verdict });
      } catch (e) {
        failures.push((e as Error).message.split('\n')[0]!);
      }
    }
  }
  assert.deepEqual(grouped(failures), []);
});

// ---------------------------------------------------------------------------------------------
// Integers (mapstructure decodeInt: ParseInt base 0, "" is 0).

interface IntKey {
  key: string;
  where: string;
  goDefault: number;
  /** A larger value lets clients hold more (a deadline or a limit): larger in keepip is a FINDING. */
  largerOpens: boolean;
  /** The range nginx accepts for the directive; outside it, nginx -t fails. */
  nginxMin: number;
  read: (s: GatewaySettings) => number;
}

const sec = (ms: number) => ms / 1000;
/** A backend deadline of 0 s is keepip's "at once" (Node's shortest timer): nginx's timer of 0. */
const backendSec = (ms: number) => (ms === BACKEND_DEADLINE_AT_ONCE_MS ? 0 : sec(ms));
const INT_KEYS: readonly IntKey[] = [
  {
    key: 'proxy-connect-timeout',
    where: 'defaults/main.go:51',
    goDefault: 5,
    largerOpens: false,
    nginxMin: 0,
    read: (s) => backendSec(s.proxyConnectTimeoutMs),
  },
  {
    key: 'proxy-read-timeout',
    where: 'defaults/main.go:56',
    goDefault: 60,
    largerOpens: false,
    nginxMin: 0,
    read: (s) => backendSec(s.proxyReadTimeoutMs),
  },
  {
    key: 'client-header-timeout',
    where: 'config.go:178',
    goDefault: 60,
    largerOpens: true,
    nginxMin: 0,
    read: (s) => sec(s.clientHeaderTimeoutMs),
  },
  {
    key: 'client-body-timeout',
    where: 'config.go:186',
    goDefault: 60,
    largerOpens: true,
    nginxMin: 0,
    read: (s) => sec(s.clientBodyTimeoutMs),
  },
  {
    key: 'keep-alive',
    where: 'config.go:267',
    goDefault: 75,
    largerOpens: true,
    nginxMin: 0,
    read: (s) => sec(s.keepAliveTimeoutMs),
  },
  {
    key: 'upstream-keepalive-connections',
    where: 'config.go:497',
    goDefault: 320,
    largerOpens: false,
    nginxMin: 0,
    read: (s) => s.upstreamKeepaliveConnections,
  },
  {
    key: 'upstream-keepalive-requests',
    where: 'config.go:510',
    goDefault: 10000,
    largerOpens: false,
    nginxMin: 0,
    read: (s) => s.upstreamKeepaliveRequests,
  },
  {
    key: 'max-worker-connections',
    where: 'config.go:303',
    goDefault: 16384,
    largerOpens: true,
    nginxMin: 0,
    read: (s) => s.maxWorkerConnections,
  },
  {
    key: 'http2-max-concurrent-streams',
    where: 'config.go:245',
    goDefault: 128,
    largerOpens: true,
    nginxMin: 0,
    read: (s) => s.http2?.maxConcurrentStreams ?? 128,
  },
];

function goIntValue(k: IntKey, value: string): number {
  const n = goParseInt0(value);
  return n === null ? k.goDefault : Number(n);
}

function intVerdict(k: IntKey, value: string, keepip: number, go: number, warned: boolean): Verdict {
  if (keepip === go) return { kind: 'equal' };
  // keepip's 0 for max-worker-connections is "no limit"; ingress-nginx's 0 is worker_rlimit_nofile-derived.
  const kEff = k.key === 'max-worker-connections' && keepip === 0 ? Number.POSITIVE_INFINITY : keepip;
  if (go <= 0 && (warned || value.trim() === ''))
    return {
      kind: 'allowed',
      why: `ingress-nginx writes ${go} (from ${JSON.stringify(value)}, silently) and nginx then times out at once, refuses streams or the configuration; keepip keeps the default (with a warning, or blank as absent)`,
    };
  if (warned && !/^[+-]?[0-9]+$/.test(value))
    return {
      kind: 'allowed',
      why: 'a Go literal form (0x, 0o, 0b, _) ParseInt base 0 takes; keepip refuses it with a warning and keeps the default',
    };
  if (k.largerOpens && kEff > go)
    return {
      kind: 'finding',
      why: `keepip ${keepip} > ingress-nginx ${go}${warned ? '' : ', silently'} (${k.where}, ParseInt base 0: a leading 0 is octal, an invalid one the default)`,
    };
  if (warned && kEff < go)
    return {
      kind: 'allowed',
      why: 'keepip refuses (warning) a value ingress-nginx takes; the smaller default applies',
    };
  if (value.trim() === '') return { kind: 'allowed', why: 'blank: keepip treats it as absent' };
  return {
    kind: 'compat',
    why: `keepip ${keepip}, ingress-nginx ${go}${warned ? '' : ', silently'} (${k.where})`,
    documented: false,
  };
}

function intCases(): string[] {
  const generated = fc.sample(
    fc.oneof(
      fc.nat({ max: 100_000 }).map(String),
      fc.integer({ min: -50, max: 50 }).map((n) => (n >= 0 ? `+${n}` : String(n))),
      fc.nat({ max: 999 }).map((n) => `0${n}`),
      fc.nat({ max: 999 }).map((n) => `${n}s`),
    ),
    { seed: SEED, numRuns: RUNS },
  );
  return [...INT_VALUES, ...generated];
}

test('integer keys read as mapstructure reads them (ParseInt base 0, "" is 0, else the default)', () => {
  const failures: string[] = [];
  const values = intCases();
  for (const k of INT_KEYS) {
    for (const value of values) {
      const { s, topology } = load({ [k.key]: value });
      const keepip = k.read(s);
      const go = goIntValue(k, value);
      const verdict = intVerdict(k, value, keepip, go, reported(topology, k.key));
      try {
        check({ key: k.key, value, keepip, go, verdict });
      } catch (e) {
        failures.push((e as Error).message.split('\n')[0]!);
      }
    }
  }
  assert.deepEqual(grouped(failures), []);
});

// ---------------------------------------------------------------------------------------------
// http-redirect-code (configmap.go:229-241): strconv.Atoi (base 10, sign, leading zeros), then the set.

test('http-redirect-code read as strconv.Atoi then 301/302/307/308 (configmap.go:229)', () => {
  const failures: string[] = [];
  for (const value of [
    '301',
    '302',
    '307',
    '308',
    '+301',
    '0301',
    ' 301',
    '301 ',
    '',
    '200',
    '0x12d',
    '1_301',
    'abc',
  ]) {
    const { s } = load({ 'http-redirect-code': value });
    const n = /^[+-]?[0-9]+$/.test(value) ? Number(value) : null;
    const go = n !== null && [301, 302, 307, 308].includes(n) ? n : 308;
    if (s.httpRedirectCode !== go)
      failures.push(
        `COMPAT http-redirect-code ${JSON.stringify(value)}: keepip ${s.httpRedirectCode}, ingress-nginx ${go}`,
      );
  }
  assert.deepEqual(grouped(failures), []);
});

// proxy-http-version: written as it is into `proxy_http_version {{ … }};`, which nginx reads as one
// word: spaces around it are nothing; "1.0" and "1.1" are the only values nginx takes.
test('proxy-http-version as nginx reads the rendered directive (spaces around it are nothing)', () => {
  const cases: [string, '1.0' | '1.1' | undefined][] = [
    ['1.0', '1.0'],
    [' 1.0', '1.0'],
    ['1.0 ', '1.0'],
    ['1.1', '1.1'],
    ['2', undefined],
    ['1.0.0', undefined],
  ];
  for (const [value, expected] of cases)
    assert.equal(load({ 'proxy-http-version': value }).s.proxyHttpVersion, expected, JSON.stringify(value));
});

// ---------------------------------------------------------------------------------------------
// proxy-body-size: a string written to client_max_body_size; nginx's ngx_parse_offset takes digits
// and one of k K m M g G (no b); anything else and nginx refuses the configuration.

function nginxSize(value: string): number | 'refused' {
  const words = value.trim().split(/\s+/);
  if (words.length !== 1 || words[0] === '') return 'refused';
  const m = /^([0-9]+)([kKmMgG]?)$/.exec(words[0]!);
  if (!m) return 'refused';
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase()] ?? 1);
}

test('proxy-body-size: never a larger limit than nginx would apply', () => {
  const failures: string[] = [];
  for (const value of [
    '8m',
    '8M',
    '1g',
    '0',
    '100',
    '08m',
    ' 8m',
    '8m ',
    '8b',
    '8B',
    '',
    '  ',
    '8 m',
    '+8m',
    '-1',
    '1.5m',
    '8mb',
    '99999999999999g',
  ]) {
    const { s, topology } = load({ 'proxy-body-size': value });
    const go = nginxSize(value);
    const keepip = s.proxyBodySizeBytes;
    const kEff = keepip === 0 ? Number.POSITIVE_INFINITY : keepip;
    if (go === 'refused') {
      // ingress-nginx's configuration is refused; keepip must report it, not silently take a limit.
      if (!reported(topology, 'proxy-body-size') && kEff > 1024 * 1024)
        failures.push(
          `FINDING proxy-body-size ${JSON.stringify(value)}: nginx refuses, keepip silently ${keepip}`,
        );
      else if (!reported(topology, 'proxy-body-size'))
        // (`8b` was 8 bytes, silently, until session 29: now nginx's own 1m with a warning, as the
        // template writes no line for it; scalar-values-differential-nginx checks that against nginx.)
        failures.push(
          `COMPAT proxy-body-size ${JSON.stringify(value)}: nginx refuses the configuration, keepip silently takes ${keepip}`,
        );
      continue;
    }
    const gEff = go === 0 ? Number.POSITIVE_INFINITY : go;
    if (kEff > gEff)
      failures.push(`FINDING proxy-body-size ${JSON.stringify(value)}: keepip ${keepip} > nginx ${go}`);
    else if (kEff !== gEff && !reported(topology, 'proxy-body-size'))
      failures.push(`COMPAT proxy-body-size ${JSON.stringify(value)}: keepip ${keepip}, nginx ${go}`);
  }
  assert.deepEqual(grouped(failures), []);
});

// ---------------------------------------------------------------------------------------------
// Address lists: proxy-real-ip-cidr, whitelist-source-range, denylist-source-range, block-cidrs.

const LIST_VALUES = [
  '10.0.0.0/8',
  '10.0.0.0/8,192.168.1.0/24',
  ' 10.0.0.0/8 , 192.168.1.0/24 ',
  '10.0.0.0/8,',
  ',10.0.0.0/8',
  '10.0.0.0/8,,192.168.1.0/24',
  '10.0.0.0/8, ,192.168.1.0/24',
  '10.0.0.1/8',
  '192.168.1.1',
  '2001:db8::/32',
  '2001:db8::1/32',
  '::ffff:10.0.0.1',
  '10.0.0.0/33',
  '10.0.0.0/8;',
  'all',
  'localhost',
  '10.0.0.0/8 192.168.1.0/24',
  '',
  '  ',
  ',',
  ' , ',
  '0.0.0.0/0',
  '::/0',
  '10.0.0.0/08',
  '256.0.0.1',
];

function listCases(): string[] {
  const entry = fc.oneof(
    fc.ipV4().map((ip) => ip),
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 33 })).map(([ip, p]) => `${ip}/${p}`),
    fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 129 })).map(([ip, p]) => `${ip}/${p}`),
    fc.constantFrom('', ' ', 'garbage', '10.0.0.0/8 '),
  );
  const generated = fc.sample(
    fc.array(entry, { minLength: 1, maxLength: 4 }).map((es) => es.join(',')),
    { seed: SEED, numRuns: RUNS },
  );
  return [...LIST_VALUES, ...generated];
}

/** keepip's list as probes; 'closed' when it fails closed (503 everywhere / trusts nobody). */
function keepipList(model: SourceRangeModel | null): string[] | 'closed' | 'none' {
  if (model === null) return 'none';
  if (!model.valid) return 'closed';
  return covered(null, model.cidrs);
}

function goList(value: string | undefined): string[] | 'refused' | 'none' {
  if (value === undefined) return 'none';
  const entries = splitAndTrimSpace(value);
  if (entries.length === 0) return 'none';
  const list = nginxList(entries);
  return list === null ? 'refused' : covered(list);
}

/** An allow list (whitelist-source-range): open when keepip allows an address nginx would not. */
function allowVerdict(keepip: ReturnType<typeof keepipList>, go: ReturnType<typeof goList>): Verdict {
  if (JSON.stringify(keepip) === JSON.stringify(go)) return { kind: 'equal' };
  if (go === 'refused')
    return keepip === 'closed'
      ? { kind: 'equal' }
      : {
          kind: 'finding',
          why: `nginx refuses the configuration (allow of an invalid entry); keepip applies ${JSON.stringify(keepip)}`,
        };
  if (keepip === 'closed')
    return { kind: 'allowed', why: 'keepip fails closed (error) where nginx takes the list' };
  if (keepip === 'none' || (go !== 'none' && keepip.some((ip) => !go.includes(ip))))
    return { kind: 'finding', why: `keepip allows ${JSON.stringify(keepip)}, nginx ${JSON.stringify(go)}` };
  return {
    kind: 'compat',
    why: `keepip ${JSON.stringify(keepip)}, nginx ${JSON.stringify(go)}`,
    documented: false,
  };
}

/** Whether a written list has an IPv4-mapped entry (keepip denies its IPv4 range, nginx no one). */
function hasMappedEntry(value: string): boolean {
  return splitAndTrimSpace(value).some((entry) => {
    const cidr = nginxCidr(entry);
    return cidr !== null && cidr.family === 'ipv6' && MAPPED.check(cidr.address, 'ipv6');
  });
}

/** A deny list (denylist-source-range, block-cidrs): open when keepip denies fewer addresses. */
function denyVerdict(
  keepip: ReturnType<typeof keepipList>,
  go: ReturnType<typeof goList>,
  value = '',
): Verdict {
  if (JSON.stringify(keepip) === JSON.stringify(go)) return { kind: 'equal' };
  if (go === 'refused')
    return keepip === 'closed'
      ? { kind: 'equal' }
      : {
          kind: 'finding',
          why: `nginx refuses the configuration (deny of an invalid entry); keepip applies ${JSON.stringify(keepip)}`,
        };
  if (keepip === 'closed')
    return { kind: 'allowed', why: 'keepip fails closed (error) where nginx takes the list' };
  const goIps = go === 'none' ? [] : go;
  const kIps = keepip === 'none' ? [] : keepip;
  if (goIps.some((ip) => !kIps.includes(ip)))
    return { kind: 'finding', why: `keepip denies ${JSON.stringify(kIps)}, nginx ${JSON.stringify(goIps)}` };
  if (hasMappedEntry(value))
    return {
      kind: 'allowed',
      why: 'an IPv4-mapped deny entry denies its IPv4 range in keepip, no one in nginx (docs/client-ip.md): stricter',
    };
  return {
    kind: 'compat',
    why: `keepip ${JSON.stringify(keepip)}, nginx ${JSON.stringify(go)}`,
    documented: false,
  };
}

test('whitelist-source-range, denylist-source-range, block-cidrs: never more open than nginx', () => {
  const failures: string[] = [];
  for (const value of listCases()) {
    const { s } = load({
      'whitelist-source-range': value,
      'denylist-source-range': value,
      'block-cidrs': value,
    });
    const go = goList(value);
    const cases: [string, SourceRangeModel | null, typeof denyVerdict][] = [
      ['whitelist-source-range', s.defaultAllow, allowVerdict],
      ['denylist-source-range', s.defaultDeny, denyVerdict],
      ['block-cidrs', s.blockCidrs, denyVerdict],
    ];
    for (const [key, model, verdictOf] of cases) {
      const keepip = keepipList(model);
      try {
        check({ key, value, keepip, go, verdict: verdictOf(keepip, go, value) });
      } catch (e) {
        failures.push((e as Error).message.split('\n')[0]!);
      }
    }
  }
  assert.deepEqual(grouped(failures), []);
});

test('proxy-real-ip-cidr: keepip never trusts a peer ingress-nginx does not', () => {
  const failures: string[] = [];
  for (const value of [...listCases(), undefined]) {
    const { s } = load(value === undefined ? {} : { 'proxy-real-ip-cidr': value });
    const entries = value === undefined ? ['0.0.0.0/0'] : splitAndTrimSpace(value);
    const list = nginxList(entries);
    // nginx refusing the configuration trusts nobody new; no entry at all trusts nobody (no set_real_ip_from).
    const go = list === null ? [] : covered(list);
    const keepip = covered(null, s.trustedCidrs);
    const extra = keepip.filter((ip) => !go.includes(ip));
    if (extra.length > 0)
      failures.push(
        `FINDING proxy-real-ip-cidr ${JSON.stringify(value)}: keepip also trusts ${extra.join(' ')}`,
      );
    else if (keepip.length !== go.length && list !== null)
      failures.push(
        `COMPAT proxy-real-ip-cidr ${JSON.stringify(value)}: keepip ${keepip.join(' ')}, nginx ${go.join(' ')}`,
      );
  }
  assert.deepEqual(grouped(failures), []);
});

test('the Go transcription: ParseInt base 0 and ParseBool as Go has them', () => {
  assert.equal(goParseInt0('010'), 8n);
  assert.equal(goParseInt0('0x10'), 16n);
  assert.equal(goParseInt0('1_0'), 10n);
  assert.equal(goParseInt0('08'), null);
  assert.equal(goParseInt0(''), 0n);
  assert.equal(goParseInt0('+5'), 5n);
  assert.equal(goParseInt0(' 5'), null);
  assert.equal(goParseInt0('9223372036854775808'), null);
  assert.equal(goBool('', true), false);
  assert.equal(goBool(' true', false), false);
  assert.deepEqual(splitAndTrimSpace(' , a,,b ,'), ['', 'a', 'b']);
});
