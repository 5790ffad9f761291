// Controller ConfigMap keys the catalog marks `implemented` (src/k8s/annotation-catalog.ts,
// CONFIGMAP_CATALOG, rendered in docs/ingress-nginx-compat.md) whose behaviour no other test exercised
// end to end through the ConfigMap: each set in a ConfigMap, read by the real loader and translator
// (topologyOf), served by a real gateway (startTestGateway) or controller (webCluster, for the
// tcp- and udp-services keys), and checked where a client, a backend or a log reader meets it. Each
// claim is quoted from the catalog's note, and compared with ingress-nginx's meaning (config.go,
// nginx.tmpl, template.go, configmap.md of ingress-nginx v1.15, nginx's own sources):
//
// - forwarded-host-header | X-Forwarded-Host | "the request header X-Original-Forwarded-Host copies"
//   (nginx.tmpl: `proxy_set_header X-Original-Forwarded-Host $http_<header>`; an empty value sends none).
// - relative-redirects | false | "the default of the annotation"; the annotation: "nginx's
//   `absolute_redirect off`: a permanent-redirect to a path is sent as that path instead of an absolute URL".
// - preserve-trailing-slash, use-port-in-redirects | false | "defaults of the annotations" (the
//   force-ssl-redirect Location keeps its trailing slash / names port 443).
// - proxy-http-version | 1.1 | "the default of the annotation".
// - proxy-request-buffering | on | "default of the annotation: `on` reads a request body whole before the
//   backend is contacted, `off` streams it".
// - client-body-buffer-size | 8k | "default of the annotation: the part of a buffered body kept in memory,
//   the rest in a temporary file under `$TMPDIR`".
// - upstream-hash-by, upstream-hash-by-subset, upstream-hash-by-subset-size | none; false; 3 | "defaults
//   of the annotations, for every location without its own" (subset: ingress-nginx's chashsubset, a key
//   picks a subset of that many endpoints, a random one of it answers).
// - proxy-next-upstream, proxy-next-upstream-tries, proxy-next-upstream-timeout, retry-non-idempotent |
//   error timeout; 3; 0; false | "defaults of the annotations; `retry-non-idempotent: "true"` adds
//   `non_idempotent`" (ingress-nginx: buildNextUpstream adds it to every location's proxy_next_upstream,
//   an Ingress's own list included; nginx tries no next server once proxy_next_upstream_timeout passed).
// - http2-max-requests | 0 (keep-alive-requests applies) | "requests per connection: … on HTTP/2
//   streams, then GOAWAY (the streams in flight finish)".
// - ssl-session-cache-size | 10m | "TLS sessions kept by the gateway for ssl-session-timeout, at most
//   ssl-session-cache-size bytes of them (least recently used dropped), so a TLS 1.2 client resumes with
//   its session id".
// - access-log-params | none | "`buffer=<size>` and `flush=<time>` … accepted as they are. `gzip[=level]`
//   and `if=` are warned (INVALID_CONFIGMAP_VALUE) and ignored: lines are written uncompressed, all of
//   them"; "one write per event-loop turn, whole lines, never held longer than that turn, where nginx
//   holds them up to flush=".
// - gzip-level, brotli-level | 1, 4 | "level 1-9"; "level 0-11" ("brotli (Node's zlib) on the same terms
//   as gzip").
// - otel-sampler-ratio (with otel-sampler, otel-sampler-parent-based) | 0.01 | "the sampler: AlwaysOn,
//   AlwaysOff or TraceIdRatioBased with the ratio (0 to 1), inside a parent-based sampler unless
//   otel-sampler-parent-based is false"; enable-opentelemetry: "the backend gets the span's
//   `traceparent`/`tracestate` (also when not sampled, with flags 00)".
// - opentelemetry-trust-incoming-span, opentelemetry-operation-name | true, none | "its parent the
//   request's `traceparent` when trusted"; "The span's name: opentelemetry-operation-name, else the
//   Ingress path".
// - global-auth-signin-redirect-param | none | "external auth for every location without its own
//   `auth-url` … as the annotations" (auth-signin-redirect-param: the name of the query parameter the
//   sign-in URL gets; ingress-nginx's buildAuthSignURL, `rd` by default).
// - limit-rate | 0 | "defaults of the annotations (KB)" (nginx's `limit_rate <n>k`).
// - disable-proxy-intercept-errors | false | "defaults of the annotations" (beside custom-http-errors).
// - proxy-stream-next-upstream, proxy-stream-next-upstream-tries | true, 3 | "a connect to an endpoint
//   that fails (refused …) is retried on the next endpoint round robin, up to `-tries` attempts in all
//   … and it is closed only when every attempt failed. `false`: one attempt".
// - proxy-stream-responses | 1 | "a session … ends once it got this many answers for each datagram it
//   forwarded".
//
// Found here and fixed: retry-non-idempotent did not reach an Ingress with its own proxy-next-upstream
// (ingress-nginx's buildNextUpstream appends non_idempotent to every location's list);
// global-auth-signin-redirect-param was not trimmed (" next " became "rd") and the global-auth-*
// warnings read twice ("is not valid; using the default … is not valid; …"). ALLOWED lists the
// differences from ingress-nginx that are acceptable, each checked to still be what is seen.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders, Server } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import zlib from 'node:zlib';
import http from '../../src/node-http.ts';
import { createFileLineSink } from '../../src/gateway/file-line-sink.ts';
import type { Obj } from '../fixtures/fake-apiserver.ts';
import { request, startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { webCluster } from '../controller/harness.ts';
import { connectH2 } from '../helpers/h2-client.ts';
import { framedResponses, freePort, openRaw } from '../helpers/net.ts';
import { seededRandom } from '../helpers/seeded-random.ts';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../fixtures/otlp/receiver.ts';

const SEED = Number(process.env.KEEPIP_CONFIGMAP_KEYS_SEED ?? 20_260_611);

/**
 * The suites run side by side (each with its own gateway); the tests of one suite one after another,
 * in order (node:test hands a suite's concurrency down to the suites inside it).
 */
const SEQUENTIAL = { concurrency: 1 } as const;

/** A safety net only: every wait below ends on a signal long before this. */
const DEADLINE_MS = 15_000;

/**
 * Differences from ingress-nginx that are acceptable; each test named here checks that the difference
 * is still what keepip does, so the table cannot rot.
 */
const ALLOWED = {
  http2MaxRequests: {
    key: 'http2-max-requests',
    reason:
      "ingress-nginx renders `http2_max_requests`, which nginx >= 1.19.7 (every nginx ingress-nginx 1.12+ ships) ignores as obsolete (keepalive_requests applies). keepip honours a lower one, as ingress-nginx's configmap.md describes it (never a higher one: scalar-values-differential-nginx): a lower per-connection limit costs a client a new connection, nothing more",
  },
  relativeRedirectsAnnotationOff: {
    key: 'relative-redirects',
    reason:
      'ingress-nginx writes only `absolute_redirect off` (at http level for the ConfigMap, in the location for the annotation), so an Ingress\'s relative-redirects: "false" cannot undo the ConfigMap\'s "true" there; keepip\'s annotation ("default: the ConfigMap key") wins, and the Location is absolute. Both are valid redirects',
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Backends.

interface Seen {
  backend: string;
  method: string;
  url: string;
  httpVersion: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Recorder {
  seen: Seen[];
  /** Resolves once some request's body so far contains `text` (the backend read it off the socket). */
  bodyPart(text: string): Promise<void>;
  port(name: string): number;
  close(): Promise<void>;
}

/**
 * One HTTP backend per name on 127.0.0.1:0 recording what it is sent; `answer` picks the status and
 * body (default 200 and `<name> <url>`).
 */
async function startRecorder(
  names: readonly string[],
  answer: (
    name: string,
    seen: Seen,
  ) => { status: number; body: string | Buffer; type?: string; delayMs?: number } = (name, seen) => ({
    status: 200,
    body: `${name} ${seen.url}`,
  }),
): Promise<Recorder> {
  const seen: Seen[] = [];
  const partial: string[] = [];
  const waiters = new Set<() => void>();
  const servers: Server[] = [];
  const ports = new Map<string, number>();
  for (const name of names) {
    const server = http.createServer((req, res) => {
      const index = partial.push('') - 1;
      req.setEncoding('latin1');
      req.on('data', (chunk: string) => {
        partial[index] += chunk;
        for (const waiter of [...waiters]) waiter();
      });
      req.on('end', () => {
        const entry: Seen = {
          backend: name,
          method: req.method ?? '',
          url: req.url ?? '',
          httpVersion: req.httpVersion,
          headers: req.headers,
          body: partial[index] ?? '',
        };
        seen.push(entry);
        const a = answer(name, entry);
        const send = () => {
          res.writeHead(a.status, {
            'content-type': a.type ?? 'text/plain',
            'content-length': Buffer.byteLength(a.body),
            'x-backend': name,
          });
          res.end(a.body);
        };
        // A slow answer (a backend's own delay, never a wait of the test's).
        if (a.delayMs === undefined) send();
        else setTimeout(send, a.delayMs);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    ports.set(name, (server.address() as net.AddressInfo).port);
  }
  return {
    seen,
    bodyPart(text) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!partial.some((p) => p.includes(text))) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no backend read ${JSON.stringify(text)} within ${DEADLINE_MS} ms`));
        }, DEADLINE_MS);
        waiters.add(check);
        check();
      });
    },
    port: (name) => ports.get(name) ?? 0,
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

/** Service `name` with one endpoint per port of `recorder` (by backend names). */
function serviceOf(name: string, recorder: Recorder, backends: readonly string[]): K8sObject[] {
  return serviceWithEndpoints({ name, ports: backends.map((b) => recorder.port(b)) });
}

function site(
  name: string,
  service: string,
  annotations: Record<string, string> = {},
  path = '/',
): K8sObject {
  return ingress({ name, host: `${name}.test`, paths: [{ path, service, port: 80 }], annotations });
}

function issuesOf(topology: ReturnType<typeof topologyOf>, key: string): string[] {
  return topology.issues
    .filter((i) => i.field === `data["${key}"]`)
    .map((i) => `${i.severity} ${i.code}: ${i.message}`);
}

// ---------------------------------------------------------------------------------------------

describe('controller ConfigMap keys no other test exercised, end to end', { concurrency: true }, () => {
  describe(
    'request headers and redirects: forwarded-host-header, relative-redirects, preserve-trailing-slash, use-port-in-redirects',
    SEQUENTIAL,
    () => {
      let backend: Recorder;
      let gw: TestGateway;
      before(async () => {
        backend = await startRecorder(['echo']);
        gw = await startTestGateway(
          topologyOf([
            controllerConfigMap({
              'forwarded-host-header': 'X-Edge-Host',
              'relative-redirects': 'true',
              'preserve-trailing-slash': 'true',
              'use-port-in-redirects': 'true',
            }),
            ...serviceOf('echo', backend, ['echo']),
            site('hdr', 'echo'),
            site('rr', 'echo', { 'permanent-redirect': '/new-location' }, '/something'),
            site(
              'rr-own',
              'echo',
              { 'permanent-redirect': '/new-location', 'relative-redirects': 'false' },
              '/something',
            ),
            site('ssl', 'echo', { 'force-ssl-redirect': 'true' }),
            site('ssl-own', 'echo', {
              'force-ssl-redirect': 'true',
              'preserve-trailing-slash': 'false',
              'use-port-in-redirects': 'false',
            }),
          ]),
        );
      });
      after(async () => {
        await gw?.close();
        await backend?.close();
      });

      test('forwarded-host-header: X-Original-Forwarded-Host copies the named header, not X-Forwarded-Host', async () => {
        const both = await request(gw.httpPort, {
          host: 'hdr.test',
          path: '/both',
          headers: { 'X-Edge-Host': 'shop.example', 'X-Forwarded-Host': 'other.example' },
        });
        assert.equal(both.status, 200);
        const onlyDefault = await request(gw.httpPort, {
          host: 'hdr.test',
          path: '/default-only',
          headers: { 'X-Forwarded-Host': 'other.example' },
        });
        assert.equal(onlyDefault.status, 200);
        const seen = (url: string) => backend.seen.find((s) => s.url === url)?.headers;
        assert.equal(seen('/both')?.['x-original-forwarded-host'], 'shop.example');
        // nginx: $http_x_edge_host is empty, and proxy_set_header sends no header for an empty value.
        assert.equal(seen('/default-only')?.['x-original-forwarded-host'], undefined);
      });

      test('relative-redirects "true": a permanent-redirect to a path is sent as that path', async () => {
        const reply = await request(gw.httpPort, { host: 'rr.test', path: '/something' });
        assert.equal(reply.status, 301);
        assert.equal(reply.headers.location, '/new-location');
      });

      test(`ALLOWED ${ALLOWED.relativeRedirectsAnnotationOff.key}: an Ingress's "false" makes its Location absolute again`, async () => {
        const reply = await request(gw.httpPort, { host: 'rr-own.test', path: '/something' });
        assert.equal(reply.status, 301);
        // ingress-nginx would send "/new-location" (http-level absolute_redirect off stands). The port:
        // the ConfigMap's use-port-in-redirects (nginx's port_in_redirect on names the server's port).
        assert.equal(reply.headers.location, `http://rr-own.test:${gw.httpPort}/new-location`);
      });

      test('preserve-trailing-slash and use-port-in-redirects "true": the https Location keeps the slash and names 443; an Ingress\'s "false" wins', async () => {
        const mine = await request(gw.httpPort, { host: 'ssl.test', path: '/a/' });
        assert.equal(mine.status, 308);
        assert.equal(mine.headers.location, 'https://ssl.test:443/a/');
        const own = await request(gw.httpPort, { host: 'ssl-own.test', path: '/a/' });
        assert.equal(own.status, 308);
        assert.equal(own.headers.location, 'https://ssl-own.test/a');
      });
    },
  );

  describe('proxy-http-version "1.0"', SEQUENTIAL, () => {
    let backend: Recorder;
    let gw: TestGateway;
    before(async () => {
      backend = await startRecorder(['echo']);
      gw = await startTestGateway(
        topologyOf([
          controllerConfigMap({ 'proxy-http-version': '1.0' }),
          ...serviceOf('echo', backend, ['echo']),
          site('v10', 'echo'),
          site('v11', 'echo', { 'proxy-http-version': '1.1' }),
        ]),
      );
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
    });

    test('backends are spoken to in HTTP/1.0, unless the Ingress says 1.1', async () => {
      assert.equal((await request(gw.httpPort, { host: 'v10.test', path: '/ten' })).status, 200);
      assert.equal((await request(gw.httpPort, { host: 'v11.test', path: '/eleven' })).status, 200);
      assert.equal(backend.seen.find((s) => s.url === '/ten')?.httpVersion, '1.0');
      assert.equal(backend.seen.find((s) => s.url === '/eleven')?.httpVersion, '1.1');
    });
  });

  describe('proxy-request-buffering "off", client-body-buffer-size "1k"', SEQUENTIAL, () => {
    let backend: Recorder;
    let gw: TestGateway;
    let tempDir: string;
    before(async () => {
      tempDir = mkdtempSync(join(tmpdir(), 'keepip-cm-bodies-'));
      backend = await startRecorder(['echo']);
      gw = await startTestGateway(
        topologyOf([
          controllerConfigMap({ 'proxy-request-buffering': 'off', 'client-body-buffer-size': '1k' }),
          ...serviceOf('echo', backend, ['echo']),
          site('stream', 'echo'),
          site('whole', 'echo', { 'proxy-request-buffering': 'on' }),
        ]),
        { tempDir },
      );
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    });

    /** A chunked POST (`<marker>;part-two`) whose second chunk is sent only once `between()` resolves. */
    async function chunkedPost(
      host: string,
      path: string,
      marker: string,
      between: () => Promise<void>,
    ): Promise<number> {
      const conn = await openRaw({ host: '127.0.0.1', port: gw.httpPort });
      try {
        const first = `${marker};`;
        conn.socket.write(
          `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n${first.length.toString(16)}\r\n${first}\r\n`,
        );
        await between();
        conn.socket.write('8\r\npart-two\r\n0\r\n\r\n');
        const raw = await conn.until((r) => framedResponses(r).length === 1, DEADLINE_MS);
        return framedResponses(raw)[0]?.status ?? 0;
      } finally {
        conn.destroy();
      }
    }

    test('the body streams: the backend reads the first chunk before the client sends the rest', async () => {
      const status = await chunkedPost('stream.test', '/streamed', 'streamed-one', () =>
        backend.bodyPart('streamed-one;'),
      );
      assert.equal(status, 200);
      const seen = backend.seen.find((s) => s.url === '/streamed');
      assert.equal(seen?.body, 'streamed-one;part-two');
      assert.equal(seen?.headers['transfer-encoding'], 'chunked');
    });

    test('an Ingress\'s "on" reads the body whole first: the backend gets a Content-Length', async () => {
      const status = await chunkedPost('whole.test', '/buffered', 'whole-one', async () => {});
      assert.equal(status, 200);
      const seen = backend.seen.find((s) => s.url === '/buffered');
      assert.equal(seen?.body, 'whole-one;part-two');
      assert.equal(seen?.headers['content-length'], '18');
      assert.equal(seen?.headers['transfer-encoding'], undefined);
    });

    test("client-body-buffer-size from the ConfigMap: a 4 KiB buffered body goes past 1k of memory into a temporary file under the gateway's temp dir", async () => {
      // The default 8k would hold these 4 KiB in memory: no temporary file, no warning.
      const body = 'b'.repeat(4096);
      const reply = await request(gw.httpPort, {
        host: 'whole.test',
        path: '/spilled',
        method: 'POST',
        body,
      });
      assert.equal(reply.status, 200);
      const line = await gw.errors.waitFor(
        /\[warn\].*a client request body is buffered to a temporary file .*"POST \/spilled/,
        DEADLINE_MS,
      );
      assert.ok((/temporary file (\S+),/.exec(line)?.[1] ?? '').startsWith(`${tempDir}/`), line);
      assert.equal(backend.seen.find((s) => s.url === '/spilled')?.body, body);
    });
  });

  describe('upstream-hash-by "$http_x_user"', SEQUENTIAL, () => {
    const names = ['h0', 'h1', 'h2'];
    let backend: Recorder;
    let gw: TestGateway;
    before(async () => {
      backend = await startRecorder(names);
      gw = await startTestGateway(
        topologyOf([
          controllerConfigMap({ 'upstream-hash-by': '$http_x_user' }),
          ...serviceOf('pool', backend, names),
          site('hash', 'pool'),
        ]),
      );
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
    });

    test('both requests of one user go to the same endpoint (round robin would take the next one)', async () => {
      const random = seededRandom(SEED);
      const users = Array.from({ length: 20 }, (_, i) => `user-${i}-${Math.floor(random() * 1e9)}`);
      const chosen = new Map<string, Set<string>>();
      for (const user of users) {
        for (let n = 0; n < 2; n++) {
          const reply = await request(gw.httpPort, {
            host: 'hash.test',
            path: '/',
            headers: { 'X-User': user },
          });
          assert.equal(reply.status, 200);
          const set = chosen.get(user) ?? new Set<string>();
          set.add(String(reply.headers['x-backend']));
          chosen.set(user, set);
        }
      }
      for (const [user, set] of chosen) assert.equal(set.size, 1, `${user}: ${[...set].join(', ')}`);
      const used = new Set([...chosen.values()].flatMap((s) => [...s]));
      // A key that expanded to nothing would send everyone to one endpoint; 20 users landing on one of
      // three by chance: 3^-19.
      assert.ok(used.size >= 2, `20 users all hashed onto ${[...used].join(', ')}`);
    });
  });

  describe('upstream-hash-by-subset "true", upstream-hash-by-subset-size "2"', SEQUENTIAL, () => {
    const names = ['s0', 's1', 's2', 's3', 's4', 's5'];
    let backend: Recorder;
    let gw: TestGateway;
    before(async () => {
      backend = await startRecorder(names);
      gw = await startTestGateway(
        topologyOf([
          controllerConfigMap({
            'upstream-hash-by': '$http_x_user',
            'upstream-hash-by-subset': 'true',
            'upstream-hash-by-subset-size': '2',
          }),
          ...serviceOf('pool', backend, names),
          site('subset', 'pool'),
        ]),
      );
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
    });

    test("a user's requests stay in one subset of two endpoints, a random one of the two each time", async () => {
      const random = seededRandom(SEED + 1);
      const chosen: Set<string>[] = [];
      for (let u = 0; u < 6; u++) {
        const user = `subset-user-${u}-${Math.floor(random() * 1e9)}`;
        const set = new Set<string>();
        for (let n = 0; n < 12; n++) {
          const reply = await request(gw.httpPort, { host: 'subset.test', headers: { 'X-User': user } });
          assert.equal(reply.status, 200);
          set.add(String(reply.headers['x-backend']));
        }
        chosen.push(set);
      }
      for (const set of chosen) assert.ok(set.size <= 2, [...set].join(', '));
      // Two subsets seen whole are the same or share no endpoint.
      const pairs = chosen.filter((set) => set.size === 2).map((set) => [...set].sort());
      for (const a of pairs)
        for (const b of pairs)
          assert.ok(a.join() === b.join() || !a.some((x) => b.includes(x)), `${a} and ${b} overlap`);
      // Plain upstream-hash-by would give each user one endpoint; 12 draws of two all alike: 2^-11 each.
      assert.ok(
        chosen.some((set) => set.size === 2),
        'no user was answered by two endpoints of its subset',
      );
    });
  });

  describe(
    'proxy-next-upstream, proxy-next-upstream-tries, proxy-next-upstream-timeout, retry-non-idempotent',
    SEQUENTIAL,
    () => {
      const names = ['b0', 'b1', 'b2'];
      const slowNames = ['slow0', 'slow1', 'slow2'];
      let backend: Recorder;
      let gw: TestGateway;
      before(async () => {
        // The slow ones answer their 502 after 1.2 s: past the ConfigMap's proxy-next-upstream-timeout.
        backend = await startRecorder([...names, ...slowNames], (name) =>
          name.startsWith('slow')
            ? { status: 502, body: `${name} failed late`, delayMs: 1_200 }
            : { status: 502, body: `${name} failed` },
        );
        gw = await startTestGateway(
          topologyOf([
            controllerConfigMap({
              'proxy-next-upstream': 'error timeout http_502',
              'proxy-next-upstream-tries': '2',
              'proxy-next-upstream-timeout': '1',
              'retry-non-idempotent': 'true',
            }),
            ...serviceOf('bad', backend, names),
            ...serviceOf('slow', backend, slowNames),
            site('retry', 'bad'),
            site('own', 'bad', { 'proxy-next-upstream': 'error timeout http_502' }),
            site('late', 'slow'),
          ]),
        );
      });
      after(async () => {
        await gw?.close();
        await backend?.close();
      });

      const attempts = (url: string) => backend.seen.filter((s) => s.url === url).map((s) => s.backend);

      test('a 502 is retried on another endpoint, two attempts in all; a POST too', async () => {
        const get = await request(gw.httpPort, { host: 'retry.test', path: '/get-1' });
        assert.equal(get.status, 502);
        const post = await request(gw.httpPort, {
          host: 'retry.test',
          path: '/post-1',
          method: 'POST',
          body: 'order=1',
        });
        assert.equal(post.status, 502);
        for (const url of ['/get-1', '/post-1']) {
          const tried = attempts(url);
          assert.equal(tried.length, 2, `${url}: ${tried.join(', ')}`);
          assert.equal(new Set(tried).size, 2, `${url}: the same endpoint twice`);
        }
      });

      test('proxy-next-upstream-timeout "1": a 502 that came after 1.2 s is not retried (nginx: no next try once the timeout has passed)', async () => {
        const reply = await request(gw.httpPort, { host: 'late.test', path: '/late-1' });
        assert.equal(reply.status, 502);
        // The answer came after every attempt the gateway made: a second one would be recorded already.
        assert.equal(attempts('/late-1').length, 1, attempts('/late-1').join(', '));
      });

      test('retry-non-idempotent applies to an Ingress with its own proxy-next-upstream too (ingress-nginx: buildNextUpstream; found here, fixed)', async () => {
        const post = await request(gw.httpPort, {
          host: 'own.test',
          path: '/post-own',
          method: 'POST',
          body: 'x=1',
        });
        assert.equal(post.status, 502);
        const get = await request(gw.httpPort, { host: 'own.test', path: '/get-own' });
        assert.equal(get.status, 502);
        assert.equal(attempts('/get-own').length, 2, 'the GET: the ConfigMap tries');
        assert.equal(
          attempts('/post-own').length,
          2,
          'the POST: proxy_next_upstream error timeout http_502 non_idempotent',
        );
      });
    },
  );

  describe('http2-max-requests "2"', SEQUENTIAL, () => {
    let backend: Recorder;
    let gw: TestGateway;
    before(async () => {
      backend = await startRecorder(['echo']);
      gw = await startTestGateway(
        topologyOf([
          controllerConfigMap({ 'http2-max-requests': '2' }),
          ...serviceOf('echo', backend, ['echo']),
          site('h2', 'echo'),
        ]),
      );
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
    });

    test(`ALLOWED ${ALLOWED.http2MaxRequests.key}: an HTTP/2 connection gets GOAWAY after two streams; HTTP/1.1 keeps keep-alive-requests`, async () => {
      const conn = await connectH2({ port: gw.httpsPort, from: '127.0.0.41', host: 'h2.test' });
      try {
        const goaway = new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no GOAWAY')), DEADLINE_MS);
          conn.session.once('goaway', (code) => {
            clearTimeout(timer);
            resolve(code);
          });
        });
        const replies = await Promise.all(['/s1', '/s2'].map((path) => conn.request(path)));
        assert.deepEqual(
          replies.map((r) => r.status),
          [200, 200],
        );
        assert.equal(await goaway, 0);
      } finally {
        await conn.close();
      }
      // Three pipelined HTTP/1.1 requests: all answered on the one connection, none says close.
      const h1 = await openRaw({ host: '127.0.0.1', port: gw.httpPort, localAddress: '127.0.0.42' });
      try {
        h1.socket.write('GET /p1 HTTP/1.1\r\nHost: h2.test\r\n\r\n'.repeat(3));
        const raw = await h1.until((r) => framedResponses(r).length === 3, DEADLINE_MS);
        const answers = framedResponses(raw);
        assert.deepEqual(
          answers.map((a) => a.status),
          [200, 200, 200],
        );
        for (const a of answers) assert.doesNotMatch(a.head, /\r\nconnection: *close/i);
      } finally {
        h1.destroy();
      }
    });
  });

  describe('ssl-session-cache-size "1k"', SEQUENTIAL, () => {
    let gw: TestGateway;
    let topology: ReturnType<typeof topologyOf>;
    before(async () => {
      topology = topologyOf([controllerConfigMap({ 'ssl-session-cache-size': '1k' })]);
      gw = await startTestGateway(topology);
    });
    after(async () => {
      await gw?.close();
    });

    /** One TLS 1.2 handshake (offering `session`); its session and whether it resumed. */
    function handshake(from: string, session?: Buffer): Promise<{ session: Buffer; reused: boolean }> {
      return new Promise((resolve, reject) => {
        // The TCP connection first, from `from` (tls.connect's types have no localAddress).
        const tcp = net.connect({ host: '127.0.0.1', port: gw.httpsPort, localAddress: from });
        const options: tls.ConnectionOptions = {
          socket: tcp,
          servername: 'sessions.test',
          maxVersion: 'TLSv1.2',
          rejectUnauthorized: false,
        };
        if (session !== undefined) options.session = session;
        const socket = tls.connect(options);
        const timer = setTimeout(() => {
          socket.destroy();
          reject(new Error('no handshake'));
        }, DEADLINE_MS);
        socket.once('secureConnect', () => {
          clearTimeout(timer);
          const got = socket.getSession();
          const reused = socket.isSessionReused();
          socket.end();
          if (got === undefined) reject(new Error('no session'));
          else resolve({ session: got, reused });
        });
        socket.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
    }

    // nginx refuses a session cache under 8 pages (32k: "session cache is too small"); until session 29
    // keepip took 1k silently (an ALLOWED row here). The least recently used going first is
    // test/gateway/tls-session-cache.test.ts's.
    test('1k is refused as nginx refuses it (under 32k), with a warning; the 10m cache applies and sessions resume', async () => {
      assert.equal(issuesOf(topology, 'ssl-session-cache-size').length, 1);
      const first = await handshake('127.0.0.51');
      assert.equal(first.reused, false);
      let last = first;
      for (let i = 0; i < 24; i++) last = await handshake(`127.0.0.${60 + i}`);
      assert.equal((await handshake('127.0.0.52', last.session)).reused, true, 'the newest resumes');
      assert.equal((await handshake('127.0.0.51', first.session)).reused, true, 'the oldest too, in 10m');
    });
  });

  describe('access-log-params "buffer=64k flush=5m gzip if=$loggable"', SEQUENTIAL, () => {
    let backend: Recorder;
    let gw: TestGateway;
    let dir: string;
    let topology: ReturnType<typeof topologyOf>;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'keepip-cm-keys-'));
      backend = await startRecorder(['echo']);
      topology = topologyOf([
        controllerConfigMap({
          'access-log-params': 'buffer=64k flush=5m gzip if=$loggable',
          'log-format-upstream': 'line $host $request_uri $status',
        }),
        ...serviceOf('echo', backend, ['echo']),
        site('logged', 'echo'),
      ]);
      gw = await startTestGateway(topology, {
        accessLog: createFileLineSink({ path: join(dir, 'access.log') }),
      });
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('gzip and if= are warned and ignored, buffer= and flush= accepted; every line is in the file, uncompressed, without waiting for flush=', async () => {
      const warned = issuesOf(topology, 'access-log-params');
      assert.equal(warned.length, 2, warned.join('\n'));
      assert.ok(warned.every((w) => w.startsWith('warning INVALID_CONFIGMAP_VALUE')));
      assert.ok(warned.some((w) => w.includes('"gzip"')) && warned.some((w) => w.includes('"if=$loggable"')));
      for (const path of ['/l1', '/l2', '/l3']) {
        assert.equal((await request(gw.httpPort, { host: 'logged.test', path })).status, 200);
      }
      // Waits for the file's lines (a signal: the write), bounded far below flush=5m.
      const expected = ['line logged.test /l1 200', 'line logged.test /l2 200', 'line logged.test /l3 200'];
      const deadline = Date.now() + DEADLINE_MS;
      let lines: string[] = [];
      while (Date.now() < deadline) {
        lines = readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter(Boolean);
        if (lines.length >= 3) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(lines, expected);
    });
  });

  describe('gzip-level and brotli-level', SEQUENTIAL, () => {
    let backend: Recorder;
    let gw: TestGateway;
    const random = seededRandom(SEED);
    const words =
      'the quick brown fox jumps over a lazy dog while the gateway keeps every client address header'.split(
        ' ',
      );
    let text = '';
    while (text.length < 16_000)
      text += `${words[Math.floor(random() * words.length)]}${random() < 0.1 ? '.\n' : ' '}`;
    const body = Buffer.from(text);
    const objects = (levels: Record<string, string>): K8sObject[] => [
      controllerConfigMap({ 'use-gzip': 'true', 'enable-brotli': 'true', ...levels }),
      ...serviceOf('page', backend, ['page']),
      site('page', 'page'),
    ];
    before(async () => {
      backend = await startRecorder(['page'], () => ({ status: 200, body, type: 'text/html' }));
      gw = await startTestGateway(topologyOf(objects({ 'gzip-level': '9', 'brotli-level': '11' })));
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
    });

    /** The raw (still encoded) body of GET /, asking for `encoding`. */
    function encoded(encoding: string): Promise<{ coding: string; bytes: Buffer }> {
      return new Promise((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: gw.httpPort,
            path: '/',
            headers: { host: 'page.test', 'accept-encoding': encoding },
            agent: false,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ coding: String(res.headers['content-encoding']), bytes: Buffer.concat(chunks) }),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end();
      });
    }

    test("gzip-level 9 and 1: the level zlib was given is the one set (the gzip header's XFL: 2 slowest, 4 fastest)", async () => {
      const nine = await encoded('gzip');
      assert.equal(nine.coding, 'gzip');
      assert.deepEqual(zlib.gunzipSync(nine.bytes), body);
      assert.equal(nine.bytes[8], 2);
      const br11 = await encoded('br');
      assert.equal(br11.coding, 'br');
      assert.deepEqual(zlib.brotliDecompressSync(br11.bytes), body);

      assert.equal(
        gw.gateway.reload(topologyOf(objects({ 'gzip-level': '1', 'brotli-level': '0' }))).ok,
        true,
      );
      const one = await encoded('gzip');
      assert.deepEqual(zlib.gunzipSync(one.bytes), body);
      assert.equal(one.bytes[8], 4);
      const br0 = await encoded('br');
      assert.deepEqual(zlib.brotliDecompressSync(br0.bytes), body);
      // Quality 11 against 0 on this text: 2.9 KB against 4.4 KB in one piece (zlib here); the
      // bound leaves room for the backend's bytes arriving in several flushed pieces.
      assert.ok(
        br11.bytes.length < br0.bytes.length * 0.85,
        `brotli-level 11: ${br11.bytes.length} bytes, 0: ${br0.bytes.length}`,
      );
    });
  });

  describe(
    'otel-sampler-ratio, otel-sampler-parent-based, opentelemetry-trust-incoming-span, opentelemetry-operation-name',
    SEQUENTIAL,
    () => {
      let backend: Recorder;
      let collector: OtlpReceiver;
      let gw: TestGateway;
      const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
      const objects = (data: Record<string, string>): K8sObject[] => [
        controllerConfigMap({
          'enable-opentelemetry': 'true',
          'otlp-collector-host': '127.0.0.1',
          'otlp-collector-port': String(collector.port),
          'otel-schedule-delay-millis': '50',
          'opentelemetry-operation-name': 'edge_operation',
          'otel-sampler': 'TraceIdRatioBased',
          'otel-sampler-parent-based': 'false',
          ...data,
        }),
        ...serviceOf('echo', backend, ['echo']),
        site('traced', 'echo', {}, '/app'),
      ];
      before(async () => {
        backend = await startRecorder(['echo']);
        collector = await startOtlpReceiver();
        gw = await startTestGateway(topologyOf(objects({ 'otel-sampler-ratio': '0' })));
      });
      after(async () => {
        await gw?.close();
        await backend?.close();
        await collector?.close();
      });

      /** The exported span with this id (the one whose traceparent the backend got). */
      async function exported(spanId: string): Promise<ReceivedSpan> {
        const deadline = Date.now() + DEADLINE_MS;
        for (;;) {
          const found = collector.spans.find((span) => span.spanId === spanId);
          if (found !== undefined) return found;
          const left = deadline - Date.now();
          if (left <= 0) throw new Error(`span ${spanId} not exported; got ${collector.spans.length}`);
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            collector.waitForSpans(collector.spans.length + 1),
            new Promise((resolve) => {
              timer = setTimeout(resolve, left);
            }),
          ]);
          clearTimeout(timer);
        }
      }

      async function traceparentOf(path: string, traceparent?: string): Promise<string[]> {
        const reply = await request(gw.httpPort, {
          host: 'traced.test',
          path: `/app${path}`,
          headers: traceparent ? { traceparent } : {},
        });
        assert.equal(reply.status, 200);
        const sent = backend.seen.find((s) => s.url === `/app${path}`)?.headers.traceparent;
        assert.equal(typeof sent, 'string', `${path}: no traceparent to the backend`);
        return String(sent).split('-');
      }

      test('ratio 0 without a parent-based sampler: flags 00 even under a sampled parent; ratio 1: 01; trust off: a trace of its own', async () => {
        const root0 = await traceparentOf('/r0');
        assert.equal(root0[3], '00');
        const child0 = await traceparentOf('/c0', `00-${CLIENT_TRACE}-00f067aa0ba902b7-01`);
        assert.equal(child0[1], CLIENT_TRACE, 'the trusted parent keeps its trace');
        assert.equal(child0[3], '00', 'not parent-based: the ratio decides');

        assert.equal(gw.gateway.reload(topologyOf(objects({ 'otel-sampler-ratio': '1' }))).ok, true);
        const root1 = await traceparentOf('/r1');
        assert.equal(root1[3], '01');
        // Sampled, so exported: named after the ConfigMap's opentelemetry-operation-name, not the path.
        const span = await exported(root1[2] ?? '');
        assert.equal(span.name, 'edge_operation');
        assert.equal(span.attributes['http.target'], '/app/r1');
        const child1 = await traceparentOf('/c1', `00-${CLIENT_TRACE}-00f067aa0ba902b7-00`);
        assert.equal(child1[1], CLIENT_TRACE);
        assert.equal(child1[3], '01');

        assert.equal(
          gw.gateway.reload(
            topologyOf(objects({ 'otel-sampler-ratio': '1', 'opentelemetry-trust-incoming-span': 'false' })),
          ).ok,
          true,
        );
        const untrusted = await traceparentOf('/u1', `00-${CLIENT_TRACE}-00f067aa0ba902b7-01`);
        assert.notEqual(untrusted[1], CLIENT_TRACE);
        assert.equal(untrusted[3], '01');
      });
    },
  );

  describe('global-auth-signin-redirect-param', SEQUENTIAL, () => {
    let backend: Recorder;
    let auth: Recorder;
    let gw: TestGateway;
    const objects = (param: string): K8sObject[] => [
      controllerConfigMap({
        'global-auth-url': `http://127.0.0.1:${auth.port('auth')}/check`,
        'global-auth-signin': 'http://login.test/start',
        'global-auth-signin-redirect-param': param,
      }),
      ...serviceOf('echo', backend, ['echo']),
      site('app', 'echo'),
    ];
    before(async () => {
      backend = await startRecorder(['echo']);
      auth = await startRecorder(['auth'], () => ({ status: 401, body: 'no' }));
      gw = await startTestGateway(topologyOf(objects('next')));
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
      await auth?.close();
    });

    test('a 401 from the auth service becomes a 302 to the sign-in URL with the named parameter', async () => {
      const reply = await request(gw.httpPort, { host: 'app.test', path: '/p' });
      assert.equal(reply.status, 302);
      // $escaped_request_uri, as ingress-nginx's set_escape_uri writes it: `/` is %2F.
      assert.equal(reply.headers.location, 'http://login.test/start?next=http://app.test%2Fp');
      assert.equal(backend.seen.length, 0);
    });

    test('a value with spaces around it is the name without them (ingress-nginx\'s ConfigMap reader: strings.TrimSpace), not "rd"; an invalid one is warned in one sentence (found here, fixed)', async () => {
      const spaced = topologyOf(objects(' next '));
      const warned = issuesOf(spaced, 'global-auth-signin-redirect-param');
      assert.equal(gw.gateway.reload(spaced).ok, true);
      const reply = await request(gw.httpPort, { host: 'app.test', path: '/q' });
      assert.equal(reply.status, 302);
      assert.equal(reply.headers.location, 'http://login.test/start?next=http://app.test%2Fq');
      assert.deepEqual(warned, []);
      // The warning read "… is not valid; using the default … is not valid; "rd" applies".
      const invalid = issuesOf(topologyOf(objects('a b')), 'global-auth-signin-redirect-param');
      assert.equal(invalid.length, 1);
      assert.match(invalid[0]!, /: "a b" is not valid; "rd" applies$/);
    });
  });

  describe('limit-rate "4" (KB/s)', SEQUENTIAL, () => {
    let backend: Recorder;
    let gw: TestGateway;
    const body = Buffer.alloc(8 * 1024, 'k');
    before(async () => {
      backend = await startRecorder(['big'], () => ({ status: 200, body }));
      gw = await startTestGateway(
        topologyOf([
          controllerConfigMap({ 'limit-rate': '4' }),
          ...serviceOf('big', backend, ['big']),
          site('slow', 'big'),
        ]),
      );
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
    });

    test('8 KiB at 4 KiB/s takes at least 1 s (nginx: one second ahead, then the rate)', async () => {
      const started = performance.now();
      const reply = await request(gw.httpPort, { host: 'slow.test', path: '/' });
      const elapsed = performance.now() - started;
      assert.equal(reply.status, 200);
      assert.equal(reply.body.length, body.length);
      // 8 KiB ≤ 4 KiB × (t + 1) ⇒ t ≥ 1 s (the default, no limit, takes milliseconds); a lower bound,
      // so a slow machine only makes it longer. 100 ms spare for timer rounding.
      assert.ok(elapsed >= 900, `${Math.round(elapsed)} ms`);
    });
  });

  describe('custom-http-errors with disable-proxy-intercept-errors "true"', SEQUENTIAL, () => {
    let backend: Recorder;
    let gw: TestGateway;
    before(async () => {
      backend = await startRecorder(['app'], (_name, seen) => ({
        status: 404,
        body: `app's own 404 for ${seen.url}`,
      }));
      gw = await startTestGateway(
        topologyOf([
          controllerConfigMap({ 'custom-http-errors': '404', 'disable-proxy-intercept-errors': 'true' }),
          ...serviceOf('app', backend, ['app']),
          site('plain', 'app'),
        ]),
      );
    });
    after(async () => {
      await gw?.close();
      await backend?.close();
    });

    test("the backend's own 404 reaches the client, not the catch-all's error page", async () => {
      const reply = await request(gw.httpPort, { host: 'plain.test', path: '/missing' });
      assert.equal(reply.status, 404);
      assert.equal(reply.body, "app's own 404 for /missing");
    });
  });

  describe(
    'proxy-stream-next-upstream(-tries) and proxy-stream-responses, through the controller',
    SEQUENTIAL,
    () => {
      let refusedPort = 0;
      let tcpPort = 0;
      let udpPort = 0;
      let holder: net.Server | null = null;
      let dns: dgram.Socket | null = null;
      const streamConfig = (data: Record<string, string>): Obj => ({
        kind: 'ConfigMap',
        metadata: { namespace: 'ingress-nginx', name: 'ingress-nginx-controller' },
        data: { 'log-format-stream': '$remote_addr $protocol $status "$upstream_addr"', ...data },
      });
      const cluster = webCluster(
        [
          '--disable-leader-election',
          '--update-status=false',
          '--configmap=ingress-nginx/ingress-nginx-controller',
          '--tcp-services-configmap=ingress-nginx/tcp-services',
          '--udp-services-configmap=ingress-nginx/udp-services',
        ],
        {
          prepare: async (api) => {
            // A port 127.0.0.1 holds, so that nothing listens on it at 127.0.0.2-5: they refuse.
            holder = net.createServer();
            await new Promise<void>((resolve) => holder?.listen(0, '127.0.0.1', resolve));
            refusedPort = (holder.address() as net.AddressInfo).port;
            // A UDP endpoint that answers every datagram twice.
            dns = dgram.createSocket('udp4');
            dns.on('message', (msg, from) => {
              dns?.send(`a1:${msg}`, from.port, from.address);
              dns?.send(`a2:${msg}`, from.port, from.address);
            });
            const udpBackend = await new Promise<number>((resolve) =>
              dns?.bind(0, '127.0.0.1', () => resolve(dns?.address().port ?? 0)),
            );
            tcpPort = await freePort();
            udpPort = await freePort();
            api.apply({
              kind: 'Service',
              metadata: { namespace: 'edge', name: 'refusing' },
              spec: { ports: [{ name: 'tcp', port: 7000, targetPort: refusedPort }] },
            });
            api.apply({
              kind: 'EndpointSlice',
              metadata: {
                namespace: 'edge',
                name: 'refusing-1',
                labels: { 'kubernetes.io/service-name': 'refusing' },
              },
              addressType: 'IPv4',
              endpoints: ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'].map((a) => ({
                addresses: [a],
                conditions: { ready: true },
              })),
              ports: [{ name: 'tcp', port: refusedPort }],
            });
            api.apply({
              kind: 'Service',
              metadata: { namespace: 'edge', name: 'twice' },
              spec: { ports: [{ name: 'dns', port: 53, targetPort: 'dns', protocol: 'UDP' }] },
            });
            api.apply({
              kind: 'EndpointSlice',
              metadata: {
                namespace: 'edge',
                name: 'twice-1',
                labels: { 'kubernetes.io/service-name': 'twice' },
              },
              addressType: 'IPv4',
              endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
              ports: [{ name: 'dns', port: udpBackend, protocol: 'UDP' }],
            });
            api.apply({
              kind: 'ConfigMap',
              metadata: { namespace: 'ingress-nginx', name: 'tcp-services' },
              data: { [String(tcpPort)]: 'edge/refusing:7000' },
            });
            api.apply({
              kind: 'ConfigMap',
              metadata: { namespace: 'ingress-nginx', name: 'udp-services' },
              data: { [String(udpPort)]: 'edge/twice:53' },
            });
            api.apply(
              streamConfig({ 'proxy-stream-next-upstream-tries': '2', 'proxy-stream-responses': '2' }),
            );
          },
        },
      );
      after(async () => {
        await new Promise<void>((resolve) => (holder ? holder.close(() => resolve()) : resolve()));
        dns?.close();
      });

      /** Connects from `from`, sends a line, and resolves once the proxy closes the connection. */
      function refusedConnection(from: string): Promise<string> {
        return new Promise((resolve, reject) => {
          const socket = net.connect({ host: '127.0.0.1', port: tcpPort, localAddress: from });
          let text = '';
          socket.on('connect', () => socket.write('hello\n'));
          socket.on('data', (c) => (text += c));
          socket.on('close', () => resolve(text));
          socket.on('error', (error: NodeJS.ErrnoException) => {
            if (error.code !== 'ECONNRESET') reject(error);
          });
        });
      }

      async function lineFrom(from: string): Promise<string> {
        const { ctl } = cluster;
        await ctl.waitFor(() => ctl.accessLines.some((l) => l.startsWith(`${from} `)), `a line from ${from}`);
        return ctl.accessLines.find((l) => l.startsWith(`${from} `)) ?? '';
      }

      const addresses = (line: string) => (/"(.*)"$/.exec(line)?.[1] ?? '').split(', ').filter(Boolean);

      test('tries "2": two refused endpoints, then the client is closed (502); next-upstream "false": one', async () => {
        const { api, ctl } = cluster;
        await ctl.waitFor(
          () => ctl.lines.some((l) => l.startsWith(`tcp-services ${tcpPort}: listening`)),
          'the tcp-services listener',
        );
        assert.equal(await refusedConnection('127.0.0.71'), '');
        const two = await lineFrom('127.0.0.71');
        assert.match(two, /^127\.0\.0\.71 TCP 502 /);
        assert.equal(addresses(two).length, 2, two);
        assert.equal(new Set(addresses(two)).size, 2, two);

        ctl.mark();
        api.apply(streamConfig({ 'proxy-stream-next-upstream': 'false', 'proxy-stream-responses': '2' }));
        await ctl.waitForLine(/^reloaded: config v\d+/);
        assert.equal(await refusedConnection('127.0.0.72'), '');
        const one = await lineFrom('127.0.0.72');
        assert.match(one, /^127\.0\.0\.72 TCP 502 /);
        assert.equal(addresses(one).length, 1, one);
      });

      test('proxy-stream-responses "2": both answers to one datagram reach the client, then the session ends', async () => {
        const { ctl } = cluster;
        await ctl.waitFor(
          () => ctl.lines.some((l) => l.startsWith(`udp-services ${udpPort}: listening`)),
          'the udp-services listener',
        );
        const client = dgram.createSocket('udp4');
        try {
          await new Promise<void>((resolve) => client.bind(0, '127.0.0.73', resolve));
          const answers = await new Promise<string[]>((resolve, reject) => {
            const got: string[] = [];
            const timer = setTimeout(() => reject(new Error(`answers: ${got.join(', ')}`)), DEADLINE_MS);
            client.on('message', (msg) => {
              got.push(msg.toString());
              if (got.length === 2) {
                clearTimeout(timer);
                resolve(got);
              }
            });
            client.send('q', udpPort, '127.0.0.1');
          });
          assert.deepEqual(answers.sort(), ['a1:q', 'a2:q']);
          // The session's line: it ended on its answers, long before proxy-stream-timeout (600s).
          assert.match(await lineFrom('127.0.0.73'), /^127\.0\.0\.73 UDP 200 /);
        } finally {
          client.close();
        }
      });
    },
  );
});
