// gRPC proxying (backend-protocol GRPC), keepip against real nginx 1.22 configured as ingress-nginx's
// template renders such a location (rootfs/etc/nginx/template/nginx.tmpl, the mirror's HEAD): the
// listener with HTTP/2 (`listen … ssl http2`, and `listen … http2` for cleartext prior knowledge: nginx
// 1.22 has no `http2 on`), then in the location the `$pass_access_scheme` / `$best_http_host` / `$pass_port`
// variables, the allowlist / denylist (`allow …; deny all;`), `client_max_body_size`, the
// `grpc_set_header` lines ($proxySetHeader is grpc_set_header for GRPC: Host, Upgrade, Connection,
// X-Request-ID, X-Real-IP, X-Forwarded-For/-Host/-Port/-Proto/-Scheme, X-Scheme,
// X-Original-Forwarded-For/-Host, Proxy ""), grpc_connect/send/read_timeout from proxy-*-timeout, and
// `grpc_pass grpc://` to an upstream with keepalive (the balancer's). ingress-nginx's http-level
// settings that decide which metadata passes are rendered too (underscores_in_headers off,
// ignore_invalid_headers on, large_client_header_buffers 4 8k), and the HSTS that lua_ingress.header()
// sets on every https answer as `add_header Strict-Transport-Security … always` (no Lua in this nginx).
//
// One nginx, one keepip gateway, recording HTTP/2 backends (port 0): `svc` (unary echo, server
// streaming, statuses in trailers and trailers-only answers, an answer without grpc-status, a non-gRPC
// 500, trailers nginx hides), `svcs` (the same over TLS, for GRPCS), `reset` (RST_STREAM before the
// head, and after a message), `close` (closes its connection before the head, and after a message) and
// `hang` (never answers), plus `down` (nothing listens).
// Each probe goes to both at once over TLS (ALPN h2) or h2c, from a chosen 127.x source; compared:
// what the backend receives (:method, :path, :authority, every metadata key and value, the forwarded
// headers as the template sets them) and what the client receives (HTTP status, headers, grpc-status,
// grpc-message, trailers, the messages, how the stream ended), and the status a gRPC client derives
// from it (gRPC's HTTP-to-gRPC mapping, as grpc-js applies it; for the failures also read by grpc-js
// itself).
//
// A difference where keepip is less safe (a forged forwarded header nginx replaces, a denied source let
// through, backend data nginx does not pass, a hang where nginx answers, OK where nginx reports an
// error) fails; one in the ALLOWED table (keepip stricter, or documented in docs/gateway.md /
// docs/ingress-nginx-compat.md, or equivalent by the gRPC spec; each entry says which) passes, and every
// table entry must be met by a whole run. Two tests pin what this comparison found: backend trailers
// nginx hides (X-Accel-*, Server, Date) were relayed to the client, and keepip's own gRPC answers had
// no HSTS.
//
// Generated metadata: fast-check with a fixed seed; GRPC_SEED=<n> (or `random`) explores others.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { startTestGateway, type TestGateway, testCertificate } from '../fixtures/gateway/harness.ts';
import { ingress, type K8sObject, serviceWithEndpoints, topologyOf } from '../fixtures/gateway/manifests.ts';
import { mapLimited } from '../helpers/concurrency.ts';
import {
  connectRawH2,
  FLAG,
  FRAME,
  frame,
  headerBlock,
  requestFields,
  responseStatus,
  rstCode,
} from '../helpers/h2-raw.ts';
import { refusingPort } from '../helpers/net.ts';
import { type RunningNginx, startNginx } from '../helpers/nginx.ts';

const RUNS = 16;
const DEFAULT_SEED = 0x67727063;
/** whitelist-source-range of allow.test: 127.0.0.8/29. */
const ALLOWED_SRC = '127.0.0.9';
const DENIED_SRC = '127.0.0.20';
/** denylist-source-range of deny.test names 127.0.0.1 (grpc-js clients cannot choose their source). */
const DENYLIST = '127.0.0.1/32';
/** proxy-body-size of small.test. */
const SMALL_LIMIT = 8 * 1024;
const FAR = 20_000;

type Side = 'nginx' | 'keepip';
type BackendName = 'svc' | 'svcs' | 'reset' | 'close' | 'hang';

interface Host {
  name: string;
  backend: BackendName | 'down';
  /** Annotations beside backend-protocol GRPC. */
  annotations: Record<string, string>;
  /** The location's lines in nginx before the grpc_set_header block (access rules, limits). */
  nginx: string[];
  /** proxy-read-timeout (s). */
  readTimeout: number;
  /** A second Ingress on the host: Prefix /t.Admin, allowlisted; this one then serves the rest, open. */
  admin?: true;
  /** backend-protocol GRPCS: TLS to the backend (grpc_pass grpcs://, not verified, no SNI). */
  grpcs?: true;
}

const HOSTS: readonly Host[] = [
  { name: 'svc.test', backend: 'svc', annotations: {}, nginx: [], readTimeout: 60 },
  { name: 'grpcs.test', backend: 'svcs', annotations: {}, nginx: [], readTimeout: 60, grpcs: true },
  {
    name: 'allow.test',
    backend: 'svc',
    annotations: { 'whitelist-source-range': '127.0.0.8/29' },
    nginx: ['allow 127.0.0.8/29;', 'deny all;'],
    readTimeout: 60,
  },
  {
    name: 'deny.test',
    backend: 'svc',
    annotations: { 'denylist-source-range': DENYLIST },
    nginx: [`deny ${DENYLIST};`],
    readTimeout: 60,
  },
  {
    name: 'small.test',
    backend: 'svc',
    annotations: { 'proxy-body-size': '8k' },
    nginx: ['client_max_body_size 8k;'],
    readTimeout: 60,
  },
  { name: 'reset.test', backend: 'reset', annotations: {}, nginx: [], readTimeout: 60 },
  { name: 'close.test', backend: 'close', annotations: {}, nginx: [], readTimeout: 60 },
  {
    name: 'hang.test',
    backend: 'hang',
    annotations: { 'proxy-read-timeout': '1' },
    nginx: [],
    readTimeout: 1,
  },
  { name: 'down.test', backend: 'down', annotations: {}, nginx: [], readTimeout: 60 },
  { name: 'paths.test', backend: 'svc', annotations: {}, nginx: [], readTimeout: 60, admin: true },
];
const ADMIN_ALLOW = {
  annotations: { 'whitelist-source-range': '127.0.0.8/29' },
  nginx: ['allow 127.0.0.8/29;', 'deny all;'],
};

// ---------------------------------------------------------------------------------------------
// Recording gRPC backends (HTTP/2 with prior knowledge, as grpc:// speaks).

/** What a backend saw of one call: every field in order, and the body once it ended. */
interface Seen {
  fields: [string, string][];
  body: Buffer | null;
  /** The request ended with END_STREAM (not a reset, not a connection gone): a whole call. */
  complete: boolean;
}

interface Backend {
  port: number;
  /** By the x-probe metadata of the call. */
  seen: Map<string, Seen>;
  close(): Promise<void>;
}

