// keepip's TLS server parameters against nginx 1.22 configured as ingress-nginx's template renders the
// same ConfigMap and annotations (rootfs/etc/nginx/template/nginx.tmpl: ssl_protocols, ssl_early_data,
// ssl_session_cache/timeout inside `if SSLSessionCache`, ssl_session_tickets, ssl_ciphers +
// ssl_prefer_server_ciphers on at http level, ssl_dhparam, ssl_ecdh_curve, per server ssl_ciphers and
// ssl_prefer_server_ciphers from the annotations; `http2` on the TLS listen; HSTS as lua_ingress.lua's
// header filter: on every https answer, replacing the backend's, as add_header … always after
// proxy_hide_header; ssl-redirect's 308 on the TLS hosts' plain HTTP).
//
// Claims checked (docs/gateway.md, docs/ingress-nginx-compat.md):
// - "ssl-protocols and ssl-ciphers (ConfigMap) for every host and the default certificate, ssl-ciphers and
//   ssl-prefer-server-ciphers (annotations) per host … Defaults are ingress-nginx's: TLSv1.2 and TLSv1.3,
//   its Mozilla intermediate cipher list, the server's order. ssl-ciphers governs TLS 1.2 and older; TLS 1.3
//   suites stay the defaults unless TLS_* names are listed … Versions are honoured exactly as listed"
// - "ssl-ecdh-curve (default auto, OpenSSL's) lists the groups every handshake may use, TLS 1.2 and 1.3"
// - "ssl-dh-param … make the DHE suites of ssl-ciphers available (RSA certificates, TLS 1.2) … without it
//   no DHE suite is offered"
// - "ALPN offers h2 then http/1.1 (use-http2, default true)"; use-http2 "false": "a client that offers h2
//   alone is refused in the handshake, no_application_protocol"
// - "As ingress-nginx by default, sessions are kept by the gateway … and no session ticket is issued: a
//   TLS 1.2 client that comes back with its session id resumes … TLS 1.3 clients resume by tickets alone
//   (ingress-nginx resumes them from its cache too)"; "With ssl-session-tickets: "true", TLS 1.2 and 1.3
//   sessions resume by ticket"; ssl-session-timeout is "the ticket lifetime"; "a session resumes only
//   where the same certificate (and CA) would serve it"
// - hsts*: "Strict-Transport-Security: max-age=…[; includeSubDomains][; preload] on every answer to an
//   HTTPS request, replacing the backend's; hosts served with the default certificate included"
// - ssl-early-data: "TLS 1.3 0-RTT data is never accepted"
//
// Configurations: five fixed ones (the ConfigMap's defaults with per-host annotations; legacy versions,
// groups, DH parameters, no HTTP/2; tickets without the session cache; early data; a version gap), then
// generated ones (fast-check, fixed seed; TLSPARAMS_SEED=<n> or `random` explores others, TLSPARAMS_RUNS=<n>
// runs more than one; TLSPARAMS_DUMP=1 prints every pair): the ConfigMap keys above (absent or a value),
// and per host (an EC certificate, an RSA one, one without a TLS section served with the default
// certificate) ssl-ciphers and ssl-prefer-server-ciphers annotations. Probes, all with `openssl s_client`
// (the system's OpenSSL 3.0, not Node's), run from one shell per configuration: each version alone, TLS
// 1.2 suites one at a time, a TLS 1.3 suite alone, several suites in an order the server may not prefer,
// named groups (alone and two), ALPN, a request over TLS (HSTS), sessions saved and offered back (TLS 1.3:
// with early data) then offered for another name; and a plain HTTP request (no HSTS, ssl-redirect).
// Compared: accepted or refused (and how), negotiated version / suite / group / ALPN, resumed (for its
// name, for another), ticket lifetime, early data, status, Strict-Transport-Security, Location.
//
// A difference where keepip completes a handshake nginx refuses, resumes what nginx does not or for
// longer, takes early data nginx refuses, or sends no (or another) HSTS where nginx sends one is unsafe
// and fails one of the first three tests. Any other must be in ALLOWED (with its doc line, or the reason
// when the docs are silent); each ALLOWED entry must still be seen (the table cannot rot).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { generate } from 'selfsigned';
import type { Topology } from '../../src/config/model.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import { request, startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  tlsSecret,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const SEED_VARIABLE = 'TLSPARAMS_SEED';
const DEFAULT_SEED = 20_260_417;
/** Generated configurations, after the fixed ones (TLSPARAMS_RUNS=<n> for more). */
const GENERATED = Number(process.env.TLSPARAMS_RUNS ?? 1);
/** s_client runs in flight. */
const CONCURRENCY = 4;

// ---------- configurations ----------

const SLOTS = ['ec', 'rsa', 'plain'] as const;
type Slot = (typeof SLOTS)[number];
type Target = Slot | 'default';
const TARGETS: readonly Target[] = [...SLOTS, 'default'];
const hostOf = (slot: Slot) => `${slot}.params.test`;
/** The slots whose Ingress has a TLS section (ssl-redirect applies to them). */
const TLS_SLOTS: readonly Slot[] = ['ec', 'rsa'];

interface HostConfig {
  /** The ssl-ciphers annotation; null: not set. */
  ciphers: string | null;
  prefer: 'true' | 'false' | null;
}

/** ConfigMap values: null is a key left out (ingress-nginx's default applies). */
interface Config {
  name: string;
  protocols: string | null;
  ciphers: string | null;
  curve: string | null;
  dhParam: boolean;
  tickets: boolean | null;
  cache: boolean | null;
  timeout: string | null;
  hsts: boolean | null;
  hstsMaxAge: string | null;
  hstsIncludeSubdomains: boolean | null;
  hstsPreload: boolean | null;
  sslRedirect: boolean | null;
  http2: boolean | null;
  earlyData: boolean | null;
  hosts: Record<Slot, HostConfig>;
  /** Fixed configurations: probes of their own over the generated plan's, and only probes of these kinds. */
  plan?: Partial<Plan>;
  only?: readonly Probe['kind'][];
}

/** ingress-nginx's defaults (internal/ingress/controller/config/config.go). */
const DEFAULT_CIPHERS =
  'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256';
const LEGACY_CIPHERS =
  'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA@SECLEVEL=0';

const CONFIGMAP_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256',
  'HIGH:!aNULL:!MD5',
  LEGACY_CIPHERS,
  'TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256',
  'DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256',
  'ALL:@SECLEVEL=0',
] as const;
const ANNOTATION_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256@SECLEVEL=0',
  'TLS_AES_256_GCM_SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384',
  'AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256',
] as const;

interface Effective {
  protocols: string;
  ciphers: string;
  curve: string;
  tickets: boolean;
  cache: boolean;
  timeout: string;
  /** The Strict-Transport-Security value, null without. */
  hsts: string | null;
  sslRedirect: boolean;
  http2: boolean;
  earlyData: boolean;
}

