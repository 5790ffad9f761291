// Interop: HAProxy (mode tcp) in front of keepip gateway with `send-proxy-v2 proxy-v2-options
// crc32c,authority,unique-id,ssl`: the gateway must accept every header HAProxy writes with those
// TLVs (checking HAProxy's CRC32C with its own), resolve the client from it, and refuse a header whose
// CRC32C was damaged on the way.
// The `ssl` option describes the client's connection to HAProxy, and `authority` is the SNI that
// client sent, so both mean something only when HAProxy terminates TLS: the TLS frontends do (curl ->
// HAProxy over TLS, HAProxy -> gateway in plain TCP, as an NLB's TLS listener does); the plain
// frontend shows that the gateway takes what HAProxy sends then (HAProxy 2.6: a 5-byte SSL TLV whose
// client flags say "not TLS", and no AUTHORITY).
// A tap between HAProxy and the gateway on one frontend keeps the header HAProxy wrote, so the test
// knows which TLVs the gateway was given (read by the small walker below, not keepip's parser).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { type RunningHaproxy, startHaproxy } from '../helpers/haproxy.ts';
import { metricSum } from '../helpers/metrics.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';

const OPTIONS = 'send-proxy-v2 proxy-v2-options crc32c,authority,unique-id,ssl';
const UNIQUE_ID_FORMAT = 'unique-id-format %{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid';
const TLV = { CRC32C: 0x03, AUTHORITY: 0x02, UNIQUE_ID: 0x05, SSL: 0x20 };

interface RawTlv {
  type: number;
  value: Buffer;
  /** Where the value starts in the header. */
  at: number;
}

/** The TLVs of a complete v2 header, walked by the spec (§2.2.7), not by keepip's parser. */
function tlvsOf(header: Buffer): RawTlv[] {
  const end = 16 + header.readUInt16BE(14);
  let at = 16 + ([0, 12, 36, 216][header[13]! >> 4] ?? 0);
  const tlvs: RawTlv[] = [];
  while (at < end) {
    const length = header.readUInt16BE(at + 1);
    tlvs.push({ type: header[at]!, value: header.subarray(at + 3, at + 3 + length), at: at + 3 });
    at += 3 + length;
  }
  assert.equal(at, end, 'the TLVs fill the header exactly');
  return tlvs;
}

interface Tap {
  port: number;
  /** The v2 header of every connection, in order. */
  headers: Buffer[];
  /** Flip one bit of the CRC32C value in the next connection's header. */
  damageNextCrc: boolean;
  close(): Promise<void>;
}

/** A TCP relay to `targetPort` that keeps each connection's v2 header (whatever the segments). */
async function startTap(targetPort: number): Promise<Tap> {
  const sockets = new Set<net.Socket>();
  const tap: Tap = { port: 0, headers: [], damageNextCrc: false, close: async () => {} };
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    upstream.on('close', () => client.destroy());
    let pending = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length < 16 || pending.length < 16 + pending.readUInt16BE(14)) return;
      client.off('data', onData);
      const header = Buffer.from(pending.subarray(0, 16 + pending.readUInt16BE(14)));
      tap.headers.push(header);
      if (tap.damageNextCrc) {
        tap.damageNextCrc = false;
        const crc = tlvsOf(header).find((t) => t.type === TLV.CRC32C);
        assert.ok(crc, 'HAProxy sent a CRC32C');
        pending[crc.at]! ^= 0x01;
      }
      upstream.write(pending);
      client.pipe(upstream);
    };
    client.on('data', onData);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tap.port = (server.address() as net.AddressInfo).port;
  tap.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return tap;
}

