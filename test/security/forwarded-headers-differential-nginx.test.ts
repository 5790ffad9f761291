// The whole request head the backend receives, keepip against real nginx 1.22 configured as
// ingress-nginx's template (rootfs/etc/nginx/template/nginx.tmpl) renders the same ConfigMap and
// annotations, under a generated matrix of ConfigMap settings: use-forwarded-headers,
// compute-full-forwarded-for, forwarded-for-header, proxy-real-ip-cidr (narrow, 127.0.0.0/8, absent =
// 0.0.0.0/0), use-proxy-protocol (the test client sends PROXY v1 headers), proxy-add-original-uri-header,
// enable-real-ip, generate-request-id, proxy-set-headers (values with variables) and hide-headers; and the
// annotations upstream-vhost and x-forwarded-prefix (beside rewrite-target, where ingress-nginx's
// buildProxyPass writes it). Requests come from distinct 127.x sources with forged X-Forwarded-For
// (chains, garbage, IPv6, ports, two lines), X-Real-IP, X-Client-IP, X-Forwarded-Host/-Port/-Proto/-Scheme,
// X-Scheme, X-Original-Forwarded-For/-Host, X-Original-URI, X-Request-ID, Forwarded, Proxy,
// X-Forwarded-Prefix, X-Forwarded-For-Proxy-Protocol, and a Host with a port or in upper case.
//
// The template as nginx 1.22 (Debian's, no Lua, no headers-more) runs it:
// - realip: real_ip_header (forwarded-for-header; `proxy_protocol` with use-proxy-protocol),
//   real_ip_recursive on, set_real_ip_from per proxy-real-ip-cidr, written only with
//   use-forwarded-headers, use-proxy-protocol or enable-real-ip (http level there, server level here);
// - lua_ingress.rewrite() ($pass_access_scheme, $pass_server_port, $best_http_host, $pass_port) as
//   rewrite-module `set`/`if`s: with use-forwarded-headers X-Forwarded-Proto/-Port/-Host of ANY client
//   (parse_x_forwarded_host: the first of its comma-separated list), https for a PROXY header to 443;
// - use-proxy-protocol + use-forwarded-headers: the template sets an input header with
//   `more_set_input_headers "X-Forwarded-For-Proxy-Protocol: $forwarded_for_proxy_protocol"` (the
//   configured forwarded-for header when $proxy_protocol_addr is in proxy-real-ip-cidr, else
//   $proxy_protocol_addr) and reads it with real_ip_header. Without headers-more this nginx cannot set an
//   input header, so that pair of settings is rendered as two servers: one whose realip reads the
//   forwarded-for header (the probes whose PROXY source is trusted), one whose realip reads
//   `proxy_protocol` (the others), each passing on the X-Forwarded-For-Proxy-Protocol value the
//   input header would have carried (proxy_set_header, the same line upstream);
// - the location's proxy_set_header list, the $req_id / $connection_upgrade (keepalive upstream: '') /
//   $full_x_forwarded_for maps, and proxy_hide_header for hide-headers. No `more_set_headers` is needed:
//   no response header of the template is compared here.
//
// Compared: the request line, every header line of the head the backend recorded (lower-cased names,
// values, how many lines), the answer's status and whether the hidden header reached the client. Not
// compared: header order and name case, and X-Request-ID when it is random (both must be 32 hex digits).
// A difference where keepip is less safe (a client-forged value where nginx sends the trusted one, an
// X-Forwarded-For / X-Real-IP address an allowlist behind would read differently, a Proxy header, a Host
// nginx does not send, a hidden header leaked) fails; a difference in the ALLOWED table
// (keepip stricter, or documented) passes, and the entries the runs met are listed.
//
// Generated cases: fast-check with a fixed seed, one case (a ConfigMap and an Ingress) configured at a
// time on one nginx and one keepip; FWD_SEED=<n> (or `random`) explores others, FWD_RUNS more of them.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalIp } from '../../src/net/ip.ts';
import { encodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import { freePort, rawExchange } from '../helpers/net.ts';
import { type Differential, SINGLE_HOST, startDifferential } from '../helpers/nginx-differential.ts';

// ---------------------------------------------------------------------------------------------
// Sources, settings, cases.

/** In every proxy-real-ip-cidr of the matrix: the load balancer. */
const LB = '127.0.0.70';
/** A second proxy of the narrow list (also written into forged chains). */
const HOP = '127.0.0.71';
/** In 127.0.0.0/8 and the default 0.0.0.0/0, not in the narrow list. */
const OUTSIDER = '127.0.5.5';
const SOURCES = [LB, HOP, OUTSIDER] as const;
/** PROXY sources: trusted (narrow), untrusted but IPv4 (trusted by 0.0.0.0/0 only), IPv6, 127/8 only. */
const PP_SOURCES = [HOP, '198.51.100.9', '2001:db8::9', '127.0.6.6'] as const;
const PP_PORTS = [80, 443, 8080] as const;
const HIDDEN = 'X-Backend-Secret';
const RUNS = Number(process.env.FWD_RUNS ?? 14);
const PROBES_PER_CASE = 22;
const CONCURRENCY = 8;

type Cidr = 'narrow' | 'wide' | 'default';
const CIDRS: Record<Cidr, readonly string[]> = {
  narrow: [`${LB}/32`, `${HOP}/32`],
  wide: ['127.0.0.0/8'],
  default: ['0.0.0.0/0'],
};

interface Settings {
  ufh: boolean;
  full: boolean;
  ffh: 'X-Forwarded-For' | 'X-Real-IP' | 'X-Client-IP' | 'Forwarded';
  cidr: Cidr;
  pp: boolean;
  origUri: boolean;
  realIp: boolean;
  genId: boolean;
  custom: boolean;
  hide: boolean;
}

interface Annotations {
  vhost: string | null;
  /** rewrite-target `/$2` on `/r(/|$)(.*)`, with this x-forwarded-prefix (null: none). */
  rewrite: { prefix: string | null } | null;
}

interface Case {
  s: Settings;
  a: Annotations;
}

/** proxy-set-headers: the ConfigMap `ingress-nginx/custom-headers`. */
const CUSTOM: Record<string, string> = {
  'X-Custom-Client': '$remote_addr',
  'X-Custom-Host': '$best_http_host',
  'X-Custom-Scheme': '$pass_access_scheme',
  'X-Custom-Fwd': '[$http_x_forwarded_for]',
  // Variables keepip's expansion once lacked (src/gateway/access/nginx-vars.ts): KNOWN below.
  'X-Custom-Xff': '$proxy_add_x_forwarded_for',
  'X-Custom-Peer': '$realip_remote_addr',
};

function trustedBy(cidr: Cidr, address: string): boolean {
  if (cidr === 'narrow') return address === LB || address === HOP;
  if (cidr === 'wide') return address.startsWith('127.');
  return !address.includes(':');
}

// ---------------------------------------------------------------------------------------------
// ingress-nginx's template on nginx 1.22.

/** The bench's port, then ours: plain HTTP, PROXY (forwarded-for header), PROXY (proxy_protocol). */
interface Ports {
  plain: number;
  ppHeader: number;
  ppAddr: number;
  recorder: number;
}

/** Which realip header a server reads (null: no realip). `variant` splits use-proxy-protocol + -forwarded-headers. */
function realIpHeader(s: Settings, variant: 'header' | 'addr'): string | null {
  if (!(s.ufh || s.pp || s.realIp)) return null;
  if (s.ufh && s.pp) return variant === 'header' ? s.ffh : 'proxy_protocol';
  return s.pp ? 'proxy_protocol' : s.ffh;
}

function realIpLines(s: Settings, variant: 'header' | 'addr'): string[] {
  const header = realIpHeader(s, variant);
  if (header === null) return [];
  return [
    `real_ip_header ${header};`,
    'real_ip_recursive on;',
    ...CIDRS[s.cidr].map((c) => `set_real_ip_from ${c};`),
  ];
}

/** lua_ingress.rewrite() as rewrite-module directives. */
function luaRewrite(s: Settings): string[] {
  const lines = [
    'set $pass_access_scheme $scheme;',
    `set $pass_server_port ${s.pp ? '$proxy_protocol_server_port' : '$server_port'};`,
    'set $best_http_host $http_host;',
    'if ($best_http_host = "") { set $best_http_host $host; }',
  ];
  if (s.ufh) {
    lines.push(
      'if ($http_x_forwarded_proto != "") { set $pass_access_scheme $http_x_forwarded_proto; }',
      'if ($http_x_forwarded_port != "") { set $pass_server_port $http_x_forwarded_port; }',
      'if ($http_x_forwarded_host ~ "^([^,]+)") { set $best_http_host $1; }',
    );
  }
  if (s.pp) lines.push('if ($proxy_protocol_server_port = "443") { set $pass_access_scheme https; }');
  // $pass_port: 443 for listen_ports.https (443 in ingress-nginx); this nginx has no HTTPS listener.
  lines.push('set $pass_port $pass_server_port;');
  return lines;
}

function headerVariable(name: string): string {
  return `$http_${name.toLowerCase().replaceAll('-', '_')}`;
}

/** The location's proxy_set_header list, in the template's order. */
function proxyHeaders(c: Case, variant: 'header' | 'addr'): string[] {
  const { s, a } = c;
  const set = (name: string, value: string) => `proxy_set_header ${name} ${value};`;
  const lines = [
    set('Host', a.vhost === null ? '$best_http_host' : `"${a.vhost}"`),
    set('Upgrade', '$http_upgrade'),
    set('Connection', '$connection_upgrade'),
    set('X-Request-ID', '$req_id'),
    set('X-Real-IP', '$remote_addr'),
    set('X-Forwarded-For', s.ufh && s.full ? '$full_x_forwarded_for' : '$remote_addr'),
    set('X-Forwarded-Host', '$best_http_host'),
    set('X-Forwarded-Port', '$pass_port'),
    set('X-Forwarded-Proto', '$pass_access_scheme'),
    set('X-Forwarded-Scheme', '$pass_access_scheme'),
    ...(s.origUri ? [set('X-Original-URI', '$request_uri')] : []),
    set('X-Scheme', '$pass_access_scheme'),
    set('X-Original-Forwarded-For', headerVariable(s.ffh)),
    set('X-Original-Forwarded-Host', '$http_x_forwarded_host'),
    set('Proxy', '""'),
    ...(s.custom ? Object.entries(CUSTOM).map(([k, v]) => set(k, `"${v}"`)) : []),
  ];
  if (s.ufh && s.pp) {
    // more_set_input_headers' X-Forwarded-For-Proxy-Protocol, an input header nginx passes on.
    const value = variant === 'header' ? headerVariable(s.ffh) : '$proxy_protocol_addr';
    lines.push(set('X-Forwarded-For-Proxy-Protocol', value));
  }
  return lines;
}

function nginxServer(c: Case, port: number, variant: 'header' | 'addr'): string {
  const { s, a } = c;
  const path = a.rewrite === null ? '/' : '~* "^/r(/|$)(.*)"';
  const rewrite =
    a.rewrite === null
      ? []
      : [
          'rewrite "(?i)/r(/|$)(.*)" /$2 break;',
          ...(a.rewrite.prefix === null
            ? []
            : [`proxy_set_header X-Forwarded-Prefix "${a.rewrite.prefix}";`]),
        ];
  const location = [
    ...luaRewrite(s),
    ...proxyHeaders(c, variant),
    ...(s.hide ? [`proxy_hide_header ${HIDDEN};`] : []),
    'proxy_http_version 1.1;',
    ...rewrite,
    'proxy_pass http://recorder;',
  ];
  return [
    `server { listen 127.0.0.1:${port}; server_name ${SINGLE_HOST};`,
    ...realIpLines(s, variant).map((l) => `  ${l}`),
    `  location ${path} {`,
    ...location.map((l) => `    ${l}`),
    '  }',
    '}',
  ].join('\n');
}

function nginxServers(c: Case, ports: Ports): string[] {
  const { s } = c;
  const full = s.pp ? '$proxy_protocol_addr' : '$realip_remote_addr';
  const servers = [
    `upstream recorder { server 127.0.0.1:${ports.recorder}; keepalive 32; }`,
    // UpstreamKeepaliveConnections 320 (> 0): '' for no Upgrade.
    "map $http_upgrade $connection_upgrade { default upgrade; '' ''; }",
    `map $http_x_request_id $req_id { default $http_x_request_id; ${s.genId ? '"" $request_id;' : ''} }`,
    `map $http_x_forwarded_for $full_x_forwarded_for { default "$http_x_forwarded_for, ${full}"; '' "${full}"; }`,
    `server { listen 127.0.0.1:${ports.plain} default_server; location / { return 404; } }`,
    `server { listen 127.0.0.1:${ports.ppHeader} proxy_protocol default_server; location / { return 404; } }`,
    `server { listen 127.0.0.1:${ports.ppAddr} proxy_protocol default_server; location / { return 404; } }`,
  ];
  if (!s.pp) servers.push(nginxServer(c, ports.plain, 'header'));
  else {
    servers.push(nginxServer(c, ports.ppHeader, 'header'));
    if (s.ufh) servers.push(nginxServer(c, ports.ppAddr, 'addr'));
  }
  return servers;
}

// ---------------------------------------------------------------------------------------------
// The same for keepip.

function configMapData(s: Settings): Record<string, string> {
  const data: Record<string, string> = {
    'use-forwarded-headers': String(s.ufh),
    'compute-full-forwarded-for': String(s.full),
    'use-proxy-protocol': String(s.pp),
    'proxy-add-original-uri-header': String(s.origUri),
    'enable-real-ip': String(s.realIp),
    'generate-request-id': String(s.genId),
  };
  if (s.ffh !== 'X-Forwarded-For') data['forwarded-for-header'] = s.ffh;
  if (s.cidr !== 'default') data['proxy-real-ip-cidr'] = CIDRS[s.cidr].join(',');
  if (s.custom) data['proxy-set-headers'] = 'ingress-nginx/custom-headers';
  if (s.hide) data['hide-headers'] = HIDDEN;
  return data;
}

function annotationsOf(a: Annotations): Record<string, string> {
  const out: Record<string, string> = {};
  if (a.vhost !== null) out['upstream-vhost'] = a.vhost;
  if (a.rewrite !== null) {
    Object.assign(out, { 'use-regex': 'true', 'rewrite-target': '/$2' });
    if (a.rewrite.prefix !== null) out['x-forwarded-prefix'] = a.rewrite.prefix;
  }
  return out;
}

function keepipTopology(c: Case, recorder: number) {
  const custom: K8sObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'custom-headers', namespace: 'ingress-nginx' },
    data: CUSTOM,
  };
  const path = c.a.rewrite === null ? '/' : '/r(/|$)(.*)';
  return topologyOf([
    controllerConfigMap(configMapData(c.s)),
    custom,
    ...serviceWithEndpoints({ name: 'rec', ports: [recorder] }),
    ingress({
      name: 'c',
      host: SINGLE_HOST,
      annotations: annotationsOf(c.a),
      paths: [
        {
          path,
          pathType: c.a.rewrite === null ? 'Prefix' : 'ImplementationSpecific',
          service: 'rec',
          port: 80,
        },
      ],
    }),
  ]);
}

