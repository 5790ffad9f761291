// Which client address the gateway believes, under the ConfigMap combinations ingress-nginx users set
// (use-forwarded-headers, enable-real-ip, forwarded-for-header, compute-full-forwarded-for,
// use-proxy-protocol, proxy-real-ip-cidr and its 0.0.0.0/0 default, proxy-add-original-uri-header, and
// keepip's --trusted-proxies), checked on real sockets on 127.0.0.0/8 against what ingress-nginx's
// template (rootfs/etc/nginx/template/nginx.tmpl) and nginx's realip module do:
//   1. the recursive walk beside a real nginx 1.22 with the same realip directives: which element each
//      picks for ports, brackets, zones, mapped forms, empty elements, several lines, 100 entries,
//      `unknown`, host names, tabs; and what an allowlist that includes the proxies' own network sees;
//   2. a matrix of ConfigMaps x forged headers: the client (access log $remote_addr, the backend's
//      X-Real-IP), the backend's X-Forwarded-For and X-Original-Forwarded-For, allow and deny lists,
//      and the rate-limit bucket;
//   3. RFC 7239 Forwarded: never the client under the default header, never passed on from an
//      untrusted hop;
//   4. the trust-everyone default and --trusted-proxies.
// Not repeated here: test/security/invariants.test.ts (I1-I7) and spoofing-over-sockets.test.ts (the
// spoofing table over the default X-Forwarded-For / Forwarded headers).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { snapshotEvents } from '../../src/gateway/gateway.ts';
import { encodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { decodeChunked, rawExchange, splitResponse } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import {
  configMapYaml,
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  startTap,
  type Tap,
  topologyFromYaml,
} from './helpers.ts';

/** The load balancer / L7 proxy in front of the gateway: trusted. */
const LB = '127.0.0.10';
/** A second trusted proxy (an HTTP proxy in front of the TCP load balancer, or a forged hop). */
const HOP = '127.0.0.12';
const TRUSTED = `${LB}/32, ${HOP}/32`;
/** The attacker: a client at 127.0.x.y in no list. */
const ATTACKER = '127.0.33.5';
/** What the attacker claims to be: the one address the allowlist admits. */
const FORGED = '203.0.113.7';
/** A genuine client a trusted proxy names. */
const REAL = '198.51.100.20';
/** Who the deny list names: every real client and proxy of the matrix. */
const DENIED = [ATTACKER, REAL, HOP, LB];

type Fields = readonly (readonly [string, string])[];

function get(path: string, fields: Fields = []): string {
  const lines = [`GET ${path} HTTP/1.1`, 'Host: app.example.com', 'Accept: application/json'];
  for (const [name, value] of fields) lines.push(`${name}: ${value}`);
  return `${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`;
}

interface Answer {
  status: number;
  head: string;
  body: string;
}

/** One connection from `from` (optionally behind a PROXY v1 header naming `proxySource`). */
async function send(port: number, from: string, request: string, proxySource?: string): Promise<Answer> {
  const header =
    proxySource === undefined
      ? Buffer.alloc(0)
      : encodeProxyHeader({
          version: 1,
          source: { address: proxySource, port: 40000 },
          destination: { address: '127.0.0.1', port: 80 },
        });
  const reply = await rawExchange({
    host: '127.0.0.1',
    port,
    payload: Buffer.concat([header, Buffer.from(request, 'latin1')]),
    localAddress: from,
  });
  const status = /^HTTP\/1\.1 (\d{3})/.exec(reply.received.toString('latin1'));
  if (status === null) return { status: 0, head: '', body: '' };
  const { head, body } = splitResponse(reply.received);
  const bytes = /\r\ntransfer-encoding: chunked/i.test(head) ? decodeChunked(body).data : body;
  return { status: Number(status[1]), head, body: bytes.toString('utf8') };
}

/** The headers whoami saw (lower-case names, repeated ones joined). */
function echoed(answer: Answer): Record<string, string> {
  assert.equal(answer.status, 200, `${answer.head}\n${answer.body}`);
  return (JSON.parse(answer.body) as { headers: Record<string, string> }).headers;
}

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The access log line of `path`: its first field is $remote_addr ('-' for an unknown client). */
async function loggedClient(gw: SecurityGateway, path: string): Promise<string> {
  const line = await gw.access.waitFor(new RegExp(`"GET ${literal(path)} HTTP/1\\.1" `));
  return line.slice(0, line.indexOf(' '));
}

function routes(backendPort: number): string {
  return [
    serviceYaml('app', backendPort),
    ingressYaml('open', '/open', 'app'),
    ingressYaml('allow', '/allow', 'app', { 'allowlist-source-range': `${FORGED}/32` }),
    // An allowlist that also holds the proxies' own network (an internal LB in the office VPC).
    ingressYaml('allow-lb', '/lb-allow', 'app', { 'allowlist-source-range': `127.0.0.0/24, ${FORGED}/32` }),
    ingressYaml('deny', '/deny', 'app', { 'denylist-source-range': DENIED.join(', ') }),
    ingressYaml('limit', '/limit', 'app', { 'limit-rpm': '1', 'limit-burst-multiplier': '1' }),
  ].join('\n');
}

async function gatewayWith(
  backendPort: number,
  data: Record<string, string>,
  trustedProxies: readonly string[] | null = null,
): Promise<SecurityGateway> {
  const yaml = `${configMapYaml(data)}\n${routes(backendPort)}`;
  return startSecurityGateway(topologyFromYaml(yaml), { trustedProxies });
}

/** A tapped whoami; closes both. */
async function tappedWhoami(): Promise<{ tap: Tap; close(): Promise<void> }> {
  const whoami: RunningWhoami = await startWhoami({ host: '127.0.0.1', port: 0, name: 'app' });
  const tap = await startTap(whoami.address.port);
  return {
    tap,
    async close() {
      await tap.close();
      await whoami.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// 1. The recursive walk, keepip beside nginx's realip

type Mode = 'X-Forwarded-For' | 'X-Real-IP' | 'Forwarded';

interface WalkRow {
  name: string;
  mode: Mode;
  fields: Fields;
  /** keepip's client ('' = unknown: logged '-', denied by every list). */
  keepip: string;
  /** nginx 1.22's $remote_addr with `real_ip_header <mode>; real_ip_recursive on;` */
  nginx: string;
}

const xff = (value: string): Fields => [['X-Forwarded-For', value]];
const hundred = (entry: string) => Array.from({ length: 99 }, () => entry);

/** A row: what the trusted peer relays, keepip's client, nginx's $remote_addr. */
const w = (mode: Mode, name: string, fields: Fields, keepip: string, nginx: string): WalkRow => ({
  name,
  mode,
  fields,
  keepip,
  nginx,
});
const XFF: Mode = 'X-Forwarded-For';

const WALK: readonly WalkRow[] = [
  w(XFF, 'forged, trusted hop (pass-through peer)', xff(`${FORGED}, ${HOP}`), FORGED, FORGED),
  w(XFF, 'forged, trusted hop, appended client', xff(`${FORGED}, ${HOP}, ${ATTACKER}`), ATTACKER, ATTACKER),
  w(XFF, 'two header lines (joined)', [...xff(FORGED), ...xff(ATTACKER)], ATTACKER, ATTACKER),
  w(XFF, 'two lines, a forged trusted hop in the second', [...xff(FORGED), ...xff(HOP)], FORGED, FORGED),
  w(XFF, 'empty elements', xff(`${FORGED}, , ,${ATTACKER}, ,`), ATTACKER, ATTACKER),
  w(XFF, 'a port', xff(`${FORGED}, ${ATTACKER}:5678`), ATTACKER, ATTACKER),
  w(XFF, 'a port on a trusted hop', xff(`${FORGED}, ${HOP}:443`), FORGED, FORGED),
  w(XFF, 'brackets without a port', xff('[2001:db8::7]'), '', LB),
  w(XFF, 'brackets with a port', xff('[2001:db8::7]:443'), '2001:db8::7', '2001:db8::7'),
  w(XFF, 'a zone id', xff('fe80::1%eth0'), '', LB),
  w(XFF, 'IPv4-mapped', xff(`::ffff:${FORGED}`), FORGED, `::ffff:${FORGED}`),
  w(XFF, 'spaces around entries', xff(`   ${FORGED}  ,   ${ATTACKER}   `), ATTACKER, ATTACKER),
  w(XFF, 'a tab before an entry', xff(`${FORGED},\t${ATTACKER}`), '', LB),
  w(XFF, '100 entries', xff([...hundred(FORGED), ATTACKER].join(', ')), ATTACKER, ATTACKER),
  w(XFF, '100 trusted hops', xff([FORGED, ...hundred(HOP)].join(', ')), FORGED, FORGED),
  w(XFF, '"unknown"', xff('unknown'), '', LB),
  w(XFF, '"unknown" left of the appended client', xff(`unknown, ${ATTACKER}`), ATTACKER, ATTACKER),
  w(XFF, 'a host name', xff('evil.example'), '', LB),
  // nginx stops at the host name and keeps the trusted hop it had reached: /lb-allow admits it.
  w(XFF, 'a host name behind a trusted hop', xff(`${FORGED}, evil.example, ${HOP}`), '', HOP),
  // nginx reads the first X-Real-IP line only; keepip joins the lines and walks from the right, so a
  // trusted proxy that adds its own line after the client's is believed, not the client's.
  w(
    'X-Real-IP',
    "X-Real-IP twice, the proxy's line last",
    [
      ['X-Real-IP', FORGED],
      ['X-Real-IP', ATTACKER],
    ],
    ATTACKER,
    FORGED,
  ),
  w('X-Real-IP', 'X-Real-IP as a list', [['X-Real-IP', `${FORGED}, ${ATTACKER}`]], ATTACKER, ATTACKER),
  // forwarded-for-header: Forwarded. nginx's realip cannot parse `for=` and keeps the peer; keepip
  // walks RFC 7239 elements (docs/client-ip.md), from trusted peers only.
  w('Forwarded', 'Forwarded for= from the trusted peer', [['Forwarded', `for=${FORGED}`]], FORGED, LB),
  w('Forwarded', 'Forwarded, two elements', [['Forwarded', `for=${FORGED}, for=${ATTACKER}`]], ATTACKER, LB),
];

/** What the /lb-allow list (127.0.0.0/24 and FORGED) admits; nginx matches mapped forms as IPv4. */
function admitsLbAllow(client: string): boolean {
  const v4 = client.startsWith('::ffff:') ? client.slice(7) : client;
  return v4 === FORGED || (v4.startsWith('127.0.0.') && !v4.includes(':'));
}

function nginxServer(dir: string, port: number, mode: Mode): string {
  return `server {
    listen 127.0.0.1:${port};
    access_log ${dir}/access-${port}.log;
    set_real_ip_from ${LB}; set_real_ip_from ${HOP};
    real_ip_header ${mode}; real_ip_recursive on;
    # try_files runs after the access phase; a bare return would answer before allow/deny run.
    location /lb-allow { allow 127.0.0.0/24; allow ${FORGED}; deny all; try_files /none @client; }
    location @client { return 200 "$remote_addr"; }
    location / { return 200 "$remote_addr"; }
  }`;
}

const MODES: readonly Mode[] = ['X-Forwarded-For', 'X-Real-IP', 'Forwarded'];

describe('1. the recursive walk: which element keepip picks, which nginx realip picks, what the allowlist sees', () => {
  let backend: Awaited<ReturnType<typeof tappedWhoami>>;
  let nginx: RunningNginx;
  const gateways = new Map<Mode, SecurityGateway>();

  before(async () => {
    backend = await tappedWhoami();
    nginx = await startNginx({
      freePorts: 3,
      http: (dir, ports) => MODES.map((mode, i) => nginxServer(dir, ports[i]!, mode)).join('\n'),
      waitFor: (ports) => ports.map((port) => ({ host: '127.0.0.1', port })),
    });
    for (const mode of MODES) {
      const data: Record<string, string> = { 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': TRUSTED };
      if (mode !== 'X-Forwarded-For') data['forwarded-for-header'] = mode;
      gateways.set(mode, await gatewayWith(backend.tap.port, data));
    }
  });
  after(async () => {
    for (const gw of gateways.values()) await gw.close();
    await nginx.stop();
    await backend.close();
  });

  /** What keepip and nginx made of one row: the client each settled on, and each /lb-allow status. */
  async function observe(row: WalkRow, index: number): Promise<string> {
    const gw = gateways.get(row.mode)!;
    const ngxPort = nginx.ports[MODES.indexOf(row.mode)]!;
    const path = `/open/walk-${index}`;
    const open = echoed(await send(gw.port, LB, get(path, row.fields)));
    const logged = await loggedClient(gw, path);
    const ngx = await send(ngxPort, LB, get(path, row.fields));
    const mine = await send(gw.port, LB, get(`/lb-allow/walk-${index}`, row.fields));
    const theirs = await send(ngxPort, LB, get(`/lb-allow/walk-${index}`, row.fields));
    return `${row.name}: keepip ${open['x-real-ip'] ?? ''} (log ${logged}, lb-allow ${mine.status}), nginx ${ngx.body} (lb-allow ${theirs.status})`;
  }

  test(`${WALK.length} header values from the trusted peer: keepip's pick, nginx's pick and both allowlists`, async () => {
    const seen: string[] = [];
    const expected: string[] = [];
    for (const [index, row] of WALK.entries()) {
      seen.push(await observe(row, index));
      const mine = row.keepip !== '' && admitsLbAllow(row.keepip) ? 200 : 403;
      const theirs = admitsLbAllow(row.nginx) ? 200 : 403;
      expected.push(
        `${row.name}: keepip ${row.keepip} (log ${row.keepip || '-'}, lb-allow ${mine}), nginx ${row.nginx} (lb-allow ${theirs})`,
      );
    }
    assert.deepEqual(seen, expected);
  });

  test('obs-fold and a 64 KB X-Forwarded-For: both refuse the request; nothing reaches the backend', async () => {
    const gw = gateways.get('X-Forwarded-For')!;
    const ngxPort = nginx.ports[0]!;
    const folded = get('/lb-allow/fold', xff(`${FORGED},\r\n ${HOP}`));
    const huge = get('/lb-allow/huge', xff(`${FORGED}, `.repeat(5_100) + HOP));
    assert.ok(huge.length > 64 * 1024);
    for (const [request, path] of [
      [folded, '/lb-allow/fold'],
      [huge, '/lb-allow/huge'],
    ] as const) {
      const mine = await send(gw.port, LB, request);
      const theirs = await send(ngxPort, LB, request);
      assert.ok(mine.status === 400 || mine.status === 431, `${path}: keepip answered ${mine.status}`);
      assert.equal(theirs.status, 400, `${path}: nginx answered ${theirs.status}`);
      assert.equal(backend.tap.saw(path), false, path);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2. ConfigMap combinations x forged headers

const VARIANTS = {
  'no forwarded headers': { 'proxy-real-ip-cidr': TRUSTED },
  'use-forwarded-headers': { 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': TRUSTED },
  'use-forwarded-headers + compute-full-forwarded-for + proxy-add-original-uri-header': {
    'use-forwarded-headers': 'true',
    'compute-full-forwarded-for': 'true',
    'proxy-add-original-uri-header': 'true',
    'proxy-real-ip-cidr': TRUSTED,
  },
  // compute-full-forwarded-for needs use-forwarded-headers in the template: no effect here.
  'enable-real-ip + compute-full-forwarded-for': {
    'enable-real-ip': 'true',
    'compute-full-forwarded-for': 'true',
    'proxy-real-ip-cidr': TRUSTED,
  },
  'enable-real-ip + use-proxy-protocol': {
    'enable-real-ip': 'true',
    'use-proxy-protocol': 'true',
    'proxy-real-ip-cidr': TRUSTED,
  },
  'forwarded-for-header X-Real-IP + compute-full-forwarded-for': {
    'use-forwarded-headers': 'true',
    'forwarded-for-header': 'X-Real-IP',
    'compute-full-forwarded-for': 'true',
    'proxy-real-ip-cidr': TRUSTED,
  },
  'forwarded-for-header CF-Connecting-IP': {
    'use-forwarded-headers': 'true',
    'forwarded-for-header': 'CF-Connecting-IP',
    'proxy-real-ip-cidr': TRUSTED,
  },
  'enable-real-ip + forwarded-for-header True-Client-IP': {
    'enable-real-ip': 'true',
    'forwarded-for-header': 'True-Client-IP',
    'proxy-real-ip-cidr': TRUSTED,
  },
  'use-proxy-protocol + use-forwarded-headers + X-Client-IP + compute-full-forwarded-for': {
    'use-proxy-protocol': 'true',
    'use-forwarded-headers': 'true',
    'forwarded-for-header': 'X-Client-IP',
    'compute-full-forwarded-for': 'true',
    'proxy-real-ip-cidr': TRUSTED,
  },
  // --trusted-proxies LB, HOP over a ConfigMap that trusts all of 127.0.0.0/8 (the attacker too).
  '--trusted-proxies over proxy-real-ip-cidr 127.0.0.0/8': {
    'use-forwarded-headers': 'true',
    'proxy-real-ip-cidr': '127.0.0.0/8',
  },
} as const satisfies Record<string, Record<string, string>>;

type Variant = keyof typeof VARIANTS;

const FLAG: readonly string[] = [`${LB}/32`, `${HOP}/32`];

/** Every client-address header an attacker can write, all naming FORGED, and an X-Original-URI. */
const ALL_FORGED: Fields = [
  ['X-Forwarded-For', FORGED],
  ['X-Real-IP', FORGED],
  ['CF-Connecting-IP', FORGED],
  ['True-Client-IP', FORGED],
  ['X-Client-IP', FORGED],
  ['Forwarded', `for=${FORGED}`],
  ['X-Original-URI', '/admin'],
];

interface MatrixRow {
  variant: Variant;
  peer: string;
  /** The PROXY header's source (the PROXY variants: the load balancer writes it). */
  proxySource?: string;
  fields: Fields;
  /** $remote_addr: the access log and the backend's X-Real-IP. */
  client: string;
  /** The backend's X-Forwarded-For: $remote_addr, or $full_x_forwarded_for. */
  xff: string;
  /** The backend's X-Original-Forwarded-For: the incoming forwarded-for-header, from anyone. */
  original: string;
}

const attackerRow = (variant: Variant, xff = ATTACKER): MatrixRow => {
  const pp = 'use-proxy-protocol' in VARIANTS[variant];
  const via = pp ? { peer: LB, proxySource: ATTACKER } : { peer: ATTACKER };
  return { variant, ...via, fields: ALL_FORGED, client: ATTACKER, xff, original: FORGED };
};

const MATRIX: readonly MatrixRow[] = [
  attackerRow('no forwarded headers'),
  attackerRow('use-forwarded-headers'),
  // $full_x_forwarded_for: the client's own X-Forwarded-For, then $realip_remote_addr.
  attackerRow(
    'use-forwarded-headers + compute-full-forwarded-for + proxy-add-original-uri-header',
    `${FORGED}, ${ATTACKER}`,
  ),
  attackerRow('enable-real-ip + compute-full-forwarded-for'),
  attackerRow('enable-real-ip + use-proxy-protocol'),
  attackerRow('forwarded-for-header X-Real-IP + compute-full-forwarded-for', `${FORGED}, ${ATTACKER}`),
  attackerRow('forwarded-for-header CF-Connecting-IP'),
  attackerRow('enable-real-ip + forwarded-for-header True-Client-IP'),
  attackerRow(
    'use-proxy-protocol + use-forwarded-headers + X-Client-IP + compute-full-forwarded-for',
    `${FORGED}, ${ATTACKER}`,
  ),
  attackerRow('--trusted-proxies over proxy-real-ip-cidr 127.0.0.0/8'),
  // The trusted proxy names REAL (after whatever the client prepended).
  {
    variant: 'no forwarded headers',
    peer: LB,
    fields: xff(`${FORGED}, ${REAL}`),
    client: LB,
    xff: LB,
    original: `${FORGED}, ${REAL}`,
  },
  {
    variant: 'use-forwarded-headers',
    peer: LB,
    fields: xff(`${FORGED}, ${REAL}`),
    client: REAL,
    xff: REAL,
    original: `${FORGED}, ${REAL}`,
  },
  {
    variant: 'use-forwarded-headers + compute-full-forwarded-for + proxy-add-original-uri-header',
    peer: LB,
    fields: xff(`${FORGED}, ${REAL}`),
    client: REAL,
    xff: `${FORGED}, ${REAL}, ${LB}`,
    original: `${FORGED}, ${REAL}`,
  },
  {
    variant: 'enable-real-ip + compute-full-forwarded-for',
    peer: LB,
    fields: xff(`${FORGED}, ${REAL}`),
    client: REAL,
    xff: REAL,
    original: `${FORGED}, ${REAL}`,
  },
  // real_ip_header proxy_protocol: the PROXY source, even a trusted one, whatever X-Forwarded-For says.
  {
    variant: 'enable-real-ip + use-proxy-protocol',
    peer: LB,
    proxySource: HOP,
    fields: xff(FORGED),
    client: HOP,
    xff: HOP,
    original: FORGED,
  },
  // The backend's X-Forwarded-For is computed from X-Forwarded-For ($http_x_forwarded_for), not
  // from the configured header.
  {
    variant: 'forwarded-for-header X-Real-IP + compute-full-forwarded-for',
    peer: LB,
    fields: [['X-Real-IP', REAL], ...xff(FORGED)],
    client: REAL,
    xff: `${FORGED}, ${LB}`,
    original: REAL,
  },
  {
    variant: 'forwarded-for-header CF-Connecting-IP',
    peer: LB,
    fields: [['CF-Connecting-IP', REAL], ...xff(FORGED)],
    client: REAL,
    xff: REAL,
    original: REAL,
  },
  {
    variant: 'enable-real-ip + forwarded-for-header True-Client-IP',
    peer: LB,
    fields: [['True-Client-IP', REAL], ...xff(FORGED)],
    client: REAL,
    xff: REAL,
    original: REAL,
  },
  // An HTTP proxy (HOP, trusted) in front of the TCP load balancer: its X-Client-IP is believed, and
  // $full_x_forwarded_for appends $proxy_protocol_addr.
  {
    variant: 'use-proxy-protocol + use-forwarded-headers + X-Client-IP + compute-full-forwarded-for',
    peer: LB,
    proxySource: HOP,
    fields: [['X-Client-IP', `${FORGED}, ${REAL}`], ...xff(FORGED)],
    client: REAL,
    xff: `${FORGED}, ${HOP}`,
    original: `${FORGED}, ${REAL}`,
  },
  {
    variant: '--trusted-proxies over proxy-real-ip-cidr 127.0.0.0/8',
    peer: LB,
    fields: xff(REAL),
    client: REAL,
    xff: REAL,
    original: REAL,
  },
];

/** One request of a row to `path`. */
function sendRow(gw: SecurityGateway, row: MatrixRow, path: string): Promise<Answer> {
  return send(gw.port, row.peer, get(path, row.fields), row.proxySource);
}

/** What the gateway made of a row, in the shape of the row's expectations. */
async function observeRow(gw: SecurityGateway, row: MatrixRow, index: number): Promise<string> {
  const open = `/open/m${index}`;
  const seen = echoed(await sendRow(gw, row, open));
  const logged = await loggedClient(gw, open);
  const allow = (await sendRow(gw, row, `/allow/m${index}`)).status;
  const mark = gw.errors.lines.length;
  const deny = (await sendRow(gw, row, `/deny/m${index}`)).status;
  const rule = gw.errors.lines.slice(mark).find((l) => l.includes('access forbidden by rule'));
  const denied = /client: ([^,]*),/.exec(rule ?? '')?.[1] ?? 'none';
  const uri = seen['x-original-uri'] === open ? 'path' : (seen['x-original-uri'] ?? 'none');
  return [
    `client ${seen['x-real-ip']} log ${logged} xff ${seen['x-forwarded-for']}`,
    `original ${seen['x-original-forwarded-for']} uri ${uri} forwarded ${seen.forwarded ?? 'none'}`,
    `allow ${allow} deny ${deny} ${denied}`,
  ].join(' | ');
}

function expectedOf(row: MatrixRow): string {
  const uriHeader = 'proxy-add-original-uri-header' in VARIANTS[row.variant];
  const forgedUri = row.fields.some(([name]) => name === 'X-Original-URI');
  return [
    `client ${row.client} log ${row.client} xff ${row.xff}`,
    // X-Original-URI: the gateway's own with proxy-add-original-uri-header, else the client's passes
    // (nginx sets none). Forwarded is never passed on from an untrusted hop (nginx passes it always).
    `original ${row.original} uri ${uriHeader ? 'path' : forgedUri ? '/admin' : 'none'} forwarded none`,
    `allow ${row.client === FORGED ? 200 : 403} deny 403 ${row.client}`,
  ].join(' | ');
}

describe('2. ConfigMap combinations: a client at 127.0.x.y forging every header is neither admitted nor hidden', () => {
  let backend: Awaited<ReturnType<typeof tappedWhoami>>;
  const gateways = new Map<Variant, SecurityGateway>();

  before(async () => {
    backend = await tappedWhoami();
    for (const [variant, data] of Object.entries(VARIANTS) as [Variant, Record<string, string>][]) {
      const flag = variant.startsWith('--trusted-proxies') ? FLAG : null;
      gateways.set(variant, await gatewayWith(backend.tap.port, data, flag));
    }
  });
  after(async () => {
    for (const gw of gateways.values()) await gw.close();
    await backend.close();
  });

  test(`${MATRIX.length} rows: the client logged and forwarded, X-Forwarded-For, allow and deny lists as ingress-nginx`, async () => {
    const seen: string[] = [];
    const expected: string[] = [];
    for (const [index, row] of MATRIX.entries()) {
      const name = `${row.variant}, from ${row.proxySource ?? row.peer}`;
      seen.push(`${name}: ${await observeRow(gateways.get(row.variant)!, row, index)}`);
      expected.push(`${name}: ${expectedOf(row)}`);
    }
    assert.deepEqual(seen, expected);
  });

  test('rate-limit buckets follow the configured header from trusted hops only (CF-Connecting-IP, X-Client-IP behind PROXY)', async () => {
    /** Three requests to limit-rpm 1 x 1 (two admitted per bucket), each naming 198.51.100.<last>. */
    const run = async (variant: Variant, from: string, source: string | undefined, lasts: number[]) => {
      const header = variant.includes('X-Client-IP') ? 'X-Client-IP' : 'CF-Connecting-IP';
      const statuses: number[] = [];
      for (const last of lasts) {
        const request = get('/limit', [[header, `198.51.100.${last}`]]);
        statuses.push((await send(gateways.get(variant)!.port, from, request, source)).status);
      }
      return statuses;
    };
    const cf: Variant = 'forwarded-for-header CF-Connecting-IP';
    const pp: Variant =
      'use-proxy-protocol + use-forwarded-headers + X-Client-IP + compute-full-forwarded-for';
    // The attacker rotates the address it names: its own bucket all the same.
    assert.deepEqual(await run(cf, ATTACKER, undefined, [31, 32, 33]), [200, 200, 503]);
    // 198.51.100.31, named by the trusted proxy, has a bucket nobody touched.
    assert.deepEqual(await run(cf, LB, undefined, [31, 31, 31]), [200, 200, 503]);
    assert.deepEqual(await run(pp, LB, ATTACKER, [31, 32, 33]), [200, 200, 503]);
    assert.deepEqual(await run(pp, LB, HOP, [31, 31, 31]), [200, 200, 503]);
  });
});

// ---------------------------------------------------------------------------------------------
// 3. RFC 7239 Forwarded, and the header ingress-nginx computes between PROXY and X-Forwarded-For

describe('3. Forwarded and X-Forwarded-For-Proxy-Protocol: never the client, never passed on as if computed', () => {
  let backend: Awaited<ReturnType<typeof tappedWhoami>>;
  let xffGw: SecurityGateway;
  let realIpGw: SecurityGateway;
  let ppGw: SecurityGateway;

  before(async () => {
    backend = await tappedWhoami();
    xffGw = await gatewayWith(backend.tap.port, VARIANTS['use-forwarded-headers']);
    realIpGw = await gatewayWith(backend.tap.port, VARIANTS['enable-real-ip + compute-full-forwarded-for']);
    ppGw = await gatewayWith(backend.tap.port, {
      'use-proxy-protocol': 'true',
      'use-forwarded-headers': 'true',
      'proxy-real-ip-cidr': TRUSTED,
    });
  });
  after(async () => {
    for (const gw of [xffGw, realIpGw, ppGw]) await gw.close();
    await backend.close();
  });

  test('under the default header, a Forwarded for= relayed by the trusted peer names no one; it reaches the backend only from a trusted hop with use-forwarded-headers', async () => {
    const fields: Fields = [['Forwarded', `for=${FORGED};proto=https;host=admin.example`]];
    const relayed = echoed(await send(xffGw.port, LB, get('/open/fwd-lb', fields)));
    assert.equal(relayed['x-real-ip'], LB);
    assert.equal(relayed.forwarded, fields[0]![1], 'relayed by the trusted hop, as ingress-nginx relays it');
    assert.equal((await send(xffGw.port, LB, get('/allow/fwd-lb', fields))).status, 403);
    // enable-real-ip without use-forwarded-headers: the forwarded headers are not the hop's to pass on.
    const realIp = echoed(await send(realIpGw.port, LB, get('/open/fwd-realip', fields)));
    assert.equal(realIp['x-real-ip'], LB);
    assert.equal(realIp.forwarded, undefined);
    assert.equal(
      echoed(await send(xffGw.port, ATTACKER, get('/open/fwd-attacker', fields))).forwarded,
      undefined,
    );
  });

  test("use-proxy-protocol + use-forwarded-headers: a client's own X-Forwarded-For-Proxy-Protocol does not reach the backend as written (ingress-nginx overwrites it with the address it computed)", async () => {
    const fields: Fields = [['X-Forwarded-For-Proxy-Protocol', FORGED], ...xff(FORGED)];
    const seen = echoed(await send(ppGw.port, LB, get('/open/xffpp', fields), ATTACKER));
    assert.equal(seen['x-real-ip'], ATTACKER);
    // nginx: more_set_input_headers "X-Forwarded-For-Proxy-Protocol: $forwarded_for_proxy_protocol",
    // here $proxy_protocol_addr (the PROXY source is untrusted); absent would do as well.
    const value = seen['x-forwarded-for-proxy-protocol'];
    assert.ok(
      value === undefined || value === ATTACKER,
      `the backend got X-Forwarded-For-Proxy-Protocol: ${value}`,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// 4. The trust-everyone default, an empty proxy-real-ip-cidr, and --trusted-proxies

/** The warning lines a snapshot would print at start-up that say every peer is trusted. */
function trustEveryoneLines(gw: SecurityGateway): string[] {
  return snapshotEvents(gw.gateway.snapshot())
    .filter((e) => e.event === 'trust-everyone' || e.code === 'TRUSTS_EVERYONE')
    .map((e) => e.message);
}

describe('4. who is trusted when proxy-real-ip-cidr is left out, left empty, or overridden by --trusted-proxies', () => {
  let backend: Awaited<ReturnType<typeof tappedWhoami>>;
  const started: SecurityGateway[] = [];
  const start = async (data: Record<string, string>, flag: readonly string[] | null = null) => {
    const gw = await gatewayWith(backend.tap.port, data, flag);
    started.push(gw);
    return gw;
  };

  before(async () => {
    backend = await tappedWhoami();
  });
  after(async () => {
    for (const gw of started) await gw.close();
    await backend.close();
  });

  test('default 0.0.0.0/0 with use-forwarded-headers (and use-proxy-protocol): every client can name itself, as in ingress-nginx, and keepip warns at start-up', async () => {
    const xffOnly = await start({ 'use-forwarded-headers': 'true' });
    const forged = await send(xffOnly.port, ATTACKER, get('/allow/default', xff(FORGED)));
    assert.equal(forged.status, 200, 'spoofable by design: set_real_ip_from 0.0.0.0/0');
    const lines = trustEveryoneLines(xffOnly);
    assert.ok(
      lines.some((l) => /X-Forwarded-For is believed from every peer/.test(l)),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => /proxy-real-ip-cidr is not set/.test(l)),
      lines.join('\n'),
    );
    // With PROXY on as well, the attacker is its own load balancer: a PROXY header straight from it.
    const both = await start({ 'use-proxy-protocol': 'true', 'use-forwarded-headers': 'true' });
    assert.equal((await send(both.port, ATTACKER, get('/allow/default-pp'), FORGED)).status, 200);
    assert.ok(trustEveryoneLines(both).some((l) => /PROXY headers are accepted from every peer/.test(l)));
  });

  test('proxy-real-ip-cidr: "" trusts no peer, as ingress-nginx (no set_real_ip_from line), not the 0.0.0.0/0 default', async () => {
    const gw = await start({ 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '' });
    const open = echoed(await send(gw.port, ATTACKER, get('/open/empty-cidr', xff(FORGED))));
    assert.equal(open['x-real-ip'], ATTACKER);
    assert.equal((await send(gw.port, ATTACKER, get('/allow/empty-cidr', xff(FORGED)))).status, 403);
  });

  test('--trusted-proxies without proxy-real-ip-cidr in the ConfigMap: no start-up line claims that every peer is trusted', async () => {
    const gw = await start({ 'use-forwarded-headers': 'true' }, FLAG);
    assert.equal((await send(gw.port, ATTACKER, get('/allow/flag', xff(FORGED)))).status, 403);
    assert.equal((await send(gw.port, LB, get('/allow/flag', xff(FORGED)))).status, 200);
    assert.deepEqual(trustEveryoneLines(gw), []);
  });
});
