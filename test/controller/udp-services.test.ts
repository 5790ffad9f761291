// --udp-services-configmap entries, as nginx's stream module serves them for ingress-nginx: the
// datagrams of one client are a session with one endpoint; it ends with the answers it expects
// (proxy-stream-responses, 1: a DNS query and its answer), a refusal, or idle; each session leaves a
// line in the connection log with `$protocol` UDP. Checked with dig asking dnsmasq through keepip,
// and with Node's dgram on both sides for what dig cannot show.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { Registry } from 'prom-client';
import { DEFAULT_STREAM_SETTINGS, type StreamSettings } from '../../src/config/stream.ts';
import { createTcpRunner } from '../../src/controller/tcp-runner.ts';
import { planTcpServices } from '../../src/controller/tcp-services.ts';
import type { KubeObject } from '../../src/controller/resources.ts';
import { lineCollector } from '../helpers/lines.ts';
import { freePort } from '../helpers/net.ts';
import { topologyOf } from '../k8s/helpers.ts';

const FORMAT =
  '$remote_addr:$remote_port $protocol $status $bytes_sent $bytes_received "$upstream_addr" $proxy_upstream_name';

async function udpRunner(
  t: TestContext,
  targets: number[],
  options: { stream?: Partial<StreamSettings>; maxConnections?: number } = {},
) {
  const access = lineCollector();
  const log = lineCollector();
  const runner = createTcpRunner({
    host: '127.0.0.1',
    registry: new Registry(),
    log: log.push,
    accessLog: access.push,
  });
  t.after(() => runner.close());
  await runner.apply(
    [
      {
        protocol: 'UDP',
        port: 0,
        service: { namespace: 'kube-system', name: 'dns' },
        servicePort: '53',
        decode: false,
        encode: false,
        targets: targets.map((port) => ({ host: '127.0.0.1', port })),
      },
    ],
    {
      trustedCidrs: [],
      headerTimeoutMs: 5000,
      idleTimeoutMs: 600_000,
      drainMs: 240_000,
      maxConnections: options.maxConnections ?? 0,
      stream: { ...DEFAULT_STREAM_SETTINGS, logFormat: FORMAT, ...options.stream },
    },
  );
  const listener = runner.listeners()[0]!;
  assert.equal(listener.protocol, 'UDP');
  return { port: listener.actualPort, access, log };
}

