// The syslog datagrams keepip sends (ConfigMap enable-syslog, syslog-host, syslog-port) against the ones
// nginx 1.22 sends for the same requests, nginx configured as ingress-nginx's template renders those keys
// (rootfs/etc/nginx/template/nginx.tmpl, http block):
//   log_format upstreaminfo '{{ $cfg.LogFormatUpstream }}';
//   map $request_uri $loggable { {{ range $cfg.SkipAccessLogURLs }} {{ . }} 0;{{ end }} default 1; }
//   access_log syslog:server={{ $cfg.SyslogHost }}:{{ $cfg.SyslogPort }} upstreaminfo if=$loggable;
//   error_log syslog:server={{ $cfg.SyslogHost }}:{{ $cfg.SyslogPort }} {{ $cfg.ErrorLogLevel }};
// (the stream block keeps its file logs: tcp-services lines never go to syslog there).
//
// The claims checked (docs/gateway.md, "Syslog"; docs/ingress-nginx-compat.md, enable-syslog row):
//   "both logs go to that server over UDP instead of stdout and stderr, as ingress-nginx's
//    `access_log syslog:server=…`: one datagram per line, `<190>Dec  5 02:04:09 <hostname> nginx: <line>`
//    (facility local7, severity info for access lines, the line's level for error lines: `<187>` for
//    `[error]`). The tag stays `nginx` so that syslog rules written for ingress-nginx keep matching."
//   "a host name is resolved once per change" / "The host is an IP address or a DNS name (resolved once
//    per change); an invalid one keeps the logs on stdout/stderr with a warning"
//   "As with nginx, a datagram that is lost is not resent." / "Lines are not retried: UDP, as nginx"
//
// Each side sends to its own UDP receiver on 127.0.0.1 (port 0). The same requests (each from its own
// 127.x source, which keys its datagrams: `client: 127.x,` in error lines, the access line starts with
// it) go to both: allowed with quotes/backslash/tab/non-ASCII in fields, denied (403), unknown host
// (404), a backend that closes (502), a 400 with control bytes, a long URI, a long User-Agent, an
// access line longer than a UDP datagram can carry, a skip-access-log-urls path. A last request is the
// barrier: its access datagram arriving proves every earlier line was sent (one socket per side, over
// loopback: in order). Datagrams are compared one by one: PRI exactly, the RFC 3164 timestamp by shape
// (`Mmm dd hh:mm:ss`, day padded with a space), the hostname exactly (both run on this machine), the
// tag, and the line: access lines exactly, error lines after their time, pid#tid and *connection.
// A second pair runs with error-log-level crit and syslog-host `localhost` (a name, not an address).
// Differences that are acceptable are in ALLOWED, each checked to still be what is seen.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from '../../src/node-http.ts';
import net from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Topology } from '../../src/config/model.ts';
import { startTestGateway, type TestGateway } from '../fixtures/gateway/harness.ts';
import {
  controllerConfigMap,
  ingress,
  serviceWithEndpoints,
  topologyOf,
} from '../fixtures/gateway/manifests.ts';
import { listenTracked, rawExchange } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';
import { requireBinary } from '../helpers/process.ts';

const HOST = 'syslog.test';
/** A log-format-upstream whose every field is deterministic, so access lines compare exactly. */
const FORMAT = '$remote_addr "$request" $status "$http_user_agent" "$http_referer" "$args"';
/** The largest UDP payload over IPv4. */
const MAX_UDP = 65_507;
/** nginx's NGX_MAX_ERROR_STR (2048) less the line feed its error log reserves. */
const NGINX_ERROR_BODY_MAX = 2047;