function effective(c: Config): Effective {
  let hsts: string | null = null;
  if (c.hsts ?? true) {
    hsts = `max-age=${c.hstsMaxAge ?? '31536000'}`;
    if (c.hstsIncludeSubdomains ?? true) hsts += '; includeSubDomains';
    if (c.hstsPreload ?? false) hsts += '; preload';
  }
  return {
    protocols: c.protocols ?? 'TLSv1.2 TLSv1.3',
    ciphers: c.ciphers ?? DEFAULT_CIPHERS,
    curve: c.curve ?? 'auto',
    tickets: c.tickets ?? false,
    cache: c.cache ?? true,
    timeout: c.timeout ?? '10m',
    hsts,
    sslRedirect: c.sslRedirect ?? true,
    http2: c.http2 ?? true,
    earlyData: c.earlyData ?? false,
  };
}

/** The controller ConfigMap's data: only the keys the configuration sets. */
function configMapData(c: Config): Record<string, string> {
  const data: Record<string, string> = {};
  const set = (key: string, value: string | boolean | null) => {
    if (value !== null) data[key] = String(value);
  };
  set('ssl-protocols', c.protocols);
  set('ssl-ciphers', c.ciphers);
  set('ssl-ecdh-curve', c.curve);
  if (c.dhParam) data['ssl-dh-param'] = 'default/dhparam';
  set('ssl-session-tickets', c.tickets);
  set('ssl-session-cache', c.cache);
  set('ssl-session-timeout', c.timeout);
  set('hsts', c.hsts);
  set('hsts-max-age', c.hstsMaxAge);
  set('hsts-include-subdomains', c.hstsIncludeSubdomains);
  set('hsts-preload', c.hstsPreload);
  set('ssl-redirect', c.sslRedirect);
  set('use-http2', c.http2);
  set('ssl-early-data', c.earlyData);
  return data;
}

const NO_KEYS = {
  protocols: null,
  ciphers: null,
  curve: null,
  dhParam: false,
  tickets: null,
  cache: null,
  timeout: null,
  hsts: null,
  hstsMaxAge: null,
  hstsIncludeSubdomains: null,
  hstsPreload: null,
  sslRedirect: null,
  http2: null,
  earlyData: null,
} as const;

const FIXED: readonly Config[] = [
  {
    ...NO_KEYS,
    name: 'fixed: ConfigMap defaults, per-host ciphers and order',
    hosts: {
      ec: { ciphers: ANNOTATION_CIPHERS[0], prefer: null },
      rsa: { ciphers: null, prefer: 'false' },
      plain: { ciphers: null, prefer: null },
    },
    plan: {
      session: { target: 'default', other: 'ec' },
      // No ssl-dh-param: no DHE suite on either.
      suites: {
        ec: ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384'],
        rsa: ['DHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'],
        plain: ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
        default: ['ECDHE-ECDSA-AES128-GCM-SHA256', 'AECDH-AES128-SHA'],
      },
      groups: [
        { target: 'ec', version: 'tls1_3', offer: ['ffdhe4096'] },
        { target: 'default', version: 'tls1_3', offer: ['P-384', 'X25519'] },
        { target: 'rsa', version: 'tls1_2', offer: ['P-521', 'P-384'] },
      ],
    },
  },
  {
    name: 'fixed: legacy versions, a group list, DH, no HTTP/2, early data after a HelloRetryRequest',
    protocols: 'TLSv1 TLSv1.2 TLSv1.3',
    ciphers: LEGACY_CIPHERS,
    curve: 'secp384r1:prime256v1',
    dhParam: true,
    tickets: false,
    cache: true,
    timeout: '30m',
    hsts: true,
    hstsMaxAge: '600',
    hstsIncludeSubdomains: false,
    hstsPreload: true,
    sslRedirect: false,
    http2: false,
    earlyData: true,
    hosts: {
      ec: { ciphers: ANNOTATION_CIPHERS[3], prefer: 'false' },
      rsa: { ciphers: ANNOTATION_CIPHERS[4], prefer: null },
      plain: { ciphers: ANNOTATION_CIPHERS[1], prefer: 'true' },
    },
    plan: {
      session: { target: 'plain', other: 'rsa' },
      // ssl-dh-param: rsa's DHE suite; the legacy CBC ones of the ConfigMap's list.
      suites: {
        ec: ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-GCM-SHA384'],
        rsa: ['DHE-RSA-AES128-GCM-SHA256', 'AES128-SHA'],
        plain: ['ECDHE-ECDSA-AES128-SHA', 'AECDH-AES128-SHA'],
        default: ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES256-SHA384'],
      },
      alpn: [
        { target: 'ec', offer: 'h2' },
        { target: 'rsa', offer: 'http/1.1' },
      ],
      versions: [
        ['tls1', 'tls1_1', 'tls1_2', 'tls1_3'],
        ['tls1_3', 'tls1', 'tls1_1', 'tls1_2'],
      ],
      suites13: [
        { target: 'ec', suite: 'TLS_CHACHA20_POLY1305_SHA256' },
        { target: 'plain', suite: 'TLS_AES_128_CCM_SHA256' },
      ],
      orders: [
        { target: 'rsa', version: 'tls1_2', offer: ['ECDHE-RSA-CHACHA20-POLY1305', 'AES128-GCM-SHA256'] },
        {
          target: 'plain',
          version: 'tls1_2',
          offer: ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305'],
        },
        { target: 'ec', version: 'tls1_3', offer: ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384'] },
      ],
    },
  },
  {
    ...NO_KEYS,
    name: 'fixed: session tickets without the session cache',
    tickets: true,
    cache: false,
    hosts: {
      ec: { ciphers: null, prefer: null },
      rsa: { ciphers: null, prefer: null },
      plain: { ciphers: null, prefer: null },
    },
    plan: { session: { target: 'rsa', other: 'default' } },
    only: ['session'],
  },
  {
    ...NO_KEYS,
    name: 'fixed: early data',
    earlyData: true,
    hosts: {
      ec: { ciphers: null, prefer: null },
      rsa: { ciphers: null, prefer: null },
      plain: { ciphers: null, prefer: null },
    },
    plan: { session: { target: 'ec', other: 'plain' } },
    only: ['session'],
  },
  {
    ...NO_KEYS,
    name: 'fixed: a version gap',
    protocols: 'TLSv1 TLSv1.3',
    hosts: {
      ec: { ciphers: null, prefer: null },
      rsa: { ciphers: null, prefer: null },
      plain: { ciphers: ANNOTATION_CIPHERS[2], prefer: null },
    },
    only: ['version'],
  },
];

const hostArb: fc.Arbitrary<HostConfig> = fc.record({
  ciphers: fc.option(fc.constantFrom(...ANNOTATION_CIPHERS), { freq: 2 }),
  prefer: fc.constantFrom<HostConfig['prefer']>(null, 'true', 'false'),
});

const bool = () => fc.option(fc.boolean(), { freq: 2 });

const configArb: fc.Arbitrary<Omit<Config, 'name'>> = fc.record({
  protocols: fc.option(
    fc.constantFrom(
      'TLSv1.2',
      'TLSv1.3',
      'TLSv1.1 TLSv1.2',
      'TLSv1 TLSv1.1 TLSv1.2 TLSv1.3',
      'TLSv1 TLSv1.3',
    ),
    { freq: 2 },
  ),
  ciphers: fc.option(fc.constantFrom(...CONFIGMAP_CIPHERS), { freq: 2 }),
  curve: fc.option(fc.constantFrom('X25519', 'prime256v1:X25519', 'X448:secp521r1', 'secp384r1'), {
    freq: 2,
  }),
  dhParam: fc.boolean(),
  tickets: bool(),
  cache: bool(),
  timeout: fc.option(fc.constantFrom('5m', '30m', '1h'), { freq: 2 }),
  hsts: bool(),
  hstsMaxAge: fc.option(fc.constantFrom('0', '600', '63072000'), { freq: 2 }),
  hstsIncludeSubdomains: bool(),
  hstsPreload: bool(),
  sslRedirect: bool(),
  http2: bool(),
  earlyData: bool(),
  hosts: fc.record({ ec: hostArb, rsa: hostArb, plain: hostArb }),
});

function describeConfig(c: Config): string {
  const data = configMapData(c);
  const hosts = SLOTS.map((s) => {
    const h = c.hosts[s];
    const parts = [
      h.ciphers === null ? '' : `ssl-ciphers ${h.ciphers}`,
      h.prefer === null ? '' : `prefer ${h.prefer}`,
    ];
    return `${s} [${parts.filter(Boolean).join(', ')}]`;
  });
  return `${c.name}: ConfigMap ${JSON.stringify(data)}; ${hosts.join('; ')}`;
}

// ---------- material, backend ----------

interface Material {
  dir: string;
  ec: { cert: string; key: string };
  rsa: { cert: string; key: string };
  dhparam: string;
}

async function material(): Promise<Material> {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-tlsparams-'));
  const ec = await certificateFor(hostOf('ec'));
  const made = await generate([{ name: 'commonName', value: hostOf('rsa') }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: hostOf('rsa') }] }],
  });
  const rsa = { cert: made.cert, key: made.private };
  const params = await runCommand(requireBinary('openssl'), [
    'genpkey',
    '-genparam',
    '-algorithm',
    'DH',
    '-pkeyopt',
    'group:ffdhe2048',
  ]);
  assert.equal(params.code, 0, params.stderr);
  const fallback = await testCertificate();
  const files: Record<string, string> = {
    'ec.crt': ec.cert,
    'ec.key': ec.key,
    'rsa.crt': rsa.cert,
    'rsa.key': rsa.key,
    'default.crt': fallback.cert,
    'default.key': fallback.key,
    'dhparam.pem': params.stdout,
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, ec, rsa, dhparam: params.stdout };
}

