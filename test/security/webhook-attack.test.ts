// Attacks on the validating admission webhook as an outsider who can reach its port (every pod can: it
// authenticates no caller): methods, paths, content types, bodies that are not reviews, huge and
// slow bodies, deep nesting, wrong-typed fields, an Ingress with thousands of paths, regexes built to
// backtrack, and the server's deadlines. Real TLS sockets on 127.0.0.1: the server in-process where
// it must survive, `keepip controller` as a child process where a crash is the finding. Every wait is
// on a signal (an answer, a close, a log line, a process exit).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { reviewAdmission } from '../../src/controller/admission.ts';
import { MAX_REVIEW_BYTES, type SmallServer, startWebhookServer } from '../../src/controller/servers.ts';
import { buildClusterTopology, type ClusterObjects } from '../../src/controller/snapshot.ts';
import {
  type Answer,
  DEFAULT_SNAPSHOT_OPTIONS,
  EMPTY_CLUSTER,
  ingress,
  ingressReview,
  keyPair,
  postWebhook,
  seedWeb,
  service,
  startBackend,
  webhookFlags,
} from '../controller/harness.ts';
import { type FakeApiServer, type Obj, startFakeApiServer } from '../fixtures/fake-apiserver.ts';
import { freePort } from '../helpers/net.ts';
import { type Running, startKeepip } from '../helpers/process.ts';

/** An AdmissionReview v1 (CREATE) carrying `object` as an Ingress. */
function reviewOf(object: unknown, request: Obj = {}): Obj {
  return ingressReview(object, { uid: 'attack-uid', ...request });
}

/** An Ingress of class nginx with `spec` (rules etc.) and `metadata` merged in. */
function ingressWith(spec: Obj, metadata: Obj = {}): Obj {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { namespace: 'default', name: 'attack', ...metadata },
    spec: { ingressClassName: 'nginx', ...spec },
  };
}

/** A POST with any method, path and headers; `body` null sends none. */
function send(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | null },
): Promise<Answer & { headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'POST',
        path: options.path ?? '/networking/v1/ingresses',
        rejectUnauthorized: false,
        agent: false,
        headers: { 'content-type': 'application/json', ...options.headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(options.body ?? undefined);
  });
}

