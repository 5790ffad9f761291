// The address lists, keepip against REAL nginx 1.22 configured as ingress-nginx renders them
// (mirror /work/.mirror/kubernetes+ingress-nginx/repo, HEAD dbb11b92d):
// - ConfigMap whitelist-source-range / denylist-source-range / block-cidrs / proxy-real-ip-cidr are
//   split by splitAndTrimSpace (internal/ingress/controller/template/configmap.go:181-216, 496-507:
//   FieldsFunc on `,`, then TrimSpace) and written RAW: the whitelist/denylist defaults are copied raw
//   into each location without the annotation (annotations/ipallowlist, ipdenylist Parse), rendered as
//   `deny …;` then `allow …; deny all;` (nginx.tmpl:1206-1213); block-cidrs as `deny …;` at http level
//   (nginx.tmpl:567, here at server level: the same inheritance); proxy-real-ip-cidr, with
//   use-forwarded-headers, as `real_ip_header X-Forwarded-For; real_ip_recursive on; set_real_ip_from
//   …;` (nginx.tmpl:77-92; absent: 0.0.0.0/0, configmap.go:191-196);
// - the annotations allowlist-source-range (alias whitelist-source-range, read only while the first is
//   empty: parser.checkAnnotation) and denylist-source-range go through parser.ValidateCIDRs and
//   internal/net.ParseIPNets (Go's net.ParseCIDR keyed by IPNet.String(), else net.ParseIP keyed by
//   IP.String()); an invalid one is a LocationDeniedError: the location renders `return 503;`
//   (nginx.tmpl:1428-1429), which runs before the access phase;
// - a line nginx cannot parse fails `nginx -t`: ingress-nginx keeps its previous configuration.
// Go's parsers are transcribed below (the only model here); everything nginx does is nginx's own: each
// distinct rendered entry goes through `nginx -t` (its error names the line, so one run per refused
// entry: a list is refused iff one of its lines is, as nginx stops at the first), then one nginx serves
// every accepted host (one server per host, by name), probed from several 127.x sources (and with
// X-Forwarded-For chains), its answer the status and `add_header X-Client $remote_addr always` on a
// static root. keepip: one in-process gateway, reload() per round (a ConfigMap and four Ingresses), the
// status and its access line's first field.
//
// Claims (docs/client-ip.md):
//   "the prefix length is decimal digits (`/08` is accepted, as Go's `net.ParseCIDR` accepts it)"
//   "an annotation's list passes through Go's ParseCIDR there, so `allowlist-source-range: ::ffff:0:0/96`
//   is `0.0.0.0/0` ... a ConfigMap list reaches nginx as written, and nginx reads `allow ::ffff:0:0/96;`
//   and `set_real_ip_from ::ffff:…;` as IPv6, matching no IPv4 client ... while
//   `denylist-source-range` and `block-cidrs` deny their IPv4 range (stricter than nginx)"
//   "`parseConfigMapSourceRange(value)` reads ConfigMap lists: empty → no list, empty fields (`,,`)
//   skipped ..., a bad entry or one of spaces alone (` , `, ...) → invalid (fail closed)"
//   "`010.0.0.1` ... rejected"; "block-cidrs always apply"; "Invalid ConfigMap lists fail closed (503
//   on the locations using them) where nginx would refuse to load the whole configuration";
//   "Blank annotations fail closed rather than falling back to the ConfigMap default".
// Claims (docs/ingress-nginx-compat.md, ConfigMap rows): proxy-real-ip-cidr "Invalid value: ... the
//   configuration is not served (the gateway does not start, a reload keeps the trust it had), as nginx
//   refuses it. An IPv4-mapped entry (`::ffff:…`) trusts no IPv4 peer, as nginx reads it";
//   whitelist/denylist-source-range "Empty entries are skipped ...; a bad entry fails closed. An
//   IPv4-mapped entry admits nobody in whitelist-source-range ... and denies its IPv4 range in
//   denylist-source-range (stricter than nginx)"; block-cidrs "denied everywhere; a bad entry fails
//   closed"; difference 4 "Invalid address lists fail closed everywhere: an invalid ConfigMap list or
//   annotation answers 503 (nginx would refuse to reload and keep the previous configuration)".
//
// Verdicts, per probe: keepip admits a client nginx denies, or settles on a client further left in
// X-Forwarded-For (trusts a hop nginx does not) = FINDING. nginx refuses a list and keepip fails closed
// (503; the reload refused for proxy-real-ip-cidr) = equal. nginx refuses an access list and keepip
// admits with it, or a trust list and keepip trusts with it = FINDING (the documented answer to a list
// nginx refuses is to fail closed). keepip stricter: the ALLOWED table when the docs say so, REPORTED
// when they do not; each row is pinned by a fixed round whose observation the table states, so neither
// table can rot. Anything else fails as unexplained.
//
// Found here, fixed (FINDING_ROUNDS: each failed before):
// - nginx refuses every entry whose address is 255.255.255.255 (ngx_inet_addr returns INADDR_NONE for
//   it, so `allow 255.255.255.255;`, `deny 255.255.255.255/32;`, `allow ::ffff:255.255.255.255;` and
//   `set_real_ip_from 255.255.255.255/32;` fail nginx -t; Go takes them, so an annotation renders them
//   too); keepip served such a list as written (a whitelist or block-cidrs of it admitted clients, a
//   proxy-real-ip-cidr of it was not refused): now the list is invalid and fails closed;
// - a prefix length of four or more digits (`/0008`, as Go and nginx read it) failed closed.
// Found here and kept (ALLOWED mapped-client-matched-as-ipv4, invariant I4): nginx's access module
// checks a client it holds as IPv4-mapped (a trusted X-Forwarded-For entry `::ffff:10.1.2.4`) against the
// IPv6 rules when the location has no IPv4 rule, so `deny ::/0` denies it; keepip's client is 10.1.2.4,
// which no IPv6 prefix matches.
//
// SOURCE_LISTS_SEED=<n>|random and SOURCE_LISTS_ROUNDS=<n> explore more (defaults: a fixed seed, 24).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { count, type Findings, note, show } from '../helpers/findings.ts';
import {
  goIpString,
  goParseAddr,
  goParseCidr,
  goParseIPNets,
  goTrimSpace,
  masked,
  splitAndTrimSpace,
} from '../helpers/go-net.ts';
import { normalizeString } from '../helpers/go-annotation-validators.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { childEnv, requireBinary } from '../helpers/process.ts';

const chosenSeed = process.env.SOURCE_LISTS_SEED;
const SEED = chosenSeed === 'random' ? Date.now() % 2 ** 31 : Number(chosenSeed ?? 20260712);
const ROUNDS = Number(process.env.SOURCE_LISTS_ROUNDS ?? 24);
const HOSTS_PER_ROUND = 4;
/** The probes' sources (one TCP peer each). Entries are drawn around them so that lists hit them. */
const SOURCES = ['127.0.0.1', '127.0.0.2', '127.0.1.7', '127.1.2.3', '127.128.0.1', '127.255.255.254'];
/** nginx's set_real_ip_from resolves a name: bound a slow resolver (garbage entries are looked up). */
const RESOLVER_ENV = { RES_OPTIONS: 'timeout:1 attempts:1' };
const PROBES_AT_ONCE = 12;

