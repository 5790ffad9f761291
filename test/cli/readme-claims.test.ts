// README.md and docs/ingress-nginx-compat.md "Deliberate differences from ingress-nginx": the claims no
// other test exercised, checked as an operator (the command lines as README shows them, on the repo's
// examples) and an outsider (forged headers from distinct 127.x sources) meet them. Real processes
// (bin/keepip), real sockets on 127.0.0.0/8, ports 0.
//
// Claims checked here (quoted):
// - README "Using it on your own manifests": `keepip pp encode --source 127.0.20.10:51234 --destination
//   127.0.10.1:80 --authority gitea.example.com --crc32c` and `keepip pp decode 0d0a0d0a…2e636f6d` (the
//   hex README shows is what encode prints, and decode reads those fields back);
//   `keepip doctor -f k8s/ --client 10.1.2.3 --host git.example.com` (with examples/seed/before as
//   k8s/); `keepip gateway -f k8s/ --http … --metrics …` (ports 0 here).
// - README: "Every command has `--help`", for every command README lists (controller and manifests
//   included, which the top-level help must list too).
// - README demo transcript, step 5: a client outside the allowlist gets 403 and the error log line
//   `access forbidden by rule, client: 127.0.20.66, server: gitea.example.com, request: "GET /
//   HTTP/1.1", host: "gitea.example.com"` (here against `keepip gateway -f examples/seed/before`).
// - compat difference 4 said "an invalid `proxy-real-ip-cidr` trusts nobody instead of everybody"; found
//   here: after a reload with an invalid value the gateway keeps the previous trust (as nginx refuses the
//   configuration), which may be the warned 0.0.0.0/0 default. The docs now say so; asserted as such.
// - compat difference 5: "gRPC and FastCGI backends are refused (error, 503)" against README "HTTP,
//   HTTPS and gRPC (`backend-protocol: GRPC`/`GRPCS` …) to backends". Found here (documentation, now
//   fixed): gRPC is proxied (as README and the annotation table say); FastCGI is refused with 503.
// - compat difference 20: "`app-root` redirects keep the client's scheme … a trusted
//   `X-Forwarded-Proto` with `use-forwarded-headers`, `https` for a PROXY header to port 443 with
//   `use-proxy-protocol`, else the connection's. Host and path are as ingress-nginx writes them."
// - README: "the access log (each variable of a custom `log-format-upstream`, field by field …
//   `$request_length` and `$body_bytes_sent` count the bytes on the wire)" and "A field nginx takes once
//   (Authorization, …) sent twice is a 400". Found here, fixed: for a request the gateway refuses at its
//   parser, $request_length was the length of the request line without its CRLF (22 for a 360-byte
//   head); nginx 1.22 logs the bytes it read up to the refused line, keepip now the bytes it had read.
//
// Claims already covered elsewhere (not repeated): README demo (test/cli/demo.test.ts:5), doctor on the
// seed and its kubectl lines (test/doctor/cli.test.ts:33), `doctor --json` (test/doctor/cli.test.ts:74),
// lb command line (test/lb/cli.test.ts:29),
// whoami (test/cli/whoami.test.ts:7), invariants I1-I7 (test/security/invariants.test.ts), differences
// 1, 8, 12, 13, 15-18, 24 (the *-differential-nginx tests that cite them), 2 and 6
// (test/e2e/ingress-nginx-e2e-gaps.test.ts), 7 (test/cli/error-codes-behaviour.test.ts), 14
// (test/gateway/gateway-docs-requests.test.ts), 21 (test/controller/tcp-stream.test.ts:133,
// udp-services.test.ts), 22 (test/e2e/gateway-ingress-nginx-metrics.test.ts:90), FCGI's 503
// (test/e2e/ingress-nginx-e2e-gaps.test.ts).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import http from '../../src/node-http.ts';
import { encodeProxyHeader } from '../../src/proxy-protocol/encode.ts';
import {
  controllerConfigMap,
  ingress,
  type K8sObject,
  manifestDir,
  serviceWithEndpoints,
  toYaml,
} from '../fixtures/gateway/manifests.ts';
import { metricSum, scrapeUntil } from '../helpers/metrics.ts';
import { listenTracked, rawExchange, splitResponse } from '../helpers/net.ts';
import { type Running, runKeepip, startKeepip } from '../helpers/process.ts';

/**
 * Differences from what the docs say that are acceptable, each with its reason; the tests check that
 * each is still what is seen (so this table cannot rot).
 */