/** A TLS connection to the webhook (any certificate), once the handshake is done. */
function tlsConnect(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** CPU milliseconds `f` takes on this thread. */
function cpuMs(f: () => void): number {
  const start = process.cpuUsage();
  f();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

describe('the webhook server under attack (in-process, real TLS sockets)', () => {
  let server: SmallServer;
  const lines: string[] = [];
  let port = 0;

  before(async () => {
    const pair = await keyPair('webhook');
    const dir = mkdtempSync(join(tmpdir(), 'keepip-webhook-attack-'));
    writeFileSync(join(dir, 'tls.crt'), pair.cert);
    writeFileSync(join(dir, 'tls.key'), pair.key);
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      // A throw here would take the test runner down with it (it takes the controller down: see the
      // child-process finding below); in this suite it becomes an answer a test can fail on.
      review: (body) => {
        try {
          return reviewAdmission(body, EMPTY_CLUSTER, DEFAULT_SNAPSHOT_OPTIONS);
        } catch (error) {
          return { ok: false, code: 'TEST_REVIEW_THREW', message: (error as Error).message };
        }
      },
      log: (line) => lines.push(line),
    });
    port = server.address.port;
  });
  after(() => server?.close());

  const valid = JSON.stringify(reviewOf(ingress('ok', 'ok.example.com', 'web')));

  it('answers 405 with Allow: POST to GET, PUT, DELETE, PATCH and OPTIONS', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const answer = await send(port, { method, body: method === 'GET' ? null : valid });
      assert.equal(answer.status, 405, method);
      assert.equal(answer.headers.allow, 'POST', method);
    }
  });

  it('reviews on any path, as ingress-nginx (one handler for the whole server)', async () => {
    for (const path of ['/', '/healthz', '/networking/v1/ingresses?timeout=10s', '/a/../../etc/passwd']) {
      const answer = await send(port, { path, body: valid });
      assert.equal(answer.status, 200, path);
      assert.equal(JSON.parse(answer.body).response.uid, 'attack-uid', path);
    }
  });

  it('does not depend on Content-Type (as ingress-nginx), and refuses a body that is not JSON (400)', async () => {
    const plain = await send(port, { headers: { 'content-type': 'text/plain' }, body: valid });
    assert.equal(plain.status, 200);
    for (const body of ['', 'not json', '{"apiVersion":', '\u0000\u0001', '<xml/>']) {
      const answer = await send(port, { body });
      assert.equal(answer.status, 400, JSON.stringify(body));
    }
  });

  it('refuses what is not an admission.k8s.io/v1 AdmissionReview with a string request.uid (400 ADMISSION_BAD_REVIEW)', async () => {
    const bodies: unknown[] = [
      null,
      [],
      'review',
      42,
      { ...reviewOf(ingressWith({})), request: undefined },
      { ...reviewOf(ingressWith({})), request: [] },
      reviewOf(ingressWith({}), { uid: undefined }),
      reviewOf(ingressWith({}), { uid: 7 }),
      reviewOf(ingressWith({}), { uid: { $ne: '' } }),
      { ...reviewOf(ingressWith({})), apiVersion: 'admission.k8s.io/v1beta1' },
      { ...reviewOf(ingressWith({})), kind: 'TokenReview' },
    ];
    for (const body of bodies) {
      const answer = await send(port, { body: JSON.stringify(body) });
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.match(answer.body, /ADMISSION_BAD_REVIEW/);
    }
  });

  it('allows another kind and another operation, echoing the uid; an Ingress review without an object is refused', async () => {
    const cases = [
      reviewOf({ kind: 'Pod', spec: { rules: 'x' } }, { kind: { group: '', version: 'v1', kind: 'Pod' } }),
      reviewOf(ingressWith({ rules: 'x' }), { operation: 'DELETE' }),
      reviewOf(ingressWith({ rules: 'x' }), { kind: 'Ingress' }),
    ];
    for (const body of cases) {
      const answer = await send(port, { body: JSON.stringify(body) });
      assert.equal(answer.status, 200);
      assert.deepEqual(JSON.parse(answer.body).response, { uid: 'attack-uid', allowed: true });
    }
    // A CREATE always carries the object: none, a string or a list is no Ingress (ingress-nginx's
    // decode fails and it refuses with 400 too).
    for (const object of [undefined, 'not an object', ['x'], 42]) {
      const answer = await send(port, { body: JSON.stringify(reviewOf(object)) });
      assert.equal(answer.status, 200);
      const response = JSON.parse(answer.body).response;
      assert.equal(response.allowed, false, JSON.stringify(object));
      assert.match(response.status.message, /^error ADMISSION_MALFORMED_INGRESS: request\.object /);
    }
  });

  it('survives deeply nested JSON (100,000 levels) at the top and inside the Ingress', async () => {
    const depth = 100_000;
    const deepArray = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const top = await send(port, { body: deepArray });
    assert.equal(top.status, 400);
    const inPort = JSON.stringify(
      reviewOf(
        ingressWith({
          rules: [
            {
              host: 'deep.example.com',
              http: {
                paths: [
                  {
                    path: '/',
                    pathType: 'Prefix',
                    backend: { service: { name: 'web', port: { number: '@DEEP@' } } },
                  },
                ],
              },
            },
          ],
        }),
      ),
    ).replace('"@DEEP@"', deepArray);
    const answer = await send(port, { body: inPort });
    assert.equal(answer.status, 200);
    const response = JSON.parse(answer.body).response;
    assert.equal(response.allowed, false);
    assert.match(response.status.message, /MANIFEST_INVALID_FIELD/);
  });

  it('refuses a chunked body over 9 MiB with 413 and closes the connection soon after the cap', async () => {
    const socket = await tlsConnect(port);
    let response = '';
    let sent = 0;
    let closed = false;
    socket.on('data', (c: Buffer) => (response += c.toString('latin1')));
    socket.on('error', () => {});
    const gone = new Promise<void>((resolve) =>
      socket.once('close', () => {
        closed = true;
        resolve();
      }),
    );
    socket.write(
      'POST /networking/v1/ingresses HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    const chunk = Buffer.alloc(256 * 1024, 0x20);
    const limit = 64 * 1024 * 1024;
    while (!closed && sent < limit) {
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      const flowing = socket.write('\r\n');
      sent += chunk.length;
      if (!flowing) await Promise.race([new Promise((r) => socket.once('drain', r)), gone]);
    }
    if (!closed) socket.end('0\r\n\r\n');
    await gone;
    assert.match(response, /^HTTP\/1\.1 413 /);
    assert.ok(sent < limit, `the server read all ${sent} bytes instead of closing after ${MAX_REVIEW_BYTES}`);
    assert.ok(lines.some((l) => /ADMISSION_BODY_TOO_LARGE/.test(l)));
  });

  it('a slow, never-finished body does not hold up other reviews', async () => {
    const slow = await tlsConnect(port);
    slow.on('error', () => {});
    slow.write(
      `POST / HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: ${valid.length}\r\n\r\n${valid.slice(0, 20)}`,
    );
    try {
      for (let i = 0; i < 3; i++) {
        const answer = await postWebhook(port, valid);
        assert.equal(answer.status, 200);
      }
    } finally {
      slow.destroy();
    }
  });

  it('refuses the classic catastrophic regex shapes at admission (ADMISSION_REGEX_BACKTRACKS / ROUTE_REGEX_BACKTRACKS)', async () => {
    for (const path of ['/(a+)+x', '/(.*)*x', '/(\\w+\\s?)*$']) {
      const object = ingress('re', 're.example.com', 'web', {
        annotations: { 'nginx.ingress.kubernetes.io/use-regex': 'true' },
      });
      object.spec.rules[0].http.paths[0] = {
        ...object.spec.rules[0].http.paths[0],
        path,
        pathType: 'ImplementationSpecific',
      };
      const answer = await send(port, { body: JSON.stringify(reviewOf(object)) });
      const response = JSON.parse(answer.body).response;
      assert.equal(response.allowed, false, path);
      assert.match(response.status.message, /REGEX_BACKTRACKS/, path);
    }
  });

  it('holds at most 64 connections past their TLS handshake: the 65th is closed; one closing frees its place', async () => {
    const held: tls.TLSSocket[] = [];
    try {
      for (let i = 0; i < 64; i++) {
        const socket = await tlsConnect(port);
        socket.on('error', () => {});
        held.push(socket);
      }
      const extra = await tlsConnect(port);
      extra.on('error', () => {});
      // Closed by the server right after its handshake, before a byte of HTTP.
      await new Promise((resolve) => extra.once('close', resolve));
      const freed = held.shift()!;
      const gone = new Promise((resolve) => freed.once('close', resolve));
      freed.destroy();
      await gone;
      // The server hears the close on its own side too: retried until it has (bounded).
      let answer: { status: number } | null = null;
      for (let attempt = 0; attempt < 50 && answer === null; attempt++)
        answer = await postWebhook(port, valid).catch(() => null);
      assert.equal(answer?.status, 200);
    } finally {
      for (const socket of held) socket.destroy();
    }
  });

  it('has deadlines as tight as the API server needs (headers 10 s as ingress-nginx, a whole review 30 s)', () => {
    // The server object is not exported: find it among the process's handles by its port.
    const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
    const found = handles.find(
      (h): h is https.Server =>
        h instanceof https.Server && (h.address() as { port?: number })?.port === port,
    );
    assert.ok(found, 'the webhook server among the active handles');
    assert.ok(found.headersTimeout <= 10_000, `headersTimeout ${found.headersTimeout} ms`);
    assert.ok(found.requestTimeout <= 30_000, `requestTimeout ${found.requestTimeout} ms`);
  });
});