/** The gRPC framing of one message (uncompressed). */
function grpcFrame(message: Buffer | string): Buffer {
  const bytes = Buffer.from(message);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

const ANSWER_HEAD = {
  ':status': 200,
  'content-type': 'application/grpc',
  'x-answer': 'head',
  // nginx's grpc module hides these of a backend's answer (grpc_hide_header's defaults).
  server: 'backend/1.0',
  date: 'Thu, 01 Jan 1970 00:00:00 GMT',
  'x-pad': 'pad',
  'x-accel-buffering': 'no',
};

/** The echo service: answers per method once the request body has ended. */
function answerSvc(stream: http2.ServerHttp2Stream, method: string, body: Buffer): void {
  const trailersWith = (t: http2.OutgoingHttpHeaders) => {
    stream.respond(ANSWER_HEAD, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(t));
  };
  switch (method) {
    case 'Unary':
      trailersWith({
        'grpc-status': '0',
        'grpc-message': 'done',
        'x-trailer': 'tail',
        'x-t-bin': 'AAEC',
      });
      stream.end(body);
      return;
    case 'Hidden':
      // What nginx's grpc module hides of an answer (grpc_hide_header's defaults), sent as trailers.
      trailersWith({
        'grpc-status': '0',
        'x-accel-redirect': '/internal/admin-export',
        'x-accel-expires': '0',
        'x-accel-limit-rate': '1024',
        'x-accel-charset': 'utf-8',
        server: 'backend-internal/2.3.1',
        date: 'Thu, 01 Jan 1970 00:00:00 GMT',
      });
      stream.end(grpcFrame('with hidden trailers'));
      return;
    case 'Stream':
      trailersWith({ 'grpc-status': '0' });
      for (const m of ['m0', 'm1', 'm2']) stream.write(grpcFrame(m));
      stream.end();
      return;
    case 'Fail':
      // Trailers-only: the status in the one HEADERS frame, END_STREAM.
      stream.respond(
        { ...ANSWER_HEAD, 'grpc-status': '5', 'grpc-message': 'no%20such%20thing', 'x-e-bin': 'AQI=' },
        { endStream: true },
      );
      return;
    case 'FailLate':
      trailersWith({ 'grpc-status': '13', 'grpc-message': 'boom%0Aline', 'x-detail-bin': 'CgR0ZXN0' });
      stream.end(grpcFrame('partial'));
      return;
    case 'NoStatus':
      stream.respond(ANSWER_HEAD);
      stream.end(grpcFrame('no trailers'));
      return;
    case 'Http500':
      stream.respond({ ':status': 500, 'content-type': 'text/plain' });
      stream.end('backend stack trace');
      return;
    default:
      stream.respond({ ...ANSWER_HEAD, 'grpc-status': '12' }, { endStream: true });
  }
}

/** The reset, close and hang backends: `Mid` fails after one message, anything else before the head. */
function answerFaulty(name: BackendName, stream: http2.ServerHttp2Stream, method: string): void {
  if (name === 'hang') return;
  const fail = () => {
    if (name === 'reset') stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    else stream.session?.destroy();
  };
  if (method !== 'Mid') {
    fail();
    return;
  }
  stream.respond(ANSWER_HEAD);
  stream.write(grpcFrame('first'), () => setImmediate(fail));
}

async function startBackend(name: BackendName): Promise<Backend> {
  const pair = await testCertificate();
  // svcs: the GRPCS backend (TLS, ALPN h2), with the gateways' self-signed certificate.
  const server: http2.Http2Server =
    name === 'svcs'
      ? (http2.createSecureServer({ key: pair.key, cert: pair.cert }) as unknown as http2.Http2Server)
      : http2.createServer();
  const seen = new Map<string, Seen>();
  const open = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    open.add(session);
    session.on('close', () => open.delete(session));
    session.on('error', () => {});
  });
  server.on('stream', (stream, headers, _flags, raw: string[]) => {
    const fields: [string, string][] = [];
    for (let i = 0; i + 1 < raw.length; i += 2) fields.push([raw[i] as string, raw[i + 1] as string]);
    const record: Seen = { fields, body: null, complete: false };
    seen.set(String(headers['x-probe'] ?? ''), record);
    stream.on('error', () => {});
    let aborted = false;
    stream.on('aborted', () => (aborted = true));
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      record.body = Buffer.concat(chunks);
      // node:http2 ends the readable side of a reset stream too: only a clean END_STREAM counts.
      record.complete = !aborted && stream.rstCode === undefined;
      const method = String(headers[':path']).split('/').pop() ?? '';
      if (stream.destroyed) return;
      if (name === 'svc' || name === 'svcs') answerSvc(stream, method, record.body);
      else answerFaulty(name, stream, method);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Sessions still open (hang): closing the server waits for them otherwise.
        for (const s of open) s.destroy();
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// ingress-nginx's rendering in nginx 1.22, and the same Ingresses for keepip.

/** The http-level lines of ingress-nginx's template that decide which requests and metadata pass. */
function nginxHttp(dir: string, ports: readonly number[], backends: ReadonlyMap<string, number>) {
  const [tlsPort, plainPort] = ports;
  const upstreams = [...backends].map(
    ([name, port]) =>
      `upstream b_${name} { server 127.0.0.1:${port}; keepalive 320; keepalive_time 1h; keepalive_timeout 60s; keepalive_requests 10000; }`,
  );
  const listen = `listen 127.0.0.1:${tlsPort} ssl http2; listen 127.0.0.1:${plainPort} http2;`;
  return [
    `ssl_certificate ${join(dir, 'cert.pem')};`,
    `ssl_certificate_key ${join(dir, 'key.pem')};`,
    'underscores_in_headers off;',
    'ignore_invalid_headers on;',
    'client_header_buffer_size 1k;',
    'large_client_header_buffers 4 8k;',
    'client_body_buffer_size 8k;',
    'http2_max_concurrent_streams 128;',
    'keepalive_timeout 75s;',
    "map $http_upgrade $connection_upgrade { default upgrade; '' ''; }",
    // lua_ingress.header() sets HSTS on every https answer (hsts: true, the ConfigMap's default).
    'map $scheme $hsts_value { https "max-age=31536000; includeSubDomains"; default ""; }',
    'map $http_x_request_id $req_id { default $http_x_request_id; "" $request_id; }',
    ...upstreams,
    `server { ${listen.replaceAll(';', ' default_server;')} server_name _; location / { return 404; } }`,
    ...HOSTS.map((h) => {
      // ingress-nginx writes a Prefix `/t.Admin` as `location /t.Admin/` and `location = /t.Admin`.
      const admin = { ...h, ...ADMIN_ALLOW };
      const locations = h.admin
        ? [nginxLocation(admin, '/t.Admin/'), nginxLocation(admin, '= /t.Admin'), nginxLocation(h, '/')]
        : [nginxLocation(h, '/')];
      return `server { ${listen} server_name "${h.name}";\n${locations.join('\n')}\n}`;
    }),
  ].join('\n');
}

/** The template's location for a GRPC backend (no use-forwarded-headers: the ConfigMap's default). */
function nginxLocation(h: Host, path: string): string {
  const lines = [
    `set $proxy_upstream_name "default-${h.backend}-50051";`,
    'set $proxy_host $proxy_upstream_name;',
    'set $pass_access_scheme $scheme;',
    'set $pass_server_port $server_port;',
    'set $best_http_host $http_host;',
    'set $pass_port $pass_server_port;',
    'add_header Strict-Transport-Security $hsts_value always;',
    ...h.nginx,
    ...(h.nginx.some((l) => l.startsWith('client_max_body_size')) ? [] : ['client_max_body_size 1m;']),
    'grpc_set_header Host $best_http_host;',
    'grpc_set_header Upgrade $http_upgrade;',
    'grpc_set_header Connection $connection_upgrade;',
    'grpc_set_header X-Request-ID $req_id;',
    'grpc_set_header X-Real-IP $remote_addr;',
    'grpc_set_header X-Forwarded-For $remote_addr;',
    'grpc_set_header X-Forwarded-Host $best_http_host;',
    'grpc_set_header X-Forwarded-Port $pass_port;',
    'grpc_set_header X-Forwarded-Proto $pass_access_scheme;',
    'grpc_set_header X-Forwarded-Scheme $pass_access_scheme;',
    'grpc_set_header X-Scheme $pass_access_scheme;',
    'grpc_set_header X-Original-Forwarded-For $http_x_forwarded_for;',
    'grpc_set_header X-Original-Forwarded-Host $http_x_forwarded_host;',
    'grpc_set_header Proxy "";',
    'grpc_connect_timeout 5s;',
    'grpc_send_timeout 60s;',
    `grpc_read_timeout ${h.readTimeout}s;`,
    `grpc_pass ${h.grpcs ? 'grpcs' : 'grpc'}://b_${h.backend};`,
  ];
  return `  location ${path} {\n    ${lines.join('\n    ')}\n  }`;
}

function keepipObjects(backends: ReadonlyMap<string, number>): K8sObject[] {
  return [
    ...[...backends].flatMap(([name, port]) =>
      serviceWithEndpoints({ name, ports: [port], servicePort: 50051 }),
    ),
    ...HOSTS.map((h) =>
      ingress({
        name: h.name.split('.')[0] as string,
        host: h.name,
        annotations: { 'backend-protocol': h.grpcs ? 'GRPCS' : 'GRPC', ...h.annotations },
        paths: [{ path: '/', service: h.backend, port: 50051 }],
      }),
    ),
    ingress({
      name: 'paths-admin',
      host: 'paths.test',
      annotations: { 'backend-protocol': 'GRPC', ...ADMIN_ALLOW.annotations },
      paths: [{ path: '/t.Admin', service: 'svc', port: 50051 }],
    }),
  ];
}

// ---------------------------------------------------------------------------------------------
// The bench: the backends, nginx on a TLS and a cleartext HTTP/2 port, keepip.

interface Bench {
  nginx: RunningNginx;
  gw: TestGateway;
  backends: ReadonlyMap<BackendName, Backend>;
  /** The port of `side`'s TLS or cleartext listener. */
  port(side: Side, plain: boolean): number;
  /** The gateways' certificate (both use keepip's default one). */
  cert: string;
  close(): Promise<void>;
}

async function startBench(): Promise<Bench> {
  const backends = new Map<BackendName, Backend>();
  for (const name of ['svc', 'svcs', 'reset', 'close', 'hang'] as const)
    backends.set(name, await startBackend(name));
  const ports = new Map<string, number>([...backends].map(([n, b]) => [n, b.port]));
  ports.set('down', await refusingPort());
  const pair = await testCertificate();
  const nginx = await startNginx({
    freePorts: 2,
    http: (dir, p) => {
      writeFileSync(join(dir, 'cert.pem'), pair.cert);
      writeFileSync(join(dir, 'key.pem'), pair.key);
      return nginxHttp(dir, p, ports);
    },
    waitFor: (p) => p.map((port) => ({ host: '127.0.0.1', port })),
  });
  const gw = await startTestGateway(topologyOf(keepipObjects(ports)));
  return {
    nginx,
    gw,
    backends,
    cert: pair.cert,
    port: (side, plain) =>
      side === 'nginx' ? (nginx.ports[plain ? 1 : 0] as number) : plain ? gw.httpPort : gw.httpsPort,
    async close() {
      await gw.close();
      await nginx.stop();
      for (const b of backends.values()) await b.close();
    },
  };
}

interface Probe {
  /** Names the probe in findings; the backend sees `x-probe: <id>.<side>`. */
  id: string;
  host: string;
  /** :path; the backends answer by its last segment (Unary, Stream, Fail…). */
  path: string;
  from?: string;
  /** h2c with prior knowledge on the cleartext port, else TLS with ALPN h2. */
  plain?: boolean;
  /** The request's fields after the pseudo-headers, in order (content-type and te included). */
  fields: [string, string][];
  body: Buffer;
}

/** What the client got: the head, the trailers, the messages, and how the stream ended. */
interface Reply {
  status: number;
  headers: Record<string, string | string[]>;
  trailers: Record<string, string | string[]>;
  body: Buffer;
  /** `end` (END_STREAM), `rst:<code>` (reset or connection gone first) or `hang`. */
  end: string;
}

interface Result {
  reply: Reply;
  /** What the backend got, null when the call never reached it. */
  seen: Seen | null;
}

const GRPC_BASE: [string, string][] = [
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
];

function connect(port: number, p: Probe): http2.ClientHttp2Session {
  const localAddress = p.from ?? '127.0.0.1';
  const session = p.plain
    ? http2.connect(`http://${p.host}:${port}`, {
        createConnection: () => netConnect(port, localAddress),
      })
    : http2.connect(`https://${p.host}:${port}`, {
        createConnection: () =>
          tls.connect({
            socket: netConnect(port, localAddress),
            servername: p.host,
            ALPNProtocols: ['h2'],
            rejectUnauthorized: false,
          }),
      });
  session.on('error', () => {});
  return session;
}

/** One call on a connection of its own; resolves when the stream closes (or FAR: `hang`). */
function call(port: number, p: Probe, probeId: string): Promise<Reply> {
  const session = connect(port, p);
  const head: http2.OutgoingHttpHeaders = {
    ':method': 'POST',
    ':path': p.path,
    ':authority': p.host,
  };
  for (const [name, value] of [...p.fields, ['x-probe', probeId] as [string, string]]) {
    const had = head[name];
    head[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [String(had)]), value];
  }
  const reply: Reply = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0), end: 'hang' };
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let ended = false;
    const done = () => {
      clearTimeout(timer);
      reply.body = Buffer.concat(chunks);
      session.destroy();
      resolve(reply);
    };
    const timer = setTimeout(done, FAR);
    const stream = session.request(head);
    stream.on('response', (h) => {
      reply.status = Number(h[':status']);
      reply.headers = plainHeaders(h);
    });
    stream.on('trailers', (t) => (reply.trailers = plainHeaders(t)));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => (ended = true));
    stream.on('error', () => {});
    stream.on('close', () => {
      reply.end = ended ? 'end' : `rst:${stream.rstCode ?? 'none'}`;
      done();
    });
    stream.end(p.body);
  });
}