function describeCase(c: Case): string {
  return `ConfigMap ${JSON.stringify(configMapData(c.s))}; Ingress ${JSON.stringify(annotationsOf(c.a))}`;
}

// ---------------------------------------------------------------------------------------------
// The backend: a raw recorder of request heads (keyed by X-Probe), answering 200 with the hidden header.

interface Recorder {
  port: number;
  heads: Map<string, string>;
  close(): Promise<void>;
}

async function startRecorder(): Promise<Recorder> {
  const heads = new Map<string, string>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      // GET requests only: a head, no body.
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.toString('latin1', 0, end);
        buffered = buffered.subarray(end + 4);
        heads.set(/\r\nx-probe: *([^\r]*)/i.exec(head)?.[1] ?? '', head);
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n${HIDDEN}: s\r\n\r\nok`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    heads,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Probes.

type HostForm = 'exact' | 'upper' | 'port' | 'upperport' | 'absolute';
const HOST_FORMS: readonly HostForm[] = ['exact', 'upper', 'port', 'upperport', 'absolute'];
/** The Host line; `absolute` names another host beside an absolute-form target for SINGLE_HOST. */
const HOST_LINES: Record<HostForm, string> = {
  exact: SINGLE_HOST,
  upper: SINGLE_HOST.toUpperCase(),
  port: `${SINGLE_HOST}:8080`,
  upperport: 'H.Test:8080',
  absolute: 'other.test',
};
const TARGET = '/r/x?q=1';

interface Probe {
  from: string;
  pp: { source: string; port: number } | null;
  host: HostForm;
  /** The forged header lines, in order (X-Forwarded-For may come twice). */
  fields: (readonly [string, string])[];
}

const XFF = [
  '203.0.113.7',
  `203.0.113.7, ${HOP}`,
  `198.51.100.20, ${LB}`,
  HOP,
  'unknown',
  'unknown, 203.0.113.7',
  '203.0.113.7:5678',
  '[2001:db8::7]:443',
  '2001:db8::7',
  '::ffff:203.0.113.7',
  ' , 203.0.113.7 ,',
  `garbage!, ${LB}`,
  `10.1.2.3, 203.0.113.7, ${OUTSIDER}`,
] as const;

/** One value per forged header of a probe. */
const FORGERIES: Record<string, readonly string[]> = {
  'X-Real-IP': ['203.0.113.8', HOP, 'evil', '2001:db8::8'],
  'X-Client-IP': ['203.0.113.9', `${HOP}, 203.0.113.9`, '[2001:db8::9]:80'],
  'X-Forwarded-Host': ['evil.test', `evil.test, ${SINGLE_HOST}`, 'EVIL.test:8443'],
  'X-Forwarded-Port': ['443', '8443', '@evil.test'],
  'X-Forwarded-Proto': ['https', 'http', 'javascript'],
  'X-Forwarded-Scheme': ['https'],
  'X-Scheme': ['https'],
  'X-Original-Forwarded-For': ['203.0.113.10'],
  'X-Original-Forwarded-Host': ['orig.evil.test'],
  'X-Original-URI': ['/admin'],
  'X-Request-ID': ['client-chosen', '0123456789abcdef0123456789abcdef'],
  Forwarded: [
    'for=203.0.113.11;proto=https;host=evil.test',
    `for="[2001:db8::11]:80", for=${HOP}`,
    'for=unknown',
  ],
  Proxy: ['http://evil.test:8080'],
  'X-Forwarded-Prefix': ['/evil'],
  'X-Forwarded-For-Proxy-Protocol': ['203.0.113.12'],
  // Underscored names: nginx drops them (underscores_in_headers off); CGI-style backends read them as X-Real-IP.
  X_Real_IP: ['203.0.113.13'],
  X_Forwarded_For: ['203.0.113.13'],
};
/** Two lines of X-Real-IP or X-Client-IP (a forwarded-for-header): nginx's realip reads the first. */
const TWICE = ['203.0.113.14', '198.51.100.30'] as const;
const FORGED_PAIRS = Object.entries(FORGERIES).flatMap(([n, vs]) => vs.map((v) => [n, v] as const));

function probeArb(s: Settings): fc.Arbitrary<Probe> {
  const pp = s.pp
    ? fc.record({ source: fc.constantFrom(...PP_SOURCES), port: fc.constantFrom(...PP_PORTS) })
    : fc.constant(null);
  return fc
    .record({
      from: fc.constantFrom(...SOURCES),
      pp,
      host: fc.constantFrom(...HOST_FORMS),
      xff: fc.array(fc.constantFrom(...XFF), { maxLength: 2 }),
      twice: fc.constantFrom(null, null, null, 'X-Real-IP', 'X-Client-IP'),
      others: fc.uniqueArray(fc.constantFrom(...FORGED_PAIRS), { selector: (p) => p[0], maxLength: 7 }),
    })
    .map(({ from, pp, host, xff, twice, others }) => ({
      from,
      pp,
      host,
      fields: [
        ...xff.map((v) => ['X-Forwarded-For', v] as const),
        ...(twice === null ? [] : TWICE.map((v) => [twice, v] as const)),
        ...others.filter(([n]) => n !== twice),
      ],
    }));
}

/** Every source without forgeries, and with every header forged (first values), from each source. */
function fixedProbes(s: Settings): Probe[] {
  const all = Object.entries(FORGERIES).map(([n, vs]) => [n, vs[0]!] as const);
  const forged = [['X-Forwarded-For', `203.0.113.7, ${HOP}`] as const, ...all];
  return SOURCES.flatMap((from, i) => {
    const pp = s.pp ? { source: PP_SOURCES[i % PP_SOURCES.length]!, port: PP_PORTS[i]! } : null;
    return [
      { from, pp, host: 'exact' as const, fields: [] },
      { from, pp, host: 'exact' as const, fields: forged },
    ];
  });
}

function rawRequest(p: Probe, id: string): Buffer {
  const target = p.host === 'absolute' ? `http://${SINGLE_HOST}${TARGET}` : TARGET;
  const lines = [`GET ${target} HTTP/1.1`, `Host: ${HOST_LINES[p.host]}`, `X-Probe: ${id}`];
  for (const [name, value] of p.fields) lines.push(`${name}: ${value}`);
  lines.push('Connection: close', '', '');
  const head = Buffer.from(lines.join('\r\n'), 'latin1');
  if (p.pp === null) return head;
  const v6 = p.pp.source.includes(':');
  const proxy = encodeProxyHeader({
    version: 1,
    source: { address: p.pp.source, port: 40000 },
    destination: { address: v6 ? '::1' : '127.0.0.1', port: p.pp.port },
  });
  return Buffer.concat([proxy, head]);
}