describe('reviews built to hurt (reviewAdmission, the function the server calls)', () => {
  it('never throws on a wrong-typed Ingress (what the server does not catch)', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    const hostile: Record<string, Obj> = {
      'spec.rules a string': ingressWith({ rules: 'x' }),
      'spec.rules an object': ingressWith({ rules: { a: 1 } }),
      'a null rule': ingressWith({ rules: [null] }),
      'paths a string': ingressWith({ rules: [{ host: 'a.example.com', http: { paths: 'x' } }] }),
      'a null path': ingressWith({ rules: [{ host: 'a.example.com', http: { paths: [null] } }] }),
      'a numeric host': ingressWith({ rules: [{ host: 5 }] }),
      'a numeric auth-secret': ingressWith(
        { rules: [] },
        { annotations: { 'nginx.ingress.kubernetes.io/auth-secret': 5 } },
      ),
      'a deeply nested metadata.name': ingressWith({ rules: [] }, { name: deep }),
    };
    const threw: string[] = [];
    for (const [what, object] of Object.entries(hostile)) {
      try {
        reviewAdmission(reviewOf(object), EMPTY_CLUSTER, DEFAULT_SNAPSHOT_OPTIONS);
      } catch (error) {
        threw.push(`${what}: ${(error as Error).message}`);
      }
    }
    assert.deepEqual(threw, []);
  });

  it('reviews an Ingress with thousands of paths in time proportional to its size', () => {
    const n = 6000;
    const big = ingressWith({
      rules: [
        {
          host: 'big.example.com',
          http: {
            paths: Array.from({ length: n }, (_, i) => ({
              path: `/p${i}`,
              pathType: 'Prefix',
              backend: { service: { name: 'web', port: { number: 80 } } },
            })),
          },
        },
      ],
    });
    const cluster: ClusterObjects = { ...EMPTY_CLUSTER, services: [service('web')] };
    // The translation of the same Ingress, as the controller's snapshot does it: the linear reference.
    buildClusterTopology({ ...cluster, ingresses: [big] }, DEFAULT_SNAPSHOT_OPTIONS);
    const snapshot = cpuMs(() =>
      buildClusterTopology({ ...cluster, ingresses: [big] }, DEFAULT_SNAPSHOT_OPTIONS),
    );
    let allowed: unknown;
    const review = cpuMs(() => {
      const outcome = reviewAdmission(reviewOf(big), cluster, DEFAULT_SNAPSHOT_OPTIONS);
      allowed = outcome.ok && (outcome.response.response as Obj).allowed;
    });
    assert.equal(allowed, true);
    assert.ok(
      review <= 5 * snapshot + 100,
      `review of ${n} paths: ${Math.round(review)} ms of CPU; translating the same Ingress: ${Math.round(snapshot)} ms`,
    );
  });

  it("refuses regex paths that backtrack exponentially and that V8's linear fallback cannot take (backreference, lookaround)", () => {
    const admitted: string[] = [];
    for (const path of ['/(a|a)*\\1x', '/(?=a)(a|a)*x', '/((?=a)a|a)*x', '/(\\w|\\d)*\\1$']) {
      const object = ingress('re', 're.example.com', 'web', {
        annotations: { 'nginx.ingress.kubernetes.io/use-regex': 'true' },
      });
      object.spec.rules[0].http.paths[0] = {
        ...object.spec.rules[0].http.paths[0],
        path,
        pathType: 'ImplementationSpecific',
      };
      const outcome = reviewAdmission(
        reviewOf(object),
        { ...EMPTY_CLUSTER, services: [service('web')] },
        DEFAULT_SNAPSHOT_OPTIONS,
      );
      assert.ok(outcome.ok);
      if ((outcome.response.response as Obj).allowed === true) admitted.push(path);
    }
    assert.deepEqual(admitted, []);
  });
});

