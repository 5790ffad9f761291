// tcp-services as nginx's stream module serves them for ingress-nginx: a failed connect goes on to the
// next endpoint (proxy-stream-next-upstream, -tries, -timeout), and every connection leaves one line
// in the connection log (log-format-stream) when it ends: 200, 400 for a refused PROXY header, 502
// when no endpoint answered.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import { Registry } from 'prom-client';
import { DEFAULT_STREAM_SETTINGS, type StreamSettings } from '../../src/config/stream.ts';
import { mayTryNext } from '../../src/controller/tcp-proxy.ts';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import type { TcpServicePlan } from '../../src/controller/tcp-services.ts';
import { dialling, startBlackhole } from '../helpers/blackhole.ts';
import { client, startEcho } from '../helpers/line-echo.ts';
import { lineCollector } from '../helpers/lines.ts';
import { refusingPort } from '../helpers/net.ts';

const FORMAT =
  '$remote_addr:$remote_port $realip_remote_addr $proxy_protocol_addr $server_port $protocol $status ' +
  '$bytes_sent $bytes_received "$upstream_addr" "$upstream_connect_time" "$upstream_bytes_sent" ' +
  '"$upstream_bytes_received" $proxy_upstream_name $session_time $nginx_version';

async function runner(
  t: TestContext,
  options: {
    targets: number[];
    decode?: boolean;
    encode?: boolean;
    stream?: Partial<StreamSettings>;
    maxConnections?: number;
    enableRealIp?: boolean;
  },
) {
  const access = lineCollector();
  const log = lineCollector();
  const registry = new Registry();
  const tcp = createTcpRunner({
    host: '127.0.0.1',
    registry,
    log: log.push,
    accessLog: access.push,
  });
  t.after(() => tcp.close());
  const plan: TcpServicePlan = {
    port: 0,
    service: { namespace: 'gitea', name: 'gitea-ssh' },
    servicePort: '22',
    decode: options.decode ?? false,
    encode: options.encode ?? false,
    targets: options.targets.map((port) => ({ host: '127.0.0.1', port })),
  };
  await tcp.apply([plan], {
    trustedCidrs: ['127.0.0.0/8'],
    enableRealIp: options.enableRealIp ?? true,
    headerTimeoutMs: 5000,
    idleTimeoutMs: 600_000,
    drainMs: 240_000,
    maxConnections: options.maxConnections ?? 0,
    stream: { ...DEFAULT_STREAM_SETTINGS, logFormat: FORMAT, ...options.stream },
  });
  return { port: tcp.listeners()[0]!.actualPort, access, log, registry, tcp };
}

/** Resolves once the listener's metrics count `n` connections ended (checked on every turn, 20 s at most). */
async function flowsEnded(registry: Registry, n: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const metric = await registry.getSingleMetric('keepip_lb_flows_ended_total')?.get();
    const total = (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
    if (total >= n) return;
    if (Date.now() > deadline) throw new Error(`${total} of ${n} connections ended within 20 s`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Sends `text` from `from`, half-closes, and resolves with all it got back (or `(reset)`). */
function exchange(port: number, from: string, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: from });
    let got = '';
    socket.on('connect', () => socket.end(text));
    socket.on('data', (c) => (got += c));
    socket.on('end', () => resolve(got));
    socket.on('error', () => resolve(got === '' ? '(reset)' : got));
  });
}

async function echo(t: TestContext, name: string) {
  const server = await startEcho(name);
  t.after(() => server.close());
  return server.port;
}