/** What one side did with a probe. */
interface Outcome {
  gen: string | null;
  status: number;
  /** The head the backend recorded; null when none reached it. */
  head: string | null;
  /** The hidden header reached the client. */
  leaked: boolean;
  /** The listener the probe went to (its port is written `<listener>` in X-Forwarded-Port). */
  listener: number;
}

/** A probe as the bench sends it: null is the bench's `/__gen` probe. */
interface Sent {
  probe: Probe | null;
  id: string;
  s: Settings;
}

function outcomeOf(raw: Buffer, head: string | null, listener: number): Outcome {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const response = end < 0 ? text : text.slice(0, end + 2);
  return {
    gen: /\r\nx-gen: *([^\r]*)/i.exec(response)?.[1] ?? null,
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(response)?.[1] ?? 0),
    head,
    leaked: new RegExp(`\\r\\n${HIDDEN}:`, 'i').test(response),
    listener,
  };
}

/** nginx's server for a probe: use-proxy-protocol + -forwarded-headers picks by the PROXY source's trust. */
function nginxPort(ports: Ports, s: Settings, p: Probe): number {
  if (!s.pp) return ports.plain;
  if (s.ufh && p.pp !== null && !trustedBy(s.cidr, p.pp.source)) return ports.ppAddr;
  return ports.ppHeader;
}

