// ExternalName Services on the data path, attacked through the name and through the resolver: spellings
// of refused addresses that the resolver reads as loopback, a resolver that never answers, fails, answers
// a thousand addresses or a new address per query (DNS rebinding), names Kubernetes would not accept,
// and an ExternalName that points back at the gateway's own listener. The resolver is played by a
// scripted `lookup` (GatewayOptions.lookup, as test/e2e/gateway-external-name.test.ts injects it);
// numeric spellings and `localhost` go to node's real dns.lookup (getaddrinfo, which reads them without
// any network). The reference is ingress-nginx: internal/ingress/controller/endpointslices.go refuses
// `localhost` and loopback IPs; rootfs/etc/nginx/lua/balancer.lua resolves the name with its Lua DNS
// resolver at backend sync (rootfs/etc/nginx/lua/util/dns.lua: A then AAAA queries to the cluster DNS,
// no getaddrinfo, no /etc/hosts), every address becoming one endpoint, tried at most
// proxy-next-upstream-tries (3) times per request.
import assert from 'node:assert/strict';
import { type LookupAddress, lookup as dnsLookup, type LookupOptions } from 'node:dns';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net, { type LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { planTcpServices } from '../../src/controller/tcp-services.ts';
import type { KubeObject } from '../../src/controller/resources.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, type K8sObject, topologyOf } from '../fixtures/gateway/manifests.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';
import { type NamedBackends, startNamedBackends } from './helpers.ts';

/** What the scripted resolver answers for one query: addresses, an error code, or nothing ever. */
type Answer = { addresses: string[] } | { error: string } | 'hang';

/** Names handed to the real dns.lookup: numeric spellings and localhost, read without any network. */
const REAL = new Set(['127.1', '2130706433', '0x7f000001', '0177.0.0.1', '0', 'localhost']);

/**
 * A hostile resolver: `script` answers by name and by how many times that name was asked (from 0);
 * an unscripted name is ENOTFOUND, except the REAL ones, which go to node's dns.lookup.
 */
function scriptedLookup(
  script: (name: string, nth: number) => Answer | undefined,
  asked: string[],
): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    const nth = asked.filter((name) => name === hostname).length;
    asked.push(hostname);
    if (REAL.has(hostname)) {
      dnsLookup(hostname, { ...options, all: true }, (error, found) => {
        if (error !== null) callback(error, '', 4);
        else if (options.all === true) callback(null, found);
        else callback(null, found[0]?.address ?? '', found[0]?.family ?? 4);
      });
      return;
    }
    const answer = script(hostname, nth) ?? { error: 'ENOTFOUND' };
    if (answer === 'hang') return;
    if ('error' in answer) {
      const error = Object.assign(new Error(`getaddrinfo ${answer.error} ${hostname}`), {
        code: answer.error,
        syscall: 'getaddrinfo',
        hostname,
      });
      queueMicrotask(() => callback(error, '', 4));
      return;
    }
    const all: LookupAddress[] = answer.addresses.map((address) => ({ address, family: net.isIP(address) }));
    queueMicrotask(() =>
      options.all === true ? callback(null, all) : callback(null, all[0]?.address ?? '', all[0]?.family ?? 4),
    );
  };
}

function externalNameService(name: string, externalName: string): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { type: 'ExternalName', externalName },
  };
}

/** An ExternalName Service named after `host` and an Ingress sending `host`/ to it on `port`. */
function route(host: string, externalName: string, port: number, annotations: Record<string, string> = {}) {
  const name = host.replace(/\.test$/, '').replace(/[^a-z0-9-]/g, '-');
  return [
    externalNameService(name, externalName),
    ingress({ name, host, annotations, paths: [{ path: '/', service: name, port }] }),
  ];
}

/** 999 addresses in 127.0.1.0/22 where nothing listens, then 127.0.0.1 (the backend) last. */
const THOUSAND = [
  ...Array.from({ length: 999 }, (_, i) => `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`),
  '127.0.0.1',
];