/** The backend: 200 `ok`; on /sts it sends its own Strict-Transport-Security (replaced over TLS). */
const BACKEND_STS = 'max-age=5; backend';

async function startBackend(): Promise<HttpServer> {
  const server = http.createServer((req, res) => {
    const headers: Record<string, string> = { 'content-type': 'text/plain', 'content-length': '3' };
    if (req.url === '/sts') headers['strict-transport-security'] = BACKEND_STS;
    res.writeHead(200, headers);
    res.end('ok\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

// ---------- the two configurations ----------

function nginxHttp(m: Material, c: Config, [tlsPort, httpPort]: number[], backend: number): string {
  const e = effective(c);
  const ssl = `listen 127.0.0.1:${tlsPort} ssl${e.http2 ? ' http2' : ''}`;
  // lua_ingress.lua's header(): set over https (replacing the backend's), untouched over http.
  const hsts =
    e.hsts === null
      ? ''
      : `proxy_hide_header Strict-Transport-Security; add_header Strict-Transport-Security "${e.hsts}" always;`;
  const proxy = 'proxy_set_header Host $host; proxy_pass http://upstream_balancer;';
  const servers = SLOTS.flatMap((slot) => {
    const h = c.hosts[slot];
    const own =
      slot === 'plain'
        ? ''
        : `ssl_certificate ${m.dir}/${slot}.crt; ssl_certificate_key ${m.dir}/${slot}.key;`;
    const redirect = TLS_SLOTS.includes(slot) && e.sslRedirect ? 'return 308 https://$host$request_uri;' : '';
    return [
      `server { ${ssl}; server_name ${hostOf(slot)}; ${own}`,
      ...(h.ciphers === null ? [] : [`  ssl_ciphers ${h.ciphers};`]),
      ...(h.prefer === null ? [] : [`  ssl_prefer_server_ciphers ${h.prefer === 'true' ? 'on' : 'off'};`]),
      `  location / { ${hsts} ${proxy} } }`,
      `server { listen 127.0.0.1:${httpPort}; server_name ${hostOf(slot)};`,
      `  location / { ${redirect} ${proxy} } }`,
    ];
  });
  return [
    `ssl_protocols ${e.protocols};`,
    `ssl_early_data ${e.earlyData ? 'on' : 'off'};`,
    ...(e.cache ? ['ssl_session_cache shared:SSL:10m;', `ssl_session_timeout ${e.timeout};`] : []),
    `ssl_session_tickets ${e.tickets ? 'on' : 'off'};`,
    ...(e.ciphers === '' ? [] : [`ssl_ciphers '${e.ciphers}';`, 'ssl_prefer_server_ciphers on;']),
    ...(c.dhParam ? [`ssl_dhparam ${m.dir}/dhparam.pem;`] : []),
    `ssl_ecdh_curve ${e.curve};`,
    `ssl_certificate ${m.dir}/default.crt; ssl_certificate_key ${m.dir}/default.key;`,
    `upstream upstream_balancer { server 127.0.0.1:${backend}; }`,
    `server { ${ssl} default_server; server_name _; location / { ${hsts} return 404; } }`,
    `server { listen 127.0.0.1:${httpPort} default_server; server_name _; location / { return 404; } }`,
    ...servers,
  ].join('\n');
}

function keepipTopology(m: Material, c: Config, backend: number): Topology {
  const objects: K8sObject[] = [
    controllerConfigMap(configMapData(c)),
    ...serviceWithEndpoints({ name: 'web', ports: [backend] }),
    tlsSecret('ec-tls', m.ec.cert, m.ec.key),
    tlsSecret('rsa-tls', m.rsa.cert, m.rsa.key),
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'dhparam', namespace: 'default' },
      data: { 'dhparam.pem': Buffer.from(m.dhparam).toString('base64') },
    },
  ];
  for (const slot of SLOTS) {
    const h = c.hosts[slot];
    const annotations: Record<string, string> = {};
    if (h.ciphers !== null) annotations['ssl-ciphers'] = h.ciphers;
    if (h.prefer !== null) annotations['ssl-prefer-server-ciphers'] = h.prefer;
    objects.push(
      ingress({
        name: slot,
        host: hostOf(slot),
        ...(TLS_SLOTS.includes(slot) ? { tlsSecret: `${slot}-tls` } : {}),
        annotations,
        paths: [{ path: '/', service: 'web', port: 80 }],
      }),
    );
  }
  const topology = topologyOf(objects);
  const errors = topology.issues.filter((i) => i.severity === 'error');
  assert.deepEqual(errors, [], `keepip reports errors for ${describeConfig(c)}`);
  return topology;
}

// ---------- openssl s_client, in batches ----------

type Version = 'tls1' | 'tls1_1' | 'tls1_2' | 'tls1_3';
const VERSIONS: readonly Version[] = ['tls1', 'tls1_1', 'tls1_2', 'tls1_3'];

/** One s_client run: the server name (null: none), its arguments, what it sends after the handshake. */
interface Step {
  sni: string | null;
  args: string[];
  /** A request, sent with -ign_eof (the answer is read until the server closes); none: s_client ends after the handshake. */
  request?: string;
  /** Only run when this session file exists (another step saved it). */
  needs?: string;
}

/** What a probe saw of one server. */
interface Outcome {
  /** `ok`, or how it failed: `alert <n>` (the server's alert), else the client's reason. */
  handshake: string;
  version: string | null;
  cipher: string | null;
  group: string | null;
  alpn: string | null;
  resumed: boolean;
  /** The session ticket lifetime hint (seconds) of the saved session, null without a ticket. */
  ticket: number | null;
  /** `accepted` or `not accepted` (rejected, or not sent: the session allows none); null: none tried. */
  early: string | null;
  /** The HTTP status of the answer to the request sent, if any. */
  status: number | null;
  /** Every Strict-Transport-Security value of that answer, joined with ` | `; null: none. */
  sts: string | null;
  /** The Location of a plain HTTP answer (ssl-redirect). */
  location: string | null;
  /** A session probe: whether the session also resumed when offered for another name. */
  resumedElsewhere: boolean | null;
}

const NONE: Outcome = {
  handshake: 'none',
  version: null,
  cipher: null,
  group: null,
  alpn: null,
  resumed: false,
  ticket: null,
  early: null,
  status: null,
  sts: null,
  location: null,
  resumedElsewhere: null,
};

const NO_CA = ['-no-CAfile', '-no-CApath', '-no-CAstore'];

function failureOf(text: string): string {
  if (text.startsWith('NO SESSION')) return 'no session saved';
  const alert = /SSL alert number (\d+)/.exec(text);
  if (alert !== null) return `alert ${alert[1]}`;
  return /:SSL routines:[^:]*:([^:\n]+)/.exec(text)?.[1] ?? 'failed';
}

/** Reads what s_client printed (stdout and stderr together). */
function parseSClient(text: string, early: boolean): Outcome {
  const session = /^(New|Reused), \S+, Cipher is (\S+)/m.exec(text);
  const established = session !== null && session[2] !== '(NONE)';
  const cipher = established ? session[2]! : null;
  // `New, TLSv1.0, Cipher is …` names the suite's oldest version: the session's Protocol line is the
  // negotiated one (TLS 1.3 prints none before a ticket came, and its suites are TLS_*).
  const protocol = /^\s+Protocol\s*: (\S+)/m.exec(text)?.[1] ?? null;
  const version = cipher === null ? null : cipher.startsWith('TLS_') ? 'TLSv1.3' : protocol;
  const head = /\r?\n(HTTP\/1\.[01] (\d{3})[\s\S]*?)\r?\n\r?\n/.exec(text);
  const sts = [...(head?.[1] ?? '').matchAll(/^strict-transport-security: *(.*?)\r?$/gim)].map((x) => x[1]);
  const accepted = /Early data was accepted/.test(text);
  return {
    handshake: established ? 'ok' : failureOf(text),
    version,
    cipher,
    group: established ? (/^Server Temp Key: (.*)$/m.exec(text)?.[1] ?? null) : null,
    alpn: /^ALPN protocol: (\S+)/m.exec(text)?.[1] ?? null,
    resumed: session?.[1] === 'Reused',
    ticket: null,
    early: early ? (accepted ? 'accepted' : 'not accepted') : null,
    status: head === null ? null : Number(head[2]),
    sts: sts.length === 0 ? null : sts.join(' | '),
    location: null,
    resumedElsewhere: null,
  };
}

/**
 * The ticket lifetime hint of a saved session (s_client's -sess_out PEM: SSL_SESSION's DER, the hint is
 * its [9] INTEGER); null without a ticket or without a file.
 */
function ticketLifetime(file: string): number | null {
  if (!existsSync(file)) return null;
  const b64 = /-----BEGIN SSL SESSION PARAMETERS-----([\s\S]*?)-----END/.exec(
    readFileSync(file, 'latin1'),
  )?.[1];
  if (b64 === undefined) return null;
  const der = Buffer.from(b64.replace(/\s+/g, ''), 'base64');
  const tlv = (at: number) => {
    let length = der[at + 1]!;
    let start = at + 2;
    if (length & 0x80) {
      const n = length & 0x7f;
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + der[start + i]!;
      start += n;
    }
    return { tag: der[at]!, start, end: start + length };
  };
  const outer = tlv(0);
  for (let at = outer.start; at < outer.end; ) {
    const field = tlv(at);
    if (field.tag === 0xa9) {
      const int = tlv(field.start);
      let value = 0;
      for (let i = int.start; i < int.end; i++) value = value * 256 + der[i]!;
      return value;
    }
    at = field.end;
  }
  return null;
}

const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * Runs `jobs` (each a sequence of steps against 127.0.0.1:port) from one shell, four at a time: a
 * process forked by the test runner costs more than the handshake it is for. Each step's output, by job.
 */
async function runBatch(dir: string, jobs: readonly { port: number; steps: readonly Step[] }[]) {
  const openssl = requireBinary('openssl');
  const files: string[] = [];
  const outputs = jobs.map((job, j) => {
    const lines = job.steps.map((step, i) => {
      const out = join(dir, `out-${j}-${i}.txt`);
      const input = join(dir, `in-${j}-${i}.txt`);
      writeFileSync(input, step.request ?? '');
      const args = ['s_client', '-connect', `127.0.0.1:${job.port}`, ...NO_CA];
      args.push(...(step.sni === null ? ['-noservername'] : ['-servername', step.sni]), ...step.args);
      if (step.request !== undefined) args.push('-ign_eof');
      const run = `${[openssl, ...args].map(quote).join(' ')} < ${quote(input)} > ${quote(out)} 2>&1`;
      return step.needs === undefined
        ? run
        : `if [ -f ${quote(step.needs)} ]; then ${run}; else echo 'NO SESSION' > ${quote(out)}; fi`;
    });
    const script = join(dir, `job-${j}.sh`);
    // A refused handshake is an outcome, not a failure of the batch.
    writeFileSync(script, `${lines.join('\n')}\nexit 0\n`);
    files.push(script);
    return job.steps.map((_, i) => join(dir, `out-${j}-${i}.txt`));
  });
  writeFileSync(join(dir, 'jobs.txt'), `${files.join('\n')}\n`);
  // The batch is bounded as a whole: a server that never answers fails it after 60 s (s_client has no
  // deadline of its own; one left behind ends when the test stops that server).
  const run = await runCommand(
    'sh',
    ['-c', `xargs -P ${CONCURRENCY} -n 1 sh < ${quote(join(dir, 'jobs.txt'))}`],
    {
      timeoutMs: 60_000,
    },
  );
  assert.equal(run.code, 0, `the s_client batch failed: ${run.stderr}`);
  return outputs.map((paths) => paths.map((p) => (existsSync(p) ? readFileSync(p, 'latin1') : '')));
}

// ---------- probes ----------

const EC_SUITES = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-SHA384',
  'AECDH-AES128-SHA',
] as const;
const RSA_SUITES = [
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-SHA',
  'AES128-SHA',
] as const;
const TLS13_SUITES = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_128_CCM_SHA256',
] as const;
const GROUPS_13 = [
  'X25519',
  'P-256',
  'P-384',
  'P-521',
  'X448',
  'ffdhe2048',
  'ffdhe3072',
  'ffdhe4096',
] as const;
const GROUPS_12 = ['X25519', 'P-256', 'P-384', 'P-521', 'X448'] as const;