// ---------------------------------------------------------------------------------------------
// Comparing heads.

interface Diff {
  name: string;
  ngx: string[];
  kip: string[];
}

/** Header name (lower case; `:line` the request line) -> its values in order; X-Probe left out. */
function fieldsOf(o: Outcome, randomId: boolean): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const head = o.head;
  if (head === null) return out;
  const [line, ...rest] = head.split('\r\n');
  out.set(':line', [line!]);
  for (const l of rest) {
    const colon = l.indexOf(':');
    const name = l.slice(0, colon).toLowerCase();
    if (name === 'x-probe') continue;
    let value = l.slice(colon + 1).trim();
    if (name === 'x-request-id' && randomId && /^[0-9a-f]{32}$/.test(value)) value = '<random>';
    if (name === 'x-forwarded-port' && value === String(o.listener)) value = '<listener>';
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

function diffsOf(ngx: Outcome, kip: Outcome, randomId: boolean): Diff[] {
  const a = fieldsOf(ngx, randomId);
  const b = fieldsOf(kip, randomId);
  a.set(':status', [String(ngx.status)]);
  b.set(':status', [String(kip.status)]);
  if (ngx.leaked) a.set(':leaked', [HIDDEN]);
  if (kip.leaked) b.set(':leaked', [HIDDEN]);
  const out: Diff[] = [];
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const d = { name, ngx: a.get(name) ?? [], kip: b.get(name) ?? [] };
    if (JSON.stringify(d.ngx) !== JSON.stringify(d.kip)) out.push(d);
  }
  return out;
}

/**
 * $proxy_add_x_forwarded_for is derived: the client's X-Forwarded-For lines joined, then that side's own
 * $remote_addr (X-Custom-Client; none when unresolved). When both sides follow that rule, the difference
 * is the client each resolved, which the X-Custom-Client / X-Real-IP comparisons judge.
 */
function derivedXff(p: Probe, ngx: Outcome, kip: Outcome, d: Diff): boolean {
  if (d.name !== 'x-custom-xff') return false;
  const chain = p.fields
    .filter(([n]) => n.toLowerCase() === 'x-forwarded-for')
    .map(([, v]) => v.trim())
    .join(', ');
  const follows = (o: Outcome, xff: string[]) => {
    const client = fieldsOf(o, false).get('x-custom-client')?.[0] ?? '';
    const expected = [chain, client].filter((s) => s !== '').join(', ');
    return xff.length === (expected === '' ? 0 : 1) && (xff[0] ?? '') === expected;
  };
  return follows(ngx, d.ngx) && follows(kip, d.kip);
}

/** What the judge knows of a probe. */
interface Ctx {
  c: Case;
  p: Probe;
  hostLine: string;
  /** Every value the client forged, its comma-separated elements and their canonical addresses. */
  forged: Set<string>;
  /** keepip's headersTrusted: the PROXY source behind a trusted peer, else the peer. */
  headersTrusted: boolean;
  peerTrusted: boolean;
}

function contextOf(c: Case, p: Probe): Ctx {
  const forged = new Set<string>();
  for (const [, value] of p.fields) {
    const nodes = [...value.matchAll(/for="?\[?([^;,"\]]+)/gi)].map((m) => m[1]!);
    for (const v of [value, ...value.split(','), ...nodes]) {
      const t = v.trim();
      // `evil.test, h.test`: its second element is the genuine host, not a forgery.
      if (t === '' || t.toLowerCase() === SINGLE_HOST) continue;
      forged.add(t);
      const ip = canonicalIp(t.replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([\d.]+):\d+$/, '$1'));
      if (ip !== null) forged.add(ip);
    }
  }
  const peerTrusted = trustedBy(c.s.cidr, p.from);
  const headersTrusted = peerTrusted && (p.pp === null || trustedBy(c.s.cidr, p.pp.source));
  return { c, p, hostLine: HOST_LINES[p.host], forged, headersTrusted, peerTrusted };
}