const ALLOWED = {
  startWithInvalidTrust:
    'difference 4 at start: `keepip gateway` with an invalid proxy-real-ip-cidr serves nothing (exit 1, ' +
    '"cannot serve") instead of serving while trusting nobody; stricter, so fail closed still holds',
  emptyForwardedProto:
    "difference 20: a trusted but empty X-Forwarded-Proto leaves the connection's scheme (http); " +
    'ingress-nginx\'s Lua takes the empty string (not "http") as its scheme and its ssl-redirect reads ' +
    'it as TLS: the narrow reading',
  untrustedForwardedProto:
    "difference 20: ingress-nginx's Lua reads X-Forwarded-Proto from any peer under use-forwarded-headers; " +
    'keepip only from proxy-real-ip-cidr (docs/client-ip.md: forwarded headers only from trusted peers)',
} as const;

const README_PP_HEX =
  '0d0a0d0a000d0a515549540a211100277f00140a7f000a01c822005003000496f9523702001167697465612e6578616d706c652e636f6d';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP/1.1 request from `localAddress` on a fresh connection. */
function get(
  port: number,
  options: { host: string; path?: string; localAddress: string; headers?: Record<string, string> },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path ?? '/',
        localAddress: options.localAddress,
        agent: false,
        headers: { Host: options.host, Connection: 'close', ...options.headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * The one-shot command lines, started at once when the file loads (they run while the gateways below
 * start; each test awaits its own): the file's wall time is then about one process start.
 */
const early = {
  encoded: runKeepip([
    'pp',
    'encode',
    '--source',
    '127.0.20.10:51234',
    '--destination',
    '127.0.10.1:80',
    '--authority',
    'gitea.example.com',
    '--crc32c',
  ]),
  decoded: runKeepip(['pp', 'decode', README_PP_HEX]),
  asked: runKeepip([
    'doctor',
    '-f',
    'examples/seed/before',
    '--client',
    '10.1.2.3',
    '--host',
    'git.example.com',
  ]),
  top: runKeepip(['--help']),
  // The other commands' --help is asked by their own tests (main, lb, doctor, demo, whoami, pp, gateway-cli).
  helps: Promise.all(['up', 'manifests'].map((name) => runKeepip([name, '--help']))),
  badStart: (async () => {
    const bad = manifestDir();
    try {
      bad.write(
        'm.yaml',
        toYaml([
          controllerConfigMap({ 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '127.0.0.1/33' }),
          ...serviceWithEndpoints({ name: 'web', ports: [9] }),
          ingress({ name: 'web', host: 'web.example.com', paths: [{ path: '/', service: 'web', port: 80 }] }),
        ]),
      );
      return await runKeepip(['gateway', '-f', bad.dir, '--http', '127.0.0.1:0'], { timeoutMs: 30_000 });
    } finally {
      bad.remove();
    }
  })(),
};

async function listening(running: Running): Promise<{ http: number; metrics: number | null }> {
  const [, port] = await running.waitFor(/listening http 127\.0\.0\.1:(\d+)/);
  const metrics = running.output().match(/metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/);
  return { http: Number(port), metrics: metrics ? Number(metrics[1]) : null };
}

describe('keepip gateway -f examples/seed/before --http … --metrics … (README), the demo step 5 denial', () => {
  let gateway: Running;
  let ports: { http: number; metrics: number | null };
  before(async () => {
    gateway = startKeepip([
      'gateway',
      '-f',
      'examples/seed/before',
      '--http',
      '127.0.0.1:0',
      '--metrics',
      '127.0.0.1:0',
    ]);
    await gateway.waitFor(/metrics http:\/\/127\.0\.0\.1:\d+\/metrics/);
    ports = await listening(gateway);
  });
  after(async () => {
    await gateway?.stop();
  });

  test('127.0.20.66 gets 403 with the error line the demo shows; /metrics counts it', async () => {
    const reply = await get(ports.http, { host: 'gitea.example.com', localAddress: '127.0.20.66' });
    assert.equal(reply.status, 403);
    await gateway.waitFor(
      /\[error\] \d+#\d+: \*\d+ access forbidden by rule, client: 127\.0\.20\.66, server: gitea\.example\.com, request: "GET \/ HTTP\/1\.1", host: "gitea\.example\.com"/,
    );
    assert.ok(ports.metrics, 'a metrics port');
    await scrapeUntil(
      '127.0.0.1',
      ports.metrics,
      (text) => metricSum(text, 'nginx_ingress_controller_requests', { status: '403' }) >= 1,
      "the 403 is counted under ingress-nginx's name",
    );
  });

  test('a request the gateway refuses at its parser (a second Authorization: 400) logs the bytes it read as $request_length', async () => {
    const head =
      'GET /dup-auth HTTP/1.1\r\nHost: gitea.example.com\r\nUser-Agent: readme-claims\r\n' +
      'Authorization: Basic YTpi\r\nAuthorization: Basic Yzpk\r\nX-Pad: ' +
      'p'.repeat(200) +
      '\r\nConnection: close\r\n\r\n';
    const { received } = await rawExchange({
      host: '127.0.0.1',
      port: ports.http,
      localAddress: '127.0.20.67',
      payload: head,
    });
    assert.match(splitResponse(received).head, /^HTTP\/1\.1 400 /);
    const [, length] = await gateway.waitFor(
      /^127\.0\.20\.67 - - \[[^\]]+\] "GET \/dup-auth HTTP\/1\.1" 400 \d+ "[^"]*" "[^"]*" (\d+) /m,
    );
    // nginx 1.22 logs the bytes it had read when it refused the line (the request line, the fields
    // before the second Authorization, that line): at least the request line and Host, never more
    // than was sent.
    const before = head.indexOf('Authorization: Basic Yzpk');
    assert.ok(
      Number(length) >= before && Number(length) <= head.length,
      'README: "the access log (each variable of a custom `log-format-upstream` …: `$request_length` … count ' +
        `the bytes on the wire)"; ${head.length} bytes sent, ${before} before the refused line, ` +
        `$request_length logged: ${length}`,
    );
  });
});

describe('a gateway with use-forwarded-headers: app-root scheme (20), backend protocols (5), an invalid proxy-real-ip-cidr (4)', () => {
  const dir = manifestDir();
  let gateway: Running;
  let port = 0;
  let web: { port: number; close(): Promise<void> };
  let grpc: http2.Http2Server;
  let grpcPort = 0;
  const grpcSeen: string[] = [];

  const objects = (configMap: Record<string, string>): K8sObject[] => [
    controllerConfigMap({ 'use-forwarded-headers': 'true', ...configMap }),
    ...serviceWithEndpoints({ name: 'web', ports: [web.port] }),
    ...serviceWithEndpoints({ name: 'grpc', ports: [grpcPort] }),
    ingress({
      name: 'web',
      host: 'web.example.com',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'allowlist-source-range': '10.9.9.9/32' },
    }),
    ingress({
      name: 'approot',
      host: 'approot.example.com',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'app-root': '/app' },
    }),
    ingress({
      name: 'fcgi',
      host: 'fcgi.example.com',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'backend-protocol': 'FCGI' },
    }),
    ingress({
      name: 'grpc',
      host: 'grpc.example.com',
      paths: [{ path: '/', service: 'grpc', port: 80 }],
      annotations: { 'backend-protocol': 'GRPC' },
    }),
  ];

  before(async () => {
    web = await listenTracked(
      http.createServer((req, res) => {
        req.resume();
        res.end(`web ${req.url}`);
      }),
    );
    grpc = http2.createServer();
    grpc.on('stream', (stream, headers) => {
      grpcSeen.push(`${headers[':method']} ${headers[':path']} ${headers['content-type']}`);
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end();
    });
    await new Promise<void>((resolve) => grpc.listen(0, '127.0.0.1', resolve));
    grpcPort = (grpc.address() as AddressInfo).port;
    dir.write('m.yaml', toYaml(objects({ 'proxy-real-ip-cidr': '127.0.61.1/32' })));
    gateway = startKeepip(['gateway', '-f', dir.dir, '--http', '127.0.0.1:0']);
    port = (await listening(gateway)).http;
  });
  after(async () => {
    await gateway?.stop();
    await web?.close();
    await new Promise<void>((resolve) => (grpc ? grpc.close(() => resolve()) : resolve()));
    dir.remove();
  });

  test('app-root: a trusted X-Forwarded-Proto https gives https://; host and path as ingress-nginx', async () => {
    const trusted = await get(port, {
      host: 'approot.example.com',
      localAddress: '127.0.61.1',
      headers: { 'X-Forwarded-Proto': 'https' },
    });
    assert.equal(trusted.status, 302);
    assert.equal(trusted.headers.location, 'https://approot.example.com/app');
    const plain = await get(port, { host: 'approot.example.com', localAddress: '127.0.61.1' });
    assert.equal(plain.status, 302);
    assert.equal(plain.headers.location, 'http://approot.example.com/app');
    // Only `/` is app-root's.
    const other = await get(port, { host: 'approot.example.com', path: '/x', localAddress: '127.0.61.1' });
    assert.equal(other.status, 200);
    assert.equal(other.body, 'web /x');
  });

  test(`ALLOWED: ${ALLOWED.untrustedForwardedProto}`, async () => {
    const untrusted = await get(port, {
      host: 'approot.example.com',
      localAddress: '127.0.61.2',
      headers: { 'X-Forwarded-Proto': 'https' },
    });
    assert.equal(untrusted.status, 302);
    assert.equal(untrusted.headers.location, 'http://approot.example.com/app');
  });

  test(`ALLOWED: ${ALLOWED.emptyForwardedProto}`, async () => {
    const empty = await get(port, {
      host: 'approot.example.com',
      localAddress: '127.0.61.1',
      headers: { 'X-Forwarded-Proto': '' },
    });
    assert.equal(empty.status, 302);
    assert.equal(empty.headers.location, 'http://approot.example.com/app');
  });

  test('backend-protocol FCGI answers 503; GRPC is proxied over HTTP/2 (README), not refused (difference 5 says it is)', async () => {
    const fcgi = await get(port, { host: 'fcgi.example.com', path: '/x', localAddress: '127.0.61.3' });
    assert.equal(fcgi.status, 503);
    assert.match(
      gateway.output(),
      /backend protocol FCGI is not supported .*\[UNSUPPORTED_BACKEND_PROTOCOL\]/,
    );
    assert.doesNotMatch(gateway.output(), /backend protocol GRPC is not supported/);

    const session = http2.connect(`http://127.0.0.1:${port}`, {
      createConnection: () => net.connect({ host: '127.0.0.1', port, localAddress: '127.0.61.3' }),
    });
    try {
      const answer = await new Promise<{ status: number; trailers: http2.IncomingHttpHeaders }>(
        (resolve, reject) => {
          const stream = session.request({
            ':method': 'POST',
            ':path': '/pkg.Svc/Call',
            ':authority': 'grpc.example.com',
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          let status = 0;
          stream.on('response', (headers) => {
            status = Number(headers[':status']);
          });
          stream.on('trailers', (trailers) => resolve({ status, trailers }));
          stream.on('end', () => resolve({ status, trailers: {} }));
          stream.on('error', reject);
          stream.setTimeout(15_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
          stream.resume();
          stream.end(Buffer.from([0, 0, 0, 0, 0]));
        },
      );
      assert.equal(answer.status, 200);
      assert.equal(answer.trailers['grpc-status'], '0');
      assert.deepEqual(grpcSeen, ['POST /pkg.Svc/Call application/grpc']);
    } finally {
      session.destroy();
    }
  });

  test(`ALLOWED: ${ALLOWED.startWithInvalidTrust}`, async () => {
    const run = await early.badStart;
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr + run.stdout, /cannot serve /);
    assert.match(run.stderr + run.stdout, /"127\.0\.0\.1\/33" is not a valid .*\[INVALID_TRUSTED_CIDR\]/);
    assert.doesNotMatch(run.stdout + run.stderr, /listening http/);
  });

  // Last: it reloads the gateway.
  test('difference 4: a reload with an invalid proxy-real-ip-cidr is rejected whole and keeps the trust it had (as nginx); the corrected one applies', async () => {
    // v2: the key removed, so the default 0.0.0.0/0 is trusted (and warned about: difference 2).
    dir.write('m.yaml', toYaml(objects({})));
    await gateway.waitFor(/reloaded: config v2/);
    const forged = {
      host: 'web.example.com',
      localAddress: '127.0.61.9',
      headers: { 'X-Forwarded-For': '10.9.9.9' },
    };
    assert.equal((await get(port, forged)).status, 200, 'the default trusts every peer (documented, warned)');
    // The operator sets proxy-real-ip-cidr, with a typo: never read as trusting everybody; the reload is
    // refused and v2 goes on (found here: the docs said "trusts nobody", which no runtime did).
    dir.write('m.yaml', toYaml(objects({ 'proxy-real-ip-cidr': '127.0.0.1/33' })));
    await gateway.waitFor(/reload rejected[^\n]*still serving config v2/);
    await gateway.waitFor(/\[INVALID_TRUSTED_CIDR\]/);
    assert.equal((await get(port, forged)).status, 200, 'v2, with its trust, still serves');
    // Corrected: the forged header from a peer outside the list is not believed.
    dir.write('m.yaml', toYaml(objects({ 'proxy-real-ip-cidr': '127.0.0.1/32' })));
    await gateway.waitFor(/reloaded: config v3/);
    assert.equal((await get(port, forged)).status, 403);
  });
});