const suitesOf = (t: Target) => (t === 'rsa' ? RSA_SUITES : EC_SUITES);

type Path = '/sts' | '/x';

/** What a configuration's probes are made of (generated with it). */
interface Plan {
  /** The default server is probed without SNI (else with a name no host has). */
  noSni: boolean;
  /** Two orders of the four versions: target i is offered versions[0][i] and versions[1][i] alone. */
  versions: [Version[], Version[]];
  /** TLS 1.2 suites offered one at a time, per target. */
  suites: Record<Target, string[]>;
  suites13: { target: Target; suite: string }[];
  /** Several suites in the client's order. */
  orders: { target: Target; version: 'tls1_2' | 'tls1_3'; offer: string[] }[];
  groups: { target: Target; version: 'tls1_2' | 'tls1_3'; offer: string[] }[];
  alpn: { target: Target; offer: 'h2' | 'http/1.1' }[];
  /** Sessions are saved on `target`, offered back to it, then to `other`. */
  session: { target: Target; other: Target };
  https: Record<Target, Path>;
  http: Record<Target, Path>;
}

const targetArb = fc.constantFrom<Target>(...TARGETS);
const perTarget = <T>(arb: (t: Target) => fc.Arbitrary<T>) =>
  fc.record({ ec: arb('ec'), rsa: arb('rsa'), plain: arb('plain'), default: arb('default') });
