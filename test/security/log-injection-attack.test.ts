// What a client can write into keepip's access log, error log, syslog datagrams, metrics and spans,
// over real sockets on 127.x. The rule everywhere: the client's bytes stay inside the field they belong
// to, and one request (or one event) is one line. nginx's escaping is the reference: `escape=default`
// writes `"`, `\`, bytes < 0x20 and >= 0x7f as \xHH, `escape=json` as JSON string escapes, and its
// error log quotes client values unescaped (keepip adds: control bytes as \xHH there too). The access
// log lines are compared byte for byte with a real nginx fed the same bytes. Unit tests of the
// escaping functions are in test/gateway/access-log.test.ts; the three escapings of $http_user_agent
// and $remote_user end to end in test/e2e/gateway-log-escaping.test.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import http from '../../src/node-http.ts';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Topology } from '../../src/config/model.ts';
import { DEFAULT_REQUEST_METRICS } from '../../src/config/request-metrics.ts';
import { METHODS } from '../../src/gateway/h1-request.ts';
import type { LineSink } from '../../src/gateway/line-sink.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import { controllerConfigMap, ingress, topologyOf, webApp } from '../fixtures/gateway/manifests.ts';
import type { K8sObject } from '../fixtures/gateway/manifests.ts';
import { type OtlpReceiver, startOtlpReceiver } from '../fixtures/otlp/receiver.ts';
import { connectRawH2, FLAG, FRAME, frame, headerBlock, requestFields } from '../helpers/h2-raw.ts';
import { rawExchange } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';

const HOST = 'web.example.com';

// ---------------------------------------------------------------------------------------------
// Sinks, peers, requests

interface Lines extends LineSink {
  lines: string[];
  /** Resolves with the lines once there are at least `count` (bounded). */
  waitCount(count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves with the first line containing `marker` (bounded). */
  waitMarker(marker: string, timeoutMs?: number): Promise<string>;
}

function lines(): Lines {
  const all: string[] = [];
  const waiters = new Set<() => void>();
  const wait = <T>(found: () => T | undefined, what: string, timeoutMs: number) =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const hit = found();
        if (hit === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${what}; lines:\n${all.map((l) => JSON.stringify(l)).join('\n')}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    lines: all,
    dropped: 0,
    write(line) {
      all.push(line);
      for (const waiter of [...waiters]) waiter();
    },
    flush: async () => {},
    close: async () => {},
    waitCount: (count, timeoutMs = 10_000) =>
      wait(() => (all.length >= count ? all : undefined), `${count} lines`, timeoutMs),
    waitMarker: (marker, timeoutMs = 10_000) =>
      wait(() => all.find((l) => l.includes(marker)), `line with ${marker}`, timeoutMs),
  };
}

/** A backend that answers 200 to anything it can parse. */
async function startBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One raw request (latin1: one char per byte); resolves with the status (0: none) once the peer closed. */
async function send(port: number, head: string): Promise<number> {
  const reply = await rawExchange({ host: '127.0.0.1', port, payload: Buffer.from(head, 'latin1') });
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(reply.received.toString('latin1'))?.[1] ?? 0);
}

/** A request head with these header lines (values as bytes), closing the connection. */
function head(target: string, headers: readonly (readonly [string, string])[], method = 'GET'): string {
  const lines = headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return `${method} ${target} HTTP/1.1\r\nHost: ${HOST}\r\n${lines}Connection: close\r\n\r\n`;
}

/** `Authorization: Basic` for a user name given as bytes (password `pw`). */
function basicFor(user: string): string {
  return `Basic ${Buffer.from(`${user}:pw`, 'latin1').toString('base64')}`;
}

/** HTTP/2 requests over TLS, hand-framed (values any bytes); resolves once each stream was answered. */
async function sendH2(port: number, requests: readonly (readonly [string, string])[][]): Promise<void> {
  const h2 = await connectRawH2({ port, servername: HOST });
  try {
    for (const [i, fields] of requests.entries()) {
      const id = 2 * i + 1;
      h2.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, headerBlock(fields)));
      await h2.waitFrame(
        (f) => f.streamId === id && (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM),
      );
    }
  } finally {
    h2.close();
  }
}