describe('app-root behind a load balancer that sends PROXY headers (difference 20)', () => {
  const dir = manifestDir();
  let gateway: Running;
  let port = 0;
  let web: { port: number; close(): Promise<void> };
  before(async () => {
    web = await listenTracked(
      http.createServer((req, res) => {
        req.resume();
        res.end('web');
      }),
    );
    dir.write(
      'm.yaml',
      toYaml([
        controllerConfigMap({ 'use-proxy-protocol': 'true', 'proxy-real-ip-cidr': '127.0.62.1/32' }),
        ...serviceWithEndpoints({ name: 'web', ports: [web.port] }),
        ingress({
          name: 'approot',
          host: 'approot.example.com',
          paths: [{ path: '/', service: 'web', port: 80 }],
          annotations: { 'app-root': '/app' },
        }),
      ]),
    );
    gateway = startKeepip(['gateway', '-f', dir.dir, '--http', '127.0.0.1:0']);
    port = (await listening(gateway)).http;
  });
  after(async () => {
    await gateway?.stop();
    await web?.close();
    dir.remove();
  });

  /** The Location the gateway answers `/` with, behind a PROXY header naming `destinationPort`. */
  async function locationVia(version: 1 | 2, destinationPort: number): Promise<string> {
    const header = encodeProxyHeader({
      version,
      source: { address: '198.51.100.7', port: 40000 },
      destination: { address: '10.0.0.1', port: destinationPort },
    });
    const request = 'GET / HTTP/1.1\r\nHost: approot.example.com\r\nConnection: close\r\n\r\n';
    const { received, closedByServer } = await rawExchange({
      host: '127.0.0.1',
      port,
      localAddress: '127.0.62.1',
      payload: Buffer.concat([header, Buffer.from(request)]),
    });
    assert.ok(closedByServer, 'Connection: close is honoured');
    const { head } = splitResponse(received);
    assert.match(head, /^HTTP\/1\.1 302 /);
    return /^location: (.*)$/im.exec(head)?.[1] ?? '(none)';
  }

  test("a PROXY header to port 443 gives https://, any other port the connection's http://", async () => {
    assert.equal(await locationVia(1, 443), 'https://approot.example.com/app');
    assert.equal(await locationVia(2, 443), 'https://approot.example.com/app');
    assert.equal(await locationVia(1, 80), 'http://approot.example.com/app');
    assert.equal(await locationVia(2, 8443), 'http://approot.example.com/app');
  });
});

