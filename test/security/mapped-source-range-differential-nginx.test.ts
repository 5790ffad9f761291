// IPv4-mapped entries (`::ffff:0:0/96`, `::ffff:127.0.0.1`) in the access and trust lists, keepip against
// real nginx configured as ingress-nginx renders each source:
// - an annotation's list passes through Go's net.ParseCIDR in ingress-nginx (ipallowlist.Parse,
//   internal/net.ParseIPNets keys each network by IPNet.String()), which prints `::ffff:0:0/96` as
//   `0.0.0.0/0`: nginx gets `allow 0.0.0.0/0;`, every IPv4 client matches;
// - the ConfigMap's whitelist-source-range / denylist-source-range defaults and proxy-real-ip-cidr reach
//   the template as written (splitAndTrimSpace; ipallowlist.Parse copies the defaults raw): nginx gets
//   `allow ::ffff:0:0/96; deny all;`, `set_real_ip_from ::ffff:0:0/96;`, an IPv6 rule no IPv4 client
//   matches.
// docs/client-ip.md: "keepip's whitelist-source-range and proxy-real-ip-cidr let such entries match
// nobody (a list of them alone admits, or trusts, nobody), while denylist-source-range and block-cidrs
// deny their IPv4 range (stricter than nginx, which would deny no one with them). Every mapped entry is
// a SOURCE_RANGE_MAPPED_ENTRY warning that names the IPv4 range to write instead."
// Found here, fixed: keepip folded every ConfigMap entry as Go folds an annotation's, so
// `whitelist-source-range: ::ffff:0:0/96` admitted every IPv4 client and `proxy-real-ip-cidr:
// ::ffff:0:0/96` let every IPv4 peer name the client with X-Forwarded-For, where nginx admits and
// trusts none.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';

const A = 'nginx.ingress.kubernetes.io/';
const FORGED = '203.0.113.9';

interface Case {
  name: string;
  /** The controller ConfigMap's data (keepip) and the nginx lines ingress-nginx renders from it. */
  data: Record<string, string>;
  annotations?: Record<string, string>;
  nginxHttp: string;
  nginxLocation: string;
  /** Sent with X-Forwarded-For: FORGED; the client each side settles on is compared. */
  forwarded?: boolean;
}

const CASES: Case[] = [
  {
    name: 'ConfigMap whitelist-source-range ::ffff:0:0/96',
    data: { 'whitelist-source-range': '::ffff:0:0/96' },
    nginxHttp: '',
    nginxLocation: 'allow ::ffff:0:0/96; deny all;',
  },
  {
    name: 'ConfigMap whitelist-source-range ::ffff:127.0.0.1 (one address)',
    data: { 'whitelist-source-range': '::ffff:127.0.0.1' },
    nginxHttp: '',
    nginxLocation: 'allow ::ffff:127.0.0.1; deny all;',
  },
  {
    name: 'ConfigMap whitelist-source-range 10.0.0.0/8, ::ffff:127.0.0.0/104',
    data: { 'whitelist-source-range': '10.0.0.0/8, ::ffff:127.0.0.0/104' },
    nginxHttp: '',
    nginxLocation: 'allow 10.0.0.0/8; allow ::ffff:127.0.0.0/104; deny all;',
  },
  {
    // Go prints the annotation's entry as 0.0.0.0/0, and ingress-nginx renders that.
    name: 'annotation allowlist-source-range ::ffff:0:0/96 over a ConfigMap default',
    data: { 'whitelist-source-range': '10.0.0.0/8' },
    annotations: { [`${A}allowlist-source-range`]: '::ffff:0:0/96' },
    nginxHttp: '',
    nginxLocation: 'allow 0.0.0.0/0; deny all;',
  },
  {
    name: 'ConfigMap proxy-real-ip-cidr ::ffff:0:0/96 with use-forwarded-headers',
    data: { 'proxy-real-ip-cidr': '::ffff:0:0/96', 'use-forwarded-headers': 'true' },
    nginxHttp: 'set_real_ip_from ::ffff:0:0/96; real_ip_header X-Forwarded-For; real_ip_recursive on;',
    nginxLocation: '',
    forwarded: true,
  },
  {
    // The control: the same request is believed from a trusted peer on both sides.
    name: 'ConfigMap proxy-real-ip-cidr 127.0.0.1/32 with use-forwarded-headers (control)',
    data: { 'proxy-real-ip-cidr': '127.0.0.1/32', 'use-forwarded-headers': 'true' },
    nginxHttp: 'set_real_ip_from 127.0.0.1/32; real_ip_header X-Forwarded-For; real_ip_recursive on;',
    nginxLocation: '',
    forwarded: true,
  },
];

/** Where keepip differs on purpose: a deny list's mapped entry denies its IPv4 range (nginx: no one). */
const ALLOWED = [
  {
    name: 'ConfigMap denylist-source-range ::ffff:127.0.0.0/104 (keepip denies more, never less)',
    data: { 'denylist-source-range': '::ffff:127.0.0.0/104' },
    nginxHttp: '',
    nginxLocation: 'deny ::ffff:127.0.0.0/104;',
    expected: { nginx: 200, keepip: 403 },
  },
];

/** nginx: one server per case; the location answers with the client it settled on (after access). */
function nginxConfig(dir: string, ports: number[]): string {
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'index.html'), 'ok\n');
  const all = [...CASES, ...ALLOWED];
  const servers = all.map(
    (c, i) => `server {
    listen 127.0.0.1:${ports[i]};
    ${c.nginxHttp}
    location / { ${c.nginxLocation} root ${www}; add_header X-Client $remote_addr always; }
  }`,
  );
  return `access_log off;\n  ${servers.join('\n  ')}`;
}