const pathArb = fc.constantFrom<Path>('/sts', '/x');
const versionOrder = fc.shuffledSubarray([...VERSIONS], { minLength: 4 });

const planArb: fc.Arbitrary<Plan> = fc.record({
  noSni: fc.boolean(),
  versions: fc.tuple(versionOrder, versionOrder),
  suites: perTarget((t) => fc.shuffledSubarray([...suitesOf(t)], { minLength: 2, maxLength: 2 })),
  suites13: fc.array(fc.record({ target: targetArb, suite: fc.constantFrom(...TLS13_SUITES) }), {
    minLength: 2,
    maxLength: 2,
  }),
  orders: fc.tuple(
    targetArb.chain((target) =>
      fc.record({
        target: fc.constant(target),
        version: fc.constant<'tls1_2'>('tls1_2'),
        offer: fc.shuffledSubarray([...suitesOf(target)], { minLength: 2, maxLength: 4 }),
      }),
    ),
    targetArb.chain((target) =>
      fc.record({
        target: fc.constant(target),
        version: fc.constant<'tls1_2'>('tls1_2'),
        offer: fc.shuffledSubarray([...suitesOf(target)], { minLength: 2, maxLength: 4 }),
      }),
    ),
    fc.record({
      target: targetArb,
      version: fc.constant<'tls1_3'>('tls1_3'),
      offer: fc.shuffledSubarray([...TLS13_SUITES.slice(0, 3)], { minLength: 2 }),
    }),
  ),
  groups: fc.array(
    fc.oneof(
      fc.record({
        target: targetArb,
        version: fc.constant<'tls1_3'>('tls1_3'),
        offer: fc.shuffledSubarray([...GROUPS_13], { minLength: 1, maxLength: 2 }),
      }),
      fc.record({
        target: targetArb,
        version: fc.constant<'tls1_2'>('tls1_2'),
        offer: fc.shuffledSubarray([...GROUPS_12], { minLength: 1, maxLength: 2 }),
      }),
    ),
    { minLength: 3, maxLength: 3 },
  ),
  alpn: fc.tuple(
    fc.record({ target: targetArb, offer: fc.constant<'h2'>('h2') }),
    fc.record({ target: targetArb, offer: fc.constant<'http/1.1'>('http/1.1') }),
  ),
  session: fc.record({ target: targetArb, other: targetArb }).filter((s) => s.target !== s.other),
  https: perTarget(() => pathArb),
  http: perTarget(() => pathArb),
}) as fc.Arbitrary<Plan>;

interface Server {
  name: 'nginx' | 'keepip';
  tls: number;
  http: number;
  /** Where this server's session and batch files go. */
  dir: string;
}

/** One comparison: what it is, its s_client steps for a server, and how their outputs read. */
interface Probe {
  kind: 'version' | 'cipher' | 'order' | 'group' | 'alpn' | 'https' | 'http' | 'session';
  label: string;
  /** The probe's target, and the version it offers (when it offers one alone). */
  target: Target;
  version?: Version;
  steps(s: Server): Step[];
  read(outputs: string[], s: Server): Outcome;
}

const sniOf = (t: Target, plan: Plan) =>
  t === 'default' ? (plan.noSni ? null : 'unknown.params.test') : hostOf(t);