test('a refused connect goes on to the next endpoint; the line names both, the failed one with "-"', async (t) => {
  const refusing = await refusingPort();
  const good = await echo(t, 'b');
  const { port, access, log } = await runner(t, { targets: [refusing, good] });
  assert.equal(await exchange(port, '127.0.0.21', 'hi\n'), 'b hi\n');
  const line = (await access.wait(/ 200 /))[0]!;
  const m = line.match(
    /^127\.0\.0\.21:(\d+) 127\.0\.0\.21 - (\d+) TCP 200 5 3 "([^"]*)" "([^"]*)" "([^"]*)" "([^"]*)" (\S+) (\d+\.\d{3}) -$/,
  );
  assert.ok(m, line);
  assert.equal(Number(m[2]), port);
  assert.equal(m[3], `127.0.0.1:${refusing}, 127.0.0.1:${good}`);
  assert.match(m[4]!, /^-, \d+\.\d{3}$/);
  assert.equal(m[5], '0, 3');
  assert.equal(m[6], '0, 5');
  assert.equal(m[7], 'tcp-gitea-gitea-ssh-22');
  assert.match(
    (await log.wait(/connect\(\) failed/))[0]!,
    new RegExp(
      `^tcp-services 0: connect\\(\\) failed \\(ECONNREFUSED\\) while connecting to upstream, client: 127\\.0\\.0\\.21, upstream: "127\\.0\\.0\\.1:${refusing}", trying the next$`,
    ),
  );
});

