// The controller against hostile objects from the API server (or anything between it and the API
// server: an aggregated API, a proxy, a compromised etcd): wrong-typed fields, a port that is a string,
// a 1 MiB annotation, a Secret with a broken certificate, an EndpointSlice with 10,000 addresses or
// invalid IPs, a watch stream that sends a malformed line or a line that never ends. What must hold:
// a clear coded line, the last good configuration keeps serving, no crash, no hang. The fake API
// server of the controller tests (test/fixtures/fake-apiserver.ts), a small proxy in front of it for
// the stream attacks, and `keepip controller` as a child process where a crash is the finding. Every
// wait is on a signal (a log line, a served host, a request the proxy saw, a process exit).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type Backend,
  get,
  ingress,
  peerCertificate,
  seedWeb,
  startBackend,
  startTestController,
  type TestController,
  waitForEndpoint,
  waitForHost,
  webCluster,
} from '../controller/harness.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { freePort } from '../helpers/net.ts';
import { startKeepip } from '../helpers/process.ts';

const MiB = 1024 * 1024;

/** `count` endpoints of Service web in one slice, addresses from `address(i)`. */
function bigSlice(name: string, count: number, address: (i: number) => string): Obj {
  return {
    kind: 'EndpointSlice',
    metadata: { namespace: 'default', name, labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    endpoints: Array.from({ length: count }, (_, i) => ({
      addresses: [address(i)],
      conditions: { ready: true },
    })),
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

describe('hostile objects from the API server (in-process controller)', () => {
  const cluster = webCluster(['--disable-leader-election', '--workers=1']);

  it('an Ingress with wrong-typed fields: no crash, the last good configuration keeps serving', async () => {
    const { api, ctl, httpPort } = cluster;
    ctl.mark();
    api.apply({
      kind: 'Ingress',
      metadata: { namespace: 'default', name: 'bad-rules' },
      spec: { ingressClassName: 'nginx', rules: 'not a list' },
    });
    const badPort = ingress('bad-port', 'bad-port.example.com', 'web');
    badPort.spec.rules[0].http.paths[0].backend.service.port = { number: '80' };
    badPort.spec.rules[0].http.paths.push({
      path: 7,
      pathType: 'Prefix',
      backend: { service: { name: 'web', port: 80 } },
    });
    api.apply(badPort);
    await ctl.waitForLine(/reload rejected \(.*\); still serving config v\d+/);
    assert.equal((await get(httpPort, 'web.example.com', '/still')).body, 'web /still\n');
    api.remove('Ingress', 'default', 'bad-rules');
    api.remove('Ingress', 'default', 'bad-port');
    ctl.mark();
    api.apply(ingress('good', 'good.example.com', 'web'));
    await waitForHost(ctl, 'good.example.com');
  });

  it('a rejected reload names the object and the code that blocked it', async () => {
    const { api, ctl } = cluster;
    const from = ctl.mark();
    api.apply({
      kind: 'Ingress',
      metadata: { namespace: 'default', name: 'bad-rules' },
      spec: { ingressClassName: 'nginx', rules: 'not a list' },
    });
    try {
      await ctl.waitForLine(/reload rejected/);
      const said = ctl.lines.slice(from).join('\n');
      assert.match(said, /MANIFEST_INVALID_FIELD/);
      assert.match(said, /Ingress default\/bad-rules/);
    } finally {
      api.remove('Ingress', 'default', 'bad-rules');
    }
  });

  it('a TLS Secret with a broken certificate: a coded warning, the fake certificate, the rest served', async () => {
    const { api, ctl, httpPort, httpsPort } = cluster;
    ctl.mark();
    api.apply({
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { namespace: 'default', name: 'broken' },
      data: {
        'tls.crt': Buffer.from(
          '-----BEGIN CERTIFICATE-----\nMIIBnotbase64!!\n-----END CERTIFICATE-----\n',
        ).toString('base64'),
        'tls.key': Buffer.from('-----BEGIN PRIVATE KEY-----\n####\n-----END PRIVATE KEY-----\n').toString(
          'base64',
        ),
      },
    });
    api.apply(
      ingress('tls', 'tls.example.com', 'web', {
        tls: [{ hosts: ['tls.example.com'], secretName: 'broken' }],
      }),
    );
    await ctl.waitForLine(/warning: .*Ingress default\/tls.*\[TLS_[A-Z_]+\]/);
    assert.equal(
      await peerCertificate(httpsPort, 'tls.example.com'),
      'Kubernetes Ingress Controller Fake Certificate',
    );
    assert.equal((await get(httpPort, 'web.example.com', '/x')).status, 200);
  });

  it('an EndpointSlice with 10,000 addresses is served', async () => {
    const { api, ctl, httpPort } = cluster;
    api.apply(bigSlice('web-many', 10_000, (i) => `10.1.${i >> 8}.${i & 255}`));
    await waitForEndpoint(ctl, 'web', '10.1.39.15', 8080);
    assert.equal((await get(httpPort, 'web.example.com', '/many')).status, 200);
    api.remove('EndpointSlice', 'default', 'web-many');
    await ctl.waitFor(
      () =>
        ctl.running
          .gateway()
          ?.snapshot()
          .topology.services.find((s) => s.ref.name === 'web')?.endpoints.http?.length === 1,
      'the big slice gone',
    );
  });

  it('an EndpointSlice with 10,000 invalid IPs: one line, the last good configuration keeps serving', async () => {
    const { api, ctl, httpPort } = cluster;
    const from = ctl.mark();
    api.apply(bigSlice('web-bad', 10_000, (i) => `not-an-ip-${i}`));
    await ctl.waitForLine(
      /reload rejected \((?:[A-Z_]+: )?10000 errors in the configuration\); still serving config v\d+/,
    );
    assert.ok(ctl.lines.length - from < 50, `${ctl.lines.length - from} lines for one bad slice`);
    assert.equal((await get(httpPort, 'web.example.com', '/ok')).status, 200);
    api.remove('EndpointSlice', 'default', 'web-bad');
    ctl.mark();
    api.apply(ingress('after-bad-slice', 'after-bad-slice.example.com', 'web'));
    await waitForHost(ctl, 'after-bad-slice.example.com');
  });

  it('a 1 MiB annotation value gives a bounded log line and Event', async () => {
    const { api, ctl } = cluster;
    const from = ctl.mark();
    api.apply(
      ingress('huge', 'huge.example.com', 'web', {
        annotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': 'x'.repeat(MiB) },
      }),
    );
    await waitForHost(ctl, 'huge.example.com');
    const event = await api.waitUntil(() =>
      api.list('Event').find((e) => e.involvedObject?.name === 'huge' && e.type === 'Warning'),
    );
    const longest = Math.max(...ctl.lines.slice(from).map((l) => l.length));
    api.remove('Ingress', 'default', 'huge');
    assert.ok(longest <= 16 * 1024, `a log line of ${longest} characters`);
    assert.ok(event.message.length <= 16 * 1024, `an Event message of ${event.message.length} characters`);
  });
});

/** A watch response the proxy passes on, line by line. */
interface Tap {
  plural: string;
  res: ServerResponse;
  closed: boolean;
}

/**
 * An HTTP proxy in front of the fake API server: passes everything on, counts watch requests per
 * resource, can cut the next line of a resource's watch stream short, and lets a test write raw bytes
 * into an open watch stream.
 */
async function startStreamProxy(api: FakeApiServer) {
  const taps = new Set<Tap>();
  const watches = new Map<string, number>();
  let cutNext: string | null = null;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const plural = url.pathname.split('/').pop() ?? '';
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    if (watch) watches.set(plural, (watches.get(plural) ?? 0) + 1);
    const upstream = http.request(
      { host: '127.0.0.1', port: api.port, method: req.method, path: req.url, headers: req.headers },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        if (!watch || ures.statusCode !== 200) {
          ures.pipe(res);
          return;
        }
        res.flushHeaders();
        const tap: Tap = { plural, res, closed: false };
        taps.add(tap);
        let pending = '';
        ures.setEncoding('utf8');
        ures.on('data', (text: string) => {
          pending += text;
          for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
            let line = pending.slice(0, nl + 1);
            pending = pending.slice(nl + 1);
            if (cutNext === plural) {
              cutNext = null;
              line = `${line.slice(0, 40)}\n`; // a truncated event: not JSON
            }
            res.write(line);
          }
        });
        ures.on('end', () => res.end());
        res.on('close', () => {
          tap.closed = true;
          taps.delete(tap);
          ures.destroy();
          notify();
        });
        notify();
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'keepip-stream-proxy-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters:\n- name: proxy\n  cluster:\n    server: http://127.0.0.1:${port}`,
      'users:\n- name: proxy\n  user:\n    token: keepip-test-token',
      'contexts:\n- name: proxy\n  context:\n    cluster: proxy\n    user: proxy',
      'current-context: proxy',
      '',
    ].join('\n'),
  );
  return {
    kubeconfig,
    watches: (plural: string) => watches.get(plural) ?? 0,
    cutNextLine(plural: string) {
      cutNext = plural;
    },
    /** The open watch stream of `plural` (waits for one). */
    tap(plural: string): Promise<Tap> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = [...taps].find((t) => t.plural === plural && !t.closed);
          if (found === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no open watch of ${plural} within 20 s`));
        }, 20_000);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of taps) t.res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('a watch stream that misbehaves (a proxy between the controller and the fake API server)', () => {
  let api: FakeApiServer;
  let web: Backend;
  let proxy: Awaited<ReturnType<typeof startStreamProxy>>;
  let ctl: TestController;

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
    proxy = await startStreamProxy(api);
    ctl = await startTestController({ ...api, kubeconfig: proxy.kubeconfig }, [
      '--disable-leader-election',
      '--workers=1',
    ]);
    await ctl.running.serving();
  });
  after(async () => {
    await ctl?.close();
    await proxy?.close();
    await api?.close();
    await web?.close();
  });

  it('a malformed line: a coded line, and the event it carried is not lost', async () => {
    await proxy.tap('ingresses');
    const from = ctl.mark();
    proxy.cutNextLine('ingresses');
    api.apply(ingress('lost', 'lost.example.com', 'web'));
    api.apply(ingress('later', 'later.example.com', 'web'));
    await waitForHost(ctl, 'later.example.com');
    const hosts = ctl.running
      .gateway()!
      .snapshot()
      .topology.gateway.virtualHosts.map((v) => v.host);
    const said = ctl.lines.slice(from).join('\n');
    assert.deepEqual(
      {
        lostServed: hosts.includes('lost.example.com'),
        logged: /ingresses: .*(decode|JSON|malformed)/i.test(said),
      },
      { lostServed: true, logged: true },
    );
  });

  it('a line that never ends: the stream is dropped after a bound (client-go: 16 MiB) and resumed', async () => {
    const tap = await proxy.tap('ingresses');
    const watchesBefore = proxy.watches('ingresses');
    const gone = new Promise<void>((resolve) => tap.res.once('close', () => resolve()));
    const chunk = 'x'.repeat(256 * 1024);
    let written = 0;
    while (!tap.closed && written < 24 * MiB) {
      const flowing = tap.res.write(chunk);
      written += chunk.length;
      if (!flowing) await Promise.race([new Promise((r) => tap.res.once('drain', r)), gone]);
    }
    if (!tap.closed) tap.res.write('\n');
    api.apply(ingress('after-long-line', 'after-long-line.example.com', 'web'));
    await waitForHost(ctl, 'after-long-line.example.com');
    assert.ok(
      tap.closed || proxy.watches('ingresses') > watchesBefore,
      `the controller read a ${written / MiB} MiB line on the same stream and kept it open`,
    );
  });
});

/** `keepip controller` as a process against `api`, serving; its HTTP port. */
async function startChild(api: FakeApiServer) {
  const [httpPort, httpsPort, health] = [await freePort(), await freePort(), await freePort()];
  const child = startKeepip([
    'controller',
    '--kubeconfig',
    api.kubeconfig,
    '--bind-address=127.0.0.1',
    `--http-port=${httpPort}`,
    `--https-port=${httpsPort}`,
    `--healthz-port=${health}`,
    '--post-shutdown-grace-period=0',
    '--disable-leader-election',
    '--workers=1',
  ]);
  await child.waitFor(/serving: config v1 from the API server/);
  return { child, httpPort };
}

describe('hostile objects that take the controller down (a child process)', () => {
  // auth-tls-secret and proxy-ssl-secret go through the same function (snapshot.ts annotationSecret).
  const cases: [string, Obj][] = [
    [
      'an annotation value that is not a string (auth-secret: 5)',
      {
        ...ingress('typed', 'typed.example.com', 'web'),
        metadata: {
          namespace: 'default',
          name: 'typed',
          annotations: { 'nginx.ingress.kubernetes.io/auth-secret': 5 },
        },
      },
    ],
  ];
  for (const [what, hostile] of cases) {
    it(`${what}: a coded line, the controller keeps serving and applies later changes`, async () => {
      const api = await startFakeApiServer();
      const web = await startBackend('web');
      seedWeb(api, web.port);
      const { child, httpPort } = await startChild(api);
      try {
        api.apply(hostile);
        api.apply(ingress('next', 'next.example.com', 'web'));
        const outcome = await child.waitFor(/reloaded: config v\d+|reload rejected/).then(
          (m) => m[0],
          () =>
            `exited: ${child
              .output()
              .split('\n')
              .filter((l) => /Error/.test(l))
              .slice(0, 2)
              .join(' | ')}`,
        );
        assert.doesNotMatch(outcome, /^exited/);
        assert.equal((await get(httpPort, 'web.example.com', '/alive')).status, 200);
      } finally {
        await child.stop();
        await api.close();
        await web.close();
      }
    });
  }
});