/** Every name the scripted resolver knows. */
function script(name: string, nth: number): Answer | undefined {
  switch (name) {
    case 'hang.example':
      return 'hang';
    case 'servfail.example':
      return { error: 'EAI_AGAIN' };
    case 'thousand.example':
      return { addresses: THOUSAND };
    case 'rebind.example':
      // First a closed address, then the backend: each new connection asks again.
      return { addresses: [nth === 0 ? '127.0.0.2' : '127.0.0.1'] };
    case 'inside.example':
    case 'self.example':
      return { addresses: ['127.0.0.1'] };
    default:
      return undefined;
  }
}

/** A TCP relay to `target()` that counts connections and resets every one after the first `cap`. */
async function startCappedRelay(target: () => number, cap: number) {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    accepted += 1;
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (accepted > cap) {
      client.resetAndDestroy();
      return;
    }
    const onward = net.connect({ host: '127.0.0.1', port: target() });
    sockets.add(onward);
    onward.once('close', () => sockets.delete(onward));
    onward.on('error', () => client.destroy());
    client.on('error', () => onward.destroy());
    client.pipe(onward);
    onward.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A self-signed certificate for `name` (its own CA), made by openssl. */
async function selfSigned(name: string): Promise<{ key: string; cert: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-external-name-'));
  try {
    const [key, cert] = [join(dir, 'k.pem'), join(dir, 'c.pem')];
    const out = await runCommand(requireBinary('openssl'), [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-addext',
      `subjectAltName=DNS:${name}`,
      '-days',
      '2',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
    assert.equal(out.code, 0, out.stderr);
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function caSecret(name: string, caPem: string): K8sObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'default' },
    type: 'Opaque',
    stringData: { 'ca.crt': caPem },
  };
}

/** `promise`, or a rejection naming `what` after `ms` (a bound for a gateway that never answers). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const tcpServices = (data: Record<string, string>): KubeObject =>
  ({ metadata: { namespace: 'ingress-nginx', name: 'tcp-services' }, data }) as KubeObject;

/** Numeric spellings getaddrinfo reads as 127.0.0.1 (inet_aton), and 0 as 0.0.0.0. */
const NUMERIC_LOOPBACK = ['127.1', '2130706433', '0x7f000001', '0177.0.0.1', '0'];
/** Names the Kubernetes API would refuse: over 253 characters, IDN, a port or a path smuggled in. */
const INVALID_NAMES = [
  `${Array.from('abcde', (c) => c.repeat(50)).join('.')}.example`,
  'bücher.example',
  'inside.example:8080',
  'inside.example/x',
];

describe('ExternalName Services and the resolver under attack', () => {
  let backends: NamedBackends;
  let gw: TestGateway;
  let relay: Awaited<ReturnType<typeof startCappedRelay>>;
  let secure: https.Server;
  let inside: { key: string; cert: string };
  const secureSeen: string[] = [];
  const asked: string[] = [];
  const LOOP_CAP = 16;

  function manifests(): K8sObject[] {
    const port = backends.port('inside');
    const tlsPort = (secure.address() as net.AddressInfo).port;
    const verify = {
      'backend-protocol': 'HTTPS',
      'proxy-ssl-secret': 'default/inside-ca',
      'proxy-ssl-verify': 'on',
    };
    const oneTry = { 'proxy-connect-timeout': '1', 'proxy-next-upstream-tries': '1' };
    return [
      ...NUMERIC_LOOPBACK.flatMap((name, i) => route(`numeric-${i}.test`, name, port)),
      ...route('dotted-localhost.test', 'localhost.', port),
      ...INVALID_NAMES.flatMap((name, i) => route(`invalid-${i}.test`, name, port)),
      ...route('inside.test', 'inside.example', port),
      ...route('hang.test', 'hang.example', port, oneTry),
      ...route('hang-tls.test', 'hang.example', port, { ...oneTry, 'backend-protocol': 'HTTPS' }),
      ...route('servfail.test', 'servfail.example', port),
      ...route('thousand.test', 'thousand.example', port),
      ...route('rebind.test', 'rebind.example', port),
      ...route('loop.test', 'self.example', relay.port),
      caSecret('inside-ca', inside.cert),
      ...route('tls-verify.test', 'inside.example', tlsPort, verify),
      ...route('tls-named.test', 'inside.example', tlsPort, {
        ...verify,
        'proxy-ssl-name': 'inside.example',
      }),
    ];
  }

  before(async () => {
    backends = await startNamedBackends(['inside']);
    relay = await startCappedRelay(() => gw.httpPort, LOOP_CAP);
    inside = await selfSigned('inside.example');
    secure = https.createServer(inside, (req, res) => {
      secureSeen.push(req.url ?? '');
      res.end('secure');
    });
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    gw = await startTestGateway(topologyOf(manifests()), { lookup: scriptedLookup(script, asked) });
  });

  after(async () => {
    await gw?.close();
    await relay?.close();
    await backends?.close();
    secure?.closeAllConnections();
    await new Promise<void>((resolve) => (secure ? secure.close(() => resolve()) : resolve()));
  });

  const get = (host: string, path = '/') =>
    within(20_000, host, request(gw.httpPort, { host, path, headers: { accept: 'text/plain' } }));
  const reached = (path: string) => backends.seen.some((s) => s.url === path);

  test('numeric spellings of 127.0.0.1 and 0.0.0.0 (127.1, 2130706433, 0x7f000001, 0177.0.0.1, 0) are refused like the dotted ones: 503, the loopback backend never reached', async () => {
    const results: string[] = [];
    for (const [i, name] of NUMERIC_LOOPBACK.entries()) {
      const reply = await get(`numeric-${i}.test`, `/numeric-${i}`);
      results.push(`${name}: ${reply.status}${reached(`/numeric-${i}`) ? ' (backend reached)' : ''}`);
    }
    assert.deepEqual(
      results,
      NUMERIC_LOOPBACK.map((name) => `${name}: 503`),
    );
  });

  test('localhost. (with the trailing dot of an FQDN) is refused like localhost: 503, never resolved', async () => {
    const reply = await get('dotted-localhost.test', '/dotted-localhost');
    assert.equal(reached('/dotted-localhost'), false, 'the gateway connected to its own machine');
    assert.equal(reply.status, 503);
    assert.equal(asked.includes('localhost'), false);
  });

  test('tcp-services: an ExternalName spelled 127.1 or localhost. gets no target, as localhost gets none', () => {
    const yaml: K8sObject[] = ['127.1', 'localhost.', 'localhost'].map((name, i) => ({
      ...externalNameService(`t${i}`, name),
      spec: {
        type: 'ExternalName',
        externalName: name,
        ports: [{ name: 'tcp', port: 5000, targetPort: 22 }],
      },
    }));
    const plan = planTcpServices(
      tcpServices({ '6000': 'default/t0:5000', '6001': 'default/t1:5000', '6002': 'default/t2:5000' }),
      topologyOf(yaml),
      [80, 443],
    );
    assert.deepEqual(
      plan.plans.map((p) => [p.port, p.targets]),
      [
        [6000, []],
        [6001, []],
        [6002, []],
      ],
    );
  });

  test('names the Kubernetes API refuses (over 253 characters, IDN, a port or path smuggled in) are never looked up: 503', async () => {
    const before = asked.length;
    for (const [i] of INVALID_NAMES.entries())
      assert.equal((await get(`invalid-${i}.test`)).status, 503, INVALID_NAMES[i]);
    assert.deepEqual(asked.slice(before), []);
    const refused = gw.gateway
      .snapshot()
      .topology.issues.filter(
        (issue) => issue.code === 'EXTERNAL_NAME_REFUSED' && issue.origin?.name.startsWith('invalid-'),
      );
    assert.equal(refused.length, INVALID_NAMES.length);
  });

  test('a name that resolves to a loopback address is followed, as ingress-nginx follows it (noted: the loopback refusal is by spelling only)', async () => {
    const reply = await get('inside.test', '/inside');
    assert.equal(reply.status, 200);
    assert.ok(reached('/inside'));
    const line = await gw.access.waitFor(/GET \/inside HTTP/);
    assert.match(line, new RegExp(`127\\.0\\.0\\.1:${backends.port('inside')}`));
  });

  /** One request to `host` that must fail within `boundMs` with 504 after one connect timeout (1 s). */
  async function timesOutConnecting(host: string, boundMs: number) {
    const started = performance.now();
    const reply = await within(boundMs, host, request(gw.httpPort, { host, path: `/${host}` }));
    const elapsed = performance.now() - started;
    assert.equal(reply.status, 504, host);
    assert.ok(elapsed >= 900, `${host}: answered after ${elapsed} ms, before the 1 s connect timeout`);
    const line = await gw.errors.waitFor(
      new RegExp(`upstream timed out .* while connecting to upstream.*${host}`),
    );
    assert.match(line, /hang\.example/);
  }

  test('a resolver that never answers: 504 by proxy-connect-timeout (1 s), resolution counted in it', async () => {
    await timesOutConnecting('hang.test', 4_000);
  });

  test('the same for an HTTPS backend (backend-protocol HTTPS): resolution is inside the connect timeout', async () => {
    await timesOutConnecting('hang-tls.test', 4_000);
  });

  test('SERVFAIL: 502, "could not be resolved (2: Server failure)" in the error log, at most proxy-next-upstream-tries lookups', async () => {
    const before = asked.filter((n) => n === 'servfail.example').length;
    const reply = await get('servfail.test', '/servfail');
    assert.equal(reply.status, 502);
    const line = await gw.errors.waitFor(/servfail\.example could not be resolved \(2: Server failure\)/);
    assert.match(line, /while connecting to upstream/);
    const lookups = asked.filter((n) => n === 'servfail.example').length - before;
    assert.ok(lookups >= 1 && lookups <= 3, `${lookups} lookups for one request`);
    assert.equal((await get('inside.test')).status, 200, 'the gateway still serves');
  });

  test('an answer of 1000 addresses does not turn one request into 1000 connection attempts (nginx: at most proxy-next-upstream-tries, 3)', async () => {
    const reply = await get('thousand.test', '/thousand');
    // Only the 1000th address listens: reaching it means the 999 before it were all tried first.
    const lookups = asked.filter((n) => n === 'thousand.example').length;
    assert.equal(
      reached('/thousand'),
      false,
      `the 1000th address was reached after ${lookups} lookup(s) (status ${reply.status})`,
    );
    assert.equal(reply.status, 502);
  });

  test('DNS rebinding: each new connection asks again; $upstream_addr names the address tried, the refused one too', async () => {
    const port = backends.port('inside');
    // One member, tried once per request (each endpoint at most once): the rebinding shows across requests.
    assert.equal((await get('rebind.test', '/rebind-1')).status, 502);
    assert.equal((await get('rebind.test', '/rebind-2')).status, 200);
    assert.equal(asked.filter((n) => n === 'rebind.example').length, 2);
    const second = await gw.access.waitFor(/GET \/rebind-2 HTTP/);
    assert.match(second, new RegExp(` 127\\.0\\.0\\.1:${port} `), second);
    const first = await gw.access.waitFor(/GET \/rebind-1 HTTP/);
    assert.match(first, new RegExp(` 127\\.0\\.0\\.2:${port} `), first);
  });

  test('an ExternalName looping back to the gateway itself: nothing in the gateway ends it (as nginx), an outside cap does, and the gateway survives', async () => {
    const reply = await get('loop.test', '/loop');
    // Noted, not failed: ingress-nginx has no hop limit either (X-Forwarded-For is $remote_addr, no growth).
    assert.ok(relay.accepted() > LOOP_CAP, `the loop stopped by itself after ${relay.accepted()} hops`);
    assert.equal(reply.status, 502);
    assert.equal((await get('inside.test')).status, 200, 'the gateway still serves');
  });

  test('an HTTPS ExternalName backend with proxy-ssl-verify and no proxy-ssl-name: its certificate for the externalName is not enough (nginx checks upstream_balancer), 502', async () => {
    const refused = await get('tls-verify.test', '/tls-verify');
    assert.equal(refused.status, 502);
    assert.deepEqual(secureSeen, [], 'the request head went to an unverified backend');
    const named = await get('tls-named.test', '/tls-named');
    assert.equal(named.status, 200);
    assert.deepEqual(secureSeen, ['/tls-named']);
  });
});