const isForged = (ctx: Ctx, v: string) => ctx.forged.has(v) || ctx.forged.has(canonicalIp(v) ?? v);

/** An address list's first and last elements, canonical ('' for what is not an address). */
function edges(values: readonly string[]): string[] {
  const all = values
    .join(',')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (all.length === 0) return [];
  return [all[0]!, all.at(-1)!].map((e) => canonicalIp(e) ?? e);
}

/** Headers that name the client's address: an allowlist behind reads their first or last element. */
const ADDRESS_FIELDS = new Set(['x-forwarded-for', 'x-real-ip', 'x-custom-client', 'x-custom-xff']);
/** Headers whose value the gateway sets from what it trusts. */
const TRUSTED_FIELDS = new Set([
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-forwarded-scheme',
  'x-scheme',
  'x-original-uri',
  'x-forwarded-prefix',
  'x-original-forwarded-for',
  'x-original-forwarded-host',
  'x-forwarded-for-proxy-protocol',
  'x-custom-host',
  'x-custom-scheme',
]);

/**
 * Whether the first/last addresses keepip names would read differently to an allowlist behind, in a
 * way the client chose: an address it wrote where nginx names one it did not, or an address from
 * neither the client nor the connection (its peer, its PROXY source).
 */
function addressWeakness(ctx: Ctx, k: readonly string[], n: readonly string[]): string | null {
  if (JSON.stringify(k) === JSON.stringify(n)) return null;
  const said = `first/last element ${k.join(' … ')} where nginx sends ${n.join(' … ') || 'none'}`;
  const pp = ctx.p.pp === null ? null : canonicalIp(ctx.p.pp.source);
  if (k.every((e) => e === ctx.p.from || e === pp)) return null;
  // forwarded-for-header: Forwarded is RFC 7239 to keepip, no address list to nginx's realip. ALLOWED below.
  if (ctx.c.s.ffh === 'Forwarded' && n.every((e) => e === ctx.p.from || e === pp)) return null;
  // Both name addresses the client wrote (a peer trusted by 0.0.0.0/0 or 127.0.0.0/8 walks past its
  // own entries): an allowlist behind reads a forged address from either. ALLOWED below.
  const bothForged = n.length > 0 && n.every((e) => isForged(ctx, e));
  if (k.some((e) => isForged(ctx, e))) return bothForged ? null : `a client-forged address, ${said}`;
  return `an address neither the client nor the connection gave, ${said}`;
}

/** Why keepip's head is less safe than nginx's, or null. */
function weakness(ctx: Ctx, d: Diff): string | null {
  const { ngx, kip } = d;
  if (d.name === 'proxy' && kip.length > 0) return 'a Proxy header (httpoxy) reaches the backend';
  if (d.name === ':leaked' && kip.length > 0) return `hide-headers: ${HIDDEN} reaches the client`;
  if (d.name === 'host') {
    const vhost = ctx.c.a.vhost;
    if (vhost !== null && kip[0] !== vhost) return 'upstream-vhost lost: the backend gets another Host';
    // keepip's own Host line where nginx believed an untrusted X-Forwarded-Host, or the host of an
    // absolute-form target where nginx sends the Host line: ALLOWED below.
    const stricter =
      kip[0] === genuine(ctx, 'host') && ngx.some((v) => isForged(ctx, v)) && !ctx.headersTrusted;
    const routed = ctx.p.host === 'absolute' && kip[0] === SINGLE_HOST && ngx[0] === ctx.hostLine;
    if (!stricter && !routed) return 'a Host nginx does not send';
  }
  if (ADDRESS_FIELDS.has(d.name) && kip.length > 0) {
    const weak = addressWeakness(ctx, edges(kip), edges(ngx));
    if (weak !== null) return `${d.name}: ${weak}`;
  }
  if (TRUSTED_FIELDS.has(d.name) && kip.some((v) => isForged(ctx, v)) && !ngx.some((v) => isForged(ctx, v)))
    return `${d.name}: a client-forged value where nginx sends the trusted one`;
  if (!d.name.startsWith(':') && ngx.length === 0 && kip.some((v) => isForged(ctx, v)))
    return `${d.name}: a client header nginx does not pass on`;
  return null;
}

interface Allowed {
  reason: string;
  applies(ctx: Ctx, d: Diff): boolean;
}

const FORWARDED_VIEW = new Set([
  'host',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-forwarded-scheme',
  'x-scheme',
  'x-custom-host',
  'x-custom-scheme',
]);

/** What keepip sends for a forwarded-view header when it believes no forwarded header. */
function genuine(ctx: Ctx, name: string): string {
  const pp = ctx.p.pp;
  if (name === 'x-forwarded-port') return pp === null ? '<listener>' : String(pp.port);
  if (name === 'host' || name === 'x-forwarded-host' || name === 'x-custom-host')
    return ctx.p.host === 'absolute' ? SINGLE_HOST : ctx.hostLine;
  return pp?.port === 443 ? 'https' : 'http';
}