function plainHeaders(h: http2.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !k.startsWith(':')) out[k] = v;
  return out;
}

async function ask(bench: Bench, side: Side, p: Probe): Promise<Result> {
  const probeId = `${p.id}.${side}`;
  const reply = await call(bench.port(side, p.plain === true), p, probeId);
  let seen: Seen | null = null;
  for (const b of bench.backends.values()) seen ??= b.seen.get(probeId) ?? null;
  return { reply, seen };
}

function netConnect(port: number, localAddress: string): net.Socket {
  return net.connect({ host: '127.0.0.1', port, localAddress });
}

// ---------------------------------------------------------------------------------------------
// Reading and comparing the answers.

/** gRPC's HTTP-to-gRPC status mapping, as grpc-js applies it to a non-200 answer (others: UNKNOWN). */
const HTTP_TO_GRPC: Readonly<Record<number, number>> = {
  400: 13,
  401: 16,
  403: 7,
  404: 12,
  429: 14,
  502: 14,
  503: 14,
  504: 14,
};

/** grpc-js's reading of a stream reset before any grpc-status (REFUSED_STREAM, CANCEL…; others INTERNAL). */
const RST_TO_GRPC: Readonly<Record<string, number>> = { 'rst:7': 14, 'rst:8': 1, 'rst:11': 8, 'rst:12': 7 };

/**
 * The status a gRPC client reads (as grpc-js): a non-200 answer by gRPC's HTTP mapping, else grpc-status
 * (trailers, or a trailers-only head), else the reset's code; an end without grpc-status is INTERNAL.
 */