/** An address as Go prints it (mapped folded to IPv4), for comparing nginx's $remote_addr with keepip's. */
function canonical(address: string): string {
  const parsed = goParseAddr(address);
  return parsed === null ? address : goIpString(parsed.bytes);
}

// ---------------------------------------------------------------------------------------------
// ingress-nginx, transcribed: how a round (a ConfigMap and its Ingresses) becomes nginx lines.

interface HostLists {
  /** The annotations, by short name; absent keys are absent annotations. */
  allowlist?: string;
  whitelist?: string;
  denylist?: string;
}

interface Round {
  label: string;
  useForwarded: boolean;
  /** proxy-real-ip-cidr (only with use-forwarded-headers); absent: ingress-nginx's 0.0.0.0/0. */
  trust?: string;
  whitelist?: string;
  denylist?: string;
  block?: string;
  hosts: HostLists[];
  /** One X-Forwarded-For chain per source (used with use-forwarded-headers). */
  chains: string[][];
  /** The sources probed (default SOURCES). */
  sources?: string[];
}

type AnnotationRead = { kind: 'missing' } | { kind: 'denied' } | { kind: 'list'; entries: string[] };

/**
 * ipallowlist / ipdenylist Parse over parser.checkAnnotation: `names` in alias order; the next name is
 * read only while the value is ""; a non-empty value is validated (ValidateCIDRs); parseString then
 * reads the chosen name: absent is "missing" (the ConfigMap default), "" is denied.
 */
function readAnnotation(all: Record<string, string>, names: string[]): AnnotationRead {
  if (Object.keys(all).length === 0) return { kind: 'missing' };
  let name = names[0]!;
  let value = all[name] ?? '';
  for (const alias of names.slice(1)) {
    if (value !== '') break;
    if (all[alias] !== undefined && all[alias] !== '') [name, value] = [alias, all[alias]!];
  }
  if (value !== '' && goParseIPNets(value) === null) return { kind: 'denied' };
  if (all[name] === undefined) return { kind: 'missing' };
  const entries = goParseIPNets(normalizeString(value));
  return normalizeString(value) === '' || entries === null ? { kind: 'denied' } : { kind: 'list', entries };
}

function annotationsOf(h: HostLists): Record<string, string> {
  const out: Record<string, string> = {};
  if (h.allowlist !== undefined) out['allowlist-source-range'] = h.allowlist;
  if (h.whitelist !== undefined) out['whitelist-source-range'] = h.whitelist;
  if (h.denylist !== undefined) out['denylist-source-range'] = h.denylist;
  return out;
}

/** What ingress-nginx writes for one host of a round. */
interface Rendered {
  block: string[];
  /** set_real_ip_from entries; null without use-forwarded-headers (no realip lines at all). */
  trust: string[] | null;
  denied: boolean;
  deny: string[];
  allow: string[];
}

function render(round: Round, host: HostLists): Rendered {
  const all = annotationsOf(host);
  const allow = readAnnotation(all, ['allowlist-source-range', 'whitelist-source-range']);
  const deny = readAnnotation(all, ['denylist-source-range']);
  const defaults = (value: string | undefined) => (value === undefined ? [] : splitAndTrimSpace(value));
  const listOf = (read: AnnotationRead, fallback: string | undefined) =>
    read.kind === 'list' ? read.entries : defaults(fallback);
  return {
    block: defaults(round.block),
    trust: round.useForwarded ? (round.trust === undefined ? ['0.0.0.0/0'] : defaults(round.trust)) : null,
    denied: allow.kind === 'denied' || deny.kind === 'denied',
    deny: listOf(deny, round.denylist),
    allow: listOf(allow, round.whitelist),
  };
}

