// Rate and connection limits, keepip against real nginx 1.22 configured as ingress-nginx renders them
// (rootfs/etc/nginx/template/nginx.tmpl, internal/ingress/annotations/ratelimit): per Ingress a
// `geo $remote_addr $allowlist_<id>` (limit-allowlist CIDRs -> 1) and `map $allowlist_<id> $limit_<id>`
// (0 -> limit-conn-zone-variable, default $binary_remote_addr; 1 -> ""), `limit_req_zone $limit_<id>`
// per limit-rps (rate=Nr/s) and limit-rpm (rate=Nr/m), `limit_conn_zone $limit_<id>`, and in every
// location of the Ingress `limit_conn <zone> N; limit_req zone=<rps> burst=N*m nodelay; limit_req
// zone=<rpm> burst=N*m nodelay;` with m = limit-burst-multiplier as Go's strconv.Atoi reads it (5 when
// absent), `limit_req_status` / `limit_conn_status` from the ConfigMap, and realip (`real_ip_header
// X-Forwarded-For; real_ip_recursive on; set_real_ip_from <proxy-real-ip-cidr>`) with
// use-forwarded-headers.
//
// Deterministic by construction: every request is held by the backend until the case ends, so a
// request is "admitted" when it reaches the backend and "refused" when its answer comes first (no
// time involved, and limit-connections sees every admitted request in progress). limit-rpm is 1-6, so
// a bucket leaks at most one request per 10 s: a sender's K requests sent back to back (each awaited)
// see no leak unless the machine stalls for 10 s between a key's first and last request. limit-rps is
// only set alongside a limit-rpm no larger (its burst is then never the one that refuses, so its
// leak of one request a second cannot change a count).
//
// Compared per sender (a client address, a trusted proxy forwarding for a client, an untrusted peer
// forging X-Forwarded-For for one, a holder of an X-Api-Key): how many of its K back-to-back requests
// were admitted, and the status of the refusals. keepip admitting more than nginx for the same sender
// is a FINDING (the assertion states nginx's count and fails); fewer is accepted only as an ALLOWED
// entry (keepip stricter, with the reason). Generated cases (fast-check, fixed seed; LIMITS_SEED=<n> or
// `random` explores others) plus hand-picked ones, one nginx and one keepip per ConfigMap profile.
// Not compared: limit-burst-multiplier 0 with limit-rpm/-rps, which ingress-nginx renders as `burst=0`,
// a configuration nginx 1.22 refuses ("invalid burst value"); keepip reads 0 as the default 5.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';

const RUNS = 12;
const DEFAULT_SEED = 20_240_611;
/** proxy-real-ip-cidr of the `forwarded` profile: the proxies whose X-Forwarded-For is believed. */
const TRUSTED_CIDR = '127.0.99.0/24';
const PROXY = '127.0.99.1';

interface Profile {
  name: 'direct' | 'forwarded' | 'apikey';
  configMap: Record<string, string>;
  reqStatus: number;
  connStatus: number;
  /** limit-conn-zone-variable as nginx reads it. */
  keyVariable: string;
  /** http-level lines of nginx for the ConfigMap (realip). */
  nginxHttp: string[];
}

