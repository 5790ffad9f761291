// mirror-target, mirror-host and mirror-request-body over real sockets. ingress-nginx's e2e test
// (annotations/mirror.go) checks the `mirror` / `mirror_request_body` directives it writes; these check
// what a mirror backend receives (method, the expanded $request_uri, Host, the body or not, the
// gateway's forwarded headers), that the client's answer is the main backend's whatever the mirror does
// (never answers, refuses connections), the in-flight bound, and that an invalid target has no effect.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import http from '../../src/node-http.ts';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Topology } from '../../src/config/model.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { ingress, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { type HeldBackend, startHeldBackend } from '../helpers/held-backend.ts';
import { metricSum } from '../helpers/metrics.ts';
import { requireBinary, runCommand } from '../helpers/process.ts';
import { certificateFor } from '../fixtures/gateway/certificates.ts';
import { refusingPort } from '../helpers/net.ts';

interface Copy {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A mirror that records each copy once its body is in; `hold` copies are never answered. */
interface MirrorBackend {
  port: number;
  copies: Copy[];
  waitFor(count: number): Promise<void>;
  close(): Promise<void>;
}

async function mirrorBackend(
  hold = false,
  tls: { cert: string; key: string } | null = null,
): Promise<MirrorBackend> {
  const copies: Copy[] = [];
  const waiters = new Set<() => void>();
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      copies.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      for (const waiter of [...waiters]) waiter();
      if (!hold) res.writeHead(204).end();
    });
  };
  const server = tls === null ? http.createServer(onRequest) : https.createServer(tls, onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    copies,
    waitFor(count) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (copies.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(
          () => reject(new Error(`the mirror saw ${copies.length} of ${count}`)),
          20_000,
        );
        waiters.add(check);
        check();
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The app at `port` behind one Ingress per entry: host `<name>.test`, path /, the entry's annotations. */
function mirrored(port: number, sites: Record<string, Record<string, string>>): Topology {
  return topologyOf([
    ...serviceWithEndpoints({ name: 'app', ports: [port] }),
    ...Object.entries(sites).map(([name, annotations]) =>
      ingress({ name, host: `${name}.test`, paths: [{ path: '/', service: 'app', port: 80 }], annotations }),
    ),
  ]);
}

/** Polls the gateway's registry until the sum of `name`{labels} satisfies `ok` (a generous bound); returns it. */
async function metricUntil(
  gw: TestGateway,
  name: string,
  labels: Record<string, string>,
  ok: (n: number) => boolean,
): Promise<number> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const n = metricSum(await gw.gateway.metrics.registry.metrics(), name, labels);
    if (ok(n)) return n;
    if (Date.now() > deadline) throw new Error(`${name} ${JSON.stringify(labels)} stayed at ${n}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function mirrorCount(gw: TestGateway, result: string, count: number): Promise<number> {
  return metricUntil(gw, 'keepip_gateway_mirror_requests_total', { result }, (n) => n >= count);
}

describe('mirror-target over sockets', () => {
  let app: HeldBackend;
  const closers: (() => Promise<void>)[] = [];
  before(async () => {
    app = await startHeldBackend({ name: 'app', hold: () => false });
  });
  after(async () => {
    for (const close of closers.reverse()) await close();
    await app.close();
  });

  async function gatewayFor(topology: Topology, options = {}): Promise<TestGateway> {
    const gw = await startTestGateway(topology, options);
    closers.push(() => gw.close());
    return gw;
  }
  async function mirrorFor(
    hold = false,
    tls: { cert: string; key: string } | null = null,
  ): Promise<MirrorBackend> {
    const m = await mirrorBackend(hold, tls);
    closers.push(() => m.close());
    return m;
  }

  test('the mirror gets the method, $request_uri, mirror-host, the body and the forwarded headers the backend gets', async () => {
    const mirror = await mirrorFor();
    const gw = await gatewayFor(
      mirrored(app.port, {
        copy: {
          'mirror-target': `http://127.0.0.1:${mirror.port}$request_uri`,
          'mirror-host': 'shadow.example',
        },
      }),
    );
    const reply = await request(gw.httpPort, {
      from: '127.0.0.5',
      host: 'copy.test',
      method: 'POST',
      path: '/orders/7?x=1',
      headers: {
        'x-forwarded-for': '6.6.6.6',
        'content-type': 'text/plain',
        connection: 'keep-alive, x-secret',
        'x-secret': 'hop',
      },
      body: 'hello mirror',
    });
    assert.equal(reply.status, 200);
    const echo = JSON.parse(reply.body) as { name: string; url: string; headers: Record<string, string> };
    assert.equal(echo.name, 'app');
    await mirror.waitFor(1);
    const copy = mirror.copies[0]!;
    assert.equal(copy.method, 'POST');
    assert.equal(copy.url, '/orders/7?x=1');
    assert.equal(copy.headers.host, 'shadow.example');
    assert.equal(copy.body, 'hello mirror');
    assert.equal(copy.headers['content-length'], '12');
    assert.equal(copy.headers['content-type'], 'text/plain');
    // The gateway's client address, as the backend got it; the client's own chain is not trusted.
    assert.equal(copy.headers['x-forwarded-for'], '127.0.0.5');
    assert.equal(copy.headers['x-real-ip'], '127.0.0.5');
    assert.equal(
      copy.headers['x-forwarded-for'],
      echo.headers['x-forwarded-for'] ?? echo.headers['X-Forwarded-For'],
    );
    assert.equal(copy.headers['x-request-id'] !== undefined, true);
    assert.equal(copy.headers['x-secret'], undefined, 'a field the Connection header names is hop-by-hop');
    assert.equal(copy.headers.connection, 'close');
    assert.equal(await mirrorCount(gw, 'answered', 1), 1);
  });

  test('mirror-request-body off: an empty body, never the client length; the Host defaults to the target host; buffering off still copies a body', async () => {
    const mirror = await mirrorFor();
    const gw = await gatewayFor(
      mirrored(app.port, {
        nobody: {
          'mirror-target': `http://127.0.0.1:${mirror.port}/shadow`,
          'mirror-request-body': 'off',
        },
        streamed: {
          'mirror-target': `http://127.0.0.1:${mirror.port}/streamed$is_args$args`,
          'proxy-request-buffering': 'off',
        },
      }),
    );
    const first = await request(gw.httpPort, {
      host: 'nobody.test',
      method: 'PUT',
      path: '/a?b=2',
      body: 'secret',
    });
    assert.equal(first.status, 200);
    await mirror.waitFor(1);
    const copy = mirror.copies[0]!;
    // A target without variables gets the request's arguments, as nginx's proxy_pass with a URI.
    assert.deepEqual([copy.method, copy.url, copy.body], ['PUT', '/shadow?b=2', '']);
    // Node's client says `Content-Length: 0` for an empty PUT; never the client's 6.
    assert.equal(copy.headers['content-length'] ?? '0', '0');
    assert.equal(copy.headers['transfer-encoding'], undefined);
    assert.equal(copy.headers.host, '127.0.0.1');

    const second = await request(gw.httpPort, {
      host: 'streamed.test',
      method: 'POST',
      path: '/s?k=v',
      body: 'streamed body',
    });
    assert.equal(second.status, 200);
    await mirror.waitFor(2);
    assert.deepEqual([mirror.copies[1]!.url, mirror.copies[1]!.body], ['/streamed?k=v', 'streamed body']);
  });

  test('a mirror that never answers or refuses connections changes nothing for the client; failures are counted and logged', async () => {
    const silent = await mirrorFor(true);
    const refused = await refusingPort();
    const gw = await gatewayFor(
      mirrored(app.port, {
        silent: { 'mirror-target': `http://127.0.0.1:${silent.port}$request_uri` },
        slow: {
          'mirror-target': `http://127.0.0.1:${silent.port}$request_uri`,
          'proxy-read-timeout': '1',
        },
        refused: { 'mirror-target': `http://127.0.0.1:${refused}$request_uri` },
      }),
    );
    const reply = await request(gw.httpPort, {
      host: 'silent.test',
      path: '/held',
      method: 'POST',
      body: 'x',
    });
    assert.equal(reply.status, 200);
    assert.equal((JSON.parse(reply.body) as { url: string }).url, '/held');
    // The mirror holds its copy (up to the default 60 s read deadline): the client had its answer all the same.
    await silent.waitFor(1);
    assert.equal(
      metricSum(await gw.gateway.metrics.registry.metrics(), 'keepip_gateway_mirror_requests_total'),
      0,
    );
    // proxy-read-timeout ends a held copy eventually.
    const slow = await request(gw.httpPort, { host: 'slow.test', path: '/held', method: 'POST', body: 'x' });
    assert.equal(slow.status, 200);
    await mirrorCount(gw, 'failed', 1);
    await gw.errors.waitFor(
      /mirror request failed: reading the answer timed out.*mirror: "http:\/\/127\.0\.0\.1:\d+\/held"/,
    );

    const other = await request(gw.httpPort, { host: 'refused.test', path: '/r' });
    assert.equal(other.status, 200);
    assert.equal((JSON.parse(other.body) as { url: string }).url, '/r');
    await mirrorCount(gw, 'failed', 2);
    const answered = metricSum(
      await gw.gateway.metrics.registry.metrics(),
      'keepip_gateway_mirror_requests_total',
      {
        result: 'answered',
      },
    );
    assert.equal(answered, 0);
  });

  test('a body in a temporary file (past client-body-buffer-size) reaches the mirror whole beside the backend, and the file is freed after both', async () => {
    const mirror = await mirrorFor();
    const gw = await gatewayFor(
      mirrored(app.port, {
        big: {
          'mirror-target': `http://127.0.0.1:${mirror.port}$request_uri`,
          'client-body-buffer-size': '1k',
        },
      }),
    );
    const body = Buffer.alloc(300 * 1024, 'abcdefgh');
    const reply = await request(gw.httpPort, { host: 'big.test', method: 'POST', path: '/up', body });
    assert.equal(reply.status, 200);
    await mirror.waitFor(1);
    assert.equal(mirror.copies[0]!.body, body.toString());
    assert.equal(mirror.copies[0]!.headers['content-length'], String(body.length));
    await gw.errors.waitFor(/a client request body is buffered to a temporary file/);
    await mirrorCount(gw, 'answered', 1);
    // The file is closed once the backend and the mirror have both read it.
    await metricUntil(gw, 'keepip_gateway_request_body_temp_files', {}, (n) => n === 0);
  });

  test('an HTTPS mirror (not verified, as nginx) gets the copy of a request curl sends', async () => {
    const curl = requireBinary('curl');
    const mirror = await mirrorFor(false, await certificateFor('shadow.example'));
    const gw = await gatewayFor(
      mirrored(app.port, {
        tls: {
          'mirror-target': `https://127.0.0.1:${mirror.port}/copy$request_uri`,
          'mirror-host': 'shadow.example',
        },
      }),
    );
    const out = await runCommand(curl, [
      '-sS',
      '--data-binary',
      'from curl',
      '-H',
      'Host: tls.test',
      `http://127.0.0.1:${gw.httpPort}/c?d=1`,
    ]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal((JSON.parse(out.stdout) as { name: string; url: string }).url, '/c?d=1');
    await mirror.waitFor(1);
    const copy = mirror.copies[0]!;
    assert.deepEqual(
      [copy.method, copy.url, copy.headers.host, copy.body],
      ['POST', '/copy/c?d=1', 'shadow.example', 'from curl'],
    );
    assert.equal(await mirrorCount(gw, 'answered', 1), 1);
  });

  test('beyond the in-flight bound new copies are dropped and counted; the held ones stay the only copies', async () => {
    const held = await mirrorFor(true);
    const gw = await gatewayFor(
      mirrored(app.port, { bound: { 'mirror-target': `http://127.0.0.1:${held.port}$uri` } }),
      {
        mirrorMaxInFlight: 2,
      },
    );
    for (const path of ['/1', '/2'])
      assert.equal((await request(gw.httpPort, { host: 'bound.test', path })).status, 200);
    await held.waitFor(2);
    const third = await request(gw.httpPort, { host: 'bound.test', path: '/3' });
    assert.equal(third.status, 200);
    assert.equal(await mirrorCount(gw, 'dropped', 1), 1);
    await gw.errors.waitFor(/mirror request dropped: 2 mirror requests in flight/);
    assert.deepEqual(
      held.copies.map((c) => c.url),
      ['/1', '/2'],
    );
  });

  test('an invalid mirror-target is reported and has no effect; an expansion that leaves the host is refused', async () => {
    const mirror = await mirrorFor();
    const bad = [
      'ftp://127.0.0.1/x',
      'IamNotAURL',
      'http://$host/x',
      'http://127.0.0.1:99999/',
      'http://a"b/',
    ];
    const topology = mirrored(app.port, {
      ...Object.fromEntries(bad.map((target, i) => [`bad${i}`, { 'mirror-target': target }])),
      suffix: { 'mirror-target': `http://127.0.0.1:${mirror.port}$http_x_suffix` },
    });
    const warnings = topology.issues.filter(
      (i) => i.code === 'INVALID_ANNOTATION_VALUE' && i.field?.includes('mirror-target'),
    );
    assert.equal(warnings.length, 5, JSON.stringify(topology.issues));
    const gw = await gatewayFor(topology);
    for (let i = 0; i < 5; i += 1)
      assert.equal((await request(gw.httpPort, { host: `bad${i}.test`, path: '/' })).status, 200);
    // A header that would move the copy to another host (127.0.0.1:<port>.evil.example) is refused.
    const reply = await request(gw.httpPort, {
      host: 'suffix.test',
      headers: { 'x-suffix': '.evil.example/' },
    });
    assert.equal(reply.status, 200);
    await mirrorCount(gw, 'refused', 1);
    await gw.errors.waitFor(
      /mirror request refused: "http:\/\/127\.0\.0\.1:\d+\.evil\.example\/" is not on http:\/\/127\.0\.0\.1:\d+/,
    );
    // The same location with a path-shaped value is mirrored: the positive marker that the first went nowhere.
    await request(gw.httpPort, { host: 'suffix.test', headers: { 'x-suffix': '/fine' } });
    await mirror.waitFor(1);
    assert.deepEqual(
      mirror.copies.map((c) => c.url),
      ['/fine'],
    );
    const text = await gw.gateway.metrics.registry.metrics();
    assert.equal(metricSum(text, 'keepip_gateway_mirror_requests_total', { result: 'failed' }), 0);
    assert.equal(metricSum(text, 'keepip_gateway_mirror_requests_total', { result: 'dropped' }), 0);
  });
});