/** A UDP backend that answers each datagram `times` times with `<name> <datagram>`. */
async function udpEcho(t: TestContext, name: string, times = 1): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, from) => {
    for (let i = 0; i < times; i++) socket.send(`${name} ${msg}`, from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return socket.address().port;
}

/** A client socket bound to `from`: sends datagrams, collects answers. */
async function udpClient(t: TestContext, from: string) {
  const socket = dgram.createSocket('udp4');
  const answers = lineCollector();
  socket.on('message', (msg) => answers.push(msg.toString()));
  await new Promise<void>((resolve) => socket.bind(0, from, resolve));
  t.after(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return {
    port: socket.address().port,
    answers,
    send: (text: string, port: number) =>
      new Promise<void>((resolve) => socket.send(text, port, '127.0.0.1', () => resolve())),
  };
}

test('a datagram and its answer are one session, logged UDP 200 when the answer came back', async (t) => {
  const backend = await udpEcho(t, 'b');
  const { port, access } = await udpRunner(t, [backend]);
  const client = await udpClient(t, '127.0.0.31');
  await client.send('query-1', port);
  assert.deepEqual(await client.answers.wait(/b query-1/), ['b query-1']);
  const [line] = await access.wait(/UDP/);
  assert.equal(line, `127.0.0.31:${client.port} UDP 200 9 7 "127.0.0.1:${backend}" udp-kube-system-dns-53`);
  // The session ended with its answer: the next datagram is a session (and a line) of its own.
  await client.send('query-2', port);
  await client.answers.wait(/b query-2/);
  assert.equal((await access.wait(/UDP 200/, { count: 2 })).length, 2);
});

test('proxy-stream-responses 2: two answers reach the client before the session ends', async (t) => {
  const backend = await udpEcho(t, 'b', 2);
  const { port, access } = await udpRunner(t, [backend], { stream: { responses: 2 } });
  const client = await udpClient(t, '127.0.0.32');
  await client.send('q', port);
  assert.equal((await client.answers.wait(/^b q$/, { count: 2 })).length, 2);
  assert.match((await access.wait(/UDP/))[0]!, / UDP 200 6 1 /);
});

test('two clients are two sessions, round robin over the endpoints, each answer to its own client', async (t) => {
  const a = await udpEcho(t, 'a');
  const b = await udpEcho(t, 'b');
  const { port, access } = await udpRunner(t, [a, b]);
  const one = await udpClient(t, '127.0.0.33');
  const two = await udpClient(t, '127.0.0.34');
  await one.send('x', port);
  await one.answers.wait(/x/);
  await two.send('y', port);
  await two.answers.wait(/y/);
  assert.deepEqual([one.answers.lines, two.answers.lines], [['a x'], ['b y']]);
  const lines = await access.wait(/UDP 200/, { count: 2 });
  assert.ok(
    lines.some((l) => l.startsWith('127.0.0.33:') && l.includes(`"127.0.0.1:${a}"`)),
    lines.join('\n'),
  );
  assert.ok(
    lines.some((l) => l.startsWith('127.0.0.34:') && l.includes(`"127.0.0.1:${b}"`)),
    lines.join('\n'),
  );
});

test('an endpoint that refuses (ICMP port unreachable) ends the session: logged 502 with the error', async (t) => {
  const closed = await freePort();
  const { port, access, log } = await udpRunner(t, [closed]);
  const client = await udpClient(t, '127.0.0.35');
  await client.send('hello', port);
  assert.match((await access.wait(/UDP 502/))[0]!, new RegExp(`UDP 502 0 5 "127\\.0\\.0\\.1:${closed}"`));
  assert.match(
    (await log.wait(/ECONNREFUSED/))[0]!,
    /^udp-services 0: recv\(\) failed \(ECONNREFUSED\) while proxying datagram, client: 127\.0\.0\.35/,
  );
});

test('no endpoint: the datagram is dropped and logged 502, "no live upstreams"', async (t) => {
  const { port, access, log } = await udpRunner(t, []);
  const client = await udpClient(t, '127.0.0.36');
  await client.send('hello', port);
  assert.match((await access.wait(/UDP 502/))[0]!, /^127\.0\.0\.36:\d+ UDP 502 0 0 "-" /);
  await log.wait(/no live upstreams while proxying datagram, client: 127\.0\.0\.36$/);
});

test('max-worker-connections bounds the sessions: a new client over it is dropped and alerted', async (t) => {
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  const heard = lineCollector();
  silent.on('message', (msg) => heard.push(msg.toString()));
  const { port, log } = await udpRunner(t, [silent.address().port], { maxConnections: 1 });
  const first = await udpClient(t, '127.0.0.37');
  await first.send('held', port);
  await heard.wait(/held/);
  const second = await udpClient(t, '127.0.0.38');
  await second.send('over', port);
  await log.wait(
    /alert: 1 worker_connections are not enough, udp-services 0 connection from 127\.0\.0\.38:\d+ closed/,
  );
  assert.deepEqual(heard.lines, ['held']);
});

test("udp-services entries plan to the Service's UDP port; PROXY fields are reported and ignored", () => {
  const topology = topologyOf(`
apiVersion: v1
kind: Service
metadata: {namespace: kube-system, name: dns}
spec:
  ports:
    - {name: dns, port: 53, targetPort: 1053, protocol: UDP}
    - {name: dns-tcp, port: 53, targetPort: 2053, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: kube-system, name: dns-1, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.53], conditions: {ready: true}}]
ports: [{name: dns, port: 1053, protocol: UDP}, {name: dns-tcp, port: 2053, protocol: TCP}]
`);
  const configMap = {
    metadata: { namespace: 'ingress-nginx', name: 'udp-services' },
    data: { '53': 'kube-system/dns:53', '54': 'kube-system/dns:53:PROXY' },
  } as unknown as KubeObject;
  const plan = planTcpServices(configMap, topology, [80, 443], 'UDP');
  assert.deepEqual(
    plan.plans.map((p) => [p.protocol, p.port, p.decode, p.targets]),
    [
      ['UDP', 53, false, [{ host: '10.0.0.53', port: 1053 }]],
      ['UDP', 54, false, [{ host: '10.0.0.53', port: 1053 }]],
    ],
  );
  assert.deepEqual(
    plan.problems.map((p) => p.code),
    ['UDP_SERVICE_PROXY_IGNORED'],
  );
});

// dig and dnsmasq come from Debian's bind9-dnsutils and dnsmasq-base (.ci/run installs them).
test('dig asks dnsmasq through keepip and gets its answer', async (t) => {
  const dnsPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'keepip-dnsmasq-'));
  const conf = join(dir, 'dnsmasq.conf');
  writeFileSync(conf, 'address=/gitea.keepip.test/10.9.8.7\n');
  const dnsmasq = spawn(
    'dnsmasq',
    [
      '--keep-in-foreground',
      `--conf-file=${conf}`,
      '--no-resolv',
      '--no-hosts',
      '--bind-interfaces',
      '--listen-address=127.0.0.1',
      `--port=${dnsPort}`,
      '--user=root',
      '--pid-file=',
      '--log-facility=-',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.after(() => dnsmasq.kill());
  await new Promise<void>((resolve, reject) => {
    let err = '';
    dnsmasq.stderr.on('data', (c) => {
      err += c;
      if (/started, version/.test(err)) resolve();
    });
    dnsmasq.once('exit', (code) => reject(new Error(`dnsmasq exited ${code}: ${err}`)));
  });
  const { port, access } = await udpRunner(t, [dnsPort]);
  const dig = await new Promise<string>((resolve) => {
    const child = spawn('dig', [
      '@127.0.0.1',
      '-p',
      String(port),
      '-b',
      '127.0.0.39',
      '+short',
      '+tries=1',
      '+time=5',
      'gitea.keepip.test',
      'A',
    ]);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('close', () => resolve(out.trim()));
  });
  assert.equal(dig, '10.9.8.7');
  assert.match(
    (await access.wait(/UDP 200/))[0]!,
    new RegExp(`^127\\.0\\.0\\.39:\\d+ UDP 200 \\d+ \\d+ "127\\.0\\.0\\.1:${dnsPort}" `),
  );
});