function grpcCode(r: Reply): string {
  if (r.end === 'hang') return 'hang';
  if (r.status !== 0 && r.status !== 200) return String(HTTP_TO_GRPC[r.status] ?? 2);
  const status = r.trailers['grpc-status'] ?? r.headers['grpc-status'];
  if (status !== undefined) return String(status);
  return String(RST_TO_GRPC[r.end] ?? 13);
}

/** nginx's own answer: its HTML error page with the HTTP status. */
function isNginxPage(r: Reply): boolean {
  return r.status >= 400 && r.headers['content-type'] === 'text/html';
}

/** The framing and identity headers each server writes for itself (in the head, never in trailers). */
const OWN_FIELDS: ReadonlySet<string> = new Set(['server', 'date', 'content-length']);
const NONE: ReadonlySet<string> = new Set();

function digest(b: Buffer): string {
  return b.length <= 32
    ? JSON.stringify(b.toString('latin1'))
    : `${b.length} bytes sha256:${createHash('sha256').update(b).digest('hex').slice(0, 12)}`;
}

/** The backend's fields by name (values in order), the port and a generated request id named. */
function seenFields(bench: Bench, side: Side, p: Probe, s: Seen): Map<string, string[]> {
  const sentId = p.fields.some(([n]) => n === 'x-request-id');
  const listener = [String(bench.port(side, p.plain === true)), '443', '80'];
  const out = new Map<string, string[]>();
  for (const [field, raw] of s.fields) {
    if (field === 'x-probe') continue;
    // grpc_set_header Host makes nginx send `host` where keepip sends :authority (RFC 9113 §8.3.1: alike).
    const name = field === 'host' ? ':authority' : field;
    let value = raw;
    if (name === 'x-forwarded-port' && listener.includes(value)) value = '<listener>';
    if (name === 'x-request-id' && !sentId && /^[0-9a-f]{32}$/.test(value)) value = '<generated>';
    out.set(name, [...(out.get(name) ?? []), value]);
  }
  return out;
}

interface Difference {
  probe: Probe;
  /** `reached`, `complete`, `request-body`, `field:<name>`, `status`, `header:<name>`, `trailer:<name>`, `messages`, `end`, `grpc-code`, `answer-form`. */
  what: string;
  nginx: string;
  keepip: string;
  results: Record<Side, Result>;
}

function show(v: unknown): string {
  return v === undefined ? '(absent)' : typeof v === 'string' ? v : JSON.stringify(v);
}

function mapDiff(
  prefix: string,
  a: ReadonlyMap<string, unknown>,
  b: ReadonlyMap<string, unknown>,
): [string, string, string][] {
  const out: [string, string, string][] = [];
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const x = show(a.get(name));
    const y = show(b.get(name));
    if (x !== y) out.push([`${prefix}${name}`, x, y]);
  }
  return out;
}

function headerMap(h: Record<string, string | string[]>, own = OWN_FIELDS): Map<string, string | string[]> {
  return new Map(Object.entries(h).filter(([k]) => !own.has(k)));
}

/** Every way the two results differ, as the backend and the client see them. */
function compare(bench: Bench, p: Probe, n: Result, k: Result): Difference[] {
  const rows: [string, string, string][] = [];
  const yes = (r: Result) => (r.seen === null ? 'not reached' : 'reached');
  if (yes(n) !== yes(k)) rows.push(['reached', yes(n), yes(k)]);
  if (n.seen !== null && k.seen !== null) {
    rows.push(
      ...mapDiff('field:', seenFields(bench, 'nginx', p, n.seen), seenFields(bench, 'keepip', p, k.seen)),
    );
    if (n.seen.complete !== k.seen.complete)
      rows.push(['complete', String(n.seen.complete), String(k.seen.complete)]);
    const body = (s: Seen) => (s.body === null ? '(none)' : digest(s.body));
    if (body(n.seen) !== body(k.seen)) rows.push(['request-body', body(n.seen), body(k.seen)]);
  }
  const [a, b] = [n.reply, k.reply];
  if (grpcCode(a) !== grpcCode(b)) rows.push(['grpc-code', grpcCode(a), grpcCode(b)]);
  if (n.seen === null && k.seen !== null && k.seen.complete === false) {
    // keepip streamed part of a call nginx refused first: the status the client reads is what counts.
  } else if ((n.seen === null) !== (k.seen === null)) {
    // One answer from the backend, the other from the gateway: the status the client reads is what counts.
  } else if (isNginxPage(a) && !isNginxPage(b)) {
    // nginx's HTML page against keepip's trailers-only gRPC status: the code above is what counts.
    rows.push([
      'answer-form',
      `${a.status} ${a.headers['content-type']}`,
      `${b.status} grpc-status ${b.headers['grpc-status']}`,
    ]);
  } else {
    if (a.status !== b.status) rows.push(['status', String(a.status), String(b.status)]);
    rows.push(...mapDiff('header:', headerMap(a.headers), headerMap(b.headers)));
    rows.push(...mapDiff('trailer:', headerMap(a.trailers, NONE), headerMap(b.trailers, NONE)));
    if (digest(a.body) !== digest(b.body)) rows.push(['messages', digest(a.body), digest(b.body)]);
    if (a.end !== b.end) rows.push(['end', a.end, b.end]);
  }
  return rows.map(([what, x, y]) => ({
    probe: p,
    what,
    nginx: x,
    keepip: y,
    results: { nginx: n, keepip: k },
  }));
}

async function differences(bench: Bench, probes: readonly Probe[]): Promise<Difference[]> {
  const all = await mapLimited(probes, 8, async (p) => {
    const [n, k] = await Promise.all([ask(bench, 'nginx', p), ask(bench, 'keepip', p)]);
    return compare(bench, p, n, k);
  });
  return all.flat();
}

// ---------------------------------------------------------------------------------------------
// What may differ, and why.

interface Allowed {
  id: string;
  reason: string;
  matches(d: Difference): boolean;
  /** Why the runs may not meet it (a race either side of which is safe); absent: they must. */
  mayNotOccur?: string;
}

const sent = (p: Probe, name: string) => p.fields.some(([n]) => n === name);