describe('README command lines, as shown (ports 0 instead of fixed ones)', () => {
  test('pp encode prints the hex README shows; pp decode of that hex reads the same fields back', async () => {
    const [encoded, decoded] = await Promise.all([early.encoded, early.decoded]);
    assert.equal(encoded.code, 0, encoded.stderr);
    assert.equal(encoded.stdout.trim(), README_PP_HEX);
    assert.equal(decoded.code, 0, decoded.stderr);
    const json = JSON.parse(decoded.stdout);
    assert.equal(json.version, 2);
    assert.equal(json.command, 'PROXY');
    assert.equal(json.protocol, 'TCP4');
    assert.deepEqual(json.source, { address: '127.0.20.10', port: 51234 });
    assert.deepEqual(json.destination, { address: '127.0.10.1', port: 80 });
    assert.equal(json.authority, 'gitea.example.com');
    assert.match(json.crc32c, /^[0-9a-f]{8}$/);
  });

  test('doctor --client 10.1.2.3 --host git.example.com runs on the seed (a host it has no rule for)', async () => {
    const asked = await early.asked;
    // No rule for git.example.com in the seed: a prediction (404), never a usage error. (`--json` on the
    // seed: test/doctor/cli.test.ts:74.)
    assert.ok(asked.code === 0 || asked.code === 1, `exit ${asked.code}: ${asked.stderr}`);
    assert.match(asked.stdout, /^keepip doctor: 404/m);
    assert.match(asked.stdout, /from 10\.1\.2\.3/);
  });

  test('every command README lists is in `keepip --help` and has its own --help (exit 0)', async () => {
    const commands = ['gateway', 'controller', 'manifests', 'lb', 'doctor', 'up', 'demo', 'whoami', 'pp'];
    const top = await early.top;
    assert.equal(top.code, 0);
    for (const name of commands) assert.match(top.stdout, new RegExp(`^  ${name} `, 'm'), name);
    for (const help of await early.helps) {
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /Usage/i);
    }
  });
});