describe('HAProxy send-proxy-v2 with crc32c,authority,unique-id,ssl into keepip gateway', () => {
  let backend: RunningWhoami;
  let gw: TestGateway;
  let tap: Tap;
  let haproxy: RunningHaproxy;
  const ports = { tls: 0, plain: 0, tlsTap: 0 };

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    gw = await startTestGateway(
      topologyOf([
        // HAProxy and the tap both connect from 127.0.0.1: only that address may send PROXY headers.
        controllerConfigMap({
          'use-proxy-protocol': 'true',
          'proxy-real-ip-cidr': '127.0.0.1/32',
          'log-format-upstream':
            '$remote_addr $remote_port pp=$proxy_protocol_addr:$proxy_protocol_port peer=$realip_remote_addr "$request" $status',
        }),
        ...serviceWithEndpoints({ name: 'web', ports: [backend.address.port] }),
        ingress({
          name: 'web',
          host: 'web.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'allowlist-source-range': '127.0.0.77/32,127.0.0.78/32' },
        }),
      ]),
    );
    tap = await startTap(gw.httpPort);
    const { cert, key } = await testCertificate();
    haproxy = await startHaproxy({
      freePorts: 3,
      config: (dir, [tls, plain, tlsTap]) => {
        const pem = join(dir, 'site.pem'); // HAProxy wants the certificate and its key in one file
        writeFileSync(pem, `${cert.trimEnd()}\n${key}`);
        return [
          'frontend fe_tls',
          `  bind 127.0.0.1:${tls} ssl crt ${pem}`,
          `  ${UNIQUE_ID_FORMAT}`,
          '  default_backend be_gateway',
          'frontend fe_plain',
          `  bind 127.0.0.1:${plain}`,
          `  ${UNIQUE_ID_FORMAT}`,
          '  default_backend be_gateway',
          'frontend fe_tls_tap',
          `  bind 127.0.0.1:${tlsTap} ssl crt ${pem}`,
          `  ${UNIQUE_ID_FORMAT}`,
          '  default_backend be_tap',
          'backend be_gateway',
          `  server gateway 127.0.0.1:${gw.httpPort} ${OPTIONS}`,
          'backend be_tap',
          `  server tap 127.0.0.1:${tap.port} ${OPTIONS}`,
        ].join('\n');
      },
      waitFor: (p) => p.map((port) => ({ host: '127.0.0.1', port })),
    });
    [ports.tls, ports.plain, ports.tlsTap] = haproxy.ports as [number, number, number];
  });

  after(async () => {
    await haproxy?.stop();
    await tap?.close();
    await gw?.close();
    await backend?.close();
  });

  /** curl through HAProxy (TLS with the SNI web.example.com, or plain HTTP) from `from`. */
  async function curl(port: number, tls: boolean, from: string, path: string) {
    const url = tls ? `https://web.example.com:${port}${path}` : `http://127.0.0.1:${port}${path}`;
    const result = await runCommand(requireBinary('curl'), [
      '-sk',
      '--resolve',
      `web.example.com:${port}:127.0.0.1`,
      '--interface',
      from,
      '-H',
      'Host: web.example.com',
      '-H',
      'Accept: application/json',
      '-w',
      '\n%{http_code} %{local_port}',
      url,
    ]);
    const cut = result.stdout.lastIndexOf('\n');
    const [status, localPort] = result.stdout.slice(cut + 1).split(' ');
    return { status, localPort, body: result.stdout.slice(0, cut) };
  }

  async function proxyHeaders(result: string, reason: string): Promise<number> {
    const text = await gw.gateway.metrics.registry.metrics();
    return metricSum(text, 'keepip_gateway_proxy_headers_total', { result, reason });
  }

  async function assertResolved(
    reply: { status?: string; localPort?: string; body: string },
    from: string,
    path: string,
  ) {
    assert.equal(reply.status, '200', `${reply.body}\n${haproxy.output()}`);
    const echo = JSON.parse(reply.body) as { headers: Record<string, string> };
    assert.equal(echo.headers['x-real-ip'], from);
    assert.equal(echo.headers['x-forwarded-for'], from);
    const line = await gw.access.waitFor(new RegExp(`"GET ${path} HTTP/1\\.1" 200$`));
    assert.equal(
      line,
      `${from} ${reply.localPort} pp=${from}:${reply.localPort} peer=127.0.0.1 "GET ${path} HTTP/1.1" 200`,
    );
  }

  test('TLS client: the gateway accepts the header (CRC32C, AUTHORITY, UNIQUE_ID, SSL) and resolves the client', async () => {
    const accepted = await proxyHeaders('accepted', 'ok');
    await assertResolved(await curl(ports.tls, true, '127.0.0.77', '/tls'), '127.0.0.77', '/tls');
    assert.equal(await proxyHeaders('accepted', 'ok'), accepted + 1);
    assert.equal(await proxyHeaders('rejected', 'malformed'), 0);
  });

  test('plain client (no TLS at HAProxy): the gateway accepts that header too', async () => {
    const accepted = await proxyHeaders('accepted', 'ok');
    await assertResolved(await curl(ports.plain, false, '127.0.0.78', '/plain'), '127.0.0.78', '/plain');
    assert.equal(await proxyHeaders('accepted', 'ok'), accepted + 1);
    assert.equal(await proxyHeaders('rejected', 'malformed'), 0);
  });

  test('through the tap: the TLVs HAProxy wrote are the four asked for, and the gateway took them', async () => {
    const seen = tap.headers.length;
    await assertResolved(await curl(ports.tlsTap, true, '127.0.0.77', '/tap'), '127.0.0.77', '/tap');
    const header = tap.headers[seen];
    assert.ok(header, 'the tap saw the connection');
    assert.equal(header.subarray(12, 14).toString('hex'), '2111', 'v2 PROXY, TCP over IPv4');
    const tlvs = tlvsOf(header);
    assert.deepEqual(
      tlvs.map((t) => t.type),
      [TLV.CRC32C, TLV.AUTHORITY, TLV.UNIQUE_ID, TLV.SSL],
    );
    assert.equal(tlvs[1]!.value.toString(), 'web.example.com');
    assert.match(tlvs[2]!.value.toString('latin1'), /^[0-9A-F]+:[0-9A-F]+_/); // the unique-id-format
    assert.equal(tlvs[3]!.value[0]! & 0x01, 0x01, 'PP2_CLIENT_SSL');
  });

  test('a CRC32C damaged on the way: the gateway closes the connection, logs and counts it', async () => {
    const rejected = await proxyHeaders('rejected', 'malformed');
    tap.damageNextCrc = true;
    const reply = await curl(ports.tlsTap, true, '127.0.0.77', '/damaged');
    assert.equal(reply.status, '000', reply.body); // closed without a response
    await gw.errors.waitFor(
      /broken header: "\\x0D\\x0A\\x0D\\x0A\\x00\\x0D\\x0AQUIT\\x0A[^"]*" while reading PROXY protocol \(PP_V2_CRC32C_MISMATCH: .*\), client: 127\.0\.0\.1,/,
    );
    assert.equal(await proxyHeaders('rejected', 'malformed'), rejected + 1);
    assert.ok(!gw.access.lines.some((line) => line.includes('/damaged')), 'no request was read');
  });
});