const PROFILES: Record<Profile['name'], Profile> = {
  direct: {
    name: 'direct',
    configMap: { 'limit-req-status-code': '429' },
    reqStatus: 429,
    connStatus: 503,
    keyVariable: '$binary_remote_addr',
    nginxHttp: [],
  },
  forwarded: {
    name: 'forwarded',
    configMap: { 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': TRUSTED_CIDR },
    reqStatus: 503,
    connStatus: 503,
    keyVariable: '$binary_remote_addr',
    nginxHttp: [
      'real_ip_header X-Forwarded-For;',
      'real_ip_recursive on;',
      `set_real_ip_from ${TRUSTED_CIDR};`,
    ],
  },
  apikey: {
    name: 'apikey',
    configMap: { 'limit-conn-zone-variable': '$http_x_api_key', 'limit-conn-status-code': '429' },
    reqStatus: 503,
    connStatus: 429,
    keyVariable: '$http_x_api_key',
    nginxHttp: [],
  },
};

/**
 * How a sender reaches the gateway: `direct` from the client's address; through the trusted proxy
 * with X-Forwarded-For naming the client (`proxy`), after a forged entry and before a trusted one
 * (`chain`), with a port that changes per request (`ported`), IPv4-mapped (`mapped`), over two header
 * lines (`split`); the trusted proxy with an unparsable X-Forwarded-For that changes per request
 * (`garbage`) or after the client (`garbageRight`); an untrusted peer claiming the client in
 * X-Forwarded-For and X-Real-IP (`forged`, a new port in the claim every request).
 */
type Via =
  | 'direct'
  | 'proxy'
  | 'chain'
  | 'ported'
  | 'mapped'
  | 'split'
  | 'garbage'
  | 'garbageRight'
  | 'forged';
const VIAS: readonly Via[] = [
  'direct',
  'proxy',
  'chain',
  'ported',
  'mapped',
  'split',
  'garbage',
  'garbageRight',
  'forged',
];

interface Sender {
  /** The client it is (or claims to be): 0..2; client 0 is the allowlisted one when the case has a list. */
  who: number;
  via: Via;
  path: 'a' | 'b';
}

interface Case {
  rpm: number;
  /** 0, or at least rpm (see the header). */
  rps: number;
  connections: number;
  /** limit-burst-multiplier as written; null: absent. */
  multiplier: string | null;
  /** Numbers written with a leading '+' (Go's Atoi reads it). */
  plus: boolean;
  /** limit-allowlist covers client 0's addresses. */
  allowlist: boolean;
  senders: Sender[];
}

/** The Ingress's limit-burst-multiplier as ingress-nginx reads it (strconv.Atoi, 5 when absent). */
function goMultiplier(c: Case): number {
  return c.multiplier === null ? 5 : Number(c.multiplier);
}

/** The 127.x octet of case i (its clients, forgers and allowlist live under it). */
const octet = (i: number) => 20 + i;
/** Client `who`'s own address in case i (apikey profile: one address per sender). */
const clientAddress = (i: number, who: number, s = 0) => `127.${octet(i)}.${who + 1}.${s + 1}`;
const allowlistOf = (i: number) => `127.${octet(i)}.1.0/24`;

/** X-Forwarded-For (one or two lines) of a sender through the trusted proxy, for its request n. */
function forwardedFor(via: Via, claimed: string, n: number): string | string[] {
  switch (via) {
    case 'chain':
      return `203.0.113.7, ${claimed}, 127.0.99.200`;
    case 'ported':
      return `${claimed}:${1000 + n}`;
    case 'mapped':
      return `::ffff:${claimed}`;
    case 'split':
      return ['203.0.113.9', claimed];
    case 'garbage':
      return `garbage-${n}`;
    case 'garbageRight':
      return `${claimed}, garbage-${n}`;
    default:
      return claimed;
  }
}

/** The socket address and headers of request n of sender s of case i. */
function senderRequest(profile: Profile, i: number, s: number, sender: Sender, n: number) {
  const claimed = clientAddress(i, sender.who);
  const headers: Record<string, string | string[]> = {};
  if (profile.name === 'apikey') headers['x-api-key'] = `k${sender.who}`;
  if (sender.via === 'direct')
    return { from: profile.name === 'apikey' ? clientAddress(i, sender.who, s) : claimed, headers };
  if (sender.via === 'forged') {
    headers['x-forwarded-for'] = `${claimed}, ${claimed}:${2000 + n}`;
    headers['x-real-ip'] = claimed;
    return { from: `127.${octet(i)}.9.${s + 1}`, headers };
  }
  headers['x-forwarded-for'] = forwardedFor(sender.via, claimed, n);
  return { from: PROXY, headers };
}

/** How many requests nginx admits at most from one key: K is this plus 2. */
function nginxCap(c: Case): number {
  const m = goMultiplier(c);
  const caps = [c.rpm > 0 ? c.rpm * m + 1 : 99, c.rps > 0 ? c.rps * m + 1 : 99];
  if (c.connections > 0) caps.push(c.connections);
  return Math.min(...caps, 12);
}

const spell = (c: Case, n: number) => (c.plus ? `+${n}` : String(n));

function annotationsOf(c: Case, i: number): Record<string, string> {
  const a: Record<string, string> = {};
  if (c.rpm > 0) a['limit-rpm'] = spell(c, c.rpm);
  if (c.rps > 0) a['limit-rps'] = spell(c, c.rps);
  if (c.connections > 0) a['limit-connections'] = spell(c, c.connections);
  if (c.multiplier !== null) a['limit-burst-multiplier'] = c.multiplier;
  if (c.allowlist) a['limit-allowlist'] = allowlistOf(i);
  return a;
}

/** nginx's http-level zones and per-location limits of case i, as ingress-nginx renders them. */
function nginxCase(profile: Profile, c: Case, i: number, port: number, backend: number): string {
  const id = `c${i}`;
  const m = goMultiplier(c);
  const zones = [
    `geo $remote_addr $allowlist_${id} { default 0; ${c.allowlist ? `${allowlistOf(i)} 1;` : ''} }`,
    `map $allowlist_${id} $limit_${id} { 0 ${profile.keyVariable}; 1 ""; }`,
  ];
  const limits: string[] = [];
  if (c.connections > 0) {
    zones.push(`limit_conn_zone $limit_${id} zone=${id}_conn:5m;`);
    limits.push(`limit_conn ${id}_conn ${c.connections};`);
  }
  if (c.rps > 0) {
    zones.push(`limit_req_zone $limit_${id} zone=${id}_rps:5m rate=${c.rps}r/s;`);
    limits.push(`limit_req zone=${id}_rps burst=${c.rps * m} nodelay;`);
  }
  if (c.rpm > 0) {
    zones.push(`limit_req_zone $limit_${id} zone=${id}_rpm:5m rate=${c.rpm}r/m;`);
    limits.push(`limit_req zone=${id}_rpm burst=${c.rpm * m} nodelay;`);
  }
  const location = (p: string) =>
    `  location /${p} { ${limits.join(' ')} proxy_pass http://127.0.0.1:${backend}; }`;
  return [
    ...zones,
    `server { listen 127.0.0.1:${port}; server_name ${id}.test;`,
    location('a'),
    location('b'),
    '  location / { return 404; } }',
  ].join('\n');
}

/** A backend that holds every request until `release()`: `arrived(path)` resolves when it got there. */
interface Holder {
  port: number;
  arrived(path: string): Promise<void>;
  release(): void;
  close(): Promise<void>;
}

async function startHolder(): Promise<Holder> {
  const seen = new Set<string>();
  const waiting = new Map<string, () => void>();
  const held: ServerResponse[] = [];
  let released = false;
  const answer = (res: ServerResponse) => res.writeHead(200, { 'content-length': 2 }).end('ok');
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    req.resume();
    res.on('error', () => {});
    seen.add(path);
    waiting.get(path)?.();
    if (released) answer(res);
    else held.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    arrived: (path) =>
      new Promise<void>((resolve) => {
        if (seen.has(path)) resolve();
        else waiting.set(path, resolve);
      }),
    release() {
      released = true;
      for (const res of held.splice(0)) answer(res);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** nginx and keepip serving the cases of one profile, behind one holding backend. */
interface Bench {
  profile: Profile;
  cases: Case[];
  holder: Holder;
  nginx: RunningNginx;
  gateway: TestGateway;
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function startBench(profile: Profile, cases: Case[]): Promise<Bench> {
  const holder = await startHolder();
  cleanups.push(() => holder.close());
  const nginx = await startNginx({
    freePorts: 1,
    http: (_dir, [port]) =>
      [
        `limit_req_status ${profile.reqStatus};`,
        `limit_conn_status ${profile.connStatus};`,
        ...profile.nginxHttp,
        `server { listen 127.0.0.1:${port} default_server; location / { return 404; } }`,
        ...cases.map((c, i) => nginxCase(profile, c, i, port!, holder.port)),
      ].join('\n'),
    waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
  });
  cleanups.push(() => nginx.stop());
  const objects: K8sObject[] = [
    controllerConfigMap(profile.configMap),
    ...serviceWithEndpoints({ name: 'held', ports: [holder.port] }),
    ...cases.map((c, i) =>
      ingress({
        name: `c${i}`,
        host: `c${i}.test`,
        annotations: annotationsOf(c, i),
        paths: [
          { path: '/a', service: 'held', port: 80 },
          { path: '/b', service: 'held', port: 80 },
        ],
      }),
    ),
  ];
  const gateway = await startTestGateway(topologyOf(objects));
  cleanups.push(async () => {
    holder.release();
    await gateway.close();
  });
  return { profile, cases, holder, nginx, gateway };
}

/** Per sender: its outcomes ('in' = reached the backend, else the refusal's status). */
type Outcomes = (number | 'in')[][];

/** Sends every sender's K requests of case i, back to back, to `port`; each awaited before the next. */
async function runCase(b: Bench, i: number, port: number, tag: string): Promise<Outcomes> {
  const c = b.cases[i]!;
  const k = nginxCap(c) + 2;
  const out: Outcomes = [];
  for (const [s, sender] of c.senders.entries()) {
    const row: (number | 'in')[] = [];
    for (let n = 0; n < k; n++) {
      const { from, headers: h } = senderRequest(b.profile, i, s, sender, n);
      // node:http sends an array value as one header line per item.
      const headers = h as Record<string, string>;
      const path = `/${sender.path}/${tag}-${i}-${s}-${n}`;
      const reply = request(port, { from, host: `c${i}.test`, path, headers });
      row.push(
        await Promise.race([b.holder.arrived(path).then(() => 'in' as const), reply.then((r) => r.status)]),
      );
    }
    out.push(row);
  }
  return out;
}

/** A difference where keepip is stricter than nginx, accepted with its reason. */
interface Allowed {
  reason: string;
  applies(profile: Profile, c: Case, sender: Sender, ngx: number, kip: number): boolean;
}

const ALLOWED: Record<string, Allowed> = {
  'mapped-spelling': {
    reason:
      "keepip keys ::ffff:a.b.c.d (a trusted proxy's X-Forwarded-For) as a.b.c.d; nginx's $binary_remote_addr " +
      'is 16 bytes for it, 4 for a.b.c.d: two buckets for one client, so nginx admits the second spelling a full burst',
    applies: (_p, c, sender) =>
      c.senders.some((o) => o.who === sender.who && (o.via === 'mapped') !== (sender.via === 'mapped')),
  },
};

const admitted = (row: (number | 'in')[]) => row.filter((o) => o === 'in').length;

function describeCase(p: Profile, c: Case, i: number): string {
  return `profile ${p.name} case c${i} ${JSON.stringify(annotationsOf(c, i))} senders ${JSON.stringify(c.senders)}`;
}

/** The differences of case i (empty: keepip counted as nginx, or as an ALLOWED entry says). */
function judge(b: Bench, i: number, ngx: Outcomes, kip: Outcomes, met: Set<string>): string[] {
  const c = b.cases[i]!;
  const out: string[] = [];
  for (const [s, sender] of c.senders.entries()) {
    const n = admitted(ngx[s]!);
    const kp = admitted(kip[s]!);
    const refusedN = [...new Set(ngx[s]!.filter((o) => o !== 'in'))];
    const refusedK = [...new Set(kip[s]!.filter((o) => o !== 'in'))];
    const where = `${describeCase(b.profile, c, i)} sender ${s} ${JSON.stringify(sender)}`;
    if (kp > n) out.push(`FINDING: keepip admitted ${kp}, nginx ${n} (${JSON.stringify(ngx[s])}): ${where}`);
    else if (kp < n) {
      const entry = Object.entries(ALLOWED).find(([, a]) => a.applies(b.profile, c, sender, n, kp));
      if (entry === undefined) out.push(`keepip admitted ${kp}, nginx ${n}: ${where}`);
      else met.add(entry[0]);
    } else if (JSON.stringify(refusedN) !== JSON.stringify(refusedK))
      out.push(`refused with ${JSON.stringify(refusedK)}, nginx ${JSON.stringify(refusedN)}: ${where}`);
  }
  return out;
}

async function checkBench(b: Bench): Promise<{ differences: string[]; met: Set<string> }> {
  const differences: string[] = [];
  const met = new Set<string>();
  for (let i = 0; i < b.cases.length; i++) {
    const [ngx, kip] = await Promise.all([
      runCase(b, i, b.nginx.ports[0]!, 'n'),
      runCase(b, i, b.gateway.httpPort, 'k'),
    ]);
    differences.push(...judge(b, i, ngx, kip, met));
  }
  return { differences, met };
}

function senderArb(profile: Profile): fc.Arbitrary<Sender> {
  const vias = profile.name === 'apikey' ? (['direct'] as const) : VIAS;
  return fc.record({
    who: fc.integer({ min: 0, max: 2 }),
    via: fc.constantFrom(...vias),
    path: fc.constantFrom('a' as const, 'b' as const),
  });
}

function caseArb(profile: Profile): fc.Arbitrary<Case> {
  return fc
    .record({
      rpm: fc.integer({ min: 0, max: 6 }),
      rpsOver: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }),
      connections: fc.integer({ min: 0, max: 3 }),
      multiplier: fc.option(fc.constantFrom('1', '2', '3'), { nil: null }),
      allowlist: fc.boolean(),
      senders: fc.array(senderArb(profile), { minLength: 1, maxLength: 4 }),
    })
    .filter((r) => r.rpm > 0 || r.connections > 0)
    .map(({ rpsOver, ...r }) => ({
      ...r,
      rps: r.rpm > 0 && rpsOver !== null ? r.rpm + rpsOver : 0,
      plus: false,
    }));
}

/** Hand-picked cases, on top of the generated ones. */
const base: Case = {
  rpm: 2,
  rps: 0,
  connections: 0,
  multiplier: '1',
  plus: false,
  allowlist: false,
  senders: [{ who: 1, via: 'direct', path: 'a' }],
};

function handPicked(profile: Profile): Case[] {
  const cases: Case[] = [
    // limit-burst-multiplier 0 with limit-connections only: no burst is rendered.
    { ...base, multiplier: '0', connections: 1, rpm: 0 },
    // Both paths of one Ingress share its zone; client 1's burst leaves client 2 its own.
    {
      ...base,
      senders: [
        { who: 1, via: 'direct', path: 'a' },
        { who: 1, via: 'direct', path: 'b' },
        { who: 2, via: 'direct', path: 'b' },
      ],
    },
    // Both rps and rpm, with limit-connections: limit_req charges before limit_conn refuses.
    { ...base, rpm: 3, rps: 5, connections: 2, multiplier: '1' },
    // The allowlisted client is never limited, the others are.
    {
      ...base,
      rpm: 1,
      connections: 1,
      allowlist: true,
      senders: [
        { who: 0, via: 'direct', path: 'a' },
        { who: 1, via: 'direct', path: 'a' },
      ],
    },
  ];
  if (profile.name !== 'apikey') {
    // Each way of reaching the gateway, then the client itself, then another client the same way.
    for (const via of VIAS.filter((v) => v !== 'direct'))
      cases.push({
        ...base,
        senders: [
          { who: 1, via, path: 'a' },
          { who: 1, via: 'direct', path: 'a' },
          { who: 2, via, path: 'b' },
        ],
      });
    // Forgers claiming the allowlisted client and a victim, then the victim itself (directly and via the proxy).
    cases.push({
      ...base,
      allowlist: true,
      senders: [
        { who: 0, via: 'forged', path: 'a' },
        { who: 1, via: 'forged', path: 'a' },
        { who: 1, via: 'direct', path: 'a' },
        { who: 1, via: 'proxy', path: 'a' },
        { who: 2, via: 'chain', path: 'b' },
        { who: 2, via: 'proxy', path: 'a' },
      ],
    });
  }
  return cases;
}

function casesOf(profile: Profile): Case[] {
  const chosen = process.env.LIMITS_SEED;
  const seed = chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? DEFAULT_SEED);
  return [...handPicked(profile), ...fc.sample(caseArb(profile), { numRuns: RUNS, seed })];
}

describe('rate and connection limits against nginx 1.22 (ingress-nginx rendering)', () => {
  for (const profile of Object.values(PROFILES)) {
    test(`${profile.name}: ${JSON.stringify(profile.configMap)}`, { timeout: 60_000 }, async (t) => {
      const bench = await startBench(profile, casesOf(profile));
      const { differences, met } = await checkBench(bench);
      for (const key of met) t.diagnostic(`ALLOWED ${key}: ${ALLOWED[key]!.reason}`);
      assert.deepEqual(differences, [], `seed ${process.env.LIMITS_SEED ?? DEFAULT_SEED}`);
      if (profile.name === 'forwarded') assert.ok(met.has('mapped-spelling'), 'the mapped case ran');
    });
  }

  // ingress-nginx reads the numbers with Go's strconv.Atoi, which takes a leading '+': "+2" is 2.
  test('limit-rpm "+2", limit-connections "+1", limit-burst-multiplier "+1" limit as nginx does', async () => {
    const plus: Case[] = [
      { ...base, plus: true },
      { ...base, rpm: 0, connections: 1, plus: true },
      { ...base, multiplier: '+1' },
    ];
    const bench = await startBench(PROFILES.direct, plus);
    const { differences } = await checkBench(bench);
    assert.deepEqual(differences, []);
  });
});