const ALLOWED: readonly Allowed[] = [
  {
    id: 'own-answer-as-grpc-status',
    reason:
      'nginx answers its own errors (403, 413, 502, 504) with its HTML page and that HTTP status; keepip with a ' +
      "trailers-only gRPC status (HTTP 200, grpc-status, grpc-message) whose code is the same under gRPC's HTTP " +
      'mapping or one of the entries below (docs/gateway.md, "gRPC backends": answers a gRPC client understands)',
    matches: (d) =>
      d.what === 'answer-form' && d.results.keepip.reply.status === 200 && /grpc-status \d+$/.test(d.keepip),
  },
  {
    id: 'grpc-timeout-enforced',
    reason:
      'nginx only forwards grpc-timeout and waits for grpc_read_timeout (then 504, UNAVAILABLE to a gRPC client); ' +
      'keepip enforces the deadline too and answers DEADLINE_EXCEEDED at it (docs/gateway.md "Deadlines"; stricter)',
    matches: (d) =>
      d.what === 'grpc-code' &&
      sent(d.probe, 'grpc-timeout') &&
      d.nginx === '14' &&
      d.keepip === '4' &&
      d.results.keepip.reply.headers['grpc-message'] === 'deadline exceeded',
  },
  {
    id: 'read-timeout-deadline-exceeded',
    reason:
      "proxy-read-timeout: nginx's 504 reads as UNAVAILABLE (14) to a gRPC client; keepip says DEADLINE_EXCEEDED (4) " +
      '(docs/gateway.md: a timeout toward the backend is DEADLINE_EXCEEDED); an error either way',
    matches: (d) =>
      d.what === 'grpc-code' && d.nginx === '14' && d.keepip === '4' && d.results.nginx.reply.status === 504,
  },
  {
    id: 'body-limit-resource-exhausted',
    reason:
      "a message over proxy-body-size: nginx's 413 has no gRPC mapping (UNKNOWN, 2); keepip says RESOURCE_EXHAUSTED " +
      '(8) (docs/gateway.md: 413 is RESOURCE_EXHAUSTED)',
    matches: (d) => d.what === 'grpc-code' && d.results.nginx.reply.status === 413 && d.keepip === '8',
  },
  {
    id: 'body-limit-streamed-call-never-whole',
    reason:
      'gRPC calls always stream (docs/gateway.md, "Request handling"; compat proxy-request-buffering): keepip opens ' +
      "the backend's stream at once and resets it when the body passes proxy-body-size, so the backend never gets a " +
      'whole call; nginx read the first 64 KiB window before connecting and answered 413 first',
    mayNotOccur:
      "on a busy machine keepip may read past the limit before the backend's stream is open: then the backend sees " +
      'nothing, as with nginx, and there is no difference to allow (seen in a full-suite run beside three helpers)',
    matches: (d) =>
      d.what === 'reached' &&
      d.results.nginx.reply.status === 413 &&
      d.results.keepip.seen !== null &&
      !d.results.keepip.seen.complete,
  },
  {
    id: 'te-trailers-always',
    reason:
      "a client without `te: trailers` (h2c): nginx's $grpc_internal_trailers sends none; keepip always sends it, " +
      'as gRPC requires (docs/gateway.md: `te: trailers` is sent to the backend)',
    matches: (d) =>
      d.what === 'field:te' && !sent(d.probe, 'te') && d.nginx === '(absent)' && d.keepip === '["trailers"]',
  },
  {
    id: 'x-pad-hidden',
    reason:
      "the backend's X-Pad: nginx's grpc module passes it (only the proxy module hides it); keepip hides it " +
      'with Date, Server and X-Accel-* (src/gateway/grpc-proxy.ts; stricter)',
    matches: (d) => d.what === 'header:x-pad' && d.keepip === '(absent)',
  },
  {
    id: 'url-headers-trusted-hops-only',
    reason:
      'Forwarded, X-Forwarded-Prefix, X-Original-URL… from a client that is not a trusted hop: nginx passes them, ' +
      'keepip drops them (docs/gateway.md: headers that tell a backend another URL, host or scheme; stricter)',
    matches: (d) =>
      /^field:(forwarded|x-forwarded-prefix|x-original-url|x-forwarded-uri|x-forwarded-path)$/.test(d.what) &&
      d.keepip === '(absent)',
  },
  {
    id: 'repeated-metadata-joined',
    reason:
      'a metadata key sent twice: nginx forwards two fields, keepip one with the values joined by ", " (RFC 9110 ' +
      '§5.3; gRPC over HTTP/2: duplicate names "may have their values joined with "," … and be considered ' +
      'semantically equivalent", -bin values split on "," before decoding). Not documented in keepip\'s docs',
    matches: (d) => {
      if (!d.what.startsWith('field:')) return false;
      const values = d.probe.fields.filter(([n]) => n === d.what.slice(6)).map(([, v]) => v);
      return (
        values.length > 1 &&
        d.nginx === JSON.stringify(values) &&
        d.keepip === JSON.stringify([values.join(', ')])
      );
    },
  },
  {
    id: 'nginx-1.22-first-value',
    reason:
      '$http_x_request_id / $http_x_forwarded_host of a header sent twice: nginx 1.22 takes the first; nginx 1.23+ ' +
      '(the release ingress-nginx ships) joins them with ", ", as keepip\'s value',
    matches: (d) => {
      const source = {
        'field:x-request-id': 'x-request-id',
        'field:x-original-forwarded-host': 'x-forwarded-host',
      }[d.what];
      const values = d.probe.fields.filter(([n]) => n === source).map(([, v]) => v);
      return (
        values.length > 1 &&
        d.nginx === JSON.stringify([values[0]]) &&
        d.keepip === JSON.stringify([values.join(', ')])
      );
    },
  },
  {
    id: 'path-readings-stricter',
    reason:
      'a :path that reaches the allowlisted /t.Admin only under another reading (upper case, `;params`): nginx ' +
      "matches it to the open `/` location and proxies it; keepip makes it pass /t.Admin's access rules too and " +
      'denies it (docs/gateway.md, "What the gateway accepts in a target"; stricter)',
    matches: (d) =>
      d.probe.host === 'paths.test' &&
      /^\/t\.admin(;[^/]*)?\//i.test(d.probe.path) &&
      !d.probe.path.startsWith('/t.Admin/') &&
      d.results.nginx.seen !== null &&
      d.results.keepip.seen === null &&
      grpcCode(d.results.keepip.reply) === '7' &&
      (d.what === 'reached' || d.what === 'grpc-code'),
  },
  {
    id: 'break-off-after-head-unavailable',
    reason:
      "a backend that closes its connection after the head and a message: nginx resets the client's stream " +
      '(INTERNAL_ERROR: INTERNAL to grpc-js); keepip ends it with grpc-status 14 UNAVAILABLE in the trailers ' +
      '(docs/gateway.md, "gRPC backends": a backend that breaks off after answering); an error either way',
    matches: (d) =>
      d.results.nginx.reply.end.startsWith('rst:') &&
      d.results.keepip.reply.trailers['grpc-status'] === '14' &&
      (d.what === 'end' || d.what === 'grpc-code' || d.what.startsWith('trailer:')),
  },
  {
    id: 'dotted-names-pass',
    reason:
      "metadata names holding `.` (gRPC allows [0-9a-z_.-]): nginx's ignore_invalid_headers drops them, keepip " +
      'passes them. Unlike `_` (dropped by both: CGI-style backends fold it into `-`), no backend is known to fold ' +
      '`.`, so no forwarded header can be forged this way. Not documented (docs/ingress-nginx-compat.md says other ' +
      'malformed names are refused; `.` is a token character to keepip)',
    matches: (d) => /^field:[^:]*\./.test(d.what) && d.nginx === '(absent)',
  },
  {
    id: 'malformed-h2-request-reset',
    reason:
      'a connection-specific field (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, TE other ' +
      "than trailers) makes an HTTP/2 request malformed (RFC 9113 §8.2.2): keepip's nghttp2 resets the stream " +
      '(PROTOCOL_ERROR); nginx drops some and proxies (Upgrade and Proxy-Connection it passes, and the backend ' +
      'refuses the call: 502). Stricter. Judged in the raw-frames test',
    matches: () => false,
  },
  {
    id: 'single-value-field-first',
    reason:
      'a field node:http2 defines as single-valued (user-agent, content-type, referer…) sent twice: keepip forwards ' +
      'the first, nginx both. Not documented; the gRPC libraries send these once. Judged in the raw-frames test',
    matches: () => false,
  },
];

/** ALLOWED entries some run met (the last test checks each was). */
const met = new Set<string>();
/** Tests of the file, and how many started: the last one checks `met` only after a whole run. */
const TESTS = 11;
let started = 0;

function describeProbe(p: Probe): string {
  const extra = p.fields.filter((f) => !GRPC_BASE.some(([n, v]) => n === f[0] && v === f[1]));
  const via = `${p.plain ? 'h2c' : 'tls'}${p.from ? ` from ${p.from}` : ''}`;
  const fields = JSON.stringify(extra).replace(/(.)\1{40,}/g, (run, c) => `${c}×${run.length}`);
  return `${p.host}${p.path} ${via} ${fields}${sent(p, 'te') ? '' : ' (no te)'} body ${p.body.length}`;
}