/** The differences that are keepip being stricter, or documented. */
const ALLOWED: Record<string, Allowed> = {
  'connection-keep-alive': {
    reason:
      "keepip writes `Connection: keep-alive` on its upstream requests; ingress-nginx's $connection_upgrade is '' " +
      '(upstream keepalive on) and nginx then writes no Connection: the same persistent HTTP/1.1 connection',
    applies: (_ctx, d) => d.name === 'connection' && d.ngx.length === 0 && d.kip.join() === 'keep-alive',
  },
  'absolute-form-host': {
    reason:
      'an absolute-form target (`GET http://h.test/…`) with another Host header: nginx routes by the target but ' +
      "$best_http_host is the Host header's (`other.test`), so the backend of h.test is told other.test; keepip " +
      "sends the host it routed by (RFC 9112 3.2.2: the target's authority replaces Host)",
    applies: (ctx, d) =>
      ctx.p.host === 'absolute' &&
      ['host', 'x-forwarded-host', 'x-custom-host'].includes(d.name) &&
      d.ngx.join() === ctx.hostLine &&
      d.kip.join() === SINGLE_HOST,
  },
  'combined-lines': {
    reason:
      'a header the client sent twice and the gateway passes on (X-Client-IP when it is not the ' +
      'forwarded-for-header…) reaches the backend as one line, the values joined with ", " (RFC 9110 5.3: the ' +
      'same field value); nginx passes the lines as they came',
    applies: (_ctx, d) => d.ngx.length > 1 && d.kip.length === 1 && d.kip[0] === d.ngx.join(', '),
  },
  'nginx-1.23-joined': {
    reason:
      "$http_<name> of a header sent twice: nginx 1.22 (here) reads the first line, nginx >= 1.23 (ingress-nginx's) " +
      'joins them with ", " as keepip does (X-Original-Forwarded-For of a forwarded-for-header sent twice)',
    applies: (ctx, d) => {
      const sent = ctx.p.fields.filter(([n]) => `x-original-forwarded-for` === d.name && n === ctx.c.s.ffh);
      return (
        sent.length > 1 && d.ngx.join() === sent[0]![1] && d.kip.join() === sent.map(([, v]) => v).join(', ')
      );
    },
  },
  rfc7239: {
    reason:
      'forwarded-for-header: Forwarded is read as RFC 7239 by keepip (for= nodes walked right to left, ' +
      "docs/client-ip.md); nginx's realip takes `for=…` for an address, fails and keeps the trusted peer: keepip " +
      'names what the trusted hop relayed, as it does for X-Forwarded-For (the walk: client-ip-variants-attack.test.ts)',
    applies: (ctx, d) =>
      ctx.c.s.ffh === 'Forwarded' &&
      ADDRESS_FIELDS.has(d.name) &&
      edges(d.ngx).every((e) => e === ctx.p.from || e === canonicalIp(ctx.p.pp?.source ?? '')),
  },
  'pp-untrusted-peer': {
    reason:
      'use-proxy-protocol: a PROXY header from a peer outside proxy-real-ip-cidr closes the connection in keepip ' +
      "(docs/doctor.md, security invariant 2); nginx's `listen … proxy_protocol` reads it from anyone and " +
      'then ignores its address',
    applies: (ctx, d) =>
      d.name === ':status' && d.kip.join() === '0' && ctx.p.pp !== null && !ctx.peerTrusted,
  },
  'canonical-form': {
    reason:
      'an IPv4-mapped IPv6 entry (`::ffff:203.0.113.7`) is sent in its IPv4 form by keepip, as written by nginx: ' +
      'the same address',
    applies: (_ctx, d) =>
      ADDRESS_FIELDS.has(d.name) &&
      d.kip.length > 0 &&
      JSON.stringify(edges(d.kip)) === JSON.stringify(edges(d.ngx)),
  },
  'both-forged': {
    reason:
      'both name an address the client wrote, relayed by a trusted hop (a wide proxy-real-ip-cidr such as the default ' +
      '0.0.0.0/0 or 127.0.0.0/8 trusts the client itself; keepip warns TRUSTS_EVERYONE): they part at empty or ' +
      'malformed elements (nginx keeps the last good one) and at a second X-Real-IP line (nginx reads the first, ' +
      'keepip walks both); the walk itself: client-ip-variants-attack.test.ts',
    applies: (ctx, d) =>
      ADDRESS_FIELDS.has(d.name) &&
      edges(d.kip).every((e) => isForged(ctx, e)) &&
      edges(d.ngx).every((e) => isForged(ctx, e)),
  },
  'pp-source-without-header': {
    reason:
      'use-proxy-protocol + use-forwarded-headers, a trusted PROXY source and no forwarded-for header: keepip names ' +
      "the PROXY source (src/net/client-ip.ts, the v1.13 rule); ingress-nginx's more_set_input_headers writes an " +
      "empty X-Forwarded-For-Proxy-Protocol, its realip declines and $remote_addr stays the load balancer's own " +
      "address. Neither is the client's to choose",
    applies: (ctx, d) =>
      ADDRESS_FIELDS.has(d.name) &&
      ctx.c.s.ufh &&
      ctx.p.pp !== null &&
      ctx.headersTrusted &&
      !ctx.p.fields.some(([n]) => n === ctx.c.s.ffh) &&
      edges(d.kip).every((e) => e === canonicalIp(ctx.p.pp!.source)) &&
      edges(d.ngx).every((e) => e === ctx.p.from),
  },
  'untrusted-forwarded': {
    reason:
      'use-forwarded-headers: keepip believes X-Forwarded-Proto/-Port/-Host only from a proxy-real-ip-cidr hop ' +
      '(src/gateway/upstream-headers.ts header, "Better than ingress-nginx"); lua_ingress.rewrite() takes them ' +
      "from any client into $pass_access_scheme, $pass_port and $best_http_host (Host included): keepip sends the connection's",
    applies: (ctx, d) =>
      ctx.c.s.ufh &&
      !ctx.headersTrusted &&
      FORWARDED_VIEW.has(d.name) &&
      d.ngx.some((v) => isForged(ctx, v)) &&
      d.kip.join() === genuine(ctx, d.name),
  },
  'forwarded-port-digits': {
    reason:
      'a trusted X-Forwarded-Port that is not digits (`@evil.test`) is not believed: keepip sends the ' +
      "listener's port; ingress-nginx copies it into X-Forwarded-Port (and the redirects' Location)",
    applies: (ctx, d) =>
      d.name === 'x-forwarded-port' &&
      ctx.p.fields.some(([n, v]) => n === 'X-Forwarded-Port' && !/^\d+$/.test(v)) &&
      !d.kip.some((v) => isForged(ctx, v)),
  },
  'trusted-hops-only': {
    reason:
      "Forwarded and X-Forwarded-Prefix (and X-Original-URL and the like) pass only from a trusted hop with use-forwarded-headers (docs/ingress-nginx-compat.md, x-forwarded-prefix row): a backend that believes them would serve a scheme or path the router never checked; nginx passes the client's",
    applies: (ctx, d) =>
      (d.name === 'forwarded' || d.name === 'x-forwarded-prefix') &&
      d.kip.length === 0 &&
      !(ctx.c.s.ufh && ctx.headersTrusted),
  },
  'no-proxy-protocol-header': {
    reason:
      "X-Forwarded-For-Proxy-Protocol is ingress-nginx's internal input header (more_set_input_headers with use-proxy-protocol + use-forwarded-headers), which nginx passes on; keepip has none and never passes a client's (docs/ingress-nginx-compat.md, forwarded-for-proxy-protocol-header row)",
    applies: (_ctx, d) => d.name === 'x-forwarded-for-proxy-protocol' && d.kip.length === 0,
  },
  'unknown-client': {
    reason:
      'a trusted hop named something that is not an address (`unknown`, `garbage!`, an empty chain): keepip ' +
      'resolves no client and sends no X-Real-IP / X-Forwarded-For / $remote_addr (every allowlist denies); ' +
      "nginx's realip stops there and names the last trusted proxy (test/security/client-ip-variants-attack.test.ts)",
    applies: (ctx, d) =>
      ADDRESS_FIELDS.has(d.name) &&
      d.kip.length === 0 &&
      edges(d.ngx).every((e) => trustedBy(ctx.c.s.cidr, e) || e === ctx.p.from),
  },
};

