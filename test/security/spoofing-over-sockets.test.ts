// The spoofing table (test/fixtures/spoofing.ts, the rows test/net/spoofing.test.ts runs on the pure
// resolver) replayed over real sockets through in-process gateways: each row's TCP peer is a client
// bound to that 127.x address (or ::1, or an IPv4 client of a dual-stack ::ffff:127.0.0.1 listener for
// the ::ffff: peers), its PROXY header comes from src/proxy-protocol's encoder, its headers go on the
// wire. Each row asserts the address the gateway settled on (the access log's $remote_addr, the
// backend's X-Real-IP, the error log's `client:`) and the rule that decided: 403 with nginx's
// `access forbidden by rule` line and the denial counter of that rule, 200 from the backend, or a
// connection the PROXY reader closed with its error log line; a tap proves denied requests never left.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tryEncodeProxyHeader } from '../../src/proxy-protocol/index.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { type Attempt, LOOPBACK_PLAN, type SpoofSettings, spoofingTable } from '../fixtures/spoofing.ts';
import { decodeChunked, rawExchange, splitResponse } from '../helpers/net.ts';
import {
  configMapYaml,
  counterValue,
  ingressYaml,
  type SecurityGateway,
  serviceYaml,
  startSecurityGateway,
  startTap,
  type Tap,
  topologyFromYaml,
} from './helpers.ts';

const plan = LOOPBACK_PLAN;
const table = spoofingTable(plan);
const HOST = 'app.example.com';

type Listener = 'v4' | 'mapped' | 'v6';

/** Where a row's peer comes from: the listener that reports it so, and the client's own address. */
function transport(peer: string): { listener: Listener; from: string; connectTo: string } {
  if (peer.startsWith('::ffff:')) return { listener: 'mapped', from: peer.slice(7), connectTo: '127.0.0.1' };
  if (peer.includes(':')) return { listener: 'v6', from: peer, connectTo: '::1' };
  return { listener: 'v4', from: peer, connectTo: '127.0.0.1' };
}

const LISTEN_HOST: Record<Listener, string> = { v4: '127.0.0.1', mapped: '::ffff:127.0.0.1', v6: '::1' };

function configMapFor(settings: SpoofSettings): Record<string, string> {
  return {
    'proxy-real-ip-cidr': table.trusted.join(','),
    'block-cidrs': table.access.block,
    ...(settings.useProxyProtocol ? { 'use-proxy-protocol': 'true' } : {}),
    ...(settings.useForwardedHeaders ? { 'use-forwarded-headers': 'true' } : {}),
    ...(settings.forwardedForHeader ? { 'forwarded-for-header': settings.forwardedForHeader } : {}),
  };
}

/** One gateway per settings and listener family, started on first use; all route to one tapped whoami. */
class Gateways {
  readonly #started = new Map<string, Promise<SecurityGateway>>();
  readonly backendPort: number;

  constructor(backendPort: number) {
    this.backendPort = backendPort;
  }

  get(settings: SpoofSettings, listener: Listener): Promise<SecurityGateway> {
    const key = `${JSON.stringify(configMapFor(settings))} ${listener}`;
    let gateway = this.#started.get(key);
    if (gateway === undefined) {
      const yaml = [
        configMapYaml(configMapFor(settings)),
        serviceYaml('app', this.backendPort),
        ingressYaml('app', '/', 'app', {
          'allowlist-source-range': table.access.allow,
          'denylist-source-range': table.access.deny,
        }),
        ingressYaml('open', '/open', 'app'), // no access rules: for the X-Forwarded-* rows
      ].join('\n');
      gateway = startSecurityGateway(topologyFromYaml(yaml), {
        http: { host: LISTEN_HOST[listener], port: 0 },
      });
      this.#started.set(key, gateway);
    }
    return gateway;
  }