test('a connection still being dialled when the listeners stop is logged 503, not as a client that left (499)', async (t) => {
  const hole = await startBlackhole();
  t.after(() => hole.close());
  const { port, access, tcp } = await runner(t, { targets: [hole.port] });
  const c = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.29' });
  c.on('error', () => {});
  await new Promise((resolve) => c.once('connect', resolve));
  c.write('hi\n');
  // The dial is under way (SYN_SENT to the endpoint that never answers); bounded.
  for (const deadline = Date.now() + 20_000; !dialling(hole.port); ) {
    assert.ok(Date.now() < deadline, 'the dial to the endpoint started');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await tcp.close();
  assert.match((await access.wait(/ TCP \d{3} /))[0]!, /^127\.0\.0\.29:\d+ 127\.0\.0\.29 - \d+ TCP 503 0 0 /);
  c.destroy();
});

test('proxy-stream-next-upstream off: one attempt, the client is closed and logged 502; the next connection takes the next endpoint', async (t) => {
  const refusing = await refusingPort();
  const good = await echo(t, 'b');
  const { port, access, log } = await runner(t, {
    targets: [refusing, good],
    stream: { nextUpstream: false },
  });
  assert.equal(await exchange(port, '127.0.0.22', 'hi\n'), '(reset)');
  const failed = (await access.wait(/ 502 /))[0]!;
  assert.match(failed, new RegExp(`TCP 502 0 0 "127\\.0\\.0\\.1:${refusing}" "-" "0" "0" `));
  assert.doesNotMatch((await log.wait(/connect\(\) failed/))[0]!, /trying the next/);
  assert.equal(await exchange(port, '127.0.0.22', 'again\n'), 'b again\n');
  await access.wait(/ 200 /);
});

test('proxy-stream-next-upstream-tries bounds the attempts (3 by default); 0 tries each endpoint once', async (t) => {
  const refusing = [await refusingPort(), await refusingPort(), await refusingPort()];
  const good = await echo(t, 'd');
  const three = await runner(t, { targets: [...refusing, good] });
  assert.equal(await exchange(three.port, '127.0.0.23', 'hi\n'), '(reset)');
  const line = (await three.access.wait(/ 502 /))[0]!;
  assert.match(line, new RegExp(`"${refusing.map((p) => `127\\.0\\.0\\.1:${p}`).join(', ')}" "-, -, -"`));

  const each = await runner(t, { targets: [...refusing, good], stream: { nextUpstreamTries: 0 } });
  assert.equal(await exchange(each.port, '127.0.0.23', 'hi\n'), 'd hi\n');
  assert.match((await each.access.wait(/ 200 /))[0]!, /"-, -, -, \d+\.\d{3}"/);
});

test('no endpoint at all: the client is reset and logged 502, with "no live upstreams"', async (t) => {
  const { port, access, log } = await runner(t, { targets: [] });
  assert.equal(await exchange(port, '127.0.0.24', 'hi\n'), '(reset)');
  assert.match((await access.wait(/ 502 /))[0]!, /^127\.0\.0\.24:\d+ .* TCP 502 0 0 "-" "-" "-" "-" /);
  assert.match((await log.wait(/no live upstreams/))[0]!, /client: 127\.0\.0\.24$/);
});

test('a :PROXY entry logs the client its header names, the load balancer as $realip_remote_addr, 400 for a refused header', async (t) => {
  const good = await echo(t, 'a');
  const { port, access } = await runner(t, { targets: [good], decode: true });
  const header = 'PROXY TCP4 198.51.100.7 10.0.0.1 40000 22\r\n';
  assert.equal(await exchange(port, '127.0.0.25', `${header}hi\n`), 'a hi\n');
  assert.match(
    (await access.wait(/ 200 /))[0]!,
    /^198\.51\.100\.7:40000 127\.0\.0\.25 198\.51\.100\.7 \d+ TCP 200 5 3 /,
  );
  // No header: closed before any endpoint is tried.
  assert.equal(await exchange(port, '127.0.0.26', 'SSH-2.0-client\r\n'), '');
  assert.match((await access.wait(/ 400 /))[0]!, /^127\.0\.0\.26:\d+ 127\.0\.0\.26 - \d+ TCP 400 0 0 "-" /);
});

test("without enable-real-ip a :PROXY header is read but not believed (as ingress-nginx's stream block): the peer stays the client, in the log and in ::PROXY", async (t) => {
  const good = await echo(t, 'a');
  const { port, access } = await runner(t, {
    targets: [good],
    decode: true,
    encode: true,
    enableRealIp: false,
  });
  const header = 'PROXY TCP4 198.51.100.8 10.0.0.1 40000 22\r\n';
  const answer = await exchange(port, '127.0.0.27', `${header}hi\n`);
  // The backend's header names the TCP peer and the listener, never the address the client wrote.
  assert.match(answer, new RegExp(`^a PROXY TCP4 127\\.0\\.0\\.27 127\\.0\\.0\\.1 \\d+ ${port}\\r\\nhi\\n$`));
  // $remote_addr the peer; $proxy_protocol_addr still what the header said (as nginx).
  assert.match(
    (await access.wait(/ 200 /))[0]!,
    /^127\.0\.0\.27:\d+ 127\.0\.0\.27 198\.51\.100\.8 \d+ TCP 200 /,
  );
});

test("the default log-format-stream is ingress-nginx's; a null format (disable-stream-access-log) writes nothing", async (t) => {
  const good = await echo(t, 'a');
  const plain = await runner(t, {
    targets: [good],
    stream: { logFormat: DEFAULT_STREAM_SETTINGS.logFormat },
  });
  assert.equal(await exchange(plain.port, '127.0.0.27', 'hi\n'), 'a hi\n');
  assert.match(
    (await plain.access.wait(/TCP/))[0]!,
    /^\[127\.0\.0\.27\] \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] TCP 200 5 3 \d+\.\d{3}$/,
  );

  const off = await runner(t, { targets: [good], stream: { logFormat: null } });
  assert.equal(await exchange(off.port, '127.0.0.27', 'hi\n'), 'a hi\n');
  // A line is written when the connection has ended on both sides, as the metrics count it.
  await flowsEnded(off.registry, 1);
  assert.deepEqual(off.access.lines, []);
});

test('an unknown variable in log-format-stream is reported once and written as -', async (t) => {
  const good = await echo(t, 'a');
  const { log } = await runner(t, { targets: [good] });
  assert.match(
    (await log.wait(/log-format-stream/))[0]!,
    /^warning: tcp-services 0: log-format-stream: unknown variable\(s\) \$nginx_version are written as -$/,
  );
});