/** nginx's escape=default read back: \xHH to the byte, as a latin1 string. */
function unescapeDefault(text: string): string {
  return text.replace(/\\x([0-9A-F]{2})/g, (_m, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/** Bytes (a latin1 string) as the UTF-8 text keepip's escape=json writes them. */
const asText = (bytes: string) => Buffer.from(bytes, 'latin1').toString('utf8');

/** Where two long lines part, for a readable failure. */
function firstDifference(ours: string, theirs: string): string {
  let i = 0;
  while (i < ours.length && ours[i] === theirs[i]) i++;
  return `lines part at ${i}: keepip ${JSON.stringify(ours.slice(i - 40, i + 60))}, nginx ${JSON.stringify(theirs.slice(i - 40, i + 60))}`;
}

/** Every char printable ASCII: what nginx's escape=default leaves of any value. */
const PRINTABLE = /^[\x20-\x7e]*$/;

// ---------------------------------------------------------------------------------------------
// Hostile values (latin1 strings: one char per byte)

/** A user agent with quotes, backslashes, a tab, UTF-8, a lone lead byte, 0xFF and a fake syslog header. */
const UA = 'Mozilla/5.0 "quoted" \\back\tslash \xc3\xa9 \xc3 \xff <13>Jan  1 00:00:00 forged nginx: x';
const REFERER = 'http://r.example/"; x="y\\';
const COOKIE = 'sid=a"b\\c\xff; other=1';
const XFF = '1.2.3.4", "evil\\';
const REQUEST_ID = 'id"\\\xff';
/**
 * A Basic user name (no `:`, no space: the default format writes $remote_user unquoted, so a space
 * would shift the fields, in nginx too) with a line feed, CR, NUL, ESC and a forged line after it.
 */
const EVIL_USER = 'ad"m\\in\n2026/01/01_[error]_forged\r\x00\x1b[31m\xff';
/** 4 KB of the bytes escaping expands most (not ending in a tab: OWS, which keepip trims and nginx keeps). */
const LONG_UA = `${'"\\\xff\t'.repeat(1024)}end`;
/** Decoded by $uri: LF, CR, TAB, DEL, a quote, a backslash, 0xFF and é. */
const ENCODED_PATH = '/a%0Ab%0D%0Ac%09d%7Fe%22f%5C%FF%C3%A9';

/** The hostile HTTP/1.1 requests both nginx and keepip take; each carries `X-Mark: <marker>`. */
function hostileRequests(): { marker: string; head: string }[] {
  const common = (marker: string, ua: string): [string, string][] => [
    ['User-Agent', ua],
    ['Referer', REFERER],
    ['Cookie', COOKIE],
    ['X-Forwarded-For', XFF],
    ['X-Request-ID', REQUEST_ID],
    ['Authorization', basicFor(EVIL_USER)],
    ['X-Mark', marker],
  ];
  return [
    { marker: 'mark-1', head: head('/p"q\\r/?q=a"b\\c&x=%22%0A', common('mark-1', UA)) },
    { marker: 'mark-2', head: head(`${ENCODED_PATH}?q=%0D%0A`, common('mark-2', UA)) },
    { marker: 'mark-3', head: head('/long', common('mark-3', LONG_UA)) },
  ];
}

/** The client's fields, in a format nginx and keepip both take (`$http_x_mark` last). */
const CLIENT_FIELDS_FORMAT =
  '"$request" "$http_referer" "$http_user_agent" "$remote_user" "$http_x_forwarded_for" ' +
  '"$cookie_sid" "$arg_q" "$uri" "$args" "$request_uri" "$http_x_request_id" $http_x_mark';

// ---------------------------------------------------------------------------------------------
// Gateways

function gatewayTopology(config: Record<string, string>, backendPort: number, extra: K8sObject[] = []) {
  return topologyOf([controllerConfigMap(config), ...webApp(backendPort), ...extra]);
}

async function startWithSinks(topology: Topology) {
  const access = lines();
  const errors = lines();
  const gw = await startTestGateway(topology, { accessLog: access, errorLog: errors });
  return { gw, access, errors };
}

describe('access log: the client writes values, never lines or fields', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  before(async () => {
    backend = await startBackend();
  });
  after(() => backend.close());

  test('escape=default: the client fields are byte for byte what nginx 1.2x writes for the same bytes', async () => {
    // No nginx is a failing test, never a skip (development.md).
    const ngx: RunningNginx = await startNginx({
      freePorts: 1,
      http: (dir, [port]) =>
        `log_format t '${CLIENT_FIELDS_FORMAT}';
           server { listen 127.0.0.1:${port}; access_log ${dir}/t.log t; location / { return 200 "ok"; } }`,
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
    const { gw, access } = await startWithSinks(
      gatewayTopology({ 'log-format-upstream': CLIENT_FIELDS_FORMAT }, backend.port),
    );
    try {
      for (const { marker, head: request } of hostileRequests()) {
        await send(ngx.ports[0]!, request);
        await send(gw.httpPort, request);
        const theirs = (await ngx.waitForFile('t.log', new RegExp(`^.* ${marker}$`, 'm')))[0];
        const ours = await access.waitMarker(marker);
        assert.equal(ours, theirs, firstDifference(ours, theirs));
        assert.match(ours, PRINTABLE);
      }
    } finally {
      await gw.close();
      await ngx.stop();
    }
  });

  test("ingress-nginx's default log-format-upstream: one line per request, HTTP/1.1 and HTTP/2, the quoted fields read back as sent", async () => {
    const { gw, access } = await startWithSinks(gatewayTopology({ 'use-http2': 'true' }, backend.port));
    // The default format: $remote_user and $req_id unquoted, the request, referrer and user agent quoted.
    const DEFAULT_LINE =
      /^(\S+) - (\S+) \[[^\]]+\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)" (\d+) (\d+\.\d{3}) \[([^\]]*)\] \[([^\]]*)\] (\S+) (\S+) (\S+) (\S+) (\S+)$/;
    try {
      const requests = hostileRequests();
      for (const { head: request } of requests) await send(gw.httpPort, request);
      const h2Path = '/h2/"\\\xff%0A?q=\xc3\xa9';
      await sendH2(gw.httpsPort, [
        requestFields(HOST, h2Path, 'GET', [
          ['user-agent', UA],
          ['referer', REFERER],
        ]),
        requestFields(HOST, '/h2-method', 'INVENTED', [['user-agent', 'x"\\\xff']]),
      ]);
      const logged = await access.waitCount(requests.length + 2);
      assert.equal(logged.length, requests.length + 2, 'one line per request');
      for (const line of logged) {
        assert.match(line, PRINTABLE);
        assert.match(line, DEFAULT_LINE, line.slice(0, 200));
      }
      const fields = logged.map((line) => DEFAULT_LINE.exec(line)!);
      assert.equal(unescapeDefault(fields[0]![2]!), EVIL_USER);
      assert.equal(unescapeDefault(fields[0]![6]!), REFERER);
      assert.equal(unescapeDefault(fields[0]![7]!), UA);
      assert.equal(unescapeDefault(fields[2]![7]!), LONG_UA, 'the 4 KB value whole, no escape cut in half');
      assert.equal(unescapeDefault(fields[3]![3]!), `GET ${h2Path} HTTP/2.0`);
      assert.equal(unescapeDefault(fields[4]![3]!), 'INVENTED /h2-method HTTP/2.0');
      // X-Request-ID is $req_id, unquoted (as ingress-nginx): its quote and backslash stay escaped.
      assert.equal(unescapeDefault(fields[0]![16]!), REQUEST_ID);
    } finally {
      await gw.close();
    }
  });

  test('log-format-escape-json with a JSON format: every line parses, each client value in its own field, decoded', async () => {
    const format =
      '{"user":"$remote_user","request":"$request","method":"$request_method","uri":"$uri",' +
      '"request_uri":"$request_uri","args":"$args","q":"$arg_q","status":$status,' +
      '"referer":"$http_referer","ua":"$http_user_agent","xff":"$http_x_forwarded_for",' +
      '"sid":"$cookie_sid","req_id":"$req_id","mark":"$http_x_mark"}';
    const { gw, access } = await startWithSinks(
      gatewayTopology(
        { 'log-format-escape-json': 'true', 'log-format-upstream': format, 'use-http2': 'true' },
        backend.port,
      ),
    );
    try {
      const requests = hostileRequests();
      for (const { head: request } of requests) await send(gw.httpPort, request);
      await sendH2(gw.httpsPort, [
        requestFields(HOST, '/h2/"\\\xff?q=\xc3\xa9', 'INVENTED', [
          ['user-agent', UA],
          ['x-mark', 'mark-h2'],
        ]),
      ]);
      const parsed = (await access.waitCount(requests.length + 1)).map(
        (line) => JSON.parse(line) as Record<string, string | number>,
      );
      assert.equal(parsed.length, requests.length + 1, 'one line per request');
      const [first, second, third, fourth] = parsed;
      assert.deepEqual(
        [first!.user, first!.ua, first!.referer, first!.xff, first!.sid, first!.req_id, first!.q],
        [EVIL_USER, UA, REFERER, XFF, 'a"b\\c\xff', REQUEST_ID, 'a"b\\c'].map(asText),
      );
      assert.equal(first!.request, 'GET /p"q\\r/?q=a"b\\c&x=%22%0A HTTP/1.1');
      assert.equal(typeof first!.status, 'number');
      assert.equal(second!.uri, asText('/a\nb\r\nc\td\x7fe"f\\\xff\xc3\xa9'));
      assert.equal(third!.ua, asText(LONG_UA));
      assert.deepEqual([fourth!.method, fourth!.ua, fourth!.mark], ['INVENTED', asText(UA), 'mark-h2']);
      assert.equal(fourth!.q, 'é');
    } finally {
      await gw.close();
    }
  });

  test('log-format-escape-none: values as sent, yet a decoded %0A in $uri or a line feed in $remote_user never starts a line', async () => {
    const format = 'uri=$uri user=$remote_user args=$args ua=$http_user_agent mark=$http_x_mark';
    const { gw, access } = await startWithSinks(
      gatewayTopology({ 'log-format-escape-none': 'true', 'log-format-upstream': format }, backend.port),
    );
    try {
      const requests = hostileRequests();
      for (const { head: request } of requests) await send(gw.httpPort, request);
      const logged = await access.waitCount(requests.length);
      assert.equal(logged.length, requests.length);
      for (const line of logged) assert.doesNotMatch(line, /[\x00-\x1f\x7f]/, JSON.stringify(line));
      // nginx's escape=none writes `"` and `\` as they are (a JSON format with it can be forged, by design).
      // UTF-8 as text, an invalid byte as U+FFFD (nginx would write the raw byte).
      assert.equal(
        logged[1]!.split(' ua=')[0],
        'uri=/a\\x0Ab\\x0D\\x0Ac\\x09d\\x7Fe"f\\\ufffdé user=ad"m\\in\\x0A2026/01/01_[error]_forged\\x0D\\x00\\x1B[31m\ufffd args=q=%0D%0A',
      );
    } finally {
      await gw.close();
    }
  });
});

/** The first line of a refused request as keepip logs it: bytes up to CR/LF, at most 256. */
function firstLineOf(bytes: string): string {
  const rest = bytes.replace(/^[\r\n]+/, '');
  const end = rest.search(/[\r\n]/);
  return rest.slice(0, end < 0 ? rest.length : end).slice(0, 256);
}

/** Requests keepip's parser refuses, each with bytes a log reader must never see raw. */
const REFUSED: readonly string[] = [
  `GET /a\x00b HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
  `GET /\x7f\x1b[2J\x85\xe2\x80\xa8\x0b\x0c HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
  `G"E\\T / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
  `GET /${'"\\'.repeat(4500)} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
  `GET / HTTP/1.1\r\nHost: ${HOST}\r\nUser-Agent: a\x01b\x1b[31m\r\n\r\n`,
  // A TLS record on the plain port: every byte value but CR and LF.
  `\x16\x03\x01${Array.from({ length: 256 }, (_v, b) => String.fromCharCode(b))
    .filter((c) => c !== '\r' && c !== '\n')
    .join('')}\r\n\r\n`,
];

describe('access log: requests refused before routing', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  before(async () => {
    backend = await startBackend();
  });
  after(() => backend.close());

  test('a refused request line (NUL, DEL, ESC, NEL, U+2028, VT/FF, 9 KB, TLS bytes) is one escaped line, default and JSON', async () => {
    const plain = await startWithSinks(gatewayTopology({}, backend.port));
    const json = await startWithSinks(
      gatewayTopology(
        {
          'log-format-escape-json': 'true',
          'log-format-upstream': '{"request":"$request","status":$status,"ua":"$http_user_agent"}',
        },
        backend.port,
      ),
    );
    try {
      for (const request of REFUSED) {
        assert.ok([400, 414].includes(await send(plain.gw.httpPort, request)), JSON.stringify(request));
        await send(json.gw.httpPort, request);
      }
      const plainLines = await plain.access.waitCount(REFUSED.length);
      const jsonLines = await json.access.waitCount(REFUSED.length);
      assert.equal(plainLines.length, REFUSED.length);
      assert.equal(jsonLines.length, REFUSED.length);
      for (const [i, request] of REFUSED.entries()) {
        const line = plainLines[i]!;
        assert.match(line, PRINTABLE);
        const field = /^\S+ - - \[[^\]]+\] "([^"]*)" (\d{3}) /.exec(line);
        assert.ok(field, line);
        assert.equal(unescapeDefault(field[1]!), firstLineOf(request));
        const parsed = JSON.parse(jsonLines[i]!) as { request: string; status: number };
        assert.equal(parsed.request, asText(firstLineOf(request)));
        assert.equal(parsed.status, Number(field[2]));
      }
    } finally {
      await plain.gw.close();
      await json.gw.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Error log, syslog

/** nginx's error log line: `2026/12/05 12:00:00 [error] 31#31: *7 message`. */
const ERROR_LINE = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$/;

/** A Secret with one htpasswd entry, `foo` / `bar` ({SHA}). */
function htpasswdSecret(): K8sObject {
  const line = `foo:{SHA}${createHash('sha1').update('bar').digest('base64')}\n`;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'htpasswd', namespace: 'default' },
    type: 'Opaque',
    data: { auth: Buffer.from(line).toString('base64') },
  };
}

/** deny.example: only 10.0.0.0/8 (every test client is refused); guarded.example: basic auth. */
function guardedIngresses(): K8sObject[] {
  return [
    htpasswdSecret(),
    ingress({
      name: 'deny',
      host: 'deny.example',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'whitelist-source-range': '10.0.0.0/8' },
    }),
    ingress({
      name: 'guarded',
      host: 'guarded.example',
      paths: [{ path: '/', service: 'web', port: 80 }],
      annotations: { 'auth-type': 'basic', 'auth-secret': 'htpasswd', 'auth-realm': 'r' },
    }),
  ];
}

const DENIED_REQUEST =
  'GET /x"y\\z?a=%0A HTTP/1.1\r\nHost: deny.example\r\nReferer: r"\t\xff\\\r\nConnection: close\r\n\r\n';

describe('error log: client values quoted, never a line of their own', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: TestGateway;
  let errors: Lines;
  before(async () => {
    backend = await startBackend();
    const started = await startWithSinks(
      gatewayTopology({ 'error-log-level': 'info' }, backend.port, guardedIngresses()),
    );
    gw = started.gw;
    errors = started.errors;
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  test('a denied request with a hostile target and Referer is one "access forbidden by rule" line, tab as \\x09', async () => {
    assert.equal(await send(gw.httpPort, DENIED_REQUEST), 403);
    const line = await errors.waitMarker('access forbidden by rule');
    assert.doesNotMatch(line, /[\x00-\x1f\x7f]/);
    assert.equal(
      ERROR_LINE.exec(line)?.[2],
      'access forbidden by rule, client: 127.0.0.1, server: deny.example, ' +
        'request: "GET /x"y\\z?a=%0A HTTP/1.1", host: "deny.example", referrer: "r"\\x09\xff\\"',
    );
  });

  test('an invalid Host is one "client sent invalid request" line', async () => {
    const status = await send(
      gw.httpPort,
      'GET /h"\\ HTTP/1.1\r\nHost: a\tb"\\c\xff\r\nConnection: close\r\n\r\n',
    );
    assert.equal(status, 400);
    const line = await errors.waitMarker('GET /h"\\ HTTP/1.1');
    assert.doesNotMatch(line, /[\x00-\x1f\x7f]/);
    assert.match(line, ERROR_LINE);
  });

  test('a Basic user name with CR/LF cannot forge an error log line (error-log-level info, user not found)', async () => {
    // A user name cannot hold `:` (it ends at the first one): the forged time uses dots.
    const forged = 'nobody\n2026/12/05 12.00.00 [error] 1#1 *1 forged, client 10.9.9.9\r\x1b[2K';
    const status = await send(
      gw.httpPort,
      `GET /g HTTP/1.1\r\nHost: guarded.example\r\nAuthorization: ${basicFor(forged)}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(status, 401);
    const line = await errors.waitMarker('was not found');
    // nginx 1.22 writes this user raw (`user "nobody<LF>2026/…" was not found in "…"`); keepip's error
    // log promises control bytes as \xHH (src/gateway/error-log.ts logSafe).
    assert.doesNotMatch(line, /[\x00-\x1f\x7f]/, JSON.stringify(line));
    assert.ok(line.includes('user "nobody\\x0A2026/12/05 12.00.00 [error]'), line);
  });
});

/** UDP datagrams received on 127.0.0.1 (port 0). */
async function startSyslogReceiver() {
  const socket = dgram.createSocket('udp4');
  const datagrams: Buffer[] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (message) => {
    datagrams.push(message);
    for (const waiter of [...waiters]) waiter();
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    datagrams,
    /** Resolves once every predicate matched some datagram (bounded). */
    waitFor(predicates: readonly ((text: string) => boolean)[], timeoutMs = 10_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const texts = datagrams.map((d) => d.toString('latin1'));
          if (!predicates.every((p) => texts.some(p))) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `datagrams so far:\n${datagrams.map((d) => JSON.stringify(d.toString('latin1'))).join('\n')}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

describe('syslog (enable-syslog)', () => {
  test('one datagram per line, the RFC 3164 header first with local7, no CR/LF/NUL, a client "<13>" only in the body', async () => {
    const backend = await startBackend();
    const receiver = await startSyslogReceiver();
    const { gw } = await startWithSinks(
      gatewayTopology(
        {
          'enable-syslog': 'true',
          'syslog-host': '127.0.0.1',
          'syslog-port': String(receiver.port),
          'error-log-level': 'info',
        },
        backend.port,
        guardedIngresses(),
      ),
    );
    try {
      for (const { head: request } of hostileRequests()) await send(gw.httpPort, request);
      assert.equal(await send(gw.httpPort, DENIED_REQUEST), 403);
      await send(gw.httpPort, REFUSED[1]!);
      await receiver.waitFor([
        (t) => t.includes('access forbidden by rule'),
        (t) => t.includes('\\x1B[2J'),
        ...['"GET /p\\x22q', '"GET /a%0Ab', '"GET /long'].map((m) => (t: string) => t.includes(m)),
      ]);
      const HEADER = /^<(\d{1,3})>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ nginx: /;
      for (const datagram of receiver.datagrams) {
        const text = datagram.toString('latin1');
        assert.ok(
          !datagram.includes(0x0a) && !datagram.includes(0x0d) && !datagram.includes(0x00),
          JSON.stringify(text),
        );
        const header = HEADER.exec(text);
        assert.ok(header, text.slice(0, 120));
        // local7: 190 for access lines (info), 187 for [error], 190 for [info].
        assert.ok(['190', '187'].includes(header[1]!), text.slice(0, 120));
        const forged = text.indexOf('<13>');
        assert.ok(forged === -1 || forged > header[0].length, 'the client PRI is not a header');
      }
    } finally {
      await gw.close();
      await receiver.close();
      await backend.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Metrics, tracing

interface Sample {
  name: string;
  labels: Record<string, string>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE_LINE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|NaN|[-+]Inf)(?: -?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g;

/** The Prometheus text exposition format, read strictly: a malformed line throws. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment !== null) {
      assert.match(comment[2]!, METRIC_NAME, line);
      if (comment[1] === 'TYPE') {
        assert.match(comment[3]!, /^(counter|gauge|histogram|summary|untyped)$/, line);
        typed.add(comment[2]!);
      } else assert.doesNotMatch(comment[3]!, /\\(?![\\n])/, line);
      continue;
    }
    const sample = SAMPLE_LINE.exec(line);
    assert.ok(sample, `not an exposition line: ${JSON.stringify(line)}`);
    const name = sample[1]!;
    assert.ok(
      typed.has(name) || typed.has(name.replace(/_(bucket|sum|count|total)$/, '')),
      `${name} has no TYPE`,
    );
    const labels: Record<string, string> = {};
    for (const [, key, value] of (sample[2] ?? '').matchAll(LABEL)) labels[key!] = value!;
    samples.push({ name, labels });
  }
  return samples;
}

/** Distinct series (name and labels) of the families a client's requests feed. */
function requestSeries(samples: readonly Sample[]): Set<string> {
  const families = /^(nginx_ingress_controller_|keepip_gateway_(requests|upstream))/;
  return new Set(samples.filter((s) => families.test(s.name)).map((s) => JSON.stringify(s)));
}

describe('metrics: client input is neither a series nor a line of /metrics', () => {
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gw: TestGateway;
  let n = 0;
  const token = () => `rnd${++n}x${Math.random().toString(36).slice(2, 8)}`;
  /** An upper-case token (what HTTP/2 lets through as a method, as nginx): letters only. */
  const methodToken = () =>
    `RND${Array.from({ length: 6 }, () => String.fromCharCode(65 + Math.floor(Math.random() * 26))).join('')}`;
  before(async () => {
    backend = await startBackend();
    const topology = gatewayTopology({ 'use-http2': 'true' }, backend.port, [
      ingress({ name: 'wild', host: '*.wild.example', paths: [{ path: '/', service: 'web', port: 80 }] }),
    ]);
    // --metrics-per-host and --metrics-per-undefined-host: the most a client can reach.
    const requestMetrics = { ...DEFAULT_REQUEST_METRICS, perHost: true, perUndefinedHost: true };
    ({ gw } = await startWithSinks({ ...topology, gateway: { ...topology.gateway, requestMetrics } }));
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  /** Random hosts (undefined, wildcard), paths, methods (HTTP/1.1 names, HTTP/2 tokens); then the series. */
  async function randomRound(): Promise<{ series: Set<string>; samples: Sample[] }> {
    for (const method of ['GET', 'POST', 'PROPFIND']) {
      await send(
        gw.httpPort,
        `${method} /${token()} HTTP/1.1\r\nHost: ${token()}.wild.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      await send(
        gw.httpPort,
        `${method} /${token()}?${token()} HTTP/1.1\r\nHost: ${token()}.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      await send(gw.httpPort, head(`/${token()}`, [['User-Agent', token()]], method));
    }
    await sendH2(gw.httpsPort, [
      requestFields(HOST, `/${token()}`, methodToken()),
      requestFields(`${token()}.wild.example`, `/${token()}`, methodToken()),
      requestFields(`${token()}.example`, `/"}\\${token()}`, 'GET'),
    ]);
    const samples = parseExposition(await gw.gateway.metrics.registry.metrics());
    return { series: requestSeries(samples), samples };
  }

  test('random Host headers, wildcard subdomains, paths and methods add no series (per-host and per-undefined-host on)', async () => {
    await randomRound(); // every kind of series once
    const second = await randomRound();
    const third = await randomRound();
    assert.deepEqual(
      [...third.series].filter((s) => !second.series.has(s)),
      [],
    );
    // The invented HTTP/2 methods were counted, as OTHER.
    assert.ok(
      third.samples.some(
        (s) => s.name === 'nginx_ingress_controller_requests' && s.labels.method === 'OTHER',
      ),
    );
    for (const { labels } of third.samples) {
      for (const value of Object.values(labels)) assert.doesNotMatch(value, /rnd/i, JSON.stringify(labels));
      if (labels.method !== undefined)
        assert.ok(METHODS.has(labels.method) || labels.method === 'OTHER', labels.method);
    }
  });

  test('after hostile requests the whole /metrics text still parses strictly', async () => {
    for (const { head: request } of hostileRequests()) await send(gw.httpPort, request);
    await send(gw.httpPort, `GET /"}\n HTTP/1.1\r\nHost: a"}\\.example\r\n\r\n`);
    const text = await gw.gateway.metrics.registry.metrics();
    assert.ok(parseExposition(text).length > 0);
  });
});

describe('tracing (enable-opentelemetry): hostile targets and hosts', () => {
  test('spans for a hostile http.target, http.host and method are exported, values as received, no exporter error', async () => {
    const backend = await startBackend();
    const collector: OtlpReceiver = await startOtlpReceiver();
    const { gw, errors } = await startWithSinks(
      gatewayTopology(
        {
          'enable-opentelemetry': 'true',
          'otlp-collector-host': '127.0.0.1',
          'otlp-collector-port': String(collector.port),
          'otel-schedule-delay-millis': '50',
          'use-http2': 'true',
        },
        backend.port,
      ),
    );
    try {
      const h1Target = '/t1/"\\{}<>|^%0A%22%C3?q="\\%00';
      await send(
        gw.httpPort,
        `GET ${h1Target} HTTP/1.1\r\nHost: WEB.example.com.\r\nConnection: close\r\n\r\n`,
      );
      const h2Target = '/t2/\xff"\\\xc3\xa9';
      await sendH2(gw.httpsPort, [requestFields(HOST, h2Target, 'INVENTED', [['user-agent', UA]])]);
      const spans = await collector.waitForSpans(2);
      const byTarget = (prefix: string) =>
        spans.find((s) => String(s.attributes['http.target']).startsWith(prefix));
      assert.equal(byTarget('/t1/')?.attributes['http.target'], h1Target);
      assert.equal(byTarget('/t1/')?.attributes['http.host'], 'WEB.example.com.');
      // The target's bytes as code points (a byte string sent as UTF-8): readable, valid protobuf.
      assert.equal(byTarget('/t2/')?.attributes['http.target'], h2Target);
      assert.equal(byTarget('/t2/')?.attributes['http.method'], 'INVENTED');
      assert.deepEqual(
        errors.lines.filter((l) => l.includes('opentelemetry')),
        [],
      );
    } finally {
      await gw.close();
      await collector.close();
      await backend.close();
    }
  });
});