/** The differences no ALLOWED entry explains, one line each. */
function unexplained(diffs: readonly Difference[]): string[] {
  const out: string[] = [];
  for (const d of diffs) {
    const allowed = ALLOWED.find((a) => a.matches(d));
    if (allowed !== undefined) met.add(allowed.id);
    else
      out.push(`${d.probe.id} [${describeProbe(d.probe)}] ${d.what}: nginx ${d.nginx} | keepip ${d.keepip}`);
  }
  return out.sort();
}

function probe(id: string, path: string, extra: [string, string][] = [], more: Partial<Probe> = {}): Probe {
  return { id, host: 'svc.test', path, fields: [...GRPC_BASE, ...extra], body: grpcFrame(id), ...more };
}

// ---------------------------------------------------------------------------------------------
// Generated calls.

const NAME_CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789-'];
const VALUE_CHARS = [...'abcXYZ019 -_.,;:=/+*()[]{}<>?@!#$%&\'"`~^|\\'];
const FORGED_NAMES = [
  'x-forwarded-for',
  'x-real-ip',
  'x-request-id',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-scheme',
  'x-scheme',
  'x-original-forwarded-for',
  'x-original-forwarded-host',
  'x-original-uri',
  'x-forwarded-prefix',
  'forwarded',
  'proxy',
  'via',
] as const;
const FORGED_VALUES = [
  '1.2.3.4',
  '10.0.0.1, 127.0.0.9',
  'evil.test',
  'https',
  '8443',
  'for=1.2.3.4',
  '/admin',
];

const metadataArb: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(
    fc.string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 1, maxLength: 10 }).map((s) => `x-${s}`),
    fc
      .string({ unit: fc.constantFrom(...VALUE_CHARS), minLength: 1, maxLength: 40 })
      .map((v) => v.trim() || 'v'),
  ),
  fc.tuple(
    fc.string({ unit: fc.constantFrom(...NAME_CHARS), minLength: 1, maxLength: 6 }).map((s) => `x-${s}-bin`),
    fc
      .uint8Array({ minLength: 1, maxLength: 24 })
      .chain((b) =>
        fc.constantFrom(
          Buffer.from(b).toString('base64'),
          Buffer.from(b).toString('base64').replace(/=+$/, ''),
        ),
      ),
  ),
  fc.tuple(fc.constantFrom(...FORGED_NAMES), fc.constantFrom(...FORGED_VALUES)),
  fc.constantFrom<[string, string]>(
    ['grpc-timeout', '30S'],
    ['grpc-timeout', '99999999u'],
    ['grpc-timeout', '5M'],
    ['grpc-timeout', 'soon'],
    ['grpc-encoding', 'identity'],
    ['grpc-accept-encoding', 'identity,deflate,gzip'],
    ['grpc-trace-bin', 'AAABAgMEBQYHCAkKCwwNDg8QAREiM0RVZneImQIB'],
    ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
    ['user-agent', 'grpc-node-js/1.14.7'],
  ),
);

const callArb: fc.Arbitrary<Omit<Probe, 'id'>> = fc.record({
  host: fc.constant('svc.test'),
  path: fc.constantFrom('/t.Echo/Unary', '/t.Echo/Unary', '/t.Echo/Stream', '/t.Echo/Fail'),
  plain: fc.boolean(),
  fields: fc
    .tuple(
      fc.constantFrom('application/grpc', 'application/grpc+proto'),
      fc.boolean(),
      // user-agent only once: node:http2 refuses to send it twice.
      fc.uniqueArray(metadataArb, {
        maxLength: 6,
        selector: ([n, v]) => (n === 'user-agent' ? n : `${n}:${v}`),
      }),
    )
    .map(([type, te, extra]): [string, string][] => [
      ['content-type', type],
      ...(te ? ([['te', 'trailers']] as [string, string][]) : []),
      ...extra,
    ]),
  body: fc
    .array(fc.uint8Array({ maxLength: 3000 }), { minLength: 0, maxLength: 2 })
    .map((ms) => Buffer.concat(ms.map((m) => grpcFrame(Buffer.from(m))))),
});

function seedOf(): number {
  const chosen = process.env.GRPC_SEED;
  return chosen === 'random' ? Date.now() % 2 ** 31 : Number(chosen ?? DEFAULT_SEED);
}

// ---------------------------------------------------------------------------------------------