/** The host's server block, as nginx.tmpl lays out these lines (http-level ones at server level). */
function serverText(port: number, name: string, www: string, r: Rendered): string {
  const access = r.denied
    ? ['return 503;']
    : [
        ...r.deny.map((e) => `deny ${e};`),
        ...r.allow.map((e) => `allow ${e};`),
        ...(r.allow.length > 0 ? ['deny all;'] : []),
      ];
  const realIp =
    r.trust === null
      ? []
      : [
          'real_ip_header X-Forwarded-For;',
          'real_ip_recursive on;',
          ...r.trust.map((e) => `set_real_ip_from ${e};`),
        ];
  return [
    `server { listen 127.0.0.1:${port}; server_name ${name};`,
    ...r.block.map((e) => `deny ${e};`),
    ...realIp,
    `location / { root ${www}; add_header X-Client $remote_addr always;`,
    ...access,
    '} }',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// nginx -t: which rendered lines nginx refuses.

function oracleConfig(dir: string, context: 'access' | 'realip', entries: readonly string[]) {
  const head = [
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${join(dir, 'oracle.pid')};`,
    'events { }',
    'http {',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${join(dir, t)};`),
    'server {',
    ...(context === 'access' ? ['location / {'] : []),
  ];
  const line = context === 'access' ? (e: string) => `allow ${e};` : (e: string) => `set_real_ip_from ${e};`;
  const text = [...head, ...entries.map(line), ...(context === 'access' ? ['}'] : []), '}', '}', ''];
  return { text: text.join('\n'), firstLine: head.length + 1 };
}

function nginxTest(dir: string, file: string): Promise<{ ok: boolean; stderr: string }> {
  const args = ['-t', '-q', '-p', dir, '-e', join(dir, 'oracle-error.log'), '-c', file];
  return new Promise((resolve) => {
    execFile(requireBinary('nginx'), args, { env: childEnv(RESOLVER_ENV) }, (error, _out, stderr) =>
      resolve({ ok: error === null, stderr: String(stderr) }),
    );
  });
}

/** The entries of `entries` nginx refuses in `context`: one `nginx -t` per refused entry, plus one. */
async function refusedIn(
  dir: string,
  name: string,
  context: 'access' | 'realip',
  entries: readonly string[],
): Promise<string[]> {
  const refused: string[] = [];
  const remaining = [...entries];
  for (let attempt = 0; attempt <= entries.length; attempt++) {
    const { text, firstLine } = oracleConfig(dir, context, remaining);
    const file = join(dir, `${name}.conf`);
    writeFileSync(file, text);
    const result = await nginxTest(dir, file);
    if (result.ok) return refused;
    const at = /\[emerg\].* in \S+:(\d+)\s*$/m.exec(result.stderr);
    const index = at === null ? -1 : Number(at[1]) - firstLine;
    if (index < 0 || index >= remaining.length) throw new Error(`nginx -t: ${result.stderr}\n${text}`);
    refused.push(remaining[index]!);
    remaining.splice(index, 1);
  }
  throw new Error('nginx -t never accepted the remaining entries');
}

/** Every distinct access (`allow`/`deny`) and realip entry of the rounds that nginx refuses. */
async function learnRefusals(
  rendered: readonly Rendered[],
): Promise<{ access: Set<string>; realip: Set<string> }> {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-lists-oracle-'));
  try {
    const access = [...new Set(rendered.flatMap((r) => [...r.block, ...r.deny, ...r.allow]))];
    const realip = [...new Set(rendered.flatMap((r) => r.trust ?? []))];
    for (const e of [...access, ...realip])
      assert.ok(!e.includes('\n'), `an entry is one line: ${JSON.stringify(e)}`);
    // Four groups at once: nginx -t is mostly process start-up.
    const jobs = [
      ...chunks(access, 3).map((c, i) => ['access', `a${i}`, c] as const),
      ...chunks(realip, 2).map((c, i) => ['realip', `r${i}`, c] as const),
    ];
    const found = await mapLimited(jobs, 4, ([context, name, list]) => refusedIn(dir, name, context, list));
    const refused = { access: new Set<string>(), realip: new Set<string>() };
    jobs.forEach(([context], i) => {
      for (const e of found[i]!) refused[context].add(e);
    });
    return refused;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function chunks<T>(items: readonly T[], n: number): T[][] {
  return Array.from({ length: n }, (_, k) => items.filter((_, i) => i % n === k)).filter((c) => c.length > 0);
}

// ---------------------------------------------------------------------------------------------
// Generated rounds: entries around the probes' sources (127.0.0.0/8), IPv4, IPv6, IPv4-mapped and
// -compatible, prefixes 0..33 / 0..129, host bits set, leading zeros, spaces, empty fields, names,
// `all`, `unix:`, and what nginx's parser takes that Go's does not.

const octet = fc.oneof(
  { arbitrary: fc.constantFrom(0, 1, 2, 7, 128, 255), weight: 3 },
  { arbitrary: fc.nat(255), weight: 1 },
);
const loopback = fc.tuple(octet, octet, octet).map(([a, b, c]) => [127, a, b, c]);
const elsewhere = fc.constantFrom(
  [10, 1, 2, 3],
  [192, 0, 2, 1],
  [0, 0, 0, 0],
  [203, 0, 113, 9],
  [128, 0, 0, 1],
);
const v4 = fc.oneof({ arbitrary: loopback, weight: 5 }, { arbitrary: elsewhere, weight: 1 });
/** A prefix, sometimes with leading zeros ("/08", "/0008": Go's dtoi and nginx's ngx_atoi take both). */
const prefix = (arb: fc.Arbitrary<number>) =>
  fc
    .tuple(arb, fc.oneof({ arbitrary: fc.constant(''), weight: 30 }, fc.constantFrom('0', '000')))
    .map(([n, zeros]) => `/${zeros}${n}`);
const v4Prefix = fc.oneof(
  { arbitrary: fc.constantFrom(0, 1, 8, 9, 15, 16, 17, 24, 25, 31, 32), weight: 4 },
  { arbitrary: fc.integer({ min: 0, max: 33 }), weight: 1 },
);
const v4Entry = fc
  .tuple(v4, fc.option(prefix(v4Prefix), { nil: '', freq: 3 }), fc.integer({ min: 0, max: 150 }))
  .map(([o, p, pad]) => `${o.map((x, i) => (i === pad ? `0${x}` : `${x}`)).join('.')}${p}`);
const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
const v6Prefix = fc.oneof(
  { arbitrary: fc.constantFrom(0, 64, 80, 95, 96, 97, 104, 112, 120, 127, 128), weight: 4 },
  { arbitrary: fc.integer({ min: 0, max: 129 }), weight: 1 },
);
/** IPv4-mapped (several spellings), IPv4-compatible and NAT64 forms of an IPv4 address. */
const embedded = fc
  .tuple(v4, fc.constantFrom('mapped', 'MAPPED', 'long', 'hex', 'compat', 'nat64'))
  .map(([o, form]) => {
    const dotted = o.join('.');
    if (form === 'mapped') return `::ffff:${dotted}`;
    if (form === 'MAPPED') return `::FFFF:${dotted}`;
    if (form === 'long') return `0:0:0:0:0:ffff:${dotted}`;
    if (form === 'hex') return `::ffff:${hex(o[0]!, o[1]!)}:${hex(o[2]!, o[3]!)}`;
    return form === 'compat' ? `::${dotted}` : `64:ff9b::${dotted}`;
  });
const v6Entry = fc
  .tuple(
    fc.oneof(
      { arbitrary: embedded, weight: 3 },
      {
        arbitrary: fc.constantFrom('2001:db8::5', '::1', '::', 'fe80::1', 'ffff::', '::ffff:0:0'),
        weight: 1,
      },
    ),
    fc.option(prefix(v6Prefix), { nil: '', freq: 3 }),
  )
  .map(([a, p]) => `${a}${p}`);
/** Entries one of the parsers may take and the other not (or neither): nginx reads them raw. */
const odd = fc.constantFrom(
  'all',
  'unix:',
  'localhost',
  'no-such-host.invalid',
  '127.1',
  '2130706433',
  '0x7f.0.0.1',
  '127..0.0/8',
  '...',
  '127.0.0.1/',
  '127.0.0.1/+8',
  'fe80::1%lo',
  '[::1]',
  '127.0.0.1:80',
  '127.0.0.1/8/8',
  '"127.0.0.0/8"',
  '127.0.0.9; allow all',
  '*',
  '255.255.255.255',
  '255.255.255.255/32',
  '::ffff:255.255.255.255',
  '127.0.0.1 /8',
);
const entry = fc.oneof(
  { arbitrary: v4Entry, weight: 30 },
  { arbitrary: v6Entry, weight: 10 },
  { arbitrary: odd, weight: 1 },
);
const pad = fc.constantFrom('', '', '', '', '', ' ', ' ', '\t', '\u00a0');
const separator = fc.oneof(
  { arbitrary: fc.constantFrom(',', ', ', ' ,'), weight: 12 },
  { arbitrary: fc.constantFrom(',,', ', ,'), weight: 1 },
);
const listValue = fc.oneof(
  {
    arbitrary: fc
      .array(fc.tuple(pad, entry, pad, separator), { minLength: 1, maxLength: 4 })
      .map((parts) => parts.map(([a, e, b, s], i) => `${i > 0 ? s : ''}${a}${e}${b}`).join('')),
    weight: 40,
  },
  { arbitrary: fc.constantFrom('', ' ', ','), weight: 1 },
);
const hostArb: fc.Arbitrary<HostLists> = fc.record(
  {
    allowlist: fc.oneof({ arbitrary: listValue, weight: 16 }, { arbitrary: fc.constant(''), weight: 1 }),
    whitelist: listValue,
    denylist: listValue,
  },
  { requiredKeys: [] },
);
/** X-Forwarded-For entries: none is a probe's source, so where each side settles is unambiguous. */
const xffEntry = fc.constantFrom(
  '127.0.0.3',
  '127.0.0.5',
  '127.1.9.9',
  '127.200.0.1',
  '127.255.0.9',
  '10.1.2.3',
  '203.0.113.9',
  '192.0.2.1',
  '2001:db8::5',
  '::1',
  '::ffff:127.0.0.8',
  '::ffff:10.1.2.4',
  '::127.0.0.9',
  '127.0.0.6:8080',
  '[2001:db8::6]:443',
  '[::ffff:127.0.0.7]:80',
);
const chain = fc.uniqueArray(xffEntry, { minLength: 1, maxLength: 4, selector: (e) => canonical(hostOf(e)) });
const roundArb: fc.Arbitrary<Omit<Round, 'label'>> = fc
  .record({
    useForwarded: fc.boolean(),
    trust: fc.option(listValue, { nil: undefined, freq: 4 }),
    whitelist: fc.option(listValue, { nil: undefined, freq: 2 }),
    denylist: fc.option(listValue, { nil: undefined, freq: 2 }),
    block: fc.option(listValue, { nil: undefined, freq: 2 }),
    hosts: fc.array(hostArb, { minLength: HOSTS_PER_ROUND, maxLength: HOSTS_PER_ROUND }),
    chains: fc.array(chain, { minLength: SOURCES.length, maxLength: SOURCES.length }),
  })
  .map((r) => (r.useForwarded ? r : { ...r, trust: undefined }));

/** The address of an X-Forwarded-For entry without its port (`[v6]:p`, `v4:p`), as nginx reads it. */
function hostOf(e: string): string {
  if (e.startsWith('[')) return e.slice(1, e.indexOf(']'));
  return e.includes('.') && e.split(':').length === 2 ? e.split(':')[0]! : e;
}

// ---------------------------------------------------------------------------------------------
// Explaining a difference: what kind of entry it comes from.

/** The kind of an entry, for naming the differences it causes. */
function entryClass(e: string): string {
  // nginx reads 255.255.255.255 as no address: keepip's lists refuse it too (set_real_ip_from takes
  // the bare form as a host name).
  if (/^(?:[0-9a-f:]*:)?255\.255\.255\.255(?:\/|$)/i.test(e)) return 'all-ones';
  if (goParseCidr(e) !== null || goParseAddr(e) !== null) return 'go-valid';
  if (e === '') return 'blank';
  if (e.includes('%')) return 'zone';
  if (e === 'all' || e === 'unix:') return e;
  if (/^".*"$/.test(e)) return 'quoted';
  if (e.includes(';')) return 'injection';
  if (/^[0-9.]+(\/[0-9]+)?$/.test(e) && /(^|\.)0[0-9]/.test(e)) return 'leading-zero';
  if (/^[0-9.]+(\/[0-9]+)?$/.test(e) && /\.\.|^\.|\.(\/|$)/.test(e)) return 'empty-octet';
  if (/^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$/i.test(e)) return 'inet-aton';
  if (/^[a-z][a-z0-9.-]*$/i.test(e)) return 'hostname';
  return 'garbage';
}

/** The first entry class of a list that keepip (Go's syntax) does not take, or 'no-entries'. */
function oddClass(entries: readonly string[]): string {
  if (entries.length === 0) return 'no-entries';
  return entries.map(entryClass).find((c) => c !== 'go-valid') ?? 'go-valid';
}

/** A network as Go reads it (mapped folded), as 16 bytes and a prefix over them. */
function goNetwork(e: string): { bytes: number[]; bits: number } | null {
  const slash = e.indexOf('/');
  const address = goParseAddr(slash < 0 ? e : e.slice(0, slash));
  if (address === null) return null;
  const n = slash < 0 ? (address.is4 ? 32 : 128) : Number(e.slice(slash + 1));
  if (!Number.isInteger(n)) return null;
  return { bytes: address.bytes, bits: address.is4 ? 96 + n : n };
}

/** Whether `client` falls in entry `e` read as Go reads it (a mapped entry is its IPv4 range). */
function covers(e: string, client: string): boolean {
  const network = goNetwork(e);
  const address = goParseAddr(client);
  if (network === null || address === null) return false;
  return masked(network.bytes, network.bits).every((x, i) => x === masked(address.bytes, network.bits)[i]);
}

/** The raw entries of the lists that apply to a host: the annotation's, else the ConfigMap default's. */
function listsInEffect(round: Round, host: HostLists): string[][] {
  const annotation = (v: string) => v.split(',').map(goTrimSpace);
  const configMap = (v: string | undefined) => (v === undefined ? [] : splitAndTrimSpace(v));
  const allow =
    host.allowlist !== undefined && host.allowlist !== ''
      ? annotation(host.allowlist)
      : host.whitelist !== undefined && host.whitelist !== ''
        ? annotation(host.whitelist)
        : host.allowlist !== undefined
          ? ['']
          : configMap(round.whitelist);
  const deny = host.denylist !== undefined ? annotation(host.denylist) : configMap(round.denylist);
  return [configMap(round.block), deny, allow];
}

// ---------------------------------------------------------------------------------------------
// Observations and verdicts.

interface Probe {
  id: number;
  round: number;
  host: number;
  from: string;
  chain: string[] | null;
}

type Answer = { status: number; client: string } | 'refused';

/** One host as both sides see it. */
interface HostCase {
  round: Round;
  host: HostLists;
  name: string;
  rendered: Rendered;
  /** The host's lines nginx refuses (`nginx -t`). */
  refusedAccess: string[];
  refusedTrust: string[];
}

const FINDING_KINDS = [
  'admits-what-nginx-denies',
  'trusts-a-hop-nginx-does-not',
  'serves-an-access-list-nginx-refuses',
  'trusts-with-a-list-nginx-refuses',
  'serves-a-trust-list-nginx-refuses',
] as const;

function observation(a: Answer, withClient: boolean): string {
  if (a === 'refused') return 'refused';
  return withClient ? `${a.status} ${a.client}` : `${a.status}`;
}

function describeProbe(c: HostCase, p: Probe, n: Answer, k: Answer): string {
  const r = c.round;
  const lists = JSON.stringify({
    trust: r.useForwarded ? (r.trust ?? '(absent)') : undefined,
    whitelist: r.whitelist,
    denylist: r.denylist,
    block: r.block,
    annotations: annotationsOf(c.host),
  });
  const xff = p.chain === null ? '' : ` X-Forwarded-For: ${p.chain.join(', ')}`;
  const w = r.useForwarded;
  return `${c.round.label} ${lists} from ${p.from}${xff}: nginx ${observation(n, w)}, keepip ${observation(k, w)}`;
}

/** How far left the walk went: 0 the peer, i the i-th entry from the right; NaN if neither. */
function depth(p: Probe, client: string): number {
  if (canonical(client) === canonical(p.from)) return 0;
  if (p.chain === null) return Number.NaN;
  const i = p.chain.findIndex((e) => canonical(hostOf(e)) === canonical(client));
  return i < 0 ? Number.NaN : p.chain.length - i;
}

/** nginx refuses the host's configuration. */
function judgeRefused(c: HostCase, p: Probe, k: Answer): string | null {
  if (k === 'refused') return null;
  if (c.refusedAccess.length > 0) {
    if (k.status === 503) return null;
    if (k.status === 200) return 'serves-an-access-list-nginx-refuses';
    return `refused-list-read-as-${k.status}:${oddClass(c.refusedAccess)}`;
  }
  // Without X-Forwarded-For a probe shows nothing of the trust list.
  if (p.chain === null) return null;
  if (depth(p, k.client) > 0) return 'trusts-with-a-list-nginx-refuses';
  const odd = oddClass(splitAndTrimSpace(c.round.trust ?? ''));
  return odd === 'blank' ? 'trust-list-nginx-refuses-served:blank' : 'serves-a-trust-list-nginx-refuses';
}

/** nginx admits `client` (or denies it 403), keepip denies it with `status`. */
function explainDenial(c: HostCase, client: string, status: number): string {
  const [block, deny, allow] = listsInEffect(c.round, c.host);
  if (status === 503) {
    if (c.host.allowlist === undefined && c.host.whitelist === '') return 'blank-annotation-default';
    return `fail-closed:${oddClass([...block!, ...deny!, ...allow!].filter((e) => entryClass(e) !== 'go-valid'))}`;
  }
  const ownRules = !c.rendered.denied && c.rendered.deny.length + c.rendered.allow.length > 0;
  if (ownRules && block!.some((e) => covers(e, client))) return 'block-cidrs-always-apply';
  const mapped = [...block!, ...deny!].filter((e) => /^[0:]*:ffff:/i.test(e));
  if (mapped.some((e) => covers(e, client))) return 'mapped-deny-entry';
  return `denies-more-unexplained:${status}`;
}

/** The verdict on one probe: null when both sides agree. */
function judge(c: HostCase, p: Probe, n: Answer, k: Answer): string | null {
  if (n === 'refused') return judgeRefused(c, p, k);
  if (k === 'refused') return `trust-refused:${oddClass(splitAndTrimSpace(c.round.trust ?? ''))}`;
  if (c.round.useForwarded) {
    const [dn, dk] = [depth(p, n.client), depth(p, k.client)];
    if (dk > dn) return 'trusts-a-hop-nginx-does-not';
    if (!(dk === dn)) return `client-differs-unexplained:${dn}/${dk}`;
  }
  if (n.status !== k.status) {
    if (k.status === 200)
      return /^::ffff:/i.test(n.client) && canonical(n.client) === k.client
        ? 'mapped-client-matched-as-ipv4'
        : 'admits-what-nginx-denies';
    // nginx admits, or denies with 403 where keepip fails closed (503): a list keepip refuses.
    if (n.status === 200 || k.status === 503) return explainDenial(c, canonical(k.client), k.status);
    return `deny-status-differs:${n.status}/${k.status}`;
  }
  if (n.client === k.client) return null;
  if (canonical(n.client) !== k.client) return 'client-text-differs';
  return /^::ffff:/i.test(n.client) ? 'mapped-client-logged-as-ipv4' : 'ipv6-client-logged-rfc5952';
}

// ---------------------------------------------------------------------------------------------
// The tables: each row a fixed round (one host) and what a probe of it shows on each side.

interface Row {
  kind: string;
  why: string;
  lists: Partial<Omit<Round, 'label' | 'hosts' | 'chains' | 'sources'>> & { host?: HostLists };
  from: string;
  /** Sent as X-Forwarded-For (rounds with use-forwarded-headers). */
  chain?: string[];
  nginx: string;
  keepip: string;
}

/** keepip stricter than nginx, and the docs say so. */
const ALLOWED: Row[] = [
  {
    kind: 'trust-refused:all-ones',
    why: 'docs/client-ip.md: an entry whose address is 255.255.255.255 makes a list invalid; for proxy-real-ip-cidr the configuration is not served (nginx takes the bare address in set_real_ip_from as a host name, which trusts no client)',
    lists: { useForwarded: true, trust: '255.255.255.255, 127.0.0.0/8' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 203.0.113.9',
    keepip: 'refused',
  },
  {
    kind: 'mapped-client-matched-as-ipv4',
    why: "docs/client-ip.md section 1 and invariant I4: a mapped client is IPv4 and no IPv6 prefix matches it (nginx's access module checks a mapped client against a location's IPv6 rules when it has no IPv4 rule, so denylist ::/0 denies ::ffff:10.1.2.4 there)",
    lists: { useForwarded: true, trust: '127.0.0.0/8', host: { denylist: '::/0' } },
    from: '127.0.0.1',
    chain: ['::ffff:10.1.2.4'],
    nginx: '403 ::ffff:10.1.2.4',
    keepip: '200 10.1.2.4',
  },
  {
    kind: 'block-cidrs-always-apply',
    why: 'docs/ingress-nginx-compat.md difference 1: nginx drops block-cidrs on a location with its own allow/deny lines',
    lists: { block: '127.0.0.2', host: { allowlist: '127.0.0.0/8' } },
    from: '127.0.0.2',
    nginx: '200',
    keepip: '403',
  },
  {
    kind: 'mapped-deny-entry',
    why: 'docs/client-ip.md: a mapped entry in denylist-source-range denies its IPv4 range (nginx: no one)',
    lists: { denylist: '::ffff:127.0.0.0/104' },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '403',
  },
  {
    kind: 'mapped-deny-entry',
    why: 'docs/client-ip.md: so does a mapped entry in block-cidrs',
    lists: { block: '::ffff:127.0.0.1' },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '403',
  },
  {
    kind: 'blank-annotation-default',
    why: 'docs/client-ip.md section 7: a blank annotation fails closed (ingress-nginx reads an empty whitelist-source-range as absent: the ConfigMap default)',
    lists: { whitelist: '127.0.0.0/8', host: { whitelist: '' } },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '503',
  },
  {
    kind: 'mapped-client-logged-as-ipv4',
    why: 'docs/client-ip.md section 1: ::ffff:10.0.0.1 is IPv4 10.0.0.1 everywhere, logs included ($remote_addr in nginx keeps the IPv6 text)',
    lists: { useForwarded: true, trust: '127.0.0.0/8' },
    from: '127.0.0.1',
    chain: ['::ffff:10.1.2.3'],
    nginx: '200 ::ffff:10.1.2.3',
    keepip: '200 10.1.2.3',
  },
  {
    kind: 'ipv6-client-logged-rfc5952',
    why: 'docs/client-ip.md section 1: IPv6 is formatted in RFC 5952 form (nginx writes an IPv4-compatible address as ::127.0.0.9)',
    lists: { useForwarded: true, trust: '127.0.0.0/8' },
    from: '127.0.0.1',
    chain: ['::127.0.0.9'],
    nginx: '200 ::127.0.0.9',
    keepip: '200 ::7f00:9',
  },
  {
    kind: 'trust-refused:zone',
    why: 'docs/client-ip.md section 1: no zone ids (nginx resolves fe80::1%lo in set_real_ip_from through getaddrinfo)',
    lists: { useForwarded: true, trust: 'fe80::1%lo, 127.0.0.0/8' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 203.0.113.9',
    keepip: 'refused',
  },
  {
    kind: 'fail-closed:leading-zero',
    why: 'docs/client-ip.md section 1: `010.0.0.1` is rejected (nginx reads 0127.0.0.1 as 127.0.0.1); a bad entry fails closed',
    lists: { whitelist: '0127.0.0.1' },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '503',
  },
  {
    kind: 'trust-refused:leading-zero',
    why: 'docs/client-ip.md section 1 (`010.0.0.1` rejected) with docs/ingress-nginx-compat.md: an invalid proxy-real-ip-cidr is not served',
    lists: { useForwarded: true, trust: '0127.0.0.1' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 203.0.113.9',
    keepip: 'refused',
  },
];

/** keepip stricter than nginx where the docs do not say so: listed in the report. */
const REPORTED: Row[] = [
  {
    kind: 'fail-closed:all',
    why: 'ConfigMap whitelist-source-range "all": nginx writes `allow all;` (everyone), keepip fails closed',
    lists: { whitelist: 'all' },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '503',
  },
  {
    kind: 'fail-closed:unix:',
    why: 'ConfigMap denylist-source-range "unix:": nginx denies UNIX-socket clients only, keepip fails closed',
    lists: { denylist: 'unix:' },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '503',
  },
  {
    kind: 'fail-closed:quoted',
    why: 'a quoted ConfigMap entry: nginx strips the quotes (`allow "127.0.0.0/8";`), keepip fails closed',
    lists: { whitelist: '"127.0.0.0/8"' },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '503',
  },
  {
    kind: 'fail-closed:injection',
    why: 'a ConfigMap entry with `;` is two nginx directives (`allow 127.0.0.9; allow all;`: everyone), keepip fails closed',
    lists: { whitelist: '127.0.0.9; allow all' },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '503',
  },
  {
    kind: 'fail-closed:empty-octet',
    why: "nginx's ngx_inet_addr reads an empty octet as 0 (127..0.0/8 is 127.0.0.0/8), keepip fails closed",
    lists: { whitelist: '127..0.0/8' },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '503',
  },
  {
    kind: 'trust-refused:hostname',
    why: "nginx's set_real_ip_from resolves a name (localhost: 127.0.0.1), keepip refuses the configuration",
    lists: { useForwarded: true, trust: 'localhost' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 203.0.113.9',
    keepip: 'refused',
  },
  {
    kind: 'trust-refused:inet-aton',
    why: 'set_real_ip_from falls back to getaddrinfo, which reads 127.1 as 127.0.0.1; keepip refuses the configuration',
    lists: { useForwarded: true, trust: '127.1' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 203.0.113.9',
    keepip: 'refused',
  },
  {
    kind: 'trust-refused:unix:',
    why: 'set_real_ip_from unix: trusts UNIX-socket peers only (no TCP peer), keepip refuses the configuration',
    lists: { useForwarded: true, trust: 'unix:' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 127.0.0.1',
    keepip: 'refused',
  },
  {
    kind: 'trust-refused:no-entries',
    why: 'proxy-real-ip-cidr "," splits into nothing: ingress-nginx writes no set_real_ip_from (nobody trusted), keepip refuses the configuration',
    lists: { useForwarded: true, trust: ',' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 127.0.0.1',
    keepip: 'refused',
  },
  {
    kind: 'trust-refused:quoted',
    why: 'a quoted proxy-real-ip-cidr entry: nginx strips the quotes, keepip refuses the configuration',
    lists: { useForwarded: true, trust: '"127.0.0.0/8"' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 203.0.113.9',
    keepip: 'refused',
  },
  {
    kind: 'trust-refused:injection',
    why: 'an entry with `;` is two nginx directives (`set_real_ip_from 127.0.0.0/8; allow all;`), keepip refuses the configuration',
    lists: { useForwarded: true, trust: '127.0.0.0/8; allow all' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 203.0.113.9',
    keepip: 'refused',
  },
  {
    kind: 'trust-refused:empty-octet',
    why: 'nginx reads 127..0.0/8 as 127.0.0.0/8, keepip refuses the configuration',
    lists: { useForwarded: true, trust: '127..0.0/8' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 203.0.113.9',
    keepip: 'refused',
  },
  {
    kind: 'trust-list-nginx-refuses-served:blank',
    why: 'proxy-real-ip-cidr " " is written `set_real_ip_from ;`, which nginx refuses; keepip reads it as empty and serves, trusting nobody (safe, but not the documented refusal)',
    lists: { useForwarded: true, trust: ' ' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: 'refused',
    keepip: '200 127.0.0.1',
  },
];

/** Minimal reproductions of the findings (FINDING_KINDS), fixed so that every seed shows them. */
const FINDING_ROUNDS: Row[] = [
  {
    kind: 'serves-an-access-list-nginx-refuses',
    why: 'nginx refuses `allow 255.255.255.255;` (the configuration is not loaded); keepip serves the list and admits 127.0.0.1 instead of failing closed',
    lists: { whitelist: '255.255.255.255, 127.0.0.0/8' },
    from: '127.0.0.1',
    nginx: 'refused',
    keepip: '503',
  },
  {
    kind: 'serves-an-access-list-nginx-refuses',
    why: 'the same through an annotation: Go takes 255.255.255.255 and ingress-nginx writes it, nginx refuses it; keepip admits',
    lists: { host: { allowlist: '255.255.255.255, 127.0.0.0/8' } },
    from: '127.0.0.1',
    nginx: 'refused',
    keepip: '503',
  },
  {
    kind: 'serves-an-access-list-nginx-refuses',
    why: 'block-cidrs 255.255.255.255: nginx refuses `deny 255.255.255.255;`; keepip serves everyone instead of failing closed',
    lists: { block: '255.255.255.255' },
    from: '127.0.0.1',
    nginx: 'refused',
    keepip: '503',
  },
  {
    kind: 'trusts-with-a-list-nginx-refuses',
    why: 'nginx refuses `set_real_ip_from 255.255.255.255/32;`; keepip serves the list and believes X-Forwarded-For from 127.0.0.0/8',
    lists: { useForwarded: true, trust: '255.255.255.255/32, 127.0.0.0/8' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: 'refused',
    keepip: 'refused',
  },
];

function fixedRound(label: string, row: Row): Round {
  const { host, ...lists } = row.lists;
  return {
    label,
    useForwarded: false,
    ...lists,
    hosts: [host ?? {}],
    chains: SOURCES.map(() => row.chain ?? ['203.0.113.9']),
    sources: [row.from],
  };
}

/** Both sides agree: the comparison cannot pass with both sides wrong in the same way. */
const CONTROLS: Row[] = [
  {
    kind: 'control',
    why: 'Go (dtoi) and nginx (ngx_atoi) read /0008 as /8, and so does keepip (found here: it took at most three digits and failed closed)',
    lists: { host: { allowlist: '127.0.0.0/0008' } },
    from: '127.0.0.1',
    nginx: '200',
    keepip: '200',
  },
  {
    kind: 'control',
    why: 'the same prefix in proxy-real-ip-cidr: both trust 127.0.0.0/8 (keepip refused the configuration before)',
    lists: { useForwarded: true, trust: '127.0.0.0/0008' },
    from: '127.0.0.1',
    chain: ['203.0.113.9'],
    nginx: '200 203.0.113.9',
    keepip: '200 203.0.113.9',
  },
  {
    kind: 'control',
    why: "nginx refuses 255.255.255.255 also inside ::ffff: (ngx_inet_addr's INADDR_NONE); keepip fails closed (found here: it read the mapped entry as matching nobody, 403)",
    lists: { whitelist: '::ffff:255.255.255.255' },
    from: '127.0.0.1',
    nginx: 'refused',
    keepip: '503',
  },
  {
    kind: 'control',
    why: 'a ConfigMap allowlist admits its address only',
    lists: { whitelist: '127.0.0.1' },
    from: '127.0.0.2',
    nginx: '403',
    keepip: '403',
  },
  {
    kind: 'control',
    why: "an annotation's ::ffff:0:0/96 is 0.0.0.0/0 (Go prints it so)",
    lists: { whitelist: '10.0.0.0/8', host: { allowlist: '::ffff:0:0/96' } },
    from: '127.0.1.7',
    nginx: '200',
    keepip: '200',
  },
  {
    kind: 'control',
    why: 'a trusted peer names the client',
    lists: { useForwarded: true, trust: '127.0.0.0/8' },
    from: '127.0.0.1',
    chain: ['203.0.113.9', '127.0.0.5'],
    nginx: '200 203.0.113.9',
    keepip: '200 203.0.113.9',
  },
  {
    kind: 'control',
    why: 'deny beats allow',
    lists: { host: { allowlist: '127.0.0.0/8', denylist: '127.0.0.0/24' } },
    from: '127.0.0.2',
    nginx: '403',
    keepip: '403',
  },
  {
    kind: 'control',
    why: 'an invalid annotation: 503 on both (nginx: return 503)',
    lists: { block: '127.0.0.1', host: { denylist: '127.0.0.1/33' } },
    from: '127.0.0.1',
    nginx: '503',
    keepip: '503',
  },
];

const TABLES = { CONTROLS, ALLOWED, REPORTED, FINDING_ROUNDS } as const;
const FIXED = Object.entries(TABLES).flatMap(([table, rows]) =>
  rows.map((row, i) => ({ table, row, round: fixedRound(`${table}[${i}]`, row) })),
);

const hostName = (r: number, h: number) => `r${r}-h${h}.test`;

function caseOf(round: Round, r: number, h: number, refused: { access: Set<string>; realip: Set<string> }) {
  const host = round.hosts[h]!;
  const rendered = render(round, host);
  const lines = [...rendered.block, ...(rendered.denied ? [] : [...rendered.deny, ...rendered.allow])];
  return {
    round,
    host,
    name: hostName(r, h),
    rendered,
    refusedAccess: lines.filter((e) => refused.access.has(e)),
    refusedTrust: (rendered.trust ?? []).filter((e) => refused.realip.has(e)),
  } satisfies HostCase;
}

function probesOf(rounds: readonly Round[]): Probe[] {
  const probes: Probe[] = [];
  for (const [r, round] of rounds.entries()) {
    for (const h of round.hosts.keys()) {
      for (const [i, from] of (round.sources ?? SOURCES).entries()) {
        probes.push({ id: probes.length, round: r, host: h, from, chain: null });
        if (round.useForwarded)
          probes.push({ id: probes.length, round: r, host: h, from, chain: round.chains[i]! });
      }
    }
  }
  return probes;
}

function send(port: number, p: Probe) {
  const headers: Record<string, string> = p.chain === null ? {} : { 'x-forwarded-for': p.chain.join(', ') };
  return request(port, { from: p.from, host: hostName(p.round, p.host), path: `/?p=${p.id}`, headers });
}

function topologyFor(round: Round, r: number, backendPort: number) {
  const data: Record<string, string> = {};
  if (round.useForwarded) data['use-forwarded-headers'] = 'true';
  if (round.trust !== undefined) data['proxy-real-ip-cidr'] = round.trust;
  if (round.whitelist !== undefined) data['whitelist-source-range'] = round.whitelist;
  if (round.denylist !== undefined) data['denylist-source-range'] = round.denylist;
  if (round.block !== undefined) data['block-cidrs'] = round.block;
  const objects: K8sObject[] = [
    controllerConfigMap(data),
    ...serviceWithEndpoints({ name: 'app', ports: [backendPort] }),
    ...round.hosts.map((host, h) =>
      ingress({
        name: `h${h}`,
        host: hostName(r, h),
        annotations: annotationsOf(host),
        paths: [{ path: '/', service: 'app', port: 80 }],
      }),
    ),
  ];
  return topologyOf(objects);
}

// ---------------------------------------------------------------------------------------------

interface Run {
  rounds: Round[];
  cases: HostCase[][];
  probes: Probe[];
  nginx: Map<number, Answer>;
  keepip: Map<number, Answer>;
}

/** nginx's answers for every probe of a host it accepts ('refused' for the others). */
async function askNginx(ngx: RunningNginx, run: Run): Promise<void> {
  const port = ngx.ports[0]!;
  await mapLimited(run.probes, PROBES_AT_ONCE, async (p) => {
    const c = run.cases[p.round]![p.host]!;
    if (c.refusedAccess.length + c.refusedTrust.length > 0) {
      run.nginx.set(p.id, 'refused');
      return;
    }
    const reply = await send(port, p);
    run.nginx.set(p.id, { status: reply.status, client: String(reply.headers['x-client'] ?? '') });
  });
}

/** keepip's answers, a round at a time (reload, probes, the client of each probe's access line). */
async function askKeepip(gw: TestGateway, backendPort: number, run: Run): Promise<void> {
  for (const [r, round] of run.rounds.entries()) {
    const probes = run.probes.filter((p) => p.round === r);
    const reloaded = gw.gateway.reload(topologyFor(round, r, backendPort));
    if (!reloaded.ok) {
      // Only proxy-real-ip-cidr refuses a configuration; every list fails closed instead.
      assert.match(JSON.stringify(reloaded.error), /INVALID_TRUSTED_CIDR/, `${round.label} refused`);
      for (const p of probes) run.keepip.set(p.id, 'refused');
      continue;
    }
    gw.access.lines.length = 0;
    await mapLimited(probes, PROBES_AT_ONCE, async (p) => {
      const reply = await send(gw.httpPort, p);
      const line = await gw.access.waitFor(new RegExp(`"GET /\\?p=${p.id} HTTP/1\\.1"`));
      run.keepip.set(p.id, { status: reply.status, client: line.split(' ')[0] ?? '' });
    });
  }
}

function nginxHttp(run: Run, dir: string, port: number): string {
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'index.html'), 'ok\n');
  const servers = run.cases
    .flat()
    .filter((c) => c.refusedAccess.length + c.refusedTrust.length === 0)
    .map((c) => serverText(port, c.name, www, c.rendered));
  return [
    'access_log off;',
    `server { listen 127.0.0.1:${port} default_server; server_name _; return 421; }`,
    ...servers,
  ].join('\n');
}

/** The probe a table row is about: its round's host, from its source, with its chain when it has one. */
function rowProbe(run: Run, label: string, row: Row): Probe {
  const r = run.rounds.findIndex((round) => round.label === label);
  const p = run.probes.find(
    (q) => q.round === r && q.from === row.from && (q.chain !== null) === !!row.lists.useForwarded,
  );
  assert.ok(p, `the probe of ${label}`);
  return p;
}

describe('address lists: keepip against real nginx 1.22 as ingress-nginx renders them', () => {
  const findings: Findings = new Map();
  const kinds = new Set<string>();
  let run: Run;
  let backend: RunningWhoami | undefined;
  let ngx: RunningNginx | undefined;
  let gw: TestGateway | undefined;

  before(async () => {
    const generated = fc.sample(roundArb, { numRuns: ROUNDS, seed: SEED });
    const rounds = [
      ...FIXED.map((f) => f.round),
      ...generated.map((g, i) => ({ label: `seed ${SEED} round ${i}`, ...g })),
    ];
    const rendered = rounds.flatMap((round) => round.hosts.map((host) => render(round, host)));
    const refused = await learnRefusals(rendered);
    const cases = rounds.map((round, r) => round.hosts.map((_, h) => caseOf(round, r, h, refused)));
    run = { rounds, cases, probes: probesOf(rounds), nginx: new Map(), keepip: new Map() };
    backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'app' });
    const backendPort = backend.address.port;
    const current = run;
    ngx = await startNginx({
      freePorts: 1,
      http: (dir, [port]) => nginxHttp(current, dir, port!),
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
    gw = await startTestGateway(topologyOf(serviceWithEndpoints({ name: 'app', ports: [backendPort] })));
    await Promise.all([askNginx(ngx, run), askKeepip(gw, backendPort, run)]);
    for (const p of run.probes) {
      const c = run.cases[p.round]![p.host]!;
      const [n, k] = [run.nginx.get(p.id)!, run.keepip.get(p.id)!];
      const kind = judge(c, p, n, k);
      if (kind === null) continue;
      kinds.add(kind);
      note(findings, kind, describeProbe(c, p, n, k));
    }
  });

  after(async () => {
    await gw?.close();
    await ngx?.stop();
    await backend?.close();
  });

  /** The FINDING_ROUNDS rows of `kinds`: what each side answered, and the safe answer. */
  const reproductions = (kinds: readonly string[]) =>
    FIXED.filter((f) => f.table === 'FINDING_ROUNDS' && kinds.includes(f.row.kind))
      .map(({ round, row }) => {
        const p = rowProbe(run, round.label, row);
        const w = !!row.lists.useForwarded;
        const [n, k] = [observation(run.nginx.get(p.id)!, w), observation(run.keepip.get(p.id)!, w)];
        return `  ${JSON.stringify(row.lists)}: nginx ${n}, keepip ${k} (safe: ${row.keepip})`;
      })
      .join('\n');

  const assertNone = (kinds: readonly string[], what: string) =>
    assert.equal(
      count(findings, kinds),
      0,
      `FINDING: ${what}:\n${reproductions(kinds)}\nseen:\n${show(findings, kinds, 6)}`,
    );

  test('keepip admits no client nginx denies (ConfigMap lists, annotations, block-cidrs)', () => {
    assertNone(['admits-what-nginx-denies'], 'keepip admits a client nginx denies');
  });

  test('proxy-real-ip-cidr: keepip settles on the client nginx settles on, or a nearer one', () => {
    assertNone(['trusts-a-hop-nginx-does-not'], 'keepip trusts a hop nginx does not');
  });

  test('a list nginx refuses fails closed in keepip (503; proxy-real-ip-cidr: the configuration refused)', () => {
    assertNone(
      [
        'serves-an-access-list-nginx-refuses',
        'trusts-with-a-list-nginx-refuses',
        'serves-a-trust-list-nginx-refuses',
      ],
      'keepip serves a list nginx refuses instead of failing closed',
    );
  });

  test('every other difference is a row of the ALLOWED or REPORTED table', () => {
    const known = new Set([...FINDING_KINDS, ...ALLOWED.map((r) => r.kind), ...REPORTED.map((r) => r.kind)]);
    const unexplained = [...kinds].filter((k) => !known.has(k));
    assert.deepEqual(unexplained, [], `unexplained differences:\n${show(findings, unexplained, 4)}`);
  });

  for (const table of ['CONTROLS', 'ALLOWED', 'REPORTED'] as const) {
    test(`${table}: each row is still what is seen`, () => {
      const wrong: string[] = [];
      for (const { round, row } of FIXED.filter((f) => f.table === table)) {
        const p = rowProbe(run, round.label, row);
        const w = !!row.lists.useForwarded;
        const seen = {
          nginx: observation(run.nginx.get(p.id)!, w),
          keepip: observation(run.keepip.get(p.id)!, w),
        };
        if (seen.nginx !== row.nginx || seen.keepip !== row.keepip)
          wrong.push(
            `${row.kind} ${JSON.stringify(row.lists)}: expected nginx ${row.nginx}, keepip ${row.keepip}; seen nginx ${seen.nginx}, keepip ${seen.keepip}`,
          );
        if (table !== 'CONTROLS' && !findings.get(row.kind)?.some((t) => t.startsWith(`${round.label} `)))
          wrong.push(`${row.kind}: its round is not judged ${row.kind}`);
      }
      assert.deepEqual(wrong, []);
    });
  }

  test('the comparison is not vacuous', (t) => {
    const answers = [...run.nginx.values()];
    const status = (s: number) => answers.filter((a) => a !== 'refused' && a.status === s).length;
    const believed = run.probes.filter((p) => {
      const a = run.nginx.get(p.id)!;
      return p.chain !== null && a !== 'refused' && canonical(a.client) !== p.from;
    }).length;
    const generated = run.cases.flat().filter((c) => c.round.label.startsWith('seed'));
    const stats = {
      admitted: status(200),
      denied: status(403),
      failedClosed: status(503),
      refusedHosts: generated.filter((c) => c.refusedAccess.length + c.refusedTrust.length > 0).length,
      forwardedBelieved: believed,
      keepipRefusedRounds: new Set(
        run.probes.filter((p) => run.keepip.get(p.id) === 'refused').map((p) => p.round),
      ).size,
    };
    const seen = [...findings].map(
      ([k, texts]) => `${k} ${texts.filter((x) => x.startsWith('seed')).length}`,
    );
    t.diagnostic(
      `seed ${SEED}, ${ROUNDS} rounds: ${JSON.stringify(stats)}; generated differences: ${seen.join(', ')}`,
    );
    for (const [name, n] of Object.entries(stats))
      assert.ok(n >= 5, `${name}: ${n} (${JSON.stringify(stats)})`);
  });
});