/**
 * Differences this comparison found as keepip bugs (not weaknesses), fixed since: each has its own test
 * below (named in `test`), so were one to come back the generated check counts it rather than failing twice.
 */
const KNOWN: Record<string, Allowed & { test: string }> = {
  'best-http-host-variable': {
    test: 'proxy-set-headers: $best_http_host',
    reason:
      "proxy-set-headers: keepip expanded $best_http_host to the Host line, nginx to lua_ingress's " +
      '$best_http_host: a trusted X-Forwarded-Host with use-forwarded-headers',
    applies: (ctx, d) =>
      d.name === 'x-custom-host' &&
      ctx.c.s.ufh &&
      ctx.headersTrusted &&
      d.ngx.some((v) => isForged(ctx, v)) &&
      d.kip.join() === genuine(ctx, 'host'),
  },
  'unsupported-variables': {
    test: 'proxy-set-headers: $proxy_add_x_forwarded_for and $realip_remote_addr',
    reason:
      "proxy-set-headers: variables keepip's expansion did not know ($proxy_add_x_forwarded_for, " +
      '$realip_remote_addr…) expanded to nothing, and an empty value sends no header: the backend got none where ' +
      'nginx sends the chain with the client appended, or the peer',
    applies: (_ctx, d) => ['x-custom-xff', 'x-custom-peer'].includes(d.name) && d.kip.length === 0,
  },
};

type Verdict = { finding: string } | { allowed: string } | { known: string } | { unexplained: true };

function verdict(ctx: Ctx, d: Diff): Verdict {
  const weak = weakness(ctx, d);
  if (weak !== null) return { finding: weak };
  const allowed = Object.entries(ALLOWED).find(([, a]) => a.applies(ctx, d));
  if (allowed !== undefined) return { allowed: allowed[0] };
  const known = Object.entries(KNOWN).find(([, a]) => a.applies(ctx, d));
  return known === undefined ? { unexplained: true } : { known: known[0] };
}

function describeProbe(p: Probe): string {
  const pp = p.pp === null ? '' : ` PROXY ${p.pp.source} -> :${p.pp.port}`;
  const fields = p.fields.map(([n, v]) => `${n}: ${v}`).join(' | ');
  return `from ${p.from}${pp}, Host: ${HOST_LINES[p.host]}${fields === '' ? '' : `, ${fields}`}`;
}

function describeDiff(c: Case, p: Probe, d: Diff): string {
  return `${describeCase(c)}\n    ${describeProbe(p)}\n    ${d.name}: nginx ${JSON.stringify(d.ngx)}, keepip ${JSON.stringify(d.kip)}`;
}

// ---------------------------------------------------------------------------------------------
// The bench and the runs.

interface Results {
  /** Finding kind -> first example. */
  findings: Map<string, string>;
  /** Header name -> first unexplained example. */
  unexplained: Map<string, string>;
  /** ALLOWED and KNOWN keys -> first example. */
  met: Map<string, string>;
  /** Probes compared, and those the backend got from both. */
  compared: number;
  proxied: number;
}

interface Bench {
  d: Differential<Sent, Outcome>;
  ports: Ports;
  recorder: Recorder;
}

async function startBench(): Promise<Bench> {
  const recorder = await startRecorder();
  const ports: Ports = {
    plain: await freePort(),
    ppHeader: await freePort(),
    ppAddr: await freePort(),
    recorder: recorder.port,
  };
  const send = async (port: number, sent: Sent): Promise<Outcome> => {
    if (sent.probe === null) {
      const payload = 'GET /__gen HTTP/1.1\r\nHost: probe.invalid\r\nConnection: close\r\n\r\n';
      return outcomeOf((await rawExchange({ host: '127.0.0.1', port, payload })).received, null, port);
    }
    const keepip = port === d.gateway.httpPort;
    const id = `${sent.id}-${keepip ? 'k' : 'n'}`;
    const listener = keepip ? port : nginxPort(ports, sent.s, sent.probe);
    recorder.heads.delete(id);
    const reply = await rawExchange({
      host: '127.0.0.1',
      port: listener,
      payload: rawRequest(sent.probe, id),
      localAddress: sent.probe.from,
    });
    return outcomeOf(reply.received, recorder.heads.get(id) ?? null, listener);
  };
  const d: Differential<Sent, Outcome> = await startDifferential<Sent, Outcome>({
    ids: [],
    send,
    genProbe: { probe: null, id: 'gen', s: CORE_CASES[0]!.s },
  });
  return { d, ports, recorder };
}