  async close(): Promise<void> {
    for (const gateway of this.#started.values()) await (await gateway).close();
  }
}

/** The PROXY header a row's peer sends: from the encoder, or raw v1 text for what it refuses to write. */
function proxyHeader(source: string, version: 1 | 2): Buffer {
  const v6 = source.includes(':');
  const encoded = tryEncodeProxyHeader({
    version,
    source: { address: source, port: 40000 },
    destination: { address: v6 ? '::1' : '127.0.0.1', port: 80 },
  });
  if (encoded.ok) return encoded.value;
  return Buffer.from(`PROXY TCP6 ${source} ::1 40000 80\r\n`, 'latin1'); // a zone id: the encoder says no
}

function requestText(path: string, headers: Attempt['headers'] = {}): string {
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${HOST}`, 'Accept: application/json', 'Connection: close'];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value ?? '']) lines.push(`${name}: ${v}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

interface Replay {
  gateway: SecurityGateway;
  status: number;
  /** The backend's JSON echo of a proxied request (null when nothing came back from it). */
  echo: { headers: Record<string, string> } | null;
  received: number;
  closedByServer: boolean;
  /** Error log lines written while the row ran (the log is written synchronously). */
  errorLines: string[];
}

function echoOf(raw: Buffer): Replay['echo'] {
  if (!raw.toString('latin1', 0, 13).startsWith('HTTP/1.1 200 ')) return null;
  const { head, body } = splitResponse(raw);
  const bytes = /\r\ntransfer-encoding: chunked/i.test(head) ? decodeChunked(body).data : body;
  return JSON.parse(bytes.toString('utf8')) as Replay['echo'];
}

/** What goes on the wire for a row. */
type Sent = Pick<Attempt, 'name' | 'settings' | 'peer' | 'proxySource' | 'headers'>;

/** Sends one row's connection: its PROXY header (when the settings want one) and a GET for `path`. */
async function replay(gateways: Gateways, row: Sent, path: string, version: 1 | 2): Promise<Replay> {
  const { listener, from, connectTo } = transport(row.peer);
  const gateway = await gateways.get(row.settings, listener);
  const parts: Buffer[] = [Buffer.from(requestText(path, row.headers), 'latin1')];
  if (row.settings.useProxyProtocol) {
    assert.ok(row.proxySource !== undefined, `${row.name}: a PROXY listener needs a PROXY source`);
    parts.unshift(proxyHeader(row.proxySource, version));
  }
  const mark = gateway.errors.lines.length;
  const reply = await rawExchange({
    host: connectTo,
    port: gateway.port,
    payload: Buffer.concat(parts),
    localAddress: from,
    timeoutMs: 15_000,
  });
  const status = /^HTTP\/1\.1 (\d{3})/.exec(reply.received.toString('latin1'));
  return {
    gateway,
    status: status ? Number(status[1]) : 0,
    echo: echoOf(reply.received),
    received: reply.received.length,
    closedByServer: reply.closedByServer,
    errorLines: gateway.errors.lines.slice(mark),
  };
}

const DENIALS = 'keepip_gateway_denials_total';

/** Replays a row and asserts the client the gateway settled on and the rule that decided. */
async function assertRow(gateways: Gateways, tap: Tap, row: Attempt, index: number): Promise<void> {
  const path = `/spoof-${index}`;
  const what = `${row.name} (${path})`;
  const rule = row.expect.rule;
  const { listener } = transport(row.peer);
  const before = await counterValue((await gateways.get(row.settings, listener)).gateway, DENIALS, { rule });
  const r = await replay(gateways, row, path, index % 2 === 0 ? 1 : 2);
  if (row.wire !== undefined) {
    assert.ok(r.closedByServer && r.received === 0, `${what}: expected a silent close, got ${r.status}`);
    const line =
      row.wire === 'untrusted-proxy-peer'
        ? `PROXY protocol peer ${transport(row.peer).from} is not a trusted proxy`
        : 'while reading PROXY protocol';
    assert.ok(
      r.errorLines.some((l) => l.includes(line)),
      `${what}: no "${line}" in ${JSON.stringify(r.errorLines)}`,
    );
  } else if (row.expect.outcome === 'deny') {
    const shown = row.expect.client === '' ? '-' : row.expect.client;
    assert.equal(r.status, 403, what);
    // Written before the 403 goes out, so it is there once the reply is.
    const forbidden = new RegExp(
      `access forbidden by rule, client: ${literal(shown)}, server: [^,]*, request: "GET ${literal(path)} HTTP/1\\.1"`,
    );
    assert.ok(
      r.errorLines.some((l) => forbidden.test(l)),
      `${what}: ${forbidden} in ${JSON.stringify(r.errorLines)}`,
    );
    assert.equal(
      await counterValue(r.gateway.gateway, DENIALS, { rule }),
      before + 1,
      `${what}: ${rule} counted`,
    );
    const access = await r.gateway.access.waitFor(new RegExp(`"GET ${literal(path)} HTTP/1\\.1" 403 `));
    assert.ok(access.startsWith(`${shown} - - [`), `${what}: $remote_addr in ${access}`);
  } else {
    assert.equal(r.status, 200, what);
    assert.equal(r.echo?.headers['x-real-ip'], row.expect.client, `${what}: X-Real-IP at the backend`);
    const access = await r.gateway.access.waitFor(new RegExp(`"GET ${literal(path)} HTTP/1\\.1" 200 `));
    assert.ok(access.startsWith(`${row.expect.client} - - [`), `${what}: $remote_addr in ${access}`);
  }
  assert.equal(tap.saw(path), row.expect.outcome === 'allow', `${what}: reached the backend`);
}

describe('spoofing table over sockets: every attempt denied by the rule the table names', () => {
  let whoami: RunningWhoami;
  let tap: Tap;
  let gateways: Gateways;

  before(async () => {
    whoami = await startWhoami({ host: '127.0.0.1', port: 0, name: 'app' });
    tap = await startTap(whoami.address.port);
    gateways = new Gateways(tap.port);
  });
  after(async () => {
    await gateways.close();
    await tap.close();
    await whoami.close();
  });

  test(`${table.attempts.length} attempts: 403 from the named rule (or closed by the PROXY reader), never the backend`, async () => {
    for (const [index, row] of table.attempts.entries()) await assertRow(gateways, tap, row, index);
  });

  test('genuine clients with the same settings: 200 from the backend, which sees them as X-Real-IP', async () => {
    for (const [index, row] of table.genuine.entries()) {
      await assertRow(gateways, tap, row, table.attempts.length + index);
    }
  });
});

// X-Forwarded-Proto/Host/Port are believed only from a trusted client: behind a PROXY load balancer
// that is the client its header names, not the load balancer (docs/gateway.md, deliberate differences).
describe('forged X-Forwarded-Proto/Host/Port over sockets: believed from trusted clients only', () => {
  let whoami: RunningWhoami;
  let tap: Tap;
  let gateways: Gateways;
  const forged = {
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'evil.example',
    'x-forwarded-port': '8443',
  };
  const both: SpoofSettings = { useProxyProtocol: true, useForwardedHeaders: true };
  const xffOnly: SpoofSettings = { useForwardedHeaders: true };
  const rows: { name: string; row: Sent; believed: boolean }[] = [
    {
      name: 'an untrusted client behind the trusted PROXY hop',
      row: { name: '', settings: both, peer: plan.appendingProxy, proxySource: plan.attacker },
      believed: false,
    },
    {
      name: 'a trusted client behind the trusted PROXY hop',
      row: { name: '', settings: both, peer: plan.appendingProxy, proxySource: plan.trustedHops[2] },
      believed: true,
    },
    {
      name: 'an untrusted peer',
      row: { name: '', settings: xffOnly, peer: plan.attacker },
      believed: false,
    },
    {
      name: 'a trusted peer',
      row: { name: '', settings: xffOnly, peer: plan.appendingProxy },
      believed: true,
    },
  ];

  before(async () => {
    whoami = await startWhoami({ host: '127.0.0.1', port: 0, name: 'app' });
    tap = await startTap(whoami.address.port);
    gateways = new Gateways(tap.port);
  });
  after(async () => {
    await gateways.close();
    await tap.close();
    await whoami.close();
  });

  for (const [index, { name, row, believed }] of rows.entries()) {
    test(`from ${name}: ${believed ? 'believed' : 'replaced by the real scheme, host and port'}`, async () => {
      const r = await replay(gateways, { ...row, headers: forged }, `/open/${index}`, 1);
      assert.equal(r.status, 200, JSON.stringify(r.errorLines));
      // Not believed: the connection's own scheme, the Host header, and the PROXY header's destination
      // port (80) or else the listener's.
      const port = row.settings.useProxyProtocol ? '80' : String(r.gateway.port);
      const expected = believed
        ? forged
        : { 'x-forwarded-proto': 'http', 'x-forwarded-host': HOST, 'x-forwarded-port': port };
      const seen = r.echo?.headers ?? {};
      assert.deepEqual(
        {
          'x-forwarded-proto': seen['x-forwarded-proto'],
          'x-forwarded-host': seen['x-forwarded-host'],
          'x-forwarded-port': seen['x-forwarded-port'],
        },
        expected,
      );
    });
  }
});