describe('gRPC (backend-protocol GRPC) through keepip and through nginx 1.22 as ingress-nginx renders it', () => {
  let bench: Bench;

  before(async () => {
    bench = await startBench();
  });

  beforeEach(() => {
    started += 1;
  });

  after(async () => {
    await bench?.close();
  });

  it('generated calls: the backend gets the metadata nginx forwards, the client the answer nginx relays (GRPC_SEED)', async () => {
    const seed = seedOf();
    const probes = fc.sample(callArb, { numRuns: RUNS, seed }).map((c, i) => ({ ...c, id: `gen${i}` }));
    const found = unexplained(await differences(bench, probes));
    assert.deepEqual(found, [], `seed ${seed} (GRPC_SEED replays it)`);
  });

  it('forged forwarded metadata is replaced as the template replaces it; the rest passes as nginx passes it', async () => {
    const probes: Probe[] = [
      probe('forged-all', '/t.Echo/Unary', [
        ['x-forwarded-for', '1.2.3.4'],
        ['x-real-ip', '6.6.6.6'],
        ['x-forwarded-host', 'evil.test'],
        ['x-forwarded-proto', 'http'],
        ['x-forwarded-port', '1'],
        ['x-forwarded-scheme', 'javascript'],
        ['x-scheme', 'ftp'],
        ['x-original-forwarded-for', '9.9.9.9'],
        ['x-original-forwarded-host', 'orig.evil'],
        ['proxy', 'http://evil.test:3128'],
        ['x-request-id', 'forged-id'],
      ]),
      probe('xff-twice', '/t.Echo/Unary', [
        ['x-forwarded-for', '1.1.1.1'],
        ['x-forwarded-for', '2.2.2.2'],
      ]),
      probe('xfh-twice', '/t.Echo/Unary', [
        ['x-forwarded-host', 'a.evil'],
        ['x-forwarded-host', 'b.evil'],
      ]),
      probe('real-ip-twice', '/t.Echo/Unary', [
        ['x-real-ip', '1.1.1.1'],
        ['x-real-ip', '2.2.2.2'],
      ]),
      probe('request-id-twice', '/t.Echo/Unary', [
        ['x-request-id', 'one'],
        ['x-request-id', 'two'],
      ]),
      probe(
        'h2c-forged',
        '/t.Echo/Unary',
        [
          ['x-forwarded-proto', 'https'],
          ['x-forwarded-port', '443'],
        ],
        { plain: true },
      ),
      probe('no-te', '/t.Echo/Unary', [], { fields: [['content-type', 'application/grpc']] }),
      probe('content-length', '/t.Echo/Unary', [['content-length', '17']], {
        body: grpcFrame('content-len!'),
      }),
      probe('grpc-timeouts', '/t.Echo/Unary', [
        ['grpc-timeout', '1H'],
        ['grpc-timeout', '2S'],
      ]),
      probe('bad-timeout', '/t.Echo/Unary', [['grpc-timeout', '123456789S']]),
      probe('bin-twice', '/t.Echo/Unary', [
        ['x-b-bin', 'AAEC'],
        ['x-b-bin', 'AQI='],
      ]),
      probe('text-twice', '/t.Echo/Unary', [
        ['x-t', 'a'],
        ['x-t', 'b,c'],
      ]),
      probe('long-value', '/t.Echo/Unary', [['x-long', 'v'.repeat(3000)]]),
      probe(
        'many-keys',
        '/t.Echo/Unary',
        Array.from({ length: 40 }, (_, i): [string, string] => [`x-k${i}`, `v${i}`]),
      ),
      probe('path-query', '/t.Echo/Unary?debug=1&x=%2F', []),
      probe('path-dots', '/t.Echo/../t.Echo/Unary', []),
      probe('path-encoded', '/t.Echo/%55nary', []),
    ];
    const found = unexplained(await differences(bench, probes));
    assert.deepEqual(found, []);
  });

  it('metadata names nginx ignores (ignore_invalid_headers on): `_` reaches no backend (forged X_Forwarded_For), `.` is ALLOWED', async () => {
    const probes: Probe[] = [
      probe('underscore', '/t.Echo/Unary', [
        ['x_forwarded_for', '1.2.3.4'],
        ['x_user', 'admin'],
      ]),
      probe('dots', '/t.Echo/Unary', [
        ['x.forwarded.for', '1.2.3.4'],
        ['x.real.ip', '6.6.6.6'],
        ['x.user', 'admin'],
      ]),
    ];
    const found = unexplained(await differences(bench, probes));
    assert.deepEqual(found, []);
  });

  it("the backend's answers reach the client as nginx relays them (streaming, trailers, trailers-only, no status, a 500, 256 KiB)", async () => {
    const big = grpcFrame(Buffer.alloc(256 * 1024, 0x5a));
    const probes: Probe[] = [
      probe('unary', '/t.Echo/Unary'),
      probe('unary-h2c', '/t.Echo/Unary', [], { plain: true }),
      probe('stream', '/t.Echo/Stream'),
      probe('trailers-only', '/t.Echo/Fail'),
      probe('status-in-trailers', '/t.Echo/FailLate'),
      probe('no-status', '/t.Echo/NoStatus'),
      probe('http-500', '/t.Echo/Http500'),
      probe('unknown-method', '/t.Echo/Nope'),
      probe('large-message', '/t.Echo/Unary', [], { body: big }),
      probe('large-message-h2c', '/t.Echo/Unary', [], { body: big, plain: true }),
      probe('empty-body', '/t.Echo/Unary', [], { body: Buffer.alloc(0) }),
      probe('grpcs-unary', '/t.Echo/Unary', [['x-forwarded-for', '1.2.3.4']], { host: 'grpcs.test' }),
      probe('grpcs-stream', '/t.Echo/Stream', [], { host: 'grpcs.test', plain: true }),
      probe('grpcs-trailers-only', '/t.Echo/Fail', [], { host: 'grpcs.test' }),
      probe('grpcs-large-message', '/t.Echo/Unary', [], { host: 'grpcs.test', body: big }),
    ];
    const found = unexplained(await differences(bench, probes));
    assert.deepEqual(found, []);
  });

  it("X-Accel-*, Server and Date in the backend's trailers are hidden as nginx hides them (internal paths, versions)", async () => {
    const probes = [
      probe('hidden-trailers', '/t.Echo/Hidden'),
      probe('hidden-trailers-h2c', '/t.Echo/Hidden', [], { plain: true }),
    ];
    const found = unexplained(await differences(bench, probes));
    assert.deepEqual(found, []);
  });

  it('the allowlist and denylist decide as nginx: a denied source never reaches the backend, forged client headers change nothing, nor do path readings', async () => {
    const forged: [string, string][] = [
      ['x-forwarded-for', ALLOWED_SRC],
      ['x-real-ip', ALLOWED_SRC],
      ['forwarded', `for=${ALLOWED_SRC}`],
    ];
    const on = (host: string, from: string, extra: [string, string][] = [], more: Partial<Probe> = {}) => ({
      host,
      from,
      ...more,
      extra,
    });
    const cases = [
      ['allowed', on('allow.test', ALLOWED_SRC)],
      ['denied', on('allow.test', DENIED_SRC)],
      ['denied-forged', on('allow.test', DENIED_SRC, forged)],
      ['denied-h2c', on('allow.test', DENIED_SRC, forged, { plain: true })],
      ['denylisted', on('deny.test', '127.0.0.1', forged)],
      ['not-denylisted', on('deny.test', '127.0.0.2')],
    ] as const;
    const probes: Probe[] = cases.map(([id, c]) =>
      probe(id, '/t.Echo/Unary', [...c.extra], { host: c.host, from: c.from, plain: 'plain' in c }),
    );
    // paths.test: /t.Admin (Prefix) allowlisted, / open. A gRPC server routes by the exact :path.
    const readings = [
      '/t.Admin/Secret',
      '/t.Admin',
      '//t.Admin/Secret',
      '/./t.Admin/Secret',
      '/t.Open/../t.Admin/Secret',
      '/t.Open/%2e%2e/t.Admin/Secret',
      '/%74.Admin/Secret',
      '/t.Admin%2FSecret',
      '/t.Admin/Secret?x=1',
      '/T.Admin/Secret',
      '/t.Admin;x/Secret',
      '/t.Adminx/Secret',
    ];
    readings.forEach((path, i) => {
      probes.push(probe(`path${i}-denied`, path, [], { host: 'paths.test', from: DENIED_SRC }));
      probes.push(probe(`path${i}-allowed`, path, [], { host: 'paths.test', from: ALLOWED_SRC }));
    });
    const found = unexplained(await differences(bench, probes));
    assert.deepEqual(found, []);
  });

  it("failures (backend down, reset, closed, silent; grpc-timeout; a message over proxy-body-size): the status a gRPC client reads is nginx's or an ALLOWED one, never OK, never a hang", async () => {
    const big = grpcFrame(Buffer.alloc(SMALL_LIMIT * 8, 0x61));
    const probes: Probe[] = [
      probe('down', '/t.Echo/Unary', [], { host: 'down.test' }),
      probe('down-h2c', '/t.Echo/Unary', [], { host: 'down.test', plain: true }),
      probe('reset-before-head', '/t.Echo/Unary', [], { host: 'reset.test' }),
      probe('reset-after-message', '/t.Echo/Mid', [], { host: 'reset.test' }),
      probe('silent', '/t.Echo/Unary', [], { host: 'hang.test' }),
      probe('grpc-timeout', '/t.Echo/Unary', [['grpc-timeout', '200m']], { host: 'hang.test' }),
      probe('over-body-size', '/t.Echo/Unary', [], { host: 'small.test', body: big }),
      probe('under-body-size', '/t.Echo/Unary', [], {
        host: 'small.test',
        body: grpcFrame(Buffer.alloc(4000, 0x62)),
      }),
    ];
    const diffs = await differences(bench, probes);
    // A backend that closes its connection takes every call on it along: one call at a time there, as
    // nginx (one connection per call) and keepip (calls multiplexed on a session) then see the same.
    for (const p of [
      probe('closed-before-head', '/t.Echo/Unary', [], { host: 'close.test' }),
      probe('closed-after-message', '/t.Echo/Mid', [], { host: 'close.test' }),
    ])
      diffs.push(...(await differences(bench, [p])));
    assert.deepEqual(unexplained(diffs), []);
  });

  it("keepip's own gRPC answers over TLS carry Strict-Transport-Security, as ingress-nginx's header filter puts it on every https answer", async () => {
    const probes = [
      probe('hsts-denied', '/t.Echo/Unary', [], { host: 'allow.test', from: DENIED_SRC }),
      probe('hsts-denylisted', '/t.Echo/Unary', [], { host: 'deny.test' }),
      probe('hsts-down', '/t.Echo/Unary', [], { host: 'down.test' }),
      probe('hsts-over-body-size', '/t.Echo/Unary', [], {
        host: 'small.test',
        body: grpcFrame(Buffer.alloc(70_000)),
      }),
    ];
    const missing = await mapLimited(probes, 4, async (p) => {
      const [n, k] = await Promise.all([ask(bench, 'nginx', p), ask(bench, 'keepip', p)]);
      const hsts = (r: Result) => show(r.reply.headers['strict-transport-security']);
      return hsts(n) === hsts(k)
        ? null
        : `${p.id}: nginx ${n.reply.status} with ${hsts(n)}, keepip grpc-status ${show(k.reply.headers['grpc-status'])} with ${hsts(k)}`;
    });
    assert.deepEqual(
      missing.filter((m) => m !== null),
      [],
    );
  });

  it('connection-specific fields, a field twice, a Host beside :authority (raw frames): nothing reaches the backend that nginx keeps from it', async () => {
    const open = (id: string, extra: [string, string][]) => ({
      id,
      authority: 'svc.test',
      from: '127.0.0.1',
      extra,
    });
    const cases = [
      open('connection', [['connection', 'keep-alive']]),
      open('keep-alive', [['keep-alive', 'timeout=5']]),
      open('proxy-connection', [['proxy-connection', 'keep-alive']]),
      open('transfer-encoding', [['transfer-encoding', 'chunked']]),
      open('upgrade', [['upgrade', 'h2c']]),
      open('te-gzip', [['te', 'gzip']]),
      open('user-agent-twice', [
        ['user-agent', 'a'],
        ['user-agent', 'b'],
      ]),
      // From a denied source: a Host naming the open host beside :authority naming the allowlisted one,
      // and the other way round; whichever names the route, the call must pass its access rules.
      { id: 'host-open', authority: 'allow.test', from: DENIED_SRC, extra: [['host', 'svc.test']] },
      { id: 'host-allowlisted', authority: 'svc.test', from: DENIED_SRC, extra: [['host', 'allow.test']] },
    ] satisfies { id: string; authority: string; from: string; extra: [string, string][] }[];
    const found: string[] = [];
    await mapLimited(cases, 4, async (c) => {
      const [n, k] = await Promise.all([
        rawCall(bench, 'nginx', `raw-${c.id}`, c),
        rawCall(bench, 'keepip', `raw-${c.id}`, c),
      ]);
      const same = n.reached === k.reached && n.outcome === k.outcome && n.fields === k.fields;
      // RFC 9113 §8.2.2: a connection-specific field makes the request malformed; keepip's HTTP/2 layer
      // (nghttp2) resets such a stream (PROTOCOL_ERROR) before any routing: stricter than nginx.
      const stricter = !k.reached && k.outcome === 'rst 1' && c.from === '127.0.0.1';
      const firstOnly = c.id === 'user-agent-twice' && n.fields.replace('; user-agent: b', '') === k.fields;
      if (stricter) met.add('malformed-h2-request-reset');
      else if (firstOnly && n.outcome === k.outcome) met.add('single-value-field-first');
      else if (!same) found.push(`${c.id}: nginx ${JSON.stringify(n)} | keepip ${JSON.stringify(k)}`);
    });
    assert.deepEqual(found.sort(), []);
  });

  it('grpc-js itself reads the same status from both, or an ALLOWED one (failures, denials, statuses)', async () => {
    const cases: [string, string, string, number][] = [
      ['ok', 'svc.test', '/t.Echo/Unary', 8],
      ['trailers-only', 'svc.test', '/t.Echo/Fail', 8],
      ['no-status', 'svc.test', '/t.Echo/NoStatus', 8],
      ['denylisted', 'deny.test', '/t.Echo/Unary', 8],
      ['down', 'down.test', '/t.Echo/Unary', 8],
      ['reset-before-head', 'reset.test', '/t.Echo/Unary', 8],
      ['reset-after-message', 'reset.test', '/t.Echo/Mid', 8],
      ['silent', 'hang.test', '/t.Echo/Unary', 8],
      ['over-body-size', 'small.test', '/t.Echo/Unary', SMALL_LIMIT * 8],
    ];
    // The pairs ALLOWED explains: [nginx's code, keepip's code, the entry].
    const pairs: [string, string, string][] = [
      ['14', '4', 'read-timeout-deadline-exceeded'],
      ['2', '8', 'body-limit-resource-exhausted'],
    ];
    const found: string[] = [];
    await mapLimited(cases, 5, async ([id, host, path, size]) => {
      const message = Buffer.alloc(size, 0x63);
      const [n, k] = await Promise.all([
        grpcJsCall(bench, 'nginx', host, path, message),
        grpcJsCall(bench, 'keepip', host, path, message),
      ]);
      if (n === k) return;
      const pair = pairs.find(([a, b]) => a === n && b === k);
      if (pair !== undefined) met.add(pair[2]);
      else found.push(`${id}: grpc-js reads ${n} from nginx, ${k} from keepip`);
    });
    assert.deepEqual(found.sort(), []);
  });

  it('every ALLOWED entry was met by the runs (run the whole file)', (t) => {
    if (started < TESTS) {
      t.skip('only part of the file ran');
      return;
    }
    assert.deepEqual(
      ALLOWED.filter((a) => a.mayNotOccur === undefined && !met.has(a.id)).map((a) => a.id),
      [],
    );
  });
});