test('the next attempt is allowed while tries and the timeout last', () => {
  const s = (over: Partial<StreamSettings>): StreamSettings => ({ ...DEFAULT_STREAM_SETTINGS, ...over });
  // 3 tries in all: after the 2nd failure one more, after the 3rd none.
  assert.equal(mayTryNext(s({}), { made: 2, endpoints: 5, elapsedMs: 10 }), true);
  assert.equal(mayTryNext(s({}), { made: 3, endpoints: 5, elapsedMs: 10 }), false);
  // Never the same endpoint twice: 2 endpoints, 2 attempts.
  assert.equal(mayTryNext(s({}), { made: 2, endpoints: 2, elapsedMs: 10 }), false);
  // The timeout: none started once 600 s have passed; 0 is no limit.
  assert.equal(mayTryNext(s({}), { made: 1, endpoints: 5, elapsedMs: 600_000 }), false);
  assert.equal(mayTryNext(s({}), { made: 1, endpoints: 5, elapsedMs: 599_999 }), true);
  assert.equal(mayTryNext(s({ nextUpstreamTimeoutMs: 0 }), { made: 1, endpoints: 5, elapsedMs: 9e9 }), true);
  // Off: never; tries 0: each endpoint once.
  assert.equal(mayTryNext(s({ nextUpstream: false }), { made: 1, endpoints: 5, elapsedMs: 0 }), false);
  assert.equal(mayTryNext(s({ nextUpstreamTries: 0 }), { made: 4, endpoints: 5, elapsedMs: 0 }), true);
  assert.equal(mayTryNext(s({ nextUpstreamTries: 0 }), { made: 5, endpoints: 5, elapsedMs: 0 }), false);
});

test('max-worker-connections bounds the connections of all entries: one more is closed at once and alerted', async (t) => {
  const good = await echo(t, 'a');
  const { port, log, registry } = await runner(t, { targets: [good], maxConnections: 1 });
  const held = client(port);
  assert.equal(await held.ask('one'), 'a one\n');
  assert.notEqual(await exchange(port, '127.0.0.28', 'hi\n'), 'a hi\n');
  assert.match(
    (await log.wait(/worker_connections/))[0]!,
    /^alert: 1 worker_connections are not enough, tcp-services 0 connection from 127\.0\.0\.28:\d+ closed$/,
  );
  held.close();
  await flowsEnded(registry, 1);
  assert.equal(await exchange(port, '127.0.0.28', 'again\n'), 'a again\n');
});

/** A backend that answers each connection with the SHA-256 of all it read, once the client half-closes. */
async function hasher(t: TestContext): Promise<number> {
  const server = net.createServer((socket) => {
    const hash = createHash('sha256');
    socket.on('data', (c) => hash.update(c));
    socket.on('end', () => socket.end(hash.digest('hex')));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

for (const decode of [false, true]) {
  test(`${decode ? 'a :PROXY entry' : 'an entry'}: 8 MiB arrive whole and in order, and the line counts every byte`, async (t) => {
    const backend = await hasher(t);
    const { port, access } = await runner(t, { targets: [backend], decode });
    const body = randomBytes(8 * 1024 * 1024);
    const header = decode ? 'PROXY TCP4 198.51.100.7 10.0.0.1 40000 22\r\n' : '';
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.29' });
      let got = '';
      socket.on('connect', () => socket.end(Buffer.concat([Buffer.from(header), body])));
      socket.on('data', (c) => (got += c));
      socket.on('end', () => resolve(got));
      socket.on('error', reject);
    });
    assert.equal(answer, createHash('sha256').update(body).digest('hex'));
    assert.match((await access.wait(/ 200 /))[0]!, new RegExp(` TCP 200 64 ${body.length} `));
  });
}

test("keepip_lb_bytes_total counts a connection's bytes while it is open, not only when it ends", async (t) => {
  const good = await echo(t, 'a');
  const { port, registry } = await runner(t, { targets: [good] });
  const open = client(port);
  assert.equal(await open.ask('one'), 'a one\n');
  const bytes = async (direction: string) => {
    const metric = await registry.getSingleMetric('keepip_lb_bytes_total')?.get();
    return metric?.values.find((v) => v.labels.direction === direction)?.value ?? 0;
  };
  // 'one\n' went to the echo and 'a one\n' came back; the connection is still open.
  assert.deepEqual([await bytes('to_target'), await bytes('to_client')], [4, 6]);
  open.close();
});
