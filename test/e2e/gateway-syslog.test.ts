// The ConfigMap's enable-syslog, syslog-host, syslog-port over real sockets: a UDP receiver on
// 127.0.0.1 plays the syslog server. Both logs go there as nginx's datagrams (access lines at local7.info,
// error lines at their level) and no longer to the gateway's own sinks; a reload turns it off again.
// A name that does not resolve keeps the logs where they were, with one error line saying why.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import type { Topology } from '../../src/config/model.ts';
import { type RunningWhoami, startWhoami } from '../../src/whoami/server.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, ingress, topologyOf, webApp } from '../fixtures/gateway/manifests.ts';

interface Receiver {
  port: number;
  messages: string[];
  waitFor(pattern: RegExp): Promise<string>;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const socket = dgram.createSocket('udp4');
  const messages: string[] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (message) => {
    messages.push(message.toString('utf8'));
    for (const waiter of [...waiters]) waiter();
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    messages,
    waitFor: (pattern) =>
      new Promise((resolve) => {
        const check = () => {
          const found = messages.find((m) => pattern.test(m));
          if (found === undefined) return;
          waiters.delete(check);
          resolve(found);
        };
        waiters.add(check);
        check();
      }),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

const HEADER = String.raw`^<(\d+)>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d (\S+) nginx: `;

describe('enable-syslog: both logs to a syslog server over UDP', () => {
  let backend: RunningWhoami;
  let receiver: Receiver;
  let gw: TestGateway;
  const topology = (data: Record<string, string>): Topology =>
    topologyOf([
      controllerConfigMap({ 'log-format-upstream': '$remote_addr "$request" $status', ...data }),
      ...webApp(backend.address.port),
      ingress({
        name: 'closed',
        host: 'closed.example.com',
        paths: [{ path: '/', service: 'web', port: 80 }],
        annotations: { 'whitelist-source-range': '10.0.0.0/8' },
      }),
    ]);

  before(async () => {
    backend = await startWhoami({ host: '127.0.0.1', port: 0 });
    receiver = await startReceiver();
    // syslog.invalid does not resolve, without asking a DNS server.
    const lookup: LookupFunction = (name, options, callback) =>
      name === 'syslog.invalid'
        ? callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' }), '', 4)
        : dnsLookup(name, options, callback);
    gw = await startTestGateway(
      topology({ 'enable-syslog': 'true', 'syslog-host': '127.0.0.1', 'syslog-port': String(receiver.port) }),
      { lookup },
    );
  });
  after(async () => {
    await gw?.close();
    await receiver?.close();
    await backend?.close();
  });

  test('an access line is a local7.info datagram with the host name and the tag nginx', async () => {
    const reply = await request(gw.httpPort, { from: '127.0.0.61', host: 'web.example.com', path: '/a' });
    assert.equal(reply.status, 200);
    const message = await receiver.waitFor(/"GET \/a HTTP\/1\.1" 200$/);
    const header = new RegExp(`${HEADER}(.*)$`).exec(message);
    assert.ok(header, message);
    assert.equal(header[1], String(23 * 8 + 6));
    assert.equal(header[3], hostname().toLowerCase());
    assert.equal(header[4], '127.0.0.61 "GET /a HTTP/1.1" 200');
    assert.deepEqual(gw.access.lines, []);
  });

  test("an error line is sent at its level (error: local7.err), in nginx's error log shape", async () => {
    const reply = await request(gw.httpPort, { from: '127.0.0.62', host: 'closed.example.com' });
    assert.equal(reply.status, 403);
    const message = await receiver.waitFor(/access forbidden by rule, client: 127\.0\.0\.62/);
    assert.match(message, new RegExp(`${HEADER}\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d \\[error\\] `));
    assert.equal(/^<(\d+)>/.exec(message)?.[1], String(23 * 8 + 3));
    await receiver.waitFor(/127\.0\.0\.62 "GET \/ HTTP\/1\.1" 403$/);
    assert.deepEqual(
      gw.errors.lines.filter((l) => l.includes('127.0.0.62')),
      [],
    );
  });

  test('a reload without enable-syslog brings the lines back to the access log', async () => {
    assert.equal(gw.gateway.reload(topology({})).ok, true);
    const before = receiver.messages.length;
    assert.equal((await request(gw.httpPort, { from: '127.0.0.63', host: 'web.example.com' })).status, 200);
    await gw.access.waitFor(/^127\.0\.0\.63 "GET \/ HTTP\/1\.1" 200$/);
    assert.equal(receiver.messages.length, before);
  });

  test('a host name that does not resolve: one error line, and the lines stay in the logs', async () => {
    const unresolvable = { 'enable-syslog': 'true', 'syslog-host': 'syslog.invalid', 'syslog-port': '514' };
    assert.equal(gw.gateway.reload(topology(unresolvable)).ok, true);
    assert.equal((await request(gw.httpPort, { from: '127.0.0.64', host: 'web.example.com' })).status, 200);
    await gw.errors.waitFor(/\[error\] .*syslog-host: syslog\.invalid could not be resolved \(ENOTFOUND\)/);
    // The line written while the name was being resolved is not lost, nor are the next ones.
    await gw.access.waitFor(/^127\.0\.0\.64 "GET \/ HTTP\/1\.1" 200$/);
    assert.equal((await request(gw.httpPort, { from: '127.0.0.65', host: 'web.example.com' })).status, 200);
    await gw.access.waitFor(/^127\.0\.0\.65 "GET \/ HTTP\/1\.1" 200$/);
  });
});