/** A unary call by grpc-js over TLS (the message as it is, no protobuf): the status code it reports. */
function grpcJsCall(bench: Bench, side: Side, host: string, path: string, message: Buffer): Promise<string> {
  const credentials = grpc.credentials.createSsl(Buffer.from(bench.cert), null, null, {
    checkServerIdentity: () => undefined,
  });
  const client = new grpc.Client(`127.0.0.1:${bench.port(side, false)}`, credentials, {
    'grpc.ssl_target_name_override': host,
    'grpc.default_authority': host,
  });
  const identity = (b: Buffer) => b;
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      identity,
      identity,
      message,
      new grpc.Metadata(),
      { deadline: Date.now() + FAR },
      (error) => {
        client.close();
        resolve(error ? String(error.code) : '0');
      },
    );
  });
}

const RAW_FIELDS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'user-agent',
  'host',
  ':authority',
]);

/**
 * One call written frame by frame over TLS (node:http2 refuses to send what these probes send): HEADERS
 * with the extra fields, then one DATA frame with END_STREAM. What came back first on the stream (a
 * HEADERS frame's :status, RST_STREAM, GOAWAY), and the backend's fields that the probe is about.
 */
async function rawCall(
  bench: Bench,
  side: Side,
  id: string,
  c: { authority: string; from: string; extra: [string, string][] },
) {
  const probeId = `${id}.${side}`;
  const h2 = await connectRawH2({ port: bench.port(side, false), from: c.from, servername: c.authority });
  try {
    const fields: [string, string][] = [...GRPC_BASE, ...c.extra, ['x-probe', probeId]];
    const block = headerBlock(requestFields(c.authority, '/t.Echo/Unary', 'POST', fields));
    h2.write(
      Buffer.concat([
        frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, block),
        frame(FRAME.DATA, FLAG.END_STREAM, 1, grpcFrame('raw')),
      ]),
    );
    const first = await h2
      .waitFrame(
        (f) =>
          (f.streamId === 1 && (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM)) ||
          f.type === FRAME.GOAWAY,
        FAR,
      )
      .catch(() => null);
    const outcome =
      first === null
        ? 'closed'
        : first.type === FRAME.HEADERS
          ? `status ${responseStatus(first.payload)}`
          : first.type === FRAME.RST_STREAM
            ? `rst ${rstCode(first)}`
            : 'goaway';
    let seen: Seen | undefined;
    for (const b of bench.backends.values()) seen ??= b.seen.get(probeId);
    const got = seen?.fields
      .filter(([n]) => RAW_FIELDS.has(n))
      .map(([n, v]) => `${n === 'host' ? ':authority' : n}: ${v}`);
    return { reached: seen !== undefined, outcome, fields: got?.sort().join('; ') ?? '' };
  } finally {
    h2.close();
  }
}