const HEADER =
  /^<(\d{1,3})>(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ( [1-9]|[12]\d|3[01]) ([01]\d|2[0-3]):[0-5]\d:[0-5]\d (\S+) nginx: /;
const ERROR_PREFIX = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[([a-z]+)\] \d+#\d+: (?:\*\d+ )?/;

// ---------------------------------------------------------------------------------------------
// The receivers

interface Receiver {
  port: number;
  datagrams: Buffer[];
  /** Resolves once a datagram (latin1 text) satisfies `pred`; rejects after a generous bound. */
  until(pred: (text: string) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

async function startReceiver(port = 0): Promise<Receiver> {
  const socket = dgram.createSocket('udp4');
  const datagrams: Buffer[] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (message) => {
    datagrams.push(message);
    for (const waiter of [...waiters]) waiter();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  let closed = false;
  return {
    port: socket.address().port,
    datagrams,
    until(pred, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!datagrams.some((d) => pred(d.toString('latin1')))) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const seen = datagrams.map((d) => JSON.stringify(d.toString('latin1').slice(0, 200)));
          reject(new Error(`no such datagram after ${timeoutMs} ms; so far:\n${seen.join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      closed
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            closed = true;
            socket.close(() => resolve());
          }),
  };
}

// ---------------------------------------------------------------------------------------------
// One nginx and one keepip gateway, configured alike

interface Pair {
  ngx: RunningNginx;
  gw: TestGateway;
  /** nginx's receiver, keepip's receiver. */
  rn: Receiver;
  rk: Receiver;
  close(): Promise<void>;
}

interface Backends {
  web: number;
  closer: number;
  close(): Promise<void>;
}

async function startBackends(): Promise<Backends> {
  const web = await listenTracked(http.createServer((_req, res) => res.end('ok')));
  // Reads the request, then closes without an answer: nginx's and keepip's 502 "upstream prematurely closed".
  const closer = await listenTracked(net.createServer((socket) => socket.on('data', () => socket.destroy())));
  return {
    web: web.port,
    closer: closer.port,
    close: async () => {
      await web.close();
      await closer.close();
    },
  };
}

function nginxHttp(o: { port: number; target: string; level: string; backends: Backends }): string {
  return `
  log_format upstreaminfo '${FORMAT}';
  map $request_uri $loggable { /skip 0; default 1; }
  access_log syslog:server=${o.target} upstreaminfo if=$loggable;
  error_log syslog:server=${o.target} ${o.level};
  underscores_in_headers off; ignore_invalid_headers on;
  client_header_buffer_size 1k; large_client_header_buffers 4 8k;
  server { listen 127.0.0.1:${o.port} default_server; server_name _;
    # ingress-nginx: the default backend's location logs only with enable-access-log-for-default-backend.
    location / { access_log off; return 404; } }
  server { listen 127.0.0.1:${o.port}; server_name ${HOST};
    location / { proxy_pass http://127.0.0.1:${o.backends.web}; }
    location /denied { allow 10.0.0.0/8; deny all; proxy_pass http://127.0.0.1:${o.backends.web}; }
    location /bad { proxy_pass http://127.0.0.1:${o.backends.closer}; }
  }`;
}

function keepipTopology(data: Record<string, string>, backends: Backends): Topology {
  return topologyOf([
    controllerConfigMap({ 'log-format-upstream': FORMAT, 'skip-access-log-urls': '/skip', ...data }),
    ...serviceWithEndpoints({ name: 'web', ports: [backends.web] }),
    ...serviceWithEndpoints({ name: 'closer', ports: [backends.closer] }),
    ingress({
      name: 'web',
      host: HOST,
      paths: [
        { path: '/', service: 'web', port: 80 },
        { path: '/bad', service: 'closer', port: 80 },
      ],
    }),
    ingress({
      name: 'denied',
      host: HOST,
      paths: [{ path: '/denied', service: 'web', port: 80 }],
      annotations: { 'whitelist-source-range': '10.0.0.0/8' },
    }),
  ]);
}

async function startPair(backends: Backends, o: { host: string; level: string }): Promise<Pair> {
  const rn = await startReceiver();
  const rk = await startReceiver();
  let ngx: RunningNginx | undefined;
  let gw: TestGateway | undefined;
  try {
    ngx = await startNginx({
      freePorts: 1,
      http: (_dir, [port]) =>
        nginxHttp({ port: port!, target: `${o.host}:${rn.port}`, level: o.level, backends }),
      waitFor: ([port]) => [{ host: '127.0.0.1', port: port! }],
    });
    const data = {
      'enable-syslog': 'true',
      'syslog-host': o.host,
      'syslog-port': String(rk.port),
      'error-log-level': o.level,
    };
    gw = await startTestGateway(keepipTopology(data, backends));
  } catch (error) {
    await ngx?.stop();
    await rn.close();
    await rk.close();
    throw error;
  }
  const pair: Pair = {
    ngx,
    gw,
    rn,
    rk,
    // The receivers as they are then: the ICMP test replaces them.
    close: async () => {
      await pair.gw.close();
      await pair.ngx.stop();
      await pair.rn.close();
      await pair.rk.close();
    },
  };
  return pair;
}

// ---------------------------------------------------------------------------------------------
// Probes

interface Probe {
  name: string;
  /** The request's bytes, as latin1 text. */
  head: string;
  /** The 127.x source: keys the probe's datagrams. */
  source: string;
  status: number;
}

const req = (target: string, source: string, status: number, name: string, extra = ''): Probe => ({
  name,
  source,
  status,
  head: `GET ${target} HTTP/1.1\r\nHost: ${HOST}\r\n${extra}Connection: close\r\n\r\n`,
});

const PROBES: readonly Probe[] = [
  req(
    '/p-ok',
    '127.0.0.11',
    200,
    'allowed, quote/backslash/tab/non-ASCII',
    'User-Agent: a"b\\c\td \xe9\xff\r\nReferer: r"\\\r\n',
  ),
  req('/denied/p-den?x="y"', '127.0.0.12', 403, 'denied 403 with a quote in the query'),
  {
    name: 'unknown host 404: not logged (enable-access-log-for-default-backend false)',
    source: '127.0.0.13',
    status: 404,
    head: 'GET /p-404 HTTP/1.1\r\nHost: nope.test\r\nConnection: close\r\n\r\n',
  },
  req('/bad/p-502', '127.0.0.14', 502, 'backend closes: 502 and its error line'),
  req(`/denied/p-long${'A'.repeat(4000)}`, '127.0.0.16', 403, 'long URI: 4 KB error line'),
  req(
    '/p-longua',
    '127.0.0.17',
    200,
    'long User-Agent (28 KB escaped)',
    `User-Agent: ${'\xe9'.repeat(7000)}\r\n`,
  ),
  req('/p-c1', '127.0.0.18', 400, 'control byte in a header: 400', 'User-Agent: a\x01b\r\n'),
  req('/skip', '127.0.0.19', 200, 'skip-access-log-urls: no access line'),
];

/**
 * An access line longer than a UDP datagram can carry, in a head under keepip's 16 KB limit: 4 KB of `"` in
 * the query (logged twice: $request, $args) + 2 x 5 KB of 0xE9 in headers, each byte escaped as \xHH (raw
 * non-ASCII in the target is a 400 in keepip, docs/gateway.md).
 */
const OVERSIZE = req(
  `/p-over?${'"'.repeat(4000)}`,
  '127.0.0.20',
  200,
  'access line over 64 KB',
  `User-Agent: ${'\xe9'.repeat(5000)}\r\nReferer: ${'\xe9'.repeat(5000)}\r\n`,
);

const BARRIER = req('/p-barrier', '127.0.0.30', 200, 'barrier');

async function send(port: number, probe: Probe): Promise<number> {
  const reply = await rawExchange({
    host: '127.0.0.1',
    port,
    payload: Buffer.from(probe.head, 'latin1'),
    localAddress: probe.source,
  });
  const status = /^HTTP\/1\.1 (\d{3})/.exec(reply.received.toString('latin1'));
  return status ? Number(status[1]) : 0;
}

/** Sends every probe to both, then the barrier; resolves once both receivers have the barrier's line. */
async function drive(pair: Pair, probes: readonly Probe[]): Promise<Map<string, [number, number]>> {
  const statuses = new Map<string, [number, number]>();
  for (const probe of [...probes, BARRIER]) {
    statuses.set(probe.name, [await send(pair.ngx.ports[0]!, probe), await send(pair.gw.httpPort, probe)]);
  }
  const barrier = (t: string) => t.includes(`nginx: ${BARRIER.source} "GET /p-barrier `);
  await pair.rn.until(barrier);
  await pair.rk.until(barrier);
  return statuses;
}

// ---------------------------------------------------------------------------------------------
// Reading datagrams

interface Datagram {
  raw: Buffer;
  pri: number;
  host: string;
  /** The line after `nginx: `, as latin1 (byte for byte). */
  body: string;
  kind: 'access' | 'error';
  /** The error line's [level]; '' for access lines. */
  level: string;
  /** The error line without its time, pid#tid and *connection; the access line as is. */
  norm: string;
}

function parse(raw: Buffer): Datagram {
  const text = raw.toString('latin1');
  const header = HEADER.exec(text);
  assert.ok(header, `not an RFC 3164 nginx datagram: ${JSON.stringify(text.slice(0, 120))}`);
  const body = text.slice(header[0].length);
  const error = ERROR_PREFIX.exec(body);
  return {
    raw,
    pri: Number(header[1]),
    host: header[5]!,
    body,
    kind: error ? 'error' : 'access',
    level: error ? error[1]! : '',
    norm: error ? `[${error[1]}] ${body.slice(error[0].length)}` : body,
  };
}

/** The probe's datagrams, in arrival order. */
function of(receiver: Receiver, probe: Probe): Datagram[] {
  return receiver.datagrams
    .map(parse)
    .filter((d) => d.body.startsWith(`${probe.source} `) || d.body.includes(`client: ${probe.source},`));
}

const show = (ds: readonly Datagram[]) =>
  ds.map((d) => `  <${d.pri}> ${JSON.stringify(d.norm.slice(0, 160))} (${d.raw.length} bytes)`).join('\n');

// ---------------------------------------------------------------------------------------------
// ALLOWED: the differences seen, each with its reason; each test below checks that it is still so.

const ALLOWED = {
  errorLineCap: {
    probe: 'long URI: 4 KB error line',
    nginx:
      'the error line cut at 2047 bytes (NGX_MAX_ERROR_STR 2048 less its line feed), its `", host: "…"` lost',
    keepip: 'the whole error line in one datagram (below the UDP maximum): the same text, then the rest',
    reason:
      'keepip writes the same line it writes to stderr (its error log has no 2 KB cap); the datagram is still one record with a correct PRI, only longer. docs/gateway.md "Syslog": "an error line goes whole (nginx cuts it at 2,047 bytes …)"',
  },
  oversizeAccessLine: {
    probe: 'access line over 64 KB',
    nginx:
      'no access datagram (send() fails with EMSGSIZE), a `[warn] … send() to syslog failed while logging request` datagram (<188>) instead',
    keepip:
      "the access datagram cut to 65,507 bytes, header and the line's start intact (src/gateway/syslog.ts MAX_DATAGRAM)",
    reason:
      'keepip keeps the client, request and status of the line where nginx loses it; the cut line is one record with its PRI. docs/gateway.md "Syslog": "an access line over a datagram\'s 65,507 bytes is sent cut to that size"',
  },
  refused400Headers: {
    probe: 'control byte in a header: 400',
    nginx: 'the 400 line carries the User-Agent it read, `"a\\x01b"` (escaped)',
    keepip: 'the 400 line has `"-"` for the header fields of the request it refused',
    reason:
      'the access line of a request refused while parsing (test/security/access-log-differential-nginx.test.ts reads such 400s by their own rule); no raw control byte on either side.',
  },
  invalidPort: {
    values: ['0', '70000', 'abc'],
    nginx:
      '`syslog:server=…:0` and `…:70000` fail `nginx -t` ("invalid port in syslog server"): ingress-nginx keeps its previous configuration; `abc` is not an int for ingress-nginx\'s ConfigMap decoder, which keeps 514',
    keepip: 'an INVALID_* issue naming syslog-port, and the port 514 kept, the rest of the ConfigMap applied',
    reason:
      'keepip\'s rule for a bad number in the ConfigMap (docs/ingress-nginx-compat.md, e.g. gzip-level: "A bad level or length keeps the default with a warning").',
  },
  invalidHost: {
    values: ['bad host', '127.0.0.1:5140'],
    nginx: 'the rendered `syslog:server=bad host:514` / `…:5140:514` fails `nginx -t`: no reload',
    keepip: 'a warning naming syslog-host, and the logs kept on stdout/stderr',
    reason:
      'docs/ingress-nginx-compat.md, enable-syslog: "The host is an IP address or a DNS name …; an invalid one keeps the logs on stdout/stderr with a warning".',
  },
  ipv6Host: {
    values: ['::1'],
    nginx:
      'ingress-nginx renders `syslog:server=::1:514`, which nginx refuses ("invalid port in syslog server")',
    keepip: 'sends to [::1]:514 (the address read as one)',
    reason:
      'keepip serves what the operator meant where nginx refuses the configuration; no line is misread.',
  },
} as const;

// ---------------------------------------------------------------------------------------------

describe('syslog datagrams against nginx 1.22 (enable-syslog, error-log-level notice, syslog-host 127.0.0.1)', () => {
  let backends: Backends;
  let pair: Pair;
  let statuses: Map<string, [number, number]>;

  before(async () => {
    backends = await startBackends();
    pair = await startPair(backends, { host: '127.0.0.1', level: 'notice' });
    statuses = await drive(pair, [...PROBES, OVERSIZE]);
  });
  after(async () => {
    await pair?.close();
    await backends?.close();
  });

  test('both answer every probe alike (so their lines are comparable)', () => {
    for (const [name, [n, k]] of statuses) assert.equal(k, n, `${name}: nginx ${n}, keepip ${k}`);
    for (const probe of [...PROBES, OVERSIZE])
      assert.equal(statuses.get(probe.name)?.[0], probe.status, probe.name);
  });

  test('every datagram: RFC 3164 header, local7, the tag nginx, this host name as nginx writes it, one line with no CR/LF/NUL', () => {
    const nginxHosts = new Set(pair.rn.datagrams.map((d) => parse(d).host));
    assert.deepEqual([...nginxHosts], [hostname().toLowerCase()]);
    for (const [who, receiver] of [
      ['nginx', pair.rn],
      ['keepip', pair.rk],
    ] as const) {
      assert.ok(receiver.datagrams.length > 0, who);
      for (const raw of receiver.datagrams) {
        const d = parse(raw);
        assert.equal(d.host, hostname().toLowerCase(), `${who}: host`);
        assert.ok(d.pri >= 184 && d.pri <= 191, `${who}: facility local7: <${d.pri}>`);
        if (d.kind === 'access')
          assert.equal(d.pri, 190, `${who}: access lines at info: ${d.norm.slice(0, 80)}`);
        else
          assert.equal(
            d.pri,
            184 + ['emerg', 'alert', 'crit', 'error', 'warn', 'notice', 'info', 'debug'].indexOf(d.level),
          );
        for (const byte of [0x0a, 0x0d, 0x00])
          assert.ok(!raw.includes(byte), `${who}: byte ${byte} in ${JSON.stringify(d.body.slice(0, 120))}`);
        assert.ok(raw.length <= MAX_UDP, `${who}: ${raw.length} bytes`);
      }
    }
  });

  const compared = PROBES.filter(
    (p) => p.name !== ALLOWED.errorLineCap.probe && p.name !== ALLOWED.refused400Headers.probe,
  );
  for (const probe of compared) {
    test(`datagram by datagram: ${probe.name}`, () => {
      const n = of(pair.rn, probe);
      const k = of(pair.rk, probe);
      assert.deepEqual(
        k.map((d) => [d.pri, d.norm]),
        n.map((d) => [d.pri, d.norm]),
        `nginx:\n${show(n)}\nkeepip:\n${show(k)}`,
      );
      if (probe.name.startsWith('skip') || probe.name.startsWith('unknown host')) assert.equal(n.length, 0);
      else assert.ok(n.length > 0, 'nginx sent something');
    });
  }

  test(`ALLOWED errorLineCap: ${ALLOWED.errorLineCap.keepip}`, () => {
    const probe = PROBES.find((p) => p.name === ALLOWED.errorLineCap.probe)!;
    const [nErr, ...nRest] = of(pair.rn, probe);
    const [kErr, ...kRest] = of(pair.rk, probe);
    assert.ok(nErr && kErr, `nginx:\n${show(of(pair.rn, probe))}\nkeepip:\n${show(of(pair.rk, probe))}`);
    assert.equal([nErr.pri, kErr.pri].join(), '187,187');
    assert.equal(nErr.body.length, NGINX_ERROR_BODY_MAX, 'nginx cuts at its error buffer');
    assert.ok(kErr.norm.startsWith(nErr.norm), 'keepip: the same text…');
    assert.ok(kErr.norm.endsWith(`, host: "${HOST}"`), '…then the rest of the line');
    assert.deepEqual(
      kRest.map((d) => [d.pri, d.norm]),
      nRest.map((d) => [d.pri, d.norm]),
    );
  });

  test(`ALLOWED refused400Headers: ${ALLOWED.refused400Headers.keepip}`, () => {
    const probe = PROBES.find((p) => p.name === ALLOWED.refused400Headers.probe)!;
    const n = of(pair.rn, probe);
    const k = of(pair.rk, probe);
    assert.deepEqual(
      n.map((d) => [d.pri, d.norm]),
      [[190, `${probe.source} "GET /p-c1 HTTP/1.1" 400 "a\\x01b" "-" "-"`]],
    );
    assert.deepEqual(
      k.map((d) => [d.pri, d.norm]),
      [[190, `${probe.source} "GET /p-c1 HTTP/1.1" 400 "-" "-" "-"`]],
    );
  });

  test(`ALLOWED oversizeAccessLine: ${ALLOWED.oversizeAccessLine.keepip}`, () => {
    const n = of(pair.rn, OVERSIZE);
    const k = of(pair.rk, OVERSIZE);
    const where = `nginx:\n${show(n)}\nkeepip:\n${show(k)}`;
    assert.deepEqual(
      n.map((d) => [d.pri, d.kind]),
      [[188, 'error']],
      where,
    );
    assert.match(
      n[0]!.norm,
      /^\[warn\] send\(\) to syslog failed while logging request, client: 127\.0\.0\.20,/,
    );
    assert.equal(k.length, 1, where);
    assert.equal(k[0]!.pri, 190);
    assert.equal(k[0]!.raw.length, MAX_UDP);
    assert.ok(k[0]!.body.startsWith(`${OVERSIZE.source} "GET /p-over?\\x22\\x22`), where);
  });

  test('the receiver port closed (ICMP port unreachable): no crash, and later lines are sent again', async () => {
    const probes = [1, 2, 3].map((i) => req(`/p-icmp${i}`, `127.0.0.${40 + i}`, 200, `icmp ${i}`));
    const ports = [pair.rn.port, pair.rk.port];
    await pair.rn.close();
    await pair.rk.close();
    // Lines sent while nothing listens: the first draws the ICMP error, the next meets it on send().
    for (const probe of probes) {
      assert.equal(await send(pair.ngx.ports[0]!, probe), 200);
      assert.equal(await send(pair.gw.httpPort, probe), 200);
    }
    pair.rn = await startReceiver(ports[0]);
    pair.rk = await startReceiver(ports[1]);
    const later = req('/p-icmp-after', '127.0.0.45', 200, 'icmp after');
    // A datagram may still be lost to the error each side met, so send until a line arrives (bounded).
    for (const [receiver, port] of [
      [pair.rn, pair.ngx.ports[0]!],
      [pair.rk, pair.gw.httpPort],
    ] as const) {
      let arrived = false;
      const seen = receiver.until((t) => t.includes('"GET /p-icmp-after ')).then(() => (arrived = true));
      for (let i = 0; i < 20 && !arrived; i++) {
        assert.equal(await send(port, later), 200);
        await Promise.race([seen, new Promise((resolve) => setTimeout(resolve, 250))]);
      }
      await seen;
    }
  });
});

describe('error-log-level crit and syslog-host a name (localhost)', () => {
  let backends: Backends;
  let pair: Pair;

  before(async () => {
    backends = await startBackends();
    pair = await startPair(backends, { host: 'localhost', level: 'crit' });
    await drive(pair, PROBES);
  });
  after(async () => {
    await pair?.close();
    await backends?.close();
  });

  test("no error line below crit from either; the access lines the same, to the name's address", () => {
    for (const [who, receiver] of [
      ['nginx', pair.rn],
      ['keepip', pair.rk],
    ] as const) {
      const errors = receiver.datagrams.map(parse).filter((d) => d.kind === 'error');
      assert.deepEqual(
        errors.map((d) => d.norm),
        [],
        who,
      );
    }
    for (const probe of PROBES.filter((p) => p.name !== ALLOWED.refused400Headers.probe)) {
      const n = of(pair.rn, probe);
      const k = of(pair.rk, probe);
      assert.deepEqual(
        k.map((d) => [d.pri, d.norm]),
        n.map((d) => [d.pri, d.norm]),
        probe.name,
      );
    }
  });
});

describe('invalid syslog-port / syslog-host: nginx refuses what ingress-nginx renders', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keepip-syslog-t-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** nginx -t of the http block ingress-nginx renders for this target: null when accepted, else the emerg line. */
  const nginxRefuses = (target: string): string | null => {
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      `events {}\nhttp {\n  access_log syslog:server=${target} combined;\n  error_log syslog:server=${target} notice;\n}\n`,
    );
    try {
      execFileSync(requireBinary('nginx'), ['-t', '-q', '-p', dir, '-e', join(dir, 'e.log'), '-c', conf], {
        stdio: 'pipe',
      });
      return null;
    } catch (error) {
      return String((error as { stderr?: Buffer }).stderr);
    }
  };
  const keepip = (data: Record<string, string>) => {
    const topology = keepipTopology(
      { 'enable-syslog': 'true', ...data },
      { web: 1, closer: 2, close: async () => {} },
    );
    return {
      syslog: topology.gateway.settings.syslog,
      issues: topology.issues.map((i) => JSON.stringify(i)).filter((t) => t.includes('syslog')),
    };
  };

  test(`ALLOWED invalidPort: ${ALLOWED.invalidPort.keepip}`, () => {
    for (const value of ALLOWED.invalidPort.values) {
      if (value !== 'abc')
        assert.match(nginxRefuses(`127.0.0.1:${value}`) ?? '', /invalid port in syslog server/, value);
      const k = keepip({ 'syslog-host': '127.0.0.1', 'syslog-port': value });
      assert.deepEqual(k.syslog, { host: '127.0.0.1', port: 514 }, value);
      assert.equal(k.issues.length, 1, `${value}: ${k.issues.join('\n')}`);
      assert.match(k.issues[0]!, /syslog-port/);
    }
    assert.equal(nginxRefuses('127.0.0.1:514'), null, 'a valid one passes nginx -t');
  });

  test(`ALLOWED invalidHost: ${ALLOWED.invalidHost.keepip}`, () => {
    for (const value of ALLOWED.invalidHost.values) {
      assert.notEqual(nginxRefuses(`${value}:514`), null, value);
      const k = keepip({ 'syslog-host': value });
      assert.equal(k.syslog, undefined, value);
      assert.equal(k.issues.length, 1, `${value}: ${k.issues.join('\n')}`);
      assert.match(k.issues[0]!, /syslog-host/);
    }
  });

  test(`ALLOWED ipv6Host: ${ALLOWED.ipv6Host.keepip}`, () => {
    assert.match(nginxRefuses('::1:514') ?? '', /invalid port in syslog server/);
    assert.deepEqual(keepip({ 'syslog-host': '::1' }).syslog, { host: '::1', port: 514 });
  });
});