describe('keepip controller (a child process) against a review with wrong-typed fields', () => {
  let api: FakeApiServer;
  let web: Awaited<ReturnType<typeof startBackend>>;
  let ctl: Running | undefined;
  let webhookPort = 0;

  before(async () => {
    api = await startFakeApiServer();
    web = await startBackend('web');
    seedWeb(api, web.port);
    const [http, httpsPort, health] = [await freePort(), await freePort(), await freePort()];
    ctl = startKeepip([
      'controller',
      '--kubeconfig',
      api.kubeconfig,
      '--bind-address=127.0.0.1',
      `--http-port=${http}`,
      `--https-port=${httpsPort}`,
      `--healthz-port=${health}`,
      '--post-shutdown-grace-period=0',
      '--disable-leader-election',
      '--workers=1',
      ...(await webhookFlags()),
    ]);
    webhookPort = Number((await ctl.waitFor(/validating webhook https:\/\/127\.0\.0\.1:(\d+)/))[1]);
    // Reviewed against the cluster only once it has been listed (before that: ADMISSION_NOT_SYNCED).
    await ctl.waitFor(/serving: config v\d+ from the API server/);
  });
  after(async () => {
    await ctl?.stop();
    await api?.close();
    await web?.close();
  });

  it('answers a review whose spec.rules is a string and keeps running', async () => {
    const child = ctl!.child;
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => resolve(`the controller exited (${code ?? signal})`)),
    );
    const hostile = await postWebhook(
      webhookPort,
      JSON.stringify(reviewOf(ingressWith({ rules: 'x' }))),
    ).catch((error: Error) => ({ status: 0, body: error.message }));
    // Then a valid review: answered by a live controller, or the process is gone.
    const next = await Promise.race([
      postWebhook(webhookPort, JSON.stringify(reviewOf(ingress('ok', 'ok.example.com', 'web')))).then(
        (a) => `answered ${a.status}`,
        (error: Error) => `refused: ${error.message}`,
      ),
      exited,
    ]);
    assert.deepEqual(
      {
        hostile:
          hostile.status === 200 || hostile.status === 400 ? 'answered' : `${hostile.status} ${hostile.body}`,
        next,
      },
      { hostile: 'answered', next: 'answered 200' },
    );
    assert.equal(child.exitCode, null);
  });
});