/** The Host of a request for `t`. */
const hostHeaderOf = (t: Target) => (t === 'default' ? 'unknown.params.test' : hostOf(t));
const requestFor = (t: Target, path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: ${hostHeaderOf(t)}\r\nConnection: close\r\n\r\n`;

function handshakeProbes(plan: Plan): Probe[] {
  const probes: Probe[] = [];
  const add = (kind: Probe['kind'], target: Target, label: string, args: string[], version?: Version) =>
    probes.push({
      kind,
      label: `${target}: ${label}`,
      target,
      ...(version === undefined ? {} : { version }),
      steps: () => [{ sni: sniOf(target, plan), args }],
      read: ([out]) => parseSClient(out ?? '', false),
    });
  TARGETS.forEach((t, i) => {
    for (const v of new Set([plan.versions[0][i]!, plan.versions[1][i]!]))
      add('version', t, `-${v} alone`, [`-${v}`, '-cipher', 'ALL:@SECLEVEL=0', '-alpn', 'h2,http/1.1'], v);
    for (const suite of plan.suites[t])
      add(
        'cipher',
        t,
        `TLS 1.2 suite ${suite} alone`,
        ['-tls1_2', '-cipher', `${suite}@SECLEVEL=0`],
        'tls1_2',
      );
  });
  for (const { target, suite } of plan.suites13)
    add('cipher', target, `TLS 1.3 suite ${suite} alone`, ['-tls1_3', '-ciphersuites', suite], 'tls1_3');
  for (const o of plan.orders) {
    const offer = o.offer.join(':');
    const args = o.version === 'tls1_2' ? ['-cipher', `${offer}@SECLEVEL=0`] : ['-ciphersuites', offer];
    add('order', o.target, `-${o.version} suites offered as ${offer}`, [`-${o.version}`, ...args], o.version);
  }
  for (const g of plan.groups) {
    const offer = g.offer.join(':');
    add('group', g.target, `-${g.version} groups ${offer}`, [`-${g.version}`, '-groups', offer], g.version);
  }
  for (const a of plan.alpn) add('alpn', a.target, `ALPN ${a.offer} alone`, ['-alpn', a.offer]);
  return probes;
}

/** A request over TLS (HSTS) and over plain HTTP (no HSTS; ssl-redirect). */
function requestProbes(plan: Plan): Probe[] {
  return TARGETS.flatMap((target): Probe[] => [
    {
      kind: 'https',
      label: `${target}: GET ${plan.https[target]} over TLS`,
      target,
      steps: () => [
        {
          sni: sniOf(target, plan),
          args: ['-alpn', 'http/1.1'],
          request: requestFor(target, plan.https[target]),
        },
      ],
      read: ([out]) => parseSClient(out ?? '', false),
    },
    {
      kind: 'http',
      label: `${target}: GET ${plan.http[target]} over plain HTTP`,
      target,
      steps: () => [],
      read: () => NONE, // sent by node:http (plain HTTP), in askHttp
    },
  ]);
}

let fileCounter = 0;

/**
 * Sessions, per version: one saved on `target` (with a request, so a TLS 1.3 ticket has come), offered
 * back to it (TLS 1.3: with early data, the request again), then to `other`.
 */
function sessionProbes(plan: Plan): Probe[] {
  const { target, other } = plan.session;
  return (['tls1_2', 'tls1_3'] as const).map((v): Probe => {
    const files = new Map<string, { session: string; early: string }>();
    const filesOf = (s: Server) => {
      let f = files.get(s.name);
      if (f === undefined) {
        const n = ++fileCounter;
        f = { session: join(s.dir, `sess-${n}.pem`), early: join(s.dir, `early-${n}.txt`) };
        writeFileSync(f.early, requestFor(target, '/x'));
        files.set(s.name, f);
      }
      return f;
    };
    return {
      kind: 'session',
      label: `${target} then ${other}: -${v} session saved, offered back${v === 'tls1_3' ? ' with early data' : ''}, then to ${other}`,
      target,
      version: v,
      steps: (s) => {
        const f = filesOf(s);
        const early = v === 'tls1_3' ? ['-early_data', f.early] : [];
        return [
          {
            sni: sniOf(target, plan),
            args: [`-${v}`, '-sess_out', f.session],
            request: requestFor(target, '/x'),
          },
          { sni: sniOf(target, plan), args: [`-${v}`, '-sess_in', f.session, ...early], needs: f.session },
          { sni: sniOf(other, plan), args: [`-${v}`, '-sess_in', f.session], needs: f.session },
        ];
      },
      read: ([save, again, cross], s) => {
        const first = parseSClient(save ?? '', false);
        const same = parseSClient(again ?? '', v === 'tls1_3');
        const elsewhere = parseSClient(cross ?? '', false);
        // The offer back is the outcome (a session that could not be made: that handshake's failure);
        // the offer to another name adds whether it resumed. The answer to early data is not compared.
        return {
          ...same,
          handshake: first.handshake === 'ok' ? same.handshake : first.handshake,
          status: null,
          sts: null,
          ticket: ticketLifetime(filesOf(s).session),
          resumedElsewhere: elsewhere.resumed,
        };
      },
    };
  });
}

/** The plain HTTP probes, by node:http (nothing of TLS in them). */
async function askHttp(s: Server, target: Target, path: Path): Promise<Outcome> {
  const reply = await request(s.http, { host: hostHeaderOf(target), path });
  const sts = reply.headers['strict-transport-security'];
  return { ...NONE, status: reply.status, sts: sts ?? null, location: reply.headers.location ?? null };
}

// ---------- judging ----------

type Kind = 'unsafe' | 'allowed' | 'other';

interface Verdict {
  kind: Kind;
  probe: Probe['kind'];
  /** For `allowed`: the ALLOWED entries that account for it. */
  rules: Rule[];
  text: string;
}

interface Case {
  c: Config;
  e: Effective;
  probe: Probe;
  n: Outcome;
  k: Outcome;
}

const FIELDS = [
  'handshake',
  'version',
  'cipher',
  'group',
  'alpn',
  'resumed',
  'ticket',
  'early',
  'status',
  'sts',
  'location',
  'resumedElsewhere',
] as const;
type Field = (typeof FIELDS)[number];

/** The ssl-ciphers a handshake for the probe's target gets: the host's annotation, else the ConfigMap's. */
const ciphersFor = (x: Case) =>
  (x.probe.target === 'default' ? null : x.c.hosts[x.probe.target].ciphers) ?? x.e.ciphers;
const tls13 = (x: Case) => x.probe.version === 'tls1_3' || x.n.version === 'TLSv1.3';
/** A refused handshake has nothing else to compare (no suite, no answer). */
const keepipRefused = (x: Case): readonly Field[] => (x.k.handshake === 'ok' ? [] : FIELDS);
/** ssl-protocols with a version left out between two listed ones (`TLSv1 TLSv1.3`). */
function hasGap(protocols: string): boolean {
  const tokens = protocols.split(/\s+/);
  const listed = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'].map((v) => tokens.includes(v));
  return listed.slice(listed.indexOf(true), listed.lastIndexOf(true) + 1).includes(false);
}

interface Allowed {
  /** The doc line that says so, and what is seen. */
  doc: string;
  /** The fields this difference accounts for in a pair ([]: not this one). */
  explains(x: Case): readonly Field[];
  /** nginx refuses because of its own inconsistency, not a setting: keepip completing it is no weakness. */
  nginxFails?: true;
}

/** The TLS 1.3 suites nginx always offers (its ssl_ciphers does not touch them). */
const NGINX_TLS13 = TLS13_SUITES.slice(0, 3) as readonly string[];
const LARGE_FFDHE = ['ffdhe4096', 'ffdhe6144', 'ffdhe8192'];

/**
 * Where keepip is stricter than nginx, or Node's OpenSSL (3.5) does what nginx's (3.0) does not, each with
 * the doc line that says so and what is seen.
 */
const ALLOWED = {
  'tls13-sessions-need-tickets': {
    doc:
      'docs/gateway.md, TLS sessions: "Node\'s TLS looks sessions up by the TLS 1.2 id only, never by the TLS ' +
      '1.3 identity clients resume with, so TLS 1.3 clients resume by tickets alone (ingress-nginx resumes ' +
      'them from its cache too); OpenSSL still hands TLS 1.3 clients a ticket for that cache, which is ' +
      'never accepted"; compat "Deliberate differences": "without ssl-session-tickets TLS 1.3 clients do ' +
      'not resume". nginx resumes its cache\'s ticket (the resumed suite and group may differ)',
    explains: (x: Case) =>
      x.probe.kind === 'session' &&
      x.probe.version === 'tls1_3' &&
      !x.e.tickets &&
      x.n.resumed &&
      !x.k.resumed
        ? ['resumed', 'cipher', 'group']
        : [],
  },
  'session-stays-with-its-name': {
    doc:
      'docs/gateway.md, TLS sessions: "Every server context carries a session id context made of its ' +
      'certificate …", and the context is chosen from the SNI before the handshake: a session resumes only ' +
      "for a name whose certificate made it. nginx looks the session up in the default server's context " +
      "before its SNI callback switches servers, so it resumes another name's session (even with that " +
      "session's suite when the name's ssl-ciphers exclude it)",
    explains: (x: Case) =>
      x.probe.kind === 'session' && x.n.resumedElsewhere === true && x.k.resumedElsewhere === false
        ? ['resumedElsewhere']
        : [],
  },
  'refusal-reason': {
    doc:
      "both refuse, for another reason or with another alert: Node's OpenSSL 3.5 answers a version that none " +
      "of the name's suites can serve with protocol_version (70) where nginx's 3.0 settles the version " +
      "with the default server's context and then finds no suite (handshake_failure, 40). Not in the docs: " +
      'only how the refusal reads differs',
    explains: (x: Case) => (x.n.handshake !== 'ok' && x.k.handshake !== 'ok' ? ['handshake'] : []),
  },
  'nginx-refuses-all-below-a-version-gap': {
    doc:
      'docs/gateway.md, TLS settings: "Versions are honoured exactly as listed, a gap included" (compat: ' +
      '"exactly as listed (a gap is kept)"). nginx\'s OpenSSL 3.0 takes the versions below a gap of ' +
      'ssl_protocols (TLSv1 TLSv1.3) as its range when it checks that some suite serves them: with no ' +
      "TLS 1.0 suite in ssl-ciphers (ingress-nginx's default list has none) it refuses every handshake, " +
      'TLS 1.3 included (handshake_failure). keepip serves the listed version above the gap',
    explains: (x: Case) =>
      hasGap(x.e.protocols) && x.n.handshake === 'alert 40' && x.k.handshake === 'ok' ? FIELDS : [],
    nginxFails: true,
  },
  'nginx-hello-retry-suite-mismatch': {
    doc:
      'docs/gateway.md, TLS settings: "they really differ per host on one port (nginx, and a Node SNI ' +
      'callback, can only swap the certificate there)": nginx picks the TLS 1.3 suite of its ' +
      "HelloRetryRequest in the default server's (server) order before its SNI callback, then the second " +
      'ClientHello with the host\'s ssl-prefer-server-ciphers "false" (client order), finds another suite and ' +
      'aborts (illegal_parameter). keepip completes it with a suite nginx offers that host',
    explains: (x: Case) =>
      x.probe.version === 'tls1_3' &&
      x.n.handshake === 'alert 47' &&
      x.k.handshake === 'ok' &&
      x.probe.target !== 'default' &&
      x.c.hosts[x.probe.target].prefer === 'false' &&
      NGINX_TLS13.includes(x.k.cipher ?? '')
        ? FIELDS
        : [],
    nginxFails: true,
  },
  'tls13-suites-listed': {
    doc:
      'docs/gateway.md, TLS settings: "ssl-ciphers governs TLS 1.2 and older; TLS 1.3 suites stay the ' +
      'defaults unless TLS_* names are listed (nginx\'s ssl_ciphers neither touches them)"',
    explains: (x: Case) =>
      tls13(x) && /(^|:)TLS_/.test(ciphersFor(x)) ? [...keepipRefused(x), 'cipher'] : [],
  },
  'per-host-preference-tls13': {
    doc:
      'docs/gateway.md, TLS settings: "Because the settings are chosen from the SNI before the handshake, ' +
      'they really differ per host on one port (nginx, and a Node SNI callback, can only swap the ' +
      'certificate there)": a host with ssl-prefer-server-ciphers "false" gets the TLS 1.3 suite and the ' +
      "group of a HelloRetryRequest in the client's order; nginx picks them in the default server's " +
      "(the server's) order, as before its SNI callback",
    explains: (x: Case) =>
      tls13(x) &&
      x.probe.target !== 'default' &&
      x.c.hosts[x.probe.target].prefer === 'false' &&
      x.n.handshake === 'ok' &&
      x.k.handshake === 'ok'
        ? ['group', 'cipher']
        : [],
  },
  'openssl-3.5-default-groups': {
    doc:
      'docs/gateway.md: "ssl-ecdh-curve (default auto, OpenSSL\'s)": Node\'s OpenSSL 3.5 default groups, where ' +
      "nginx has 3.0's. 3.5 has no ffdhe4096/6144/8192 by default, and picks its own preferred group " +
      "(X25519, P-256 first; by HelloRetryRequest in TLS 1.3) over the client's key share or order, where " +
      "3.0 takes the client's P-384, P-521 or ffdhe2048. Not spelt out in the docs",
    explains: (x: Case) => {
      if (x.c.curve !== null) return [];
      if (x.k.handshake === 'ok') return ['group'];
      const offered = x.probe.kind === 'group' ? x.probe.label.split(' groups ')[1]!.split(':') : [];
      return offered.length > 0 && offered.every((g) => LARGE_FFDHE.includes(g)) ? FIELDS : [];
    },
  },
  'no-early-data': {
    doc:
      'docs/ingress-nginx-compat.md, ssl-early-data: "not implemented by keepip; the Ingress is served without ' +
      'it: TLS 1.3 0-RTT data is never accepted (Node\'s TLS server has no early data)"',
    explains: (x: Case) => (x.n.early === 'accepted' && x.k.early === 'not accepted' ? ['early'] : []),
  },
} satisfies Record<string, Allowed>;
type Rule = keyof typeof ALLOWED;
const RULES = Object.keys(ALLOWED) as Rule[];

/** What makes keepip weaker than nginx for this pair, or null. */
function weakerThanNginx(x: Case): string | null {
  const { n, k, probe } = x;
  if (probe.kind !== 'http' && n.handshake !== 'ok' && k.handshake === 'ok')
    return 'completes a handshake nginx refuses';
  if (k.resumed && !n.resumed) return 'resumes a session nginx does not';
  if (k.resumedElsewhere === true && n.resumedElsewhere !== true) return "resumes another name's session";
  if (k.early === 'accepted' && n.early !== 'accepted') return 'takes early data nginx refuses';
  if (k.ticket !== null && (n.ticket === null || k.ticket > n.ticket))
    return 'issues tickets that resume for longer than nginx allows';
  if (probe.kind === 'https' && n.sts !== null && k.sts !== n.sts)
    return 'sends no (or another) Strict-Transport-Security where nginx sends one';
  if (probe.kind === 'http' && k.sts !== n.sts && k.sts !== null) return 'sends HSTS over plain HTTP';
  return null;
}

function judge(x: Case): Verdict | null {
  const fields = FIELDS.filter((f) => x.n[f] !== x.k[f]);
  if (fields.length === 0) return null;
  const show = (o: Outcome) => JSON.stringify(Object.fromEntries(fields.map((f) => [f, o[f]])));
  const text = `${x.probe.label}: keepip ${show(x.k)}, nginx ${show(x.n)}`;
  const rules = RULES.filter((r) => ALLOWED[r].explains(x).some((f) => fields.includes(f)));
  const explained = new Set(rules.flatMap((r) => ALLOWED[r].explains(x)));
  const allowed = fields.every((f) => explained.has(f));
  const weaker = weakerThanNginx(x);
  const excused = allowed && rules.some((r) => (ALLOWED[r] as Allowed).nginxFails === true);
  if (weaker !== null && !excused)
    return { kind: 'unsafe', probe: x.probe.kind, rules: [], text: `${text} (keepip ${weaker})` };
  return { kind: allowed ? 'allowed' : 'other', probe: x.probe.kind, rules: allowed ? rules : [], text };
}

// ---------- the bench ----------

interface Bench {
  m: Material;
  backend: HttpServer;
  gateway: TestGateway;
  verdicts: Verdict[];
  /** How often nginx answered each way (the run is not vacuous). */
  seen: Map<string, number>;
}

function coverageOf(probe: Probe, n: Outcome): string[] {
  const out: string[] = [];
  if (probe.kind !== 'http') out.push(`${probe.kind} ${n.handshake === 'ok' ? 'accepted' : 'refused'}`);
  if (n.alpn !== null) out.push(`alpn ${n.alpn}`);
  if (n.cipher?.startsWith('DHE-')) out.push('dhe suite accepted');
  if (probe.kind === 'session') out.push(`${probe.version} ${n.resumed ? 'resumed' : 'not resumed'}`);
  if (n.early !== null) out.push(`early data ${n.early}`);
  if (n.sts !== null) out.push(`${probe.kind} with hsts`);
  if (n.status !== null) out.push(`${probe.kind} status ${n.status}`);
  return out;
}

/** Every probe of `probes` against both servers: s_client steps in one batch, plain HTTP by node:http. */
async function askBoth(probes: readonly Probe[], plan: Plan, servers: readonly [Server, Server]) {
  const jobs = probes.flatMap((probe) => servers.map((s) => ({ port: s.tls, steps: probe.steps(s) })));
  const outputs = await runBatch(
    servers[0].dir,
    jobs.filter((j) => j.steps.length > 0),
  );
  let next = 0;
  const outcome = async (probe: Probe, s: Server) => {
    if (probe.kind === 'http') return askHttp(s, probe.target, plan.http[probe.target]);
    return probe.read(outputs[next++]!, s);
  };
  const out: [Outcome, Outcome][] = [];
  for (const probe of probes) out.push([await outcome(probe, servers[0]), await outcome(probe, servers[1])]);
  return out;
}

async function runConfig(bench: Bench, c: Config, plan: Plan): Promise<void> {
  const port = (bench.backend.address() as AddressInfo).port;
  const reloaded = bench.gateway.gateway.reload(keepipTopology(bench.m, c, port));
  assert.ok(reloaded.ok, `keepip refused the configuration: ${JSON.stringify(reloaded)}`);
  const ngx: RunningNginx = await startNginx({
    freePorts: 2,
    http: (_dir, ports) => nginxHttp(bench.m, c, ports, port),
    waitFor: (ports) => ports.map((p) => ({ host: '127.0.0.1', port: p })),
  });
  const dir = mkdtempSync(join(tmpdir(), 'keepip-tlsparams-run-'));
  try {
    const nginx: Server = { name: 'nginx', tls: ngx.ports[0]!, http: ngx.ports[1]!, dir };
    const keepip: Server = {
      name: 'keepip',
      tls: bench.gateway.httpsPort,
      http: bench.gateway.httpPort,
      dir,
    };
    const probes = [...sessionProbes(plan), ...handshakeProbes(plan), ...requestProbes(plan)].filter(
      (p) => c.only === undefined || c.only.includes(p.kind),
    );
    const outcomes = await askBoth(probes, plan, [nginx, keepip]);
    const e = effective(c);
    probes.forEach((probe, i) => {
      const [n, k] = outcomes[i]!;
      if (process.env.TLSPARAMS_DUMP !== undefined)
        console.log(`${c.name} | ${probe.label}\n  N ${JSON.stringify(n)}\n  K ${JSON.stringify(k)}`);
      for (const kind of coverageOf(probe, n)) bench.seen.set(kind, (bench.seen.get(kind) ?? 0) + 1);
      const verdict = judge({ c, e, probe, n, k });
      if (verdict === null) return;
      if (process.env.TLSPARAMS_DUMP !== undefined)
        console.log(`VERDICT ${verdict.kind} ${verdict.rules.join(',')} ${c.name} | ${verdict.text}`);
      bench.verdicts.push({ ...verdict, text: `${describeConfig(c)}\n    ${verdict.text}` });
    });
  } finally {
    await ngx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function seedOf(): number {
  const chosen = process.env[SEED_VARIABLE];
  return chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? DEFAULT_SEED);
}

function listed(verdicts: readonly Verdict[], seed: number): string {
  const shown = verdicts.slice(0, 12).map((v) => `  ${v.text}`);
  return `seed ${seed}: ${verdicts.length} difference(s)\n${shown.join('\n')}`;
}

describe('TLS server parameters against nginx 1.22 (ingress-nginx template), probed with openssl s_client', () => {
  let bench: Bench | undefined;
  const seed = seedOf();
  const unsafe = (kinds: readonly Probe['kind'][]) =>
    (bench?.verdicts ?? []).filter((v) => v.kind === 'unsafe' && kinds.includes(v.probe));

  before(async () => {
    const m = await material();
    const backend = await startBackend();
    const gateway = await startTestGateway(topologyOf([]));
    bench = { m, backend, gateway, verdicts: [], seen: new Map() };
    const generated = fc
      .sample(configArb, { numRuns: GENERATED, seed })
      .map((c, i): Config => ({ ...c, name: `generated ${i}` }));
    const configs = [...FIXED, ...generated];
    const plans = fc.sample(planArb, { numRuns: configs.length, seed: seed + 1 });
    for (const [i, c] of configs.entries()) await runConfig(bench, c, { ...plans[i]!, ...c.plan });
  });
  after(async () => {
    if (bench === undefined) return;
    await bench.gateway.close();
    bench.backend.closeAllConnections();
    await new Promise<void>((resolve) => bench!.backend.close(() => resolve()));
    rmSync(bench.m.dir, { recursive: true, force: true });
  });

  it('handshakes: keepip accepts no version, suite, group or ALPN that nginx refuses', () => {
    const found = unsafe(['version', 'cipher', 'order', 'group', 'alpn']);
    assert.equal(found.length, 0, listed(found, seed));
  });

  it('sessions: keepip resumes nothing nginx does not, for no longer, and takes no early data nginx refuses', () => {
    const found = unsafe(['session']);
    assert.equal(found.length, 0, listed(found, seed));
  });

  it("HSTS: every HTTPS answer carries nginx's Strict-Transport-Security (the default server's too), plain HTTP none", () => {
    const found = unsafe(['https', 'http']);
    assert.equal(found.length, 0, listed(found, seed));
  });

  it('every other difference is in ALLOWED', () => {
    const found = (bench?.verdicts ?? []).filter((v) => v.kind === 'other');
    assert.equal(found.length, 0, listed(found, seed));
  });

  it('every ALLOWED difference is still seen (the table does not rot)', (t) => {
    const verdicts = bench?.verdicts ?? [];
    for (const rule of RULES) {
      const count = verdicts.filter((v) => v.rules.includes(rule)).length;
      t.diagnostic(`${rule}: ${count} probe(s)`);
      assert.ok(count > 0, `no probe showed the ALLOWED difference ${rule}`);
    }
  });

  it('the probes cover each kind of nginx answer', () => {
    const seen = bench?.seen ?? new Map<string, number>();
    const kinds = ['version accepted', 'version refused', 'cipher accepted', 'cipher refused'];
    kinds.push('order accepted', 'group accepted', 'group refused', 'alpn h2', 'alpn http/1.1');
    kinds.push('alpn refused', 'dhe suite accepted');
    kinds.push('tls1_2 resumed', 'tls1_3 resumed', 'tls1_3 not resumed', 'early data accepted');
    kinds.push('https with hsts', 'http with hsts', 'http status 308', 'https status 404');
    const missing = kinds.filter((kind) => (seen.get(kind) ?? 0) === 0);
    assert.deepEqual(missing, [], JSON.stringify([...seen].sort()));
  });
});