function objects(c: Case, backendPort: number): K8sObject[] {
  return [
    controllerConfigMap(c.data),
    ...serviceWithEndpoints({ name: 'app', ports: [backendPort] }),
    ingress({
      name: 'app',
      host: 'app.test',
      annotations: c.annotations ?? {},
      paths: [{ path: '/', service: 'app', port: 80 }],
    }),
  ];
}

describe('IPv4-mapped source-range entries: keepip against nginx as ingress-nginx renders them', () => {
  let backend: RunningWhoami;
  let ngx: RunningNginx;
  let gw: TestGateway;
  const all = [...CASES, ...ALLOWED];

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0, name: 'app' });
    ngx = await startNginx({
      freePorts: all.length,
      http: (dir, ports) => nginxConfig(dir, ports),
      waitFor: (ports) => ports.map((port) => ({ host: '127.0.0.1', port })),
    });
    gw = await startTestGateway(topologyOf(objects(CASES[0]!, backend.address.port)));
  });

  after(async () => {
    await gw?.close();
    await ngx?.stop();
    await backend?.close();
  });

  /** keepip's answer to the case's request: the status and the client its access line names. */
  async function keepip(c: Case): Promise<{ status: number; client: string }> {
    const reloaded = gw.gateway.reload(topologyOf(objects(c, backend.address.port)));
    assert.equal(reloaded.ok, true, c.name);
    const from = gw.access.lines.length;
    const headers: Record<string, string> = c.forwarded ? { 'x-forwarded-for': FORGED } : {};
    const reply = await request(gw.httpPort, { host: 'app.test', headers });
    assert.ok(await gw.access.untilCount(from + 1), 'the access line of the request');
    const line = gw.access.lines.slice(from).find((l) => l.includes('"GET / ')) ?? '';
    return { status: reply.status, client: line.split(' ')[0] ?? '' };
  }

  async function nginx(index: number, c: Case): Promise<{ status: number; client: string }> {
    const headers: Record<string, string> = c.forwarded ? { 'x-forwarded-for': FORGED } : {};
    const reply = await request(ngx.ports[index]!, { host: 'app.test', headers });
    return { status: reply.status, client: String(reply.headers['x-client'] ?? '') };
  }

  test('allow and trust lists: the same status and the same client as nginx', async () => {
    const rows: string[] = [];
    for (const [i, c] of CASES.entries()) {
      const [n, k] = [await nginx(i, c), await keepip(c)];
      const same = c.forwarded ? n.client === k.client && n.status === k.status : n.status === k.status;
      if (!same) rows.push(`${c.name}: nginx ${n.status} ${n.client}, keepip ${k.status} ${k.client}`);
    }
    assert.deepEqual(rows, []);
    // What each case means, so that the comparison cannot pass with both sides wrong in the same way.
    assert.equal(
      (await nginx(0, CASES[0]!)).status,
      403,
      'a mapped ConfigMap allowlist admits no IPv4 client',
    );
    assert.equal((await nginx(3, CASES[3]!)).status, 200, "an annotation's is every IPv4 client");
    assert.equal(
      (await nginx(4, CASES[4]!)).client,
      '127.0.0.1',
      'a mapped trusted CIDR trusts no IPv4 peer',
    );
    assert.equal((await nginx(5, CASES[5]!)).client, FORGED, 'the control trusts the peer');
  });

  test('ALLOWED: a mapped deny entry denies its IPv4 range in keepip, no one in nginx', async () => {
    for (const [j, c] of ALLOWED.entries()) {
      const [n, k] = [await nginx(CASES.length + j, c), await keepip(c)];
      assert.deepEqual({ nginx: n.status, keepip: k.status }, c.expected, c.name);
    }
  });

  test('every mapped entry is a SOURCE_RANGE_MAPPED_ENTRY warning naming the IPv4 range to write', () => {
    const warnings = (c: Case) =>
      topologyOf(objects(c, backend.address.port))
        .issues.filter((i) => i.code === 'SOURCE_RANGE_MAPPED_ENTRY')
        .map((i) => `${i.severity}: ${i.message}`);
    assert.match(
      warnings(CASES[0]!).join('\n'),
      /^warning: .*"::ffff:0:0\/96" .*matches no IPv4 client.*write 0\.0\.0\.0\/0/,
    );
    assert.match(warnings(CASES[1]!).join('\n'), /"::ffff:127\.0\.0\.1" .*write 127\.0\.0\.1\/32/);
    assert.match(
      warnings(CASES[3]!).join('\n'),
      /"::ffff:0:0\/96" is the IPv4 range 0\.0\.0\.0\/0: every IPv4 client/,
    );
    assert.match(warnings(CASES[4]!).join('\n'), /"::ffff:0:0\/96" .*matches no IPv4 client/);
    assert.match(
      warnings(ALLOWED[0]!).join('\n'),
      /"::ffff:127\.0\.0\.0\/104" is read as the IPv4 range 127\.0\.0\.0\/8/,
    );
    assert.deepEqual(warnings(CASES[5]!), [], 'no mapped entry, no warning');
    // An annotation's single mapped address is that address either way: no warning.
    const single = { ...CASES[3]!, annotations: { [`${A}allowlist-source-range`]: '::ffff:127.0.0.1' } };
    assert.deepEqual(warnings(single), []);
  });
});