async function runCase(bench: Bench, c: Case, index: number, probes: readonly Probe[], r: Results) {
  await bench.d.configure(() => nginxServers(c, bench.ports), keepipTopology(c, bench.recorder.port));
  await mapLimited(probes, CONCURRENCY, async (p, j) => {
    const sent: Sent = { probe: p, id: `${index}.${j}`, s: c.s };
    const [ngx, kip] = await Promise.all([
      bench.d.askNginx(sent, SINGLE_HOST),
      bench.d.askKeepip(sent, SINGLE_HOST),
    ]);
    r.compared++;
    if (ngx.head !== null && kip.head !== null) r.proxied++;
    const ctx = contextOf(c, p);
    const randomId = !p.fields.some(([n]) => n === 'X-Request-ID');
    let diffs = diffsOf(ngx, kip, randomId).filter((d) => !derivedXff(p, ngx, kip, d));
    // A connection keepip closed has nothing else to compare.
    const closed = diffs.find((d) => d.name === ':status' && ALLOWED['pp-untrusted-peer']!.applies(ctx, d));
    if (closed !== undefined) diffs = [closed];
    for (const d of diffs) {
      const v = verdict(ctx, d);
      const example = describeDiff(c, p, d);
      if ('finding' in v) {
        if (!r.findings.has(v.finding)) r.findings.set(v.finding, example);
      } else if ('allowed' in v || 'known' in v) {
        const key = 'allowed' in v ? v.allowed : v.known;
        if (!r.met.has(key)) r.met.set(key, example);
      } else if (!r.unexplained.has(d.name)) r.unexplained.set(d.name, example);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Generated cases.

const BASE: Settings = {
  ufh: false,
  full: false,
  ffh: 'X-Forwarded-For',
  cidr: 'narrow',
  pp: false,
  origUri: false,
  realIp: false,
  genId: true,
  custom: false,
  hide: false,
};
const NO_ANNOTATIONS: Annotations = { vhost: null, rewrite: null };

/** Always run first: the combinations the matrix must cover whatever the seed. */
const CORE_CASES: readonly Case[] = [
  { s: { ...BASE, ufh: true, full: true, custom: true }, a: NO_ANNOTATIONS },
  {
    s: { ...BASE, ufh: true, pp: true, full: true, origUri: true },
    a: { vhost: 'internal.svc', rewrite: null },
  },
  { s: { ...BASE, pp: true, cidr: 'wide', hide: true }, a: { vhost: null, rewrite: { prefix: '/r' } } },
  { s: { ...BASE, realIp: true, ffh: 'X-Real-IP', cidr: 'default', genId: false }, a: NO_ANNOTATIONS },
  {
    s: { ...BASE, ufh: true, ffh: 'Forwarded', cidr: 'wide' },
    a: { vhost: 'internal.svc:8080', rewrite: { prefix: null } },
  },
];

const settingsArb: fc.Arbitrary<Settings> = fc.record({
  ufh: fc.boolean(),
  full: fc.boolean(),
  ffh: fc.constantFrom<Settings['ffh']>(
    'X-Forwarded-For',
    'X-Forwarded-For',
    'X-Real-IP',
    'X-Client-IP',
    'Forwarded',
  ),
  cidr: fc.constantFrom<Cidr>('narrow', 'wide', 'default'),
  pp: fc.boolean(),
  origUri: fc.boolean(),
  realIp: fc.boolean(),
  genId: fc.constantFrom(true, true, false),
  custom: fc.boolean(),
  hide: fc.boolean(),
});

const annotationsArb: fc.Arbitrary<Annotations> = fc.record({
  vhost: fc.constantFrom(null, null, 'internal.svc', 'internal.svc:8080'),
  rewrite: fc.constantFrom(null, null, { prefix: null }, { prefix: '/r' }),
});

function seedOf(): number {
  const chosen = process.env.FWD_SEED;
  return chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? 20261215);
}

async function runMatrix(bench: Bench, seed: number): Promise<Results> {
  const r: Results = { findings: new Map(), unexplained: new Map(), met: new Map(), compared: 0, proxied: 0 };
  const generated = fc.sample(fc.record({ s: settingsArb, a: annotationsArb }), { numRuns: RUNS, seed });
  for (const [i, c] of [...CORE_CASES, ...generated].entries()) {
    const probes = [
      ...fixedProbes(c.s),
      ...fc.sample(probeArb(c.s), { numRuns: PROBES_PER_CASE, seed: seed + i }),
    ];
    await runCase(bench, c, i, probes, r);
  }
  return r;
}

/** `c` alone, `p` sent to both: the header values each backend head carries under `name`. */
async function headerPair(bench: Bench, c: Case, p: Probe, name: string, id: string) {
  await bench.d.configure(() => nginxServers(c, bench.ports), keepipTopology(c, bench.recorder.port));
  const sent: Sent = { probe: p, id, s: c.s };
  const [ngx, kip] = await Promise.all([
    bench.d.askNginx(sent, SINGLE_HOST),
    bench.d.askKeepip(sent, SINGLE_HOST),
  ]);
  assert.ok(ngx.head !== null && kip.head !== null, `not proxied: nginx ${ngx.status}, keepip ${kip.status}`);
  return { ngx: fieldsOf(ngx, false).get(name) ?? [], kip: fieldsOf(kip, false).get(name) ?? [] };
}

const TRUSTED_LB: Case = { s: { ...BASE, ufh: true, custom: true }, a: NO_ANNOTATIONS };

function listed(map: ReadonlyMap<string, string>): string {
  return [...map].map(([k, v]) => `- ${k}\n    ${v}`).join('\n');
}

describe('the head the backend receives: keepip against nginx 1.22 rendered as ingress-nginx, under generated ConfigMaps, annotations and forged requests', () => {
  let bench: Bench;
  let results: Results;
  const seed = seedOf();

  before(async () => {
    bench = await startBench();
    results = await runMatrix(bench, seed);
  });

  after(async () => {
    await bench?.d.close();
    await bench?.recorder.close();
  });

  it('generated: no header keepip sends is less safe than the one nginx sends (forged where trusted, another client address, Proxy, another Host, a hidden header leaked)', () => {
    assert.equal(results.findings.size, 0, `seed ${seed}: FINDINGS\n${listed(results.findings)}`);
  });

  it('generated: every other difference is one the ALLOWED table explains', () => {
    assert.equal(results.unexplained.size, 0, `seed ${seed}: unexplained\n${listed(results.unexplained)}`);
  });

  it(`${KNOWN['best-http-host-variable']!.test} is the trusted X-Forwarded-Host with use-forwarded-headers, as nginx's (compat, not a weakness)`, async () => {
    const p: Probe = { from: LB, pp: null, host: 'exact', fields: [['X-Forwarded-Host', 'public.example']] };
    const got = await headerPair(bench, TRUSTED_LB, p, 'x-custom-host', 'known.1');
    assert.deepEqual(got.ngx, ['public.example']);
    assert.deepEqual(got.kip, got.ngx, 'keepip expands $best_http_host to the Host line');
  });

  it(`${KNOWN['unsupported-variables']!.test} expand as nginx's: the chain with the client appended, the peer`, async () => {
    const p: Probe = { from: LB, pp: null, host: 'exact', fields: [['X-Forwarded-For', '203.0.113.7']] };
    const xff = await headerPair(bench, TRUSTED_LB, p, 'x-custom-xff', 'known.2');
    assert.deepEqual(xff.ngx, ['203.0.113.7, 203.0.113.7']);
    const peer = await headerPair(bench, TRUSTED_LB, p, 'x-custom-peer', 'known.3');
    assert.deepEqual(peer.ngx, [LB]);
    assert.deepEqual(
      { xff: xff.kip, peer: peer.kip },
      { xff: xff.ngx, peer: peer.ngx },
      'keepip sends neither',
    );
  });

  it('the runs reached the backend through both, and the allowed differences they met are listed', (t) => {
    for (const [key, example] of results.met) {
      const known = KNOWN[key];
      const label =
        known === undefined
          ? `ALLOWED ${key}: ${ALLOWED[key]!.reason}`
          : `KNOWN ${key} (test "${known.test}"): ${known.reason}`;
      t.diagnostic(`${label}\n  e.g. ${example}`);
    }
    assert.ok(
      results.proxied >= results.compared * 0.8,
      `${results.proxied} of ${results.compared} proxied by both`,
    );
    for (const key of ['untrusted-forwarded', 'pp-untrusted-peer', 'rfc7239', 'unknown-client'])
      assert.ok(results.met.has(key), `the runs never met ${key}`);
  });
});
